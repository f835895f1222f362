package main

import (
	"context"
	"log/slog"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// learningOptions turns the configuration into the learning loop's
// settings.
func (e *env) learningOptions() agent.LearningOptions {
	l := e.cfg.Learning
	tc := e.trainConfig()
	return agent.LearningOptions{
		ModelsDir: e.paths.Models,
		Decode:    e.decoder(),
		Resample:  dicomio.Resample,
		Train:     agent.DetectorTrainer(tc),
		Embedder:  learn.Thumbnail{Side: 16},
		Holdout:   learn.HoldoutConfig{Fraction: l.HoldoutFraction, Seed: tc.Seed},
		Head: learn.HeadConfig{L2: l.HeadL2, Iterations: learn.DefaultHeadConfig().Iterations,
			MinPerClass: l.HeadMinPerClass, Shrinkage: l.HeadShrinkage, WeightFolds: l.HeadWeightFolds, MaxFPR: l.HeadMaxFPR},
		Promotion: learn.PromotionConfig{Tolerance: l.PromotionTolerance, HoldoutMinPerClass: l.HoldoutMinPerClass,
			Significance: l.PromotionSignificance, RequireBetter: l.PromoteOnlyIfBetter},
		Decisions: agent.DecisionPolicy{
			NormalSensitivity: e.cfg.Decisions.NormalSensitivity, MinPerClass: e.cfg.Decisions.MinPerClass,
		},
		ReviseWithin:   e.cfg.Ingest.ReviseWithin.Duration,
		MaxReviseShare: l.MaxReviseShare,
		Gates: learn.GateConfig{MaxDistanceZ: l.AdmitDistanceZ, MaxUncertaintyZ: l.AdmitUncertaintyZ,
			Consecutive: l.AdmitConsecutive, MaxPerCycle: l.AdmitMaxPerCycle, HeadGate: l.AdmitHeadGate, MaxHeadLogit: l.AdmitHeadMaxLogit},
		TargetFPR: tc.TargetFPR,
		Logger:    e.log,
	}
}

// queryOptions is a round of n new queries (n < 0: learning.queries_per_round)
// chosen with strategy ("": learning.strategy), as `queries export` and the
// running agent's POST /api/queries choose them.
func (e *env) queryOptions(n int, strategy string, seed int64) (agent.QueryOptions, error) {
	if n < 0 {
		n = e.cfg.Learning.QueriesPerRound
	}
	if strategy == "" {
		strategy = e.cfg.Learning.Strategy
	}
	st, err := learn.ParseStrategy(strategy)
	if err != nil {
		return agent.QueryOptions{}, err
	}
	return agent.QueryOptions{N: n, Strategy: st, Seed: seed, ExpireAfter: e.cfg.Learning.QueryExpiry.Duration}, nil
}

// recordSeeds records the normals a model was trained on as the
// workspace's seed normals, by instance id, for later retraining and the
// admission gates.
func (e *env) recordSeeds(ctx context.Context, db *store.DB, files []string) error {
	dec := e.decoder()
	var seeds []store.SeedNormal
	for _, f := range files {
		inst, _, err := dec(f)
		if err != nil {
			e.log.Warn("seed normal skipped", slog.String("path", f), slog.Any("error", err))
			continue
		}
		seeds = append(seeds, store.SeedNormal{InstanceID: inst.ID, Path: f, PatientKey: inst.PatientKey})
	}
	return db.AddSeedNormals(ctx, seeds)
}
