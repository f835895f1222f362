package learn

import (
	"cmp"
	"math"
	"slices"

	"github.com/sentinel-pacs/sentinel/internal/metrics"
)

// AUROC is the area under the ROC curve of scores for positives (higher
// scores expected), 0.5 when a class is empty.
func AUROC(scores []float64, positive []bool) float64 { return metrics.AUROC(scores, positive) }

// PRAUC returns the average precision of scores for positives: the mean,
// over the positives, of the precision among the cases scored at least as
// high (ties taken together). It is 0 without positives.
func PRAUC(scores []float64, positive []bool) float64 {
	order := make([]int, len(scores))
	var npos int
	for i := range order {
		order[i] = i
		if positive[i] {
			npos++
		}
	}
	if npos == 0 {
		return 0
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	var ap float64
	var tp, seen int
	for i := 0; i < len(order); {
		j := i
		var tpHere int
		for j < len(order) && scores[order[j]] == scores[order[i]] {
			if positive[order[j]] {
				tpHere++
			}
			j++
		}
		tp += tpHere
		seen += j - i
		ap += float64(tpHere) * float64(tp) / float64(seen)
		i = j
	}
	return ap / float64(npos)
}

// Confusion counts the decisions at a threshold: a score above it is
// called positive (abnormal), as the detector does.
type Confusion struct {
	TP, FP, TN, FN int
}

// ConfusionAt counts the decisions of scores at threshold.
func ConfusionAt(scores []float64, positive []bool, threshold float64) Confusion {
	var c Confusion
	for i, s := range scores {
		switch {
		case s > threshold && positive[i]:
			c.TP++
		case s > threshold:
			c.FP++
		case positive[i]:
			c.FN++
		default:
			c.TN++
		}
	}
	return c
}

// Precision is TP/(TP+FP), 0 when nothing is called positive.
func (c Confusion) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }

// Recall is TP/(TP+FN).
func (c Confusion) Recall() float64 { return ratio(c.TP, c.TP+c.FN) }

// F1 is the harmonic mean of precision and recall.
func (c Confusion) F1() float64 { return ratio(2*c.TP, 2*c.TP+c.FP+c.FN) }

// FPR is FP/(FP+TN).
func (c Confusion) FPR() float64 { return ratio(c.FP, c.FP+c.TN) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// BestF1Threshold returns the threshold (a midpoint between consecutive
// distinct scores) that maximises F1 on the given labelled scores. Use it
// only on training labels, never on evaluation labels.
func BestF1Threshold(scores []float64, positive []bool) float64 {
	s := slices.Clone(scores)
	slices.Sort(s)
	s = slices.Compact(s)
	best, bestF1 := math.Inf(1), -1.0
	for i := range s {
		t := s[i] - 1e-9
		if i > 0 {
			t = (s[i-1] + s[i]) / 2
		}
		if f := ConfusionAt(scores, positive, t).F1(); f > bestF1 {
			best, bestF1 = t, f
		}
	}
	return best
}

// Quantile returns the q quantile of v by linear interpolation.
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
}
