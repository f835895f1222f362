package detector

import (
	"math"
	"sync"
)

// knnBankTile is the number of bank rows whose dot products with all the
// queries one matrix product computes: 1024 rows × 256 queries of float32
// is 1 MiB, about a core's second-level cache, and the tile is the unit
// handed to a goroutine.
const knnBankTile = 1024

// knnScores returns, for each of the nq query rows of q (d wide), the mean
// Euclidean distance to its k nearest of the nb rows of bank, whose squared
// norms are bankSq.
//
// Distances are screened as |q|² + |b|² − 2q·b with the dot products of a
// tile of bank rows against every query as one matrix product, the tiles
// spread over every core, each goroutine keeping its own bounded top-k per
// query; the lists are merged at the end, so memory stays
// O(workers·nq·(k + tile)). The screening formula loses precision when a
// query lies close to a bank row relative to their norms (the case that
// matters most: a normal patch next to its memory), and its rounding
// depends on the order of the product's sums, so a row that passes the
// screen within a rounding margin gets its distance recomputed directly,
// and only direct distances enter the top-k. The result is therefore the
// same whatever the tiling, the product's kernel or the number of cores.
func knnScores(q []float32, nq int, bank, bankSq []float32, nb, d, k int) []float64 {
	k = min(k, nb)
	if nq == 0 || k == 0 {
		return make([]float64, nq)
	}
	qSq := rowNorms(q, nq, d)
	qT := make([]float32, d*nq) // q transposed, so that the product needs no copy of the bank
	transposeInto(qT, q[:nq*d], nq, d)
	// margin bounds the screening formula's rounding error relative to
	// |q|² + |b|²: a few units in the last place per term of the sums.
	margin := float32(4*d+8) * 0x1p-24
	tiles := (nb + knnBankTile - 1) / knnBankTile
	nw := min(workers(), tiles)
	// The screen, s − 2q·b − margin·s ≥ worst with s = |q|² + |b|², is
	// rearranged as keep·|b|² − 2q·b ≥ worst − keep·|q|² (keep = 1 −
	// margin) so that the inner loop is one multiply, one subtraction and
	// one comparison against a per-query bound updated only when the
	// query's top-k changes; the margin is doubled to cover the
	// rearrangement's own rounding, so the screen stays conservative.
	keep := 1 - 2*margin
	tops := make([][]float32, nw)
	bounds := make([][]float32, nw)
	dots := make([]*[]float32, nw)
	cands := make([][]int32, nw)
	defer func() {
		for _, d := range dots {
			if d != nil {
				knnDots.Put(d)
			}
		}
	}()
	parallel(tiles, func(w, t int) {
		if tops[w] == nil {
			tops[w] = make([]float32, nq*k)
			for i := range tops[w] {
				tops[w][i] = float32(math.Inf(1))
			}
			bounds[w] = make([]float32, nq)
			for i := range bounds[w] {
				bounds[w][i] = float32(math.Inf(1))
			}
			dots[w] = knnDotsBuffer(knnBankTile * nq)
			cands[w] = make([]int32, nq)
		}
		b0, b1 := t*knnBankTile, min((t+1)*knnBankTile, nb)
		n := b1 - b0
		sgemmNN(n, nq, d, bank[b0*d:b1*d], d, qT, nq, 0, *dots[w], nq)
		top, bound := tops[w], bounds[w][:nq]
		for j := range n {
			row := (*dots[w])[j*nq : (j+1)*nq]
			row = row[:len(bound)]
			cj := keep * bankSq[b0+j]
			// A query's bound changes only while that query is
			// visited, so the row's candidates can be found first.
			for _, i32 := range knnScreen(cj, row, bound, cands[w]) {
				i := int(i32)
				worst := top[i*k+k-1]
				if e := sqDist(q[i*d:(i+1)*d], bank[(b0+j)*d:(b0+j+1)*d]); e < worst {
					insertSorted(top[i*k:(i+1)*k], e)
					bound[i] = top[i*k+k-1] - keep*qSq[i]
				}
			}
		}
	})
	out := make([]float64, nq)
	for i := range out {
		top := tops[0][i*k : (i+1)*k]
		for _, other := range tops[1:] {
			for _, v := range other[i*k : (i+1)*k] {
				if v < top[k-1] {
					insertSorted(top, v)
				}
			}
		}
		var s float64
		for _, v := range top {
			s += math.Sqrt(float64(v))
		}
		out[i] = s / float64(k)
	}
	return out
}

// knnDots keeps the tiles' dot-product buffers (a MiB each at 256
// queries) between queries: scoring asks for two per image, and making
// them afresh cost more in clearing and collecting than the screen.
var knnDots sync.Pool

// knnDotsBuffer returns a buffer of n values from knnDots, or a new one;
// its contents are whatever it last held (the product overwrites them).
func knnDotsBuffer(n int) *[]float32 {
	if p, ok := knnDots.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]float32, n)
	return &b
}

// knnScreenGo is knnScreen one value at a time.
func knnScreenGo(c float32, row, bound []float32, idx []int32) []int32 {
	idx = idx[:0]
	bound = bound[:len(row)]
	for i, dot := range row {
		if !(c-2*dot >= bound[i]) {
			idx = append(idx, int32(i))
		}
	}
	return idx
}

// transposeInto writes the r×c row-major matrix src into dst as its c×r
// transpose.
func transposeInto(dst, src []float32, r, c int) {
	for i := range r {
		for j, v := range src[i*c : (i+1)*c] {
			dst[j*r+i] = v
		}
	}
}
