package detector

import "math"

// centreBank holds the centres of the standardised training normals for
// the shift-tolerant nearest-normal distance: each normal with a border of
// shift pixels cut away, as one row of a matrix, with the rows' squared
// norms.
type centreBank struct {
	side, shift int
	n, d        int
	rows, sq    []float32
}

func newCentreBank(normals [][]float32, side, shift int) centreBank {
	if shift <= 0 || len(normals) == 0 {
		return centreBank{}
	}
	w := side - 2*shift
	b := centreBank{side: side, shift: shift, n: len(normals), d: w * w}
	b.rows = make([]float32, 0, b.n*b.d)
	for _, z := range normals {
		b.rows = appendWindow(b.rows, z, side, shift, shift, w)
	}
	b.sq = rowNorms(b.rows, b.n, b.d)
	return b
}

// appendWindow appends the w×w window of the side×side image z whose top
// left corner is (x0, y0).
func appendWindow(dst, z []float32, side, x0, y0, w int) []float32 {
	for y := y0; y < y0+w; y++ {
		dst = append(dst, z[y*side+x0:y*side+x0+w]...)
	}
	return dst
}

// distance returns the Euclidean distance from the best-placed window of
// z, a standardised side×side image, to the nearest normal's centre: the
// window is the centre shifted by up to shift pixels in each direction. All
// (2·shift+1)² windows are scored against the bank at once by the memory
// bank's exact nearest-neighbour search.
func (b centreBank) distance(z []float32) float64 {
	w, k := b.side-2*b.shift, 2*b.shift+1
	q := make([]float32, 0, k*k*b.d)
	for dy := range k {
		for dx := range k {
			q = appendWindow(q, z, b.side, dx, dy, w)
		}
	}
	best := math.Inf(1)
	for _, d := range knnScores(q, k*k, b.rows, b.sq, b.n, b.d, 1) {
		best = min(best, d)
	}
	return best
}
