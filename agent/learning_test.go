package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// learnModel scores an image by its first pixel, or inverted when bad.
type learnModel struct {
	version string
	bad     bool
	path    string // where Load found it
}

func (m *learnModel) Score(img sentinel.Image) (sentinel.Score, error) {
	v := float64(img.Pix[0])
	if m.bad {
		v = 1 - v
	}
	return sentinel.Score{Value: v, Threshold: 0.5}, nil
}
func (m *learnModel) Info() sentinel.ModelInfo {
	return sentinel.ModelInfo{Version: m.version, Kind: "fake", CreatedAt: time.Now(), Path: m.path}
}
func (m *learnModel) InputSize() int                      { return 8 }
func (m *learnModel) CalibrationScores() []float64        { return []float64{0.1, 0.15, 0.2, 0.25, 0.3} }
func (m *learnModel) CalibrationUncertainties() []float64 { return nil }
func (m *learnModel) Save(path string) error              { return os.WriteFile(path, []byte(m.version), 0o644) }

// learnFixture is a workspace with seed normals and scored instances whose
// first pixel is their value: normals low, abnormals high.
type learnFixture struct {
	db       *store.DB
	opt      LearningOptions
	value    map[string]float32 // by instance id
	trained  [][]string         // the ids of every training call
	verified []int              // and how many of them lead as verified normals
	models   map[string]*learnModel
	nextBad  bool
}

func newLearnFixture(t *testing.T, normals, abnormals int) *learnFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db := store.NewDB(dbTarget(t, dir))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &learnFixture{db: db, value: map[string]float32{}, models: map[string]*learnModel{}}
	var seeds []store.SeedNormal
	for i := range 10 {
		id := fmt.Sprintf("seed%02d", i)
		f.value[id] = 0.1 + 0.01*float32(i)
		seeds = append(seeds, store.SeedNormal{InstanceID: id, Path: "/data/" + id + ".png"})
	}
	if err := db.AddSeedNormals(ctx, seeds); err != nil {
		t.Fatal(err)
	}
	add := func(id string, v float32) {
		f.value[id] = v
		err := db.RecordResult(ctx, store.Result{
			Instance:     sentinel.Instance{ID: id, SOPInstanceUID: "2.25." + id, Format: sentinel.FormatPNG, SourcePath: "/data/" + id + ".png", SHA256: id},
			Score:        sentinel.Score{Value: float64(v), Threshold: 0.5, Decision: sentinel.DecisionNormal},
			ModelVersion: "m0", ReportPath: "/r/" + id, File: store.File{Path: "/data/" + id + ".png", Size: 1, ModTimeNS: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range normals {
		add(fmt.Sprintf("n%02d", i), 0.1+0.005*float32(i))
	}
	for i := range abnormals {
		add(fmt.Sprintf("a%02d", i), 0.7+0.005*float32(i))
	}
	models := filepath.Join(dir, "models")
	os.MkdirAll(models, 0o755)
	f.opt = LearningOptions{
		ModelsDir: models,
		Decode: func(path string) (sentinel.Instance, sentinel.Image, error) {
			id := strings.TrimSuffix(filepath.Base(path), ".png")
			v, ok := f.value[id]
			if !ok {
				return sentinel.Instance{}, sentinel.Image{}, os.ErrNotExist
			}
			img := sentinel.NewImage(8, 8)
			for i := range img.Pix {
				img.Pix[i] = v
			}
			return sentinel.Instance{ID: id}, img, nil
		},
		Resample: func(img sentinel.Image, w, h int) sentinel.Image { return img },
		Train: func(_ context.Context, ids []string, _ []sentinel.Image, verified int) (LearnModel, error) {
			f.trained = append(f.trained, slices.Clone(ids))
			f.verified = append(f.verified, verified)
			m := &learnModel{version: fmt.Sprintf("v%d", len(f.trained)), bad: f.nextBad}
			f.models[m.version] = m
			return m, nil
		},
		Load: func(path string) (LearnModel, error) {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			m := f.models[string(b)]
			if m != nil {
				m.path = path
			}
			return m, nil
		},
		Holdout:   learn.HoldoutConfig{Fraction: 0.25, Seed: 1},
		Head:      learn.DefaultHeadConfig(),
		Promotion: learn.PromotionConfig{Tolerance: 0.02, HoldoutMinPerClass: 2},
		Gates:     learn.GateConfig{MaxDistanceZ: 3, MaxUncertaintyZ: 1, Consecutive: 2},
		TargetFPR: 0.05,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	return f
}

func (f *learnFixture) label(t *testing.T, reader string, ids ...string) ImportReport {
	t.Helper()
	var b strings.Builder
	b.WriteString("instance_id,label,reader,time\n")
	for _, id := range ids {
		v := learn.Normal
		if strings.HasPrefix(id, "a") {
			v = learn.Abnormal
		}
		fmt.Fprintf(&b, "%s,%s,%s,2026-01-02T10:00:00Z\n", id, v, reader)
	}
	rows, bad, err := learn.ParseLabels(strings.NewReader(b.String()), "csv")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ImportLabels(context.Background(), f.db, rows, bad, "test.csv")
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// retrain runs a retraining cycle and returns its result and the holdout
// after it.
func (f *learnFixture) retrain(t *testing.T) (RetrainResult, []string) {
	t.Helper()
	res, err := Retrain(context.Background(), f.db, f.opt)
	if err != nil {
		t.Fatal(err)
	}
	hold, err := f.db.Holdout(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res, hold
}

func ids(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%02d", prefix, i))
	}
	return out
}

// The frozen holdout never enters training: across several retraining
// cycles with labels arriving in between, no id the trainer receives is in
// the holdout, the holdout grows with the labels without losing a case, and
// a case that was on the training side never joins it.
func TestRetrainNeverTrainsOnHoldout(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 30, 30)
	var prev []string
	everTrained := map[string]bool{}
	for cycle := range 4 {
		f.label(t, "dr-a", append(ids("n", cycle*7, cycle*7+7), ids("a", cycle*7, cycle*7+7)...)...)
		res, hold := f.retrain(t)
		// A quarter of each class's labels, rounded: 7 labels give 2.
		if want := 2 * int(math.Round(0.25*float64((cycle+1)*7))); len(hold) != want {
			t.Fatalf("cycle %d: holdout %v with %d labels, want %d cases", cycle, hold, (cycle+1)*14, want)
		}
		if res.HoldoutAdded != len(hold)-len(prev) {
			t.Fatalf("cycle %d: HoldoutAdded %d, holdout grew from %d to %d", cycle, res.HoldoutAdded, len(prev), len(hold))
		}
		// The model's record says how many cases judged it.
		if m := res.Candidate.Metrics; int(m["holdout_normals"]+m["holdout_abnormals"]) != len(hold) {
			t.Fatalf("cycle %d: model metrics %v, holdout of %d", cycle, m, len(hold))
		}
		for _, id := range prev {
			if !slices.Contains(hold, id) {
				t.Fatalf("cycle %d: holdout case %s left the holdout", cycle, id)
			}
		}
		trained := f.trained[len(f.trained)-1]
		for _, id := range trained {
			if slices.Contains(hold, id) {
				t.Fatalf("cycle %d: holdout case %s trained on", cycle, id)
			}
			if strings.HasPrefix(id, "a") {
				t.Fatalf("cycle %d: abnormal %s trained on as a normal", cycle, id)
			}
		}
		for _, id := range slices.Concat(trained, res.Plan.Abnormals) {
			everTrained[id] = true
		}
		for _, id := range hold {
			if everTrained[id] {
				t.Fatalf("cycle %d: %s joined the holdout after training", cycle, id)
			}
		}
		if !slices.Contains(trained, "seed00") || len(res.Plan.Abnormals) == 0 {
			t.Fatalf("cycle %d: plan %+v", cycle, res.Plan)
		}
		prev = hold
	}
	// Labelling a holdout case again changes nothing either.
	f.label(t, "dr-b", prev...)
	res, err := Retrain(ctx, f.db, f.opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.HoldoutAdded != 0 {
		t.Fatalf("relabelling added %d holdout cases", res.HoldoutAdded)
	}
	for _, id := range f.trained[len(f.trained)-1] {
		if slices.Contains(prev, id) {
			t.Fatalf("relabelled holdout case %s trained on", id)
		}
	}
}

// A seed normal that is also labelled keeps training and never joins the
// holdout: every model so far trained on it.
func TestLabelledSeedNeverHeldOut(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 10, 10)
	var seeds []store.SeedNormal
	for _, id := range ids("n", 0, 10) {
		seeds = append(seeds, store.SeedNormal{InstanceID: id, Path: "/data/" + id + ".png"})
	}
	if err := f.db.AddSeedNormals(ctx, seeds); err != nil {
		t.Fatal(err)
	}
	f.label(t, "dr-a", append(ids("n", 0, 10), ids("a", 0, 10)...)...)
	res, hold := f.retrain(t)
	// A quarter of the ten abnormals, and none of the seeds.
	if len(hold) != 3 || res.HoldoutAdded != 3 {
		t.Fatalf("holdout %v (%d added), want three abnormals", hold, res.HoldoutAdded)
	}
	for _, id := range hold {
		if !strings.HasPrefix(id, "a") {
			t.Fatalf("seed normal %s in the holdout %v", id, hold)
		}
	}
	trained := f.trained[len(f.trained)-1]
	for _, id := range ids("n", 0, 10) {
		if !slices.Contains(trained, id) {
			t.Fatalf("labelled seed normal %s not trained on: %v", id, trained)
		}
	}
}

// The cases asked about at random fill the holdout before those chosen
// for being informative.
func TestHoldoutPrefersRandomQueries(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 8, 8)
	var picked []string
	for i, id := range append(ids("n", 0, 8), ids("a", 0, 8)...) {
		random := i%4 == 0 // n00, n04, a00, a04
		if random {
			picked = append(picked, id)
		}
		if _, err := f.db.AddQuery(ctx, sentinel.Query{InstanceID: id, Strategy: "hybrid", Reason: "test", Random: random}); err != nil {
			t.Fatal(err)
		}
	}
	f.label(t, "dr-a", append(ids("n", 0, 8), ids("a", 0, 8)...)...)
	_, hold := f.retrain(t)
	// A quarter of eight is two of each class: the two drawn at random.
	if !slices.Equal(hold, []string{"a00", "a04", "n00", "n04"}) {
		t.Fatalf("holdout %v, want the random draws %v", hold, picked)
	}
}

// An admission is undone when a reader later labels the case abnormal, and
// the case stops training.
func TestAdmissionUndoneByContradictingLabel(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 5, 0)
	// A pool case that looks normal but is (we will learn) abnormal.
	f.value["a00"] = 0.12
	if err := f.db.RecordResult(ctx, store.Result{Instance: sentinel.Instance{ID: "a00", SOPInstanceUID: "2.25.a00",
		Format: sentinel.FormatPNG, SourcePath: "/data/a00.png", SHA256: "a00"}, ModelVersion: "m0",
		File: store.File{Path: "/data/a00.png", Size: 1, ModTimeNS: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Retrain(ctx, f.db, f.opt); err != nil {
		t.Fatal(err)
	}
	r1, err := AdmitCycle(ctx, f.db, f.opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(r1.Admitted) != 0 || r1.Passed == 0 {
		t.Fatalf("first cycle admitted %v (passed %d): two consecutive passes are needed", r1.Admitted, r1.Passed)
	}
	r2, err := AdmitCycle(ctx, f.db, f.opt)
	if err != nil {
		t.Fatal(err)
	}
	adm, _ := f.db.Admissions(ctx, store.AdmissionAdmitted)
	if len(r2.Admitted) == 0 || !slices.ContainsFunc(adm, func(a store.Admission) bool { return a.InstanceID == "a00" }) {
		t.Fatalf("a00 not admitted: %v", adm)
	}
	// A retraining now trains on the admitted cases but may not calibrate
	// on them: they come after the verified normals.
	if _, err := Retrain(ctx, f.db, f.opt); err != nil {
		t.Fatal(err)
	}
	ids, v := f.trained[len(f.trained)-1], f.verified[len(f.verified)-1]
	for i, id := range ids {
		isAdm := slices.ContainsFunc(adm, func(a store.Admission) bool { return a.InstanceID == id })
		if isAdm != (i >= v) {
			t.Fatalf("trained on %v with the first %d verified, admitted %v", ids, v, adm)
		}
	}
	rep := f.label(t, "dr-a", "a00")
	if !slices.Contains(rep.Undone, "a00") {
		t.Fatalf("admission not undone: %+v", rep)
	}
	all, _ := f.db.Admissions(ctx, "")
	for _, a := range all {
		if a.InstanceID == "a00" && (a.State != store.AdmissionUndone || a.UndoReason == "") {
			t.Fatalf("a00 admission = %+v", a)
		}
	}
	if _, err := Retrain(ctx, f.db, f.opt); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(f.trained[len(f.trained)-1], "a00") {
		t.Fatal("undone admission still trained on")
	}
	still, _ := f.db.Admissions(ctx, store.AdmissionAdmitted)
	if n := len(f.trained); f.verified[n-1] != len(f.trained[n-1])-len(still) {
		t.Errorf("%d of %d training images verified with %d admissions standing", f.verified[n-1], len(f.trained[n-1]), len(still))
	}
	// And it does not creep back in.
	AdmitCycle(ctx, f.db, f.opt)
	AdmitCycle(ctx, f.db, f.opt)
	adm, _ = f.db.Admissions(ctx, store.AdmissionAdmitted)
	if slices.ContainsFunc(adm, func(a store.Admission) bool { return a.InstanceID == "a00" }) {
		t.Fatal("labelled abnormal case admitted again")
	}
}

func TestImportLabelsIdempotentAndReportsBadRows(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 3, 1)
	in := strings.Join([]string{
		"sop_instance_uid,file,label,reader,time",
		"2.25.n00,,normal,dr-a,2026-01-02",  // 2 ok by UID
		",n01.png,normal,dr-a,2026-01-02",   // 3 ok by file name
		"2.25.zz,,normal,dr-a,2026-01-02",   // 4 unknown
		",a00.png,abnormal,dr-a,2026-01-02", // 5 ok
		",a00.png,sick,dr-a,2026-01-02",     // 6 bad label
		",a00.png,abnormal,dr-b,not-a-time", // 7 bad time
	}, "\n")
	parse := func() ([]learn.LabelRow, []learn.RowError) {
		rows, bad, err := learn.ParseLabels(strings.NewReader(in), "csv")
		if err != nil {
			t.Fatal(err)
		}
		return rows, bad
	}
	rows, bad := parse()
	rep, err := ImportLabels(ctx, f.db, rows, bad, "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, e := range rep.Errors {
		lines = append(lines, e.Line)
	}
	if rep.Added != 3 || !slices.Equal(lines, []int{4, 6, 7}) || !errors.Is(rep.Errors[0], learn.ErrUnknownKey) {
		t.Fatalf("import = %+v", rep)
	}
	rows, bad = parse()
	rep, err = ImportLabels(ctx, f.db, rows, bad, "x.csv")
	if err != nil || rep.Added != 0 || rep.Unchanged != 3 {
		t.Fatalf("re-import = %+v, %v", rep, err)
	}
	if n, _ := f.db.LabelCount(ctx); n != 3 {
		t.Fatalf("%d labels after re-import", n)
	}
	// A file name two instances share is ambiguous, not guessed.
	f.db.RecordResult(ctx, store.Result{Instance: sentinel.Instance{ID: "dup", SOPInstanceUID: "2.25.dup", Format: sentinel.FormatPNG,
		SourcePath: "/other/n02.png", SHA256: "dup"}, ModelVersion: "m0", File: store.File{Path: "/other/n02.png", Size: 1, ModTimeNS: 1}})
	rows, bad, _ = learn.ParseLabels(strings.NewReader("file,label,reader,time\nn02.png,normal,r,2026-01-02\n"), "csv")
	rep, _ = ImportLabels(ctx, f.db, rows, bad, "y.csv")
	if len(rep.Errors) != 1 || !errors.Is(rep.Errors[0], learn.ErrAmbiguous) {
		t.Fatalf("ambiguous = %+v", rep)
	}
}

// A row naming a study (by accession number or Study Instance UID) labels
// every image of it, once: a re-import changes nothing, and labels an image
// of the study that arrived since. A study the workspace does not hold is
// an unknown key, by line.
func TestImportLabelsByStudy(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 0, 0)
	film := func(id, study, accession string) {
		t.Helper()
		err := f.db.RecordResult(ctx, store.Result{Instance: sentinel.Instance{ID: id, SOPInstanceUID: "2.25." + id,
			StudyInstanceUID: study, AccessionNumber: accession, Format: sentinel.FormatDICOM, SourcePath: "/in/" + id + ".dcm", SHA256: id},
			ModelVersion: "m0", File: store.File{Path: "/in/" + id + ".dcm", Size: 1, ModTimeNS: 1}})
		if err != nil {
			t.Fatal(err)
		}
	}
	film("pa1", "1.2.1", "ACC1")
	film("lat1", "1.2.1", "ACC1")
	film("pa2", "1.2.2", "ACC2")
	film("pa3", "1.2.3", "")
	in := strings.Join([]string{
		"accession_number,study_instance_uid,label,reader,time",
		"ACC1,,abnormal: pneumonia,dr-a,2026-01-02", // 2: pa1 and lat1
		",1.2.3,normal,dr-a,2026-01-02",             // 3: pa3
		"ACC9,,normal,dr-a,2026-01-02",              // 4: unknown
	}, "\n")
	imp := func() ImportReport {
		t.Helper()
		rows, bad, err := learn.ParseLabels(strings.NewReader(in), "csv")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := ImportLabels(ctx, f.db, rows, bad, "ris.csv")
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := imp()
	if rep.Rows != 3 || rep.Added != 3 || len(rep.Errors) != 1 || rep.Errors[0].Line != 4 || !errors.Is(rep.Errors[0], learn.ErrUnknownKey) {
		t.Fatalf("import = %+v", rep)
	}
	labels, err := f.db.AllLabels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for id, ls := range labels {
		for _, l := range ls {
			got[id] += l.Value + "/" + l.Finding
		}
	}
	want := map[string]string{"pa1": "abnormal/pneumonia", "lat1": "abnormal/pneumonia", "pa3": "normal/"}
	if !maps.Equal(got, want) {
		t.Fatalf("labels %v, want %v", got, want)
	}
	if rep := imp(); rep.Added != 0 || rep.Unchanged != 3 {
		t.Fatalf("re-import = %+v", rep)
	}
	film("lat3", "1.2.3", "")
	if rep := imp(); rep.Added != 1 || rep.Unchanged != 3 {
		t.Fatalf("re-import after a late film = %+v", rep)
	}
}

func TestPromotionRefusesWorseThenRollback(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 30, 30)
	f.label(t, "dr-a", append(ids("n", 0, 20), ids("a", 0, 20)...)...)
	first, err := Retrain(ctx, f.db, f.opt)
	if err != nil || !first.Verdict.Promote {
		t.Fatalf("first = %+v, %v", first.Verdict, err)
	}
	f.nextBad = true
	worse, err := Retrain(ctx, f.db, f.opt)
	if err != nil {
		t.Fatal(err)
	}
	if worse.Verdict.Promote {
		t.Fatalf("worse model promoted: %+v", worse)
	}
	active, _ := f.db.ActiveModel(ctx)
	cur, _ := os.ReadFile(filepath.Join(f.opt.ModelsDir, CurrentModelFile))
	if active.Version != "v1" || strings.TrimSpace(string(cur)) != "v1.model" {
		t.Fatalf("active %s, CURRENT %q", active.Version, cur)
	}
	vs, _ := f.db.ModelVersions(ctx)
	if len(vs) != 2 || vs[1].Active || !strings.HasPrefix(vs[1].Note, "rejected") {
		t.Fatalf("versions %+v", vs)
	}
	// Rolling back (here: forward to the rejected one, any kept version
	// will do) switches both the database and CURRENT.
	if _, err := Rollback(ctx, f.db, f.opt.ModelsDir, "v2"); err != nil {
		t.Fatal(err)
	}
	active, _ = f.db.ActiveModel(ctx)
	cur, _ = os.ReadFile(filepath.Join(f.opt.ModelsDir, CurrentModelFile))
	if active.Version != "v2" || strings.TrimSpace(string(cur)) != "v2.model" {
		t.Fatalf("after rollback: active %s, CURRENT %q", active.Version, cur)
	}
	if _, err := Rollback(ctx, f.db, f.opt.ModelsDir, "v9"); !errors.Is(err, store.ErrUnknownModel) {
		t.Fatalf("rollback unknown = %v", err)
	}
}

func TestQueriesNeverAskTwiceAndRetrainDue(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 10, 10)
	if _, err := Retrain(ctx, f.db, f.opt); err != nil {
		t.Fatal(err)
	}
	asked := map[string]bool{}
	for round := range 5 {
		rows, err := NewQueries(ctx, f.db, f.opt, QueryOptions{N: 5, Strategy: learn.Hybrid, Seed: int64(round)})
		if err != nil {
			t.Fatal(err)
		}
		qs, _ := f.db.Queries(ctx, "")
		for _, q := range qs {
			asked[q.InstanceID] = true
		}
		if len(qs) != min(20, 5*(round+1)) || len(rows) != len(qs) {
			t.Fatalf("round %d: %d queries, worklist %d", round, len(qs), len(rows))
		}
	}
	if len(asked) != 20 {
		t.Fatalf("%d distinct cases asked", len(asked))
	}
	// Hybrid draws a third of each round at random, and the queries say so.
	qs, _ := f.db.Queries(ctx, "")
	var random int
	for _, q := range qs {
		if q.Random != strings.HasPrefix(q.Reason, "drawn at random") {
			t.Fatalf("query %+v: drawn at random %v", q, q.Random)
		}
		if q.Random {
			random++
		}
	}
	if random == 0 || random == len(qs) {
		t.Fatalf("%d of %d hybrid queries drawn at random", random, len(qs))
	}
	p := RetrainPolicy{EveryLabels: 3}
	if due, _ := RetrainDue(ctx, f.db, p); due {
		t.Fatal("retrain due with no labels")
	}
	f.label(t, "dr-a", "n00", "n01", "a00")
	if due, _ := RetrainDue(ctx, f.db, p); !due {
		t.Fatal("retrain not due after 3 labels")
	}
	if ok, err := MaybeRetrain(ctx, f.db, f.opt, p); !ok || err != nil {
		t.Fatalf("MaybeRetrain = %v, %v", ok, err)
	}
	if due, _ := RetrainDue(ctx, f.db, p); due {
		t.Fatal("retrain still due right after retraining")
	}
}

// addFilm records a scored DICOM film of the patient with the given key.
func (f *learnFixture) addFilm(t *testing.T, id, key string, v float32) {
	t.Helper()
	f.value[id] = v
	err := f.db.RecordResult(context.Background(), store.Result{
		Instance: sentinel.Instance{ID: id, SOPInstanceUID: "2.25." + id, Format: sentinel.FormatDICOM,
			SourcePath: "/data/" + id + ".png", SHA256: id, PatientKey: key},
		Score:        sentinel.Score{Value: float64(v), Threshold: 0.5, Decision: sentinel.DecisionNormal},
		ModelVersion: "m0", ReportPath: "/r/" + id, File: store.File{Path: "/data/" + id + ".png", Size: 1, ModTimeNS: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A round of queries asks about one film per patient, and a patient with
// an open query is not asked about again until it is answered.
func TestQueriesOnePerPatient(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 0, 0)
	patient := map[string]string{}
	// Six patients with three films each, the three close in score.
	for p := range 6 {
		for k := range 3 {
			id := fmt.Sprintf("f%d%d", p, k)
			patient[id] = fmt.Sprintf("p%d", p)
			f.addFilm(t, id, patient[id], 0.3+0.05*float32(p)+0.001*float32(k))
		}
	}
	if _, err := Retrain(ctx, f.db, f.opt); err != nil {
		t.Fatal(err)
	}
	for _, st := range []learn.Strategy{learn.Boundary, learn.Random} {
		rows, err := NewQueries(ctx, f.db, f.opt, QueryOptions{N: 4, Strategy: st, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		open := map[string]int{}
		for _, r := range rows {
			open[patient[r.InstanceID]]++
		}
		for p, n := range open {
			if n > 1 {
				t.Fatalf("%s: %d open queries for patient %s: %+v", st, n, p, rows)
			}
		}
		if st == learn.Boundary && len(rows) != 4 {
			t.Fatalf("boundary asked %d, want 4", len(rows))
		}
		if st == learn.Random && len(rows) != 6 {
			t.Fatalf("after random: %d open, want one per patient (6)", len(rows))
		}
	}
	// Answering a patient's query frees the patient for the next round.
	rows, _ := f.db.Worklist(ctx)
	f.label(t, "dr-a", rows[0].InstanceID)
	rows, err := NewQueries(ctx, f.db, f.opt, QueryOptions{N: 4, Strategy: learn.Boundary})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("%d open after answering one, want 6", len(rows))
	}
}

// A patient's labelled films land on one side of the holdout: the films of
// a patient with a seed film train, and a new film of a held-out patient
// joins the holdout instead of training.
func TestRetrainKeepsPatientsTogether(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 0, 0)
	patient := map[string]string{}
	add := func(id, key string, v float32) {
		t.Helper()
		patient[id] = key
		f.addFilm(t, id, key, v)
	}
	// Twenty patients with a normal and an abnormal film each; seed00's
	// patient also has two labelled films.
	for i := range 20 {
		key := fmt.Sprintf("p%02d", i)
		add(fmt.Sprintf("n%02d", i), key, 0.1+0.005*float32(i))
		add(fmt.Sprintf("a%02d", i), key, 0.7+0.005*float32(i))
	}
	add("seed00", "ps", 0.1)
	add("n90", "ps", 0.2)
	add("a90", "ps", 0.8)
	// A seed recorded with its patient's key and no instance row.
	f.value["seed99"] = 0.1
	if err := f.db.AddSeedNormals(ctx, []store.SeedNormal{{InstanceID: "seed99", Path: "/data/seed99.png", PatientKey: "ps2"}}); err != nil {
		t.Fatal(err)
	}
	add("n91", "ps2", 0.2)
	add("a91", "ps2", 0.8)
	// The seed patients' films were drawn at random, so that without the
	// seed rule they would be first in line for the holdout.
	for _, id := range []string{"n90", "a90", "n91", "a91"} {
		if _, err := f.db.AddQuery(ctx, sentinel.Query{InstanceID: id, Strategy: "random", Reason: "drawn at random", Random: true}); err != nil {
			t.Fatal(err)
		}
	}
	f.label(t, "dr-a", slices.Concat(ids("n", 0, 20), ids("a", 0, 20), []string{"n90", "a90", "n91", "a91"})...)
	_, hold := f.retrain(t)
	if len(hold) < 6 || len(hold) > 14 {
		t.Fatalf("holdout %v, want about a quarter of 44 labels", hold)
	}
	held := map[string]bool{}
	for _, id := range hold {
		held[patient[id]] = true
	}
	if held["ps"] || held["ps2"] {
		t.Fatalf("holdout %v holds a film of a seed normal's patient", hold)
	}
	trained := f.trained[len(f.trained)-1]
	for _, id := range trained {
		if held[patient[id]] {
			t.Fatalf("%s trained; its patient %s has films in the holdout %v", id, patient[id], hold)
		}
	}
	for _, id := range slices.Concat(ids("n", 0, 20), ids("a", 0, 20)) {
		other := "a" + id[1:]
		if id[0] == 'a' {
			other = "n" + id[1:]
		}
		if slices.Contains(hold, id) != slices.Contains(hold, other) {
			t.Fatalf("%s and %s of one patient on different sides (holdout %v)", id, other, hold)
		}
	}
	// A new film of a held-out patient joins the holdout.
	p := patient[hold[0]]
	add("n50", p, 0.15)
	f.label(t, "dr-a", "n50")
	if _, hold2 := f.retrain(t); !slices.Contains(hold2, "n50") {
		t.Fatalf("a new film of held-out patient %s trains (holdout %v)", p, hold2)
	}
	if slices.Contains(f.trained[len(f.trained)-1], "n50") {
		t.Fatal("a held-out patient's new film trained")
	}
}

// A patient key that holds too many of the films is an anonymiser's
// placeholder: its films are grouped by study instead, with a warning;
// real keys and films without a key but with a study are grouped as they
// come.
func TestPatientGroupsIgnorePlaceholders(t *testing.T) {
	refs := map[string]store.Patient{}
	for i := range 40 {
		refs[fmt.Sprintf("anon%02d", i)] = store.Patient{Key: "ANON", Study: fmt.Sprintf("st%02d", i/2)}
	}
	for i := range 6 {
		refs[fmt.Sprintf("real%d", i)] = store.Patient{Key: fmt.Sprintf("p%d", i/3), Study: fmt.Sprintf("rs%d", i)}
	}
	refs["nokey"] = store.Patient{Study: "lone"}
	seeds := []store.SeedNormal{{InstanceID: "seed0", PatientKey: "p0"}, {InstanceID: "seed1", PatientKey: "ANON"}, {InstanceID: "anon00"}}
	var logged bytes.Buffer
	group, seedGroups := patientGroups(refs, seeds, slog.New(slog.NewTextHandler(&logged, nil)))
	if group["anon00"] != "s:st00" || group["anon00"] != group["anon01"] || group["anon00"] == group["anon02"] {
		t.Errorf("placeholder films grouped %q, %q, %q; want by study", group["anon00"], group["anon01"], group["anon02"])
	}
	if group["real0"] != "p:p0" || group["real0"] != group["real2"] || group["real0"] == group["real3"] || group["nokey"] != "s:lone" {
		t.Errorf("real patients grouped %q %q %q, no key %q", group["real0"], group["real2"], group["real3"], group["nokey"])
	}
	if !strings.Contains(logged.String(), "too many of the films") {
		t.Errorf("no warning about the placeholder: %q", logged.String())
	}
	want := map[string]bool{"p:p0": true, "s:st00": true}
	if !maps.Equal(seedGroups, want) {
		t.Errorf("seed groups %v, want %v", seedGroups, want)
	}
}

// While another process holds the workspace's learning lease, a retraining
// cycle refuses to start and trains nothing, and the agent's hook skips its
// turn; once the lease is free the cycle runs, and gives the lease back.
func TestRetrainWaitsForRunningCycle(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 10, 10)
	f.label(t, "dr-a", append(ids("n", 0, 10), ids("a", 0, 10)...)...)
	other, err := f.db.Acquire(ctx, learningLease, "other-host pid 7", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Retrain(ctx, f.db, f.opt); !errors.Is(err, ErrCycleRunning) || !strings.Contains(err.Error(), "other-host pid 7") {
		t.Fatalf("Retrain with the lease held: %v, want ErrCycleRunning naming the holder", err)
	}
	if _, err := AdmitCycle(ctx, f.db, f.opt); !errors.Is(err, ErrCycleRunning) {
		t.Fatalf("AdmitCycle with the lease held: %v, want ErrCycleRunning", err)
	}
	if ok, err := MaybeRetrain(ctx, f.db, f.opt, RetrainPolicy{EveryLabels: 1}); ok || err != nil {
		t.Fatalf("MaybeRetrain with the lease held = %v, %v; want a skipped turn", ok, err)
	}
	// Choosing queries holds a lease of its own: a learning cycle does not
	// stop it, another round does, and the worklist can still be read.
	if _, err := NewQueries(ctx, f.db, f.opt, QueryOptions{N: 1, Strategy: learn.Random, Seed: 1}); errors.Is(err, ErrRoundRunning) || errors.Is(err, ErrCycleRunning) {
		t.Fatalf("NewQueries during a learning cycle: %v", err)
	}
	round, err := f.db.Acquire(ctx, queriesLease, "other-host pid 8", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewQueries(ctx, f.db, f.opt, QueryOptions{N: 1, Strategy: learn.Random, Seed: 1}); !errors.Is(err, ErrRoundRunning) || !strings.Contains(err.Error(), "other-host pid 8") {
		t.Fatalf("NewQueries with the queries lease held: %v, want ErrRoundRunning naming the holder", err)
	}
	if _, err := NewQueries(ctx, f.db, f.opt, QueryOptions{}); err != nil {
		t.Fatalf("reading the worklist with the queries lease held: %v", err)
	}
	if err := round.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.trained) != 0 {
		t.Fatalf("%d trainings while another cycle held the lease", len(f.trained))
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	f.retrain(t)
	f.retrain(t) // the first cycle gave the lease back
	if len(f.trained) != 2 {
		t.Fatalf("%d trainings after the lease was freed, want 2", len(f.trained))
	}
}

// markerEmbedder embeds an image as its second pixel: a feature the
// detector of the learning fixture does not read, which labels can teach
// the head.
type markerEmbedder struct{}

func (markerEmbedder) Embed(img sentinel.Image) []float32 { return []float32{img.Pix[1]} }

// Once labels have taught the head what the detector misses, a case the
// head calls abnormal is not admitted however normal the detector finds it,
// and every gate check and admission records the head's logit.
func TestAdmissionHeadGate(t *testing.T) {
	for _, gate := range []bool{true, false} {
		t.Run(fmt.Sprintf("head_gate=%v", gate), func(t *testing.T) {
			ctx := context.Background()
			f := newLearnFixture(t, 24, 12)
			// Half the abnormals look normal to the detector; all carry a
			// marker in the second pixel, and so do the unlabelled x cases.
			marked := func(id string) bool { return strings.HasPrefix(id, "a") || strings.HasPrefix(id, "x") }
			for i := range 6 {
				f.value[fmt.Sprintf("a%02d", i)] = 0.12 + 0.005*float32(i)
			}
			for i := range 4 {
				f.addFilm(t, fmt.Sprintf("x%02d", i), "", 0.13+0.005*float32(i))
			}
			decode := f.opt.Decode
			f.opt.Decode = func(path string) (sentinel.Instance, sentinel.Image, error) {
				inst, img, err := decode(path)
				if err == nil && marked(strings.TrimSuffix(filepath.Base(path), ".png")) {
					img.Pix[1] = 1
				}
				return inst, img, err
			}
			f.opt.Embedder = markerEmbedder{}
			f.opt.Gates.HeadGate = gate
			f.label(t, "dr-a", append(ids("n", 0, 14), ids("a", 0, 12)...)...)
			res, _ := f.retrain(t)
			if !res.Verdict.Promote {
				t.Fatalf("retrain not promoted: %+v", res)
			}
			for range 2 {
				if _, err := AdmitCycle(ctx, f.db, f.opt); err != nil {
					t.Fatal(err)
				}
			}
			adm, err := f.db.Admissions(ctx, store.AdmissionAdmitted)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range adm {
				got = append(got, a.InstanceID)
				if (a.HeadLogit != nil) != gate {
					t.Errorf("admission %s head logit %v with the gate %v", a.InstanceID, a.HeadLogit, gate)
				}
				if a.HeadLogit != nil && *a.HeadLogit > 0 {
					t.Errorf("admitted %s with head logit %.3g", a.InstanceID, *a.HeadLogit)
				}
			}
			if !slices.Contains(got, "n20") {
				t.Fatalf("unlabelled normal n20 not admitted: %v", got)
			}
			xs := slices.ContainsFunc(got, func(id string) bool { return strings.HasPrefix(id, "x") })
			if xs == gate {
				t.Fatalf("with the head gate %v, admitted %v", gate, got)
			}
		})
	}
}

// The running agent's schedule: an admission cycle when the last one is
// older than AdmitEvery, and a retraining once EveryAdmissions cases have
// been admitted since the last one; admissions counted by one retraining
// do not start another.
func TestMaybeRetrainAdmitsOnSchedule(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 10, 0)
	now := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f.db.Now = clock
	f.retrain(t)
	admissionCycle := func() int64 {
		t.Helper()
		c, _, err := f.db.LastCycle(ctx, store.CycleAdmission)
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	p := RetrainPolicy{AdmitEvery: time.Hour, EveryAdmissions: 3, Now: clock}
	step := func(advance time.Duration) bool {
		t.Helper()
		now = now.Add(advance)
		ok, err := MaybeRetrain(ctx, f.db, f.opt, p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if step(0) || admissionCycle() == 0 {
		t.Fatalf("first turn: want an admission cycle (none ever ran) and no retraining; cycle %d", admissionCycle())
	}
	first, trained := admissionCycle(), len(f.trained)
	if step(30*time.Minute) || admissionCycle() != first {
		t.Fatal("an admission cycle ran before AdmitEvery had passed")
	}
	if !step(31*time.Minute) || admissionCycle() == first || len(f.trained) != trained+1 {
		t.Fatalf("second admission cycle: want cases admitted and a retraining (%d trainings, were %d)", len(f.trained), trained)
	}
	if adm, _ := f.db.Admissions(ctx, store.AdmissionAdmitted); len(adm) < 3 {
		t.Fatalf("%d admitted, want at least 3", len(adm))
	}
	if step(time.Minute) {
		t.Fatal("retrained again on admissions the last retraining already counted")
	}
	// Without a schedule, no admission cycle runs on its own.
	p.AdmitEvery = 0
	last := admissionCycle()
	if step(24*time.Hour) || admissionCycle() != last {
		t.Fatal("admission cycle ran with AdmitEvery = 0")
	}
}

// A model a retraining cycle saved scores as it was evaluated and
// promoted: the detector's score combined with the head, against the
// recalibrated threshold, the detector's own score kept as a component. A
// model with nothing saved beside it scores as the detector alone, and a
// damaged sidecar is an error, not a silent fallback.
func TestWithLearningScoresAsPromoted(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 30, 30)
	f.label(t, "dr-a", append(ids("n", 0, 20), ids("a", 0, 20)...)...)
	res, _ := f.retrain(t)
	if !res.Verdict.Promote {
		t.Fatalf("verdict %+v", res.Verdict)
	}
	m, info, _, err := currentModel(ctx, f.db, f.opt)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := readSidecar(info.Path)
	if err != nil || sc.Combiner == nil {
		t.Fatalf("sidecar: %+v, %v", sc, err)
	}
	s, err := WithLearning(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s == Scorer(m) {
		t.Fatal("WithLearning returned the bare detector for a model with a combiner")
	}
	var abnormal, normal int
	for _, v := range []float32{0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95} {
		img := sentinel.NewImage(8, 8)
		for i := range img.Pix {
			img.Pix[i] = v
		}
		got, err := s.Score(img)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := m.Score(img)
		want := sc.Combiner.Score(raw.Value, learn.HeadInput(raw.Components, learn.Thumbnail{Side: 16}.Embed(img)))
		if got.Value != want || got.Threshold != sc.Combiner.Threshold || got.Components[ComponentDetector] != raw.Value {
			t.Fatalf("value %v: score %+v, want combined %v, threshold %v, detector %v", v, got, want, sc.Combiner.Threshold, raw.Value)
		}
		if (got.Decision == sentinel.DecisionAbnormal) != (got.Value > got.Threshold) || got.Reason == "" {
			t.Fatalf("value %v: decision %s (%s) at %v against %v", v, got.Decision, got.Reason, got.Value, got.Threshold)
		}
		if got.Decision == sentinel.DecisionAbnormal {
			abnormal++
		} else {
			normal++
		}
		// The learning loop reads a stored learned score back as the
		// detector's.
		if d := detectorScore(got); d.Value != raw.Value {
			t.Fatalf("detectorScore = %v, want %v", d.Value, raw.Value)
		}
	}
	if abnormal == 0 || normal == 0 {
		t.Fatalf("%d abnormal, %d normal: the threshold separates nothing", abnormal, normal)
	}
	// The detector's uncertain margin is moved to the combined score: a
	// margin of one spread of the seed normals' detector scores makes
	// uncertain the combined scores within one unit of the threshold.
	wide, err := WithLearning(marginModel{m, sc.Combiner.DetSD}, nil)
	if err != nil {
		t.Fatal(err)
	}
	inBand, outside := 0, 0
	for v := float32(0.02); v < 1; v += 0.04 {
		img := sentinel.NewImage(8, 8)
		for i := range img.Pix {
			img.Pix[i] = v
		}
		base, _ := s.Score(img)
		got, err := wide.Score(img)
		if err != nil {
			t.Fatal(err)
		}
		want := base.Decision
		if math.Abs(base.Value-base.Threshold) < 1 {
			want = sentinel.DecisionUncertain
			inBand++
		} else {
			outside++
		}
		if got.Decision != want || got.Value != base.Value {
			t.Fatalf("value %v with the margin: %s (%s), want %s", v, got.Decision, got.Reason, want)
		}
	}
	if inBand == 0 || outside == 0 {
		t.Fatalf("%d scores within the margin, %d outside: the test shows nothing", inBand, outside)
	}
	// The loop's own rescoring stores what the reports would say, and the
	// gates still read the detector's score.
	res2, err := AdmitCycle(ctx, f.db, f.opt)
	if err != nil || res2.Checked == 0 {
		t.Fatalf("admission cycle: %+v, %v", res2, err)
	}
	rescored, err := f.db.ScoredInstances(ctx, info.Version)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rescored {
		if r.ModelVersion != info.Version {
			continue
		}
		n++
		d, ok := r.Score.Components[ComponentDetector]
		if !ok || d != float64(f.value[r.InstanceID]) || r.Score.Threshold != sc.Combiner.Threshold {
			t.Fatalf("rescored %s: %+v, want the learned score of detector value %v", r.InstanceID, r.Score, f.value[r.InstanceID])
		}
	}
	if n == 0 {
		t.Fatal("nothing rescored with the promoted model")
	}

	// No sidecar: the detector alone.
	bare := &learnModel{version: "bare", path: filepath.Join(t.TempDir(), "bare.model")}
	if s, err := WithLearning(bare, nil); err != nil || s != Scorer(bare) {
		t.Fatalf("no sidecar: %v, %v", s, err)
	}
	// A damaged one: an error that names the model.
	if err := os.WriteFile(sidecarPath(bare.path), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WithLearning(bare, nil); err == nil || !strings.Contains(err.Error(), "bare") {
		t.Fatalf("damaged sidecar: %v", err)
	}
}

// marginModel gives a model an uncertain margin around its threshold.
type marginModel struct {
	LearnModel
	margin float64
}

func (m marginModel) UncertainMargin() float64 { return m.margin }
