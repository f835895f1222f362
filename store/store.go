// Package store keeps Sentinel's state in SQLite: instances, the files they
// came from, scores, reports, models, training runs, queries and labels.
// Nothing outside this package writes SQL. It knows nothing about DICOM,
// models or folders beyond the paths it records.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is Sentinel's database. Create it with NewDB, then Open it.
type DB struct {
	db   *sql.DB
	path string
	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// NewDB returns a DB for the SQLite file at path. It does no I/O.
func NewDB(path string) *DB {
	return &DB{path: path, Now: time.Now}
}

// Open opens the database, sets its pragmas and applies pending migrations.
func (db *DB) Open() error {
	// WAL lets readers (status, HTTP) run beside the writer; a 10 s busy
	// timeout rides out a concurrent writer from another process such as
	// `sentinel status` or a second CLI command without failing the agent's
	// write; NORMAL synchronous is durable across process crashes in WAL
	// mode, which is the failure the agent must survive.
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	// The database holds the key that turns Patient IDs into pseudonyms:
	// only its owner may read it. SQLite gives its -wal and -shm files the
	// main file's mode.
	if err := restrictMode(db.path); err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, err)
	}
	sdb, err := sql.Open("sqlite", "file:"+db.path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, err)
	}
	db.db = sdb
	if err := db.migrate(context.Background()); err != nil {
		sdb.Close()
		if damaged(err) {
			return fmt.Errorf("%w: %s: %v", ErrDamaged, db.path, err)
		}
		return fmt.Errorf("store: migrate %s: %w", db.path, err)
	}
	return nil
}

// DatabaseMode is the file mode of the database and its journal files.
const DatabaseMode = 0o600

// restrictMode creates the database file with DatabaseMode if it does not
// exist, and narrows the mode of an existing one and its journal files.
func restrictMode(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, DatabaseMode)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != DatabaseMode {
			if err := os.Chmod(p, DatabaseMode); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	if db.db == nil {
		return nil
	}
	return db.db.Close()
}

func (db *DB) migrate(ctx context.Context) error { return db.migrateThrough(ctx, "") }

// migrateThrough applies the pending migrations named up to last ("" for
// all of them).
func (db *DB) migrateThrough(ctx context.Context, last string) error {
	if _, err := db.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if last != "" && name > last {
			break
		}
		if err := db.applyMigration(ctx, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, name string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, name, db.now())
		return err
	})
}

// tx runs fn in one transaction, committing if it returns nil.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

func (db *DB) now() string { return formatTime(db.Now()) }

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// nullable returns a nullable column's value, nil when it is NULL.
func nullable(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	f := v.Float64
	return &f
}
