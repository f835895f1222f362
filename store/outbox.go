package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Outbox states.
const (
	OutboxPending = "pending"
	OutboxSent    = "sent"
	// OutboxFailed is an object set aside after its last attempt; its
	// LastError says why.
	OutboxFailed = "failed"
)

// OutboxItem is one object to send to one destination.
type OutboxItem struct {
	ID          int64
	Destination string
	// Object identifies what is sent, unique per destination: the SOP
	// Instance UID of a DICOM object, "<instance>#<revision>" of a report.
	Object string
	// Output is the kind of object ("sr", "sc", "report").
	Output           string
	InstanceID       string
	Revision         int
	SOPClassUID      string
	StudyInstanceUID string
	// Path is the file holding the object's bytes.
	Path      string
	State     string
	Attempts  int
	NextTry   time.Time
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// EnqueueOutbox adds the items as pending, due now, in one transaction.
// An item whose destination already has its object (pending, sent or set
// aside) is left as it is, so that queueing the same output again never
// sends it twice. It returns how many were added.
func (db *DB) EnqueueOutbox(ctx context.Context, items []OutboxItem) (int, error) {
	added := 0
	now := db.Now()
	err := db.tx(ctx, func(tx *Tx) error {
		var err error
		added, err = insertOutbox(ctx, tx, items, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: enqueue outbox: %w", err)
	}
	return added, nil
}

const outboxColumns = `id, destination, object, output, instance_id, revision, sop_class_uid, study_instance_uid, path,
	state, attempts, next_try, last_error, created_at, updated_at`

func scanOutbox(rows *sql.Rows) ([]OutboxItem, error) {
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		var next int64
		var created, updated string
		if err := rows.Scan(&it.ID, &it.Destination, &it.Object, &it.Output, &it.InstanceID, &it.Revision,
			&it.SOPClassUID, &it.StudyInstanceUID, &it.Path, &it.State, &it.Attempts, &next, &it.LastError,
			&created, &updated); err != nil {
			return nil, err
		}
		it.NextTry = time.Unix(0, next)
		it.CreatedAt, it.UpdatedAt = parseTime(created), parseTime(updated)
		out = append(out, it)
	}
	return out, rows.Err()
}

// DueOutbox returns up to limit pending items whose next try is due at
// now, the longest waiting first.
func (db *DB) DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox
		WHERE state = 'pending' AND next_try <= ? ORDER BY next_try, id LIMIT ?`, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: due outbox: %w", err)
	}
	defer rows.Close()
	out, err := scanOutbox(rows)
	if err != nil {
		return nil, fmt.Errorf("store: due outbox: %w", err)
	}
	return out, nil
}

// NextOutboxTry returns when the earliest pending item is due; ok is false
// when nothing is pending.
func (db *DB) NextOutboxTry(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	if err := db.db.QueryRowContext(ctx, `SELECT MIN(next_try) FROM outbox WHERE state = 'pending'`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("store: next outbox try: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, next.Int64), true, nil
}

// ErrOutboxSettled is returned when an item is no longer pending.
var ErrOutboxSettled = errors.New("store: outbox item is not pending")

// OutboxSent records that the destination took the item. It returns true
// when no pending or set-aside item needs the item's file any more.
func (db *DB) OutboxSent(ctx context.Context, id int64) (fileFree bool, err error) {
	err = db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = 'sent', attempts = attempts + 1, last_error = '',
			updated_at = ? WHERE id = ? AND state = 'pending'`, db.now(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrOutboxSettled
		}
		var left int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE state != 'sent'
			AND path = (SELECT path FROM outbox WHERE id = ?)`, id).Scan(&left); err != nil {
			return err
		}
		fileFree = left == 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: outbox sent %d: %w", id, err)
	}
	return fileFree, nil
}

// OutboxFailedAttempt records a failed attempt: the item is tried again at
// next, or, when this was attempt maxAttempts, set aside with the reason.
// It returns the item's state after it.
func (db *DB) OutboxFailedAttempt(ctx context.Context, id int64, reason string, next time.Time, maxAttempts int) (string, error) {
	state := OutboxPending
	err := db.tx(ctx, func(tx *Tx) error {
		var attempts int
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT attempts, state FROM outbox WHERE id = ?`, id).Scan(&attempts, &cur)
		if err != nil {
			return err
		}
		if cur != OutboxPending {
			return ErrOutboxSettled
		}
		attempts++
		state = OutboxPending
		if attempts >= maxAttempts {
			state = OutboxFailed
		}
		_, err = tx.ExecContext(ctx, `UPDATE outbox SET state = ?, attempts = ?, next_try = ?, last_error = ?,
			updated_at = ? WHERE id = ?`, state, attempts, next.UnixNano(), reason, db.now(), id)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store: outbox attempt %d: %w", id, err)
	}
	return state, nil
}

// RetryOutbox makes the items set aside for destination ("" for every
// destination) pending again, due now, with their attempts reset. It
// returns how many there were.
func (db *DB) RetryOutbox(ctx context.Context, destination string) (int, error) {
	res, err := db.db.ExecContext(ctx, `UPDATE outbox SET state = 'pending', attempts = 0, next_try = ?, updated_at = ?
		WHERE state = 'failed' AND (? = '' OR destination = ?)`, db.Now().UnixNano(), db.now(), destination, destination)
	if err != nil {
		return 0, fmt.Errorf("store: retry outbox: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// OutboxCount is the outbox of one destination in numbers.
type OutboxCount struct {
	Destination string `json:"destination"`
	Pending     int    `json:"pending"`
	Sent        int    `json:"sent"`
	// Failed counts the items set aside after their last attempt.
	Failed int `json:"failed"`
}

// OutboxCounts returns the counts of every destination with items, by
// name.
func (db *DB) OutboxCounts(ctx context.Context) ([]OutboxCount, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT destination,
		SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END)
		FROM outbox GROUP BY destination ORDER BY destination`)
	if err != nil {
		return nil, fmt.Errorf("store: outbox counts: %w", err)
	}
	defer rows.Close()
	var out []OutboxCount
	for rows.Next() {
		var c OutboxCount
		if err := rows.Scan(&c.Destination, &c.Pending, &c.Sent, &c.Failed); err != nil {
			return nil, fmt.Errorf("store: outbox counts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// OutboxItems returns up to limit items in the given state ("" for any),
// the most recently changed first.
func (db *DB) OutboxItems(ctx context.Context, state string, limit int) ([]OutboxItem, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox
		WHERE (? = '' OR state = ?) ORDER BY updated_at DESC, id DESC LIMIT ?`, state, state, limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox items: %w", err)
	}
	defer rows.Close()
	out, err := scanOutbox(rows)
	if err != nil {
		return nil, fmt.Errorf("store: outbox items: %w", err)
	}
	return out, nil
}

// insertOutbox adds items as pending, due at now, within tx; an item whose
// destination already has its object is left as it is. It returns how many
// were added.
func insertOutbox(ctx context.Context, tx *Tx, items []OutboxItem, now time.Time) (int, error) {
	added := 0
	for _, it := range items {
		res, err := tx.ExecContext(ctx, `INSERT INTO outbox (destination, object, output, instance_id,
			revision, sop_class_uid, study_instance_uid, path, state, attempts, next_try, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT DO NOTHING`,
			it.Destination, it.Object, it.Output, it.InstanceID, it.Revision, it.SOPClassUID, it.StudyInstanceUID,
			it.Path, now.UnixNano(), formatTime(now), formatTime(now))
		if err != nil {
			return added, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			added++
		}
	}
	return added, nil
}

// OutboxPathKnown reports whether an outbox row, in any state, names the
// file at path.
func (db *DB) OutboxPathKnown(ctx context.Context, path string) (bool, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE path = ? LIMIT 1) AS found`, path).Scan(&n); err != nil {
		return false, fmt.Errorf("store: outbox path: %w", err)
	}
	return n > 0, nil
}
