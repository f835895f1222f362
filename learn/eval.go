package learn

import (
	"math"
	"slices"

	"github.com/sentinel-pacs/sentinel/internal/metrics"
)

// AUROC is the area under the ROC curve of scores for positives (higher
// scores expected), 0.5 when a class is empty.
func AUROC(scores []float64, positive []bool) float64 { return metrics.AUROC(scores, positive) }

// PRAUC returns the average precision of scores for positives (ties taken
// together), 0 without positives.
func PRAUC(scores []float64, positive []bool) float64 {
	return metrics.AveragePrecision(scores, positive)
}

// Confusion counts the decisions at a threshold.
type Confusion = metrics.Confusion

// ConfusionAt counts the decisions of scores at threshold: a score above it
// is called positive (abnormal), as the detector does.
func ConfusionAt(scores []float64, positive []bool, threshold float64) Confusion {
	var c Confusion
	for i, s := range scores {
		c.Add(s > threshold, positive[i])
	}
	return c
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

// BestBalancedThreshold returns the threshold (a midpoint between
// consecutive distinct scores) that maximises sensitivity + specificity
// (Youden's J) on the given labelled scores, the lowest such threshold on a
// tie. Unlike F1 it does not depend on the share of positives among the
// labels, which a learning loop skews: cases are asked about because they
// look abnormal, and among labels that are mostly abnormal the F1-best
// threshold can be "flag everything". When maxFPR is in (0, 1), only
// thresholds that flag at most that share of the negatives are considered
// (one above every score always qualifies). Use it only on training labels.
func BestBalancedThreshold(scores []float64, positive []bool, maxFPR float64) float64 {
	s := slices.Clone(scores)
	slices.Sort(s)
	s = slices.Compact(s)
	if len(s) == 0 {
		return math.Inf(1)
	}
	// Candidates: below every score (flag all), every midpoint, above every
	// score (flag none).
	cands := make([]float64, 0, len(s)+1)
	cands = append(cands, s[0]-1e-9)
	for i := 1; i < len(s); i++ {
		cands = append(cands, (s[i-1]+s[i])/2)
	}
	cands = append(cands, s[len(s)-1]+1e-9)
	best, bestJ := cands[len(cands)-1], math.Inf(-1)
	for _, t := range cands {
		c := ConfusionAt(scores, positive, t)
		if maxFPR > 0 && maxFPR < 1 && float64(c.FP) > maxFPR*float64(c.FP+c.TN) {
			continue
		}
		var j float64
		if p := c.TP + c.FN; p > 0 {
			j += float64(c.TP) / float64(p)
		}
		if n := c.TN + c.FP; n > 0 {
			j += float64(c.TN) / float64(n)
		}
		if j > bestJ {
			best, bestJ = t, j
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
