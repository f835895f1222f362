package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
)

// thresholdModel is fakeModel with its own version and threshold, so that
// a change of model changes some decisions and not others.
type thresholdModel struct {
	fakeModel
	version   string
	threshold float64
}

func (m thresholdModel) Score(img sentinel.Image) (sentinel.Score, error) {
	s, err := m.fakeModel.Score(img)
	s.Threshold, s.Decision = m.threshold, sentinel.DecisionNormal
	if s.Value > m.threshold {
		s.Decision = sentinel.DecisionAbnormal
	}
	return s, err
}
func (m thresholdModel) Info() sentinel.ModelInfo { return sentinel.ModelInfo{Version: m.version} }

// When the model in use changes, the running agent issues again, as the
// next revision, exactly the reports the new model decides otherwise, keeps
// every earlier revision's bytes, reports the study again, and leaves the
// other reports untouched; a second pass changes nothing, and an instance
// whose file is gone keeps its report.
func TestReviseReportsAfterModelChange(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(11), 0))
	study := phantom.NewUID(rng)
	var files []string
	for i := range 6 {
		p := filepath.Join(e.inbox, fmt.Sprintf("i%d.dcm", i))
		writeDICOM(t, rng, p, phantom.Meta{StudyInstanceUID: study})
		files = append(files, p)
	}
	var next atomic.Pointer[thresholdModel]
	cfg := Config{Inbox: []string{e.inbox}, Reports: e.reports, Quarantine: e.quar,
		StableFor: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond, StudyQuiet: 100 * time.Millisecond,
		ReviseWithin: time.Hour, ModelCheckEvery: 50 * time.Millisecond,
		FollowModel: func(running sentinel.ModelInfo) (Scorer, error) {
			if m := next.Load(); m != nil && m.version != running.Version {
				return *m, nil
			}
			return nil, nil
		}}
	decode := func(p string) (sentinel.Instance, sentinel.Image, error) { return dicomio.Load(p, dicomio.Options{}) }
	a := New(cfg, e.db, thresholdModel{fakeModel{16}, "a", 2}, decode, dicomio.Resample)
	ctx := context.Background()
	for _, p := range files {
		if o := a.Process(ctx, p); o.Status != "done" {
			t.Fatalf("%s: %+v", p, o)
		}
	}
	if err := a.ReportQuietStudies(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Model b calls abnormal the brighter half of the films.
	rows, err := e.db.Reports(ctx)
	if err != nil || len(rows) != len(files) {
		t.Fatalf("reports %+v, %v", rows, err)
	}
	var values []float64
	original := map[string][]byte{}
	for _, r := range rows {
		values = append(values, r.Value)
		if original[r.InstanceID], err = os.ReadFile(r.Path); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(values)
	b := thresholdModel{fakeModel{16}, "b", (values[2] + values[3]) / 2}
	flips := map[string]bool{}
	for _, r := range rows {
		flips[r.InstanceID] = r.Value > b.threshold
	}

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	next.Store(&b)
	studyDir := filepath.Join(e.reports, SafeName(study))
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		// Every revision recorded, and a study report made since.
		revs, _ := e.db.RevisedReports(ctx, 0)
		if rev, pending, _ := e.db.StudyRevision(ctx, study); rev >= 2 && pending == 0 && len(revs) == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	revs, err := e.db.RevisedReports(ctx, 0)
	if err != nil || len(revs) != 3 {
		t.Fatalf("revised reports = %+v, %v; want the 3 films model b calls abnormal", revs, err)
	}
	for id, flipped := range flips {
		latest, _, _, err := e.db.ReportPaths(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(studyDir, SafeName(id))
		cur, err := os.ReadFile(base + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if !flipped {
			if !bytes.Equal(cur, original[id]) || latest != base+".json" || exists(base+".r1.json") {
				t.Errorf("%s: a report whose decision stands was touched (latest %s)", id, latest)
			}
			continue
		}
		if r1, err := os.ReadFile(base + ".r1.json"); err != nil || !bytes.Equal(r1, original[id]) {
			t.Errorf("%s: revision 1 not kept as written: %v", id, err)
		}
		r2, err := os.ReadFile(base + ".r2.json")
		if err != nil || !bytes.Equal(r2, cur) || latest != base+".r2.json" {
			t.Errorf("%s: revision 2 is not the latest report (%s): %v", id, latest, err)
		}
		var rep sentinel.Report
		if err := json.Unmarshal(cur, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Revision != 2 || rep.ModelVersion != "b" || rep.Decision != sentinel.DecisionAbnormal ||
			rep.Supersedes == nil || rep.Supersedes.Decision != sentinel.DecisionNotFlagged || rep.Supersedes.ModelVersion != "a" ||
			rep.Supersedes.Report != SafeName(id)+".r1.json" || rep.RevisionReason == "" {
			t.Errorf("%s: revised report %+v", id, rep)
		}
		if rep.Heatmap != SafeName(id)+".r2.heatmap.png" || !exists(filepath.Join(studyDir, rep.Heatmap)) ||
			!exists(base+".heatmap.png") {
			t.Errorf("%s: heatmaps: revision 2 names %q; the first must stay", id, rep.Heatmap)
		}
	}
	var sr sentinel.StudyReport
	if b, err := os.ReadFile(filepath.Join(studyDir, "study.json")); err != nil || json.Unmarshal(b, &sr) != nil {
		t.Fatalf("study report: %v", err)
	}
	if sr.Revision < 2 || sr.Decision != sentinel.DecisionAbnormal || len(sr.Instances) != len(files) {
		t.Fatalf("study report after the revisions: revision %d, decision %s, %d instances", sr.Revision, sr.Decision, len(sr.Instances))
	}
	// The study's revision says what changed: the three flipped films, from
	// normal to abnormal, by model b.
	if sr.PreviousDecision == "" || len(sr.Changes) == 0 {
		t.Errorf("study revision %d names no previous decision or changes: %+v", sr.Revision, sr)
	}
	changed := map[string]bool{}
	for _, c := range sr.Changes {
		changed[c.SOPInstanceUID] = true
		if c.Change != "revised" || c.To != sentinel.DecisionAbnormal || c.ModelVersion != "b" || !flips[c.SOPInstanceUID] {
			t.Errorf("study change %+v", c)
		}
	}
	if sr.Revision == 2 && len(changed) != 3 {
		t.Errorf("study revision 2 lists %d changed films, want the 3 revised", len(changed))
	}
	for _, in := range sr.Instances {
		want := "a"
		if flips[in.SOPInstanceUID] {
			want = "b"
		}
		if in.ModelVersion != want || (want == "b") != strings.HasSuffix(in.Report, ".r2.json") {
			t.Errorf("study report lists %s by model %s (%s), want the latest report's, by %s", in.SOPInstanceUID, in.ModelVersion, in.Report, want)
		}
	}

	// A stop between recording a revision and replacing <uid>.json left
	// the first report there.
	var torn string
	for id, flipped := range flips {
		if flipped {
			torn = filepath.Join(studyDir, SafeName(id))
			if err := os.WriteFile(torn+".json", original[id], 0o644); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	// Again with model b: nothing is due but the reports that stand, whose
	// scores are stored, so no image is read; the torn report is mended.
	res, err := a.ReviseReports(ctx)
	if err != nil || res.Revised != 0 || res.Checked != 3 || res.Unreadable != 0 {
		t.Fatalf("second pass: %+v, %v", res, err)
	}
	if cur, _ := os.ReadFile(torn + ".json"); !bytes.Equal(cur, must(os.ReadFile(torn+".r2.json"))) {
		t.Errorf("%s.json not brought up to revision 2", torn)
	}
	// Model c calls every film abnormal; of the films that stood, one is
	// gone and one was replaced by other bytes under its name.
	var stood []string
	for _, p := range files {
		if inst, _, err := dicomio.Load(p, dicomio.Options{}); err == nil && !flips[inst.ID] {
			stood = append(stood, p)
		}
	}
	os.Remove(stood[0])
	other := writeDICOM(t, rng, "", phantom.Meta{StudyInstanceUID: study})
	if err := os.WriteFile(stood[1], other, 0o644); err != nil {
		t.Fatal(err)
	}
	a.SetModel(thresholdModel{fakeModel{16}, "c", -1})
	res, err = a.ReviseReports(ctx)
	if err != nil || res.Revised != 1 || res.Unreadable != 2 || res.Checked != 4 {
		t.Fatalf("pass under model c: %+v, %v; want 1 revised, 2 unreadable, 4 checked", res, err)
	}
	unchanged := 0
	for id, flipped := range flips {
		cur, _ := os.ReadFile(filepath.Join(studyDir, SafeName(id)+".json"))
		if !flipped && bytes.Equal(cur, original[id]) {
			unchanged++
		}
	}
	if unchanged != 2 {
		t.Errorf("%d first reports left as written, want 2: those of the films gone or replaced", unchanged)
	}
	// Off: nothing is compared.
	a.cfg.ReviseWithin = 0
	a.SetModel(thresholdModel{fakeModel{16}, "d", 2})
	if res, err := a.ReviseReports(ctx); err != nil || res != (RevisionResult{}) {
		t.Fatalf("with revise_within 0: %+v, %v", res, err)
	}
}

// gatedModel says when a Score starts, on entered, and holds it until gate
// is closed.
type gatedModel struct {
	thresholdModel
	entered, gate chan struct{}
}

func (m gatedModel) Score(img sentinel.Image) (sentinel.Score, error) {
	m.entered <- struct{}{}
	<-m.gate
	return m.thresholdModel.Score(img)
}

// A file scored by the old model while the model changes is reported after
// the pass that compared reports with the new one: it gets a pass of its
// own.
func TestReviseReportsOfFilesInFlight(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(12), 0))
	p := filepath.Join(e.inbox, "a.dcm")
	writeDICOM(t, rng, p, phantom.Meta{})
	decode := func(p string) (sentinel.Instance, sentinel.Image, error) { return dicomio.Load(p, dicomio.Options{}) }
	old := gatedModel{thresholdModel{fakeModel{16}, "a", 2}, make(chan struct{}, 1), make(chan struct{})}
	a := New(Config{Reports: e.reports, Quarantine: e.quar, ReviseWithin: time.Hour}, e.db, old, decode, dicomio.Resample)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	<-a.reviseC // the pass New asked for: there is nothing to compare yet
	processed := make(chan Outcome, 1)
	go func() { processed <- a.Process(ctx, p) }()
	go a.revising(ctx)
	<-old.entered
	a.SetModel(thresholdModel{fakeModel{16}, "b", -1})
	// The new model's pass finds nothing: the file is still being scored.
	for len(a.reviseC) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if revs, _ := e.db.RevisedReports(ctx, 0); len(revs) != 0 {
		t.Fatalf("revised before the file was reported: %+v", revs)
	}
	close(old.gate)
	if o := <-processed; o.Status != "done" || o.Score.Decision != sentinel.DecisionNotFlagged {
		t.Fatalf("file scored by the old model: %+v", o)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if revs, _ := e.db.RevisedReports(ctx, 0); len(revs) == 1 && revs[0].ModelVersion == "b" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the report of the file in flight was never compared with the new model")
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
