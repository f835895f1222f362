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

// Errors of the learning tables.
var (
	// ErrRoleDecided is returned by RecordLabelRoles for a case whose role
	// (holdout or training) was decided before: it never changes.
	ErrRoleDecided = errors.New("role already decided")
	// ErrUnknownModel means no model version has that name.
	ErrUnknownModel = errors.New("store: unknown model version")
)

// SeedNormal is one of the verified normals a workspace started from.
type SeedNormal struct {
	InstanceID string
	Path       string
	// PatientKey is the patient's key (sentinel.Instance.PatientKey).
	PatientKey string
}

// AddSeedNormals records seed normals; ones already recorded are kept as
// they are.
func (db *DB) AddSeedNormals(ctx context.Context, seeds []SeedNormal) error {
	err := db.tx(ctx, func(tx *Tx) error {
		for _, s := range seeds {
			if _, err := tx.ExecContext(ctx, `INSERT INTO seed_normals (instance_id, path, patient_key, added_at, seq)
				VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM seed_normals))
				ON CONFLICT (instance_id) DO NOTHING`, s.InstanceID, s.Path, s.PatientKey, db.now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: add seed normals: %w", err)
	}
	return nil
}

// SeedNormals returns the recorded seed normals in the order recorded.
func (db *DB) SeedNormals(ctx context.Context) ([]SeedNormal, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT instance_id, path, patient_key FROM seed_normals ORDER BY seq, instance_id`)
	if err != nil {
		return nil, fmt.Errorf("store: seed normals: %w", err)
	}
	defer rows.Close()
	var out []SeedNormal
	for rows.Next() {
		var s SeedNormal
		if err := rows.Scan(&s.InstanceID, &s.Path, &s.PatientKey); err != nil {
			return nil, fmt.Errorf("store: seed normals: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Holdout returns the instance ids of the frozen holdout, sorted: the
// labelled cases whose role was decided as holdout (see RecordLabelRoles).
func (db *DB) Holdout(ctx context.Context) ([]string, error) {
	return db.strings(ctx, "holdout", `SELECT instance_id FROM label_roles WHERE role = 'holdout' ORDER BY instance_id`)
}

// LabelRoles returns every decided role: true for the holdout, false for
// training.
func (db *DB) LabelRoles(ctx context.Context) (map[string]bool, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT instance_id, role FROM label_roles`)
	if err != nil {
		return nil, fmt.Errorf("store: label roles: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id, role string
		if err := rows.Scan(&id, &role); err != nil {
			return nil, fmt.Errorf("store: label roles: %w", err)
		}
		out[id] = role == "holdout"
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: label roles: %w", err)
	}
	return out, nil
}

// RecordLabelRoles records the roles decided for cases not decided
// before, all or none. A role is decided once: recording any case again
// returns ErrRoleDecided and records nothing.
func (db *DB) RecordLabelRoles(ctx context.Context, holdout, train []string) error {
	err := db.tx(ctx, func(tx *Tx) error {
		now := db.now()
		for _, r := range []struct {
			role string
			ids  []string
		}{{"holdout", holdout}, {"train", train}} {
			for _, id := range r.ids {
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM label_roles WHERE instance_id = ?`, id).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					return fmt.Errorf("%s: %w", id, ErrRoleDecided)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO label_roles (instance_id, role, decided_at) VALUES (?, ?, ?)`, id, r.role, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record label roles: %w", err)
	}
	return nil
}

// AllLabels returns every label, by instance, oldest first.
func (db *DB) AllLabels(ctx context.Context) (map[string][]sentinel.Label, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT instance_id, label, finding, reader, time, source
		FROM labels ORDER BY time, id`)
	if err != nil {
		return nil, fmt.Errorf("store: labels: %w", err)
	}
	defer rows.Close()
	out := map[string][]sentinel.Label{}
	for rows.Next() {
		var l sentinel.Label
		var t string
		if err := rows.Scan(&l.InstanceID, &l.Value, &l.Finding, &l.Reader, &t, &l.Source); err != nil {
			return nil, fmt.Errorf("store: labels: %w", err)
		}
		l.Time = parseTime(t)
		out[l.InstanceID] = append(out[l.InstanceID], l)
	}
	return out, rows.Err()
}

// LabelCount returns how many labels are stored.
func (db *DB) LabelCount(ctx context.Context) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM labels`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: label count: %w", err)
	}
	return n, nil
}

// Instance and study keys a label file may use.
const (
	KeySOPInstanceUID   = "sop_instance_uid"
	KeyInstanceID       = "instance_id"
	KeyFile             = "file"
	KeyAccessionNumber  = "accession_number"
	KeyStudyInstanceUID = "study_instance_uid"
)

// FindInstances returns the ids of the instances a label key names: by SOP
// Instance UID, by instance id, or by file (the source path, or its last
// element when value has no folder), where several ids mean the key is
// ambiguous; or every instance of a study, by accession number or Study
// Instance UID.
func (db *DB) FindInstances(ctx context.Context, key, value string) ([]string, error) {
	var q string
	args := []any{value}
	switch key {
	case KeySOPInstanceUID:
		q = `SELECT instance_id FROM instances WHERE sop_instance_uid = ? ORDER BY instance_id`
	case KeyInstanceID:
		q = `SELECT instance_id FROM instances WHERE instance_id = ?`
	case KeyFile:
		// The source path, or a path ending in /value (the LIKE pattern's
		// wildcards in value are escaped).
		q = `SELECT DISTINCT instance_id FROM (
			SELECT instance_id, path FROM instances
			UNION ALL SELECT instance_id, path FROM files WHERE instance_id IS NOT NULL) AS known
			WHERE path = ? OR path LIKE ? ESCAPE '\' ORDER BY instance_id`
		args = append(args, "%/"+escapeLike(value))
	case KeyAccessionNumber:
		q = `SELECT instance_id FROM instances WHERE accession_number = ? ORDER BY instance_id`
	case KeyStudyInstanceUID:
		q = `SELECT instance_id FROM instances WHERE study_instance_uid = ? ORDER BY instance_id`
	default:
		return nil, fmt.Errorf("store: unknown instance key %q", key)
	}
	return db.strings(ctx, "find instance", q, args...)
}

func escapeLike(s string) string {
	var b []byte
	for i := range len(s) {
		if s[i] == '%' || s[i] == '_' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// QueriedIDs returns every instance ever queried, whatever the query's
// state: a case is never queried twice.
func (db *DB) QueriedIDs(ctx context.Context) (map[string]bool, error) {
	ids, err := db.strings(ctx, "queried", `SELECT instance_id FROM queries`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// ExpireQueries marks open queries created before the given time expired
// and returns how many.
func (db *DB) ExpireQueries(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE queries SET state = ? WHERE state = ? AND created_at < ?`,
			sentinel.QueryExpired, sentinel.QueryOpen, formatTime(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: expire queries: %w", err)
	}
	return int(n), nil
}

// WorklistRow is one open query with what a radiologist needs to find the
// case.
type WorklistRow struct {
	QueryID          int64
	InstanceID       string
	SourcePath       string
	SOPInstanceUID   string
	StudyInstanceUID string
	AccessionNumber  string
	Score            float64
	Uncertainty      *float64
	ModelVersion     string
	// Threshold and Decision are the score's, as the model reported it.
	Threshold        float64
	Decision         string
	HeatmapPath      string
	Strategy, Reason string
	CreatedAt        time.Time
}

// Worklist returns the open queries, oldest first, each with its instance,
// its most recent score and heatmap.
func (db *DB) Worklist(ctx context.Context) ([]WorklistRow, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT q.id, q.instance_id, i.path, i.sop_instance_uid,
		i.study_instance_uid, i.accession_number, COALESCE(s.value, 0), s.uncertainty, COALESCE(s.model_version, ''),
		COALESCE(s.threshold, 0), COALESCE(s.decision, ''),
		COALESCE((SELECT heatmap_path FROM reports r WHERE r.instance_id = q.instance_id ORDER BY r.id DESC LIMIT 1), ''),
		q.strategy, q.reason, q.created_at
		FROM queries q JOIN instances i ON i.instance_id = q.instance_id
		LEFT JOIN scores s ON s.id = (SELECT id FROM scores WHERE instance_id = q.instance_id ORDER BY id DESC LIMIT 1)
		WHERE q.state = ? ORDER BY q.id`, sentinel.QueryOpen)
	if err != nil {
		return nil, fmt.Errorf("store: worklist: %w", err)
	}
	defer rows.Close()
	var out []WorklistRow
	for rows.Next() {
		var w WorklistRow
		var u sql.NullFloat64
		var t string
		if err := rows.Scan(&w.QueryID, &w.InstanceID, &w.SourcePath, &w.SOPInstanceUID, &w.StudyInstanceUID,
			&w.AccessionNumber, &w.Score, &u, &w.ModelVersion, &w.Threshold, &w.Decision, &w.HeatmapPath, &w.Strategy, &w.Reason, &t); err != nil {
			return nil, fmt.Errorf("store: worklist: %w", err)
		}
		w.Uncertainty = nullable(u)
		w.CreatedAt = parseTime(t)
		out = append(out, w)
	}
	return out, rows.Err()
}

// ScoredInstance is an instance with its most recent score.
type ScoredInstance struct {
	InstanceID string
	// Path is where the instance's file is now: the archive copy when the
	// agent archived it, else its source path.
	Path         string
	ModelVersion string
	Score        sentinel.Score
}

// ScoredInstances returns every scored instance with its score by the
// given model version when there is one, else its most recent score, with
// the score's components.
func (db *DB) ScoredInstances(ctx context.Context, modelVersion string) ([]ScoredInstance, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT i.instance_id,
		COALESCE((SELECT archive_path FROM files f WHERE f.instance_id = i.instance_id AND f.archive_path != ''
			ORDER BY f.id DESC LIMIT 1), i.path),
		s.model_version, s.value, s.threshold, s.decision, s.uncertainty, COALESCE(s.components, '')
		FROM instances i JOIN scores s ON s.id = COALESCE(
			(SELECT id FROM scores WHERE instance_id = i.instance_id AND model_version = ?),
			(SELECT id FROM scores WHERE instance_id = i.instance_id ORDER BY id DESC LIMIT 1))
		ORDER BY i.instance_id`, modelVersion)
	if err != nil {
		return nil, fmt.Errorf("store: scored instances: %w", err)
	}
	defer rows.Close()
	var out []ScoredInstance
	for rows.Next() {
		var s ScoredInstance
		var u sql.NullFloat64
		var dec, comps string
		if err := rows.Scan(&s.InstanceID, &s.Path, &s.ModelVersion, &s.Score.Value, &s.Score.Threshold, &dec, &u, &comps); err != nil {
			return nil, fmt.Errorf("store: scored instances: %w", err)
		}
		if s.Score.Components, err = components(comps); err != nil {
			return nil, fmt.Errorf("store: scored instances: components of %s: %w", s.InstanceID, err)
		}
		s.Score.Decision = sentinel.Decision(dec)
		s.Score.Uncertainty = nullable(u)
		out = append(out, s)
	}
	return out, rows.Err()
}

// SaveScore records an instance's score by a model version, replacing an
// earlier score by the same version.
func (db *DB) SaveScore(ctx context.Context, instanceID, modelVersion string, s sentinel.Score) error {
	err := db.tx(ctx, func(tx *Tx) error { return upsertScore(ctx, tx, instanceID, modelVersion, s, db.now()) })
	if err != nil {
		return fmt.Errorf("store: save score %s: %w", instanceID, err)
	}
	return nil
}

// upsertScore writes an instance's score by a model version in tx,
// replacing an earlier score by the same version.
func upsertScore(ctx context.Context, tx *Tx, instanceID, modelVersion string, s sentinel.Score, now string) error {
	comps, err := json.Marshal(s.Components)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO scores (instance_id, model_version, value, threshold, decision,
		uncertainty, components, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (instance_id, model_version) DO UPDATE SET value = excluded.value,
		threshold = excluded.threshold, decision = excluded.decision, uncertainty = excluded.uncertainty,
		components = excluded.components, created_at = excluded.created_at`,
		instanceID, modelVersion, s.Value, s.Threshold, string(s.Decision), s.Uncertainty, string(comps), now)
	return err
}

// components decodes a score's stored components ("" or "null": none).
func components(stored string) (map[string]float64, error) {
	if stored == "" || stored == "null" {
		return nil, nil
	}
	var c map[string]float64
	err := json.Unmarshal([]byte(stored), &c)
	return c, err
}

// strings runs a query returning one text column.
func (db *DB) strings(ctx context.Context, what, q string, args ...any) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
