package detector

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

func TestTrainSeparatesLesions(t *testing.T) {
	m := sharedModel(t)
	normal := scoreAll(t, m, shared.normals)
	lesion := scoreAll(t, m, shared.lesions)
	if mean(lesion) <= mean(normal) {
		t.Errorf("mean lesion score %v is not above mean normal score %v", mean(lesion), mean(normal))
	}
	a := auroc(normal, lesion)
	t.Logf("AUROC %.3f; mean score %.5f normal, %.5f lesion", a, mean(normal), mean(lesion))
	if a < 0.8 {
		t.Errorf("AUROC %.3f on held-out synthetic images, want at least 0.8", a)
	}
	var fp int
	for _, v := range normal {
		if v > m.Info().Threshold {
			fp++
		}
	}
	// TargetFPR is 5%; on 30 unseen normals with a threshold from 12,
	// allow a generous margin before calling the calibration broken.
	if fp > 10 {
		t.Errorf("%d of %d unseen normals exceed the threshold", fp, len(normal))
	}
}

func TestTrainLossDecreases(t *testing.T) {
	m := sharedModel(t)
	p := shared.progress
	if len(p) != testConfig().Epochs {
		t.Fatalf("Progress called %d times, want once per epoch (%d)", len(p), testConfig().Epochs)
	}
	for i, pr := range p {
		if pr.Epoch != i+1 || pr.Epochs != len(p) {
			t.Errorf("progress %d reports epoch %d of %d", i, pr.Epoch, pr.Epochs)
		}
		if i > 0 && pr.Elapsed < p[i-1].Elapsed {
			t.Errorf("elapsed went back from %v to %v", p[i-1].Elapsed, pr.Elapsed)
		}
	}
	if p[len(p)-1].ETA != 0 {
		t.Errorf("ETA after the last epoch is %v, want 0", p[len(p)-1].ETA)
	}
	first, last := p[0].Loss, p[len(p)-1].Loss
	if !(last < first/3) {
		t.Errorf("loss went from %v to %v, want it at least three times lower", first, last)
	}
	metrics := m.Info().Metrics
	if metrics[MetricTrainLoss] != last || metrics[MetricFirstLoss] != first {
		t.Errorf("metrics %v disagree with progress losses %v, %v", metrics, first, last)
	}
}

func TestTrainInfo(t *testing.T) {
	m := sharedModel(t)
	info := m.Info()
	cal := m.CalibrationScores()
	if info.Kind != Kind || info.InputSize != testSide || m.InputSize() != testSide {
		t.Errorf("info %+v: wrong kind or input size", info)
	}
	if !strings.HasPrefix(info.Version, "ae-") || len(info.Version) != len("ae-")+12 {
		t.Errorf("version %q, want ae- and 12 hex digits", info.Version)
	}
	if info.TrainImages != 48 || info.CalibImages != 12 || len(cal) != 12 {
		t.Errorf("train/calib images %d/%d with %d scores, want 48/12/12", info.TrainImages, info.CalibImages, len(cal))
	}
	if want := quantile(slices.Sorted(slices.Values(cal)), 1-info.TargetFPR); info.Threshold != want {
		t.Errorf("threshold %v, want the 95th percentile of calibration scores %v", info.Threshold, want)
	}
	q := m.TrainConfig().NormalQuantile
	if want := quantile(slices.Sorted(slices.Values(cal)), q); q >= 1 || m.calib.NormalLimit == nil || *m.calib.NormalLimit != want {
		t.Errorf("normal limit %v, want the %v quantile of calibration scores %v", m.calib.NormalLimit, q, want)
	}
	if info.Metrics[MetricCalibMean] != mean(cal) || info.Metrics[MetricCalibStd] != stddev(cal) {
		t.Errorf("calibration metrics %v disagree with scores %v", info.Metrics, cal)
	}
	if !strings.HasPrefix(info.Fingerprint, "sha256:") || info.CreatedAt.IsZero() {
		t.Errorf("fingerprint %q, created %v", info.Fingerprint, info.CreatedAt)
	}
	info.Metrics[MetricTrainLoss] = -1
	if m.Info().Metrics[MetricTrainLoss] == -1 {
		t.Error("Info shares its metrics map with the model")
	}
}

// shortTrain trains a model for two epochs, for the tests that train their
// own. The batch and image size are large enough that the convolutions
// spread images over several goroutines, whose determinism is part of what
// is tested.
func shortTrain(t *testing.T, seed int64, images []sentinel.Image) *Model {
	t.Helper()
	cfg := testConfig()
	cfg.Epochs = 2
	cfg.Seed = seed
	m, err := Train(context.Background(), images, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTrainDeterministic(t *testing.T) {
	images := synthImages(rand.New(rand.NewSource(1)), 24, testSide, false)
	a := shortTrain(t, 5, images)
	b := shortTrain(t, 5, images)
	c := shortTrain(t, 6, images)
	if a.Info().Version != b.Info().Version {
		t.Errorf("same seed gave versions %s and %s", a.Info().Version, b.Info().Version)
	}
	if !slices.Equal(a.CalibrationScores(), b.CalibrationScores()) {
		t.Errorf("same seed gave calibration scores %v and %v", a.CalibrationScores(), b.CalibrationScores())
	}
	for i := range a.params {
		if !slices.Equal(a.params[i].Data, b.params[i].Data) {
			t.Errorf("same seed gave different %s", a.params[i].Name)
		}
	}
	if a.Info().Version == c.Info().Version {
		t.Errorf("seeds 5 and 6 both gave version %s", a.Info().Version)
	}
	if a.Info().Fingerprint != c.Info().Fingerprint {
		t.Error("the same images gave different fingerprints")
	}
}

func TestTrainRejects(t *testing.T) {
	good := synthImages(rand.New(rand.NewSource(1)), 10, 16, false)
	base := DefaultTrainConfig()
	base.InputSize = 16
	base.Channels = []int{4, 8}
	base.MemoryStage = 0
	base.Epochs = 1
	nan := slices.Clone(good)
	nan[3] = sentinel.Image{Width: 16, Height: 16, Pix: slices.Clone(good[3].Pix)}
	nan[3].Pix[5] = float32(math.NaN())
	short := slices.Clone(good)
	short[2] = sentinel.Image{Width: 16, Height: 16, Pix: good[2].Pix[:10]}

	tests := []struct {
		name   string
		edit   func(*TrainConfig)
		images []sentinel.Image
		want   string
	}{
		{"zero epochs", func(c *TrainConfig) { c.Epochs = 0 }, good, "Epochs"},
		{"zero batch", func(c *TrainConfig) { c.BatchSize = 0 }, good, "BatchSize"},
		{"NaN learning rate", func(c *TrainConfig) { c.LearningRate = math.NaN() }, good, "LearningRate"},
		{"holdout one", func(c *TrainConfig) { c.HoldoutFraction = 1 }, good, "HoldoutFraction"},
		{"negative FPR", func(c *TrainConfig) { c.TargetFPR = -0.1 }, good, "TargetFPR"},
		{"margin one", func(c *TrainConfig) { c.UncertainMargin = 1 }, good, "UncertainMargin"},
		{"normal quantile zero", func(c *TrainConfig) { c.NormalQuantile = 0 }, good, "NormalQuantile"},
		{"normal quantile above one", func(c *TrainConfig) { c.NormalQuantile = 1.5 }, good, "NormalQuantile"},
		{"size not divisible", func(c *TrainConfig) { c.InputSize = 18 }, good, "InputSize"},
		{"no channels", func(c *TrainConfig) { c.Channels = nil }, good, "Channels"},
		{"too few images", nil, good[:7], "need at least"},
		{"wrong image size", func(c *TrainConfig) { c.InputSize = 32 }, good, "model takes 32×32"},
		{"NaN pixel", nil, nan, "pixel 5"},
		{"short pixels", nil, short, "10 pixels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			_, err := Train(context.Background(), tt.images, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestTrainHonorsCancel(t *testing.T) {
	images := synthImages(rand.New(rand.NewSource(1)), 20, 16, false)
	cfg := DefaultTrainConfig()
	cfg.InputSize = 16
	cfg.Channels = []int{4, 8}
	cfg.MemoryStage = 0
	cfg.Epochs = 1000
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Progress = func(p Progress) {
		if p.Epoch == 2 {
			cancel()
		}
	}
	start := time.Now()
	_, err := Train(ctx, images, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancelled training took %v", d)
	}
}

// TestTrainHeldOut checks that HeldOut names exactly the images the model
// calibrated on: scoring them in that order gives the calibration scores.
func TestTrainHeldOut(t *testing.T) {
	m := sharedModel(t)
	ho := m.HeldOut()
	cal := m.CalibrationScores()
	if len(ho) != len(cal) {
		t.Fatalf("%d held-out indices for %d calibration scores", len(ho), len(cal))
	}
	seen := map[int]bool{}
	for i, j := range ho {
		if j < 0 || j >= len(shared.train) || seen[j] {
			t.Fatalf("held-out index %d is %d: out of range or repeated (%v)", i, j, ho)
		}
		seen[j] = true
		s, err := m.Score(shared.train[j])
		if err != nil {
			t.Fatal(err)
		}
		if s.Value != cal[i] {
			t.Errorf("held-out image %d (training image %d) scores %v, calibration score %v", i, j, s.Value, cal[i])
		}
	}
}
