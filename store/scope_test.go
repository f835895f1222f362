package store

import (
	"context"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// TestScopeMigration opens a database as the Sentinel before out_of_scope
// and placements left it: its files and instances are still read, and the
// new status and columns are written.
func TestScopeMigration(t *testing.T) {
	ctx := context.Background()
	old, path := schemaAt(t, "migrations/0010_report_revisions.sql")
	in := sentinel.Instance{ID: "1.2.3", SOPInstanceUID: "1.2.3", StudyInstanceUID: "1.2", Format: sentinel.FormatDICOM,
		SourcePath: "/in/a.dcm", SHA256: "ab"}
	if _, err := old.db.ExecContext(ctx, `INSERT INTO instances (instance_id, sop_instance_uid, study_instance_uid,
		format, path, sha256, status, created_at, updated_at) VALUES ('1.2.3', '1.2.3', '1.2', 'dicom', '/in/a.dcm', 'ab', 'scored', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.db.ExecContext(ctx, `INSERT INTO files (path, size, mtime_ns, sha256, status, instance_id, error, seen_at, archive_path)
		VALUES ('/in/a.dcm', 10, 1, 'ab', 'done', '1.2.3', '', '2026-01-01T00:00:00Z', '/arch/a.dcm'),
		('/in/b.dcm', 3, 2, '', 'failed', NULL, 'not DICOM', '2026-01-01T00:00:00Z', '')`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.db.ExecContext(ctx, `INSERT INTO files (path, size, mtime_ns, status, seen_at) VALUES ('/in/c.dcm', 1, 1, 'out_of_scope', '2026')`); err == nil {
		t.Fatal("the old schema took an out_of_scope file")
	}
	old.db.Close()

	db := reopen(t, path)
	done, err := db.Files(ctx, FileDone)
	if err != nil {
		t.Fatal(err)
	}
	failed, err := db.Files(ctx, FileFailed)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].InstanceID != "1.2.3" || len(failed) != 1 || failed[0].Error != "not DICOM" {
		t.Fatalf("files after the migration: done %+v, failed %+v", done, failed)
	}
	if known, err := db.KnownFile(ctx, "/in/a.dcm", 10, 1); err != nil || !known {
		t.Fatalf("the migrated file is not known: %v %v", known, err)
	}
	if err := db.RecordFile(ctx, File{Path: "/in/ct.dcm", Size: 5, ModTimeNS: 3, Status: FileOutOfScope,
		Error: "modality CT is not in scope (CR, DX)"}); err != nil {
		t.Fatal(err)
	}
	oos, err := db.Files(ctx, FileOutOfScope)
	if err != nil || len(oos) != 1 || oos[0].Error == "" {
		t.Fatalf("out of scope files: %+v, %v", oos, err)
	}
	// A new instance keeps its placement, an old one reads an empty one.
	in2 := in
	in2.ID, in2.SOPInstanceUID, in2.SourcePath = "1.2.4", "1.2.4", "/in/d.dcm"
	in2.Placement = sentinel.Placement{AccessionNumber: "ACC9", StudyDate: "20261207", ViewPosition: "PA", Laterality: "L"}
	if err := db.RecordResult(ctx, Result{Instance: in2, Score: sentinel.Score{Value: 1, Threshold: 2, Decision: sentinel.DecisionNotFlagged},
		ModelVersion: "m1", ReportPath: "/r/d.json", File: File{Path: "/in/d.dcm", Size: 1, ModTimeNS: 1}}); err != nil {
		t.Fatal(err)
	}
	revs, err := db.ReportsToRevise(ctx, "m2", sentinel.Report{}.CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]sentinel.Placement{}
	for _, r := range revs {
		got[r.Instance.ID] = r.Instance.Placement
	}
	if got["1.2.4"] != in2.Placement {
		t.Errorf("placement read back %+v, want %+v", got["1.2.4"], in2.Placement)
	}
}

// TestWorstDecisionRanks checks that studies rank every decision, so that a
// study of films not flagged or out of distribution is never shown as
// normal.
func TestWorstDecisionRanks(t *testing.T) {
	ctx := context.Background()
	db := reopen(t, testTarget(t))
	add := func(study, id string, d sentinel.Decision) {
		in := sentinel.Instance{ID: id, SOPInstanceUID: id, StudyInstanceUID: study, Format: sentinel.FormatDICOM,
			SourcePath: "/in/" + id, SHA256: id}
		if err := db.RecordResult(ctx, Result{Instance: in, Score: sentinel.Score{Value: 1, Threshold: 2, Decision: d},
			ModelVersion: "m", ReportPath: "/r/" + id, File: File{Path: "/in/" + id, Size: 1, ModTimeNS: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	add("s1", "a", sentinel.DecisionNormal)
	add("s1", "b", sentinel.DecisionNotFlagged)
	add("s2", "c", sentinel.DecisionNotFlagged)
	add("s2", "d", sentinel.DecisionOutOfDistribution)
	add("s3", "e", sentinel.DecisionOutOfDistribution)
	add("s3", "f", sentinel.DecisionUncertain)
	want := map[string]string{"s1": "not_flagged", "s2": "out_of_distribution", "s3": "out_of_distribution"}
	sums, err := db.Studies(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := db.StudiesPage(ctx, StudyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 3 || len(rows) != 3 {
		t.Fatalf("%d studies, %d rows", len(sums), len(rows))
	}
	for _, s := range sums {
		if s.WorstDecision != want[s.StudyInstanceUID] {
			t.Errorf("Studies: %s worst %s, want %s", s.StudyInstanceUID, s.WorstDecision, want[s.StudyInstanceUID])
		}
	}
	for _, r := range rows {
		if r.WorstDecision != want[r.StudyInstanceUID] {
			t.Errorf("StudiesPage: %s worst %s, want %s", r.StudyInstanceUID, r.WorstDecision, want[r.StudyInstanceUID])
		}
	}
	if rows, _, err := db.StudiesPage(ctx, StudyFilter{Decision: "not_flagged"}); err != nil || len(rows) != 1 || rows[0].StudyInstanceUID != "s1" {
		t.Errorf("filter not_flagged: %+v %v", rows, err)
	}
}
