package learn

import (
	"fmt"
	"math"
)

// GateConfig sets the oracle-free admission gates (IL-PatchCore+SWAG,
// arXiv 2511.03912): a case joins the normal set only if its distance score
// and its SWAG uncertainty are both within a z-score bound of the seed
// normals, in Consecutive cycles in a row.
type GateConfig struct {
	// MaxDistanceZ bounds (score − seed mean) / seed sd from above, and
	// MinDistanceZ from below (0: −3): a score far below every seed
	// normal is not a more certain normal but a film the model does not
	// understand, and is never admitted.
	MaxDistanceZ float64
	MinDistanceZ float64
	// MaxUncertaintyZ bounds (uncertainty − seed mean) / seed sd.
	MaxUncertaintyZ float64
	// Consecutive is how many cycles in a row a case must pass (2 in the
	// authors' code).
	Consecutive int
	// MaxPerCycle caps the admissions of one cycle (0: no cap), so one
	// drifted cycle cannot flood the normal set.
	MaxPerCycle int
	// HeadGate adds a third gate once radiologists' labels have fitted a
	// supervised head the model in use trusts: the head must call the case
	// normal, its logit (Case.HeadLogit) at most MaxHeadLogit (0: the
	// head's own boundary; below 0 admits fewer cases, each more surely
	// normal). Without such a head only the two gates of the method apply.
	HeadGate     bool
	MaxHeadLogit float64
}

// SeedStats are the mean and sample standard deviation of the seed
// normals' scores and uncertainties, the reference the gates measure from.
type SeedStats struct {
	ScoreMean, ScoreSD float64
	// HasUncertainty is false when the model gives no uncertainty; the
	// uncertainty gate is then not applied (recorded as absent), and the
	// distance gate alone decides.
	HasUncertainty                 bool
	UncertaintyMean, UncertaintySD float64
}

// NewSeedStats summarises the seed normals' scores and uncertainties
// (uncertainties may be empty).
func NewSeedStats(scores, uncertainties []float64) SeedStats {
	s := SeedStats{}
	s.ScoreMean, s.ScoreSD = meanSD(scores)
	if len(uncertainties) >= 2 {
		s.HasUncertainty = true
		s.UncertaintyMean, s.UncertaintySD = meanSD(uncertainties)
	}
	return s
}

func meanSD(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 1
	}
	var m float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	var s float64
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	sd := 0.0
	if len(v) > 1 {
		sd = math.Sqrt(s / float64(len(v)-1))
	}
	if sd < 1e-12 {
		sd = 1e-12
	}
	return m, sd
}

// GateResult is one case's gate values in one cycle.
type GateResult struct {
	InstanceID string
	DistanceZ  float64
	// UncertaintyZ is nil when the uncertainty gate could not be applied.
	UncertaintyZ *float64
	// HeadLogit is the head gate's value, nil when that gate was not
	// applied.
	HeadLogit *float64
	// OutOfDistribution is the case's mark (Case.OutOfDistribution).
	OutOfDistribution bool
	Pass              bool
}

// Gate measures c against the seed normals.
func Gate(c Case, s SeedStats, cfg GateConfig) GateResult {
	r := GateResult{InstanceID: c.InstanceID, DistanceZ: (c.Score - s.ScoreMean) / s.ScoreSD, OutOfDistribution: c.OutOfDistribution}
	minZ := cfg.MinDistanceZ
	if minZ == 0 {
		minZ = -3
	}
	r.Pass = r.DistanceZ <= cfg.MaxDistanceZ && r.DistanceZ >= minZ && !c.OutOfDistribution
	if s.HasUncertainty && c.Uncertainty != nil && !math.IsNaN(*c.Uncertainty) {
		z := (*c.Uncertainty - s.UncertaintyMean) / s.UncertaintySD
		r.UncertaintyZ = &z
		r.Pass = r.Pass && z <= cfg.MaxUncertaintyZ
	} else if s.HasUncertainty {
		// The seed has uncertainties but this case has none: it cannot be
		// shown to be within the bound, so it does not pass.
		r.Pass = false
	}
	if cfg.HeadGate && c.HeadLogit != nil && !math.IsNaN(*c.HeadLogit) {
		l := *c.HeadLogit
		r.HeadLogit = &l
		r.Pass = r.Pass && l <= cfg.MaxHeadLogit
	}
	return r
}

// Admissions decides which cases join the normal set this cycle. streak
// holds, per case, how many cycles in a row it has passed before this one;
// Admissions returns the updated streaks and the results of the cases that
// reach cfg.Consecutive, least anomalous first and capped at
// cfg.MaxPerCycle. Admitted cases leave the streak map.
func Admissions(results []GateResult, streak map[string]int, cfg GateConfig) (map[string]int, []GateResult) {
	need := max(cfg.Consecutive, 1)
	next := map[string]int{}
	var admit []GateResult
	for _, r := range results {
		if !r.Pass {
			continue
		}
		s := streak[r.InstanceID] + 1
		if s >= need {
			admit = append(admit, r)
			continue
		}
		next[r.InstanceID] = s
	}
	sortByDistance(admit)
	if cfg.MaxPerCycle > 0 && len(admit) > cfg.MaxPerCycle {
		for _, r := range admit[cfg.MaxPerCycle:] {
			next[r.InstanceID] = need - 1 // still eligible next cycle
		}
		admit = admit[:cfg.MaxPerCycle]
	}
	return next, admit
}

func sortByDistance(rs []GateResult) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].DistanceZ < rs[j-1].DistanceZ; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// Reason describes a gate result for the admissions record.
func (r GateResult) Reason() string {
	s := fmt.Sprintf("distance z %.3g", r.DistanceZ)
	if r.OutOfDistribution {
		s += " (out of distribution: never admitted)"
	}
	if r.UncertaintyZ == nil {
		s += " (no uncertainty gate)"
	} else {
		s += fmt.Sprintf(", uncertainty z %.3g", *r.UncertaintyZ)
	}
	if r.HeadLogit != nil {
		s += fmt.Sprintf(", head logit %.3g", *r.HeadLogit)
	}
	return s
}
