package learn

import "math"

// PairedAUCDiff compares two scorings of the same cases (positive marks
// the abnormal ones) by DeLong's method (DeLong, DeLong & Clarke-Pearson,
// Biometrics 1988): it returns ROC-AUC(a) − ROC-AUC(b) and the standard
// error of that difference, which accounts for both AUCs being measured on
// the same cases. Ties count one half. Without a case of each class, or
// with fewer than two of either, the standard error is NaN.
func PairedAUCDiff(a, b []float64, positive []bool) (diff, se float64) {
	var pos, neg []int
	for i, p := range positive {
		if p {
			pos = append(pos, i)
		} else {
			neg = append(neg, i)
		}
	}
	m, n := len(pos), len(neg)
	if m == 0 || n == 0 {
		return math.NaN(), math.NaN()
	}
	psi := func(x, y float64) float64 {
		switch {
		case x > y:
			return 1
		case x == y:
			return 0.5
		}
		return 0
	}
	// Structural components: v10[k][i] is how often positive i outranks
	// the negatives under scoring k, v01[k][j] how often negative j is
	// outranked by the positives.
	var v10 [2][]float64
	var v01 [2][]float64
	for k, s := range [2][]float64{a, b} {
		v10[k] = make([]float64, m)
		v01[k] = make([]float64, n)
		for i, pi := range pos {
			for j, nj := range neg {
				v := psi(s[pi], s[nj])
				v10[k][i] += v
				v01[k][j] += v
			}
		}
		for i := range v10[k] {
			v10[k][i] /= float64(n)
		}
		for j := range v01[k] {
			v01[k][j] /= float64(m)
		}
	}
	// The ROC-AUC under scoring k is the mean of v10[k]; the variance of
	// the difference is that of the components' differences, over the
	// positives and over the negatives.
	d10, d01 := make([]float64, m), make([]float64, n)
	for i := range d10 {
		d10[i] = v10[0][i] - v10[1][i]
	}
	for j := range d01 {
		d01[j] = v01[0][j] - v01[1][j]
	}
	diff, sd10 := meanSD(d10)
	_, sd01 := meanSD(d01)
	if m < 2 || n < 2 {
		return diff, math.NaN()
	}
	return diff, math.Sqrt(sd10*sd10/float64(m) + sd01*sd01/float64(n))
}

// AUCInterval returns the ROC-AUC of scores for telling the positive cases
// from the others, its standard error by DeLong's method (the variance of
// the structural components over the positives and over the negatives;
// ties count one half), and the two-sided interval auc ± z·se clipped to
// [0, 1] (z = 1.96 for 95%). Without a case of either class the AUC is NaN;
// with fewer than two of either, the standard error and the interval are
// NaN.
func AUCInterval(scores []float64, positive []bool, z float64) (auc, se, lo, hi float64) {
	nan := math.NaN()
	var pos, neg []float64
	for i, p := range positive {
		if p {
			pos = append(pos, scores[i])
		} else {
			neg = append(neg, scores[i])
		}
	}
	m, n := len(pos), len(neg)
	if m == 0 || n == 0 {
		return nan, nan, nan, nan
	}
	v10, v01 := make([]float64, m), make([]float64, n)
	for i, x := range pos {
		for j, y := range neg {
			var v float64
			switch {
			case x > y:
				v = 1
			case x == y:
				v = 0.5
			}
			v10[i] += v
			v01[j] += v
		}
	}
	for i := range v10 {
		v10[i] /= float64(n)
	}
	for j := range v01 {
		v01[j] /= float64(m)
	}
	auc, sd10 := meanSD(v10)
	if m < 2 || n < 2 {
		return auc, nan, nan, nan
	}
	_, sd01 := meanSD(v01)
	se = math.Sqrt(sd10*sd10/float64(m) + sd01*sd01/float64(n))
	return auc, se, max(0, auc-z*se), min(1, auc+z*se)
}
