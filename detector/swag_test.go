package detector

import (
	"math"
	"math/rand"
	"testing"
)

// swagReference computes SWAG's moments and deviations from all collected
// vectors at once, in float64, straight from the definitions: θ̄ and θ̄₂ as
// plain averages, and the i-th deviation as θᵢ minus the average of the
// first i vectors.
func swagReference(thetas [][]float32, rank int) (mean, sq []float64, dev [][]float64) {
	dim := len(thetas[0])
	mean = make([]float64, dim)
	sq = make([]float64, dim)
	for i, th := range thetas {
		for j, v := range th {
			mean[j] += float64(v)
			sq[j] += float64(v) * float64(v)
		}
		d := make([]float64, dim)
		for j := range d {
			d[j] = float64(th[j]) - mean[j]/float64(i+1)
		}
		dev = append(dev, d)
	}
	for j := range mean {
		mean[j] /= float64(len(thetas))
		sq[j] /= float64(len(thetas))
	}
	if len(dev) > rank {
		dev = dev[len(dev)-rank:]
	}
	return mean, sq, dev
}

// toyThetas returns n weight vectors of a toy model of dim weights: a drift
// along one direction plus noise, so that both the diagonal and the
// low-rank part matter.
func toyThetas(rng *rand.Rand, n, dim int) [][]float32 {
	dir := make([]float64, dim)
	for j := range dir {
		dir[j] = rng.NormFloat64()
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, dim)
		for j := range out[i] {
			out[i][j] = float32(0.5 + 0.1*float64(i)*dir[j]/float64(n) + 0.01*rng.NormFloat64())
		}
	}
	return out
}

func TestSWAGMomentsMatchReference(t *testing.T) {
	for _, tt := range []struct{ n, rank int }{{1, 20}, {5, 20}, {7, 3}, {30, 20}} {
		rng := rand.New(rand.NewSource(int64(tt.n)))
		thetas := toyThetas(rng, tt.n, 11)
		s := newSWAG(11, tt.rank)
		for _, th := range thetas {
			if err := s.collect(th); err != nil {
				t.Fatal(err)
			}
		}
		mean, sq, dev := swagReference(thetas, tt.rank)
		if s.N != tt.n || len(s.Dev) != min(tt.n, tt.rank) || len(dev) != len(s.Dev) {
			t.Fatalf("n=%d K=%d: %d collected, %d deviations", tt.n, tt.rank, s.N, len(s.Dev))
		}
		for j := range mean {
			if math.Abs(s.Mean[j]-mean[j]) > 1e-13 || math.Abs(s.SqMean[j]-sq[j]) > 1e-13 {
				t.Errorf("n=%d weight %d: moments %v %v, reference %v %v", tt.n, j, s.Mean[j], s.SqMean[j], mean[j], sq[j])
			}
		}
		for i := range dev {
			for j := range dev[i] {
				// Deviations are stored in float32.
				if math.Abs(float64(s.Dev[i][j])-dev[i][j]) > 1e-6 {
					t.Errorf("n=%d deviation %d weight %d: %v, reference %v", tt.n, i, j, s.Dev[i][j], dev[i][j])
				}
			}
		}
	}
}

func TestSWAGSampleMatchesReference(t *testing.T) {
	const dim, rank, scale = 9, 20, 0.5
	thetas := toyThetas(rand.New(rand.NewSource(3)), 12, dim)
	s := newSWAG(dim, rank)
	for _, th := range thetas {
		s.collect(th)
	}
	mean, sq, _ := swagReference(thetas, rank)
	got := s.sample(rand.New(rand.NewSource(42)), scale)

	// The reference draws z₁ and then z₂ from the same seed and applies
	// θ̃ = θ̄ + √s (√var ⊙ z₁ + D z₂ / √(K−1)) with the stored deviations.
	rng := rand.New(rand.NewSource(42))
	z1 := make([]float64, dim)
	for j := range z1 {
		z1[j] = rng.NormFloat64()
	}
	z2 := make([]float64, len(s.Dev))
	for i := range z2 {
		z2[i] = rng.NormFloat64()
	}
	for j := range dim {
		v := math.Max(sq[j]-mean[j]*mean[j], 1e-30)
		var low float64
		for i, d := range s.Dev {
			low += float64(d[j]) * z2[i]
		}
		want := mean[j] + math.Sqrt(scale)*(math.Sqrt(v)*z1[j]+low/math.Sqrt(rank-1))
		if math.Abs(got[j]-want) > 1e-9 {
			t.Errorf("weight %d: sample %v, reference %v", j, got[j], want)
		}
	}
}

// TestSWAGSampleCovariance checks the sampler's distribution: over many
// samples, the mean is θ̄ and the covariance s·(diag(var) + DDᵀ/(K−1)).
func TestSWAGSampleCovariance(t *testing.T) {
	const dim, rank, scale, n = 4, 5, 0.5, 40000
	s := newSWAG(dim, rank)
	for _, th := range toyThetas(rand.New(rand.NewSource(9)), 8, dim) {
		s.collect(th)
	}
	v := s.variance()
	want := func(a, b int) float64 {
		var c float64
		for _, d := range s.Dev {
			c += float64(d[a]) * float64(d[b])
		}
		c /= rank - 1
		if a == b {
			c += v[a]
		}
		return scale * c
	}
	rng := rand.New(rand.NewSource(1))
	sum := make([]float64, dim)
	cov := make([]float64, dim*dim)
	for range n {
		x := s.sample(rng, scale)
		for a := range dim {
			da := x[a] - s.Mean[a]
			sum[a] += da
			for b := range dim {
				cov[a*dim+b] += da * (x[b] - s.Mean[b])
			}
		}
	}
	for a := range dim {
		sd := math.Sqrt(want(a, a))
		if m := sum[a] / n; math.Abs(m) > 5*sd/math.Sqrt(n) {
			t.Errorf("weight %d: sample mean off θ̄ by %v (sd %v)", a, m, sd)
		}
		for b := range dim {
			got, w := cov[a*dim+b]/n, want(a, b)
			if tol := 0.05 * math.Sqrt(want(a, a)*want(b, b)); math.Abs(got-w) > tol {
				t.Errorf("covariance (%d,%d) %v, want %v ± %v", a, b, got, w, tol)
			}
		}
	}
}

func TestSWAGVarianceClamped(t *testing.T) {
	s := newSWAG(2, 20)
	s.collect([]float32{1, 2})
	s.collect([]float32{1, 2})
	for j, v := range s.variance() {
		if v != 1e-30 {
			t.Errorf("weight %d: variance %v of constant weights, want the clamp 1e-30", j, v)
		}
	}
	if err := s.collect([]float32{1}); err == nil {
		t.Error("collecting a vector of the wrong length succeeded")
	}
}

func TestSWAGSamplesDeterministic(t *testing.T) {
	arch := Architecture{InputSize: 16, Channels: []int{2, 2}}
	init := arch.initParams(rand.New(rand.NewSource(1)), 0.5)
	s := newSWAG(len(flatten(init)), 20)
	for _, th := range toyThetas(rand.New(rand.NewSource(2)), 4, len(flatten(init))) {
		s.collect(th)
	}
	a := swagSamples(s, init, 3, 0.5, 7)
	b := swagSamples(s, init, 3, 0.5, 7)
	for i := range a {
		if fa, fb := flatten(a[i]), flatten(b[i]); !equalF32(fa, fb) {
			t.Fatalf("sample %d differs between two draws with the same seed", i)
		}
	}
	if equalF32(flatten(a[0]), flatten(a[1])) {
		t.Error("two samples are identical")
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
