package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// RehearsalOptions says how Rehearse runs the learning loop.
type RehearsalOptions struct {
	Rounds   int
	PerRound int
	// Strategy chooses each round's queries; "" asks nothing, so that
	// only admission adds to the normals.
	Strategy learn.Strategy
	// Seed seeds round r's queries with Seed + r.
	Seed int64
	// Admit runs an admission cycle before each retraining, as the
	// running agent does (MaybeRetrain).
	Admit bool
	// Answer is the stand-in radiologist: the label (learn.Normal or
	// learn.Abnormal) of the film at path, false when it has none.
	Answer func(path string) (string, bool)
	// Reader names the answers' reader in the labels table.
	Reader string
}

// Admits says whether the rehearsal runs admission cycles: when asked to,
// and always when it asks nothing.
func (r RehearsalOptions) Admits() bool { return r.Admit || r.Strategy == "" }

// RehearsalRound is the workspace after one round of Rehearse.
type RehearsalRound struct {
	Round int
	// Labels counts the labels stored, Abnormals the instances whose
	// labels resolve abnormal, Holdout the labelled cases frozen as the
	// holdout.
	Labels, Abnormals, Holdout int
	// Asked counts this round's queries, Unanswered those the answerer
	// had no label for.
	Asked, Unanswered int
	// Admitted holds the paths of the cases admitted as normal so far.
	Admitted []string
	// Admission is this round's admission cycle (nil when none ran).
	Admission *AdmissionResult
	// Retrain is this round's retraining cycle (nil in round 0).
	Retrain *RetrainResult
	// Model is the model in use after the round.
	Model sentinel.ModelInfo
}

// Rehearse runs the learning loop the running agent runs, on a workspace
// that holds a current model, its seed normals and scored films: round 0
// reports the workspace as it is; each later round asks about PerRound
// films (NewQueries, as POST /api/queries does), stores the answerer's
// labels (ImportLabels, as POST /api/labels does), runs an admission cycle
// when opt says so, and a retraining cycle (Retrain) with its holdout and
// promotion gate. emit gets each round as it ends; an error from it stops
// the rehearsal.
func Rehearse(ctx context.Context, db *store.DB, opt LearningOptions, r RehearsalOptions, emit func(RehearsalRound) error) error {
	if r.Strategy != "" && r.Answer == nil {
		return errors.New("rehearse: queries need an answerer")
	}
	reader := r.Reader
	if reader == "" {
		reader = "rehearsal"
	}
	for round := 0; round <= r.Rounds; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var row RehearsalRound
		if round > 0 {
			if r.Strategy != "" {
				asked, unanswered, err := askAndAnswer(ctx, db, opt, r, round, reader)
				if err != nil {
					return err
				}
				row.Asked, row.Unanswered = asked, unanswered
			}
			if r.Admits() {
				adm, err := AdmitCycle(ctx, db, opt)
				if err != nil {
					return fmt.Errorf("rehearse: round %d: %w", round, err)
				}
				row.Admission = &adm
			}
			res, err := Retrain(ctx, db, opt)
			if err != nil {
				return fmt.Errorf("rehearse: round %d: %w", round, err)
			}
			row.Retrain = &res
		}
		row.Round = round
		if err := describe(ctx, db, opt.ModelsDir, &row); err != nil {
			return fmt.Errorf("rehearse: round %d: %w", round, err)
		}
		if err := emit(row); err != nil {
			return err
		}
	}
	return nil
}

// askAndAnswer chooses one round of queries and stores the answerer's
// labels for them.
func askAndAnswer(ctx context.Context, db *store.DB, opt LearningOptions, r RehearsalOptions, round int, reader string) (asked, unanswered int, err error) {
	before, err := db.QueriedIDs(ctx)
	if err != nil {
		return 0, 0, err
	}
	open, err := NewQueries(ctx, db, opt, QueryOptions{N: r.PerRound, Strategy: r.Strategy, Seed: r.Seed + int64(round)})
	if err != nil {
		return 0, 0, fmt.Errorf("rehearse: round %d: %w", round, err)
	}
	now := time.Now().UTC()
	var rows []learn.LabelRow
	for _, q := range open {
		if before[q.InstanceID] {
			continue // asked in an earlier round and still open
		}
		asked++
		value, ok := r.Answer(q.SourcePath)
		if !ok {
			unanswered++
			continue
		}
		rows = append(rows, learn.LabelRow{Line: len(rows) + 1, Key: "instance_id", KeyValue: q.InstanceID,
			Value: value, Reader: reader, Time: now})
	}
	rep, err := ImportLabels(ctx, db, rows, nil, "rehearsal")
	if err != nil {
		return asked, unanswered, fmt.Errorf("rehearse: round %d: %w", round, err)
	}
	if len(rep.Errors) > 0 {
		return asked, unanswered, fmt.Errorf("rehearse: round %d: line %d: %w", round, rep.Errors[0].Line, rep.Errors[0].Err)
	}
	return asked, unanswered, nil
}

// describe fills in what the workspace holds after a round.
func describe(ctx context.Context, db *store.DB, modelsDir string, row *RehearsalRound) error {
	n, err := db.LabelCount(ctx)
	if err != nil {
		return err
	}
	labels, err := db.AllLabels(ctx)
	if err != nil {
		return err
	}
	for _, v := range learn.ResolveAll(labels) {
		if v == learn.Abnormal {
			row.Abnormals++
		}
	}
	hold, err := db.Holdout(ctx)
	if err != nil {
		return err
	}
	adm, err := db.Admissions(ctx, store.AdmissionAdmitted)
	if err != nil {
		return err
	}
	scored, err := db.ScoredInstances(ctx, "")
	if err != nil {
		return err
	}
	paths := map[string]string{}
	for _, s := range scored {
		paths[s.InstanceID] = s.Path
	}
	for _, a := range adm {
		row.Admitted = append(row.Admitted, paths[a.InstanceID])
	}
	slices.Sort(row.Admitted)
	row.Model, err = db.ActiveModel(ctx)
	if err != nil {
		return err
	}
	if row.Model.Path == "" {
		row.Model.Path = filepath.Join(modelsDir, SafeName(row.Model.Version)+".model")
	}
	row.Labels, row.Holdout = n, len(hold)
	return nil
}

// RehearsalFile returns the answerer of a research labels file: a film is
// answered by its file name's row.
func RehearsalFile(rows []LabelRow) func(path string) (string, bool) {
	truth := map[string]string{}
	for _, r := range rows {
		v := learn.Abnormal
		if r.Normal() {
			v = learn.Normal
		}
		truth[filepath.Base(filepath.FromSlash(r.File))] = v
	}
	return func(path string) (string, bool) {
		v, ok := truth[filepath.Base(path)]
		return v, ok
	}
}
