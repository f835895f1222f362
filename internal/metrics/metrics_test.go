package metrics

import (
	"math"
	"math/rand"
	"testing"
)

func TestAUROC(t *testing.T) {
	tests := []struct {
		name   string
		scores []float64
		pos    []bool
		want   float64
	}{
		{"perfect", []float64{1, 2, 3, 4}, []bool{false, false, true, true}, 1},
		{"inverted", []float64{4, 3, 2, 1}, []bool{false, false, true, true}, 0},
		{"all tied", []float64{1, 1, 1, 1}, []bool{false, true, false, true}, 0.5},
		{"one swap", []float64{1, 3, 2, 4}, []bool{false, false, true, true}, 0.75},
		{"no positives", []float64{1, 2}, []bool{false, false}, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AUROC(tt.scores, tt.pos); math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("AUROC = %v, want %v", got, tt.want)
			}
		})
	}
}

// The rank formula must agree with counting every positive-negative pair.
func TestAUROCMatchesPairCount(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 20; trial++ {
		n := 5 + rng.Intn(40)
		s := make([]float64, n)
		p := make([]bool, n)
		for i := range s {
			s[i] = float64(rng.Intn(10)) // many ties
			p[i] = rng.Intn(2) == 0
		}
		var num, den float64
		for i := range s {
			for j := range s {
				if p[i] && !p[j] {
					den++
					switch {
					case s[i] > s[j]:
						num++
					case s[i] == s[j]:
						num += 0.5
					}
				}
			}
		}
		want := 0.5
		if den > 0 {
			want = num / den
		}
		if got := AUROC(s, p); math.Abs(got-want) > 1e-12 {
			t.Fatalf("trial %d: AUROC = %v, pair count gives %v", trial, got, want)
		}
	}
}

func TestAveragePrecision(t *testing.T) {
	tests := []struct {
		name   string
		scores []float64
		pos    []bool
		want   float64
	}{
		{"perfect", []float64{1, 2, 3, 4}, []bool{false, false, true, true}, 1},
		// scikit-learn: average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.8333…
		{"sklearn example", []float64{0.1, 0.4, 0.35, 0.8}, []bool{false, false, true, true}, 5.0 / 6},
		{"all tied", []float64{1, 1, 1, 1}, []bool{false, true, false, true}, 0.5},
		{"worst", []float64{4, 3, 2, 1}, []bool{false, false, true, true}, (0.5*1.0/3 + 0.5*2.0/4)},
		{"no positives", []float64{1, 2}, []bool{false, false}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AveragePrecision(tt.scores, tt.pos); math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("AveragePrecision = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfusion(t *testing.T) {
	var c Confusion
	for _, x := range []struct{ called, pos bool }{{true, true}, {true, true}, {true, false}, {false, true}, {false, false}, {false, false}} {
		c.Add(x.called, x.pos)
	}
	if c != (Confusion{TP: 2, FP: 1, TN: 2, FN: 1}) {
		t.Fatalf("counts %+v", c)
	}
	if c.Precision() != 2.0/3 || c.Recall() != 2.0/3 || c.F1() != 2.0/3 || c.FPR() != 1.0/3 {
		t.Errorf("precision %v recall %v F1 %v FPR %v", c.Precision(), c.Recall(), c.F1(), c.FPR())
	}
	if (Confusion{}).F1() != 0 {
		t.Error("F1 of nothing is not 0")
	}
}
