package detector

import (
	"context"
	"math"
	"math/rand"
	"reflect"
	"slices"
	"testing"
)

// TestPixelBankMatchesBruteForce checks the pixel memory's patch scores
// against cutting the patches by hand and searching every training patch.
func TestPixelBankMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const side = 16
	img := func() []float32 {
		x := make([]float32, side*side)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return standardise(x)
	}
	normals := [][]float32{img(), img(), img()}
	for _, tc := range []struct {
		size, stride int
		local        bool
	}{{4, 4, false}, {4, 2, true}, {8, 8, true}, {5, 3, false}} {
		b := newPixelBank(normals, side, tc.size, tc.stride, tc.local)
		g := (side-tc.size)/tc.stride + 1
		if b.n != len(normals)*g*g {
			t.Fatalf("%+v: bank of %d patches, want %d", tc, b.n, len(normals)*g*g)
		}
		// cut returns the patch at grid position (py, px) of x.
		cut := func(x []float32, py, px int) []float64 {
			var p []float64
			for y := range tc.size {
				for xx := range tc.size {
					p = append(p, float64(x[(py*tc.stride+y)*side+px*tc.stride+xx]))
				}
			}
			if tc.local {
				mu := 0.0
				for _, v := range p {
					mu += v
				}
				mu /= float64(len(p))
				var ss float64
				for _, v := range p {
					ss += (v - mu) * (v - mu)
				}
				sd := math.Sqrt(ss / float64(len(p)))
				for i := range p {
					p[i] = (p[i] - mu) / sd
				}
			}
			return p
		}
		q := img()
		for _, k := range []int{1, 3} {
			got, gg := b.scores(q, side, k)
			if gg != g || len(got) != g*g {
				t.Fatalf("%+v: %d scores on a %d grid, want %d", tc, len(got), gg, g*g)
			}
			for py := range g {
				for px := range g {
					qp := cut(q, py, px)
					var ds []float64
					for _, n := range normals {
						for ny := range g {
							for nx := range g {
								var s float64
								for i, v := range cut(n, ny, nx) {
									s += (v - qp[i]) * (v - qp[i])
								}
								ds = append(ds, math.Sqrt(s))
							}
						}
					}
					slices.Sort(ds)
					want := mean(ds[:k])
					if d := math.Abs(got[py*g+px] - want); d > 1e-3*max(1, want) {
						t.Errorf("%+v k=%d: patch (%d, %d) scores %v, brute force %v", tc, k, py, px, got[py*g+px], want)
					}
				}
			}
		}
	}
}

// TestPixelMapCoversPatches checks that the pixel map gives every pixel the
// mean score of the patches covering it.
func TestPixelMapCoversPatches(t *testing.T) {
	// A 6×6 image, 4×4 patches every 2 pixels: a 2×2 grid.
	mp := pixelMap([]float64{1, 2, 3, 4}, 2, 6, 4, 2)
	for _, tc := range []struct {
		y, x int
		want float64
	}{{0, 0, 1}, {0, 5, 2}, {5, 0, 3}, {5, 5, 4}, {2, 2, 2.5}, {0, 2, 1.5}} {
		if got := mp[tc.y*6+tc.x]; got != tc.want {
			t.Errorf("pixel (%d, %d) = %v, want %v", tc.y, tc.x, got, tc.want)
		}
	}
}

// TestFusedComponentsReload trains a small model with every fusion
// component on and checks that its score is the weighted sum of the
// z-scores, that a saved model reloads to identical scores and heatmaps,
// and that the reloaded model reproduces the calibration scores.
func TestFusedComponentsReload(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	train := synthImages(rng, 30, testSide, false)
	cfg := testConfig()
	cfg.Epochs, cfg.SWAGEpochs = 4, 3
	cfg.PixelPatch, cfg.PixelStride, cfg.PixelLocal = 4, 2, false
	cfg.PixelWeight, cfg.NearestWeight, cfg.TextureWeight, cfg.MemoryWeight = 0.3, 0.3, 0.1, 0.5
	m, err := Train(context.Background(), train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := reload(t, m)
	if !reflect.DeepEqual(l.calib, m.calib) || l.TrainConfig().NearestWeight != 0.3 || l.TrainConfig().TextureWeight != 0.1 || l.TrainConfig().PixelStride != 2 {
		t.Errorf("loaded config %+v", l.TrainConfig())
	}
	images := append(synthImages(rng, 3, testSide, false), synthImages(rng, 3, testSide, true)...)
	for i, img := range images {
		want, err := m.Score(img)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Score(img)
		if err != nil {
			t.Fatal(err)
		}
		if got.Value != want.Value || got.Decision != want.Decision || !slices.Equal(got.Heatmap.Pix, want.Heatmap.Pix) {
			t.Errorf("image %d: loaded model scores %v %s, trained one %v %s", i, got.Value, got.Decision, want.Value, want.Decision)
		}
		c := want.Components
		if len(c) != 10 {
			t.Fatalf("image %d: components %v, want all five and their z-scores", i, c)
		}
		// (1−0.3−0.3−0.1)·(1−0.5) = 0.15 for each autoencoder score.
		sum := 0.15*c[ComponentReconstructionZ] + 0.15*c[ComponentMemoryZ] + 0.3*c[ComponentPixelZ] + 0.3*c[ComponentNearestZ] + 0.1*c[ComponentTextureZ]
		if math.Abs(sum-want.Value) > 1e-12 {
			t.Errorf("image %d: value %v, weighted z-scores %v", i, want.Value, sum)
		}
		if b, _ := m.BaselineScore(img); b != c[ComponentNearest] {
			t.Errorf("image %d: nearest component %v, baseline %v", i, c[ComponentNearest], b)
		}
		x, _ := prepareImage(img, testSide)
		g := meanGradient(standardise(m.config.input(x)), testSide)
		if want := math.Abs(g - m.calib.TextureCenter); math.Abs(c[ComponentTexture]-want) > 1e-12 || m.calib.TextureCenter <= 0 {
			t.Errorf("image %d: texture component %v, want |%v − center %v|", i, c[ComponentTexture], g, m.calib.TextureCenter)
		}
	}
	checkCalibration(t, m, l, train, cfg.Seed)
}

// TestMeanGradient checks the texture statistic on images whose gradient
// is known: flat, a horizontal ramp, and a checkerboard.
func TestMeanGradient(t *testing.T) {
	const side = 5
	flat := make([]float32, side*side)
	ramp := make([]float32, side*side)
	check := make([]float32, side*side)
	for y := range side {
		for x := range side {
			ramp[y*side+x] = 0.5 * float32(x)
			check[y*side+x] = float32((x + y) % 2)
		}
	}
	for _, tc := range []struct {
		name string
		img  []float32
		want float64
	}{
		{"flat", flat, 0},
		{"ramp", ramp, 0.5},                 // dx 0.5, dy 0 everywhere
		{"checkerboard", check, math.Sqrt2}, // |dx| = |dy| = 1 everywhere
	} {
		if got := meanGradient(tc.img, side); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: mean gradient %v, want %v", tc.name, got, tc.want)
		}
	}
}
