// Package plots draws Sentinel's evaluation pictures with gonum.org/v1/plot:
// ROC and precision-recall curves with their operating points, score
// histograms by class and learning curves, saved as PNG and SVG. The
// drawing functions take precomputed points; ROC, PR and At compute them
// from plain scores and labels.
package plots

import (
	"math"
	"sort"
)

// Point is one point of a curve.
type Point struct{ X, Y float64 }

// ranked returns the indices of scores from the highest score down, ties
// in their input order.
func ranked(scores []float64) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	return idx
}

// counts returns the numbers of positive and negative cases.
func counts(positive []bool) (p, n float64) {
	for _, v := range positive {
		if v {
			p++
		} else {
			n++
		}
	}
	return p, n
}

// ROC returns the ROC curve of scores for finding the positive cases
// (higher scores expected): points (false-positive rate, true-positive
// rate) from (0, 0) to (1, 1), one for each distinct score taken as the
// lowest called positive, tied scores entering together (a tie is a
// diagonal step). It returns nil without a case of each class.
func ROC(scores []float64, positive []bool) []Point {
	np, nn := counts(positive)
	if np == 0 || nn == 0 || len(scores) != len(positive) {
		return nil
	}
	idx := ranked(scores)
	pts := []Point{{0, 0}}
	var tp, fp float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			if positive[idx[j]] {
				tp++
			} else {
				fp++
			}
			j++
		}
		pts = append(pts, Point{fp / nn, tp / np})
		i = j
	}
	return pts
}

// PR returns the precision-recall curve of scores: points (recall,
// precision), one for each distinct score taken as the lowest called
// positive, from the highest score down, tied scores entering together.
// Drawn as steps from (0, the first precision), the area under it is the
// average precision. It returns nil without a positive case.
func PR(scores []float64, positive []bool) []Point {
	np, _ := counts(positive)
	if np == 0 || len(scores) != len(positive) {
		return nil
	}
	idx := ranked(scores)
	var pts []Point
	var tp, fp float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			if positive[idx[j]] {
				tp++
			} else {
				fp++
			}
			j++
		}
		pts = append(pts, Point{tp / np, tp / (tp + fp)})
		i = j
	}
	return pts
}

// At returns the operating point of calling every case scored above
// threshold positive: on the ROC curve (false-positive rate, true-positive
// rate) and on the precision-recall curve (recall, precision; precision 1
// when nothing is called). Rates whose class is empty are 0.
func At(scores []float64, positive []bool, threshold float64) (roc, pr Point) {
	var tp, fp, np, nn float64
	for i, s := range scores {
		if positive[i] {
			np++
		} else {
			nn++
		}
		if s > threshold {
			if positive[i] {
				tp++
			} else {
				fp++
			}
		}
	}
	div := func(a, b, empty float64) float64 {
		if b == 0 {
			return empty
		}
		return a / b
	}
	recall := div(tp, np, 0)
	return Point{div(fp, nn, 0), recall}, Point{recall, div(tp, tp+fp, 1)}
}

// finite returns the finite values of vs.
func finite(vs []float64) []float64 {
	out := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out = append(out, v)
		}
	}
	return out
}
