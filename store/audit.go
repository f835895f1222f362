package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

// Audit actions.
const (
	AuditLabel     = "label"
	AuditUndoLabel = "undo-label"
	AuditRetrain   = "retrain"
	AuditRollback  = "rollback"
	AuditSignIn    = "sign-in"
)

// AuditEntry is one recorded action: who, what, when, from where.
type AuditEntry struct {
	At     time.Time
	Reader string
	Action string
	// Subject is what the action was on: an instance, a model version.
	Subject string
	Detail  string
	// Remote is the address the request came from.
	Remote string
}

// Audit records an action; its time is the database's clock.
func (db *DB) Audit(ctx context.Context, e AuditEntry) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO audit (at, reader, action, subject, detail, remote) VALUES (?, ?, ?, ?, ?, ?)`,
		db.now(), e.Reader, e.Action, e.Subject, e.Detail, e.Remote)
	if err != nil {
		return fmt.Errorf("store: audit %s %s: %w", e.Action, e.Subject, err)
	}
	return nil
}

// AuditLog returns the most recent entries, newest first, at most limit.
func (db *DB) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT at, reader, action, subject, detail, remote FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at string
		if err := rows.Scan(&at, &e.Reader, &e.Action, &e.Subject, &e.Detail, &e.Remote); err != nil {
			return nil, fmt.Errorf("store: audit log: %w", err)
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// LabelAudited stores a reader's label and its audit entry in one
// transaction, and reports whether the label was new (see AddLabel).
func (db *DB) LabelAudited(ctx context.Context, l sentinel.Label, remote string) (bool, error) {
	var added bool
	err := db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO labels (instance_id, label, finding, reader, time, source)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id, reader, time) DO NOTHING`,
			l.InstanceID, l.Value, l.Finding, l.Reader, formatTime(l.Time), l.Source)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if added = n > 0; !added {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE queries SET state = ?, answered_at = ? WHERE instance_id = ? AND state = ?`,
			sentinel.QueryAnswered, db.now(), l.InstanceID, sentinel.QueryOpen); err != nil {
			return err
		}
		detail := l.Value
		if l.Finding != "" {
			detail += ": " + l.Finding
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit (at, reader, action, subject, detail, remote) VALUES (?, ?, ?, ?, ?, ?)`,
			db.now(), l.Reader, AuditLabel, l.InstanceID, detail, remote)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: label %s: %w", l.InstanceID, err)
	}
	return added, nil
}

// ErrTooLate means a label can no longer be undone: a model has been
// trained since it was given.
var ErrTooLate = errors.New("store: a retraining has used it since")

// UndoLabel removes a reader's latest label of an instance given since the
// last model was made, reopens its query when no other label remains, and
// audits it. It returns an error wrapping ErrTooLate when the newest model
// was trained after the label was given, and one wrapping sql.ErrNoRows
// when the reader has no label of the instance.
func (db *DB) UndoLabel(ctx context.Context, instanceID, reader, remote string) (sentinel.Label, error) {
	var l sentinel.Label
	err := db.tx(ctx, func(tx *Tx) error {
		var id int64
		var t string
		err := tx.QueryRowContext(ctx, `SELECT id, label, finding, time FROM labels WHERE instance_id = ? AND reader = ?
			ORDER BY time DESC, id DESC LIMIT 1`, instanceID, reader).Scan(&id, &l.Value, &l.Finding, &t)
		if err != nil {
			return err
		}
		l.InstanceID, l.Reader, l.Time = instanceID, reader, parseTime(t)
		var newest sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT MAX(created_at) FROM models`).Scan(&newest); err != nil {
			return err
		}
		if newest.Valid && !parseTime(newest.String).Before(l.Time) {
			return ErrTooLate
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM labels WHERE id = ?`, id); err != nil {
			return err
		}
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM labels WHERE instance_id = ?`, instanceID).Scan(&others); err != nil {
			return err
		}
		if others == 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE queries SET state = ?, answered_at = '' WHERE instance_id = ? AND state = ?`,
				sentinel.QueryOpen, instanceID, sentinel.QueryAnswered); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit (at, reader, action, subject, detail, remote) VALUES (?, ?, ?, ?, ?, ?)`,
			db.now(), reader, AuditUndoLabel, instanceID, l.Value, remote)
		return err
	})
	if err != nil {
		return l, fmt.Errorf("store: undo label %s: %w", instanceID, err)
	}
	return l, nil
}
