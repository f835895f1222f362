package detector

import (
	"math"
	"math/rand"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// chestPhantom draws an upright chest-like film: a bright body with two
// dark lung fields either side of a bright mediastinum, a bright
// diaphragm below, dark air outside the body, with the size, position,
// exposure and noise varying from film to film.
func chestPhantom(rng *rand.Rand, side int) []float32 {
	s := float64(side)
	x := make([]float32, side*side)
	body := 0.42 + 0.06*rng.Float64()
	lungW, lungH := s*(0.16+0.03*rng.Float64()), s*(0.30+0.05*rng.Float64())
	cx, cy := s*(0.5+0.03*rng.NormFloat64()), s*(0.45+0.03*rng.NormFloat64())
	gap := s * (0.2 + 0.03*rng.Float64())
	dark := 0.12 + 0.05*rng.Float64()
	for y := 0; y < side; y++ {
		for c := 0; c < side; c++ {
			fx, fy := float64(c)+0.5, float64(y)+0.5
			v := 0.05 // air
			if math.Abs(fx-cx) < s*0.42 {
				v = body
			}
			for _, lx := range []float64{cx - gap, cx + gap} {
				dx, dy := (fx-lx)/lungW, (fy-cy)/lungH
				if d := dx*dx + dy*dy; d < 1 {
					v = dark + (body-dark)*d*d
				}
			}
			if fy > cy+lungH*0.9 && math.Abs(fx-cx) < s*0.42 {
				v = body + 0.2
			}
			v += 0.02 * rng.NormFloat64()
			x[y*side+c] = float32(min(max(v, 0), 1))
		}
	}
	return x
}

func TestAppearanceProfile(t *testing.T) {
	const side = 32
	rng := rand.New(rand.NewSource(3))
	var train [][]float32
	for range 80 {
		train = append(train, chestPhantom(rng, side))
	}
	p, err := newAppearanceProfile(train, side)
	if err != nil {
		t.Fatal(err)
	}
	out := 0
	for range 60 {
		if dev, why := p.check(chestPhantom(rng, side), side); why != "" {
			out++
			t.Logf("fresh normal out of distribution: %.2f: %s", dev, why)
		}
	}
	if out > 1 {
		t.Errorf("%d of 60 fresh normals out of distribution, want at most 1", out)
	}
	mapped := func(x []float32, f func(float32) float32) []float32 {
		o := make([]float32, len(x))
		for i, v := range x {
			o[i] = f(v)
		}
		return o
	}
	cases := map[string]func(x []float32) []float32{
		"black":    func(x []float32) []float32 { return make([]float32, len(x)) },
		"white":    func(x []float32) []float32 { return mapped(x, func(float32) float32 { return 1 }) },
		"noise":    func(x []float32) []float32 { return mapped(x, func(float32) float32 { return rng.Float32() }) },
		"inverted": func(x []float32) []float32 { return mapped(x, func(v float32) float32 { return 1 - v }) },
		"rotated": func(x []float32) []float32 {
			o := make([]float32, len(x))
			for y := 0; y < side; y++ {
				for c := 0; c < side; c++ {
					o[c*side+(side-1-y)] = x[y*side+c]
				}
			}
			return o
		},
		"cropped": func(x []float32) []float32 { return zoom(x, side, 0.4) },
	}
	for name, f := range cases {
		missed := 0
		for range 20 {
			if _, why := p.check(f(chestPhantom(rng, side)), side); why == "" {
				missed++
			}
		}
		if missed > 0 {
			t.Errorf("%s: %d of 20 in distribution, want none", name, missed)
		}
	}
	if p.OrientationLimit >= 0 || p.FramingLimit >= 0 {
		t.Errorf("relative limits %.3f and %.3f must be negative", p.OrientationLimit, p.FramingLimit)
	}
}

func TestScoreOutOfDistribution(t *testing.T) {
	m := sharedModel(t)
	if m.calib.Appearance == nil {
		t.Fatal("a trained model has no appearance profile")
	}
	black := sentinel.NewImage(testSide, testSide)
	s, err := m.Score(black)
	if err != nil {
		t.Fatal(err)
	}
	if s.Decision != sentinel.DecisionOutOfDistribution {
		t.Errorf("a black image is %s (%s), want out_of_distribution", s.Decision, s.Reason)
	}
	if s.Appearance == nil || s.Appearance.Deviation <= s.Appearance.Limit {
		t.Errorf("a black image's appearance %+v is within its limit", s.Appearance)
	}
	ood := 0
	for _, img := range shared.normals {
		s, err := m.Score(img)
		if err != nil {
			t.Fatal(err)
		}
		if s.Decision == sentinel.DecisionOutOfDistribution {
			ood++
		}
	}
	if ood > 1 {
		t.Errorf("%d of %d held-out synthetic normals out of distribution", ood, len(shared.normals))
	}
	// The profile survives a save and a load.
	l := reload(t, m)
	if l.calib.Appearance == nil || l.calib.Appearance.Limit != m.calib.Appearance.Limit {
		t.Error("the appearance profile did not survive a save and load")
	}
}

// TestAppearanceProfileOfOtherFeatures checks that a profile saved with
// other features (another version's) is not applied, rather than
// misapplied or panicking.
func TestAppearanceProfileOfOtherFeatures(t *testing.T) {
	const side = 32
	rng := rand.New(rand.NewSource(4))
	var train [][]float32
	for range 30 {
		train = append(train, chestPhantom(rng, side))
	}
	p, err := newAppearanceProfile(train, side)
	if err != nil {
		t.Fatal(err)
	}
	p.Median, p.Scale = p.Median[:len(p.Median)-1], p.Scale[:len(p.Scale)-1]
	if dev, why := p.check(make([]float32, side*side), side); dev != 0 || why != "" {
		t.Errorf("a profile of other features judged a black film: %v %q", dev, why)
	}
}
