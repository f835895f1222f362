package plots

import (
	"fmt"
	"math"
	"unicode"

	"gonum.org/v1/plot"
)

// Scorer is one scoring of an evaluation's cases with its figures.
type Scorer struct {
	// Name is the legend's name, e.g. "model" or "baseline (no learning)";
	// File names its histogram (scores-FILE), "" for scores.
	Name, File string
	Scores     []float64
	// Threshold is the scorer's operating point: a score above it is
	// called abnormal.
	Threshold float64
	// ROCAUC and its interval [Lo, Hi] (NaN: none), and the average
	// precision.
	ROCAUC, Lo, Hi, AP float64
}

// Evaluation is what the evaluation pictures show: the scorers of the
// same cases, abnormal ones marked Positive.
type Evaluation struct {
	// Title names the model and the cases, e.g. "model 3 on cxr8 dev".
	Title    string
	Positive []bool
	Scorers  []Scorer
}

// WriteEvaluation writes the evaluation pictures into dir: roc and pr (all
// scorers on the same axes, each with its operating point; the legend
// gives the ROC-AUC with its interval, the average precision) and a score
// histogram by class for each scorer. It returns the paths written.
func WriteEvaluation(dir string, ev Evaluation) ([]string, error) {
	var normals, abnormals int
	for _, p := range ev.Positive {
		if p {
			abnormals++
		} else {
			normals++
		}
	}
	if normals == 0 || abnormals == 0 {
		return nil, fmt.Errorf("plots: the curves need normal and abnormal cases; there are %d and %d", normals, abnormals)
	}
	var rocs, prs []Curve
	for _, s := range ev.Scorers {
		if len(s.Scores) != len(ev.Positive) {
			return nil, fmt.Errorf("plots: %s has %d scores for %d cases", s.Name, len(s.Scores), len(ev.Positive))
		}
		r, p := At(s.Scores, ev.Positive, s.Threshold)
		label := fmt.Sprintf("%s: AUC %.3f", s.Name, s.ROCAUC)
		if !math.IsNaN(s.Lo) && !math.IsNaN(s.Hi) {
			label += fmt.Sprintf(" (95%% CI %.3f–%.3f)", s.Lo, s.Hi)
		}
		rocs = append(rocs, Curve{Label: label, Points: ROC(s.Scores, ev.Positive), Operating: &r,
			OperatingLabel: fmt.Sprintf("%s threshold (FPR %.2f, TPR %.2f)", s.Name, r.X, r.Y)})
		prs = append(prs, Curve{Label: fmt.Sprintf("%s: average precision %.3f", s.Name, s.AP), Points: PR(s.Scores, ev.Positive), Operating: &p,
			OperatingLabel: fmt.Sprintf("%s threshold (recall %.2f, precision %.2f)", s.Name, p.X, p.Y)})
	}
	var written []string
	save := func(name string, build func() (*plot.Plot, error)) error {
		p, err := build()
		if err != nil {
			return err
		}
		paths, err := Save(p, dir, name)
		written = append(written, paths...)
		return err
	}
	cases := fmt.Sprintf("%d normal, %d abnormal", normals, abnormals)
	if err := save("roc", func() (*plot.Plot, error) { return ROCPlot("ROC curve\n"+ev.Title+": "+cases, rocs) }); err != nil {
		return written, err
	}
	prevalence := float64(abnormals) / float64(normals+abnormals)
	if err := save("pr", func() (*plot.Plot, error) {
		return PRPlot("Precision-recall curve\n"+ev.Title+": "+cases, prs, prevalence)
	}); err != nil {
		return written, err
	}
	for _, s := range ev.Scorers {
		var groups [2]Group
		groups[0].Label, groups[1].Label = "normal", "abnormal"
		for i, v := range s.Scores {
			if ev.Positive[i] {
				groups[1].Values = append(groups[1].Values, v)
			} else {
				groups[0].Values = append(groups[0].Values, v)
			}
		}
		name := "scores"
		if s.File != "" {
			name += "-" + s.File
		}
		err := save(name, func() (*plot.Plot, error) {
			return Histogram(upperFirst(s.Name)+" scores by class\n"+ev.Title+": "+cases, s.Name+" score", groups[:], 30,
				s.Threshold, fmt.Sprintf("threshold %.4g", s.Threshold))
		})
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// WriteLearning writes the learning curves, the evaluation ROC-AUC after
// each round of every strategy, into dir as learning.png and
// learning.svg, and returns the paths written.
func WriteLearning(dir, title, xLabel string, series []Series) ([]string, error) {
	p, err := LearningCurves(title, xLabel, "ROC-AUC on the evaluation split", series)
	if err != nil {
		return nil, err
	}
	return Save(p, dir, "learning")
}

// upperFirst returns s with its first letter in upper case.
func upperFirst(s string) string {
	r := []rune(s)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}
