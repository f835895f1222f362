package learn

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// LabelRow is one row of a labels file, before its key is matched to an
// instance.
type LabelRow struct {
	// Line is the row's line in the file (1-based; for JSON the line its
	// object starts on).
	Line int
	// Key names the column identifying the case (sop_instance_uid,
	// instance_id or file) or the study (accession_number or
	// study_instance_uid, see StudyLevel), and KeyValue its value.
	Key, KeyValue string
	Value         string
	Finding       string
	Reader        string
	Time          time.Time
}

// RowError is a row that cannot be imported, by line.
type RowError struct {
	Line int
	Err  error
}

func (e RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e RowError) Unwrap() error { return e.Err }

// Errors a labels row can have.
var (
	ErrNoKey      = errors.New("no key: give sop_instance_uid, instance_id, file, accession_number or study_instance_uid")
	ErrBadLabel   = errors.New("bad label: want normal or abnormal")
	ErrBadTime    = errors.New("bad time: want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)")
	ErrNoReader   = errors.New("no reader")
	ErrMalformed  = errors.New("malformed row")
	ErrUnknownKey = errors.New("unknown case")
	ErrAmbiguous  = errors.New("key matches several cases")
)

// Key columns, in the order they are preferred when a row has several: an
// image's own key before its study's.
var keyColumns = []string{"sop_instance_uid", "instance_id", "file", "accession_number", "study_instance_uid"}

// StudyLevel reports whether the row names a study (by accession number or
// Study Instance UID) rather than one image: its label is a reading of the
// whole study and applies to every image of it.
func (r LabelRow) StudyLevel() bool {
	return r.Key == "accession_number" || r.Key == "study_instance_uid"
}

// ParseLabels reads a labels file in CSV (with a header) or JSON (an array
// of objects, or one object per line) with the columns sop_instance_uid,
// instance_id, file, accession_number or study_instance_uid (the key; the
// first non-empty one in that order counts), label
// ("normal" or "abnormal"; "abnormal: finding" or "abnormal/finding" also
// sets the finding), finding (optional), reader and time. A row that is
// malformed is returned as a RowError with its line and the rest are still
// returned; only an unreadable file or header is an error.
func ParseLabels(r io.Reader, format string) ([]LabelRow, []RowError, error) {
	p, err := ParseLabelsWith(r, format, LabelDefaults{})
	return p.Rows, p.Bad, err
}

// LabelDefaults fill in what the rows of a labels file leave out, so that
// an exported worklist with a label column added imports as it is.
type LabelDefaults struct {
	// Reader is the reader of the rows with no reader column, or an empty
	// one ("" keeps the reader required).
	Reader string
	// Time is when the rows with no time were read (zero keeps the time
	// required).
	Time time.Time
	// SkipUnanswered passes over the rows whose label is empty (a
	// worklist's questions not answered yet) instead of rejecting them.
	SkipUnanswered bool
}

// ParsedLabels is what ParseLabelsWith read: the rows to import, the rows
// rejected by line, and the lines passed over as unanswered.
type ParsedLabels struct {
	Rows       []LabelRow
	Bad        []RowError
	Unanswered []int
}

// ParseLabelsWith is ParseLabels with defaults for the reader and the time,
// and optionally passing over unanswered rows.
func ParseLabelsWith(r io.Reader, format string, d LabelDefaults) (ParsedLabels, error) {
	var p ParsedLabels
	var err error
	switch strings.ToLower(format) {
	case "csv":
		p.Rows, p.Bad, err = parseCSV(r, d)
	case "json":
		p.Rows, p.Bad, err = parseJSON(r, d)
	default:
		return p, fmt.Errorf("labels: unknown format %q: want csv or json", format)
	}
	if d.SkipUnanswered {
		kept := p.Bad[:0]
		for _, b := range p.Bad {
			if errors.Is(b.Err, errUnanswered) {
				p.Unanswered = append(p.Unanswered, b.Line)
			} else {
				kept = append(kept, b)
			}
		}
		p.Bad = kept
	}
	return p, err
}

// errUnanswered marks a row with an empty label, a bad label unless the
// caller passes over unanswered rows.
var errUnanswered = errors.New("empty label")

func parseCSV(r io.Reader, d LabelDefaults) ([]LabelRow, []RowError, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("labels: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	hasKey := false
	for _, k := range keyColumns {
		if _, ok := col[k]; ok {
			hasKey = true
		}
	}
	if _, ok := col["label"]; !ok || !hasKey {
		return nil, nil, fmt.Errorf("labels: header must name label and one of %s, got %v", strings.Join(keyColumns, ", "), header)
	}
	var rows []LabelRow
	var bad []RowError
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			bad = append(bad, RowError{pe.StartLine, fmt.Errorf("%w: %v", ErrMalformed, pe.Err)})
			continue
		}
		if err != nil {
			return rows, bad, fmt.Errorf("labels: %w", err)
		}
		if len(rec) != len(header) {
			bad = append(bad, RowError{line, fmt.Errorf("%w: %d fields, header has %d", ErrMalformed, len(rec), len(header))})
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		row, err := makeRow(line, get, d)
		if err != nil {
			bad = append(bad, RowError{line, err})
			continue
		}
		rows = append(rows, row)
	}
	return rows, bad, nil
}

func parseJSON(r io.Reader, d LabelDefaults) ([]LabelRow, []RowError, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("labels: %w", err)
	}
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	dec := json.NewDecoder(bytes.NewReader(data))
	// An array of objects, or objects one after another (JSON lines).
	inArray := false
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		if _, err := dec.Token(); err != nil {
			return nil, nil, fmt.Errorf("labels: %w", err)
		}
		inArray = true
	}
	var rows []LabelRow
	var bad []RowError
	for dec.More() {
		start := dec.InputOffset()
		// Skip the separators so the line is the object's own.
		for start < int64(len(data)) && strings.ContainsRune(" \t\r\n,", rune(data[start])) {
			start++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			// The decoder cannot resynchronise after a syntax error.
			bad = append(bad, RowError{lineAt(start), fmt.Errorf("%w: %v", ErrMalformed, err)})
			return rows, bad, nil
		}
		line := lineAt(start)
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			bad = append(bad, RowError{line, fmt.Errorf("%w: want an object", ErrMalformed)})
			continue
		}
		var typeErr error
		get := func(name string) string {
			for k, v := range obj {
				if strings.EqualFold(k, name) {
					switch v := v.(type) {
					case string:
						return strings.TrimSpace(v)
					case nil:
						return ""
					default:
						typeErr = fmt.Errorf("%w: %s is not a string", ErrMalformed, name)
					}
				}
			}
			return ""
		}
		row, err := makeRow(line, get, d)
		if typeErr != nil {
			err = typeErr
		}
		if err != nil {
			bad = append(bad, RowError{line, err})
			continue
		}
		rows = append(rows, row)
	}
	if inArray {
		if _, err := dec.Token(); err != nil {
			bad = append(bad, RowError{lineAt(dec.InputOffset()), fmt.Errorf("%w: %v", ErrMalformed, err)})
		}
	}
	return rows, bad, nil
}

func makeRow(line int, get func(string) string, d LabelDefaults) (LabelRow, error) {
	row := LabelRow{Line: line}
	for _, k := range keyColumns {
		if v := get(k); v != "" {
			row.Key, row.KeyValue = k, v
			break
		}
	}
	if row.Key == "" {
		return row, ErrNoKey
	}
	label := get("label")
	if label == "" {
		return row, fmt.Errorf("%w, got an %w", ErrBadLabel, errUnanswered)
	}
	v, finding := parseLabelValue(label)
	if v == "" {
		return row, fmt.Errorf("%w, got %q", ErrBadLabel, label)
	}
	row.Value, row.Finding = v, finding
	if f := get("finding"); f != "" {
		row.Finding = f
	}
	if row.Reader = get("reader"); row.Reader == "" {
		row.Reader = d.Reader
	}
	if row.Reader == "" {
		return row, fmt.Errorf("%w: give a reader column, or the reader's name (labels import --reader NAME)", ErrNoReader)
	}
	if s := get("time"); s == "" && !d.Time.IsZero() {
		row.Time = d.Time.UTC()
		return row, nil
	}
	t, err := parseLabelTime(get("time"))
	if err != nil {
		return row, err
	}
	row.Time = t
	return row, nil
}

// parseLabelValue accepts "normal", "abnormal", and "abnormal: finding" or
// "abnormal/finding", case-insensitively.
func parseLabelValue(s string) (value, finding string) {
	v, f, _ := strings.Cut(s, ":")
	if !strings.Contains(s, ":") {
		v, f, _ = strings.Cut(s, "/")
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case Normal:
		if strings.TrimSpace(f) != "" {
			return "", ""
		}
		return Normal, ""
	case Abnormal:
		return Abnormal, strings.TrimSpace(f)
	}
	return "", ""
}

func parseLabelTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w, got %q", ErrBadTime, s)
}
