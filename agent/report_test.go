package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/store"
)

func TestSafeNameStaysInside(t *testing.T) {
	inputs := []string{"1.2.840.113619.2.55", "../../etc/passwd", "..", ".", "", "/abs/path", `a\b`,
		"1.2/../../x", ".hidden", strings.Repeat("9", 300), "ok_name-1", "ok name"}
	seen := map[string]string{}
	root := t.TempDir()
	for _, in := range inputs {
		got := SafeName(in)
		if got == "" || got == "." || got == ".." || strings.ContainsAny(got, `/\`) || strings.HasPrefix(got, ".") {
			t.Errorf("SafeName(%q) = %q is not a safe path element", in, got)
		}
		if len(got) > 100 {
			t.Errorf("SafeName(%q) is %d bytes long", in, len(got))
		}
		if rel, err := filepath.Rel(root, filepath.Join(root, got)); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("SafeName(%q) = %q escapes its folder", in, got)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("SafeName(%q) = SafeName(%q) = %q", in, prev, got)
		}
		seen[got] = in
	}
	if got := SafeName("1.2.3.4"); got != "1.2.3.4" {
		t.Errorf("a plain UID must be kept as it is, got %q", got)
	}
}

func TestReportForHostileUIDStaysInReports(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reports")
	rep := sentinel.Report{InstanceID: "../../../escape", SOPInstanceUID: "../../../escape", StudyInstanceUID: "../..",
		Decision: sentinel.DecisionNormal}
	jp, hp, err := writeReport(dir, rep, sentinel.NewImage(8, 8), sentinel.Image{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if hp != "" {
		t.Errorf("heatmap written without a heatmap: %s", hp)
	}
	rel, err := filepath.Rel(dir, jp)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("report written outside the reports folder: %s", jp)
	}
	if _, err := os.Stat(jp); err != nil {
		t.Fatal(err)
	}
}

func TestQuarantineNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	var got []string
	for i := 0; i < 3; i++ {
		src := filepath.Join(dir, "in", "bad.dcm")
		os.MkdirAll(filepath.Dir(src), 0o755)
		os.WriteFile(src, []byte{byte(i)}, 0o644)
		dst, err := quarantine(q, statFile(t, src), os.ErrInvalid, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(src); err == nil {
			t.Fatal("moved file still at its source")
		}
		got = append(got, dst)
	}
	for i, p := range got {
		b, err := os.ReadFile(p)
		if err != nil || len(b) != 1 || b[0] != byte(i) {
			t.Errorf("quarantined copy %d at %s = %v, %v", i, p, b, err)
		}
		if _, err := os.Stat(p + ".reason.txt"); err != nil {
			t.Errorf("no reason beside %s", p)
		}
	}
	// Copy mode leaves the source alone.
	src := filepath.Join(dir, "keep.dcm")
	os.WriteFile(src, []byte("x"), 0o644)
	if _, err := quarantine(q, statFile(t, src), os.ErrInvalid, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); err != nil {
		t.Fatal("copy mode removed the source")
	}
}

// statFile returns the store's view of a file as the agent takes it.
func statFile(t *testing.T, path string) store.File {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return store.File{Path: path, Size: fi.Size(), ModTimeNS: fi.ModTime().UnixNano()}
}

// A file that changed after it was taken is not moved, and a name with a
// newline cannot forge a line of the reason file; a copy keeps the
// source's mode.
func TestQuarantineLeavesChangedFilesAndQuotesNames(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	src := filepath.Join(dir, "half.dcm")
	os.WriteFile(src, []byte("DICM"), 0o644)
	taken := statFile(t, src)
	f, _ := os.OpenFile(src, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("more"))
	f.Close()
	if _, err := quarantine(q, taken, os.ErrInvalid, false); !errors.Is(err, errNotReady) {
		t.Fatalf("quarantine of a changed file = %v, want errNotReady", err)
	}
	if b, _ := os.ReadFile(src); string(b) != "DICMmore" {
		t.Fatalf("changed file was touched: %q", b)
	}
	if entries, _ := os.ReadDir(q); len(entries) != 0 {
		t.Fatalf("quarantine holds %d entries for a file left in place", len(entries))
	}

	forged := filepath.Join(dir, "a\nreason: forged.dcm")
	os.WriteFile(forged, []byte("x"), 0o600)
	dst, err := quarantine(q, statFile(t, forged), os.ErrInvalid, true)
	if err != nil {
		t.Fatal(err)
	}
	reason, _ := os.ReadFile(dst + ".reason.txt")
	if n := strings.Count(string(reason), "\n"); n != 3 || strings.Contains(string(reason), "\nreason: forged") {
		t.Fatalf("reason file has %d lines:\n%s", n, reason)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy of a 0600 file has mode %v, %v", fi.Mode().Perm(), err)
	}
}

func TestTrackerWaitsForStableFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("a"), 0o644)
	now := time.Unix(1000, 0)
	tr := newTracker(time.Second, func() time.Time { return now })
	tr.see(p)
	if r := tr.ready(); len(r) != 0 {
		t.Fatalf("ready at first sight: %v", r)
	}
	now = now.Add(600 * time.Millisecond)
	os.WriteFile(p, []byte("ab"), 0o644) // grows: the clock restarts
	if r := tr.ready(); len(r) != 0 {
		t.Fatalf("ready while growing: %v", r)
	}
	now = now.Add(900 * time.Millisecond)
	if r := tr.ready(); len(r) != 0 {
		t.Fatalf("ready before stable long enough: %v", r)
	}
	now = now.Add(200 * time.Millisecond)
	if r := tr.ready(); len(r) != 1 || r[0] != p {
		t.Fatalf("not ready after being stable: %v", r)
	}
	tr.start(p)
	tr.see(p) // an event while in flight
	if r := tr.ready(); len(r) != 0 {
		t.Fatalf("in-flight file offered again: %v", r)
	}
	tr.finish(p)
	if _, pending := tr.pending[p]; !pending {
		t.Fatal("file seen during processing was not looked at again")
	}
	os.Remove(p)
	tr.ready()
	if _, pending := tr.pending[p]; pending {
		t.Fatal("deleted file still pending")
	}
}

// TestSchema1ReportStillReads checks that a report written before schema 2
// (absolute source_file, "normal" below the threshold, no placement keys)
// still reads, and that its decision still ranks.
func TestSchema1ReportStillReads(t *testing.T) {
	old := `{
  "schema_version": 1,
  "instance_id": "1.2.3",
  "sop_instance_uid": "1.2.3",
  "study_instance_uid": "1.2",
  "series_instance_uid": "1.2.1",
  "modality": "DX",
  "source_file": "/var/lib/sentinel/inbox/a.dcm",
  "sha256": "ab",
  "model_version": "ae-1",
  "score": 0.1,
  "threshold": 1.2,
  "decision": "normal",
  "decision_reason": "score 0.100 at or below the threshold 1.200",
  "uncertainty": null,
  "components": {"reconstruction": 0.01},
  "heatmap": "1.2.3.heatmap.png",
  "timings": {"decode_ms": 1, "score_ms": 2, "total_ms": 3},
  "created_at": "2026-11-01T10:00:00Z",
  "revision": 1
}`
	var rep sentinel.Report
	if err := json.Unmarshal([]byte(old), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.SchemaVersion != 1 || rep.Decision != sentinel.DecisionNormal || rep.SourceFile != "/var/lib/sentinel/inbox/a.dcm" ||
		rep.Placement != (sentinel.Placement{}) || rep.OperatingPoint != nil || rep.Revision != 1 {
		t.Errorf("schema 1 report read as %+v", rep)
	}
	if !rep.Decision.Below() || rep.Decision.Severity() >= sentinel.DecisionNotFlagged.Severity() {
		t.Errorf("a schema 1 normal ranks %d", rep.Decision.Severity())
	}
	// A report written now says its schema and intended use.
	now := NewReport(sentinel.Instance{ID: "1.2.3", SOPInstanceUID: "1.2.3"}, sentinel.Score{Decision: sentinel.DecisionNotFlagged}, "ae-2")
	if now.SchemaVersion != sentinel.ReportSchemaVersion || sentinel.ReportSchemaVersion != 2 || now.IntendedUse == "" {
		t.Errorf("a new report: schema %d, intended use %q", now.SchemaVersion, now.IntendedUse)
	}
}
