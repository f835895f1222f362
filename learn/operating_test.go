package learn

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

func TestWilson(t *testing.T) {
	// Reference values from the Wilson score formula at z = 1.96.
	for _, c := range []struct {
		k, n   int
		lo, hi float64
	}{
		{20, 20, 0.8389, 1},
		{0, 10, 0, 0.2775},
		{50, 100, 0.4038, 0.5962},
		{190, 190, 0.9802, 1},
	} {
		lo, hi := Wilson(c.k, c.n, 1.959964)
		if math.Abs(lo-c.lo) > 5e-4 || math.Abs(hi-c.hi) > 5e-4 {
			t.Errorf("Wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", c.k, c.n, lo, hi, c.lo, c.hi)
		}
	}
}

func TestOperating(t *testing.T) {
	scores := []float64{0.1, 0.2, 0.9, 0.5, 0.7, 0.3}
	abnormal := []bool{false, false, false, true, true, true}
	op := Operating(scores, abnormal, 0.6, 0.25)
	if op.Normals != 3 || op.Abnormals != 3 {
		t.Fatalf("counts %d normal, %d abnormal", op.Normals, op.Abnormals)
	}
	// Flagged above 0.6: the abnormal 0.7 (1 of 3); normals not flagged: 0.1, 0.2 (2 of 3);
	// abnormals above the normal limit 0.25: 0.5, 0.7, 0.3 (3 of 3).
	if math.Abs(op.Sensitivity-1.0/3) > 1e-12 || math.Abs(op.Specificity-2.0/3) > 1e-12 || op.NormalSensitivity != 1 {
		t.Errorf("sensitivity %v, specificity %v, normal sensitivity %v", op.Sensitivity, op.Specificity, op.NormalSensitivity)
	}
	if op.NormalSensitivityCI[0] >= 0.98 {
		t.Errorf("3 of 3 bounds the rule-out sensitivity at %.3f, which must not reach 0.98", op.NormalSensitivityCI[0])
	}
	empty := Operating(nil, nil, 0, 0)
	if !math.IsNaN(empty.Sensitivity) || empty.SensitivityCI != [2]float64{0, 1} {
		t.Errorf("no cases: %+v", empty)
	}
}

// With RequireBetter a candidate becomes current on its own only when the
// holdout ranks and the paired test finds it better; otherwise it is held
// for a person, never refused for want of evidence.
func TestPromoteRequiresBetter(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	const n = 120
	pos := make([]bool, n)
	weak, same, strong := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		pos[i] = i%2 == 1
		noise := rng.NormFloat64()
		lift := 0.0
		if pos[i] {
			lift = 1
		}
		weak[i] = lift*0.3 + noise
		same[i] = lift*0.3 + noise + 0.01*rng.NormFloat64()
		strong[i] = lift*2.5 + noise
	}
	ev := func(s []float64) Evaluation { return Evaluate(s, pos, []float64{0}, 10) }
	cfg := PromotionConfig{Tolerance: 0.02, HoldoutMinPerClass: 50, Significance: 0.05, RequireBetter: true}
	cur := ev(weak)
	if v := Promote(ev(strong), &cur, cfg); !v.Promote || v.Held {
		t.Errorf("a clearly better candidate: %+v", v)
	}
	if v := Promote(ev(same), &cur, cfg); v.Promote || !v.Held || !strings.Contains(v.Reason, "not shown better") {
		t.Errorf("an equal candidate: %+v, want held", v)
	}
	small := cfg
	small.HoldoutMinPerClass = 100
	if v := Promote(ev(strong), &cur, small); v.Promote || !v.Held || !strings.Contains(v.Reason, "too small") {
		t.Errorf("a better candidate on a holdout below the minimum: %+v, want held", v)
	}
	if v := Promote(ev(strong), nil, cfg); !v.Promote {
		t.Errorf("the first model: %+v", v)
	}
	worse := ev(weak)
	better := ev(strong)
	if v := Promote(worse, &better, cfg); v.Promote || v.Held {
		t.Errorf("a worse candidate: %+v, want refused", v)
	}
}
