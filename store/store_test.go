package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

// MustOpenDB opens a fresh database in a temporary folder with a fixed clock.
func MustOpenDB(tb testing.TB) *DB {
	tb.Helper()
	db := NewDB(testTarget(tb))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	db.Now = func() time.Time { t0 = t0.Add(time.Second); return t0 }
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func result(id, sha, path string) Result {
	u := 0.1
	return Result{
		Instance: sentinel.Instance{ID: id, SOPInstanceUID: id, StudyInstanceUID: "1.2.3", Format: sentinel.FormatDICOM,
			SourcePath: path, SHA256: sha},
		Score:        sentinel.Score{Value: 2, Threshold: 1, Decision: sentinel.DecisionAbnormal, Uncertainty: &u, Components: map[string]float64{"reconstruction": 2}},
		ModelVersion: "ae-1",
		ReportPath:   "/r/" + id + ".json",
		File:         File{Path: path, Size: 10, ModTimeNS: 5},
	}
}

func TestReopenKeepsStateAndMigratesOnce(t *testing.T) {
	ctx := context.Background()
	path := testTarget(t)
	db := NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordResult(ctx, result("1.1", "aa", "/in/a")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	known, err := db.KnownFile(ctx, "/in/a", 10, 5)
	if err != nil || !known {
		t.Fatalf("KnownFile after reopen = %v, %v", known, err)
	}
	var n int
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	if err := db.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(files) || n < 2 {
		t.Fatalf("migrations recorded = %d, want %d: %v", n, len(files), err)
	}
}

func TestRecordResultOnce(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	if err := db.RecordResult(ctx, result("1.1", "aa", "/in/a")); err != nil {
		t.Fatal(err)
	}
	err := db.RecordResult(ctx, result("1.1", "aa", "/in/b"))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second RecordResult = %v, want ErrExists", err)
	}
	if n, _ := db.ScoreCount(ctx, "1.1"); n != 1 {
		t.Fatalf("scores = %d, want 1", n)
	}
	sha, ok, err := db.InstanceSHA(ctx, "1.1")
	if err != nil || !ok || sha != "aa" {
		t.Fatalf("InstanceSHA = %q %v %v", sha, ok, err)
	}
	if _, ok, _ := db.InstanceSHA(ctx, "9.9"); ok {
		t.Fatal("unknown instance reported as known")
	}
	// The failed second attempt must leave no file row behind.
	if known, _ := db.KnownFile(ctx, "/in/b", 10, 5); known {
		t.Fatal("file of a rejected result was recorded")
	}
}

func TestRecordFileOutcomes(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	if err := db.RecordResult(ctx, result("1.1", "aa", "/in/a")); err != nil {
		t.Fatal(err)
	}
	files := []File{
		{Path: "/in/dup", Size: 1, ModTimeNS: 1, SHA256: "aa", Status: FileDuplicate, InstanceID: "1.1"},
		{Path: "/in/conf", Size: 2, ModTimeNS: 1, SHA256: "bb", Status: FileConflict, InstanceID: "1.1"},
		{Path: "/in/bad", Size: 3, ModTimeNS: 1, Status: FileFailed, Error: "not DICOM", QuarantinePath: "/q/bad"},
	}
	for _, f := range files {
		if err := db.RecordFile(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	// Recording the same file again updates it rather than adding a row.
	if err := db.RecordFile(ctx, files[2]); err != nil {
		t.Fatal(err)
	}
	c, err := db.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{FileDone: 1, FileDuplicate: 1, FileConflict: 1, FileFailed: 1}
	for k, v := range want {
		if c.Files[k] != v {
			t.Errorf("files[%s] = %d, want %d", k, c.Files[k], v)
		}
	}
	if c.Instances != 1 || c.Scores != 1 || c.Reports != 1 || c.ByDecision["abnormal"] != 1 {
		t.Errorf("counts = %+v", c)
	}
	fails, err := db.RecentFailures(ctx, 5)
	if err != nil || len(fails) != 1 || fails[0].Error != "not DICOM" || fails[0].QuarantinePath != "/q/bad" {
		t.Fatalf("RecentFailures = %+v, %v", fails, err)
	}
	// A file pointing at an unknown instance violates the foreign key.
	if err := db.RecordFile(ctx, File{Path: "/x", Status: FileDuplicate, InstanceID: "nope"}); err == nil {
		t.Fatal("foreign key not enforced")
	}
	if err := db.RecordFile(ctx, File{Path: "/y", Status: "weird"}); err == nil {
		t.Fatal("status check not enforced")
	}
}

func TestModelsAndRuns(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	if _, err := db.ActiveModel(ctx); !errors.Is(err, sentinel.ErrNoModel) {
		t.Fatalf("ActiveModel on empty db = %v, want ErrNoModel", err)
	}
	for i, v := range []string{"ae-1", "ae-2"} {
		m := sentinel.ModelInfo{Version: v, Kind: "autoencoder", CreatedAt: time.Unix(int64(i), 0), Threshold: float64(i)}
		if err := db.SaveModel(ctx, m, true); err != nil {
			t.Fatal(err)
		}
	}
	m, err := db.ActiveModel(ctx)
	if err != nil || m.Version != "ae-2" || m.Threshold != 1 {
		t.Fatalf("ActiveModel = %+v, %v", m, err)
	}
	all, _ := db.Models(ctx)
	if len(all) != 2 {
		t.Fatalf("models = %d", len(all))
	}
	id, err := db.StartTrainingRun(ctx, 12)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.FinishTrainingRun(ctx, id, "ae-2", "done", map[string]float64{"loss": 0.5}); err != nil {
		t.Fatal(err)
	}
	runs, err := db.TrainingRuns(ctx)
	if err != nil || len(runs) != 1 || runs[0].Status != "done" || runs[0].Metrics["loss"] != 0.5 || runs[0].Images != 12 {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
}

func TestLabelsAndQueries(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	if err := db.RecordResult(ctx, result("1.1", "aa", "/in/a")); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.AddQuery(ctx, sentinel.Query{InstanceID: "1.1", Strategy: "hybrid", Reason: "drawn at random for exploration", Random: true}); err != nil || !ok {
		t.Fatalf("AddQuery = %v, %v", ok, err)
	}
	if ok, _ := db.AddQuery(ctx, sentinel.Query{InstanceID: "1.1", Strategy: "random"}); ok {
		t.Fatal("instance queried twice")
	}
	l := sentinel.Label{InstanceID: "1.1", Value: "abnormal", Reader: "dr a", Time: time.Unix(100, 0)}
	if ok, err := db.AddLabel(ctx, l); err != nil || !ok {
		t.Fatalf("AddLabel = %v, %v", ok, err)
	}
	if ok, _ := db.AddLabel(ctx, l); ok {
		t.Fatal("same label added twice")
	}
	if _, err := db.AddLabel(ctx, sentinel.Label{InstanceID: "1.1", Value: "maybe", Time: time.Unix(1, 0)}); err == nil {
		t.Fatal("bad label value accepted")
	}
	labels, _ := db.Labels(ctx, "1.1")
	if len(labels) != 1 || labels[0].Reader != "dr a" {
		t.Fatalf("labels = %+v", labels)
	}
	qs, _ := db.Queries(ctx, sentinel.QueryAnswered)
	if len(qs) != 1 || !qs[0].Random || qs[0].Strategy != "hybrid" {
		t.Fatalf("answered queries = %+v", qs)
	}
}

// TestScoredInstancesComponents checks that the learning loop's view of
// the scores carries each score's components (the supervised head reads
// them), preferring the named model's score.
func TestScoredInstancesComponents(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	if err := db.RecordResult(ctx, result("1.1", "aa", "/in/a")); err != nil {
		t.Fatal(err)
	}
	u := 0.2
	if err := db.SaveScore(ctx, "1.1", "ae-2", sentinel.Score{Value: 3, Threshold: 1, Decision: sentinel.DecisionNormal,
		Uncertainty: &u, Components: map[string]float64{"memory_z": 1.5}}); err != nil {
		t.Fatal(err)
	}
	// Counts tells the decision the instance was reported with, not the
	// learning loop's rescoring.
	if c, err := db.Counts(ctx); err != nil || c.Scores != 2 || len(c.ByDecision) != 1 || c.ByDecision[string(sentinel.DecisionAbnormal)] != 1 {
		t.Errorf("counts = %+v, %v; want one instance, abnormal", c, err)
	}
	for _, tc := range []struct {
		version string
		key     string
		want    float64
	}{{"ae-1", "reconstruction", 2}, {"ae-2", "memory_z", 1.5}} {
		got, err := db.ScoredInstances(ctx, tc.version)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ModelVersion != tc.version || got[0].Score.Components[tc.key] != tc.want || len(got[0].Score.Components) != 1 {
			t.Errorf("model %s: scored instances %+v", tc.version, got)
		}
	}
}

// A labelled case's role is decided once: recording it again fails and
// records nothing of that batch.
func TestLabelRolesDecidedOnce(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	for i, id := range []string{"1.1", "1.2", "1.3"} {
		if err := db.RecordResult(ctx, result(id, fmt.Sprint(i), "/in/"+id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RecordLabelRoles(ctx, []string{"1.2"}, []string{"1.1"}); err != nil {
		t.Fatal(err)
	}
	err := db.RecordLabelRoles(ctx, []string{"1.3"}, []string{"1.2"})
	if !errors.Is(err, ErrRoleDecided) {
		t.Fatalf("second decision for 1.2: err = %v, want ErrRoleDecided", err)
	}
	roles, err := db.LabelRoles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 2 || !roles["1.2"] || roles["1.1"] {
		t.Fatalf("roles = %v, want 1.2 holdout and 1.1 training only", roles)
	}
	if h, err := db.Holdout(ctx); err != nil || !slices.Equal(h, []string{"1.2"}) {
		t.Fatalf("Holdout = %v, %v", h, err)
	}
}

// A workspace whose holdout was chosen under the earlier schema keeps it,
// its other labelled cases, which may have trained, stay on the training
// side, and its queries drawn at random are marked so.
func TestMigrateHoldoutToLabelRoles(t *testing.T) {
	ctx := context.Background()
	old, path := schemaAt(t, "migrations/0003_learning.sql")
	sdb := old.db
	// The instances as that schema held them (RecordResult writes the
	// current one).
	for i, id := range []string{"1.1", "1.2", "1.3"} {
		if _, err := sdb.Exec(`INSERT INTO instances (instance_id, sop_instance_uid, format, path, sha256, status, created_at, updated_at)
			VALUES (?, ?, 'dicom', ?, ?, 'scored', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`, id, id, "/in/"+id, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"1.1", "1.2"} {
		if _, err := old.AddLabel(ctx, sentinel.Label{InstanceID: id, Value: "normal", Time: time.Unix(100, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sdb.Exec(`INSERT INTO holdout (instance_id, chosen_at) VALUES ('1.2', '2026-01-01T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	for _, q := range [][3]string{{"1.1", "random", "drawn at random"}, {"1.2", "hybrid", "boundary rank 1"}, {"1.3", "hybrid", "drawn at random for exploration (1 of 3)"}} {
		if _, err := sdb.Exec(`INSERT INTO queries (instance_id, strategy, reason, state, created_at) VALUES (?, ?, ?, 'open', '2026-01-01T00:00:00Z')`, q[0], q[1], q[2]); err != nil {
			t.Fatal(err)
		}
	}
	sdb.Close()

	db := reopen(t, path)
	roles, err := db.LabelRoles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 2 || !roles["1.2"] || roles["1.1"] {
		t.Fatalf("migrated roles = %v, want 1.2 holdout, 1.1 training, 1.3 (unlabelled) undecided", roles)
	}
	qs, err := db.Queries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var random []string
	for _, q := range qs {
		if q.Random {
			random = append(random, q.InstanceID)
		}
	}
	if !slices.Equal(random, []string{"1.1", "1.3"}) {
		t.Fatalf("queries drawn at random after the migration: %v, want 1.1 and 1.3", random)
	}
}

// schemaAt returns a new database migrated through the named migration
// only, as an earlier Sentinel left it, and its path.
func schemaAt(t *testing.T, last string) (*DB, string) {
	t.Helper()
	path := testTarget(t)
	driver, dsn := "sqlite", "file:"+path
	if testPostgres {
		driver, dsn = "pgx", path
	}
	sdb, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	old := &DB{db: &conn{dialect: dialect{testPostgres}, raw: sdb}, path: path, pg: testPostgres, Now: time.Now}
	if err := old.migrateThrough(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	return old, path
}

// reopen opens the database at path as the current Sentinel does, every
// migration applied; it is closed when the test ends.
func reopen(t *testing.T, path string) *DB {
	t.Helper()
	db := NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
