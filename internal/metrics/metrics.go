// Package metrics computes the evaluation figures Sentinel reports: ROC-AUC
// and the like. It works on plain scores and labels.
package metrics

import "sort"

// AUROC returns the area under the ROC curve of scores for telling positives
// (higher scores expected) from negatives, counting ties as one half; it is
// the Mann-Whitney U statistic over the product of the class sizes. It
// returns NaN-free 0.5 when either class is empty.
func AUROC(scores []float64, positive []bool) float64 {
	type sp struct {
		s   float64
		pos bool
	}
	xs := make([]sp, len(scores))
	var npos, nneg float64
	for i, s := range scores {
		xs[i] = sp{s, positive[i]}
		if positive[i] {
			npos++
		} else {
			nneg++
		}
	}
	if npos == 0 || nneg == 0 {
		return 0.5
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].s < xs[j].s })
	// Sum of the positives' ranks, with tied scores given their mean rank.
	var rankSum float64
	for i := 0; i < len(xs); {
		j := i
		for j < len(xs) && xs[j].s == xs[i].s {
			j++
		}
		mean := float64(i+j+1) / 2 // ranks i+1 .. j
		for k := i; k < j; k++ {
			if xs[k].pos {
				rankSum += mean
			}
		}
		i = j
	}
	return (rankSum - npos*(npos+1)/2) / (npos * nneg)
}
