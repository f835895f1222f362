package detector

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// bruteKNN is the float64 reference: every distance computed directly.
func bruteKNN(q []float32, nq int, bank []float32, nb, d, k int) []float64 {
	k = min(k, nb)
	out := make([]float64, nq)
	for i := range nq {
		ds := make([]float64, nb)
		for j := range nb {
			var s float64
			for t := range d {
				v := float64(q[i*d+t]) - float64(bank[j*d+t])
				s += v * v
			}
			ds[j] = math.Sqrt(s)
		}
		slices.Sort(ds)
		out[i] = mean(ds[:k])
	}
	return out
}

// TestKNNScoresMatchFloat64 checks the tiled, parallel kNN against the
// float64 reference for banks smaller than, equal to and spanning several
// tiles, and k from 1 to more than the bank.
func TestKNNScoresMatchFloat64(t *testing.T) {
	for _, c := range []struct{ nq, nb, d, k int }{
		{5, 3, 4, 1}, {17, 100, 48, 1}, {256, knnBankTile, 48, 3}, {33, 3*knnBankTile + 17, 24, 5}, {4, 50, 8, 60},
	} {
		rng := rand.New(rand.NewSource(int64(c.nq*7 + c.nb)))
		q := randomRows(rng, c.nq, c.d)
		bank := randomRows(rng, c.nb, c.d)
		got := knnScores(q, c.nq, bank, rowNorms(bank, c.nb, c.d), c.nb, c.d, c.k)
		want := bruteKNN(q, c.nq, bank, c.nb, c.d, c.k)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-5*max(want[i], 1e-3) {
				t.Fatalf("%+v: query %d scores %v, float64 reference %v", c, i, got[i], want[i])
			}
		}
	}
}

// TestKNNScoresNearDuplicates checks the case the screening formula
// |q|²+|b|²−2q·b gets wrong in float32: features with a large common
// offset, queries equal to or a hair away from bank rows. A query that is
// a bank row must score exactly 0, and the others their true distance,
// however the product's sums were ordered.
func TestKNNScoresNearDuplicates(t *testing.T) {
	const nb, d = 3000, 48
	rng := rand.New(rand.NewSource(11))
	bank := make([]float32, nb*d)
	for i := range bank {
		bank[i] = 50 + 0.01*rng.Float32()
	}
	sq := rowNorms(bank, nb, d)
	const nq = 64
	q := make([]float32, nq*d)
	for i := range nq {
		j := rng.Intn(nb)
		copy(q[i*d:(i+1)*d], bank[j*d:(j+1)*d])
		if i%2 == 1 {
			q[i*d+rng.Intn(d)] += 1e-3 // a hair away from row j
		}
	}
	got := knnScores(q, nq, bank, sq, nb, d, 1)
	want := bruteKNN(q, nq, bank, nb, d, 1)
	for i := range nq {
		if i%2 == 0 && got[i] != 0 {
			t.Errorf("query %d is bank row: score %v, want exactly 0", i, got[i])
		}
		if math.Abs(got[i]-want[i]) > 1e-6+1e-4*want[i] {
			t.Errorf("query %d: score %v, float64 reference %v", i, got[i], want[i])
		}
	}
}

// BenchmarkKNN queries 256 patches of 48 values against a bank of 100,000,
// as scoring one film does.
func BenchmarkKNN(b *testing.B) {
	rng := rand.New(rand.NewSource(5))
	const nq, nb, d = 256, 100_000, 48
	bank := randomRows(rng, nb, d)
	q := randomRows(rng, nq, d)
	sq := rowNorms(bank, nb, d)
	for b.Loop() {
		knnScores(q, nq, bank, sq, nb, d, 1)
	}
}

// The kNN's screen gives the candidates the one-value-at-a-time loop
// gives, in order, on every length around the eight-lane step, with
// zeros, infinities and NaNs on either side of the comparison.
func TestKNNScreenMatchesLoop(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1, -1}
	pick := func() float32 {
		if rng.Intn(8) == 0 {
			return special[rng.Intn(len(special))]
		}
		return float32(rng.NormFloat64())
	}
	for n := range 70 {
		for range 20 {
			row, bound := make([]float32, n), make([]float32, n)
			for i := range row {
				row[i], bound[i] = pick(), pick()
			}
			c := pick()
			want := knnScreenGo(c, row, bound, make([]int32, n))
			screens := knnScreens()
			screens["in use"] = knnScreen
			for name, screen := range screens {
				got := screen(c, row, bound, make([]int32, n))
				if !slices.Equal(got, want) {
					t.Fatalf("%s, n %d: candidates %v, the loop finds %v", name, n, got, want)
				}
			}
		}
	}
}
