package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/learn"
)

// Components a learned score adds to the detector's (none ends in "_z",
// so the head never reads them back as detector features).
const (
	// ComponentDetector is the detector's own score, before the head.
	ComponentDetector = "detector_score"
	// ComponentHeadLogit and ComponentHeadWeight are the supervised head's
	// logit for the case and its share of the combined score.
	ComponentHeadLogit  = "head_logit"
	ComponentHeadWeight = "head_weight"
)

// learnedScorer scores as the learning loop evaluated and promoted the
// model: the detector's score combined with the supervised head the
// radiologists' labels fitted, judged against the threshold they
// recalibrated.
type learnedScorer struct {
	Scorer
	comb  *learn.Combiner
	embed func(sentinel.Image) []float32
	// uLimit is the detector's SWAG-uncertainty limit, if it has one.
	uLimit *float64
	// margin is the detector's uncertain band around its threshold, moved
	// to the combined score (0: none).
	margin float64
}

// LearnedCombiner returns what a retraining cycle saved beside the model
// file at path (its head and recalibrated threshold), or nil when there is
// nothing (a model from `sentinel train`).
func LearnedCombiner(path string) (*learn.Combiner, error) {
	if path == "" {
		return nil, nil
	}
	sc, err := readSidecar(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return sc.Combiner, nil
}

// combinerOf returns the combiner m scores with in the learning loop: the
// one saved beside its model file at path, or for a model without one
// (path "" included) its detector score standardised on its calibration
// normals, thresholded at the target false-positive rate.
func combinerOf(m LearnModel, path string, opt LearningOptions) (*learn.Combiner, error) {
	comb, err := LearnedCombiner(path)
	if err != nil || comb != nil {
		return comb, err
	}
	return learn.FitCombiner(m.CalibrationScores(), opt.TargetFPR, nil, opt.Head), nil
}

// WithLearning returns m scoring with what a retraining cycle saved beside
// it (its supervised head and recalibrated threshold), so that the reports
// decide as the promotion gate measured; m itself when the model has none
// (a model from `sentinel train`). embedder is the learning loop's (nil:
// the default thumbnail).
func WithLearning(m Scorer, embedder learn.Embedder) (Scorer, error) {
	info := m.Info()
	comb, err := LearnedCombiner(info.Path)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", info.Version, err)
	}
	if comb == nil {
		return m, nil
	}
	if !(comb.DetSD > 0) {
		return nil, fmt.Errorf("model %s: %s: detector spread %v", info.Version, sidecarPath(info.Path), comb.DetSD)
	}
	opt := LearningOptions{Embedder: embedder}
	return newLearnedScorer(m, comb, opt.embed), nil
}

// newLearnedScorer scores with m and comb as WithLearning does.
func newLearnedScorer(m Scorer, comb *learn.Combiner, embed func(sentinel.Image) []float32) *learnedScorer {
	s := &learnedScorer{Scorer: m, comb: comb, embed: embed}
	if l, ok := m.(interface{ UncertaintyLimit() (float64, bool) }); ok {
		if v, ok := l.UncertaintyLimit(); ok {
			s.uLimit = &v
		}
	}
	if mg, ok := m.(interface{ UncertainMargin() float64 }); ok && mg.UncertainMargin() > 0 {
		s.margin = mg.UncertainMargin() / comb.DetSD
	}
	return s
}

// Score combines the detector's score of img (at the model's input size)
// with the head. The decision keeps the detector's rules, moved to the
// combined score: uncertain within the detector's uncertain margin of the
// threshold, or when the SWAG uncertainty is above its limit; abnormal
// above the threshold; uncertain in the band below it that the
// detector's normal limit sets (as wide, in standard deviations of the
// seed normals' scores); normal below.
func (s *learnedScorer) Score(img sentinel.Image) (sentinel.Score, error) {
	raw, err := s.Scorer.Score(img)
	if err != nil {
		return raw, err
	}
	in := learn.HeadInput(raw.Components, s.embed(img))
	out := raw
	out.Components = maps.Clone(raw.Components)
	if out.Components == nil {
		out.Components = map[string]float64{}
	}
	out.Components[ComponentDetector] = raw.Value
	if l, ok := s.comb.HeadLogit(in); ok {
		out.Components[ComponentHeadLogit] = l
		out.Components[ComponentHeadWeight] = s.comb.Weight
	}
	v, t := s.comb.Score(raw.Value, in), s.comb.Threshold
	out.Value, out.Threshold, out.NormalLimit = v, t, nil
	if raw.NormalLimit != nil && *raw.NormalLimit < raw.Threshold {
		l := t - (raw.Threshold-*raw.NormalLimit)/s.comb.DetSD
		out.NormalLimit = &l
	}
	what := "combined score"
	if s.comb.UsesHead() {
		what = fmt.Sprintf("combined score (detector and the radiologists' head, weight %.2f)", s.comb.Weight)
	}
	lim := out.NormalLimit
	switch u := raw.Uncertainty; {
	case s.margin > 0 && math.Abs(v-t) < s.margin:
		out.Decision, out.Reason = sentinel.DecisionUncertain, fmt.Sprintf("%s %.3f within %.3g of the threshold %.3f", what, v, s.margin, t)
	case s.uLimit != nil && u != nil && *u > *s.uLimit:
		out.Decision, out.Reason = sentinel.DecisionUncertain, fmt.Sprintf("SWAG uncertainty %.3g above its limit %.3g", *u, *s.uLimit)
	case v > t:
		out.Decision, out.Reason = sentinel.DecisionAbnormal, fmt.Sprintf("%s %.3f above the threshold %.3f", what, v, t)
	case lim != nil && v > *lim:
		out.Decision, out.Reason = sentinel.DecisionUncertain, fmt.Sprintf("%s %.3f above the normal limit %.3f, not above the threshold %.3f", what, v, *lim, t)
	case lim != nil:
		out.Decision, out.Reason = sentinel.DecisionNormal, fmt.Sprintf("%s %.3f at or below the normal limit %.3f", what, v, *lim)
	default:
		out.Decision, out.Reason = sentinel.DecisionNormal, fmt.Sprintf("%s %.3f at or below the threshold %.3f", what, v, t)
	}
	// The detector's distribution check stands: the combined score of a
	// film unlike the normals means no more than its own.
	detector.MarkOutOfDistribution(&out)
	return out, nil
}

// ThresholdSource says how the learning loop set the threshold.
func (s *learnedScorer) ThresholdSource() string { return s.comb.ThresholdSource }

// detectorScore returns the detector's own score from a stored score: a
// learned score keeps it as a component.
func detectorScore(s sentinel.Score) sentinel.Score {
	if v, ok := s.Components[ComponentDetector]; ok {
		s.Value = v
	}
	return s
}
