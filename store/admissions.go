package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

// Admission states.
const (
	AdmissionAdmitted = "admitted"
	AdmissionUndone   = "undone"
)

// GateCheck is one case's gate values in one admission cycle.
type GateCheck struct {
	InstanceID   string
	DistanceZ    float64
	UncertaintyZ *float64
	// HeadLogit is the head gate's value, nil when it was not applied.
	HeadLogit *float64
	Pass      bool
}

// Admission is a case admitted to the normal set without a label.
type Admission struct {
	InstanceID   string
	Cycle        int64
	ModelVersion string
	DistanceZ    float64
	UncertaintyZ *float64
	HeadLogit    *float64
	State        string
	AdmittedAt   time.Time
	UndoneAt     time.Time
	UndoReason   string
}

// GateStreaks returns, per case, how many admission cycles in a row it
// has passed the gates, up to the last cycle.
func (db *DB) GateStreaks(ctx context.Context) (map[string]int, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT instance_id, streak FROM gate_streaks`)
	if err != nil {
		return nil, fmt.Errorf("store: gate streaks: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("store: gate streaks: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// RecordAdmissionCycle stores one admission cycle in one transaction: every
// gate check, the new streaks (replacing the old: a case that did not pass
// this cycle loses its streak) and the admissions.
func (db *DB) RecordAdmissionCycle(ctx context.Context, cycle int64, modelVersion string, checks []GateCheck,
	streaks map[string]int, admit []GateCheck) error {
	err := db.tx(ctx, func(tx *Tx) error {
		now := db.now()
		for _, c := range checks {
			if _, err := tx.ExecContext(ctx, `INSERT INTO gate_checks (cycle, instance_id, model_version, distance_z,
				uncertainty_z, head_logit, pass, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				cycle, c.InstanceID, modelVersion, c.DistanceZ, c.UncertaintyZ, c.HeadLogit, c.Pass, now); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM gate_streaks`); err != nil {
			return err
		}
		for id, n := range streaks {
			if _, err := tx.ExecContext(ctx, `INSERT INTO gate_streaks (instance_id, streak, last_cycle) VALUES (?, ?, ?)`,
				id, n, cycle); err != nil {
				return err
			}
		}
		for _, a := range admit {
			if _, err := tx.ExecContext(ctx, `INSERT INTO admissions (instance_id, cycle, model_version, distance_z,
				uncertainty_z, head_logit, state, admitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id) DO NOTHING`,
				a.InstanceID, cycle, modelVersion, a.DistanceZ, a.UncertaintyZ, a.HeadLogit, AdmissionAdmitted, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: admission cycle %d: %w", cycle, err)
	}
	return nil
}

// AdmittedAfterCycle counts the standing admissions made by cycles after
// the given one (0: all of them).
func (db *DB) AdmittedAfterCycle(ctx context.Context, cycle int64) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM admissions WHERE state = ? AND cycle > ?`,
		AdmissionAdmitted, cycle).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: admissions after cycle %d: %w", cycle, err)
	}
	return n, nil
}

// Admissions returns the admissions in the given state (all when empty),
// oldest first.
func (db *DB) Admissions(ctx context.Context, state string) ([]Admission, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT instance_id, cycle, model_version, distance_z, uncertainty_z, head_logit,
		state, admitted_at, undone_at, undo_reason FROM admissions WHERE ? = '' OR state = ? ORDER BY cycle, instance_id`,
		state, state)
	if err != nil {
		return nil, fmt.Errorf("store: admissions: %w", err)
	}
	defer rows.Close()
	var out []Admission
	for rows.Next() {
		var a Admission
		var u, h sql.NullFloat64
		var at, undone string
		if err := rows.Scan(&a.InstanceID, &a.Cycle, &a.ModelVersion, &a.DistanceZ, &u, &h, &a.State, &at, &undone, &a.UndoReason); err != nil {
			return nil, fmt.Errorf("store: admissions: %w", err)
		}
		a.UncertaintyZ, a.HeadLogit = nullable(u), nullable(h)
		a.AdmittedAt, a.UndoneAt = parseTime(at), parseTime(undone)
		out = append(out, a)
	}
	return out, rows.Err()
}

// UndoAdmission takes an admitted case out of the normal set, keeping the
// record with the reason; it reports whether there was an admission to
// undo.
func (db *DB) UndoAdmission(ctx context.Context, instanceID, reason string) (bool, error) {
	var undone bool
	err := db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE admissions SET state = ?, undone_at = ?, undo_reason = ?
			WHERE instance_id = ? AND state = ?`, AdmissionUndone, db.now(), reason, instanceID, AdmissionAdmitted)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		undone = n > 0
		// A case labelled abnormal must not creep back in either.
		_, err = tx.ExecContext(ctx, `DELETE FROM gate_streaks WHERE instance_id = ?`, instanceID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: undo admission %s: %w", instanceID, err)
	}
	return undone, nil
}

// Cycle is one admission or retraining cycle.
type Cycle struct {
	ID               int64
	Kind             string
	StartedAt        time.Time
	FinishedAt       time.Time
	LabelsAtStart    int
	ModelVersion     string
	CandidateVersion string
	Promoted         bool
	Status           string
	Reason           string
}

// Cycle kinds.
const (
	CycleAdmission = "admission"
	CycleRetrain   = "retrain"
)

// StartCycle records that a cycle began, with the number of labels stored
// then, and returns its id.
func (db *DB) StartCycle(ctx context.Context, kind string, labels int) (int64, error) {
	var id int64
	err := db.tx(ctx, func(tx *Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO learning_cycles (kind, started_at, labels_at_start) VALUES (?, ?, ?) RETURNING id`,
			kind, db.now(), labels).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("store: start %s cycle: %w", kind, err)
	}
	return id, nil
}

// FinishCycle records how a cycle ended.
func (db *DB) FinishCycle(ctx context.Context, c Cycle, metricsJSON string) error {
	if metricsJSON == "" {
		metricsJSON = "{}"
	}
	err := db.tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE learning_cycles SET finished_at = ?, model_version = ?,
			candidate_version = ?, promoted = ?, status = ?, reason = ?, metrics_json = ? WHERE id = ?`,
			db.now(), c.ModelVersion, c.CandidateVersion, c.Promoted, c.Status, c.Reason, metricsJSON, c.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: finish cycle %d: %w", c.ID, err)
	}
	return nil
}

// LastCycle returns the most recent finished cycle of a kind that ended
// with status "done", and whether there is one.
func (db *DB) LastCycle(ctx context.Context, kind string) (Cycle, bool, error) {
	var c Cycle
	var started, finished string
	err := db.db.QueryRowContext(ctx, `SELECT id, kind, started_at, finished_at, labels_at_start, model_version,
		candidate_version, promoted, status, reason FROM learning_cycles WHERE kind = ? AND status = 'done'
		ORDER BY id DESC LIMIT 1`, kind).Scan(&c.ID, &c.Kind, &started, &finished, &c.LabelsAtStart,
		&c.ModelVersion, &c.CandidateVersion, &c.Promoted, &c.Status, &c.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Cycle{}, false, nil
	}
	if err != nil {
		return Cycle{}, false, fmt.Errorf("store: last %s cycle: %w", kind, err)
	}
	c.StartedAt, c.FinishedAt = parseTime(started), parseTime(finished)
	return c, true, nil
}

// ModelVersion is a recorded model with whether it is active and why.
type ModelVersion struct {
	Info   sentinel.ModelInfo
	Active bool
	Note   string
}

// ModelVersions lists every model version, oldest first, with its state.
func (db *DB) ModelVersions(ctx context.Context) ([]ModelVersion, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT info_json, active, note FROM models ORDER BY created_at, version`)
	if err != nil {
		return nil, fmt.Errorf("store: model versions: %w", err)
	}
	defer rows.Close()
	var out []ModelVersion
	for rows.Next() {
		var v ModelVersion
		var info string
		if err := rows.Scan(&info, &v.Active, &v.Note); err != nil {
			return nil, fmt.Errorf("store: model versions: %w", err)
		}
		if err := json.Unmarshal([]byte(info), &v.Info); err != nil {
			return nil, fmt.Errorf("store: model versions: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// SetModelNote records why a model version is or is not active.
func (db *DB) SetModelNote(ctx context.Context, version, note string) error {
	err := db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE models SET note = ? WHERE version = ?`, note, version)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrUnknownModel
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: note model %s: %w", version, err)
	}
	return nil
}

// ActivateModel makes a recorded version the only active one, with a note
// (for example "rolled back"). It returns an error wrapping
// ErrUnknownModel for a version never recorded.
func (db *DB) ActivateModel(ctx context.Context, version, note string) error {
	err := db.tx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM models WHERE version = ?`, version).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrUnknownModel
		}
		if _, err := tx.ExecContext(ctx, `UPDATE models SET active = 0 WHERE active = 1`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE models SET active = 1, note = ? WHERE version = ?`, note, version)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: activate model %s: %w", version, err)
	}
	return nil
}
