package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Queue states.
const (
	QueuePending    = "pending"
	QueueProcessing = "processing"
)

// QueueItem is a file waiting to be processed.
type QueueItem struct {
	Path      string
	Size      int64
	ModTimeNS int64
	Attempts  int
	LastError string
	FoundAt   time.Time
}

// Enqueue adds files found stable to the work queue. A file already queued
// with the same size and mtime is left as it is; one that changed since is
// reset so it is taken afresh. Files being processed are not touched.
func (db *DB) Enqueue(ctx context.Context, items []QueueItem) error {
	if len(items) == 0 {
		return nil
	}
	now := db.now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO queue (path, size, mtime_ns, state, next_attempt_at,
			found_at, enqueued_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)
			ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
			attempts = 0, last_error = '', next_attempt_at = excluded.next_attempt_at
			WHERE queue.state = 'pending' AND (queue.size != excluded.size OR queue.mtime_ns != excluded.mtime_ns)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, it := range items {
			if _, err := stmt.ExecContext(ctx, it.Path, it.Size, it.ModTimeNS, now, formatTime(it.FoundAt), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	return nil
}

// ClaimQueued marks up to n pending files whose next attempt is due as being
// processed, oldest first, and returns them.
func (db *DB) ClaimQueued(ctx context.Context, n int) ([]QueueItem, error) {
	var out []QueueItem
	now := db.now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT path, size, mtime_ns, attempts, last_error, found_at FROM queue
			WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY enqueued_at, path LIMIT ?`, now, n)
		if err != nil {
			return err
		}
		for rows.Next() {
			var it QueueItem
			var found string
			if err := rows.Scan(&it.Path, &it.Size, &it.ModTimeNS, &it.Attempts, &it.LastError, &found); err != nil {
				rows.Close()
				return err
			}
			it.FoundAt = parseTime(found)
			out = append(out, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, it := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE queue SET state = 'processing' WHERE path = ?`, it.Path); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim queued: %w", err)
	}
	return out, nil
}

// RequeueProcessing returns files left "processing" by a crash to the
// pending state, and says how many there were.
func (db *DB) RequeueProcessing(ctx context.Context) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE queue SET state = 'pending' WHERE state = 'processing'`)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: requeue: %w", err)
	}
	return int(n), nil
}

// RetryLater puts a file that failed for a passing reason back in the queue,
// due after delay, and returns how many attempts it has had.
func (db *DB) RetryLater(ctx context.Context, path, reason string, delay time.Duration) (int, error) {
	var attempts int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE queue SET state = 'pending', attempts = attempts + 1,
			last_error = ?, next_attempt_at = ? WHERE path = ?`,
			reason, formatTime(db.Now().Add(delay)), path); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT attempts FROM queue WHERE path = ?`, path).Scan(&attempts)
		if err == sql.ErrNoRows {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: retry %s: %w", path, err)
	}
	return attempts, nil
}

// Dequeue removes a file from the queue without recording an outcome, for
// a file that vanished before it could be read.
func (db *DB) Dequeue(ctx context.Context, path string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM queue WHERE path = ?`, path)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: dequeue %s: %w", path, err)
	}
	return nil
}

// QueueDepth returns how many files are pending and being processed.
func (db *DB) QueueDepth(ctx context.Context) (pending, processing int, err error) {
	m := map[string]int{}
	if err := groupCount(ctx, db.db, `SELECT state, COUNT(*) FROM queue GROUP BY state`, m); err != nil {
		return 0, 0, fmt.Errorf("store: queue depth: %w", err)
	}
	return m[QueuePending], m[QueueProcessing], nil
}
