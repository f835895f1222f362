package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StudyFilter selects and orders a page of studies.
type StudyFilter struct {
	// Decision keeps the studies whose worst decision is this one ("" for all).
	Decision string
	// From and To keep the studies whose last instance arrived in [From, To)
	// (zero for no bound).
	From, To time.Time
	// Sort is one of the StudySorts keys ("" is "received"); Asc reverses
	// the default descending order.
	Sort string
	Asc  bool
	// Offset and Limit page through the result.
	Offset, Limit int
}

// StudySorts maps a sort key to its column. Every order ends with the
// study UID, so that equal values keep one stable order from page to page.
var StudySorts = map[string]string{
	"received":  "last_instance_at",
	"accession": "accession_number",
	"modality":  "modality",
	"score":     "max_score",
	"decision":  "worst",
	"revision":  "revision",
}

// StudyRow is one study as the page's studies table shows it.
type StudyRow struct {
	StudyInstanceUID string
	AccessionNumber  string
	Modality         string
	Instances        int
	Revision         int
	LastInstanceAt   time.Time
	MaxScore         float64
	WorstDecision    string
	// FirstPath is the file of the study's first instance (the archive copy
	// when there is one), for what only the file says.
	FirstPath string
}

// studyRowsSQL computes a row per study of a source of studies rows (%s)
// with the highest score and worst decision of its instances' latest
// reports, as Studies does.
const studyRowsSQL = `WITH agg AS (
	SELECT st.study_instance_uid AS study_instance_uid, st.instances AS instances, st.revision AS revision,
		st.last_instance_at AS last_instance_at,
		MIN(i.accession_number) AS accession_number, MIN(i.modality) AS modality,
		COALESCE(MAX(s.value), 0) AS max_score,
		COALESCE(MAX(` + worstCase + `), 0) AS worst,
		MIN(i.instance_id) AS first_instance
	FROM %s st JOIN instances i ON i.study_instance_uid = st.study_instance_uid
	LEFT JOIN reports r ON r.id = (SELECT MAX(id) FROM reports WHERE instance_id = i.instance_id)
	LEFT JOIN scores s ON s.instance_id = i.instance_id AND s.model_version = r.model_version
	GROUP BY st.study_instance_uid, st.instances, st.revision, st.last_instance_at)
SELECT study_instance_uid, accession_number, modality, instances, revision, last_instance_at, max_score, worst,
	first_instance, COUNT(*) OVER () AS total
FROM agg WHERE (? = -1 OR worst = ?) AND (? = '' OR last_instance_at >= ?) AND (? = '' OR last_instance_at < ?)`

// firstPathSQL gives each row of a page the file of its study's first
// instance; it runs on the page's rows only, after the sort and the limit.
const firstPathSQL = `SELECT p.study_instance_uid, p.accession_number, p.modality, p.instances, p.revision, p.last_instance_at,
	p.max_score, p.worst,
	COALESCE((SELECT archive_path FROM files f WHERE f.instance_id = p.first_instance AND f.archive_path != '' ORDER BY f.id DESC LIMIT 1),
		(SELECT path FROM instances WHERE instance_id = p.first_instance)),
	p.total
FROM (%s) p`

// worstOrder lists decisions from least to most concerning (as
// sentinel.Decision.Severity orders them), and worstCase ranks a report's
// decision in that order in SQL.
var worstOrder = []string{"normal", "not_flagged", "uncertain", "out_of_distribution", "abnormal"}

const worstCase = `CASE r.decision WHEN 'abnormal' THEN 4 WHEN 'out_of_distribution' THEN 3
	WHEN 'uncertain' THEN 2 WHEN 'not_flagged' THEN 1 ELSE 0 END`

// WorstDecisions lists the decisions a study can be filtered by, most
// concerning first.
func WorstDecisions() []string {
	return []string{"abnormal", "out_of_distribution", "uncertain", "not_flagged", "normal"}
}

var decisionRank = func() map[string]int {
	m := map[string]int{}
	for i, d := range worstOrder {
		m[d] = i
	}
	return m
}()

// StudiesPage returns one page of studies and how many match the filter.
func (db *DB) StudiesPage(ctx context.Context, f StudyFilter) ([]StudyRow, int, error) {
	col, ok := StudySorts[f.Sort]
	if f.Sort == "" {
		col, ok = StudySorts["received"], true
	}
	if !ok {
		return nil, 0, fmt.Errorf("store: studies page: unknown sort %q", f.Sort)
	}
	dir := "DESC"
	if f.Asc {
		dir = "ASC"
	}
	worst := -1
	if f.Decision != "" {
		w, ok := decisionRank[f.Decision]
		if !ok {
			return nil, 0, fmt.Errorf("store: studies page: unknown decision %q", f.Decision)
		}
		worst = w
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	from, to := formatTime(f.From), formatTime(f.To)
	order := ` ORDER BY ` + col + ` ` + dir + `, study_instance_uid ` + dir
	outer := strings.ReplaceAll(order, "ORDER BY ", "ORDER BY p.")
	var rows *sql.Rows
	var err error
	fast := worst == -1 && (col == "last_instance_at" || col == "revision")
	if fast {
		// Sorted by a column of the studies table and not filtered by
		// decision: only the page's studies need their films aggregated.
		source := `(SELECT * FROM studies WHERE (? = '' OR last_instance_at >= ?) AND (? = '' OR last_instance_at < ?)` +
			order + ` LIMIT ? OFFSET ?)`
		rows, err = db.db.QueryContext(ctx, fmt.Sprintf(firstPathSQL, fmt.Sprintf(studyRowsSQL, source)+order)+outer,
			from, from, to, to, f.Limit, f.Offset, worst, worst, from, from, to, to)
	} else {
		rows, err = db.db.QueryContext(ctx, fmt.Sprintf(firstPathSQL, fmt.Sprintf(studyRowsSQL, "studies")+order+` LIMIT ? OFFSET ?`)+outer,
			worst, worst, from, from, to, to, f.Limit, f.Offset)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: studies page: %w", err)
	}
	defer rows.Close()
	var out []StudyRow
	total := 0
	for rows.Next() {
		var s StudyRow
		var at string
		var w int
		if err := rows.Scan(&s.StudyInstanceUID, &s.AccessionNumber, &s.Modality, &s.Instances, &s.Revision, &at,
			&s.MaxScore, &w, &s.FirstPath, &total); err != nil {
			return nil, 0, fmt.Errorf("store: studies page: %w", err)
		}
		s.LastInstanceAt = parseTime(at)
		s.WorstDecision = worstOrder[min(max(w, 0), len(worstOrder)-1)]
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: studies page: %w", err)
	}
	if fast {
		err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM studies s WHERE (? = '' OR last_instance_at >= ?) AND (? = '' OR last_instance_at < ?)
			AND EXISTS (SELECT 1 FROM instances i WHERE i.study_instance_uid = s.study_instance_uid)`, from, from, to, to).Scan(&total)
		if err != nil {
			return nil, 0, fmt.Errorf("store: studies page: %w", err)
		}
	} else if len(out) == 0 && f.Offset > 0 {
		// Past the end: count what matches all the same.
		_, total, err = db.StudiesPage(ctx, StudyFilter{Decision: f.Decision, From: f.From, To: f.To, Sort: "score", Limit: 1})
	}
	return out, total, err
}

// InstanceFiles are the files of one instance: where its input is now, and
// its latest report and heatmap.
type InstanceFiles struct {
	InstanceID       string
	StudyInstanceUID string
	AccessionNumber  string
	Modality         string
	Path             string
	Report, Heatmap  string
}

// InstanceFilesOf returns the files of an instance, by instance id or SOP
// Instance UID; ok is false when there is no such instance.
func (db *DB) InstanceFilesOf(ctx context.Context, uid string) (InstanceFiles, bool, error) {
	var f InstanceFiles
	err := db.db.QueryRowContext(ctx, `SELECT i.instance_id, i.study_instance_uid, i.accession_number, i.modality,
		COALESCE((SELECT archive_path FROM files f WHERE f.instance_id = i.instance_id AND f.archive_path != '' ORDER BY f.id DESC LIMIT 1), i.path),
		COALESCE((SELECT path FROM reports r WHERE r.instance_id = i.instance_id ORDER BY r.id DESC LIMIT 1), ''),
		COALESCE((SELECT heatmap_path FROM reports r WHERE r.instance_id = i.instance_id ORDER BY r.id DESC LIMIT 1), '')
		FROM instances i WHERE i.instance_id = ? OR i.sop_instance_uid = ? LIMIT 1`, uid, uid).
		Scan(&f.InstanceID, &f.StudyInstanceUID, &f.AccessionNumber, &f.Modality, &f.Path, &f.Report, &f.Heatmap)
	if errors.Is(err, sql.ErrNoRows) {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("store: instance files %s: %w", uid, err)
	}
	return f, true, nil
}

// StudyReportRow is one revision of a study's report.
type StudyReportRow struct {
	Revision  int
	Instances int
	Path      string
	CreatedAt time.Time
}

// StudyReports returns every revision of a study's report, newest first.
func (db *DB) StudyReports(ctx context.Context, study string) ([]StudyReportRow, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT revision, instances, path, created_at FROM study_reports
		WHERE study_instance_uid = ? ORDER BY revision DESC`, study)
	if err != nil {
		return nil, fmt.Errorf("store: study reports %s: %w", study, err)
	}
	defer rows.Close()
	var out []StudyReportRow
	for rows.Next() {
		var r StudyReportRow
		var at string
		if err := rows.Scan(&r.Revision, &r.Instances, &r.Path, &at); err != nil {
			return nil, fmt.Errorf("store: study reports %s: %w", study, err)
		}
		r.CreatedAt = parseTime(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ModelScore is one stored score of an instance by a model version.
type ModelScore struct {
	InstanceID   string
	ModelVersion string
	Value        float64
}

// HoldoutScores returns the stored scores of the frozen holdout's
// instances, by every model version that scored them.
func (db *DB) HoldoutScores(ctx context.Context) ([]ModelScore, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT s.instance_id, s.model_version, s.value FROM scores s
		JOIN label_roles l ON l.instance_id = s.instance_id AND l.role = 'holdout' ORDER BY s.model_version, s.instance_id`)
	if err != nil {
		return nil, fmt.Errorf("store: holdout scores: %w", err)
	}
	defer rows.Close()
	var out []ModelScore
	for rows.Next() {
		var m ModelScore
		if err := rows.Scan(&m.InstanceID, &m.ModelVersion, &m.Value); err != nil {
			return nil, fmt.Errorf("store: holdout scores: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Quarantined returns the most recent failed files, newest first, at most
// limit, with the reason each failed.
func (db *DB) Quarantined(ctx context.Context, limit int) ([]File, int, error) {
	var total int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM files WHERE status = ?`, FileFailed).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: quarantined: %w", err)
	}
	rows, err := db.db.QueryContext(ctx, `SELECT path, error, quarantine_path, seen_at FROM files
		WHERE status = ? ORDER BY id DESC LIMIT ?`, FileFailed, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("store: quarantined: %w", err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		f := File{Status: FileFailed}
		var seen string
		if err := rows.Scan(&f.Path, &f.Error, &f.QuarantinePath, &seen); err != nil {
			return nil, 0, fmt.Errorf("store: quarantined: %w", err)
		}
		f.SeenAt = parseTime(seen)
		out = append(out, f)
	}
	return out, total, rows.Err()
}

// RetryingFiles returns the queued files that failed at least once and
// wait to be tried again, with their last error.
func (db *DB) RetryingFiles(ctx context.Context, limit int) ([]QueueItem, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT path, attempts, last_error FROM queue
		WHERE last_error != '' ORDER BY next_attempt_at LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: retrying files: %w", err)
	}
	defer rows.Close()
	var out []QueueItem
	for rows.Next() {
		var q QueueItem
		if err := rows.Scan(&q.Path, &q.Attempts, &q.LastError); err != nil {
			return nil, fmt.Errorf("store: retrying files: %w", err)
		}
		q.LastError = strings.TrimSpace(q.LastError)
		out = append(out, q)
	}
	return out, rows.Err()
}

// PageLabel is a label with the accession number of its study.
type PageLabel struct {
	InstanceID      string
	AccessionNumber string
	Value, Finding  string
	Time            time.Time
}

// UndoableLabels returns a reader's labels given since the newest model
// was trained, newest first: those UndoLabel may still take back.
func (db *DB) UndoableLabels(ctx context.Context, reader string) ([]PageLabel, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT l.instance_id, i.accession_number, l.label, l.finding, l.time
		FROM labels l JOIN instances i ON i.instance_id = l.instance_id
		WHERE l.reader = ? AND l.time > COALESCE((SELECT MAX(created_at) FROM models), '')
		ORDER BY l.time DESC, l.id DESC LIMIT 200`, reader)
	if err != nil {
		return nil, fmt.Errorf("store: undoable labels: %w", err)
	}
	defer rows.Close()
	var out []PageLabel
	for rows.Next() {
		var l PageLabel
		var t string
		if err := rows.Scan(&l.InstanceID, &l.AccessionNumber, &l.Value, &l.Finding, &t); err != nil {
			return nil, fmt.Errorf("store: undoable labels: %w", err)
		}
		l.Time = parseTime(t)
		out = append(out, l)
	}
	return out, rows.Err()
}
