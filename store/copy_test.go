package store

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/pgtest"
)

// openSQLite opens a fresh SQLite database whatever engine the suite runs
// on, with a fixed clock.
func openSQLite(tb testing.TB) *DB {
	tb.Helper()
	db := NewDB(filepath.Join(tb.TempDir(), "state.db"))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	db.Now = func() time.Time { t0 = t0.Add(time.Second); return t0 }
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// openPostgres opens a fresh, migrated PostgreSQL database, or skips.
func openPostgres(tb testing.TB) *DB {
	tb.Helper()
	db := NewDB(pgtest.NewDatabase(tb))
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// fillForCopy records some of everything a workspace holds.
func fillForCopy(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	for _, r := range []Result{result("1.1", "aa", "/in/a"), result("1.2", "bb", "/in/b")} {
		if err := db.RecordResult(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RecordFile(ctx, File{Path: "/in/bad", Size: 3, ModTimeNS: 1, Status: FileFailed, Error: "not DICOM", QuarantinePath: "/q/bad"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveModel(ctx, sentinel.ModelInfo{Version: "ae-1", Kind: "autoencoder", CreatedAt: time.Unix(10, 0), Threshold: 1.5}, true); err != nil {
		t.Fatal(err)
	}
	id, err := db.StartTrainingRun(ctx, 12)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.FinishTrainingRun(ctx, id, "ae-1", "done", map[string]float64{"loss": 0.25}); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.AddQuery(ctx, sentinel.Query{InstanceID: "1.1", Strategy: "random", Reason: "drawn at random", Random: true}); err != nil || !ok {
		t.Fatalf("AddQuery = %v, %v", ok, err)
	}
	if ok, err := db.AddLabel(ctx, sentinel.Label{InstanceID: "1.1", Value: "abnormal", Reader: "dr-a", Time: time.Unix(100, 0)}); err != nil || !ok {
		t.Fatalf("AddLabel = %v, %v", ok, err)
	}
	if _, err := db.AddReader(ctx, "dr-a", RoleReader); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnqueueOutbox(ctx, []OutboxItem{{Destination: "pacs", Object: "2.25.1", Output: "sr", InstanceID: "1.1",
		Revision: 1, Path: "/out/1.1.dcm"}}); err != nil {
		t.Fatal(err)
	}
	// The patient key is a BLOB, BYTEA on PostgreSQL.
	if _, err := db.PatientKeyer(ctx); err != nil {
		t.Fatal(err)
	}
}

// publicView is what the store's readers say about a database.
type publicView struct {
	Counts   Counts
	Known    bool
	Model    sentinel.ModelInfo
	Models   []sentinel.ModelInfo
	Runs     []sentinel.TrainingRun
	Studies  []StudySummary
	Queries  []sentinel.Query
	Labels   []sentinel.Label
	Readers  []Reader
	Outbox   []OutboxItem
	Patient  string
	Failures []File
}

func viewOf(t *testing.T, db *DB) publicView {
	t.Helper()
	ctx := context.Background()
	var v publicView
	var err error
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s on %s: %v", what, db.Engine(), err)
		}
	}
	v.Counts, err = db.Counts(ctx)
	check("Counts", err)
	v.Known, err = db.KnownFile(ctx, "/in/a", 10, 5)
	check("KnownFile", err)
	v.Model, err = db.ActiveModel(ctx)
	check("ActiveModel", err)
	v.Models, err = db.Models(ctx)
	check("Models", err)
	v.Runs, err = db.TrainingRuns(ctx)
	check("TrainingRuns", err)
	v.Studies, err = db.Studies(ctx, 10)
	check("Studies", err)
	v.Queries, err = db.Queries(ctx, "")
	check("Queries", err)
	v.Labels, err = db.Labels(ctx, "1.1")
	check("Labels", err)
	v.Readers, err = db.Readers(ctx)
	check("Readers", err)
	v.Outbox, err = db.OutboxItems(ctx, "", 10)
	check("OutboxItems", err)
	keyer, err := db.PatientKeyer(ctx)
	check("PatientKeyer", err)
	v.Patient = keyer("issuer", "patient-1")
	v.Failures, err = db.RecentFailures(ctx, 5)
	check("RecentFailures", err)
	return v
}

func tableCount(t *testing.T, db *DB, table string) int {
	t.Helper()
	var n int
	if err := db.db.QueryRow(`SELECT COUNT(*) FROM ` + quoteName(table)).Scan(&n); err != nil {
		t.Fatalf("count %s on %s: %v", table, db.Engine(), err)
	}
	return n
}

// TestCopyToPostgres moves a SQLite database's state to PostgreSQL: every
// row of every table, read back the same, with the identities moved past
// the copied keys; a used destination or a different schema is refused.
func TestCopyToPostgres(t *testing.T) {
	if testPostgres {
		t.Skip("runs once, in the SQLite pass")
	}
	ctx := context.Background()
	src := openSQLite(t)
	fillForCopy(t, src)
	dst := openPostgres(t)

	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := queryStrings(ctx, src.db, `SELECT name FROM sqlite_master
		WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name != 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != len(tables) {
		t.Errorf("counts for %d tables, the source has %d: %v", len(counts), len(tables), counts)
	}
	for _, table := range tables {
		n, ok := counts[table]
		if s, d := tableCount(t, src, table), tableCount(t, dst, table); !ok || n != s || n != d {
			t.Errorf("table %s: copied %d (reported %v), source %d, destination %d", table, n, ok, s, d)
		}
	}
	for _, table := range []string{"instances", "files", "scores", "reports", "models", "training_runs", "queries",
		"labels", "readers", "outbox", "secrets", "studies"} {
		if counts[table] == 0 {
			t.Errorf("table %s: nothing copied", table)
		}
	}
	if s, d := viewOf(t, src), viewOf(t, dst); !reflect.DeepEqual(s, d) {
		t.Errorf("the copy reads otherwise:\nsource      %+v\ndestination %+v", s, d)
	}

	// New rows take keys past the copied ones.
	var last int64
	if err := src.db.QueryRow(`SELECT MAX(id) FROM training_runs`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	id, err := dst.StartTrainingRun(ctx, 3)
	if err != nil || id <= last {
		t.Errorf("new training run on the copy: id %d, %v; want > %d", id, err, last)
	}

	// A used database is never merged into.
	if _, err := src.CopyTo(ctx, dst); err == nil || !strings.Contains(err.Error(), "not empty: table ") {
		t.Errorf("second copy = %v, want an error naming a table that holds rows", err)
	}

	// Nor is one with other migrations.
	if _, err := src.db.Exec(`DELETE FROM schema_migrations WHERE name = 'migrations/0014_agents.sql'`); err != nil {
		t.Fatal(err)
	}
	if _, err := src.CopyTo(ctx, openPostgres(t)); err == nil || !strings.Contains(err.Error(), "0014_agents") {
		t.Errorf("copy with a migration missing = %v, want an error naming it", err)
	}

	// Only SQLite to PostgreSQL.
	if _, err := src.CopyTo(ctx, openSQLite(t)); err == nil || !strings.Contains(err.Error(), "must be a PostgreSQL") {
		t.Errorf("copy into SQLite = %v", err)
	}
	if _, err := dst.CopyTo(ctx, openPostgres(t)); err == nil || !strings.Contains(err.Error(), "must be a SQLite") {
		t.Errorf("copy from PostgreSQL = %v", err)
	}
}

// TestCopyToFailureLeavesDestinationEmpty copies a row PostgreSQL refuses
// (SQLite keeps a text in an integer column): nothing is copied.
func TestCopyToFailureLeavesDestinationEmpty(t *testing.T) {
	if testPostgres {
		t.Skip("runs once, in the SQLite pass")
	}
	ctx := context.Background()
	src := openSQLite(t)
	fillForCopy(t, src)
	if _, err := src.db.Exec(`INSERT INTO training_runs (started_at, images, status) VALUES ('x', 'many', 'done')`); err != nil {
		t.Fatal(err)
	}
	dst := openPostgres(t)
	if _, err := src.CopyTo(ctx, dst); err == nil || !strings.Contains(err.Error(), "copy table training_runs") {
		t.Fatalf("copy of a bad row = %v, want an error naming training_runs", err)
	}
	for _, table := range []string{"instances", "files", "models", "secrets"} {
		if n := tableCount(t, dst, table); n != 0 {
			t.Errorf("table %s holds %d rows after the failed copy", table, n)
		}
	}
}
