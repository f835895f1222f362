package learn

import (
	"strings"
	"testing"
)

// The reasons the strategies write, restated with a report's numbers, give
// those numbers and none of the ranking scale's.
func TestRestateReason(t *testing.T) {
	u := 0.25
	cs := []Case{{InstanceID: "a", Score: 0.4, Threshold: 1.2, Uncertainty: &u}, {InstanceID: "b", Score: 2.5, Threshold: 1.2, Uncertainty: &u}}
	for _, st := range []Strategy{Boundary, Hybrid, Uncertainty} {
		picks, err := Select(cs, SelectOptions{Strategy: st, N: 2, Explore: -1})
		if err != nil || len(picks) == 0 {
			t.Fatalf("%s: %v %v", st, picks, err)
		}
		for _, p := range picks {
			got := RestateReason(p.Reason, 0.0123, 0.0456)
			if strings.Contains(got, "1.2") || strings.Contains(got, "0.4 ") || strings.Contains(got, "2.5") {
				t.Errorf("%s: %q keeps the ranking scale's numbers", st, got)
			}
			if st != Uncertainty && (!strings.Contains(got, "0.0123") || !strings.Contains(got, "0.0456")) {
				t.Errorf("%s: %q lacks the report's numbers", st, got)
			}
		}
	}
	if got := RestateReason("score 3 is 1 from the threshold 2", 0.5, 0.7); got != "score 0.5 is 0.2 below the threshold 0.7" {
		t.Errorf("boundary: %q", got)
	}
	if got := RestateReason("score 3 is 1 from the threshold 2", 0.9, 0.7); !strings.Contains(got, "above") {
		t.Errorf("above: %q", got)
	}
	for _, r := range []string{"near the threshold", "drawn at random", "far from every case already known (k-center pick 1)"} {
		if got := RestateReason(r, 1, 2); got != r {
			t.Errorf("%q became %q", r, got)
		}
	}
}
