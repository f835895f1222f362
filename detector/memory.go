package detector

import (
	"math"
	"math/rand"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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
//
// Each row belongs to its nearest selected row (its centre), and each
// centre knows the farthest of its rows. A new centre c can only take rows
// from a centre k within twice that distance of c (the triangle
// inequality: a row x of k has |x−c| ≥ |k−c| − |x−k|), and only rows
// within half of |k−c| of it, so once the centres cover the rows closely
// most groups, and most rows of the rest, are never compared with c. The
// distances that are compared are the plain loop's, so the selection is
// the same; a margin keeps rounding from ever skipping a row that would
// have moved.
func kCenterGreedy(x []float32, n, d, m, start int) ([]int, float64) {
	m = min(m, n)
	row := func(i int) []float32 { return x[i*d : (i+1)*d] }
	minD := make([]float32, n)
	owner := make([]int32, n) // the index in sel of each row's centre
	groups := [][]int32{make([]int32, n)}
	for i := range n {
		minD[i] = sqDist(row(i), row(start))
		groups[0][i] = int32(i)
	}
	sel := []int{start}
	rad := []float32{0} // the squared distance of each centre's farthest row
	far := []int32{0}   // that row (ties to the lowest index)
	rad[0], far[0] = farthest(groups[0], minD, owner, 0)
	workers := min(max(runtime.GOMAXPROCS(0), 1), 8)
	for len(sel) < m {
		// The next centre: the farthest row of all, the lowest index on
		// ties.
		best := 0
		for k := 1; k < len(rad); k++ {
			if rad[k] > rad[best] || (rad[k] == rad[best] && far[k] < far[best]) {
				best = k
			}
		}
		next := int(far[best])
		knew := int32(len(sel))
		sel = append(sel, next)
		c := row(next)
		// The groups a row of which may move to the new centre, shared out
		// among the workers; each collects the rows it moves.
		var todo atomicCounter
		moved := make([][]int32, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					k := todo.next()
					if k >= int(knew) {
						return
					}
					dc := math.Sqrt(float64(sqDist(row(sel[k]), c)))
					if dc > reach(rad[k]) {
						continue // every row of k is nearer its centre than c
					}
					kept := groups[k][:0]
					for _, i := range groups[k] {
						if owner[i] != int32(k) {
							continue // moved to a later centre already
						}
						if dc <= reach(minD[i]) {
							if v := sqDist(row(int(i)), c); v < minD[i] {
								minD[i], owner[i] = v, knew
								moved[w] = append(moved[w], i)
								continue
							}
						}
						kept = append(kept, i)
					}
					groups[k] = kept
					rad[k], far[k] = farthest(kept, minD, owner, int32(k))
				}
			}()
		}
		wg.Wait()
		var mine []int32
		for _, mv := range moved {
			mine = append(mine, mv...)
		}
		slices.Sort(mine)
		groups = append(groups, mine)
		r, f := farthest(mine, minD, owner, knew)
		rad, far = append(rad, r), append(far, f)
	}
	var r float32
	for _, v := range minD {
		r = max(r, v)
	}
	return sel, math.Sqrt(float64(r))
}

// reach is how far a new centre may lie from a row's centre and still be
// nearer the row, for a row at squared distance r2 from its centre: twice
// the distance, with a margin for rounding.
func reach(r2 float32) float64 {
	return 2*math.Sqrt(float64(r2))*(1+1e-4) + 1e-6
}

// farthest returns the largest squared distance among the rows of a group
// that still belong to centre k, and that row (the lowest index on ties);
// an empty group gives -1, which no row's distance is below.
func farthest(group []int32, minD []float32, owner []int32, k int32) (float32, int32) {
	r, f := float32(-1), int32(-1)
	for _, i := range group {
		if owner[i] == k && (minD[i] > r || (minD[i] == r && i < f)) {
			r, f = minD[i], i
		}
	}
	return r, f
}

// atomicCounter hands out 0, 1, 2, … to whoever asks, once each.
type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int { return int(c.n.Add(1) - 1) }

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
