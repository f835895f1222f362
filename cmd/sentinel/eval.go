package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/internal/metrics"
	"github.com/sentinel-pacs/sentinel/internal/parallel"
	"github.com/sentinel-pacs/sentinel/internal/plots"
	"github.com/sentinel-pacs/sentinel/learn"
)

// figures are the evaluation figures of one scorer on one set of cases.
type figures struct {
	Cases  int     `json:"cases"`
	ROCAUC float64 `json:"roc_auc"`
	// ROCAUCCI95 is the ROC-AUC's 95% interval by DeLong's method; absent
	// with fewer than two cases of either class.
	ROCAUCCI95 *[2]float64 `json:"roc_auc_ci95,omitempty"`
	PRAUC      float64     `json:"pr_auc"`
	Precision  float64     `json:"precision"`
	Recall     float64     `json:"recall"`
	F1         float64     `json:"f1"`
	TP         int         `json:"tp"`
	FP         int         `json:"fp"`
	TN         int         `json:"tn"`
	FN         int         `json:"fn"`
}

// evalResult is what 'sentinel eval --json' prints. The top-level figures
// are the model's on all cases at its calibrated threshold; Certain repeats
// them for the cases not decided "uncertain".
type evalResult struct {
	Model     string  `json:"model"`
	Labels    string  `json:"labels"`
	Split     string  `json:"split,omitempty"`
	Normal    int     `json:"normal"`
	Abnormal  int     `json:"abnormal"`
	Threshold float64 `json:"threshold"`
	// ThresholdSource says how a retrained model's threshold was set (on
	// its combined score); empty for a detector's, set on held-out normals.
	ThresholdSource string `json:"threshold_source,omitempty"`
	figures
	UncertainFraction float64 `json:"uncertain_fraction"`
	// UncertainErrorRate and CertainErrorRate are the shares of the
	// uncertain cases and of the others that the threshold alone (score
	// above it: abnormal) gets wrong: an uncertainty that means something
	// sets aside the cases the threshold gets wrong more often.
	UncertainErrorRate float64     `json:"uncertain_error_rate"`
	CertainErrorRate   float64     `json:"certain_error_rate"`
	Certain            figures     `json:"certain"`
	Baseline           figures     `json:"baseline"`
	BaselineROCAUC     float64     `json:"baseline_roc_auc"`
	BaselineROCAUCCI95 *[2]float64 `json:"baseline_roc_auc_ci95,omitempty"`
	// ROCAUCGain is the model's ROC-AUC less the baseline's on the same
	// cases, with its 95% interval by DeLong's paired method.
	ROCAUCGain        float64     `json:"roc_auc_gain"`
	ROCAUCGainCI95    *[2]float64 `json:"roc_auc_gain_ci95,omitempty"`
	BaselinePRAUC     float64     `json:"baseline_pr_auc"`
	BaselineThreshold float64     `json:"baseline_threshold"`
	ImagesPerSecond   float64     `json:"images_per_second"`
}

// evalCase is one labelled image and what the model and the baseline said.
type evalCase struct {
	path     string
	abnormal bool
	score    sentinel.Score
	baseline float64
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("eval", "eval --data DIR --labels CSV [--split NAME] [--model FILE] [--json] [flags]", stderr)
	data := fs.String("data", "", "`folder` the labels file's paths are relative to; required")
	labels := fs.String("labels", "", "labels `CSV` with columns file,finding[,split]; any finding but normal is abnormal; required")
	split := fs.String("split", "", "evaluate only this split's rows (e.g. dev)")
	modelPath := fs.String("model", "", "model `file` to evaluate instead of the workspace's current model")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	detectorOnly := fs.Bool("detector-only", false, "score with the detector alone, without the head and threshold a retraining fitted (as reports were before it)")
	casesOut := fs.String("cases", "", "also write one CSV row per case (file, label, score, uncertainty, decision, components) to this `file`")
	plotDir := fs.String("plot", "", "also write pictures into this `folder`: ROC and precision-recall curves of the model and the baseline, and score histograms by class (PNG and SVG)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *data == "" || *labels == "" || fs.NArg() > 0 {
		return usageError{"eval: --data DIR and --labels CSV are required and it takes no other arguments"}
	}
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	var m *detector.Model
	if *modelPath != "" {
		m, err = detector.Load(*modelPath)
	} else {
		m, err = e.loadModel()
	}
	if err != nil {
		return err
	}
	// The score the reports give: with the head and threshold the
	// learning loop fitted, when the model has them.
	var s agent.Scorer = m
	if !*detectorOnly {
		if s, err = agent.WithLearning(m, e.learningOptions().Embedder); err != nil {
			return err
		}
	}
	rows, err := agent.ReadLabels(*labels)
	if err != nil {
		return err
	}
	var cases []evalCase
	for _, r := range rows {
		if *split == "" || r.Split == *split {
			cases = append(cases, evalCase{path: filepath.Join(*data, filepath.FromSlash(r.File)), abnormal: !r.Normal()})
		}
	}
	if len(cases) == 0 {
		return fmt.Errorf("eval: labels %s have no rows in split %q", *labels, *split)
	}
	start := time.Now()
	if err := scoreCases(ctx, m, s, cases, e.decoder(), max(1, e.cfg.Ingest.Workers)); err != nil {
		return err
	}
	res := summarise(m, cases)
	if *casesOut != "" {
		if err := writeCases(*casesOut, cases); err != nil {
			return err
		}
	}
	res.ImagesPerSecond = float64(len(cases)) / time.Since(start).Seconds()
	res.Model = m.Info().Version
	if ts, ok := s.(interface{ ThresholdSource() string }); ok {
		res.ThresholdSource = ts.ThresholdSource()
	}
	res.Labels, res.Split = *labels, *split
	if *plotDir != "" {
		paths, err := writeEvalPlots(*plotDir, res, cases)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		fmt.Fprintf(stderr, "eval: wrote %d pictures into %s\n", len(paths), *plotDir)
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	printEval(stdout, res)
	return nil
}

// scoreCases decodes, resamples and scores every case with the model and
// the baseline on workers goroutines. Any file that cannot be read fails
// the evaluation: figures over a silently smaller set would mislead.
func scoreCases(ctx context.Context, m *detector.Model, s agent.Scorer, cases []evalCase, decode agent.Decoder, workers int) error {
	side := m.InputSize()
	err := parallel.All(ctx, len(cases), workers, func(i int) error {
		c := &cases[i]
		_, img, err := decode(c.path)
		if err != nil {
			return err
		}
		img = dicomio.Resample(img, side, side)
		if c.score, err = s.Score(img); err != nil {
			return fmt.Errorf("%s: %w", c.path, err)
		}
		if c.baseline, err = m.BaselineScore(img); err != nil {
			return fmt.Errorf("%s: %w", c.path, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}

// summarise computes the figures of the scored cases. Thresholds come from
// the model's calibration on held-out normals, never from these labels.
func summarise(m *detector.Model, cases []evalCase) evalResult {
	res := evalResult{Threshold: m.Info().Threshold, BaselineThreshold: m.BaselineThreshold()}
	if len(cases) > 0 {
		res.Threshold = cases[0].score.Threshold // a learned model's, when it has one
	}
	var all, certain, base []float64
	var allPos, certainPos []bool
	var ca, cc, cb metrics.Confusion
	for _, c := range cases {
		if c.abnormal {
			res.Abnormal++
		} else {
			res.Normal++
		}
		all = append(all, c.score.Value)
		allPos = append(allPos, c.abnormal)
		ca.Add(c.score.Value > c.score.Threshold, c.abnormal)
		base = append(base, c.baseline)
		cb.Add(c.baseline > res.BaselineThreshold, c.abnormal)
		wrong := (c.score.Value > c.score.Threshold) != c.abnormal
		// Uncertain and out-of-distribution films get no call either way:
		// a person looks at them.
		if c.score.Decision == sentinel.DecisionUncertain || c.score.Decision == sentinel.DecisionOutOfDistribution {
			if wrong {
				res.UncertainErrorRate++
			}
			continue
		}
		if wrong {
			res.CertainErrorRate++
		}
		certain = append(certain, c.score.Value)
		certainPos = append(certainPos, c.abnormal)
		cc.Add(c.score.Decision == sentinel.DecisionAbnormal, c.abnormal)
	}
	res.figures = makeFigures(all, allPos, ca)
	res.Certain = makeFigures(certain, certainPos, cc)
	res.Baseline = makeFigures(base, allPos, cb)
	res.BaselineROCAUC, res.BaselinePRAUC = res.Baseline.ROCAUC, res.Baseline.PRAUC
	res.BaselineROCAUCCI95 = res.Baseline.ROCAUCCI95
	var se float64
	res.ROCAUCGain, se = learn.PairedAUCDiff(all, base, allPos)
	if math.IsNaN(res.ROCAUCGain) {
		res.ROCAUCGain = res.ROCAUC - res.Baseline.ROCAUC
	}
	if !math.IsNaN(se) {
		res.ROCAUCGainCI95 = &[2]float64{res.ROCAUCGain - z95*se, res.ROCAUCGain + z95*se}
	}
	res.UncertainFraction = 1 - float64(len(certain))/float64(len(cases))
	if n := len(cases) - len(certain); n > 0 {
		res.UncertainErrorRate /= float64(n)
	}
	if n := len(certain); n > 0 {
		res.CertainErrorRate /= float64(n)
	}
	return res
}

// z95 is the standard normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

func makeFigures(scores []float64, positive []bool, c metrics.Confusion) figures {
	f := figures{
		Cases:  len(scores),
		ROCAUC: metrics.AUROC(scores, positive), PRAUC: metrics.AveragePrecision(scores, positive),
		Precision: c.Precision(), Recall: c.Recall(), F1: c.F1(),
		TP: c.TP, FP: c.FP, TN: c.TN, FN: c.FN,
	}
	if _, se, lo, hi := learn.AUCInterval(scores, positive, z95); !math.IsNaN(se) {
		f.ROCAUCCI95 = &[2]float64{lo, hi}
	}
	return f
}

// writeEvalPlots draws the model and the baseline on the evaluated cases
// into dir.
func writeEvalPlots(dir string, r evalResult, cases []evalCase) ([]string, error) {
	pos := make([]bool, len(cases))
	model, base := make([]float64, len(cases)), make([]float64, len(cases))
	for i, c := range cases {
		pos[i], model[i], base[i] = c.abnormal, c.score.Value, c.baseline
	}
	scorer := func(name, file string, scores []float64, thr float64, f figures) plots.Scorer {
		s := plots.Scorer{Name: name, File: file, Scores: scores, Threshold: thr, ROCAUC: f.ROCAUC, Lo: math.NaN(), Hi: math.NaN(), AP: f.PRAUC}
		if f.ROCAUCCI95 != nil {
			s.Lo, s.Hi = f.ROCAUCCI95[0], f.ROCAUCCI95[1]
		}
		return s
	}
	split := r.Split
	if split == "" {
		split = "all rows"
	}
	// The data set's name is its labels file's folder, when it has one.
	if set := filepath.Base(filepath.Dir(r.Labels)); set != "." && set != string(filepath.Separator) {
		split = set + " " + split
	}
	return plots.WriteEvaluation(dir, plots.Evaluation{
		Title:    fmt.Sprintf("model %s, %s", r.Model, split),
		Positive: pos,
		Scorers: []plots.Scorer{
			scorer("model", "", model, r.Threshold, r.figures),
			scorer("baseline (no learning)", "baseline", base, r.BaselineThreshold, r.Baseline),
		},
	})
}

// ci formats a 95% interval, or "n/a" without one.
func ci(v *[2]float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.3f–%.3f", v[0], v[1])
}

// printEval prints the figures as a table, the model beside the baseline.
func printEval(w io.Writer, r evalResult) {
	split := r.Split
	if split == "" {
		split = "all rows"
	}
	fmt.Fprintf(w, "model %s on %s (%s): %d normal, %d abnormal\n", r.Model, r.Labels, split, r.Normal, r.Abnormal)
	fmt.Fprintf(w, "%-26s %6s %7s %7s %6s %6s %5s %5s %5s %5s %5s\n",
		"", "cases", "ROC-AUC", "PR-AUC", "prec", "recall", "F1", "TP", "FP", "TN", "FN")
	row := func(name string, f figures) {
		fmt.Fprintf(w, "%-26s %6d %7.3f %7.3f %6.3f %6.3f %5.3f %5d %5d %5d %5d\n",
			name, f.Cases, f.ROCAUC, f.PRAUC, f.Precision, f.Recall, f.F1, f.TP, f.FP, f.TN, f.FN)
	}
	row("model", r.figures)
	row("model, not uncertain", r.Certain)
	row("baseline (no learning)", r.Baseline)
	if r.ThresholdSource != "" {
		fmt.Fprintf(w, "threshold %.4g on the combined score, set by the learning loop on %s (baseline %.4g, set on held-out normals); uncertain %.1f%% of cases; %.1f images/s\n",
			r.Threshold, r.ThresholdSource, r.BaselineThreshold, 100*r.UncertainFraction, r.ImagesPerSecond)
	} else {
		fmt.Fprintf(w, "threshold %.4g (baseline %.4g), both set on held-out normals; uncertain %.1f%% of cases; %.1f images/s\n",
			r.Threshold, r.BaselineThreshold, 100*r.UncertainFraction, r.ImagesPerSecond)
	}
	fmt.Fprintf(w, "ROC-AUC 95%% interval (DeLong): model %s, baseline %s; model less baseline %+.3f (%s)\n",
		ci(r.ROCAUCCI95), ci(r.BaselineROCAUCCI95), r.ROCAUCGain, ci(r.ROCAUCGainCI95))
	fmt.Fprintf(w, "wrong at the threshold: %.1f%% of the uncertain cases, %.1f%% of the others\n",
		100*r.UncertainErrorRate, 100*r.CertainErrorRate)
}

// writeCases writes one CSV row per case: its file, true label, score,
// threshold, uncertainty (empty without SWAG samples), decision, baseline
// score and every score component, in name order, so the figures can be
// checked or re-cut outside Sentinel.
func writeCases(path string, cases []evalCase) (err error) {
	var names []string
	for _, c := range cases {
		for k := range c.score.Components {
			if !slices.Contains(names, k) {
				names = append(names, k)
			}
		}
	}
	slices.Sort(names)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("eval: %w", cerr)
		}
	}()
	w := csv.NewWriter(f)
	head := append([]string{"file", "abnormal", "score", "threshold", "uncertainty", "decision", "baseline"}, names...)
	if err := w.Write(head); err != nil {
		return fmt.Errorf("eval: write %s: %w", path, err)
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, c := range cases {
		u := ""
		if c.score.Uncertainty != nil {
			u = num(*c.score.Uncertainty)
		}
		row := []string{c.path, strconv.FormatBool(c.abnormal), num(c.score.Value), num(c.score.Threshold), u, string(c.score.Decision), num(c.baseline)}
		for _, k := range names {
			v, ok := c.score.Components[k]
			if ok {
				row = append(row, num(v))
			} else {
				row = append(row, "")
			}
		}
		if err := w.Write(row); err != nil {
			return fmt.Errorf("eval: write %s: %w", path, err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("eval: write %s: %w", path, err)
	}
	return nil
}
