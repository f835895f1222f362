package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrLeaseHeld means another holder has the lease.
var ErrLeaseHeld = errors.New("held by another process")

// Lease is a lease taken on a name (see Acquire).
type Lease struct {
	db     *DB
	name   string
	holder string
	ttl    time.Duration
}

// Acquire takes the lease on name for holder, for ttl. If another holder
// has a lease on it that has not run out, it returns an error wrapping
// ErrLeaseHeld that says who holds it and since when. The holder keeps the
// lease by calling Renew before ttl passes, and gives it up with Release;
// a lease whose holder died runs out after ttl.
func (db *DB) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (*Lease, error) {
	now := db.Now()
	err := db.tx(ctx, func(tx *Tx) error {
		var h, since, expires string
		err := tx.QueryRowContext(ctx, `SELECT holder, acquired_at, expires_at FROM leases WHERE name = ?`, name).Scan(&h, &since, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if parseTime(expires).After(now) && h != holder {
				return fmt.Errorf("%w: %s, since %s", ErrLeaseHeld, h, since)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`,
			name, holder, formatTime(now), formatTime(now.Add(ttl)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: lease %s: %w", name, err)
	}
	return &Lease{db: db, name: name, holder: holder, ttl: ttl}, nil
}

// Renew extends the lease by its ttl from now. It fails with ErrLeaseHeld
// if the lease ran out and another holder took it.
func (l *Lease) Renew(ctx context.Context) error {
	res, err := l.db.db.ExecContext(ctx, `UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?`,
		formatTime(l.db.Now().Add(l.ttl)), l.name, l.holder)
	if err != nil {
		return fmt.Errorf("store: renew lease %s: %w", l.name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: renew lease %s: %w", l.name, ErrLeaseHeld)
	}
	return nil
}

// Release gives the lease up, if it is still the holder's.
func (l *Lease) Release(ctx context.Context) error {
	if _, err := l.db.db.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, l.name, l.holder); err != nil {
		return fmt.Errorf("store: release lease %s: %w", l.name, err)
	}
	return nil
}
