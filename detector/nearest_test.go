package detector

import (
	"context"
	"math"
	"math/rand"
	"testing"
)

// bruteShifted is the shift-tolerant nearest-normal distance written out
// loop by loop in float64: every shift of z's centre against every
// normal's centre.
func bruteShifted(z []float32, normals [][]float32, side, s int) float64 {
	best := math.Inf(1)
	for _, n := range normals {
		for dy := -s; dy <= s; dy++ {
			for dx := -s; dx <= s; dx++ {
				var d float64
				for y := s; y < side-s; y++ {
					for x := s; x < side-s; x++ {
						v := float64(z[(y+dy)*side+x+dx]) - float64(n[y*side+x])
						d += v * v
					}
				}
				best = min(best, d)
			}
		}
	}
	return math.Sqrt(best)
}

func TestCentreBankDistance(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const side = 16
	img := func() []float32 {
		z := make([]float32, side*side)
		for i := range z {
			z[i] = float32(rng.NormFloat64())
		}
		return z
	}
	var normals [][]float32
	for range 40 {
		normals = append(normals, img())
	}
	for _, s := range []int{1, 2, 3} {
		b := newCentreBank(normals, side, s)
		for q := range 5 {
			z := img()
			if q == 0 {
				// A normal moved by (s, −1) pixels (wrapping around): its
				// centre matches the normal's exactly at one shift.
				n := normals[7]
				for y := range side {
					for x := range side {
						z[y*side+x] = n[((y+side+1)%side)*side+(x-s+side)%side]
					}
				}
			}
			got, want := b.distance(z), bruteShifted(z, normals, side, s)
			if math.Abs(got-want) > 1e-4*max(1, want) {
				t.Errorf("shift %d, query %d: distance %v, want %v", s, q, got, want)
			}
			if q == 0 && got > 1e-3 {
				t.Errorf("shift %d: a shifted normal is %v from the bank, want 0", s, got)
			}
		}
	}
	if b := newCentreBank(normals, side, 0); b.n != 0 {
		t.Errorf("shift 0 built a bank of %d", b.n)
	}
}

// TestNearestShiftModel trains a model whose fused score includes the
// shifted nearest-normal distance and checks that its component is the
// bank's distance, that the setting survives a save and load, and that the
// loaded model reproduces the calibration scores.
func TestNearestShiftModel(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	train := synthImages(rng, 30, testSide, false)
	cfg := testConfig()
	cfg.Epochs, cfg.SWAGEpochs, cfg.SWAGSamples = 4, 3, 2
	cfg.PixelWeight, cfg.NearestWeight, cfg.NearestShift = 0.3, 0.3, 2
	m, err := Train(context.Background(), train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	probe := synthImages(rng, 1, testSide, true)[0]
	s, err := m.Score(probe)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := prepareImage(probe, testSide)
	want := bruteShifted(standardise(m.config.input(x)), m.normalsStd, testSide, 2)
	if got := s.Components[ComponentNearest]; math.Abs(got-want) > 1e-4*want {
		t.Errorf("nearest component %v, want the shifted distance %v", got, want)
	}
	l := reload(t, m)
	if l.TrainConfig().NearestShift != 2 {
		t.Fatalf("loaded NearestShift %d, want 2", l.TrainConfig().NearestShift)
	}
	checkCalibration(t, m, l, train, cfg.Seed)
}
