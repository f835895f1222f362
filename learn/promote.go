package learn

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Evaluation is how a model does on the frozen holdout and on the seed
// normals.
type Evaluation struct {
	// HoldoutAUC is the ROC-AUC on the holdout, NaN when it cannot rank
	// (a class missing).
	HoldoutAUC       float64 `json:"holdout_auc"`
	HoldoutNormals   int     `json:"holdout_normals"`
	HoldoutAbnormals int     `json:"holdout_abnormals"`
	// SeedFPR is the fraction of seed normals the model calls abnormal.
	SeedFPR float64 `json:"seed_fpr"`
	SeedN   int     `json:"seed_n"`
	// HoldoutScores and HoldoutAbnormal are the holdout cases' scores and
	// labels, in the holdout's order, so that two models scored on the
	// same holdout can be compared case by case. They are not saved.
	HoldoutScores   []float64 `json:"-"`
	HoldoutAbnormal []bool    `json:"-"`
	// Operating is the decision rules' operating point on the holdout,
	// when the caller measured it. It is saved with the model's metrics.
	Operating OperatingPoint `json:"-"`
}

// Evaluate computes an Evaluation from scores already made: holdout scores
// with their labels (true is abnormal), seed normals' scores and the
// model's threshold.
func Evaluate(holdout []float64, abnormal []bool, seed []float64, threshold float64) Evaluation {
	e := Evaluation{HoldoutAUC: math.NaN(), SeedN: len(seed), HoldoutScores: holdout, HoldoutAbnormal: abnormal}
	for _, a := range abnormal {
		if a {
			e.HoldoutAbnormals++
		} else {
			e.HoldoutNormals++
		}
	}
	if e.HoldoutAbnormals > 0 && e.HoldoutNormals > 0 {
		e.HoldoutAUC = AUROC(holdout, abnormal)
	}
	e.SeedFPR = ConfusionAt(seed, make([]bool, len(seed)), threshold).FPR()
	return e
}

// PromotionConfig sets when a candidate may replace the current model.
type PromotionConfig struct {
	// Tolerance is how much worse the candidate may be on either measure
	// (ROC-AUC on the holdout, false-positive rate on the seed normals) and
	// still count as "not worse": noise on a small holdout must not block
	// every retraining.
	Tolerance float64
	// HoldoutMinPerClass is how many normals and abnormals the holdout must
	// hold before its ROC-AUC judges a candidate: a ROC-AUC over two
	// normals and two abnormals moves by 0.25 when one pair swaps. Below
	// it, only the seed normals judge.
	HoldoutMinPerClass int
	// Significance, when positive, is the one-sided p-value below which a
	// candidate's lower holdout ROC-AUC counts as worse: beyond the
	// tolerance, the paired difference must also be significant by
	// DeLong's test (PairedAUCDiff) over the same holdout cases. Between
	// two models scored on a few dozen cases, a ROC-AUC gap of 0.05 is
	// often a handful of swapped pairs; without the test such noise refuses
	// good candidates. 0 judges by the tolerance alone.
	Significance float64
	// RequireBetter makes a candidate current on its own only when the
	// holdout holds HoldoutMinPerClass cases of each class and the paired
	// test (with Significance; without it, the ROC-AUC) finds it better
	// than the current model. A candidate that is not worse but not shown
	// better is held (Verdict.Held) for a person to promote.
	RequireBetter bool
}

// ranks reports whether e's holdout ROC-AUC is measured over at least min
// cases of each class.
func (e Evaluation) ranks(min int) bool {
	return !math.IsNaN(e.HoldoutAUC) && e.HoldoutNormals >= min && e.HoldoutAbnormals >= min
}

// Verdict is the promotion decision with its reason.
type Verdict struct {
	Promote bool   `json:"promote"`
	Reason  string `json:"reason"`
	// Held marks a candidate neither promoted nor refused: the evidence
	// does not show it better, so only a person can make it current.
	Held bool `json:"held,omitempty"`
}

// holdFor is the note a held candidate carries.
const holdFor = "waits for a person (sentinel models promote VERSION)"

// Promote decides whether cand replaces cur (nil when there is no current
// model, which always promotes). The candidate must not be worse than the
// current model on the holdout, once the holdout holds
// cfg.HoldoutMinPerClass cases of each class, nor on the seed normals, each
// within cfg.Tolerance.
func Promote(cand Evaluation, cur *Evaluation, cfg PromotionConfig) Verdict {
	if cur == nil {
		return Verdict{Promote: true, Reason: "no current model"}
	}
	ranks := cand.ranks(max(cfg.HoldoutMinPerClass, 1)) && cur.ranks(max(cfg.HoldoutMinPerClass, 1))
	note := ""
	if ranks && cand.HoldoutAUC < cur.HoldoutAUC-cfg.Tolerance {
		p, paired := holdoutPValue(cand, *cur)
		switch {
		case cfg.Significance <= 0 || !paired:
			return Verdict{Promote: false, Reason: fmt.Sprintf("holdout ROC-AUC %.4f is worse than the current %.4f by more than %.3g",
				cand.HoldoutAUC, cur.HoldoutAUC, cfg.Tolerance)}
		case p < cfg.Significance:
			return Verdict{Promote: false, Reason: fmt.Sprintf("holdout ROC-AUC %.4f is worse than the current %.4f by more than %.3g (paired DeLong p = %.3f)",
				cand.HoldoutAUC, cur.HoldoutAUC, cfg.Tolerance, p)}
		}
		note = fmt.Sprintf(" (lower, but not significantly: paired DeLong p = %.2f)", p)
	}
	if cand.SeedFPR > cur.SeedFPR+cfg.Tolerance {
		return Verdict{Promote: false, Reason: fmt.Sprintf("flags %.1f%% of the seed normals, the current model %.1f%% (tolerance %.3g)",
			100*cand.SeedFPR, 100*cur.SeedFPR, cfg.Tolerance)}
	}
	if !ranks {
		v := Verdict{Promote: true, Reason: fmt.Sprintf("seed normals: %.1f%% flagged vs %.1f%%; the holdout (%d normal, %d abnormal) is too small to rank yet (%d of each needed)",
			100*cand.SeedFPR, 100*cur.SeedFPR, cand.HoldoutNormals, cand.HoldoutAbnormals, max(cfg.HoldoutMinPerClass, 1))}
		if cfg.RequireBetter {
			v.Promote, v.Held, v.Reason = false, true, v.Reason+": "+holdFor
		}
		return v
	}
	if cfg.RequireBetter {
		better := cand.HoldoutAUC > cur.HoldoutAUC
		how := fmt.Sprintf("holdout ROC-AUC %.4f vs %.4f", cand.HoldoutAUC, cur.HoldoutAUC)
		if p, paired := holdoutPValue(*cur, cand); paired && cfg.Significance > 0 {
			better = p < cfg.Significance
			how += fmt.Sprintf(" (paired DeLong p = %.3f that it is better)", p)
		}
		if !better {
			return Verdict{Held: true, Reason: how + ", not shown better than the current model: " + holdFor}
		}
		return Verdict{Promote: true, Reason: how + fmt.Sprintf(", better than the current model; seed normals flagged %.1f%% vs %.1f%%",
			100*cand.SeedFPR, 100*cur.SeedFPR)}
	}
	return Verdict{Promote: true, Reason: fmt.Sprintf("holdout ROC-AUC %.4f vs %.4f%s, seed normals flagged %.1f%% vs %.1f%%",
		cand.HoldoutAUC, cur.HoldoutAUC, note, 100*cand.SeedFPR, 100*cur.SeedFPR)}
}

// holdoutPValue is the one-sided p-value of cand's holdout ROC-AUC being
// below cur's by DeLong's paired test; paired is false when the two were
// not scored on the same cases.
func holdoutPValue(cand, cur Evaluation) (p float64, paired bool) {
	n := len(cand.HoldoutScores)
	if n == 0 || n != len(cur.HoldoutScores) || n != len(cand.HoldoutAbnormal) || !slices.Equal(cand.HoldoutAbnormal, cur.HoldoutAbnormal) {
		return math.NaN(), false
	}
	diff, se := PairedAUCDiff(cur.HoldoutScores, cand.HoldoutScores, cand.HoldoutAbnormal)
	switch {
	case math.IsNaN(se):
		return math.NaN(), false
	case se == 0:
		if diff > 0 {
			return 0, true
		}
		return 1, true
	}
	return 0.5 * math.Erfc(diff/se/math.Sqrt2), true
}

// evaluationJSON is Evaluation with the holdout ROC-AUC null when it
// cannot be measured, since JSON has no NaN.
type evaluationJSON struct {
	HoldoutAUC       *float64 `json:"holdout_auc"`
	HoldoutNormals   int      `json:"holdout_normals"`
	HoldoutAbnormals int      `json:"holdout_abnormals"`
	SeedFPR          float64  `json:"seed_fpr"`
	SeedN            int      `json:"seed_n"`
}

// MarshalJSON writes an unmeasurable holdout ROC-AUC as null.
func (e Evaluation) MarshalJSON() ([]byte, error) {
	j := evaluationJSON{nil, e.HoldoutNormals, e.HoldoutAbnormals, e.SeedFPR, e.SeedN}
	if !math.IsNaN(e.HoldoutAUC) {
		j.HoldoutAUC = &e.HoldoutAUC
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Evaluation) UnmarshalJSON(b []byte) error {
	var j evaluationJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Evaluation{HoldoutAUC: math.NaN(), HoldoutNormals: j.HoldoutNormals, HoldoutAbnormals: j.HoldoutAbnormals, SeedFPR: j.SeedFPR, SeedN: j.SeedN}
	if j.HoldoutAUC != nil {
		e.HoldoutAUC = *j.HoldoutAUC
	}
	return nil
}
