package learn

import "math"

// OperatingPoint is what a model's decision rules give on the labelled
// holdout: the share of abnormal films flagged (above the threshold), the
// share of normal films not flagged, and the share of abnormal films not
// called normal (above the normal limit), each with its 95% Wilson
// interval. Empty classes give NaN shares and intervals of [0, 1].
type OperatingPoint struct {
	Normals, Abnormals  int
	Sensitivity         float64
	SensitivityCI       [2]float64
	Specificity         float64
	SpecificityCI       [2]float64
	NormalSensitivity   float64
	NormalSensitivityCI [2]float64
}

// Operating measures the operating point of scores (true in abnormal is
// an abnormal film): flagged above threshold, normal at or below
// normalLimit.
func Operating(scores []float64, abnormal []bool, threshold, normalLimit float64) OperatingPoint {
	var op OperatingPoint
	var flagged, cleared, notNormal int
	for i, s := range scores {
		if abnormal[i] {
			op.Abnormals++
			if s > threshold {
				flagged++
			}
			if s > normalLimit {
				notNormal++
			}
		} else {
			op.Normals++
			if s <= threshold {
				cleared++
			}
		}
	}
	op.Sensitivity, op.SensitivityCI = proportion(flagged, op.Abnormals)
	op.Specificity, op.SpecificityCI = proportion(cleared, op.Normals)
	op.NormalSensitivity, op.NormalSensitivityCI = proportion(notNormal, op.Abnormals)
	return op
}

// proportion returns k/n and its 95% Wilson score interval.
func proportion(k, n int) (float64, [2]float64) {
	if n == 0 {
		return math.NaN(), [2]float64{0, 1}
	}
	lo, hi := Wilson(k, n, 1.959964)
	return float64(k) / float64(n), [2]float64{lo, hi}
}

// Wilson returns the Wilson score interval of k successes in n trials at
// z standard errors. It keeps its width at k = 0 and k = n, where the
// normal approximation collapses to a point: 0 misses in 20 cases bounds a
// sensitivity below by 0.84, not 1.
func Wilson(k, n int, z float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	p := float64(k) / float64(n)
	nf := float64(n)
	den := 1 + z*z/nf
	centre := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return max(0, centre-half), min(1, centre+half)
}
