package detector

import (
	"context"
	"math"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

func TestScoreFields(t *testing.T) {
	m := sharedModel(t)
	for i, img := range append(shared.normals[:3:3], shared.lesions[:3]...) {
		s, err := m.Score(img)
		if err != nil {
			t.Fatal(err)
		}
		if s.Threshold != m.Info().Threshold {
			t.Errorf("image %d: threshold %v, model's is %v", i, s.Threshold, m.Info().Threshold)
		}
		wr, wm, wp, wn, wt := m.config.fusionWeights()
		c := s.Components
		want := wr*c[ComponentReconstructionZ] + wm*c[ComponentMemoryZ] + wp*c[ComponentPixelZ] + wn*c[ComponentNearestZ] + wt*c[ComponentTextureZ]
		if len(c) != 8 || math.Abs(want-s.Value) > 1e-12 { // reconstruction, memory, pixel, texture and their z-scores
			t.Errorf("image %d: components %v for value %v", i, c, s.Value)
		}
		cal := m.calib
		if z := (c[ComponentMemory] - cal.MemoryMean) / cal.MemoryStd; z != c[ComponentMemoryZ] {
			t.Errorf("image %d: memory z-score %v, want %v", i, c[ComponentMemoryZ], z)
		}
		if s.Uncertainty == nil || !(*s.Uncertainty >= 0) {
			t.Fatalf("image %d: uncertainty %v, want a non-negative value from the SWAG samples", i, s.Uncertainty)
		}
		if d, why := cal.decide(s.Value, s.Uncertainty); s.Decision != d || s.Reason != why || s.Reason == "" {
			t.Errorf("image %d: decision %s (%q) for value %v and threshold %v", i, s.Decision, s.Reason, s.Value, s.Threshold)
		}
		if s.NormalLimit == nil || cal.NormalLimit == nil || *s.NormalLimit != *cal.NormalLimit {
			t.Errorf("image %d: normal limit %v, calibrated %v", i, s.NormalLimit, cal.NormalLimit)
		}
		h := s.Heatmap
		if h.Width != testSide || h.Height != testSide || len(h.Pix) != testSide*testSide {
			t.Fatalf("image %d: heatmap %d×%d with %d pixels", i, h.Width, h.Height, len(h.Pix))
		}
		if lo, hi := slices.Min(h.Pix), slices.Max(h.Pix); lo < 0 || hi > 1 {
			t.Errorf("image %d: heatmap spans [%v, %v], want within [0, 1]", i, lo, hi)
		}
	}
}

// TestScoreHeatmapLocatesLesion checks that the heatmap is hotter inside a
// bright square than outside it.
func TestScoreHeatmapLocatesLesion(t *testing.T) {
	m := sharedModel(t)
	img := synthImage(rand.New(rand.NewSource(11)), testSide, false)
	inside := func(x, y int) bool { return x >= 10 && x < 16 && y >= 12 && y < 18 }
	for y := range testSide {
		for x := range testSide {
			if inside(x, y) {
				img.Pix[y*testSide+x] = min(img.Pix[y*testSide+x]+0.45, 1)
			}
		}
	}
	s, err := m.Score(img)
	if err != nil {
		t.Fatal(err)
	}
	var in, out []float64
	for y := range testSide {
		for x := range testSide {
			v := float64(s.Heatmap.At(x, y))
			if inside(x, y) {
				in = append(in, v)
			} else {
				out = append(out, v)
			}
		}
	}
	if mean(in) <= 2*mean(out) {
		t.Errorf("heatmap mean %.3f inside the lesion, %.3f outside: want inside at least twice as hot", mean(in), mean(out))
	}
}

func TestScoreRejects(t *testing.T) {
	m := sharedModel(t)
	nan := sentinel.NewImage(testSide, testSide)
	nan.Pix[7] = float32(math.Inf(1))
	tests := []struct {
		name string
		img  sentinel.Image
		want string
	}{
		{"too small", sentinel.NewImage(16, 16), "16×16"},
		{"too large", sentinel.NewImage(64, 64), "64×64"},
		{"not square", sentinel.NewImage(testSide, testSide/2), "model takes"},
		{"empty", sentinel.Image{}, "0×0"},
		{"short pixels", sentinel.Image{Width: testSide, Height: testSide, Pix: make([]float32, 5)}, "5 pixels"},
		{"infinite pixel", nan, "pixel 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Score(tt.img)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestScoreConcurrent(t *testing.T) {
	m := sharedModel(t)
	images := append(slices.Clone(shared.normals[:8]), shared.lesions[:8]...)
	want := scoreAll(t, m, images)
	const workers = 4
	got := make([][]float64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[w] = make([]float64, len(images))
			for i := range images {
				// Each worker starts at a different image so that the
				// goroutines score different images at the same time.
				j := (i + w*len(images)/workers) % len(images)
				s, err := m.Score(images[j])
				if err != nil {
					errs[w] = err
					return
				}
				got[w][j] = s.Value
			}
		}()
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		if !slices.Equal(got[w], want) {
			t.Errorf("worker %d scored %v, sequential scoring gave %v", w, got[w], want)
		}
	}
}

func TestDecide(t *testing.T) {
	u := func(v float64) *float64 { return &v }
	tests := []struct {
		value, threshold, margin float64
		normal                   *float64
		u                        *float64
		limit                    float64
		want                     sentinel.Decision
	}{
		{0.5, 1, 0.25, nil, nil, 0, sentinel.DecisionNormal},
		{0.75, 1, 0.25, nil, nil, 0, sentinel.DecisionNormal}, // |0.75−1| = 0.25 is not < 0.25
		{0.8, 1, 0.25, nil, nil, 0, sentinel.DecisionUncertain},
		{1, 1, 0.25, nil, nil, 0, sentinel.DecisionUncertain},
		{1.2, 1, 0.25, nil, nil, 0, sentinel.DecisionUncertain},
		{1.25, 1, 0.25, nil, nil, 0, sentinel.DecisionAbnormal},
		{-2, -1, 0.25, nil, nil, 0, sentinel.DecisionNormal},
		{-1.1, -1, 0.25, nil, nil, 0, sentinel.DecisionUncertain},
		{1, 1, 0, nil, nil, 0, sentinel.DecisionNormal},
		{1.0001, 1, 0, nil, nil, 0, sentinel.DecisionAbnormal},
		{3, 1, 0.25, nil, u(0.5), 0.4, sentinel.DecisionUncertain},
		{3, 1, 0.25, nil, u(0.4), 0.4, sentinel.DecisionAbnormal},
		{-3, 1, 0.25, nil, u(0.9), 0.4, sentinel.DecisionUncertain},
		{-3, 1, 0.25, nil, u(0.1), 0.4, sentinel.DecisionNormal},
		// The band between the normal limit and the threshold.
		{0.5, 1, 0, u(0.5), nil, 0, sentinel.DecisionNormal},
		{0.5001, 1, 0, u(0.5), nil, 0, sentinel.DecisionUncertain},
		{1, 1, 0, u(0.5), nil, 0, sentinel.DecisionUncertain},
		{1.0001, 1, 0, u(0.5), nil, 0, sentinel.DecisionAbnormal},
		{-4, 1, 0, u(0.5), u(0.1), 0.4, sentinel.DecisionNormal},
		{-4, 1, 0, u(0.5), u(0.9), 0.4, sentinel.DecisionUncertain},
		{0.9, 1, 0, u(1.5), nil, 0, sentinel.DecisionNormal}, // a limit above the threshold leaves no band
		{1.1, 1, 0, u(1.5), nil, 0, sentinel.DecisionAbnormal},
	}
	for _, tt := range tests {
		c := calibration{Threshold: tt.threshold, UncertainMargin: tt.margin, NormalLimit: tt.normal, UncertaintyLimit: tt.limit}
		got, why := c.decide(tt.value, tt.u)
		if got != tt.want {
			t.Errorf("decide(%v) with threshold %v, margin %v, normal limit %v, uncertainty %v, limit %v = %s, want %s",
				tt.value, tt.threshold, tt.margin, tt.normal, tt.u, tt.limit, got, tt.want)
		}
		// The reason names the rule that decided.
		var rule string
		switch {
		case math.Abs(tt.value-tt.threshold) < tt.margin:
			rule = "of the threshold"
		case tt.u != nil && *tt.u > tt.limit:
			rule = "SWAG uncertainty"
		case tt.value > tt.threshold:
			rule = "above the threshold"
		case tt.normal != nil && *tt.normal < tt.threshold && tt.value > *tt.normal:
			rule = "above the normal limit"
		case tt.normal != nil && *tt.normal < tt.threshold:
			rule = "at or below the normal limit"
		default:
			rule = "at or below the threshold"
		}
		if !strings.Contains(why, rule) {
			t.Errorf("decide(%v): reason %q, want it to say %q", tt.value, why, rule)
		}
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		sorted []float64
		q      float64
		want   float64
	}{
		{[]float64{1}, 0.95, 1},
		{[]float64{1, 2, 3, 4, 5}, 0, 1},
		{[]float64{1, 2, 3, 4, 5}, 0.5, 3},
		{[]float64{1, 2, 3, 4, 5}, 1, 5},
		{[]float64{1, 2, 3, 4, 5}, 0.95, 4.8},
		{[]float64{0, 10}, 0.25, 2.5},
	}
	for _, tt := range tests {
		if got := quantile(tt.sorted, tt.q); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("quantile(%v, %v) = %v, want %v", tt.sorted, tt.q, got, tt.want)
		}
	}
	if !math.IsNaN(quantile(nil, 0.5)) {
		t.Error("quantile of nothing is not NaN")
	}
}

// TestSampledMemoryUncertainty checks that with SampledMemory each SWAG
// sample scores the memory bank with its own encoder and the uncertainty is
// the spread of the autoencoder's share over the samples, so that a model
// whose share is all memory still has one; without it such a model has no
// uncertainty (nil), and its file saves and loads.
func TestSampledMemoryUncertainty(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	train := synthImages(rng, 40, testSide, false)
	probe := synthImages(rng, 4, testSide, true)
	for _, sampled := range []bool{true, false} {
		cfg := testConfig()
		cfg.Epochs, cfg.SWAGEpochs = 8, 6
		cfg.MemoryWeight, cfg.PixelWeight, cfg.TextureWeight = 1, 0, 0
		cfg.SampledMemory = sampled
		m, err := Train(context.Background(), train, cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkCalibration(t, m, reload(t, m), train, cfg.Seed)
		for i, img := range probe {
			x, err := prepareImage(img, testSide)
			if err != nil {
				t.Fatal(err)
			}
			a, err := m.analyse(m.config.input(x))
			if err != nil {
				t.Fatal(err)
			}
			s := m.finish(a)
			if !sampled {
				// Nothing in the score varies over the samples: no
				// uncertainty, rather than one that is 0 by construction.
				if len(a.memorySamples) != 0 || s.Uncertainty != nil || len(m.CalibrationUncertainties()) != 0 {
					t.Errorf("without sampled memory, image %d: %d memory samples, uncertainty %v, %d calibration uncertainties; want none",
						i, len(a.memorySamples), s.Uncertainty, len(m.CalibrationUncertainties()))
				}
				continue
			}
			if s.Uncertainty == nil {
				t.Fatalf("image %d: no uncertainty", i)
			}
			if len(a.memorySamples) != cfg.SWAGSamples {
				t.Fatalf("image %d: %d memory samples, want %d", i, len(a.memorySamples), cfg.SWAGSamples)
			}
			// Recompute each sample's memory score from its own encoder.
			sc, err := m.newScorer()
			if err != nil {
				t.Fatal(err)
			}
			share := make([]float64, len(sc.samples))
			for j, n := range sc.samples {
				if _, err := n.reconstruct(m.config.input(x), false); err != nil {
					t.Fatal(err)
				}
				ps, err := m.patchScores(n.stage(cfg.MemoryStage), n.stage(cfg.MemoryStage+1))
				if err != nil {
					t.Fatal(err)
				}
				ms := topMean(ps, cfg.MemoryTopFraction)
				if ms != a.memorySamples[j] {
					t.Errorf("image %d, sample %d: memory score %v, recomputed %v", i, j, a.memorySamples[j], ms)
				}
				share[j] = ms / m.calib.MemoryStd
			}
			if want := stddev(share); !(want > 0) || math.Abs(*s.Uncertainty-want) > 1e-12*want {
				t.Errorf("image %d: uncertainty %v, want the samples' spread %v > 0", i, *s.Uncertainty, want)
			}
			if slices.Min(a.memorySamples) == slices.Max(a.memorySamples) {
				t.Errorf("image %d: every sample gives memory score %v; the samples should differ", i, a.memorySamples[0])
			}
		}
	}
}
