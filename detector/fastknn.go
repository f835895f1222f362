package detector

import (
	"math"

	"gonum.org/v1/gonum/blas"
)

// knnBankTile is the number of bank rows whose distances to all the queries
// are computed by one matrix product: 256 queries × 2048 rows of float32 is
// 2 MiB, about a second-level cache, and the tile is the unit handed to a
// goroutine.
const knnBankTile = 2048

// knnScoresParallel computes what knnScores does, the mean Euclidean
// distance of each query row to its k nearest bank rows, with the dot
// products of a tile of bank rows against all queries as one matrix product
// (gonum's Sgemm) and the tiles spread over GOMAXPROCS goroutines, each
// keeping its own bounded top-k per query; the lists are merged at the end.
// Memory stays O(workers·(nq·k + nq·tile)).
func knnScoresParallel(q []float32, nq int, bank, bankSq []float32, nb, d, k int) []float64 {
	k = min(k, nb)
	qSq := rowNorms(q, nq, d)
	tiles := (nb + knnBankTile - 1) / knnBankTile
	nw := min(workers(), tiles)
	tops := make([][]float32, nw)
	dots := make([][]float32, nw)
	parallel(tiles, func(w, t int) {
		if tops[w] == nil {
			tops[w] = make([]float32, nq*k)
			for i := range tops[w] {
				tops[w][i] = float32(math.Inf(1))
			}
			dots[w] = make([]float32, nq*knnBankTile)
		}
		b0, b1 := t*knnBankTile, min((t+1)*knnBankTile, nb)
		n := b1 - b0
		gemm(blas.NoTrans, blas.Trans, nq, n, d, q, d, bank[b0*d:b1*d], d, 0, dots[w], n)
		sq := bankSq[b0:b1]
		for i := range nq {
			top := tops[w][i*k : (i+1)*k]
			row := dots[w][i*n : (i+1)*n]
			qi := qSq[i]
			worst := top[k-1]
			for j, dot := range row {
				if v := qi + sq[j] - 2*dot; v < worst {
					insertSorted(top, max(v, 0))
					worst = top[k-1]
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
