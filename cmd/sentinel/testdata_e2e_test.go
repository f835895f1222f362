package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/fixturegen"
	"github.com/sentinel-pacs/sentinel/store"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden/ from the pipeline's reports")

// goldenFilm is the fixture whose report testdata/golden holds.
const goldenFilm = "dx_explicit_le_mono2.dcm"

var goldenPath = filepath.Join("..", "..", "testdata", "golden", "dx_explicit_le_mono2.report.json")

// TestTestdataEndToEnd ingests the fixtures under testdata/dicom with a
// model trained on phantoms: it needs nothing outside the repository.
// Every film, whatever its transfer syntax, is scored and reported once;
// the CT slice is recorded out of scope; the broken files are quarantined
// with a reason; and the golden film's report keeps its stable keys.
// The films are 128 pixels, so the configuration lowers scope.min_size
// from its default 256 to 64.
func TestTestdataEndToEnd(t *testing.T) {
	fixtures := fixturegen.Fixtures()
	rng := rand.New(rand.NewPCG(23, 5))
	ws := trainWorkspace(t, rng)
	cfg := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[scope]\nmin_size = 64\n", ws)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A copy, so that nothing is ever written beside the fixtures, dated
	// an hour ago: a file modified within ingest.write_grace may still be
	// being written, and a broken one is retried rather than quarantined.
	inbox := filepath.Join(t.TempDir(), "inbox")
	old := time.Now().Add(-time.Hour)
	for _, f := range fixtures {
		dst := filepath.Join(inbox, f.File)
		if err := copyPath(filepath.Join("..", "..", "testdata", "dicom", f.File), dst); err != nil {
			t.Fatalf("%v (run `go run ./testdata/gen` from the module root)", err)
		}
		if err := os.Chtimes(dst, old, old); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := sentinelCmd(t, "ingest", inbox, "--config", cfg)
	t.Logf("ingest: exit %d\n%s", code, out)
	if !strings.Contains(out, "summary:") {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out, errOut)
	}

	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkFixtureRecords(t, db, ws, inbox, fixtures)

	// Again: nothing is scored or reported twice.
	if _, errOut, code := sentinelCmd(t, "ingest", inbox, "--config", cfg); strings.Contains(errOut, "panic") {
		t.Fatalf("second ingest: exit %d\n%s", code, errOut)
	}
	checkFixtureRecords(t, db, ws, inbox, fixtures)

	// The labels file names the films the workspace now holds.
	films := 0
	for _, f := range fixtures {
		if f.Role == fixturegen.Film {
			films++
		}
	}
	out, errOut, code = sentinelCmd(t, "labels", "import", filepath.Join("..", "..", "testdata", "labels.csv"), "--workspace", ws)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d rows: %d labels added", films, films)) {
		t.Errorf("labels import: exit %d\n%s\n%s", code, out, errOut)
	}

	var golden string
	for _, p := range instanceReports(ws) {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), `"source_file": "`+goldenFilm+`"`) || strings.Contains(string(b), `"source_file":"`+goldenFilm+`"`) {
			golden = p
		}
	}
	if golden == "" {
		t.Fatalf("no report names %s as its source file", goldenFilm)
	}
	compareGolden(t, golden)
}

// checkFixtureRecords checks what the workspace recorded for each
// fixture.
func checkFixtureRecords(t *testing.T, db *store.DB, ws, inbox string, fixtures []fixturegen.Fixture) {
	t.Helper()
	recs, err := db.Files(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]store.File{}
	for _, r := range recs {
		byPath[r.Path] = r
	}
	if len(recs) != len(fixtures) {
		t.Errorf("%d file records for %d fixtures", len(recs), len(fixtures))
	}
	var wantUIDs []string
	for _, f := range fixtures {
		r, ok := byPath[filepath.Join(inbox, f.File)]
		if !ok {
			t.Errorf("%s: not recorded", f.File)
			continue
		}
		switch f.Role {
		case fixturegen.Film:
			wantUIDs = append(wantUIDs, f.SOPInstanceUID)
			if r.Status != store.FileDone || r.InstanceID != f.SOPInstanceUID {
				t.Errorf("%s (%s): %s %q, instance %s; want done, %s", f.File, f.Syntax, r.Status, r.Error, r.InstanceID, f.SOPInstanceUID)
			}
		case fixturegen.OutOfScope:
			if r.Status != store.FileOutOfScope || !strings.Contains(r.Error, "CT") {
				t.Errorf("%s: %s %q, want out_of_scope naming CT", f.File, r.Status, r.Error)
			}
		case fixturegen.Broken:
			if r.Status != store.FileFailed || r.Error == "" || r.QuarantinePath == "" {
				t.Errorf("%s: %s %q, quarantined at %q; want failed with a reason", f.File, r.Status, r.Error, r.QuarantinePath)
				continue
			}
			if _, err := os.Stat(r.QuarantinePath); err != nil {
				t.Errorf("%s: quarantined copy: %v", f.File, err)
			}
			reason, err := os.ReadFile(filepath.Join(ws, "quarantine", filepath.Base(r.QuarantinePath)+".reason.txt"))
			if err != nil || !strings.Contains(string(reason), f.File) {
				t.Errorf("%s: quarantine reason %q, %v", f.File, reason, err)
			}
			if _, err := os.Stat(filepath.Join(inbox, f.File)); err != nil {
				t.Errorf("%s: the ingested folder was changed: %v", f.File, err)
			}
		}
	}
	// One report per film, and none for anything else.
	var gotUIDs []string
	for _, p := range instanceReports(ws) {
		b, err := os.ReadFile(p)
		var rep sentinel.Report
		if err != nil || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("report %s unreadable: %v", p, err)
		}
		gotUIDs = append(gotUIDs, rep.SOPInstanceUID)
		for _, leak := range []string{fixturegen.PatientName, "TEST-PHANTOM-"} {
			if strings.Contains(string(b), leak) {
				t.Errorf("report %s carries the patient's %q", p, leak)
			}
		}
	}
	slices.Sort(gotUIDs)
	slices.Sort(wantUIDs)
	if !slices.Equal(gotUIDs, wantUIDs) {
		t.Errorf("reports for %q, want one each for %q", gotUIDs, wantUIDs)
	}
}

// stableKeys are the report keys that depend only on the film and the
// schema, not on the model or the moment.
var stableKeys = []string{"schema_version", "instance_id", "sop_instance_uid", "study_instance_uid", "series_instance_uid",
	"modality", "accession_number", "study_date", "study_time", "view_position", "body_part_examined",
	"series_number", "instance_number", "source_file", "sha256", "intended_use", "revision"}

// compareGolden compares a report with testdata/golden on its stable
// keys, or rewrites the golden file under -update-golden with its
// volatile keys (times, durations, paths, the model's version) set to
// fixed values.
func compareGolden(t *testing.T, reportPath string) {
	t.Helper()
	b, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if *updateGolden {
		norm := normaliseReport(got)
		out, err := json.MarshalIndent(norm, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", goldenPath)
	}
	gb, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run this test with -update-golden)", err)
	}
	var want map[string]any
	if err := json.Unmarshal(gb, &want); err != nil {
		t.Fatalf("%s: %v", goldenPath, err)
	}
	for _, k := range stableKeys {
		if _, ok := want[k]; !ok {
			t.Errorf("golden report lacks %q", k)
		}
		if fmt.Sprint(got[k]) != fmt.Sprint(want[k]) {
			t.Errorf("report %s = %v, golden %v", k, got[k], want[k])
		}
	}
	// A key the golden report has is not renamed or dropped without a new
	// schema version.
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("report lacks the golden report's key %q", k)
		}
	}
	valid := []sentinel.Decision{sentinel.DecisionNormal, sentinel.DecisionNotFlagged, sentinel.DecisionAbnormal,
		sentinel.DecisionUncertain, sentinel.DecisionOutOfDistribution}
	for _, r := range []map[string]any{got, want} {
		d, _ := r["decision"].(string)
		if !slices.Contains(valid, sentinel.Decision(d)) {
			t.Errorf("decision %q is not one of %v", d, valid)
		}
	}
	if got["schema_version"] != float64(sentinel.ReportSchemaVersion) || got["intended_use"] != sentinel.IntendedUse {
		t.Errorf("schema_version %v, intended_use %q", got["schema_version"], got["intended_use"])
	}
}

// normaliseReport sets a report's volatile keys to fixed values.
func normaliseReport(r map[string]any) map[string]any {
	fixed := map[string]any{"created_at": "2000-01-01T00:00:00Z", "model_version": "MODEL", "heatmap": "HEATMAP.png"}
	for k, v := range fixed {
		if _, ok := r[k]; ok {
			r[k] = v
		}
	}
	if tm, ok := r["timings"].(map[string]any); ok {
		for k := range tm {
			tm[k] = 0
		}
	}
	if op, ok := r["operating_point"].(map[string]any); ok {
		op["measured_at"] = "2000-01-01T00:00:00Z"
		op["model_version"] = "MODEL"
	}
	return r
}
