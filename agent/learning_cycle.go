package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// candidates returns the cases the loop may still ask about or admit: the
// scored instances with no label, not in the holdout, not a seed and not
// admitted, each scored by m (rescored and stored when the stored score is
// by another model) and combined with the model's head, with the head's
// logit when the model has a head it trusts. The second result holds the
// cases' own detector scores, in the same order.
func candidates(ctx context.Context, db *store.DB, m LearnModel, info sentinel.ModelInfo, opt LearningOptions, withEmbeddings bool) ([]learn.Case, []float64, error) {
	labels, err := db.AllLabels(ctx)
	if err != nil {
		return nil, nil, err
	}
	holdout, err := db.Holdout(ctx)
	if err != nil {
		return nil, nil, err
	}
	adm, err := db.Admissions(ctx, store.AdmissionAdmitted)
	if err != nil {
		return nil, nil, err
	}
	seeds, err := db.SeedNormals(ctx)
	if err != nil {
		return nil, nil, err
	}
	skip := map[string]bool{}
	for id := range labels {
		skip[id] = true
	}
	for _, id := range holdout {
		skip[id] = true
	}
	for _, a := range adm {
		skip[a.InstanceID] = true
	}
	paths := map[string]string{}
	for _, s := range seeds {
		skip[s.InstanceID] = true
		paths[s.InstanceID] = s.Path
	}
	scored, err := db.ScoredInstances(ctx, info.Version)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range scored {
		paths[s.InstanceID] = s.Path
	}
	comb, err := combinerOf(m, info.Path, opt)
	if err != nil {
		return nil, nil, err
	}
	// A rescoring is stored as the model's reports would give it.
	reporter, err := WithLearning(m, opt.Embedder)
	if err != nil {
		return nil, nil, err
	}
	imgs := newImageCache(opt, paths, m.InputSize())
	var cases []learn.Case
	var det []float64
	for _, s := range scored {
		if skip[s.InstanceID] {
			continue
		}
		// The detector's own score: the agent stores what its reports
		// said, which a learned model combined with its head.
		sc := detectorScore(s.Score)
		ood := s.Score.Decision == sentinel.DecisionOutOfDistribution
		var emb []float32
		needImage := withEmbeddings || comb.UsesHead() || s.ModelVersion != info.Version
		if needImage {
			img, err := imgs.get(s.InstanceID)
			if err != nil {
				opt.log().Warn("learning image skipped", slog.String("instance", s.InstanceID), slog.Any("error", err))
				continue
			}
			emb = opt.embed(img)
			if s.ModelVersion != info.Version {
				stored, err := reporter.Score(img)
				if err != nil {
					return nil, nil, err
				}
				if err := db.SaveScore(ctx, s.InstanceID, info.Version, stored); err != nil {
					return nil, nil, err
				}
				sc = detectorScore(stored)
				ood = stored.Decision == sentinel.DecisionOutOfDistribution
			}
		}
		if ood {
			// Unlike the normals in any direction: neither asked about
			// nor admitted (the gate refuses it too).
			continue
		}
		in := learn.HeadInput(sc.Components, emb)
		c := learn.Case{InstanceID: s.InstanceID, Score: comb.Score(sc.Value, in),
			Threshold: comb.Threshold, Uncertainty: sc.Uncertainty, Embedding: emb, OutOfDistribution: ood}
		if l, ok := comb.HeadLogit(in); ok {
			c.HeadLogit = &l
		}
		cases = append(cases, c)
		det = append(det, sc.Value)
	}
	return cases, det, nil
}

// QueryOptions says how many cases to ask about and how.
type QueryOptions struct {
	N        int
	Strategy learn.Strategy
	Seed     int64
	// ExpireAfter expires open queries older than this first (0 keeps them).
	ExpireAfter time.Duration
	Now         func() time.Time
}

// NewQueries chooses up to q.N new cases to ask radiologists about with
// the current model, records each query with its strategy and reason, and
// returns the open worklist. A case is never queried twice: every case
// ever queried, labelled, admitted or in the holdout is excluded. A round
// holds the workspace's queries lease, and fails with ErrRoundRunning while
// another round is being chosen.
func NewQueries(ctx context.Context, db *store.DB, opt LearningOptions, q QueryOptions) ([]store.WorklistRow, error) {
	if q.ExpireAfter > 0 {
		now := time.Now
		if q.Now != nil {
			now = q.Now
		}
		if _, err := db.ExpireQueries(ctx, now().Add(-q.ExpireAfter)); err != nil {
			return nil, err
		}
	}
	if q.N > 0 {
		err := withLease(ctx, db, queriesLease, ErrRoundRunning, opt.log(), func(ctx context.Context) error {
			return chooseQueries(ctx, db, opt, q)
		})
		if err != nil {
			return nil, err
		}
	}
	return db.Worklist(ctx)
}

// chooseQueries picks and records one round of q.N queries.
func chooseQueries(ctx context.Context, db *store.DB, opt LearningOptions, q QueryOptions) error {
	m, info, _, err := currentModel(ctx, db, opt)
	if err != nil {
		return err
	}
	withEmb := q.Strategy == learn.Diverse || q.Strategy == learn.Hybrid
	cases, _, err := candidates(ctx, db, m, info, opt, withEmb)
	if err != nil {
		return err
	}
	queried, err := db.QueriedIDs(ctx)
	if err != nil {
		return err
	}
	var anchors [][]float32
	if withEmb {
		anchors, err = labelledEmbeddings(ctx, db, opt, m.InputSize())
		if err != nil {
			return err
		}
	}
	group, busy, err := queryGroups(ctx, db, opt)
	if err != nil {
		return err
	}
	for i := range cases {
		cases[i].Group = group[cases[i].InstanceID]
	}
	picks, err := learn.Select(cases, learn.SelectOptions{Strategy: q.Strategy, N: q.N, Seed: q.Seed, Exclude: queried, Anchors: anchors, Busy: busy})
	if err != nil {
		return err
	}
	for _, p := range picks {
		if _, err := db.AddQuery(ctx, sentinel.Query{InstanceID: p.InstanceID, Strategy: string(p.Strategy), Reason: p.Reason, Random: p.Random}); err != nil {
			return err
		}
	}
	return nil
}

// queryGroups returns each instance's patient group (see patientGroups)
// and the groups that have an open query: a round asks about one film per
// patient, and a patient waiting for an answer is not asked again.
func queryGroups(ctx context.Context, db *store.DB, opt LearningOptions) (group map[string]string, busy map[string]bool, err error) {
	refs, err := db.Patients(ctx)
	if err != nil {
		return nil, nil, err
	}
	seeds, err := db.SeedNormals(ctx)
	if err != nil {
		return nil, nil, err
	}
	group, _ = patientGroups(refs, seeds, opt.log())
	open, err := db.Queries(ctx, sentinel.QueryOpen)
	if err != nil {
		return nil, nil, err
	}
	busy = map[string]bool{}
	for _, q := range open {
		if g := group[q.InstanceID]; g != "" {
			busy[g] = true
		}
	}
	return group, busy, nil
}

// labelledEmbeddings embeds the labelled instances, the cases the diverse
// strategy moves away from.
func labelledEmbeddings(ctx context.Context, db *store.DB, opt LearningOptions, side int) ([][]float32, error) {
	labels, err := db.AllLabels(ctx)
	if err != nil {
		return nil, err
	}
	scored, err := db.ScoredInstances(ctx, "")
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, s := range scored {
		if _, ok := labels[s.InstanceID]; ok {
			paths[s.InstanceID] = s.Path
		}
	}
	imgs := newImageCache(opt, paths, side)
	var out [][]float32
	for id := range paths {
		if img, err := imgs.get(id); err == nil {
			out = append(out, opt.embed(img))
		}
	}
	return out, nil
}

// AdmissionResult says what an admission cycle did.
type AdmissionResult struct {
	Cycle    int64
	Checked  int
	Passed   int
	Admitted []learn.GateResult
}

// AdmitCycle runs one oracle-free admission cycle with the current model:
// every unlabelled case is measured against the seed normals' scores and
// uncertainties; those passing both gates in opt.Gates.Consecutive cycles
// in a row join the normal set. Every gate value is recorded. It holds the
// workspace's learning lease while it runs, and fails with ErrCycleRunning
// if another learning cycle holds it.
func AdmitCycle(ctx context.Context, db *store.DB, opt LearningOptions) (AdmissionResult, error) {
	return leased(ctx, db, opt, admitCycle)
}

func admitCycle(ctx context.Context, db *store.DB, opt LearningOptions) (AdmissionResult, error) {
	var res AdmissionResult
	m, info, _, err := currentModel(ctx, db, opt)
	if err != nil {
		return res, err
	}
	seeds, err := db.SeedNormals(ctx)
	if err != nil {
		return res, err
	}
	if len(seeds) == 0 {
		return res, errors.New("admission: the workspace records no seed normals")
	}
	// The gates measure from the seed normals the model held out from
	// training (its calibration normals). The ones it trained on score lower
	// than any new normal will, so against them almost nothing passes: in the
	// benchmark, five cycles over 466 pool cases admitted none.
	cs := m.CalibrationScores()
	if len(cs) < 2 {
		return res, errors.New("admission: the model holds fewer than two calibration normals")
	}
	stats := learn.NewSeedStats(cs, m.CalibrationUncertainties())
	// The distance gate works on the detector's own score, not the head's
	// blend: the paper's gate is against the seed normals' distances. The
	// head, once labels have fitted one, is a gate of its own.
	if !opt.Gates.HeadGate {
		info.Path = "" // no sidecar, no head: the images need not be read
	}
	cases, det, err := candidates(ctx, db, m, info, opt, false)
	if err != nil {
		return res, err
	}
	for i := range cases {
		cases[i].Score = det[i]
	}
	nLabels, _ := db.LabelCount(ctx)
	cycle, err := db.StartCycle(ctx, store.CycleAdmission, nLabels)
	if err != nil {
		return res, err
	}
	results := make([]learn.GateResult, len(cases))
	checks := make([]store.GateCheck, len(cases))
	for i, c := range cases {
		results[i] = learn.Gate(c, stats, opt.Gates)
		checks[i] = gateCheck(results[i])
		if results[i].Pass {
			res.Passed++
		}
	}
	streaks, err := db.GateStreaks(ctx)
	if err != nil {
		return res, err
	}
	next, admit := learn.Admissions(results, streaks, opt.Gates)
	adm := make([]store.GateCheck, len(admit))
	for i, a := range admit {
		adm[i] = gateCheck(a)
	}
	if err := db.RecordAdmissionCycle(ctx, cycle, info.Version, checks, next, adm); err != nil {
		return res, err
	}
	res.Cycle, res.Checked, res.Admitted = cycle, len(cases), admit
	err = db.FinishCycle(ctx, store.Cycle{ID: cycle, Status: "done", ModelVersion: info.Version,
		Reason: fmt.Sprintf("%d checked, %d passed, %d admitted", len(cases), res.Passed, len(admit))}, "")
	return res, err
}

// gateCheck is the store's record of a gate result.
func gateCheck(r learn.GateResult) store.GateCheck {
	return store.GateCheck{InstanceID: r.InstanceID, DistanceZ: r.DistanceZ, UncertaintyZ: r.UncertaintyZ, HeadLogit: r.HeadLogit, Pass: r.Pass}
}

// RetrainPolicy says when the agent learns by itself.
type RetrainPolicy struct {
	// EveryLabels retrains once this many labels arrived since the last
	// retraining (0: never on labels).
	EveryLabels int
	// EveryAdmissions retrains once this many cases were admitted since
	// the last retraining (0: never on admissions).
	EveryAdmissions int
	// Every retrains when the last retraining is older than this and at
	// least one label or admission arrived since (0: never on a schedule).
	Every time.Duration
	// AdmitEvery runs an oracle-free admission cycle when the last one is
	// older than this (0: only just before a retraining).
	AdmitEvery time.Duration
	Now        func() time.Time
}

func (p RetrainPolicy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// MaybeRetrain is the hook the running agent calls periodically: it runs
// an admission cycle when the policy's admission schedule says one is due,
// and an admission cycle followed by a retraining cycle when a retraining
// is due. It reports whether it retrained. Another learning cycle running
// on the workspace is no error: the turn is skipped, and the next one finds
// the work still due.
func MaybeRetrain(ctx context.Context, db *store.DB, opt LearningOptions, p RetrainPolicy) (bool, error) {
	admitDue, err := AdmissionDue(ctx, db, p)
	if err != nil {
		return false, err
	}
	if admitDue {
		res, err := AdmitCycle(ctx, db, opt)
		switch {
		case errors.Is(err, ErrCycleRunning):
			opt.log().Info("learning cycle skipped", slog.Any("reason", err))
			return false, nil
		case errors.Is(err, sentinel.ErrNoModel):
		case err != nil:
			return false, err
		default:
			opt.log().Info("admission cycle done", slog.Int64("cycle", res.Cycle), slog.Int("checked", res.Checked),
				slog.Int("passed", res.Passed), slog.Int("admitted", len(res.Admitted)))
		}
	}
	due, err := RetrainDue(ctx, db, p)
	if err != nil || !due {
		return false, err
	}
	if !admitDue {
		_, err = AdmitCycle(ctx, db, opt)
	}
	if err == nil || errors.Is(err, sentinel.ErrNoModel) {
		_, err = Retrain(ctx, db, opt)
	}
	if errors.Is(err, ErrCycleRunning) {
		opt.log().Info("learning cycle skipped", slog.Any("reason", err))
		return false, nil
	}
	return err == nil, err
}

// AdmissionDue reports whether the policy's admission schedule calls for
// an admission cycle now.
func AdmissionDue(ctx context.Context, db *store.DB, p RetrainPolicy) (bool, error) {
	if p.AdmitEvery <= 0 {
		return false, nil
	}
	last, ok, err := db.LastCycle(ctx, store.CycleAdmission)
	if err != nil {
		return false, err
	}
	return !ok || p.now().Sub(last.FinishedAt) >= p.AdmitEvery, nil
}

// RetrainDue applies the policy to the labels and admissions stored since
// the last retraining.
func RetrainDue(ctx context.Context, db *store.DB, p RetrainPolicy) (bool, error) {
	n, err := db.LabelCount(ctx)
	if err != nil {
		return false, err
	}
	last, ok, err := db.LastCycle(ctx, store.CycleRetrain)
	if err != nil {
		return false, err
	}
	labels := n - last.LabelsAtStart
	admitted, err := db.AdmittedAfterCycle(ctx, last.ID)
	if err != nil {
		return false, err
	}
	switch {
	case p.EveryLabels > 0 && labels >= p.EveryLabels:
		return true, nil
	case p.EveryAdmissions > 0 && admitted >= p.EveryAdmissions:
		return true, nil
	case p.Every > 0 && labels+admitted > 0:
		return !ok || p.now().Sub(last.FinishedAt) >= p.Every, nil
	}
	return false, nil
}
