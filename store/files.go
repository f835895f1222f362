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

// File statuses: what became of one file the agent took.
const (
	FileDone      = "done"      // decoded, scored and reported
	FileDuplicate = "duplicate" // same instance, same bytes as one already done
	FileConflict  = "conflict"  // same instance id, different bytes: kept and flagged
	FileFailed    = "failed"    // could not be processed; see Error and QuarantinePath
	// FileOutOfScope is a valid file Sentinel does not score (another
	// modality, body part or view, an object without an image, one of its
	// own outputs); Error says why.
	FileOutOfScope = "out_of_scope"
)

// Instance statuses.
const (
	InstanceScored = "scored"
)

// File is one file the agent took and what became of it.
type File struct {
	Path           string
	Size           int64
	ModTimeNS      int64
	SHA256         string
	Status         string
	InstanceID     string
	Error          string
	QuarantinePath string
	SeenAt         time.Time
}

// Result is everything recorded when an instance is scored and reported.
type Result struct {
	Instance     sentinel.Instance
	Score        sentinel.Score
	ModelVersion string
	ReportPath   string
	HeatmapPath  string
	// ReportBody is the report as written, kept so that any agent sharing
	// the database can serve it.
	ReportBody []byte
	File       File
	// Outbox lists the outputs to send for the report, recorded in the
	// same transaction, so that a report is never recorded without them.
	Outbox []OutboxItem
}

// ErrExists is returned by RecordResult when the instance was recorded in
// the meantime; the caller should treat the file as a duplicate or conflict.
var ErrExists = errors.New("store: instance already recorded")

// KnownFile reports whether a file with this path, size and modification
// time has already been handled, whatever the outcome.
func (db *DB) KnownFile(ctx context.Context, path string, size, mtimeNS int64) (bool, error) {
	var n int
	err := db.db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM files WHERE path = ? AND size = ? AND mtime_ns = ?`,
		path, size, mtimeNS).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: known file %s: %w", path, err)
	}
	return n > 0, nil
}

// InstanceSHA returns the content digest recorded for an instance id, and
// whether the instance is known at all.
func (db *DB) InstanceSHA(ctx context.Context, id string) (string, bool, error) {
	var sha string
	err := db.db.QueryRowContext(ctx, `SELECT sha256 FROM instances WHERE instance_id = ?`, id).Scan(&sha)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: instance %s: %w", id, err)
	}
	return sha, true, nil
}

// RecordResult stores a scored instance, its score, its report and the file
// it came from in one transaction. If the instance id is already recorded it
// stores nothing and returns ErrExists.
func (db *DB) RecordResult(ctx context.Context, r Result) error {
	comps, err := json.Marshal(r.Score.Components)
	if err != nil {
		return fmt.Errorf("store: components: %w", err)
	}
	now := db.now()
	in := r.Instance
	err = db.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO instances (instance_id, sop_instance_uid,
			study_instance_uid, series_instance_uid, sop_class_uid, modality, accession_number,
			transfer_syntax_uid, format, rows, columns, frames, photometric, path, sha256, status,
			patient_key, placement_json, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (instance_id) DO NOTHING`,
			in.ID, in.SOPInstanceUID, in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPClassUID,
			in.Modality, in.AccessionNumber, in.TransferSyntaxUID, string(in.Format), in.Rows,
			in.Columns, in.Frames, in.Photometric, in.SourcePath, in.SHA256, InstanceScored,
			in.PatientKey, placementJSON(in.Placement), now, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrExists
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO scores (instance_id, model_version, value,
			threshold, decision, uncertainty, components, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			in.ID, r.ModelVersion, r.Score.Value, r.Score.Threshold, string(r.Score.Decision),
			r.Score.Uncertainty, string(comps), now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO reports (instance_id, path, heatmap_path, created_at,
			revision, model_version, decision, agent, body) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)`,
			in.ID, r.ReportPath, r.HeatmapPath, now, r.ModelVersion, string(r.Score.Decision), tx.agent, string(r.ReportBody)); err != nil {
			return err
		}
		if in.StudyInstanceUID != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO studies (study_instance_uid, instances, last_instance_at)
				VALUES (?, 1, ?) ON CONFLICT (study_instance_uid) DO UPDATE SET
				instances = studies.instances + 1, last_instance_at = excluded.last_instance_at`,
				in.StudyInstanceUID, now); err != nil {
				return err
			}
		}
		f := r.File
		f.Status, f.InstanceID, f.SHA256 = FileDone, in.ID, in.SHA256
		if err := insertFile(ctx, tx, f, now); err != nil {
			return err
		}
		_, err = insertOutbox(ctx, tx, r.Outbox, db.Now())
		return err
	})
	if errors.Is(err, ErrExists) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: record result %s: %w", in.ID, err)
	}
	return nil
}

// RecordFile stores the outcome of a file that was not scored: a duplicate,
// a conflict or a failure.
func (db *DB) RecordFile(ctx context.Context, f File) error {
	err := db.tx(ctx, func(tx *Tx) error { return insertFile(ctx, tx, f, db.now()) })
	if err != nil {
		return fmt.Errorf("store: record file %s: %w", f.Path, err)
	}
	return nil
}

// insertFile records a file's outcome. A file already recorded as done
// keeps that record: its instance was scored and reported from it, and a
// later look at the same bytes (a second process, an ingest of the live
// inbox) must not rewrite it as a duplicate of itself.
func insertFile(ctx context.Context, tx *Tx, f File, now string) error {
	var inst any
	if f.InstanceID != "" {
		inst = f.InstanceID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO files (path, size, mtime_ns, sha256, status,
		instance_id, error, quarantine_path, seen_at, agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (path, size, mtime_ns) DO UPDATE SET sha256 = excluded.sha256,
		status = excluded.status, instance_id = excluded.instance_id, error = excluded.error,
		quarantine_path = excluded.quarantine_path, seen_at = excluded.seen_at, agent = excluded.agent
		WHERE files.status != 'done'`,
		f.Path, f.Size, f.ModTimeNS, f.SHA256, f.Status, inst, f.Error, f.QuarantinePath, now, tx.agent)
	if err != nil {
		return err
	}
	// The file's outcome and its leaving the queue are one step.
	_, err = tx.ExecContext(ctx, `DELETE FROM queue WHERE path = ?`, f.Path)
	return err
}

// RecordedOutput reports whether path is recorded as the report or the
// heatmap of some instance's report.
func (db *DB) RecordedOutput(ctx context.Context, path string) (bool, error) {
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports WHERE path = ? OR heatmap_path = ?`, path, path).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: recorded output %s: %w", path, err)
	}
	return n > 0, nil
}

// SetArchivePath records where a handled file was moved after processing.
func (db *DB) SetArchivePath(ctx context.Context, path string, size, mtimeNS int64, archivePath string) error {
	err := db.tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE files SET archive_path = ? WHERE path = ? AND size = ? AND mtime_ns = ?`,
			archivePath, path, size, mtimeNS)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: archive path %s: %w", path, err)
	}
	return nil
}

// Files returns every file record with the given status, oldest first; an
// empty status returns all.
func (db *DB) Files(ctx context.Context, status string) ([]File, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT path, size, mtime_ns, sha256, status,
		COALESCE(instance_id, ''), error, quarantine_path, seen_at FROM files
		WHERE ? = '' OR status = ? ORDER BY id`, status, status)
	if err != nil {
		return nil, fmt.Errorf("store: files: %w", err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		var f File
		var seen string
		if err := rows.Scan(&f.Path, &f.Size, &f.ModTimeNS, &f.SHA256, &f.Status, &f.InstanceID,
			&f.Error, &f.QuarantinePath, &seen); err != nil {
			return nil, fmt.Errorf("store: files: %w", err)
		}
		f.SeenAt = parseTime(seen)
		out = append(out, f)
	}
	return out, rows.Err()
}

// RecentFailures returns the n most recent failed files, newest first.
func (db *DB) RecentFailures(ctx context.Context, n int) ([]File, error) {
	all, err := db.Files(ctx, FileFailed)
	if err != nil {
		return nil, err
	}
	out := make([]File, 0, n)
	for i := len(all) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, all[i])
	}
	return out, nil
}

// Counts summarises the database for `sentinel status`.
type Counts struct {
	Files     map[string]int // by file status
	Instances int
	Scores    int
	// Reports counts the instances reported; Revised the revisions issued
	// after an instance's first report.
	Reports int
	Revised int
	// ByDecision counts instances by the decision their latest report
	// gives.
	ByDecision map[string]int
}

// Counts returns how many files are in each state, and how many instances,
// scores and reports there are.
func (db *DB) Counts(ctx context.Context) (Counts, error) {
	c := Counts{Files: map[string]int{}, ByDecision: map[string]int{}}
	if err := groupCount(ctx, db.db, `SELECT status, COUNT(*) FROM files GROUP BY status`, c.Files); err != nil {
		return c, fmt.Errorf("store: counts: %w", err)
	}
	// The decision each instance's latest report gives (a newer model's
	// score that changed no decision is stored, but not reported).
	if err := groupCount(ctx, db.db, `SELECT decision, COUNT(*) FROM reports
		WHERE id IN (SELECT MAX(id) FROM reports GROUP BY instance_id) GROUP BY decision`, c.ByDecision); err != nil {
		return c, fmt.Errorf("store: counts: %w", err)
	}
	for q, dst := range map[string]*int{
		`SELECT COUNT(*) FROM instances`:                  &c.Instances,
		`SELECT COUNT(*) FROM scores`:                     &c.Scores,
		`SELECT COUNT(DISTINCT instance_id) FROM reports`: &c.Reports,
		`SELECT COUNT(*) FROM reports WHERE revision > 1`: &c.Revised,
	} {
		if err := db.db.QueryRowContext(ctx, q).Scan(dst); err != nil {
			return c, fmt.Errorf("store: counts: %w", err)
		}
	}
	return c, nil
}

func groupCount(ctx context.Context, db querier, q string, into map[string]int) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		into[k] = n
	}
	return rows.Err()
}

// ScoreCount returns how many scores are stored for an instance.
func (db *DB) ScoreCount(ctx context.Context, instanceID string) (int, error) {
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scores WHERE instance_id = ?`, instanceID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: score count %s: %w", instanceID, err)
	}
	return n, nil
}

// ReportRow is one stored report with the score it gave.
type ReportRow struct {
	InstanceID   string
	Path         string
	HeatmapPath  string
	Revision     int
	ModelVersion string
	Value        float64
	Decision     string
}

// Reports lists every report, each revision of an instance's report in its
// own row, with the score it gave, in the order they were made.
func (db *DB) Reports(ctx context.Context) ([]ReportRow, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT r.instance_id, r.path, r.heatmap_path, r.revision, r.model_version,
		COALESCE(s.value, 0), r.decision FROM reports r
		LEFT JOIN scores s ON s.instance_id = r.instance_id AND s.model_version = r.model_version ORDER BY r.id`)
	if err != nil {
		return nil, fmt.Errorf("store: reports: %w", err)
	}
	defer rows.Close()
	var out []ReportRow
	for rows.Next() {
		var r ReportRow
		if err := rows.Scan(&r.InstanceID, &r.Path, &r.HeatmapPath, &r.Revision, &r.ModelVersion, &r.Value, &r.Decision); err != nil {
			return nil, fmt.Errorf("store: reports: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// placementJSON encodes where a film sits in the PACS for the instances
// table.
func placementJSON(p sentinel.Placement) string {
	b, err := json.Marshal(p)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// parsePlacement decodes placementJSON's output; a value that does not
// parse gives an empty placement.
func parsePlacement(s string) sentinel.Placement {
	var p sentinel.Placement
	_ = json.Unmarshal([]byte(s), &p)
	return p
}
