package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/store"
)

// RevisionResult counts what one pass of ReviseReports did.
type RevisionResult struct {
	// Checked is how many reports the model in use was compared with.
	Checked int
	// Revised is how many of them it decided otherwise, and so issued
	// again.
	Revised int
	// Unreadable is how many instances could not be read or scored again
	// (their file gone from the archive or the inbox, or replaced by other
	// bytes); their reports stand.
	Unreadable int
}

// ReviseReports compares every instance first reported within
// cfg.ReviseWithin, whose latest report another model wrote, with the
// model in use, and issues the report again, as its next revision, where
// the model decides otherwise: a case reported normal that the model
// retrained on the radiologists' labels calls abnormal is reported again,
// and the study with it. A report whose decision stands is left as it was;
// the new score is stored, so the next pass need not compute it. The pass
// stops early when the model changes under it: the next model's own pass
// takes over.
func (a *Agent) ReviseReports(ctx context.Context) (RevisionResult, error) {
	var res RevisionResult
	if a.cfg.ReviseWithin <= 0 {
		return res, nil
	}
	model := a.currentModel()
	info := model.Info()
	since := time.Now().Add(-a.cfg.ReviseWithin)
	if err := a.repairLatest(ctx, since); err != nil {
		return res, err
	}
	todo, err := a.db.ReportsToRevise(ctx, info.Version, since)
	if err != nil {
		return res, err
	}
	for _, r := range todo {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if a.currentModel().Info().Version != info.Version {
			return res, nil
		}
		out, err := a.reviseOne(ctx, model, r)
		if err != nil {
			return res, err
		}
		switch out {
		case reportUnreadable:
			res.Unreadable++
		case reportStands:
			res.Checked++
		case reportRevised:
			res.Checked++
			res.Revised++
		}
	}
	return res, nil
}

// reviseOutcome is what reviseOne did with one report.
type reviseOutcome int

const (
	reportStands     reviseOutcome = iota // the model in use decides as reported
	reportRevised                         // it decides otherwise: the next revision is written
	reportUnreadable                      // the image cannot be read or scored again
	reportTaken                           // another pass revised it first
)

// reviseOne compares one report with model and issues its next revision
// when the model decides otherwise.
func (a *Agent) reviseOne(ctx context.Context, model Scorer, r store.Reported) (reviseOutcome, error) {
	info := model.Info()
	start := time.Now()
	score := r.Current
	op := a.operatingPoint(info.Version)
	if score != nil {
		q := Qualify(*score, op, a.cfg.Decisions)
		score = &q
	}
	var img sentinel.Image
	var decoded, scored time.Time
	// Without a stored score, or to revise (a stored score has no heatmap),
	// the image is read and scored again.
	fresh := score == nil || score.Decision != r.Decision
	if fresh {
		im, s, err := a.rescore(model, r)
		if err != nil {
			a.log.Warn("report not compared: its image cannot be read or scored again", slog.String("instance", r.Instance.ID),
				slog.String("path", a.logName(r.Path)), slog.Any("error", err))
			return reportUnreadable, nil
		}
		decoded, scored = start.Add(s.decode), start.Add(s.decode+s.score)
		q := Qualify(s.Score, op, a.cfg.Decisions)
		img, score = im, &q
	}
	if score.Decision == r.Decision {
		// The report stands; the score is kept so that the next pass need
		// not compute it.
		if fresh {
			if err := a.db.SaveScore(ctx, r.Instance.ID, info.Version, *score); err != nil {
				return 0, err
			}
		}
		return reportStands, nil
	}
	rep := NewReport(r.Instance, *score, info.Version)
	rep.SourceFile = a.sourceName(r.Instance.SourcePath)
	rep.OperatingPoint = op
	rep.Revision = r.Revision + 1
	rep.Supersedes = &sentinel.ReportRef{Revision: r.Revision, ModelVersion: r.ModelVersion, Score: r.Score,
		Threshold: r.Threshold, Decision: r.Decision, CreatedAt: r.ReportedAt}
	rep.RevisionReason = fmt.Sprintf("model %s, now in use, decides %s where model %s decided %s",
		info.Version, score.Decision, r.ModelVersion, r.Decision)
	rep.Timings = sentinel.Timings{DecodeMS: ms(decoded.Sub(start)), ScoreMS: ms(scored.Sub(decoded))}
	w, err := writeRevision(a.cfg.Reports, rep, img, score.Heatmap, start)
	if err != nil {
		return 0, err
	}
	// The revision's outputs are recorded with it (see Process).
	outs := a.prepareOutputs(ctx, rep, r.Path, img, score.Heatmap)
	rev := store.Revision{InstanceID: r.Instance.ID, Revision: rep.Revision, ModelVersion: info.Version,
		Score: *score, ReportPath: w.report, HeatmapPath: w.heatmap, ReportBody: w.body, Outbox: outs.items}
	if rep.Revision == 2 && exists(w.previous) {
		rev.PreviousPath = w.previous
	}
	err = a.db.RecordRevision(ctx, rev)
	if errors.Is(err, store.ErrRevised) {
		outs.drop()
		return reportTaken, nil
	}
	if err != nil {
		outs.drop()
		return 0, err
	}
	a.outputsRecorded(outs)
	// Last: a stop before this leaves <uid>.json as it was, and the next
	// pass brings it up to date (repairLatest).
	if _, err := latestReport(w.report, rep.Revision); err != nil {
		return 0, fmt.Errorf("revise %s: %w", r.Instance.ID, err)
	}
	a.metrics.revised.WithLabelValues(string(r.Decision), string(score.Decision)).Inc()
	a.log.Info("report revised", slog.String("instance", r.Instance.ID),
		slog.String("study", r.Instance.StudyInstanceUID), slog.Int("revision", rep.Revision),
		slog.String("from", string(r.Decision)), slog.String("to", string(score.Decision)),
		slog.String("model", info.Version), slog.String("previous_model", r.ModelVersion))
	return reportRevised, nil
}

// timedScore is a score with how long the decode and the scoring took.
type timedScore struct {
	sentinel.Score
	decode, score time.Duration
}

// rescore reads the reported instance's file again and scores it with
// model. A file that now holds other bytes than those reported is refused:
// it must not speak for the instance.
func (a *Agent) rescore(model Scorer, r store.Reported) (sentinel.Image, timedScore, error) {
	start := time.Now()
	inst, img, err := a.decode(r.Path)
	if err != nil {
		return img, timedScore{}, err
	}
	if inst.SHA256 != r.Instance.SHA256 {
		return img, timedScore{}, fmt.Errorf("%s changed since it was reported (sha256 %s, reported %s)", r.Path, inst.SHA256, r.Instance.SHA256)
	}
	decoded := time.Now()
	side := model.InputSize()
	s, err := model.Score(a.resample(img, side, side))
	if err != nil {
		return img, timedScore{}, fmt.Errorf("score %s: %w", r.Path, err)
	}
	return img, timedScore{Score: s, decode: decoded.Sub(start), score: time.Since(decoded)}, nil
}

// repairLatest makes <uid>.json hold the latest revision of every report
// revised since the given time, in case a stop came between recording a
// revision and replacing <uid>.json.
func (a *Agent) repairLatest(ctx context.Context, since time.Time) error {
	revs, err := a.db.RevisedReports(ctx, 0)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, r := range revs { // newest first: the first of each instance is its latest
		if done[r.InstanceID] || r.RevisedAt.Before(since) || !a.db.Mine(r.Agent) {
			continue
		}
		done[r.InstanceID] = true
		wrote, err := latestReport(r.ReportPath, r.Revision)
		if err != nil {
			a.log.Warn("latest report", slog.String("instance", r.InstanceID), slog.Any("error", err))
			continue
		}
		if wrote {
			a.log.Info("latest report brought up to its revision", slog.String("instance", r.InstanceID),
				slog.Int("revision", r.Revision))
		}
	}
	return nil
}

// revising runs a pass of ReviseReports at start and after every change of
// model, until ctx is cancelled.
func (a *Agent) revising(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.reviseC:
			start := time.Now()
			res, err := a.ReviseReports(ctx)
			if err != nil && ctx.Err() == nil {
				a.log.Warn("report revision", slog.Any("error", err))
			}
			if res.Checked > 0 || res.Unreadable > 0 {
				a.log.Info("reports compared with the model in use", slog.String("model", a.currentModel().Info().Version),
					slog.Int("checked", res.Checked), slog.Int("revised", res.Revised), slog.Int("unreadable", res.Unreadable),
					slog.Duration("elapsed", time.Since(start)))
			}
		}
	}
}

// followModel asks cfg.FollowModel every cfg.ModelCheckEvery for the model
// the models folder names, and swaps it in when it changed (a retraining,
// rollback or training run by another process), until ctx is cancelled.
func (a *Agent) followModel(ctx context.Context) {
	every(ctx, a.cfg.ModelCheckEvery, func() {
		cur := a.currentModel().Info()
		next, err := a.cfg.FollowModel(cur)
		if err != nil {
			a.log.Warn("model check", slog.Any("error", err))
			return
		}
		if next != nil && next.Info().Version != cur.Version {
			a.log.Info("model changed", slog.String("from", cur.Version), slog.String("to", next.Info().Version))
			a.SetModel(next)
		}
	})
}
