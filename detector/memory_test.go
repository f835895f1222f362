package detector

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"
)

func randomRows(rng *rand.Rand, n, d int) []float32 {
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	// A few clusters make the greedy order non-trivial.
	for i := range n {
		c := float32(i%4) * 3
		x[i*d] += c
	}
	return x
}

func dist(a, b []float32) float64 { return math.Sqrt(float64(sqDist(a, b))) }

// TestKCenterGreedy checks the k-center property: every row is within the
// returned radius of a selected row, each selected row was the farthest from
// those selected before it, and the radius is attained.
func TestKCenterGreedy(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const n, d, m = 500, 6, 40
	x := randomRows(rng, n, d)
	sel, radius := kCenterGreedy(x, n, d, m, 17)
	if len(sel) != m || sel[0] != 17 {
		t.Fatalf("selected %d rows starting at %d, want %d starting at 17", len(sel), sel[0], m)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(sel)))) != m {
		t.Fatal("a row was selected twice")
	}
	row := func(i int) []float32 { return x[i*d : (i+1)*d] }
	nearest := func(i int, centres []int) float64 {
		best := math.Inf(1)
		for _, c := range centres {
			best = min(best, dist(row(i), row(c)))
		}
		return best
	}
	var far float64
	for i := range n {
		r := nearest(i, sel)
		if r > radius+1e-5 {
			t.Fatalf("row %d is %v from the nearest centre, beyond the radius %v", i, r, radius)
		}
		far = max(far, r)
	}
	if math.Abs(far-radius) > 1e-5 {
		t.Errorf("radius %v, but the farthest row is %v from a centre", radius, far)
	}
	for k := 1; k < m; k++ {
		got := nearest(sel[k], sel[:k])
		for i := range n {
			if v := nearest(i, sel[:k]); v > got+1e-5 {
				t.Fatalf("step %d chose row %d at %v, but row %d is at %v", k, sel[k], got, i, v)
			}
		}
	}
}

// TestCoresetCoversProjected checks the coreset through its public path:
// the rows it returns are rows of the input, about the requested fraction,
// and the greedy selection over the projection keeps every row close.
func TestCoresetCoversProjected(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	const n, d = 800, 48
	x := randomRows(rng, n, d)
	bank := coreset(x, n, d, 0.1, 16, rand.New(rand.NewSource(5)))
	if len(bank) != 80*d {
		t.Fatalf("coreset of %d rows, want 80", len(bank)/d)
	}
	rows := map[string]bool{}
	for i := range n {
		rows[string(float32Bytes(x[i*d:(i+1)*d]))] = true
	}
	for j := range len(bank) / d {
		if !rows[string(float32Bytes(bank[j*d:(j+1)*d]))] {
			t.Fatalf("coreset row %d is not an input row", j)
		}
	}
	again := coreset(x, n, d, 0.1, 16, rand.New(rand.NewSource(5)))
	if !equalF32(bank, again) {
		t.Error("the same seed gave different coresets")
	}
	if got := coreset(x, n, d, 1, 16, rng); !equalF32(got, x) {
		t.Error("a fraction of 1 did not keep every row")
	}
}

// TestKNNMatchesBruteForce compares the blocked kNN with computing every
// distance directly, for block-straddling sizes and several k.
func TestKNNMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, tt := range []struct{ nq, nb, d, k int }{
		{1, 1, 3, 1}, {17, 130, 5, 1}, {40, 300, 24, 3}, {33, 257, 48, 5}, {5, 4, 2, 9},
	} {
		q := randomRows(rng, tt.nq, tt.d)
		bank := randomRows(rng, tt.nb, tt.d)
		got := knnScores(q, tt.nq, bank, rowNorms(bank, tt.nb, tt.d), tt.nb, tt.d, tt.k)
		for i := range tt.nq {
			ds := make([]float64, tt.nb)
			for j := range ds {
				ds[j] = dist(q[i*tt.d:(i+1)*tt.d], bank[j*tt.d:(j+1)*tt.d])
			}
			slices.Sort(ds)
			want := mean(ds[:min(tt.k, tt.nb)])
			if math.Abs(got[i]-want) > 1e-4*max(1, want) {
				t.Errorf("%+v query %d: kNN %v, brute force %v", tt, i, got[i], want)
			}
		}
	}
}

func TestPatchFeatures(t *testing.T) {
	// A constant fine map and a coarse map constant per channel give
	// constant features: pooling and resizing must preserve constants.
	const g, cf, cc = 4, 2, 3
	fine := make([]float32, cf*g*g)
	for c := range cf {
		for i := range g * g {
			fine[c*g*g+i] = float32(c + 1)
		}
	}
	coarse := make([]float32, cc*g*g/4)
	for c := range cc {
		for i := range g * g / 4 {
			coarse[c*g*g/4+i] = float32(10 * (c + 1))
		}
	}
	f := patchFeatures(fine, cf, coarse, cc, g)
	want := []float32{1, 2, 10, 20, 30}
	for p := range g * g {
		if !equalF32(f[p*5:(p+1)*5], want) {
			t.Fatalf("patch %d: features %v, want %v", p, f[p*5:(p+1)*5], want)
		}
	}
}

func TestTopMean(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	for _, tt := range []struct{ f, want float64 }{{1, 3}, {0, 5}, {0.4, 4.5}, {0.5, 4}} {
		if got := topMean(v, tt.f); got != tt.want {
			t.Errorf("topMean(%v) = %v, want %v", tt.f, got, tt.want)
		}
	}
}

func TestGaussianBlurKeepsConstants(t *testing.T) {
	x := slices.Repeat([]float64{0.3}, 64)
	for _, v := range gaussianBlur(x, 8, 1.5) {
		if math.Abs(v-0.3) > 1e-12 {
			t.Fatalf("blurred constant map holds %v", v)
		}
	}
}

// kCenterGreedyPlain is the greedy k-center rule as a plain loop over
// every row for every centre: the reference kCenterGreedy's pruning must
// match.
func kCenterGreedyPlain(x []float32, n, d, m, start int) ([]int, float64) {
	m = min(m, n)
	minD := make([]float32, n)
	for i := range minD {
		minD[i] = float32(math.Inf(1))
	}
	var sel []int
	next := start
	for len(sel) < m {
		sel = append(sel, next)
		c := x[next*d : (next+1)*d]
		next = -1
		for i := range n {
			if v := sqDist(x[i*d:(i+1)*d], c); v < minD[i] {
				minD[i] = v
			}
			if next < 0 || minD[i] > minD[next] {
				next = i
			}
		}
	}
	var r float32
	for _, v := range minD {
		r = max(r, v)
	}
	return sel, math.Sqrt(float64(r))
}

// The pruned selection is the plain loop's, row for row, on clustered,
// spread-out, duplicated and low-dimensional rows.
func TestKCenterGreedyMatchesPlainLoop(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	cases := []struct {
		name    string
		n, d, m int
		x       []float32
	}{
		{"clusters", 3000, 16, 300, randomRows(rng, 3000, 16)},
		{"uniform", 2000, 8, 400, func() []float32 {
			x := make([]float32, 2000*8)
			for i := range x {
				x[i] = rng.Float32()
			}
			return x
		}()},
		{"one dimension", 1000, 1, 200, randomRows(rng, 1000, 1)},
		{"duplicates", 600, 4, 300, func() []float32 {
			x := randomRows(rng, 600, 4)
			for i := 100; i < 600; i++ { // five hundred copies of twenty rows
				copy(x[i*4:(i+1)*4], x[(i%20)*4:(i%20+1)*4])
			}
			return x
		}()},
		{"all the rows", 300, 5, 300, randomRows(rng, 300, 5)},
	}
	for _, c := range cases {
		start := rng.Intn(c.n)
		want, wantR := kCenterGreedyPlain(c.x, c.n, c.d, c.m, start)
		got, gotR := kCenterGreedy(c.x, c.n, c.d, c.m, start)
		if !slices.Equal(got, want) || gotR != wantR {
			k := 0
			for k < min(len(got), len(want)) && got[k] == want[k] {
				k++
			}
			t.Errorf("%s: the selections part at %d of %d (radius %v, want %v)", c.name, k, c.m, gotR, wantR)
		}
	}
}

// BenchmarkKCenterGreedy selects a tenth of a memory bank's projected
// patches, at the size of a 1,000-normal training (800 films × 256 patches,
// projected to 128 values), scaled down by -benchtime's rows.
func BenchmarkKCenterGreedy(b *testing.B) {
	for _, n := range []int{20_000, 80_000} {
		rng := rand.New(rand.NewSource(1))
		x := randomRows(rng, n, 128)
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			for b.Loop() {
				kCenterGreedy(x, n, 128, n/10, 0)
			}
		})
		b.Run(fmt.Sprintf("plain/rows=%d", n), func(b *testing.B) {
			for b.Loop() {
				kCenterGreedyPlain(x, n, 128, n/10, 0)
			}
		})
	}
}

// gaussianBlurReference is gaussianBlur written plainly: every tap tested
// against the map's bounds.
func gaussianBlurReference(x []float64, side int, sigma float64) []float64 {
	r := max(1, int(math.Ceil(3*sigma)))
	kern := make([]float64, 2*r+1)
	for i := range kern {
		t := float64(i - r)
		kern[i] = math.Exp(-t * t / (2 * sigma * sigma))
	}
	pass := func(in []float64, horizontal bool) []float64 {
		out := make([]float64, len(in))
		for y := range side {
			for x := range side {
				var s, w float64
				for i, k := range kern {
					xx, yy := x, y
					if horizontal {
						xx += i - r
					} else {
						yy += i - r
					}
					if xx < 0 || xx >= side || yy < 0 || yy >= side {
						continue
					}
					s += k * in[yy*side+xx]
					w += k
				}
				out[y*side+x] = s / w
			}
		}
		return out
	}
	return pass(pass(x, true), false)
}

// The blur by tap ranges gives exactly the plain loop's values, on maps
// smaller and larger than the kernel.
func TestGaussianBlurMatchesPlainLoop(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, side := range []int{1, 2, 3, 7, 16, 64} {
		for _, sigma := range []float64{0.3, 1, 1.5, 4} {
			x := make([]float64, side*side)
			for i := range x {
				x[i] = rng.ExpFloat64()
			}
			got, want := gaussianBlur(x, side, sigma), gaussianBlurReference(x, side, sigma)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("side %d sigma %v: [%d] = %v, plain loop %v", side, sigma, i, got[i], want[i])
				}
			}
		}
	}
}
