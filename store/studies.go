package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// StudyInstance is one scored instance of a study, for the study report.
type StudyInstance struct {
	InstanceID        string
	SOPInstanceUID    string
	SeriesInstanceUID string
	SourceFile        string
	ModelVersion      string
	Score             float64
	Threshold         float64
	Decision          string
	Uncertainty       *float64
	ReportPath        string
	ScoredAt          time.Time
}

// StudySummary is one study as the API lists it.
type StudySummary struct {
	StudyInstanceUID string    `json:"study_instance_uid"`
	Instances        int       `json:"instances"`
	Revision         int       `json:"revision"`
	LastInstanceAt   time.Time `json:"last_instance_at"`
	MaxScore         float64   `json:"max_score"`
	WorstDecision    string    `json:"worst_decision"`
}

// QuietStudies returns the studies whose last instance arrived at or before
// cutoff and that have instances not yet in a study report, or an instance
// report revised since their last one.
func (db *DB) QuietStudies(ctx context.Context, cutoff time.Time) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT study_instance_uid FROM studies
		WHERE (instances > reported_instances OR stale != 0) AND last_instance_at <= ?
		AND (? = 0 OR EXISTS (SELECT 1 FROM instances i JOIN reports r ON r.instance_id = i.instance_id
			WHERE i.study_instance_uid = studies.study_instance_uid AND (r.agent = ? OR r.agent = '')))
		ORDER BY last_instance_at`, formatTime(cutoff), db.shared(), db.Agent)
	if err != nil {
		return nil, fmt.Errorf("store: quiet studies: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store: quiet studies: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// StudyInstances returns the reported instances of a study, each with the
// score its latest report gave (a newer model's score that changed no
// decision is stored, but not reported), in the order they were scored.
func (db *DB) StudyInstances(ctx context.Context, study string) ([]StudyInstance, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT i.instance_id, i.sop_instance_uid, i.series_instance_uid, i.path,
		s.model_version, s.value, s.threshold, s.decision, s.uncertainty, r.path, s.created_at
		FROM instances i JOIN reports r ON r.id = (SELECT MAX(id) FROM reports WHERE instance_id = i.instance_id)
		JOIN scores s ON s.instance_id = i.instance_id AND s.model_version = r.model_version
		WHERE i.study_instance_uid = ?
		ORDER BY (SELECT MIN(id) FROM scores WHERE instance_id = i.instance_id)`, study)
	if err != nil {
		return nil, fmt.Errorf("store: study %s: %w", study, err)
	}
	defer rows.Close()
	var out []StudyInstance
	for rows.Next() {
		var si StudyInstance
		var unc sql.NullFloat64
		var at string
		if err := rows.Scan(&si.InstanceID, &si.SOPInstanceUID, &si.SeriesInstanceUID, &si.SourceFile, &si.ModelVersion,
			&si.Score, &si.Threshold, &si.Decision, &unc, &si.ReportPath, &at); err != nil {
			return nil, fmt.Errorf("store: study %s: %w", study, err)
		}
		si.Uncertainty = nullable(unc)
		si.ScoredAt = parseTime(at)
		out = append(out, si)
	}
	return out, rows.Err()
}

// StudyRevision returns the last study report revision of a study (0 when
// never reported) and how many of its instance reports were revised since
// (see RecordRevision).
func (db *DB) StudyRevision(ctx context.Context, study string) (rev, revised int, err error) {
	err = db.db.QueryRowContext(ctx, `SELECT revision, stale FROM studies WHERE study_instance_uid = ?`, study).Scan(&rev, &revised)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: study revision %s: %w", study, err)
	}
	return rev, revised, nil
}

// RecordStudyReport records revision rev of a study's report, covering the
// given number of instances and the revised instance reports StudyRevision
// counted before the report was made (revisions recorded since still make
// the study due again).
func (db *DB) RecordStudyReport(ctx context.Context, study string, rev, instances, revised int, path string) error {
	err := db.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO study_reports (study_instance_uid, revision, instances, path, created_at, agent)
			VALUES (?, ?, ?, ?, ?, ?)`, study, rev, instances, path, db.now(), tx.agent); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE studies SET reported_instances = ?1, revision = ?2, stale = CASE WHEN stale > ?3 THEN stale - ?3 ELSE 0 END
			WHERE study_instance_uid = ?4`, instances, rev, revised, study)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: study report %s r%d: %w", study, rev, err)
	}
	return nil
}

// StudyReportCount returns how many study report revisions exist for a study.
func (db *DB) StudyReportCount(ctx context.Context, study string) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM study_reports WHERE study_instance_uid = ?`, study).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: study reports %s: %w", study, err)
	}
	return n, nil
}

// Studies lists every study with the highest score and worst decision of
// its instances' latest reports (a newer model's score that changed no
// decision is stored, but not reported), most recent first.
func (db *DB) Studies(ctx context.Context, limit int) ([]StudySummary, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT st.study_instance_uid, st.instances, st.revision, st.last_instance_at,
		COALESCE(MAX(s.value), 0),
		COALESCE(MAX(`+worstCase+`), 0)
		FROM studies st JOIN instances i ON i.study_instance_uid = st.study_instance_uid
		LEFT JOIN reports r ON r.id = (SELECT MAX(id) FROM reports WHERE instance_id = i.instance_id)
		LEFT JOIN scores s ON s.instance_id = i.instance_id AND s.model_version = r.model_version
		GROUP BY st.study_instance_uid ORDER BY st.last_instance_at DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: studies: %w", err)
	}
	defer rows.Close()
	var out []StudySummary
	for rows.Next() {
		var s StudySummary
		var at string
		var worst int
		if err := rows.Scan(&s.StudyInstanceUID, &s.Instances, &s.Revision, &at, &s.MaxScore, &worst); err != nil {
			return nil, fmt.Errorf("store: studies: %w", err)
		}
		s.LastInstanceAt = parseTime(at)
		s.WorstDecision = worstOrder[min(max(worst, 0), len(worstOrder)-1)]
		out = append(out, s)
	}
	return out, rows.Err()
}

// ReportPaths returns the paths of an instance's report and its heatmap
// (empty when it has none), looked up by instance id or SOP Instance UID:
// the given revision's, or with revision 0 the latest.
func (db *DB) ReportPaths(ctx context.Context, uid string, revision int) (report, heatmap string, ok bool, err error) {
	ref, ok, err := db.Report(ctx, uid, revision)
	return ref.Path, ref.Heatmap, ok, err
}

// ReportRef is one revision of an instance's report as recorded: where it
// and its heatmap were written, by which agent, and the report as written.
type ReportRef struct {
	Path, Heatmap, Agent string
	// Body is the report's JSON as written (empty for reports recorded
	// before bodies were kept).
	Body []byte
}

// Report returns an instance's latest report (revision 0) or the revision
// asked for, by SOP Instance UID or instance id; ok is false if there is
// none.
func (db *DB) Report(ctx context.Context, uid string, revision int) (ReportRef, bool, error) {
	var ref ReportRef
	var body string
	err := db.db.QueryRowContext(ctx, `SELECT r.path, r.heatmap_path, r.agent, r.body FROM reports r JOIN instances i ON i.instance_id = r.instance_id
		WHERE (i.instance_id = ? OR i.sop_instance_uid = ?) AND (? = 0 OR r.revision = ?)
		ORDER BY r.id DESC LIMIT 1`, uid, uid, revision, revision).Scan(&ref.Path, &ref.Heatmap, &ref.Agent, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return ReportRef{}, false, nil
	}
	if err != nil {
		return ReportRef{}, false, fmt.Errorf("store: report %s: %w", uid, err)
	}
	ref.Body = []byte(body)
	return ref, true, nil
}

// ClaimStudy claims a study for this agent to write its next report, if it
// is still due and no other agent holds a live claim on it. It says
// whether the claim was taken; ReleaseStudy gives it up.
func (db *DB) ClaimStudy(ctx context.Context, study string) (bool, error) {
	now := db.Now()
	res, err := db.db.ExecContext(ctx, `UPDATE studies SET claimed_by = ?1, claim_until = ?2
		WHERE study_instance_uid = ?3 AND (instances > reported_instances OR stale != 0)
		AND (claimed_by = '' OR claimed_by = ?1 OR claim_until < ?4)`,
		db.Agent, formatTime(now.Add(db.ClaimLease)), study, formatTime(now))
	if err != nil {
		return false, fmt.Errorf("store: claim study %s: %w", study, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReleaseStudy gives up this agent's claim on a study.
func (db *DB) ReleaseStudy(ctx context.Context, study string) error {
	if _, err := db.db.ExecContext(ctx, `UPDATE studies SET claimed_by = '', claim_until = ''
		WHERE study_instance_uid = ? AND claimed_by = ?`, study, db.Agent); err != nil {
		return fmt.Errorf("store: release study %s: %w", study, err)
	}
	return nil
}
