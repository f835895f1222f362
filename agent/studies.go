package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

// reportStudies writes a study report for every study that has been quiet
// for StudyQuiet, until ctx is cancelled.
func (a *Agent) reportStudies(ctx context.Context) {
	period := min(max(a.cfg.StudyQuiet/4, 100*time.Millisecond), 5*time.Second)
	every(ctx, period, func() {
		if err := a.ReportQuietStudies(ctx, time.Now().Add(-a.cfg.StudyQuiet)); err != nil {
			a.log.Warn("study reports", slog.Any("error", err))
		}
	})
}

// ReportQuietStudies writes the next revision of the report of every study
// whose last instance arrived before cutoff and that has instances its last
// report does not cover.
func (a *Agent) ReportQuietStudies(ctx context.Context, cutoff time.Time) error {
	studies, err := a.db.QuietStudies(ctx, cutoff)
	if err != nil {
		return err
	}
	for _, uid := range studies {
		// Another agent sharing the database may be reporting it, or may
		// have reported it since the list was read.
		ok, err := a.db.ClaimStudy(ctx, uid)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		err = a.reportStudy(ctx, uid)
		if rerr := a.db.ReleaseStudy(context.WithoutCancel(ctx), uid); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) reportStudy(ctx context.Context, uid string) error {
	// Read before the instances, so that a revision recorded meanwhile
	// leaves the study due again.
	rev, revised, err := a.db.StudyRevision(ctx, uid)
	if err != nil {
		return err
	}
	rows, err := a.db.StudyInstances(ctx, uid)
	if err != nil {
		return err
	}
	rep := sentinel.StudyReport{
		SchemaVersion:    sentinel.StudyReportSchemaVersion,
		StudyInstanceUID: uid,
		Revision:         rev + 1,
		InstanceCount:    len(rows),
		CreatedAt:        time.Now().UTC(),
	}
	for i, r := range rows {
		d := sentinel.Decision(r.Decision)
		if i == 0 || r.Score > rep.MaxScore {
			rep.MaxScore = r.Score
		}
		if i == 0 || d.Severity() > rep.Decision.Severity() {
			rep.Decision = d
		}
		rel := r.ReportPath
		if p, err := filepath.Rel(a.cfg.Reports, r.ReportPath); err == nil {
			rel = p
		}
		rep.Instances = append(rep.Instances, sentinel.StudyInstanceRow{
			SOPInstanceUID: r.SOPInstanceUID, SeriesInstanceUID: r.SeriesInstanceUID, SourceFile: a.sourceName(r.SourceFile),
			ModelVersion: r.ModelVersion, Score: r.Score, Threshold: r.Threshold, Decision: d,
			Uncertainty: r.Uncertainty, Report: rel,
		})
	}
	dir := filepath.Join(a.cfg.Reports, SafeName(uid))
	if rev > 0 {
		diffStudy(&rep, filepath.Join(dir, fmt.Sprintf("study.r%d.json", rev)))
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("study report %s: %w", uid, err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("study report %s: %w", uid, err)
	}
	// Each revision is kept; study.json is always the latest.
	revPath := filepath.Join(dir, fmt.Sprintf("study.r%d.json", rep.Revision))
	if err := writeAtomic(revPath, b); err != nil {
		return fmt.Errorf("study report %s: %w", uid, err)
	}
	if err := writeAtomic(filepath.Join(dir, "study.json"), b); err != nil {
		return fmt.Errorf("study report %s: %w", uid, err)
	}
	if err := a.db.RecordStudyReport(ctx, uid, rep.Revision, len(rows), revised, revPath); err != nil {
		return err
	}
	a.log.Info("study reported", slog.String("study", uid), slog.Int("revision", rep.Revision),
		slog.Int("instances", len(rows)), slog.String("decision", string(rep.Decision)))
	return nil
}

// diffStudy fills in what changed since the previous revision of the study
// report, kept at prevPath: its decision, the instances added and those
// whose decision changed. Without a readable previous revision it leaves
// them out.
func diffStudy(rep *sentinel.StudyReport, prevPath string) {
	b, err := os.ReadFile(prevPath)
	if err != nil {
		return
	}
	var prev sentinel.StudyReport
	if json.Unmarshal(b, &prev) != nil {
		return
	}
	rep.PreviousDecision = prev.Decision
	before := map[string]sentinel.Decision{}
	for _, in := range prev.Instances {
		before[in.SOPInstanceUID] = in.Decision
	}
	for _, in := range rep.Instances {
		d, seen := before[in.SOPInstanceUID]
		switch {
		case !seen:
			rep.Changes = append(rep.Changes, sentinel.StudyChange{SOPInstanceUID: in.SOPInstanceUID, Change: "added",
				To: in.Decision, ModelVersion: in.ModelVersion})
		case d != in.Decision:
			rep.Changes = append(rep.Changes, sentinel.StudyChange{SOPInstanceUID: in.SOPInstanceUID, Change: "revised",
				From: d, To: in.Decision, ModelVersion: in.ModelVersion})
		}
	}
}
