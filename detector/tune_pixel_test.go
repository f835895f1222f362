package detector

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTunePixel is the harness the pixel memory's settings in
// docs/detection.md were chosen with. It needs no training: it splits one
// split's normals into training and held-out normals exactly as Train does
// (seed 1, HoldoutFraction 0.2), and logs for a choice split the ROC-AUC of
// the pixel memory under each patch size, stride, local standardisation and
// aggregation, of the whole-image nearest-normal distance, and of their
// sum after z-scoring on the held-out normals. It runs only when
// SENTINEL_TUNE_PIXEL names a data set folder under ../shared/data:
//
//	SENTINEL_TUNE_PIXEL=cxr8 SENTINEL_TUNE_TRAIN=seed SENTINEL_TUNE_EVAL=dev go test -run TestTunePixel -v ./detector/
//
// SENTINEL_TUNE_SIZE sets the input size (default 64) and
// SENTINEL_TUNE_K the number of nearest patches averaged (default 1),
// SENTINEL_TUNE_RADIUS, when set, compares each patch only with the
// normals' patches within that many grid positions of its own, and
// SENTINEL_TUNE_PATCHES the settings as size/stride/local triples, e.g.
// "8/8/0,4/4/1".
func TestTunePixel(t *testing.T) {
	set := os.Getenv("SENTINEL_TUNE_PIXEL")
	if set == "" {
		t.Skip("set SENTINEL_TUNE_PIXEL=cxr8 (or pneumoniamnist) to run the pixel tuning harness")
	}
	dir := filepath.Join("..", "..", "shared", "data", set)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("%s not found: skipping the pixel tuning harness", dir)
	}
	side := 64
	if v, err := strconv.Atoi(os.Getenv("SENTINEL_TUNE_SIZE")); err == nil {
		side = v
	}
	patches := "8/8/0,8/8/1,8/4/0,4/4/0,4/4/1"
	k, radius := 1, -1
	if v, err := strconv.Atoi(os.Getenv("SENTINEL_TUNE_K")); err == nil {
		k = v
	}
	if v, err := strconv.Atoi(os.Getenv("SENTINEL_TUNE_RADIUS")); err == nil {
		radius = v
	}
	if v := os.Getenv("SENTINEL_TUNE_PATCHES"); v != "" {
		patches = v
	}
	train, _ := loadSplit(t, dir, os.Getenv("SENTINEL_TUNE_TRAIN"), side, true)
	evalImgs, evalPos := loadSplit(t, dir, os.Getenv("SENTINEL_TUNE_EVAL"), side, false)
	std := func(imgs []int, src [][]float32) [][]float32 {
		out := make([][]float32, len(imgs))
		for i, j := range imgs {
			out[i] = standardise(src[j])
		}
		return out
	}
	all := make([][]float32, len(train))
	for i, img := range train {
		all[i], _ = prepareImage(img, side)
	}
	nCalib := max(minCalibImages, int(math.Round(0.2*float64(len(all)))))
	order := rand.New(rand.NewSource(1)).Perm(len(all))
	calib, normals := std(order[:nCalib], all), std(order[nCalib:], all)
	ev := make([][]float32, len(evalImgs))
	for i, img := range evalImgs {
		x, _ := prepareImage(img, side)
		ev[i] = standardise(x)
	}
	t.Logf("%s: %d training + %d held-out normals, %d choice images, input %d", set, len(normals), len(calib), len(ev), side)
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
	// zOn standardises the choice split's scores by the held-out normals'.
	zOn := func(cal, v []float64) []float64 {
		mu, sd := mean(cal), positive(sampleStd(cal))
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = (x - mu) / sd
		}
		return out
	}
	// each scores every image of xs in parallel.
	each := func(xs [][]float32, f func(x []float32) float64) []float64 {
		out := make([]float64, len(xs))
		eachIndex(len(xs), func(i int) { out[i] = f(xs[i]) })
		return out
	}
	nearest := func(x []float32) float64 {
		best := math.Inf(1)
		for _, n := range normals {
			best = min(best, float64(sqDist(x, n)))
		}
		return math.Sqrt(best)
	}
	nearCal, nearEv := each(calib, nearest), each(ev, nearest)
	zNear := zOn(nearCal, nearEv)
	t.Logf("nearest normal (baseline): AUROC %.3f", auroc(split(nearEv)))
	for _, p := range strings.Split(patches, ",") {
		var size, stride, local int
		if _, err := fmt.Sscanf(p, "%d/%d/%d", &size, &stride, &local); err != nil {
			t.Fatalf("bad patch setting %q: %v", p, err)
		}
		b := newPixelBank(normals, side, size, stride, local == 1)
		var byPos [][]float32 // each normal's patches, for the search by position
		if radius >= 0 {
			for _, n := range normals {
				byPos = append(byPos, pixelPatches(n, side, size, stride, local == 1))
			}
		}
		fracs := []float64{1, 0.5, 0.2, 0.05, 0}
		patchScores := func(xs [][]float32) [][]float64 {
			out := make([][]float64, len(xs))
			eachIndex(len(xs), func(i int) {
				if radius >= 0 {
					out[i] = localPatchScores(byPos, xs[i], side, size, stride, local == 1, radius)
				} else {
					out[i], _ = b.scores(xs[i], side, k)
				}
			})
			return out
		}
		pc, pe := patchScores(calib), patchScores(ev)
		for _, f := range fracs {
			agg := func(ps [][]float64) []float64 {
				v := make([]float64, len(ps))
				for i, s := range ps {
					v[i] = topMean(s, f)
				}
				return v
			}
			c, e := agg(pc), agg(pe)
			z := zOn(c, e)
			line := fmt.Sprintf("pixel %d/%d local %d k %d radius %d (%d patches) top %.2f: AUROC %.3f; + nearest",
				size, stride, local, k, radius, b.n, f, auroc(split(e)))
			for _, w := range []float64{0.25, 0.5, 0.75} {
				v := make([]float64, len(z))
				for i := range v {
					v[i] = (1-w)*z[i] + w*zNear[i]
				}
				line += fmt.Sprintf(" w%.2f %.3f", w, auroc(split(v)))
			}
			t.Log(line)
		}
	}
}

// localPatchScores scores each patch of x by its distance to the nearest
// patch of the normals (bank: each normal's patches, as pixelPatches cuts
// them) within radius grid positions of its own position.
func localPatchScores(bank [][]float32, x []float32, side, size, stride int, local bool, radius int) []float64 {
	g, d := pixelGrid(side, size, stride), size*size
	q := pixelPatches(x, side, size, stride, local)
	out := make([]float64, g*g)
	for py := range g {
		for px := range g {
			qp := q[(py*g+px)*d : (py*g+px+1)*d]
			best := math.Inf(1)
			for by := max(0, py-radius); by <= min(g-1, py+radius); by++ {
				for bx := max(0, px-radius); bx <= min(g-1, px+radius); bx++ {
					for _, b := range bank {
						best = min(best, float64(sqDist(qp, b[(by*g+bx)*d:(by*g+bx+1)*d])))
					}
				}
			}
			out[py*g+px] = math.Sqrt(best)
		}
	}
	return out
}

// eachIndex calls f for 0..n−1 on two goroutines.
func eachIndex(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// TestTuneFusion is the harness the fusion weights in docs/detection.md
// were chosen with. It trains once (with the pixel memory and the
// nearest-normal and texture components on, so that the calibration
// standardises them) and logs the choice split's ROC-AUC of every component
// and of the fused score over a grid of TextureWeight, PixelWeight,
// NearestWeight and MemoryWeight, each
// component z-scored on the held-out normals as Score does. It runs only
// when SENTINEL_TUNE_FUSION names a data set folder under ../shared/data:
//
//	SENTINEL_TUNE_FUSION=cxr8 SENTINEL_TUNE_TRAIN=seed SENTINEL_TUNE_EVAL=dev go test -run TestTuneFusion -v -timeout 30m ./detector/
//
// SENTINEL_TUNE_SIZE, _EPOCHS, _STANDARDISE (0 or 1) and _PATCH
// (size/stride/local) override the default configuration;
// SENTINEL_TUNE_MODEL instead loads a model file written by 'sentinel
// train' and grids over its calibration (the nearest-normal and texture
// weights only when the model's own are positive).
func TestTuneFusion(t *testing.T) {
	set := os.Getenv("SENTINEL_TUNE_FUSION")
	if set == "" {
		t.Skip("set SENTINEL_TUNE_FUSION=cxr8 (or pneumoniamnist) to run the fusion tuning harness")
	}
	dir := filepath.Join("..", "..", "shared", "data", set)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("%s not found: skipping the fusion tuning harness", dir)
	}
	cfg := DefaultTrainConfig()
	if v, err := strconv.Atoi(os.Getenv("SENTINEL_TUNE_SIZE")); err == nil {
		cfg.InputSize = v
	}
	if v, err := strconv.Atoi(os.Getenv("SENTINEL_TUNE_EPOCHS")); err == nil {
		cfg.Epochs = v
		cfg.SWAGEpochs = min(cfg.SWAGEpochs, v)
	}
	cfg.Standardise = os.Getenv("SENTINEL_TUNE_STANDARDISE") == "1"
	if v := os.Getenv("SENTINEL_TUNE_PATCH"); v != "" {
		var local int
		if _, err := fmt.Sscanf(v, "%d/%d/%d", &cfg.PixelPatch, &cfg.PixelStride, &local); err != nil {
			t.Fatalf("bad SENTINEL_TUNE_PATCH %q: %v", v, err)
		}
		cfg.PixelLocal = local == 1
	}
	if cfg.PixelPatch > 0 {
		cfg.PixelWeight = 0.25
	}
	cfg.NearestWeight = 0.25
	cfg.TextureWeight = 0.1
	var m *Model
	if path := os.Getenv("SENTINEL_TUNE_MODEL"); path != "" {
		// A model trained by 'sentinel train': its own configuration, and
		// its calibration must cover the nearest-normal component.
		var err error
		if m, err = Load(path); err != nil {
			t.Fatal(err)
		}
		cfg = m.TrainConfig()
	}
	train, _ := loadSplit(t, dir, os.Getenv("SENTINEL_TUNE_TRAIN"), cfg.InputSize, true)
	evalImgs, evalPos := loadSplit(t, dir, os.Getenv("SENTINEL_TUNE_EVAL"), cfg.InputSize, false)
	start := time.Now()
	if m == nil {
		var err error
		if m, err = Train(context.Background(), train, cfg); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s: model of %d normals in %v (input %d, standardise %v, pixel %d/%d local %v)", set, len(train),
		time.Since(start).Round(time.Second), cfg.InputSize, cfg.Standardise, cfg.PixelPatch, cfg.PixelStride, cfg.PixelLocal)
	c := m.calib
	type zs struct{ r, m, p, n, t float64 }
	z := make([]zs, len(evalImgs))
	eachIndex(len(evalImgs), func(i int) {
		x, _ := prepareImage(evalImgs[i], cfg.InputSize)
		a, err := m.analyse(m.config.input(x))
		if err != nil {
			t.Error(err)
			return
		}
		z[i] = zs{
			zscore(mean(a.recon), c.ReconMean, c.ReconStd), zscore(a.memory, c.MemoryMean, c.MemoryStd),
			zscore(a.pixel, c.PixelMean, positive(c.PixelStd)), zscore(a.nearest, c.NearestMean, positive(c.NearestStd)),
			zscore(a.texture, c.TextureMean, positive(c.TextureStd)),
		}
	})
	fused := func(wr, wm, wp, wn, wt float64) float64 {
		var neg, pos []float64
		for i, v := range z {
			s := wr*v.r + wm*v.m + wp*v.p + wn*v.n + wt*v.t
			if evalPos[i] {
				pos = append(pos, s)
			} else {
				neg = append(neg, s)
			}
		}
		return auroc(neg, pos)
	}
	t.Logf("components: reconstruction %.3f, memory %.3f, pixel %.3f, nearest %.3f, texture %.3f",
		fused(1, 0, 0, 0, 0), fused(0, 1, 0, 0, 0), fused(0, 0, 1, 0, 0), fused(0, 0, 0, 1, 0), fused(0, 0, 0, 0, 1))
	wns := []float64{0, 0.25, 0.5, 0.75, 1}
	if !(cfg.NearestWeight > 0) {
		wns = wns[:1] // the calibration does not standardise the nearest-normal distance
	}
	wts := []float64{0, 0.1, 0.25, 0.5}
	if !(cfg.TextureWeight > 0) {
		wts = wts[:1] // the calibration does not standardise the texture component
	}
	best, bestKey := 0.0, ""
	wps := []float64{0, 0.25, 0.5, 0.75, 1}
	if cfg.PixelPatch == 0 {
		wps = wps[:1]
	}
	for _, wt := range wts {
		for _, wp := range wps {
			for _, wn := range wns {
				if wp+wn+wt > 1 {
					continue
				}
				line := fmt.Sprintf("texture %.2f pixel %.2f nearest %.2f, memory weight 0/0.25/0.5/0.75/1:", wt, wp, wn)
				for _, w := range []float64{0, 0.25, 0.5, 0.75, 1} {
					ae := 1 - wp - wn - wt
					a := fused(ae*(1-w), ae*w, wp, wn, wt)
					line += fmt.Sprintf(" %.3f", a)
					if a > best {
						best, bestKey = a, fmt.Sprintf("texture %.2f pixel %.2f nearest %.2f memory %.2f", wt, wp, wn, w)
					}
					if ae < 1e-9 {
						break
					}
				}
				t.Log(line)
			}
		}
	}
	t.Logf("best: %s: %.3f", bestKey, best)
}
