package learn

import (
	"math"
	"math/rand"
	"testing"
)

// A case small enough to work by hand: positives 2 and 4, negatives 1 and
// 3. The components over the positives are 1/2 and 1, over the negatives
// 1 and 1/2: ROC-AUC 3/4, each variance 1/8, standard error √(1/16+1/16).
func TestAUCIntervalByHand(t *testing.T) {
	auc, se, lo, hi := AUCInterval([]float64{1, 2, 3, 4}, []bool{false, true, false, true}, 1.96)
	wantSE := math.Sqrt(0.125)
	if math.Abs(auc-0.75) > 1e-12 || math.Abs(se-wantSE) > 1e-12 {
		t.Fatalf("AUC %v ± %v, want 0.75 ± %v", auc, se, wantSE)
	}
	if math.Abs(lo-(0.75-1.96*wantSE)) > 1e-12 || hi != 1 {
		t.Fatalf("interval [%v, %v], want [%v, 1] (clipped)", lo, hi, 0.75-1.96*wantSE)
	}
	// One case of a class: an AUC but no standard error; none of a class:
	// nothing.
	if auc, se, _, _ := AUCInterval([]float64{1, 2, 3}, []bool{false, false, true}, 1.96); auc != 1 || !math.IsNaN(se) {
		t.Fatalf("one positive: %v ± %v, want 1 ± NaN", auc, se)
	}
	if auc, _, _, _ := AUCInterval([]float64{1, 2}, []bool{false, false}, 1.96); !math.IsNaN(auc) {
		t.Fatalf("no positive: AUC %v, want NaN", auc)
	}
}

// On random scores the single-curve interval agrees with the ROC-AUC, with
// the paired method against a constant scoring (whose components do not
// vary), and with a bootstrap over the cases.
func TestAUCIntervalMatchesBootstrap(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	const n = 80
	s := make([]float64, n)
	pos := make([]bool, n)
	for i := range n {
		pos[i] = i%3 == 0
		s[i] = rng.NormFloat64()
		if pos[i] {
			s[i] += 0.8
		}
	}
	auc, se, lo, hi := AUCInterval(s, pos, 1.96)
	if want := AUROC(s, pos); math.Abs(auc-want) > 1e-12 {
		t.Fatalf("AUC %v, AUROC %v", auc, want)
	}
	if _, pse := PairedAUCDiff(s, make([]float64, n), pos); math.Abs(se-pse) > 1e-12 {
		t.Fatalf("standard error %v, paired against a constant %v", se, pse)
	}
	if !(lo < auc && auc < hi) || math.Abs((hi-lo)-2*1.96*se) > 1e-12 {
		t.Fatalf("interval [%v, %v] around %v ± %v", lo, hi, auc, se)
	}
	var boots []float64
	for range 2000 {
		var bs []float64
		var bp []bool
		for range n {
			j := rng.Intn(n)
			bs, bp = append(bs, s[j]), append(bp, pos[j])
		}
		boots = append(boots, AUROC(bs, bp))
	}
	_, boot := meanSD(boots)
	if !(se > 0.8*boot && se < 1.25*boot) {
		t.Fatalf("DeLong standard error %v, bootstrap %v", se, boot)
	}
}
