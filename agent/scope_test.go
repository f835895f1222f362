package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomout"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// chestScope is the configuration's default scope, with the tests' small
// Secondary Capture phantoms let in.
func chestScope() Scope {
	return Scope{Enabled: true, Modalities: []string{"CR", "DX"}, BodyParts: []string{"CHEST"},
		ViewPositions: []string{"PA", "AP"}, Photometrics: []string{"MONOCHROME1", "MONOCHROME2"},
		SOPClasses: []string{"1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.7"},
		MinSize:    256}
}

func TestScopeReasons(t *testing.T) {
	chest := sentinel.Instance{Format: sentinel.FormatDICOM, SOPClassUID: "1.2.840.10008.5.1.4.1.1.1", Modality: "CR",
		Rows: 2048, Columns: 2048, Frames: 1, Photometric: "MONOCHROME1",
		Placement: sentinel.Placement{BodyPartExamined: "CHEST", ViewPosition: "PA"}}
	s := chestScope()
	if r := s.outOfScope(chest, "", nil); r != "" {
		t.Fatalf("a chest CR is out of scope: %s", r)
	}
	bare := chest
	bare.Placement = sentinel.Placement{}
	if r := s.outOfScope(bare, "", nil); r != "" {
		t.Errorf("a CR without body part or view is out of scope: %s", r)
	}
	for name, c := range map[string]struct {
		mod  func(*sentinel.Instance)
		err  error
		want string
	}{
		"CT":               {func(i *sentinel.Instance) { i.Modality, i.SOPClassUID = "CT", "1.2.840.10008.5.1.4.1.1.2" }, nil, "CT Image Storage"},
		"MR modality":      {func(i *sentinel.Instance) { i.Modality = "MR" }, nil, "modality MR"},
		"hand":             {func(i *sentinel.Instance) { i.Placement.BodyPartExamined = "HAND" }, nil, "body part HAND"},
		"lateral":          {func(i *sentinel.Instance) { i.Placement.ViewPosition = "LL" }, nil, "view position LL"},
		"colour":           {func(i *sentinel.Instance) { i.Photometric = "RGB" }, nil, "photometric interpretation RGB"},
		"small":            {func(i *sentinel.Instance) { i.Rows, i.Columns = 64, 64 }, nil, "smaller than the 256"},
		"multi-frame":      {func(i *sentinel.Instance) { i.Frames = 12 }, nil, "12 frames"},
		"SR":               {func(i *sentinel.Instance) { i.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22" }, sentinel.ErrNoPixels, "no image to score (Enhanced SR)"},
		"unsupported":      {func(i *sentinel.Instance) { i.Modality = "US" }, sentinel.ErrUnsupportedTransferSyntax, "modality US"},
		"png, no research": {func(i *sentinel.Instance) { i.Format = sentinel.FormatPNG }, nil, "research image"},
	} {
		inst := chest
		c.mod(&inst)
		if r := s.outOfScope(inst, "", c.err); !strings.Contains(r, c.want) {
			t.Errorf("%s: reason %q, want it to say %q", name, r, c.want)
		}
	}
	s.ResearchImages = true
	if r := s.outOfScope(sentinel.Instance{Format: sentinel.FormatPNG}, "", nil); r != "" {
		t.Errorf("a PNG with research images on: %s", r)
	}
	// The zero scope scores everything with an image, and never an
	// object without one.
	if r := (Scope{}).outOfScope(sentinel.Instance{Format: sentinel.FormatDICOM, Modality: "CT"}, "", nil); r != "" {
		t.Errorf("the zero scope refused a CT: %s", r)
	}
	if r := (Scope{}).outOfScope(sentinel.Instance{Format: sentinel.FormatDICOM}, "", sentinel.ErrNoPixels); r == "" {
		t.Error("the zero scope would score an object without pixel data")
	}
}

// TestOutOfScopeRecorded runs the agent over an in-scope film, a film of a
// modality out of scope, a report without pixels and one of Sentinel's own
// outputs: only the first is scored; the others are recorded as
// out_of_scope with their reason, not quarantined, and stay in place.
func TestOutOfScopeRecorded(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(11, 0))
	inScope := filepath.Join(e.inbox, "in.dcm")
	writeDICOM(t, rng, inScope, phantom.Meta{})
	// The phantoms are DX: with only CR in scope, a DX film is out.
	a := e.agent()
	a.cfg.Scope = chestScope()
	a.cfg.Scope.MinSize = 0
	src, err := dicomout.ReadSource(inScope)
	if err != nil {
		t.Fatal(err)
	}
	rep := NewReport(sentinel.Instance{ID: src.SOPInstanceUID, SOPInstanceUID: src.SOPInstanceUID,
		StudyInstanceUID: src.StudyInstanceUID, SeriesInstanceUID: src.SeriesInstanceUID},
		sentinel.Score{Value: 0.7, Threshold: 0.5, Decision: sentinel.DecisionAbnormal}, "fake-1")
	sr, err := dicomout.StructuredReport(src, rep, nil, time.Unix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(e.inbox, "own-sr.dcm")
	if err := os.WriteFile(own, sr.Bytes, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if o := a.Process(ctx, inScope); o.Status != store.FileDone {
		t.Fatalf("in-scope film: %+v", o)
	}
	if o := a.Process(ctx, own); o.Status != store.FileOutOfScope || !strings.Contains(o.Err.Error(), "own outputs") {
		t.Fatalf("own SR: %+v", o)
	}
	a.cfg.Scope.Modalities = []string{"CR"}
	dx := filepath.Join(e.inbox, "dx.dcm")
	writeDICOM(t, rng, dx, phantom.Meta{})
	if o := a.Process(ctx, dx); o.Status != store.FileOutOfScope || !strings.Contains(o.Err.Error(), "modality DX") {
		t.Fatalf("DX with CR in scope: %+v", o)
	}
	files, err := e.db.Files(ctx, store.FileOutOfScope)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("%d files out of scope, want 2: %+v", len(files), files)
	}
	for _, f := range files {
		if f.QuarantinePath != "" || f.Error == "" || f.InstanceID != "" {
			t.Errorf("out-of-scope record %+v", f)
		}
		if _, err := os.Stat(f.Path); err != nil {
			t.Errorf("%s moved: %v", f.Path, err)
		}
	}
	if entries, _ := os.ReadDir(e.quar); len(entries) != 0 {
		t.Errorf("quarantine holds %d entries", len(entries))
	}
	// Taken again, a recorded file is skipped, not scored.
	if o := a.Process(ctx, dx); o.Status != StatusSkipped {
		t.Errorf("second pass over an out-of-scope file: %+v", o)
	}
}

func TestQualify(t *testing.T) {
	normal := sentinel.Score{Value: 0.1, Threshold: 0.5, Decision: sentinel.DecisionNormal, Reason: "score 0.1 at or below the threshold 0.5"}
	q := Qualify(normal, nil, DecisionPolicy{})
	if q.Decision != sentinel.DecisionNotFlagged || !strings.Contains(q.Reason, "no labelled holdout") {
		t.Errorf("without evidence: %s (%s)", q.Decision, q.Reason)
	}
	policy := DecisionPolicy{NormalSensitivity: 0.98, MinPerClass: 50}
	metrics := func(n, ab int, notNormal int) sentinel.ModelInfo {
		m := map[string]float64{metricHoldoutNormals: float64(n), metricHoldoutAbnormals: float64(ab)}
		for k, v := range operatingMetricsFor(ab, notNormal, n) {
			m[k] = v
		}
		return sentinel.ModelInfo{Version: "m", Metrics: m}
	}
	// 200 abnormal cases, none called normal: the lower bound is 0.981.
	op := operatingPointOf(metrics(200, 200, 200), policy, time.Now())
	if op == nil || !op.NormalAllowed {
		t.Fatalf("200 of 200 abnormal films above the normal limit should allow normal: %+v", op)
	}
	if q := Qualify(normal, op, policy); q.Decision != sentinel.DecisionNormal {
		t.Errorf("with evidence: %s", q.Decision)
	}
	// 60 of 60: the point estimate is 1, the lower bound 0.94.
	op = operatingPointOf(metrics(60, 60, 60), policy, time.Now())
	if op.NormalAllowed {
		t.Errorf("60 of 60 allowed normal (lower bound %.3f)", op.NormalSensitivityCI[0])
	}
	if q := Qualify(normal, op, policy); q.Decision != sentinel.DecisionNotFlagged || !strings.Contains(q.Reason, "rule-out sensitivity") {
		t.Errorf("thin evidence: %s (%s)", q.Decision, q.Reason)
	}
	// Too few normals, however sensitive.
	if op := operatingPointOf(metrics(10, 400, 400), policy, time.Now()); op.NormalAllowed {
		t.Error("10 normal holdout cases allowed normal")
	}
	// Other decisions are left alone.
	flag := sentinel.Score{Decision: sentinel.DecisionAbnormal}
	if q := Qualify(flag, nil, policy); q.Decision != sentinel.DecisionAbnormal {
		t.Errorf("abnormal became %s", q.Decision)
	}
	if operatingPointOf(sentinel.ModelInfo{Metrics: map[string]float64{}}, policy, time.Now()) != nil {
		t.Error("a model never measured has an operating point")
	}
}

// operatingMetricsFor returns the model metrics of a holdout of n normals
// (none flagged) and ab abnormals of which notNormal lie above the normal
// limit (and are flagged).
func operatingMetricsFor(ab, notNormal, n int) map[string]float64 {
	var scores []float64
	var abnormal []bool
	for i := 0; i < ab; i++ {
		s := 0.1
		if i < notNormal {
			s = 0.9
		}
		scores, abnormal = append(scores, s), append(abnormal, true)
	}
	for i := 0; i < n; i++ {
		scores, abnormal = append(scores, 0.1), append(abnormal, false)
	}
	return operatingMetrics(learn.Operating(scores, abnormal, 0.5, 0.3))
}

// TestReportPlacementAndClaims checks the keys a radiologist places a film
// by and the claims every report carries.
func TestReportPlacementAndClaims(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(12, 0))
	p := filepath.Join(e.inbox, "ward 3", "Doe^John.dcm")
	writeDICOM(t, rng, p, phantom.Meta{AccessionNumber: "ACC42"})
	a := e.agent()
	o := a.Process(context.Background(), p)
	if o.Status != store.FileDone {
		t.Fatalf("%+v", o)
	}
	read := func(path string) map[string]any {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	rep := read(o.ReportPath)
	for k, want := range map[string]any{
		"schema_version": float64(sentinel.ReportSchemaVersion), "accession_number": "ACC42", "modality": "DX",
		"series_number": "1", "instance_number": "1", "source_file": "ward 3/Doe^John.dcm",
		"intended_use": sentinel.IntendedUse,
	} {
		if rep[k] != want {
			t.Errorf("%s = %v, want %v", k, rep[k], want)
		}
	}
	// The fake model says "normal"; without labelled evidence the report
	// claims no more than "not_flagged".
	if d := rep["decision"]; d != string(sentinel.DecisionNotFlagged) && d != string(sentinel.DecisionAbnormal) {
		t.Errorf("decision %v", d)
	}
	if d := rep["decision"]; d == string(sentinel.DecisionNotFlagged) && !strings.Contains(rep["decision_reason"].(string), "not called normal") {
		t.Errorf("reason %v", rep["decision_reason"])
	}
	for _, k := range []string{"patient_name", "patient_id", "patient_birth_date", "operating_point"} {
		if _, ok := rep[k]; ok {
			t.Errorf("report has %s", k)
		}
	}
	// With reports.source_file = "none" the name is left out.
	q := filepath.Join(e.inbox, "Roe^Jane.dcm")
	writeDICOM(t, rng, q, phantom.Meta{})
	a.cfg.OmitSourceFile = true
	o = a.Process(context.Background(), q)
	if _, ok := read(o.ReportPath)["source_file"]; ok {
		t.Error("source_file written with OmitSourceFile")
	}
	if n := a.logName(q); strings.Contains(n, "Roe") || !strings.HasPrefix(n, "file-") {
		t.Errorf("log name %q", n)
	}
	// The outcome logged and passed on names the file by its digest, even
	// in a decoder's error.
	var logged bytes.Buffer
	a.log = slog.New(slog.NewTextHandler(&logged, nil))
	var seen []Outcome
	a.cfg.OnOutcome = func(o Outcome) { seen = append(seen, o) }
	broken := filepath.Join(e.inbox, "Poe^Edgar.dcm")
	if err := os.WriteFile(broken, append(make([]byte, 128), []byte("DICM\x02\x00\x00\x00garbage")...), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(broken, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))
	a.report(a.Process(context.Background(), broken))
	if strings.Contains(logged.String(), "Poe") || len(seen) != 1 || seen[0].Err == nil || strings.Contains(seen[0].Err.Error(), "Poe") {
		t.Errorf("the file's name reached the log or the outcome:\n%s\n%+v", logged.String(), seen)
	}
	if !errors.Is(seen[0].Err, sentinel.ErrInvalid) && !errors.Is(seen[0].Err, sentinel.ErrNotDICOM) {
		t.Errorf("the scrubbed error no longer wraps its cause: %v", seen[0].Err)
	}
	if fi, err := os.Stat(o.ReportPath); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("report mode %v, %v", fi.Mode().Perm(), err)
	}
}
