package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

// Reports written before revisions existed take the model and decision of
// the instance's first score, so a newer model's rescoring (which wrote no
// report) is not mistaken for what was reported.
func TestMigrateReportsKeepWhatWasReported(t *testing.T) {
	ctx := context.Background()
	old, path := schemaAt(t, "migrations/0009_accession_index.sql")
	sdb := old.db
	for _, q := range []string{
		`INSERT INTO instances (instance_id, sop_instance_uid, study_instance_uid, format, path, sha256, status, created_at, updated_at)
			VALUES ('1.1', '1.1', '9', 'dicom', '/in/1.1', 'x', 'scored', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
		`INSERT INTO scores (instance_id, model_version, value, threshold, decision, created_at) VALUES ('1.1', 'a', 0.2, 1, 'normal', '2026-01-01T00:00:00Z')`,
		`INSERT INTO scores (instance_id, model_version, value, threshold, decision, created_at) VALUES ('1.1', 'b', 1.5, 1, 'abnormal', '2026-01-02T00:00:00Z')`,
		`INSERT INTO reports (instance_id, path, created_at) VALUES ('1.1', '/r/9/1.1.json', '2026-01-01T00:00:00Z')`,
		`INSERT INTO studies (study_instance_uid, instances, last_instance_at) VALUES ('9', 1, '2026-01-01T00:00:00Z')`,
	} {
		if _, err := sdb.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	sdb.Close()
	db := reopen(t, path)
	rows, err := db.Reports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Revision != 1 || rows[0].ModelVersion != "a" || rows[0].Decision != "normal" || rows[0].Value != 0.2 {
		t.Fatalf("migrated reports = %+v, want one: revision 1 by model a, normal, 0.2", rows)
	}
	si, err := db.StudyInstances(ctx, "9")
	if err != nil {
		t.Fatal(err)
	}
	if len(si) != 1 || si[0].ModelVersion != "a" || si[0].Decision != "normal" {
		t.Fatalf("study instances = %+v, want the reported score (model a), not the later rescoring", si)
	}
	if st, err := db.Studies(ctx, 10); err != nil || len(st) != 1 || st[0].MaxScore != 0.2 || st[0].WorstDecision != "normal" {
		t.Fatalf("studies = %+v, %v; want what was reported (0.2, normal), not model b's stored rescoring", st, err)
	}
	// Model b is in use: the report is due for comparison, and b's stored
	// score is handed over so it need not be computed again.
	due, err := db.ReportsToRevise(ctx, "b", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Current == nil || due[0].Current.Decision != sentinel.DecisionAbnormal ||
		due[0].Decision != sentinel.DecisionNormal || due[0].Score != 0.2 || due[0].Instance.StudyInstanceUID != "9" {
		t.Fatalf("reports to revise under b = %+v", due)
	}
	if due, _ := db.ReportsToRevise(ctx, "a", time.Time{}); len(due) != 0 {
		t.Fatalf("reports to revise under the model that wrote them: %+v", due)
	}
	if due, _ := db.ReportsToRevise(ctx, "b", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)); len(due) != 0 {
		t.Fatalf("an instance first reported before the window is due: %+v", due)
	}

	// Revision 2, then the same revision again (another pass got there
	// first) is refused.
	rev := Revision{InstanceID: "1.1", Revision: 2, ModelVersion: "b", ReportPath: "/r/9/1.1.r2.json",
		PreviousPath: "/r/9/1.1.r1.json", Score: sentinel.Score{Value: 1.5, Threshold: 1, Decision: sentinel.DecisionAbnormal}}
	if err := db.RecordRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordRevision(ctx, rev); !errors.Is(err, ErrRevised) {
		t.Fatalf("recording revision 2 twice: %v, want ErrRevised", err)
	}
	rows, _ = db.Reports(ctx)
	if len(rows) != 2 || rows[0].Path != "/r/9/1.1.r1.json" || rows[1].Revision != 2 || rows[1].Decision != "abnormal" {
		t.Fatalf("reports after the revision = %+v", rows)
	}
	if p, _, _, _ := db.ReportPaths(ctx, "1.1", 0); p != "/r/9/1.1.r2.json" {
		t.Fatalf("latest report = %s, want revision 2", p)
	}
	if p, _, _, _ := db.ReportPaths(ctx, "1.1", 1); p != "/r/9/1.1.r1.json" {
		t.Fatalf("revision 1 = %s, want where it is kept now", p)
	}
	if _, _, ok, _ := db.ReportPaths(ctx, "1.1", 3); ok {
		t.Fatal("revision 3 found before it was made")
	}
	if st, _ := db.Studies(ctx, 10); len(st) != 1 || st[0].MaxScore != 1.5 || st[0].WorstDecision != "abnormal" {
		t.Fatalf("studies after the revision = %+v, want revision 2's 1.5, abnormal", st)
	}
	revs, err := db.RevisedReports(ctx, 0)
	if err != nil || len(revs) != 1 || revs[0].PreviousDecision != "normal" || revs[0].PreviousModelVersion != "a" || revs[0].Decision != "abnormal" {
		t.Fatalf("revised reports = %+v, %v", revs, err)
	}
	// The study is due again even though no instance arrived, and a
	// report made before a further revision leaves it due.
	if q, _ := db.QuietStudies(ctx, time.Now()); len(q) != 1 {
		t.Fatalf("quiet studies after a revision = %v, want study 9", q)
	}
	r, n, err := db.StudyRevision(ctx, "9")
	if err != nil || r != 0 || n != 1 {
		t.Fatalf("StudyRevision = %d, %d, %v; want 0, 1 revised", r, n, err)
	}
	if err := db.RecordStudyReport(ctx, "9", 1, 1, n, "/r/9/study.r1.json"); err != nil {
		t.Fatal(err)
	}
	if q, _ := db.QuietStudies(ctx, time.Now()); len(q) != 0 {
		t.Fatalf("quiet studies after the study report = %v, want none", q)
	}
	_, n, _ = db.StudyRevision(ctx, "9") // the next study report starts
	if err := db.RecordRevision(ctx, Revision{InstanceID: "1.1", Revision: 3, ModelVersion: "a",
		Score: sentinel.Score{Value: 0.2, Threshold: 1, Decision: sentinel.DecisionNormal}}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordStudyReport(ctx, "9", 2, 1, n, "/r/9/study.r2.json"); err != nil {
		t.Fatal(err)
	}
	if q, _ := db.QuietStudies(ctx, time.Now()); len(q) != 1 {
		t.Fatalf("a revision recorded after the study report was read is lost: quiet studies %v", q)
	}
}
