package store

import (
	"context"
	"errors"
	"fmt"
	"syscall"

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
	return false
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
