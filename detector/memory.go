package detector

import (
	"math"
	"math/rand"
	"runtime"
	"slices"
	"sync"
)

// The memory bank follows PatchCore (Roth et al., "Towards Total Recall in
// Industrial Anomaly Detection", CVPR 2022): patch features from two
// intermediate feature maps, each averaged over its 3×3 neighbourhood, the
// coarser map resized to the finer grid and concatenated; a bank subsampled
// by greedy k-center selection over a random projection; a patch scored by
// its distance to the nearest bank patches.

// patchFeatures turns two encoder feature maps into one feature vector per
// position of the finer grid. fine is (cf, g, g) and coarse (cc, g/2, g/2),
// both channel-major; the result is g·g rows of cf+cc values.
func patchFeatures(fine []float32, cf int, coarse []float32, cc int, g int) []float32 {
	a := avgPool3(fine, cf, g)
	b := resizeBilinear(avgPool3(coarse, cc, g/2), cc, g/2, g)
	d := cf + cc
	out := make([]float32, g*g*d)
	for p := range g * g {
		row := out[p*d : (p+1)*d]
		for c := range cf {
			row[c] = a[c*g*g+p]
		}
		for c := range cc {
			row[cf+c] = b[c*g*g+p]
		}
	}
	return out
}

// avgPool3 averages every position of a (c, s, s) map over its 3×3
// neighbourhood, dividing by the neighbours inside the map.
func avgPool3(x []float32, c, s int) []float32 {
	out := make([]float32, len(x))
	for ch := range c {
		m := x[ch*s*s : (ch+1)*s*s]
		o := out[ch*s*s : (ch+1)*s*s]
		for y := range s {
			for xx := range s {
				var sum float32
				var n int
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						yy, xc := y+dy, xx+dx
						if yy >= 0 && yy < s && xc >= 0 && xc < s {
							sum += m[yy*s+xc]
							n++
						}
					}
				}
				o[y*s+xx] = sum / float32(n)
			}
		}
	}
	return out
}

// resizeBilinear resizes each channel of a (c, s, s) map to (c, t, t) by
// bilinear interpolation with pixel centres aligned (PyTorch's
// align_corners=False).
func resizeBilinear(x []float32, c, s, t int) []float32 {
	out := make([]float32, c*t*t)
	type tap struct {
		i0, i1 int
		w1     float32
	}
	taps := make([]tap, t)
	for i := range t {
		f := (float64(i)+0.5)*float64(s)/float64(t) - 0.5
		f = min(max(f, 0), float64(s-1))
		i0 := int(math.Floor(f))
		i1 := min(i0+1, s-1)
		taps[i] = tap{i0, i1, float32(f - float64(i0))}
	}
	for ch := range c {
		m := x[ch*s*s : (ch+1)*s*s]
		o := out[ch*t*t : (ch+1)*t*t]
		for y, ty := range taps {
			for xx, tx := range taps {
				top := m[ty.i0*s+tx.i0]*(1-tx.w1) + m[ty.i0*s+tx.i1]*tx.w1
				bot := m[ty.i1*s+tx.i0]*(1-tx.w1) + m[ty.i1*s+tx.i1]*tx.w1
				o[y*t+xx] = top*(1-ty.w1) + bot*ty.w1
			}
		}
	}
	return out
}

// randomProjection maps n rows of d values to p values each with a Gaussian
// matrix of variance 1/p, which keeps distances within a small factor
// (Johnson–Lindenstrauss). With p ≥ d it returns x itself: a projection only
// pays when it shortens the vectors.
func randomProjection(x []float32, n, d, p int, rng *rand.Rand) ([]float32, int) {
	if p >= d {
		return x, d
	}
	w := make([]float32, d*p)
	std := 1 / math.Sqrt(float64(p))
	for i := range w {
		w[i] = float32(rng.NormFloat64() * std)
	}
	out := make([]float32, n*p)
	for i := range n {
		row := x[i*d : (i+1)*d]
		o := out[i*p : (i+1)*p]
		for k, v := range row {
			wr := w[k*p : (k+1)*p]
			for j := range o {
				o[j] += v * wr[j]
			}
		}
	}
	return out, p
}

// kCenterGreedy selects m of the n rows of x (d wide) by the greedy k-center
// rule: start from row start, then repeatedly add the row farthest from the
// rows selected so far (ties to the lowest index). It returns the selected
// rows in the order chosen and the covering radius: the largest distance
// from any row to its nearest selected row.
func kCenterGreedy(x []float32, n, d, m, start int) ([]int, float64) {
	m = min(m, n)
	minD := make([]float32, n)
	for i := range minD {
		minD[i] = float32(math.Inf(1))
	}
	sel := make([]int, 0, m)
	workers := min(max(runtime.GOMAXPROCS(0), 1), 8)
	chunk := (n + workers - 1) / workers
	next := start
	for len(sel) < m {
		sel = append(sel, next)
		c := x[next*d : (next+1)*d]
		best := make([]int, workers)
		var wg sync.WaitGroup
		for w := range workers {
			lo, hi := w*chunk, min((w+1)*chunk, n)
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := -1
				for i := lo; i < hi; i++ {
					if v := sqDist(x[i*d:(i+1)*d], c); v < minD[i] {
						minD[i] = v
					}
					if b < 0 || minD[i] > minD[b] {
						b = i
					}
				}
				best[w] = b
			}()
		}
		wg.Wait()
		next = -1
		for _, b := range best {
			if b >= 0 && (next < 0 || minD[b] > minD[next]) {
				next = b
			}
		}
	}
	var r float32
	for _, v := range minD {
		r = max(r, v)
	}
	return sel, math.Sqrt(float64(r))
}

// sqDist returns the squared Euclidean distance between a and b.
func sqDist(a, b []float32) float32 {
	var s float32
	for i := range a {
		t := a[i] - b[i]
		s += t * t
	}
	return s
}

// coreset subsamples n feature rows (d wide) to about fraction·n by greedy
// k-center over a random projection to projDim values, starting from a row
// drawn from rng, and returns the selected rows' full features.
func coreset(x []float32, n, d int, fraction float64, projDim int, rng *rand.Rand) []float32 {
	m := max(1, int(math.Round(fraction*float64(n))))
	if m >= n {
		return slices.Clone(x[:n*d])
	}
	px, pd := randomProjection(x, n, d, projDim, rng)
	sel, _ := kCenterGreedy(px, n, pd, m, rng.Intn(n))
	out := make([]float32, 0, m*d)
	for _, i := range sel {
		out = append(out, x[i*d:(i+1)*d]...)
	}
	return out
}

// rowNorms returns the squared norm of each of the n rows of x.
func rowNorms(x []float32, n, d int) []float32 {
	out := make([]float32, n)
	for i := range n {
		var s float32
		for _, v := range x[i*d : (i+1)*d] {
			s += v * v
		}
		out[i] = s
	}
	return out
}

// insertSorted puts v into the ascending slice t, dropping its largest
// value.
func insertSorted(t []float32, v float32) {
	i := len(t) - 1
	for i > 0 && t[i-1] > v {
		t[i] = t[i-1]
		i--
	}
	t[i] = v
}
