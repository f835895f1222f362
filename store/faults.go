package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// SQLite primary result codes this package tells apart (sqlite.org/rescode.html).
const (
	sqliteBusy     = 5
	sqliteLocked   = 6
	sqliteNoMem    = 7
	sqliteReadOnly = 8
	sqliteIOErr    = 10
	sqliteCorrupt  = 11
	sqliteFull     = 13
	sqliteCantOpen = 14
	sqliteNotADB   = 26
)

// ErrDamaged means the database file is damaged or is not a SQLite
// database: it must be restored from a backup or rebuilt, not written to.
var ErrDamaged = errors.New("store: database is damaged")

func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff, true
	}
	return 0, false
}

// Unavailable reports whether err is a failure on the database's side that
// says nothing about the data being written: the disk under it is full or
// read-only, an I/O error, or another writer holding it too long. The work
// that met it should wait and be tried again; it is not the input's fault.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if code, ok := sqliteCode(err); ok {
		switch code {
		case sqliteBusy, sqliteLocked, sqliteNoMem, sqliteReadOnly, sqliteIOErr, sqliteFull, sqliteCantOpen:
			return true
		}
	}
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return pgUnavailable(err)
}

// pgUnavailable says whether err is a PostgreSQL server that cannot take
// the work now: unreachable, restarting, out of disk, memory or
// connections, read-only (a standby after a failover), or a transaction
// that lost a conflict and may simply be run again.
func pgUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources: disk full, out of memory, too many connections
			strings.HasPrefix(pe.Code, "57P"),      // the server shutting down or starting
			pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock
			pe.Code == "55P03", // lock not available
			pe.Code == "25006", // read-only transaction
			pe.Code == "58030": // I/O error
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		pgconn.SafeToRetry(err)
}

// damaged reports whether err says the database file itself is corrupt.
func damaged(err error) bool {
	code, ok := sqliteCode(err)
	return ok && (code == sqliteCorrupt || code == sqliteNotADB)
}

// Check runs SQLite's quick integrity check. A damaged database gives an
// error wrapping ErrDamaged with what the check found.
func (db *DB) Check(ctx context.Context) error {
	if db.pg {
		return nil // the server checks its own pages
	}
	rows, err := db.db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		if damaged(err) {
			return fmt.Errorf("%w: %s: %v", ErrDamaged, db.path, err)
		}
		return fmt.Errorf("store: check %s: %w", db.path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("store: check %s: %w", db.path, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		if damaged(err) {
			return fmt.Errorf("%w: %s: %v", ErrDamaged, db.path, err)
		}
		return fmt.Errorf("store: check %s: %w", db.path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s: %v", ErrDamaged, db.path, problems)
	}
	return nil
}
