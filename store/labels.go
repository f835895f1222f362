package store

import (
	"context"
	"fmt"

	"github.com/sentinel-pacs/sentinel"
)

// AddLabel stores a reader's label. The same instance, reader and time
// stored twice is kept once, so importing a file again changes nothing; it
// reports whether a new row was added.
func (db *DB) AddLabel(ctx context.Context, l sentinel.Label) (bool, error) {
	var added bool
	err := db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO labels (instance_id, label, finding, reader, time, source)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id, reader, time) DO NOTHING`,
			l.InstanceID, l.Value, l.Finding, l.Reader, formatTime(l.Time), l.Source)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		added = n > 0
		if added {
			_, err = tx.ExecContext(ctx, `UPDATE queries SET state = ?, answered_at = ?
				WHERE instance_id = ? AND state = ?`, sentinel.QueryAnswered, db.now(), l.InstanceID, sentinel.QueryOpen)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: add label %s: %w", l.InstanceID, err)
	}
	return added, nil
}

// Labels returns the labels of one instance, oldest first.
func (db *DB) Labels(ctx context.Context, instanceID string) ([]sentinel.Label, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT instance_id, label, finding, reader, time, source
		FROM labels WHERE instance_id = ? ORDER BY time, id`, instanceID)
	if err != nil {
		return nil, fmt.Errorf("store: labels %s: %w", instanceID, err)
	}
	defer rows.Close()
	var out []sentinel.Label
	for rows.Next() {
		var l sentinel.Label
		var t string
		if err := rows.Scan(&l.InstanceID, &l.Value, &l.Finding, &l.Reader, &t, &l.Source); err != nil {
			return nil, fmt.Errorf("store: labels %s: %w", instanceID, err)
		}
		l.Time = parseTime(t)
		out = append(out, l)
	}
	return out, rows.Err()
}

// AddQuery records a case to ask radiologists about. An instance is never
// queried twice: it reports false when the instance already has a query.
func (db *DB) AddQuery(ctx context.Context, q sentinel.Query) (bool, error) {
	var added bool
	err := db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO queries (instance_id, strategy, reason, drawn_at_random, state, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id) DO NOTHING`,
			q.InstanceID, q.Strategy, q.Reason, q.Random, sentinel.QueryOpen, db.now())
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		added = n > 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: add query %s: %w", q.InstanceID, err)
	}
	return added, nil
}

// Queries returns the queries in the given state (all when state is empty),
// oldest first.
func (db *DB) Queries(ctx context.Context, state string) ([]sentinel.Query, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, instance_id, strategy, reason, drawn_at_random, state, created_at
		FROM queries WHERE ? = '' OR state = ? ORDER BY id`, state, state)
	if err != nil {
		return nil, fmt.Errorf("store: queries: %w", err)
	}
	defer rows.Close()
	var out []sentinel.Query
	for rows.Next() {
		var q sentinel.Query
		var t string
		if err := rows.Scan(&q.ID, &q.InstanceID, &q.Strategy, &q.Reason, &q.Random, &q.State, &t); err != nil {
			return nil, fmt.Errorf("store: queries: %w", err)
		}
		q.CreatedAt = parseTime(t)
		out = append(out, q)
	}
	return out, rows.Err()
}
