package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
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
// reset so it is taken afresh. Files being processed are not touched, nor
// files already recorded with the same size and mtime.
func (db *DB) Enqueue(ctx context.Context, items []QueueItem) error {
	if len(items) == 0 {
		return nil
	}
	now := db.now()
	err := db.tx(ctx, func(tx *Tx) error {
		// A file recorded meanwhile (its outcome settled between the
		// caller's look and this write) is not queued again: the check
		// and the insert are one statement in one transaction.
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO queue (path, size, mtime_ns, state, next_attempt_at,
			found_at, enqueued_at) SELECT ?1, ?2, ?3, 'pending', ?4, ?5, ?6
			WHERE NOT EXISTS (SELECT 1 FROM files WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3)
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
// processed, oldest first, and returns them. Each claim counts an attempt
// before any work is done (Attempts in the returned items includes it), so
// that a file which takes the whole process down is still given up on after
// the configured number of tries; RetryLater can refund it when the failure
// was Sentinel's own.
//
// The claim is this agent's (db.Agent) until its lease runs out (see
// RenewClaims). On PostgreSQL several agents claim from one queue at once:
// each skips the rows another is claiming.
func (db *DB) ClaimQueued(ctx context.Context, n int) ([]QueueItem, error) {
	if db.pg {
		return db.claimSkipLocked(ctx, n)
	}
	var out []QueueItem
	now := db.now()
	lease := formatTime(db.Now().Add(db.ClaimLease))
	err := db.tx(ctx, func(tx *Tx) error {
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
			it.Attempts++
			out = append(out, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, it := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE queue SET state = 'processing', attempts = attempts + 1,
				claimed_by = ?, lease_until = ? WHERE path = ?`, db.Agent, lease, it.Path); err != nil {
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

// ClaimPaths claims the named files, as ClaimQueued does, where they are
// pending and due; the others are left as they are.
func (db *DB) ClaimPaths(ctx context.Context, paths []string) ([]QueueItem, error) {
	var out []QueueItem
	now := db.now()
	lease := formatTime(db.Now().Add(db.ClaimLease))
	err := db.tx(ctx, func(tx *Tx) error {
		for _, p := range paths {
			var it QueueItem
			var found string
			err := tx.QueryRowContext(ctx, `SELECT path, size, mtime_ns, attempts, last_error, found_at FROM queue
				WHERE path = ? AND state = 'pending' AND next_attempt_at <= ?`, p, now).
				Scan(&it.Path, &it.Size, &it.ModTimeNS, &it.Attempts, &it.LastError, &found)
			if err == sql.ErrNoRows {
				continue
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE queue SET state = 'processing', attempts = attempts + 1,
				claimed_by = ?, lease_until = ? WHERE path = ?`, db.Agent, lease, p); err != nil {
				return err
			}
			it.FoundAt = parseTime(found)
			it.Attempts++
			out = append(out, it)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim: %w", err)
	}
	return out, nil
}

// RequeueProcessing returns files left "processing" to the pending state,
// except those named in busy (still being worked on by this process), and
// says which they were. At start busy is empty: whatever a crash left is
// taken up again. While the agent runs it reclaims rows whose outcome
// could not be recorded (a full disk under the database), without a
// restart. Where agents share the database, only this agent's claims are
// its to return, and another agent's once its lease has run out (that
// agent died or lost the database).
func (db *DB) RequeueProcessing(ctx context.Context, busy map[string]bool) ([]string, error) {
	var out []string
	now := db.now()
	err := db.tx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT path, claimed_by, lease_until FROM queue WHERE state = 'processing'`)
		if err != nil {
			return err
		}
		var stale []string
		for rows.Next() {
			var p, by, until string
			if err := rows.Scan(&p, &by, &until); err != nil {
				rows.Close()
				return err
			}
			// One SQLite file has one agent: every claim is its own.
			mine := !db.pg || by == db.Agent
			if (mine && !busy[p]) || (!mine && until < now) {
				stale = append(stale, p)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, p := range stale {
			if _, err := tx.ExecContext(ctx, `UPDATE queue SET state = 'pending', claimed_by = '', lease_until = ''
				WHERE path = ? AND state = 'processing'`, p); err != nil {
				return err
			}
		}
		out = stale
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: requeue: %w", err)
	}
	return out, nil
}

// RetryLater puts a file that failed for a passing reason back in the queue,
// due after delay, and returns how many attempts it has had. The attempt
// ClaimQueued counted stands when counted is set; otherwise (the failure
// was Sentinel's own, such as a full disk) it is given back.
func (db *DB) RetryLater(ctx context.Context, path, reason string, delay time.Duration, counted bool) (int, error) {
	var attempts int
	refund := 0
	if !counted {
		refund = 1
	}
	err := db.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE queue SET state = 'pending', attempts = CASE WHEN attempts > ?1 THEN attempts - ?1 ELSE 0 END,
			last_error = ?2, next_attempt_at = ?3 WHERE path = ?4`,
			refund, reason, formatTime(db.Now().Add(delay)), path); err != nil {
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
	err := db.tx(ctx, func(tx *Tx) error {
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

// claimSkipLocked is ClaimQueued on PostgreSQL: one statement that takes
// the oldest due rows no other agent is claiming at the same moment.
func (db *DB) claimSkipLocked(ctx context.Context, n int) ([]QueueItem, error) {
	now := db.Now()
	rows, err := db.db.QueryContext(ctx, `UPDATE queue SET state = 'processing', attempts = attempts + 1,
		claimed_by = ?1, lease_until = ?2
		WHERE path IN (SELECT path FROM queue WHERE state = 'pending' AND next_attempt_at <= ?3
			ORDER BY enqueued_at, path LIMIT ?4 FOR UPDATE SKIP LOCKED)
		RETURNING path, size, mtime_ns, attempts, last_error, found_at, enqueued_at`,
		db.Agent, formatTime(now.Add(db.ClaimLease)), formatTime(now), n)
	if err != nil {
		return nil, fmt.Errorf("store: claim queued: %w", err)
	}
	defer rows.Close()
	type claimed struct {
		it       QueueItem
		enqueued string
	}
	var got []claimed
	for rows.Next() {
		var c claimed
		var found string
		if err := rows.Scan(&c.it.Path, &c.it.Size, &c.it.ModTimeNS, &c.it.Attempts, &c.it.LastError, &found, &c.enqueued); err != nil {
			return nil, fmt.Errorf("store: claim queued: %w", err)
		}
		c.it.FoundAt = parseTime(found)
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim queued: %w", err)
	}
	sort.Slice(got, func(i, j int) bool {
		if got[i].enqueued != got[j].enqueued {
			return got[i].enqueued < got[j].enqueued
		}
		return got[i].it.Path < got[j].it.Path
	})
	out := make([]QueueItem, len(got))
	for i, c := range got {
		out[i] = c.it
	}
	return out, nil
}

// RenewClaims extends the leases of this agent's claims on files it is
// still processing, and says how many it holds.
func (db *DB) RenewClaims(ctx context.Context) (int, error) {
	res, err := db.db.ExecContext(ctx, `UPDATE queue SET lease_until = ? WHERE claimed_by = ? AND state = 'processing'`,
		formatTime(db.Now().Add(db.ClaimLease)), db.Agent)
	if err != nil {
		return 0, fmt.Errorf("store: renew claims: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
