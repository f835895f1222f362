package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// RevisionPreview is one recent report that a candidate model would
// decide otherwise, were it made current.
type RevisionPreview struct {
	InstanceID       string            `json:"instance_id"`
	StudyInstanceUID string            `json:"study_instance_uid"`
	AccessionNumber  string            `json:"accession_number,omitempty"`
	From             sentinel.Decision `json:"from"`
	To               sentinel.Decision `json:"to"`
	ModelVersion     string            `json:"model_version"`
}

// defaultReviseWindow is how far back a preview looks when the options
// set no window.
const defaultReviseWindow = 7 * 24 * time.Hour

// previewRevisions scores the reports written within the revision window
// with the candidate (its detector and head, with the decision policy at
// the operating point the holdout measured) and returns those whose
// decision would change, out of how many it could compare.
func previewRevisions(ctx context.Context, db *store.DB, cand LearnModel, comb *learn.Combiner, ev learn.Evaluation, opt LearningOptions) ([]RevisionPreview, int, error) {
	window := opt.ReviseWithin
	if window <= 0 {
		window = defaultReviseWindow
	}
	reps, err := db.ReportsToRevise(ctx, cand.Info().Version, time.Now().Add(-window))
	if err != nil {
		return nil, 0, err
	}
	scorer := newLearnedScorer(cand, comb, opt.embed)
	op := operatingPointOf(sentinel.ModelInfo{Version: cand.Info().Version, Metrics: operatingMetrics(ev.Operating)}, opt.Decisions, time.Now())
	var out []RevisionPreview
	compared := 0
	for _, r := range reps {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		_, img, err := opt.image(r.Path, cand.InputSize())
		if err != nil {
			opt.log().Warn("report not previewed: its image cannot be read", slog.String("instance", r.Instance.ID), slog.Any("error", err))
			continue
		}
		s, err := scorer.Score(img)
		if err != nil {
			return nil, 0, fmt.Errorf("preview %s: %w", r.Instance.ID, err)
		}
		s = Qualify(s, op, opt.Decisions)
		compared++
		if s.Decision != r.Decision {
			out = append(out, RevisionPreview{InstanceID: r.Instance.ID, StudyInstanceUID: r.Instance.StudyInstanceUID,
				AccessionNumber: r.Instance.AccessionNumber, From: r.Decision, To: s.Decision, ModelVersion: r.ModelVersion})
		}
	}
	return out, compared, nil
}

// holdForRevisions turns a promotion into a hold when the candidate would
// revise more than opt.MaxReviseShare of the recent reports it was
// compared on: so large a change waits for a person to look.
func holdForRevisions(v learn.Verdict, changed, compared int, opt LearningOptions) learn.Verdict {
	if !v.Promote || opt.MaxReviseShare <= 0 || compared == 0 {
		return v
	}
	share := float64(changed) / float64(compared)
	if share <= opt.MaxReviseShare {
		return v
	}
	return learn.Verdict{Held: true, Reason: fmt.Sprintf("%s; but it would revise %d of the %d recent reports (%.0f%%), more than the %.0f%% a model change may revise on its own: waits for a person (sentinel retrain --dry-run lists them; sentinel models promote VERSION)",
		v.Reason, changed, compared, 100*share, 100*opt.MaxReviseShare)}
}

// PromoteModel makes a kept model version current by a person's decision
// (a candidate held for want of evidence, say), recording who and when.
func PromoteModel(ctx context.Context, db *store.DB, modelsDir, version, by string) (sentinel.ModelInfo, error) {
	return makeCurrent(ctx, db, modelsDir, version, fmt.Sprintf("promoted by %s at %s", by, time.Now().UTC().Format(time.RFC3339)))
}
