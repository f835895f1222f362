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

// AveragePrecision returns the area under the precision-recall curve of
// scores for finding the positives, as average precision: the sum over
// distinct score thresholds, from the highest down, of the precision at the
// threshold times the recall it adds (scikit-learn's
// average_precision_score; tied scores enter together). It returns 0 when
// there are no positives.
func AveragePrecision(scores []float64, positive []bool) float64 {
	idx := make([]int, len(scores))
	var npos float64
	for i := range idx {
		idx[i] = i
		if positive[i] {
			npos++
		}
	}
	if npos == 0 {
		return 0
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	var tp, fp, ap, prevRecall float64
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
		recall := tp / npos
		ap += (recall - prevRecall) * tp / (tp + fp)
		prevRecall = recall
		i = j
	}
	return ap
}

// Confusion counts the outcomes of calling a case positive.
type Confusion struct {
	TP, FP, TN, FN int
}

// Add counts one case: called is the decision, positive the truth.
func (c *Confusion) Add(called, positive bool) {
	switch {
	case called && positive:
		c.TP++
	case called:
		c.FP++
	case positive:
		c.FN++
	default:
		c.TN++
	}
}

// Precision returns TP/(TP+FP), or 0 when nothing was called positive.
func (c Confusion) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }

// Recall returns TP/(TP+FN), or 0 when there are no positives.
func (c Confusion) Recall() float64 { return ratio(c.TP, c.TP+c.FN) }

// F1 returns the harmonic mean of precision and recall, 2TP/(2TP+FP+FN),
// or 0 when it is undefined.
func (c Confusion) F1() float64 { return ratio(2*c.TP, 2*c.TP+c.FP+c.FN) }

// FPR returns FP/(FP+TN), or 0 when there are no negatives.
func (c Confusion) FPR() float64 { return ratio(c.FP, c.FP+c.TN) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
