package learn

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// TestDetectorFeatures checks that the head reads the components'
// z-scores in name order, whatever the map's order, with unusable values
// as 0, followed by the embedding.
func TestDetectorFeatures(t *testing.T) {
	comps := map[string]float64{"texture": 9, "texture_z": 3, "memory_z": 1, "pixel": 7, "pixel_z": math.NaN(), "reconstruction_z": 2}
	got := HeadInput(comps, []float32{5, 6})
	if want := []float32{1, 0, 2, 3, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("head input %v, want %v (memory_z, pixel_z, reconstruction_z, texture_z, then the embedding)", got, want)
	}
	if f := DetectorFeatures(nil); len(f) != 0 {
		t.Errorf("features of no components: %v", f)
	}
}

// TestCombinerHeadSkipsTrainedCases checks that the cases the detector
// trained on do not fit the head: their detector features are biased (a
// training normal's patches are in the memory banks), so moving them must
// change nothing, while moving a fairly scored normal the same way must.
func TestCombinerHeadSkipsTrainedCases(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	var ls []Labelled
	for i := range 80 {
		abn := i%2 == 0
		emb := []float32{float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())}
		if abn {
			emb[0] += 1.5
		}
		ls = append(ls, Labelled{Det: rng.NormFloat64(), Embedding: emb, Abnormal: abn, DetTrained: !abn && i%4 == 1})
	}
	seed := []float64{-1, 0, 1, 0.5, -0.5}
	cfg := DefaultHeadConfig()
	a := FitCombiner(seed, 0.05, ls, cfg)
	if a.Head == nil || a.Input != HeadInputDetector {
		t.Fatalf("combiner %+v", a)
	}
	moved := slices.Clone(ls)
	var fairNormal int = -1
	for i := range moved {
		if moved[i].DetTrained {
			moved[i].Embedding = []float32{-40, 40, 40}
		} else if !moved[i].Abnormal && fairNormal < 0 {
			fairNormal = i
		}
	}
	b := FitCombiner(seed, 0.05, moved, cfg)
	if !slices.Equal(a.Head.W, b.Head.W) || a.Head.B != b.Head.B {
		t.Errorf("trained cases moved the head: %v %v → %v %v", a.Head.W, a.Head.B, b.Head.W, b.Head.B)
	}
	moved[fairNormal].Embedding = []float32{-40, 40, 40}
	if c := FitCombiner(seed, 0.05, moved, cfg); slices.Equal(a.Head.W, c.Head.W) {
		t.Error("premise: a fairly scored normal should move the head")
	}
}

// TestCombinerLegacyInput checks that a combiner saved before heads read
// detector features scores a HeadInput by its embedding (the tail), as it
// was fitted.
func TestCombinerLegacyInput(t *testing.T) {
	h := &Head{Mean: []float64{0, 0}, SD: []float64{1, 1}, W: []float64{1, -1}}
	legacy := &Combiner{DetSD: 1, Head: h, LogitSD: 1, Weight: 0.5}
	current := &Combiner{DetSD: 1, Head: h, LogitSD: 1, Weight: 0.5, Input: HeadInputDetector}
	in := HeadInput(map[string]float64{"memory_z": 4}, []float32{2, 1})
	if got, want := legacy.Score(0, in), 0.5*(2-1); got != want {
		t.Errorf("legacy combiner scores %v, want %v from the embedding alone", got, want)
	}
	if got, want := current.Score(0, in), 0.5*(4-2); got != want {
		t.Errorf("current combiner scores %v, want %v from the head's first two inputs", got, want)
	}
}

func TestHeldOutSeeds(t *testing.T) {
	ids := []string{"s1", "s2", "s3", "n1", "a1"}
	// s4 was never given (unreadable), so it is not a held-out seed; the
	// order is the held-out order; an index out of range is ignored.
	if got := HeldOutSeeds([]string{"s1", "s2", "s3", "s4"}, ids, []int{3, 2, 9, 0}); !slices.Equal(got, []string{"s3", "s1"}) {
		t.Errorf("held-out seeds %v, want [s3 s1]", got)
	}
}

// The head reaches the ridge solution also when its inputs are strongly
// correlated (neighbouring thumbnail cells) and the penalty is large: the
// penalised loss's gradient vanishes at the fitted weights.
func TestFitHeadConverges(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var normals, abnormals [][]float32
	for i := range 60 {
		ab := i%2 == 1
		base := rng.NormFloat64()
		if ab {
			base += 1
		}
		x := make([]float32, 80)
		for j := range x {
			x[j] = float32(base + 0.1*rng.NormFloat64())
		}
		if ab {
			abnormals = append(abnormals, x)
		} else {
			normals = append(normals, x)
		}
	}
	for _, l2 := range []float64{30, 100} {
		cfg := HeadConfig{L2: l2, Iterations: 300, MinPerClass: 5}
		h, err := FitHead(normals, abnormals, cfg)
		if err != nil {
			t.Fatal(err)
		}
		n := float64(len(normals) + len(abnormals))
		grad := make([]float64, len(h.W))
		var gb float64
		for c, xs := range [][][]float32{normals, abnormals} {
			for _, x := range xs {
				z := h.standardise(x)
				g := 0.5 / float64(len(xs)) * (sigmoid(dot(h.W, z)+h.B) - float64(c))
				gb += g
				for j, v := range z {
					grad[j] += g * v
				}
			}
		}
		var norm float64
		for j := range grad {
			g := grad[j] + l2*h.W[j]/n
			norm += g * g
		}
		if norm = math.Sqrt(norm + gb*gb); norm > 1e-4 {
			t.Errorf("L2 %v: the penalised loss's gradient is %.3g at the fitted head", l2, norm)
		}
	}
}
