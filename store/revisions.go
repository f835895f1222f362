package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

// Reported is an instance whose latest report was written by a model other
// than the one now in use, as the revision of reports sees it.
type Reported struct {
	Instance sentinel.Instance
	// Path is where the instance's file is now: the archive copy when the
	// agent archived it, else its source path.
	Path string
	// Revision, ReportPath, ModelVersion and Decision describe the latest
	// report; Score and Threshold are what it said.
	Revision     int
	ReportPath   string
	ModelVersion string
	Decision     sentinel.Decision
	Score        float64
	Threshold    float64
	ReportedAt   time.Time
	// Current is the instance's stored score by the model in use (the
	// learning loop's rescoring, or an earlier pass), nil when there is
	// none yet.
	Current *sentinel.Score
}

// ReportsToRevise returns the instances first reported at or after since
// whose latest report was written by a model other than modelVersion,
// oldest first.
func (db *DB) ReportsToRevise(ctx context.Context, modelVersion string, since time.Time) ([]Reported, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT i.instance_id, i.sop_instance_uid, i.study_instance_uid,
		i.series_instance_uid, i.sop_class_uid, i.modality, i.accession_number, i.format, i.path, i.sha256,
		i.patient_key, i.placement_json,
		COALESCE((SELECT archive_path FROM files f WHERE f.instance_id = i.instance_id AND f.archive_path != ''
			ORDER BY f.id DESC LIMIT 1), i.path),
		r.revision, r.path, r.model_version, r.decision, COALESCE(old.value, 0), COALESCE(old.threshold, 0), r.created_at,
		cur.value, cur.threshold, cur.decision, cur.uncertainty, cur.components
		FROM instances i JOIN reports r ON r.id = (SELECT MAX(id) FROM reports WHERE instance_id = i.instance_id)
		LEFT JOIN scores old ON old.instance_id = i.instance_id AND old.model_version = r.model_version
		LEFT JOIN scores cur ON cur.instance_id = i.instance_id AND cur.model_version = ?
		WHERE r.model_version != ? AND i.created_at >= ? AND (? = 0 OR r.agent = ? OR r.agent = '')
		ORDER BY i.created_at, i.instance_id`, modelVersion, modelVersion, formatTime(since), db.shared(), db.Agent)
	if err != nil {
		return nil, fmt.Errorf("store: reports to revise: %w", err)
	}
	defer rows.Close()
	var out []Reported
	for rows.Next() {
		var r Reported
		in := &r.Instance
		var format, dec, at, placement string
		var cv, ct, cu sql.NullFloat64
		var cd, cc sql.NullString
		if err := rows.Scan(&in.ID, &in.SOPInstanceUID, &in.StudyInstanceUID, &in.SeriesInstanceUID, &in.SOPClassUID,
			&in.Modality, &in.AccessionNumber, &format, &in.SourcePath, &in.SHA256, &in.PatientKey, &placement, &r.Path,
			&r.Revision, &r.ReportPath, &r.ModelVersion, &dec, &r.Score, &r.Threshold, &at,
			&cv, &ct, &cd, &cu, &cc); err != nil {
			return nil, fmt.Errorf("store: reports to revise: %w", err)
		}
		in.Format = sentinel.Format(format)
		in.Placement = parsePlacement(placement)
		r.Decision = sentinel.Decision(dec)
		r.ReportedAt = parseTime(at)
		if cv.Valid {
			s := &sentinel.Score{Value: cv.Float64, Threshold: ct.Float64, Decision: sentinel.Decision(cd.String),
				Uncertainty: nullable(cu)}
			var err error
			if s.Components, err = components(cc.String); err != nil {
				return nil, fmt.Errorf("store: reports to revise: components of %s: %w", in.ID, err)
			}
			r.Current = s
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Revision is the next revision of an instance's report.
type Revision struct {
	InstanceID string
	// Revision is the new revision's number: one more than the latest.
	Revision     int
	ModelVersion string
	Score        sentinel.Score
	ReportPath   string
	HeatmapPath  string
	// ReportBody is the revision's report as written.
	ReportBody []byte
	// PreviousPath, when set, is where the superseded revision's report is
	// now kept (the first revision moves from <uid>.json, which always
	// holds the latest).
	PreviousPath string
	// Outbox lists the revision's outputs to send, recorded with it.
	Outbox []OutboxItem
}

// ErrRevised is returned by RecordRevision when the instance's latest
// report is no longer the one the revision follows.
var ErrRevised = errors.New("store: report already revised")

// RecordRevision stores the new score and records the revised report, and
// marks the instance's study due for a new study report, in one
// transaction. It fails with ErrRevised unless the latest report is
// revision r.Revision − 1.
func (db *DB) RecordRevision(ctx context.Context, r Revision) error {
	now := db.now()
	err := db.tx(ctx, func(tx *Tx) error {
		var latest int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(revision), 0) FROM reports WHERE instance_id = ?`,
			r.InstanceID).Scan(&latest); err != nil {
			return err
		}
		if latest != r.Revision-1 {
			return ErrRevised
		}
		if err := upsertScore(ctx, tx, r.InstanceID, r.ModelVersion, r.Score, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO reports (instance_id, path, heatmap_path, created_at,
			revision, model_version, decision, agent, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.InstanceID, r.ReportPath, r.HeatmapPath, now, r.Revision, r.ModelVersion, string(r.Score.Decision), tx.agent, string(r.ReportBody)); err != nil {
			return err
		}
		if r.PreviousPath != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE reports SET path = ? WHERE instance_id = ? AND revision = ?`,
				r.PreviousPath, r.InstanceID, r.Revision-1); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE studies SET stale = stale + 1 WHERE study_instance_uid =
			(SELECT study_instance_uid FROM instances WHERE instance_id = ?)`, r.InstanceID); err != nil {
			return err
		}
		_, err := insertOutbox(ctx, tx, r.Outbox, db.Now())
		return err
	})
	if errors.Is(err, ErrRevised) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: revise %s r%d: %w", r.InstanceID, r.Revision, err)
	}
	return nil
}

// RevisedReports returns every report revision after the first, newest
// first, at most limit (0: all), with the decision it replaced.
func (db *DB) RevisedReports(ctx context.Context, limit int) ([]RevisedReport, error) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	rows, err := db.db.QueryContext(ctx, `SELECT r.instance_id, i.sop_instance_uid, i.study_instance_uid,
		i.accession_number, r.revision, r.model_version, r.decision, p.model_version, p.decision, r.path, r.created_at, r.agent
		FROM reports r JOIN instances i ON i.instance_id = r.instance_id
		JOIN reports p ON p.instance_id = r.instance_id AND p.revision = r.revision - 1
		WHERE r.revision > 1 ORDER BY r.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: revised reports: %w", err)
	}
	defer rows.Close()
	var out []RevisedReport
	for rows.Next() {
		var v RevisedReport
		var at string
		if err := rows.Scan(&v.InstanceID, &v.SOPInstanceUID, &v.StudyInstanceUID, &v.AccessionNumber, &v.Revision,
			&v.ModelVersion, &v.Decision, &v.PreviousModelVersion, &v.PreviousDecision, &v.ReportPath, &at, &v.Agent); err != nil {
			return nil, fmt.Errorf("store: revised reports: %w", err)
		}
		v.RevisedAt = parseTime(at)
		out = append(out, v)
	}
	return out, rows.Err()
}

// RevisedReport is one revision of an instance's report, as the API and
// `sentinel status` list them.
type RevisedReport struct {
	InstanceID           string    `json:"instance_id"`
	SOPInstanceUID       string    `json:"sop_instance_uid"`
	StudyInstanceUID     string    `json:"study_instance_uid"`
	AccessionNumber      string    `json:"accession_number"`
	Revision             int       `json:"revision"`
	ModelVersion         string    `json:"model_version"`
	Decision             string    `json:"decision"`
	PreviousModelVersion string    `json:"previous_model_version"`
	PreviousDecision     string    `json:"previous_decision"`
	ReportPath           string    `json:"report"`
	RevisedAt            time.Time `json:"revised_at"`
	// Agent wrote the revision, under its own workspace.
	Agent string `json:"agent"`
}
