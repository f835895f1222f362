package detector

import (
	"context"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEvaluateDefault trains the default configuration on 125 synthetic
// 64×64 normals (100 to train, 25 to calibrate) for 30 epochs, the budget the
// defaults are chosen for, and logs the training time, the scoring time and
// the AUROC on unseen synthetic lesions. It takes tens of seconds, so it runs
// only when SENTINEL_EVAL is set; SENTINEL_EVAL_CHANNELS (e.g. "16,32,32")
// and SENTINEL_EVAL_SEED try other settings:
//
//	SENTINEL_EVAL=1 go test -run TestEvaluateDefault -v ./detector/
func TestEvaluateDefault(t *testing.T) {
	if os.Getenv("SENTINEL_EVAL") == "" {
		t.Skip("set SENTINEL_EVAL=1 to run the 64×64 evaluation")
	}
	cfg := DefaultTrainConfig()
	if s := os.Getenv("SENTINEL_EVAL_CHANNELS"); s != "" {
		cfg.Channels = nil
		for _, f := range strings.Split(s, ",") {
			c, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Channels = append(cfg.Channels, c)
		}
	}
	seed, _ := strconv.ParseInt(os.Getenv("SENTINEL_EVAL_SEED"), 10, 64)
	rng := rand.New(rand.NewSource(seed))
	train := synthImages(rng, 125, cfg.InputSize, false)
	normals := synthImages(rng, 50, cfg.InputSize, false)
	lesions := synthImages(rng, 50, cfg.InputSize, true)
	cfg.Progress = func(p Progress) {
		if p.Epoch == 1 || p.Epoch%10 == 0 {
			t.Logf("epoch %d/%d loss %.5f elapsed %v eta %v", p.Epoch, p.Epochs, p.Loss, p.Elapsed.Round(time.Millisecond), p.ETA.Round(time.Second))
		}
	}
	start := time.Now()
	m, err := Train(context.Background(), train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	trained := time.Since(start)
	start = time.Now()
	neg := scoreAll(t, m, normals)
	pos := scoreAll(t, m, lesions)
	perImage := time.Since(start) / time.Duration(len(normals)+len(lesions))
	info := m.Info()
	t.Logf("channels %v: trained %d+%d images × %d epochs in %v; scoring %v per image; AUROC %.3f; threshold %.5f; version %s",
		cfg.Channels, info.TrainImages, info.CalibImages, cfg.Epochs, trained.Round(time.Millisecond), perImage, auroc(neg, pos), info.Threshold, info.Version)
}
