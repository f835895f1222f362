package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// RetrainResult says what a retraining cycle did.
type RetrainResult struct {
	Candidate     sentinel.ModelInfo
	Current       string
	Verdict       learn.Verdict
	CandidateEval learn.Evaluation
	CurrentEval   *learn.Evaluation
	Plan          learn.TrainingPlan
	TrainedIDs    []string
	// HoldoutAdded is how many newly labelled cases joined the holdout in
	// this cycle.
	HoldoutAdded int
	// WouldRevise lists the recent reports the candidate would decide
	// otherwise, out of Compared, when it was measured against them (a
	// promotion, or a dry run).
	WouldRevise []RevisionPreview
	Compared    int
}

// Retrain runs one retraining cycle: it resolves the labels, decides for
// each newly labelled case, once and for good, whether it joins the frozen
// holdout or training (see learn.AssignHoldout), trains a candidate on the
// seed, labelled and admitted normals (never the holdout), fits the
// supervised head and threshold on the training labels, evaluates the
// candidate and the current model on the holdout and the seed normals, and
// decides by opt.Promotion (learn.Promote): promoted, refused as worse, or
// held for a person when the evidence does not show it better, or when it
// would revise more than opt.MaxReviseShare of the recent reports. Every
// version is kept with its metrics. A promoted model scores the unlabelled
// cases again as the loop next needs them (see candidates), and the running
// agent compares its recent reports with it (Agent.ReviseReports). It holds
// the workspace's learning lease while it runs, and fails with
// ErrCycleRunning if another learning cycle holds it.
func Retrain(ctx context.Context, db *store.DB, opt LearningOptions) (RetrainResult, error) {
	return leased(ctx, db, opt, retrainCycle)
}

func retrainCycle(ctx context.Context, db *store.DB, opt LearningOptions) (RetrainResult, error) {
	var res RetrainResult
	log := opt.log()
	nLabels, err := db.LabelCount(ctx)
	if err != nil {
		return res, err
	}
	cycle, err := db.StartCycle(ctx, store.CycleRetrain, nLabels)
	if err != nil {
		return res, err
	}
	res, err = retrain(ctx, db, opt)
	c := store.Cycle{ID: cycle, Status: "done", CandidateVersion: res.Candidate.Version, Promoted: res.Verdict.Promote,
		Reason: res.Verdict.Reason, ModelVersion: res.Current}
	if err != nil {
		c.Status, c.Reason = "failed", err.Error()
	}
	metrics, _ := json.Marshal(map[string]any{"candidate": res.CandidateEval, "current": res.CurrentEval})
	if ferr := db.FinishCycle(context.WithoutCancel(ctx), c, string(metrics)); ferr != nil {
		err = errors.Join(err, ferr)
	}
	if err == nil {
		log.Info("retrain cycle done", slog.String("candidate", res.Candidate.Version),
			slog.Bool("promoted", res.Verdict.Promote), slog.String("reason", res.Verdict.Reason))
	}
	return res, err
}

func retrain(ctx context.Context, db *store.DB, opt LearningOptions) (RetrainResult, error) {
	var res RetrainResult
	if _, err := UndoContradictedAdmissions(ctx, db); err != nil {
		return res, err
	}
	labels, err := db.AllLabels(ctx)
	if err != nil {
		return res, err
	}
	resolved := learn.ResolveAll(labels)
	seeds, err := db.SeedNormals(ctx)
	if err != nil {
		return res, err
	}
	if len(seeds) == 0 {
		return res, errors.New("retrain: the workspace records no seed normals: run 'sentinel retrain --normals DIR' once, or train with 'sentinel train'")
	}
	// A seed normal always trains, labelled or not: every model so far
	// has trained on it, so it could not judge them fairly.
	toDecide := maps.Clone(resolved)
	for _, s := range seeds {
		delete(toDecide, s.InstanceID)
	}
	roles, err := db.LabelRoles(ctx)
	if err != nil {
		return res, err
	}
	queries, err := db.Queries(ctx, "")
	if err != nil {
		return res, err
	}
	random := map[string]bool{}
	for _, q := range queries {
		random[q.InstanceID] = q.Random
	}
	// A patient's films stay on one side: those of a patient with a seed
	// film train (every model has trained on that patient), the others
	// follow their patient (see learn.AssignHoldout).
	refs, err := db.Patients(ctx)
	if err != nil {
		return res, err
	}
	patients, seedPatients := patientGroups(refs, seeds, opt.log())
	newHoldout, newTrain := learn.AssignHoldout(roles, toDecide, random, patients, seedPatients, opt.Holdout)
	if err := db.RecordLabelRoles(ctx, newHoldout, newTrain); err != nil {
		return res, err
	}
	res.HoldoutAdded = len(newHoldout)
	holdout, err := db.Holdout(ctx)
	if err != nil {
		return res, err
	}
	adm, err := db.Admissions(ctx, store.AdmissionAdmitted)
	if err != nil {
		return res, err
	}
	seedIDs := make([]string, len(seeds))
	paths := map[string]string{}
	for i, s := range seeds {
		seedIDs[i] = s.InstanceID
		paths[s.InstanceID] = s.Path
	}
	admitted := make([]string, len(adm))
	for i, a := range adm {
		admitted[i] = a.InstanceID
	}
	scored, err := db.ScoredInstances(ctx, "")
	if err != nil {
		return res, err
	}
	for _, s := range scored {
		if _, ok := paths[s.InstanceID]; !ok {
			paths[s.InstanceID] = s.Path
		}
	}
	res.Plan = learn.PlanTraining(seedIDs, resolved, admitted, holdout, patients)

	cur, curInfo, curSide, err := currentModel(ctx, db, opt)
	if err != nil && !errors.Is(err, sentinel.ErrNoModel) {
		return res, err
	}
	side := curSide
	if side == 0 {
		side = 64
	}
	imgs := newImageCache(opt, paths, side)
	ids, images := imgs.load(res.Plan.Normals, opt.log())
	res.TrainedIDs = ids
	// The plan lists the admitted cases last: the verified normals before
	// them are the only ones the candidate may calibrate on.
	isAdmitted := map[string]bool{}
	for _, id := range admitted {
		isAdmitted[id] = resolved[id] != learn.Normal // a labelled normal is verified
	}
	verified := 0
	for _, id := range ids {
		if !isAdmitted[id] {
			verified++
		}
	}
	cand, err := opt.Train(ctx, ids, images, verified)
	if err != nil {
		return res, fmt.Errorf("retrain: %w", err)
	}
	res.Candidate = cand.Info()
	if cand.InputSize() != side {
		imgs = newImageCache(opt, paths, cand.InputSize())
	}
	heldOut := heldOutBy(cand)
	comb, err := fitCombiner(cand, imgs, res.Plan, learn.TrainedOn(ids, heldOut), learn.HeldOutSeeds(seedIDs, ids, heldOut), patients, opt)
	if err != nil {
		return res, err
	}
	res.CandidateEval, err = evaluate(cand, comb, imgs, res.Plan.Holdout, seedIDs)
	if err != nil {
		return res, err
	}
	if cur != nil {
		res.Current = curInfo.Version
		curComb, err := combinerOf(cur, curInfo.Path, opt)
		if err != nil {
			return res, err
		}
		curImgs := imgs
		if cur.InputSize() != cand.InputSize() {
			curImgs = newImageCache(opt, paths, cur.InputSize())
		}
		ev, err := evaluate(cur, curComb, curImgs, res.Plan.Holdout, seedIDs)
		if err != nil {
			return res, err
		}
		res.CurrentEval = &ev
	}
	res.Verdict = learn.Promote(res.CandidateEval, res.CurrentEval, opt.Promotion)
	if cur != nil && (res.Verdict.Promote || opt.DryRun) {
		changed, compared, err := previewRevisions(ctx, db, cand, comb, res.CandidateEval, opt)
		if err != nil {
			return res, err
		}
		res.WouldRevise, res.Compared = changed, compared
		res.Verdict = holdForRevisions(res.Verdict, len(changed), compared, opt)
	}
	if opt.DryRun {
		res.Candidate = cand.Info()
		return res, nil
	}
	return res, saveCandidate(ctx, db, opt, cand, comb, &res)
}

// fitCombiner fits the candidate's head and threshold on the training
// labels (labelled normals and abnormals outside the holdout) and on the
// seed normals the candidate held out for calibration (verified normal, and
// scored fairly); trained names the cases the candidate's detector trained
// on, patients their patient keys.
func fitCombiner(m LearnModel, imgs *imageCache, plan learn.TrainingPlan, trained map[string]bool, seedsHeldOut []string, patients map[string]string, opt LearningOptions) (*learn.Combiner, error) {
	var labelled []learn.Labelled
	add := func(ids []string, abnormal bool) error {
		for _, id := range ids {
			img, err := imgs.get(id)
			if err != nil {
				continue
			}
			s, err := m.Score(img)
			if err != nil {
				return err
			}
			labelled = append(labelled, learn.Labelled{Det: s.Value, Embedding: learn.HeadInput(s.Components, opt.embed(img)),
				Abnormal: abnormal, DetTrained: !abnormal && trained[id], Patient: patients[id]})
		}
		return nil
	}
	if err := add(plan.LabelledNormals, false); err != nil {
		return nil, err
	}
	if err := add(plan.Abnormals, true); err != nil {
		return nil, err
	}
	if err := add(seedsHeldOut, false); err != nil {
		return nil, err
	}
	return learn.FitCombiner(m.CalibrationScores(), opt.TargetFPR, labelled, opt.Head), nil
}

// evaluate scores the holdout and the seed normals with m and comb.
func evaluate(m LearnModel, comb *learn.Combiner, imgs *imageCache, holdout map[string]string, seeds []string) (learn.Evaluation, error) {
	// The normal limit moves to the combined score as the scorer moves
	// it (learnedScorer.Score).
	normalLimit := comb.Threshold
	score := func(id string) (float64, bool, error) {
		img, err := imgs.get(id)
		if err != nil {
			return 0, false, nil
		}
		s, err := m.Score(img)
		if err != nil {
			return 0, false, err
		}
		if s.NormalLimit != nil && *s.NormalLimit < s.Threshold && comb.DetSD > 0 {
			normalLimit = comb.Threshold - (s.Threshold-*s.NormalLimit)/comb.DetSD
		}
		return comb.Score(s.Value, learn.HeadInput(s.Components, imgs.opt.embed(img))), true, nil
	}
	var hs []float64
	var ab []bool
	for _, id := range sortedIDs(holdout) {
		v, ok, err := score(id)
		if err != nil {
			return learn.Evaluation{}, err
		}
		if ok {
			hs = append(hs, v)
			ab = append(ab, holdout[id] == learn.Abnormal)
		}
	}
	var ss []float64
	for _, id := range seeds {
		v, ok, err := score(id)
		if err != nil {
			return learn.Evaluation{}, err
		}
		if ok {
			ss = append(ss, v)
		}
	}
	ev := learn.Evaluate(hs, ab, ss, comb.Threshold)
	ev.Operating = learn.Operating(hs, ab, comb.Threshold, normalLimit)
	return ev, nil
}

// placeholderShare is the share of the workspace's instances above which
// one patient key is taken for a placeholder (an anonymiser's constant
// Patient ID) rather than a patient; placeholderMin is the least count for
// that judgement, since in a small workspace one patient may well have
// many of the films.
const (
	placeholderShare = 0.2
	placeholderMin   = 20
)

// patientGroups maps instances to the group that keeps them on one side of
// the holdout: their patient key ("p:" prefix), or, without a usable key,
// their study ("s:"), since a study's films are one patient's. A key held
// by more than placeholderShare of the instances (and more than
// placeholderMin) is a placeholder, not a patient: grouping by it would put
// every film on one side, so it is ignored, with a warning. It also returns
// the groups of the seed normals' patients.
func patientGroups(refs map[string]store.Patient, seeds []store.SeedNormal, log *slog.Logger) (group map[string]string, seedGroups map[string]bool) {
	count := map[string]int{}
	films := len(refs)
	for _, r := range refs {
		if r.Key != "" {
			count[r.Key]++
		}
	}
	for _, s := range seeds {
		if _, ok := refs[s.InstanceID]; !ok {
			films++
			if s.PatientKey != "" {
				count[s.PatientKey]++
			}
		}
	}
	limit := max(placeholderMin, int(placeholderShare*float64(films)))
	for _, k := range slices.Sorted(maps.Keys(count)) {
		if count[k] > limit {
			log.Warn("one patient key holds too many of the films to be a patient (an anonymised Patient ID?); those films are grouped by study instead",
				slog.Int("films", count[k]), slog.Int("of", films))
		}
	}
	usable := func(k string) bool { return k != "" && count[k] <= limit }
	group = map[string]string{}
	for id, r := range refs {
		switch {
		case usable(r.Key):
			group[id] = "p:" + r.Key
		case r.Study != "":
			group[id] = "s:" + r.Study
		}
	}
	seedGroups = map[string]bool{}
	for _, s := range seeds {
		if usable(s.PatientKey) {
			seedGroups["p:"+s.PatientKey] = true
		}
		if g := group[s.InstanceID]; g != "" {
			seedGroups[g] = true
		}
	}
	return group, seedGroups
}

func sortedIDs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// saveCandidate keeps the candidate's file, head and metrics whatever the
// verdict, and makes it current only when promoted.
func saveCandidate(ctx context.Context, db *store.DB, opt LearningOptions, cand LearnModel, comb *learn.Combiner, res *RetrainResult) error {
	info := cand.Info()
	name := SafeName(info.Version) + ".model"
	path := filepath.Join(opt.ModelsDir, name)
	if err := cand.Save(path); err != nil {
		return fmt.Errorf("save candidate: %w", err)
	}
	sc, err := json.MarshalIndent(learnSidecar{Combiner: comb, Evaluation: res.CandidateEval, Verdict: res.Verdict}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(sidecarPath(path), sc); err != nil {
		return fmt.Errorf("save candidate head: %w", err)
	}
	info.Path = path
	if info.Metrics == nil {
		info.Metrics = map[string]float64{}
	}
	info.Metrics["holdout_auc"] = nanToNeg(res.CandidateEval.HoldoutAUC)
	info.Metrics["seed_fpr"] = res.CandidateEval.SeedFPR
	info.Metrics["train_normals"] = float64(len(res.TrainedIDs))
	info.Metrics["labelled_abnormals"] = float64(len(res.Plan.Abnormals))
	info.Metrics["head_weight"] = comb.Weight
	for k, v := range operatingMetrics(res.CandidateEval.Operating) {
		info.Metrics[k] = v
	}
	res.Candidate = info
	if res.Verdict.Promote {
		if err := writeAtomic(filepath.Join(opt.ModelsDir, CurrentModelFile), []byte(name+"\n")); err != nil {
			return fmt.Errorf("make model current: %w", err)
		}
	}
	if err := db.SaveModel(ctx, info, res.Verdict.Promote); err != nil {
		return err
	}
	note := "rejected: " + res.Verdict.Reason
	switch {
	case res.Verdict.Promote:
		note = "promoted: " + res.Verdict.Reason
	case res.Verdict.Held:
		note = "held: " + res.Verdict.Reason
	}
	return db.SetModelNote(ctx, info.Version, note)
}

// nanToNeg records "not measurable" as −1, since JSON has no NaN.
func nanToNeg(v float64) float64 {
	if math.IsNaN(v) {
		return -1
	}
	return v
}

// Rollback makes an earlier model version current again, in the database
// and in the models folder.
func Rollback(ctx context.Context, db *store.DB, modelsDir, version string) (sentinel.ModelInfo, error) {
	return makeCurrent(ctx, db, modelsDir, version, "rolled back at "+time.Now().UTC().Format(time.RFC3339))
}

// makeCurrent makes a kept model version the current one, with a note.
func makeCurrent(ctx context.Context, db *store.DB, modelsDir, version, note string) (sentinel.ModelInfo, error) {
	vs, err := db.ModelVersions(ctx)
	if err != nil {
		return sentinel.ModelInfo{}, err
	}
	for _, v := range vs {
		if v.Info.Version != version {
			continue
		}
		path := v.Info.Path
		if path == "" {
			path = filepath.Join(modelsDir, SafeName(version)+".model")
		}
		if _, err := os.Stat(path); err != nil {
			return v.Info, fmt.Errorf("rollback %s: model file: %w", version, err)
		}
		if err := writeAtomic(filepath.Join(modelsDir, CurrentModelFile), []byte(filepath.Base(path)+"\n")); err != nil {
			return v.Info, fmt.Errorf("rollback %s: %w", version, err)
		}
		return v.Info, db.ActivateModel(ctx, version, note)
	}
	return sentinel.ModelInfo{}, fmt.Errorf("rollback: %w %q", store.ErrUnknownModel, version)
}
