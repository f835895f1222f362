package detector

import (
	"context"
	"encoding/csv"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

// TestTune is the harness the scoring choices in docs/detection.md were made
// with. It trains on one split's normals and logs, for a choice split that
// is never trained on, the AUROC of each component score under each
// aggregation, of their fusion under each weight, and of the no-learning
// baseline. It runs only when SENTINEL_TUNE names a data set folder under
// ../shared/data:
//
//	SENTINEL_TUNE=cxr8 SENTINEL_TUNE_TRAIN=seed SENTINEL_TUNE_EVAL=dev go test -run TestTune -v -timeout 30m ./detector/
//
// SENTINEL_TUNE_SIZE, _EPOCHS, _SWAG_EPOCHS, _CHANNELS and _STAGE override
// the training configuration.
func TestTune(t *testing.T) {
	set := os.Getenv("SENTINEL_TUNE")
	if set == "" {
		t.Skip("set SENTINEL_TUNE=cxr8 (or pneumoniamnist) to run the tuning harness")
	}
	dir := filepath.Join("..", "..", "shared", "data", set)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("%s not found: skipping the tuning harness", dir)
	}
	cfg := DefaultTrainConfig()
	envInt := func(k string, p *int) {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
			*p = v
		}
	}
	envInt("SENTINEL_TUNE_SIZE", &cfg.InputSize)
	envInt("SENTINEL_TUNE_EPOCHS", &cfg.Epochs)
	envInt("SENTINEL_TUNE_STAGE", &cfg.MemoryStage)
	envInt("SENTINEL_TUNE_SWAG_EPOCHS", &cfg.SWAGEpochs)
	if s := os.Getenv("SENTINEL_TUNE_CHANNELS"); s != "" {
		cfg.Channels = nil
		for _, f := range strings.Split(s, ",") {
			c, _ := strconv.Atoi(f)
			cfg.Channels = append(cfg.Channels, c)
		}
	}
	trainSplit, evalSplit := os.Getenv("SENTINEL_TUNE_TRAIN"), os.Getenv("SENTINEL_TUNE_EVAL")
	train, _ := loadSplit(t, dir, trainSplit, cfg.InputSize, true)
	evalImgs, evalPos := loadSplit(t, dir, evalSplit, cfg.InputSize, false)
	t.Logf("%s: %d training normals from %s, %d images from %s, input %d, channels %v, stage %d",
		set, len(train), trainSplit, len(evalImgs), evalSplit, cfg.InputSize, cfg.Channels, cfg.MemoryStage)
	start := time.Now()
	m, err := Train(context.Background(), train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained in %v, memory bank %d patches", time.Since(start).Round(time.Second), m.bankRows)

	sc, err := m.newScorer()
	if err != nil {
		t.Fatal(err)
	}
	side := cfg.InputSize
	type raw struct {
		sq    [][]float64 // per SWAG sample
		patch []float64
	}
	raws := make([]raw, len(evalImgs))
	base := make([]float64, len(evalImgs))
	for i, img := range evalImgs {
		x, _ := prepareImage(img, side)
		x = m.config.input(x)
		st := cfg.MemoryStage
		if _, err := sc.mean.run(x, st+2, true); err != nil {
			t.Fatal(err)
		}
		fine, coarse := sc.mean.stage(st), sc.mean.stage(st+1)
		g := side >> (st + 1)
		q := patchFeatures(fine, cfg.Channels[st], coarse, cfg.Channels[st+1], g)
		raws[i].patch = knnScores(q, g*g, m.bank, m.bankSq, m.bankRows, m.bankDim, cfg.Neighbours)
		for _, n := range sc.samples {
			y, _ := n.reconstruct(x, true)
			raws[i].sq = append(raws[i].sq, squaredErrors(x, y))
		}
		base[i] = m.baseline(x)
	}
	split := func(v []float64) (n, p []float64) {
		for i, x := range v {
			if evalPos[i] {
				p = append(p, x)
			} else {
				n = append(n, x)
			}
		}
		return n, p
	}
	t.Logf("baseline AUROC %.3f", auroc(split(base)))
	recon := map[string][]float64{}
	for _, blur := range []float64{0, 1, 2, 4} {
		for _, f := range []float64{1, 0.2, 0.05, 0.01, 0} {
			v := make([]float64, len(raws))
			for i, r := range raws {
				var s float64
				for _, sq := range r.sq {
					s += topMean(gaussianBlur(sq, side, blur), f)
				}
				v[i] = s / float64(len(r.sq))
			}
			k := fmt.Sprintf("blur %g top %g", blur, f)
			recon[k] = v
			t.Logf("reconstruction %s: AUROC %.3f", k, auroc(split(v)))
		}
	}
	mem := map[string][]float64{}
	for _, f := range []float64{1, 0.5, 0.2, 0.1, 0.05, 0.01, 0} {
		v := make([]float64, len(raws))
		for i, r := range raws {
			v[i] = topMean(r.patch, f)
		}
		k := fmt.Sprintf("top %g", f)
		mem[k] = v
		t.Logf("memory %s: AUROC %.3f", k, auroc(split(v)))
	}
	// Fusion of the configured aggregations, standardised by the model's
	// calibration on held-out training normals.
	rk := fmt.Sprintf("blur %g top %g", cfg.ReconBlur, cfg.ReconTopFraction)
	mk := fmt.Sprintf("top %g", cfg.MemoryTopFraction)
	if recon[rk] != nil && mem[mk] != nil {
		for _, w := range []float64{0, 0.25, 0.5, 0.75, 1} {
			v := make([]float64, len(raws))
			for i := range v {
				v[i] = (1-w)*(recon[rk][i]-m.calib.ReconMean)/m.calib.ReconStd + w*(mem[mk][i]-m.calib.MemoryMean)/m.calib.MemoryStd
			}
			t.Logf("fused (%s, %s) weight %.2f: AUROC %.3f", rk, mk, w, auroc(split(v)))
		}
	}
}

// loadSplit reads the PNG images of a split from a labels.csv in dir,
// area-resampled to side×side; with normalsOnly, only the normal rows.
func loadSplit(t *testing.T, dir, split string, side int, normalsOnly bool) ([]sentinel.Image, []bool) {
	f, err := os.Open(filepath.Join(dir, "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var imgs []sentinel.Image
	var pos []bool
	for _, r := range recs[1:] {
		if r[col["split"]] != split || (normalsOnly && r[col["finding"]] != "normal") {
			continue
		}
		imgs = append(imgs, readPNG(t, filepath.Join(dir, "images", filepath.Base(r[col["file"]])), side))
		pos = append(pos, r[col["finding"]] != "normal")
	}
	if len(imgs) == 0 {
		t.Fatalf("no images in split %q of %s", split, dir)
	}
	return imgs, pos
}

// readPNG decodes a grayscale PNG and area-averages it to side×side, as
// dicomio.Resample does (the detector does not import dicomio).
func readPNG(t *testing.T, path string, side int) sentinel.Image {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := im.Bounds()
	w, h := b.Dx(), b.Dy()
	src := make([]float64, w*h)
	for y := range h {
		for x := range w {
			r, _, _, _ := im.At(b.Min.X+x, b.Min.Y+y).RGBA()
			src[y*w+x] = float64(r) / 65535
		}
	}
	// weights[o][i] is the share of output pixel o that source pixel i
	// covers.
	weights := func(in, out int) [][]float64 {
		ws := make([][]float64, out)
		for o := range out {
			ws[o] = make([]float64, in)
			for i := range in {
				lo := math.Max(float64(i*out), float64(o*in))
				hi := math.Min(float64((i+1)*out), float64((o+1)*in))
				if hi > lo {
					ws[o][i] = (hi - lo) / float64(in)
				}
			}
		}
		return ws
	}
	wx, wy := weights(w, side), weights(h, side)
	img := sentinel.NewImage(side, side)
	for oy := range side {
		for ox := range side {
			var s float64
			for y, a := range wy[oy] {
				if a == 0 {
					continue
				}
				for x, c := range wx[ox] {
					if c != 0 {
						s += a * c * src[y*w+x]
					}
				}
			}
			img.Pix[oy*side+ox] = float32(s)
		}
	}
	return img
}
