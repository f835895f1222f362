package agent

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// DecisionPolicy says when a film below the threshold may be called
// "normal", a rule-out, rather than "not_flagged", which claims nothing.
// Commercial triage software only flags; a normal call needs evidence
// from the site's own labels: the share of abnormal films in the frozen
// labelled holdout that the model does not call normal (its rule-out
// sensitivity) must be at least NormalSensitivity at the lower end of its
// 95% interval, over at least MinPerClass labelled cases of each class.
type DecisionPolicy struct {
	// NormalSensitivity is the least rule-out sensitivity (lower 95%
	// Wilson bound) that allows "normal"; 0 means the default 0.98, and
	// a value above 1 never allows it.
	NormalSensitivity float64
	// MinPerClass is the least number of labelled normal and abnormal
	// holdout cases; 0 means the default 50.
	MinPerClass int
}

func (p DecisionPolicy) bound() float64 {
	if p.NormalSensitivity <= 0 {
		return 0.98
	}
	return p.NormalSensitivity
}

func (p DecisionPolicy) minPerClass() int {
	if p.MinPerClass <= 0 {
		return 50
	}
	return p.MinPerClass
}

// Model metrics that hold a model's operating point on the frozen
// holdout, saved when the learning loop evaluates it.
const (
	metricSensitivity         = "holdout_sensitivity"
	metricSensitivityLo       = "holdout_sensitivity_lo"
	metricSensitivityHi       = "holdout_sensitivity_hi"
	metricSpecificity         = "holdout_specificity"
	metricSpecificityLo       = "holdout_specificity_lo"
	metricSpecificityHi       = "holdout_specificity_hi"
	metricNormalSensitivity   = "holdout_normal_sensitivity"
	metricNormalSensitivityLo = "holdout_normal_sensitivity_lo"
	metricNormalSensitivityHi = "holdout_normal_sensitivity_hi"
	metricHoldoutNormals      = "holdout_normals"
	metricHoldoutAbnormals    = "holdout_abnormals"
)

// operatingMetrics returns op as model metrics: the holdout's counts, and
// the shares that could be measured (a class missing leaves its out).
func operatingMetrics(op learn.OperatingPoint) map[string]float64 {
	out := map[string]float64{metricHoldoutNormals: float64(op.Normals), metricHoldoutAbnormals: float64(op.Abnormals)}
	put := func(name string, v float64, ci [2]float64) {
		if math.IsNaN(v) {
			return
		}
		out[name], out[name+"_lo"], out[name+"_hi"] = v, ci[0], ci[1]
	}
	put(metricSensitivity, op.Sensitivity, op.SensitivityCI)
	put(metricSpecificity, op.Specificity, op.SpecificityCI)
	put(metricNormalSensitivity, op.NormalSensitivity, op.NormalSensitivityCI)
	return out
}

// operatingPointOf reads a model's operating point from its metrics, and
// judges by policy whether it allows "normal"; nil when the model was
// never measured on a holdout with both classes.
func operatingPointOf(info sentinel.ModelInfo, policy DecisionPolicy, at time.Time) *sentinel.OperatingPoint {
	m := info.Metrics
	if _, ok := m[metricSensitivity]; !ok {
		return nil
	}
	if _, ok := m[metricSpecificity]; !ok {
		return nil
	}
	op := &sentinel.OperatingPoint{
		ModelVersion:        info.Version,
		Normals:             int(m[metricHoldoutNormals]),
		Abnormals:           int(m[metricHoldoutAbnormals]),
		Sensitivity:         m[metricSensitivity],
		SensitivityCI:       [2]float64{m[metricSensitivityLo], m[metricSensitivityHi]},
		Specificity:         m[metricSpecificity],
		SpecificityCI:       [2]float64{m[metricSpecificityLo], m[metricSpecificityHi]},
		NormalSensitivity:   m[metricNormalSensitivity],
		NormalSensitivityCI: [2]float64{m[metricNormalSensitivityLo], m[metricNormalSensitivityHi]},
		MeasuredAt:          at,
	}
	op.NormalAllowed = op.Normals >= policy.minPerClass() && op.Abnormals >= policy.minPerClass() &&
		op.NormalSensitivityCI[0] >= policy.bound()
	return op
}

// operatingPoints caches the current model's operating point, read from
// the store once per model version and minute.
type operatingPoints struct {
	mu      sync.Mutex
	version string
	read    time.Time
	op      *sentinel.OperatingPoint
}

// operatingPoint returns the operating point of the model version, or nil
// when it has none yet.
func (a *Agent) operatingPoint(version string) *sentinel.OperatingPoint {
	c := &a.ops
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version == version && time.Since(c.read) < time.Minute {
		return c.op
	}
	op, err := lookupOperatingPoint(context.Background(), a.db, version, a.cfg.Decisions)
	if err != nil {
		a.log.Warn("operating point", "model", version, "error", err)
		return c.op
	}
	c.version, c.read, c.op = version, time.Now(), op
	return op
}

// OperatingPoint returns what the labelled holdout last showed about the
// model version, judged by policy, or nil when it was never measured.
func OperatingPoint(ctx context.Context, db *store.DB, version string, policy DecisionPolicy) (*sentinel.OperatingPoint, error) {
	return lookupOperatingPoint(ctx, db, version, policy)
}

// lookupOperatingPoint finds the model version's metrics in the store.
func lookupOperatingPoint(ctx context.Context, db *store.DB, version string, policy DecisionPolicy) (*sentinel.OperatingPoint, error) {
	models, err := db.Models(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range models {
		if m.Version == version {
			return operatingPointOf(m, policy, m.CreatedAt), nil
		}
	}
	return nil, nil
}

// qualify applies the decision policy to the current model's score: a
// "normal" below the threshold stays one only when the holdout allows it;
// otherwise it is "not_flagged", and the reason says what is missing.
func (a *Agent) qualify(s sentinel.Score) sentinel.Score {
	if s.Decision != sentinel.DecisionNormal {
		return s
	}
	version := a.currentModel().Info().Version
	return Qualify(s, a.operatingPoint(version), a.cfg.Decisions)
}

// Qualify turns a "normal" decision into "not_flagged" unless op, the
// model's operating point on the labelled holdout, allows normal calls.
func Qualify(s sentinel.Score, op *sentinel.OperatingPoint, policy DecisionPolicy) sentinel.Score {
	if s.Decision != sentinel.DecisionNormal || (op != nil && op.NormalAllowed) {
		return s
	}
	s.Decision = sentinel.DecisionNotFlagged
	why := fmt.Sprintf("no labelled holdout has measured this model yet (%d normal and %d abnormal cases needed)",
		policy.minPerClass(), policy.minPerClass())
	if op != nil {
		why = fmt.Sprintf("on the labelled holdout (%d normal, %d abnormal) the rule-out sensitivity is %.3f (95%% CI %.3f–%.3f); "+
			"a normal call needs at least %.2f at the lower bound and %d cases of each class",
			op.Normals, op.Abnormals, op.NormalSensitivity, op.NormalSensitivityCI[0], op.NormalSensitivityCI[1],
			policy.bound(), policy.minPerClass())
	}
	s.Reason += "; not called normal: " + why
	return s
}
