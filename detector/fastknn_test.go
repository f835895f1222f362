package detector

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// TestKNNScoresParallelMatchesFloat64 checks the tiled, parallel kNN against
// a brute-force float64 reference and against knnScores, for banks smaller
// than, equal to and spanning several tiles, and k from 1 to more than a
// tile's worth of rows.
func TestKNNScoresParallelMatchesFloat64(t *testing.T) {
	for _, c := range []struct{ nq, nb, d, k int }{
		{5, 3, 4, 1}, {17, 100, 48, 1}, {256, knnBankTile, 48, 3}, {33, 3*knnBankTile + 17, 24, 5}, {4, 50, 8, 60},
	} {
		rng := rand.New(rand.NewSource(int64(c.nq*7 + c.nb)))
		q := make([]float32, c.nq*c.d)
		bank := make([]float32, c.nb*c.d)
		for i := range q {
			q[i] = rng.Float32()
		}
		for i := range bank {
			bank[i] = rng.Float32()
		}
		sq := rowNorms(bank, c.nb, c.d)
		got := knnScoresParallel(q, c.nq, bank, sq, c.nb, c.d, c.k)
		old := knnScores(q, c.nq, bank, sq, c.nb, c.d, c.k)
		k := min(c.k, c.nb)
		for i := range c.nq {
			ds := make([]float64, c.nb)
			for j := range c.nb {
				var s float64
				for t := range c.d {
					v := float64(q[i*c.d+t]) - float64(bank[j*c.d+t])
					s += v * v
				}
				ds[j] = math.Sqrt(s)
			}
			slices.Sort(ds)
			var want float64
			for _, v := range ds[:k] {
				want += v
			}
			want /= float64(k)
			if math.Abs(got[i]-want) > 1e-3*max(want, 1e-3) {
				t.Fatalf("nq %d nb %d d %d k %d: query %d scores %v, float64 reference %v", c.nq, c.nb, c.d, c.k, i, got[i], want)
			}
			if math.Abs(got[i]-old[i]) > 1e-3*max(old[i], 1e-3) {
				t.Fatalf("nq %d nb %d d %d k %d: query %d scores %v, knnScores %v", c.nq, c.nb, c.d, c.k, i, got[i], old[i])
			}
		}
	}
}
