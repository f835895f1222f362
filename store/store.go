// Package store keeps Sentinel's state in SQLite, or in PostgreSQL when
// several agents share it: instances, the files they came from, scores,
// reports, models, training runs, queries and labels. Nothing outside this
// package writes SQL or knows which engine runs. It knows nothing about
// DICOM, models or folders beyond the paths it records.
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
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is Sentinel's database. Create it with NewDB, then Open it.
type DB struct {
	db *conn
	// path is the SQLite file, or the PostgreSQL URL.
	path string
	pg   bool
	// Now returns the current time; tests replace it.
	Now func() time.Time
	// Agent names this agent among those sharing the database: it is
	// recorded with the files it claims and the reports it writes. Set it
	// before Open; it defaults to DefaultAgent().
	Agent string
	// ClaimLease is how long a claimed file stays the claiming agent's
	// without a heartbeat before another agent may take it up.
	ClaimLease time.Duration
}

// NewDB returns a DB for target: a PostgreSQL URL ("postgres://…" or
// "postgresql://…"), or else the path of a SQLite file. It does no I/O.
func NewDB(target string) *DB {
	return &DB{path: target, pg: IsPostgres(target), Now: time.Now, ClaimLease: 2 * time.Minute}
}

// IsPostgres says whether target names a PostgreSQL server.
func IsPostgres(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// Engine says which engine the database runs on: "sqlite" or "postgres".
func (db *DB) Engine() string {
	if db.pg {
		return "postgres"
	}
	return "sqlite"
}

// Where names the database for people and logs: the SQLite file, or the
// PostgreSQL server and database without the password.
func (db *DB) Where() string {
	if !db.pg {
		return db.path
	}
	u, err := url.Parse(db.path)
	if err != nil {
		return "postgres"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// DefaultAgent names an agent by its host and workspace, which two agents
// never share.
func DefaultAgent(workspace string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if abs, err := filepath.Abs(workspace); err == nil {
		workspace = abs
	}
	return host + ":" + workspace
}

// Open opens the database and applies pending migrations. A SQLite file
// gets its pragmas and a narrow mode first.
func (db *DB) Open() error {
	if db.Agent == "" {
		db.Agent = DefaultAgent(filepath.Dir(db.path))
		if db.pg {
			db.Agent = DefaultAgent(".")
		}
	}
	if db.pg {
		return db.openPostgres()
	}
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
	db.db = &conn{raw: sdb}
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

// openPostgres connects to the server and applies pending migrations,
// one agent at a time.
func (db *DB) openPostgres() error {
	sdb, err := sql.Open("pgx", db.path)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", db.Where(), err)
	}
	sdb.SetMaxOpenConns(16)
	sdb.SetMaxIdleConns(8)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return fmt.Errorf("store: connect %s: %w", db.Where(), err)
	}
	db.db = &conn{dialect: dialect{pg: true}, raw: sdb}
	if err := db.migrate(context.Background()); err != nil {
		sdb.Close()
		return fmt.Errorf("store: migrate %s: %w", db.Where(), err)
	}
	return nil
}

func (db *DB) migrate(ctx context.Context) error { return db.migrateThrough(ctx, "") }

// migrateThrough applies the pending migrations named up to last ("" for
// all of them).
func (db *DB) migrateThrough(ctx context.Context, last string) error {
	if err := db.tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`)
		return err
	}); err != nil {
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
	return db.tx(ctx, func(tx *Tx) error {
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
		if db.pg {
			if _, err := tx.raw.ExecContext(ctx, pgMigration(string(body))); err != nil {
				return err
			}
			if err := pgResetIdentities(ctx, tx); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, name, db.now())
		return err
	})
}

// writeLock is the PostgreSQL advisory lock every write transaction takes,
// so that transactions that read and then write run one at a time across
// the agents, as SQLite's immediate transactions do on one machine. Claims
// on the work queue do not take it: they skip rows other agents hold.
const writeLock = 0x53656e74

// tx runs fn in one transaction, committing if it returns nil.
func (db *DB) tx(ctx context.Context, fn func(*Tx) error) error {
	raw, err := db.db.raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	tx := &Tx{dialect: dialect{db.pg}, raw: raw, agent: db.Agent}
	if db.pg {
		if _, err := raw.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
			return errors.Join(err, raw.Rollback())
		}
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, raw.Rollback())
	}
	return raw.Commit()
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
