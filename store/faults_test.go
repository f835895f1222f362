package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A file recorded as done keeps that record: a second look at the same
// bytes (a second process, an ingest of the live inbox) must not rewrite
// it as a duplicate of itself.
func TestRecordFileNeverDowngradesDone(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	r := result("1.1", "aa", "/in/a")
	if err := db.RecordResult(ctx, r); err != nil {
		t.Fatal(err)
	}
	again := r.File
	again.Status, again.InstanceID, again.SHA256 = FileDuplicate, "1.1", "aa"
	if err := db.RecordFile(ctx, again); err != nil {
		t.Fatal(err)
	}
	files, err := db.Files(ctx, "")
	if err != nil || len(files) != 1 || files[0].Status != FileDone {
		t.Fatalf("files after a second look = %+v, %v; want one done", files, err)
	}
	// A failed record may still be replaced (the same bytes, decoded once
	// a passing problem is gone, are recorded as they are).
	bad := File{Path: "/in/b", Size: 1, ModTimeNS: 1, Status: FileFailed, Error: "x"}
	db.RecordFile(ctx, bad)
	bad.Status, bad.Error = FileConflict, "y"
	bad.InstanceID = "1.1"
	if err := db.RecordFile(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if fs, _ := db.Files(ctx, FileConflict); len(fs) != 1 {
		t.Fatalf("a failed record was not replaced: %+v", fs)
	}
}

// The database is its owner's alone, whatever mode it had.
func TestDatabaseMode(t *testing.T) {
	sqliteOnly(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	db := NewDB(p)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Chmod(p, 0o644)
	db = NewDB(p)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.RecordFile(context.Background(), File{Path: "/x", Status: FileFailed}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{p, p + "-wal"} {
		fi, err := os.Stat(q)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != DatabaseMode {
			t.Errorf("%s has mode %v, want %v", filepath.Base(q), fi.Mode().Perm(), os.FileMode(DatabaseMode))
		}
	}
}

// A damaged database is found by Open or by Check, and says so with
// ErrDamaged.
func TestDamagedDatabase(t *testing.T) {
	sqliteOnly(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	db := NewDB(p)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		db.RecordFile(context.Background(), File{Path: filepath.Join("/in", string(rune('a'+i%26)), string(rune('A'+i/26))), Size: int64(i), Status: FileFailed, Error: "some error text to fill pages"})
	}
	if err := db.Check(context.Background()); err != nil {
		t.Fatalf("check of a sound database: %v", err)
	}
	db.Close()
	os.Remove(p + "-wal")
	os.Remove(p + "-shm")
	b, err := os.ReadFile(p)
	if err != nil || len(b) < 8192 {
		t.Fatalf("database is %d bytes, %v", len(b), err)
	}
	// Garbage over every page but the first: the header still says
	// SQLite, the tables do not hold.
	for i := 4096; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	os.WriteFile(p, b, 0o600)
	db = NewDB(p)
	err = db.Open()
	if err == nil {
		err = db.Check(context.Background())
		db.Close()
	}
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("damaged database: %v, want ErrDamaged", err)
	}
	// Not a database at all.
	os.WriteFile(p, []byte("this is not a database, it is a text file long enough to have a header......"), 0o600)
	db = NewDB(p)
	err = db.Open()
	if err == nil {
		err = db.Check(context.Background())
		db.Close()
	}
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("text file as database: %v, want ErrDamaged", err)
	}
}
