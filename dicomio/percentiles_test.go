package dicomio

import (
	"math/rand"
	"testing"
)

// storedPercentiles, whose histogram is counted in bands on every core
// for a large frame, gives what sorting every value gives: on frames
// large enough to be split and small enough not to be, signed and
// unsigned, 12 and 16 bits, and with a range too wide to be split.
func TestStoredPercentilesMatchSort(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, c := range []struct {
		n      int
		bits   int
		signed bool
	}{{1000, 12, false}, {600_000, 12, false}, {600_000, 16, true}, {300_000, 16, false}, {200_000, 20, false}} {
		l := layout{bitsStored: c.bits, signed: c.signed}
		s := make([]int32, c.n)
		vals := make([]float64, c.n)
		for i := range s {
			half := int32(1) << (c.bits - 1)
			v := int32(rng.NormFloat64() * float64(half/4))
			if c.signed {
				v = min(max(v, -half), half-1)
			} else {
				v = min(max(v+half, 0), 2*half-1)
			}
			s[i], vals[i] = v, float64(v)
		}
		gotLo, gotHi := storedPercentiles(s, l, lowPercentile, highPercentile)
		wantLo, wantHi := percentiles(vals, lowPercentile, highPercentile)
		if gotLo != wantLo || gotHi != wantHi {
			t.Errorf("%d samples of %d bits, signed %v: %v – %v, sorting gives %v – %v", c.n, c.bits, c.signed, gotLo, gotHi, wantLo, wantHi)
		}
	}
}
