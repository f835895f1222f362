package learn

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseLabelsCSVErrorsByLine(t *testing.T) {
	in := strings.Join([]string{
		"sop_instance_uid,instance_id,file,label,finding,reader,time",
		"1.2.3,,,normal,,dr-a,2026-01-02T10:00:00Z", // 2 ok
		",,,abnormal,,dr-a,2026-01-02T10:00:00Z",    // 3 no key
		"1.2.4,,,maybe,,dr-a,2026-01-02T10:00:00Z",  // 4 bad label
		"1.2.5,,,normal,,dr-a,yesterday",            // 5 bad time
		"1.2.6,,,normal,,,2026-01-02",               // 6 no reader
		"1.2.7,,,normal,,dr-a",                      // 7 too few fields
		`1.2.8,,,"abnormal,,dr-a,2026-01-02`,        // 8 unterminated quote (to EOF)
	}, "\n") + "\n"
	rows, bad, err := ParseLabels(strings.NewReader(in), "csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Line != 2 || rows[0].Key != "sop_instance_uid" || rows[0].Value != Normal {
		t.Fatalf("rows = %+v", rows)
	}
	want := []struct {
		line int
		err  error
	}{{3, ErrNoKey}, {4, ErrBadLabel}, {5, ErrBadTime}, {6, ErrNoReader}, {7, ErrMalformed}, {8, ErrMalformed}}
	if len(bad) != len(want) {
		t.Fatalf("bad = %v, want %d errors", bad, len(want))
	}
	for i, w := range want {
		if bad[i].Line != w.line || !errors.Is(bad[i], w.err) {
			t.Errorf("error %d = %v (line %d), want line %d %v", i, bad[i], bad[i].Line, w.line, w.err)
		}
	}
}

func TestParseLabelsHeaderErrors(t *testing.T) {
	for _, in := range []string{"", "reader,time\nx,y\n", "file,reader\na,b\n"} {
		if _, _, err := ParseLabels(strings.NewReader(in), "csv"); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	if _, _, err := ParseLabels(strings.NewReader("[]"), "xml"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestParseLabelsFindingForms(t *testing.T) {
	in := "file,label,reader,time\na.png,Abnormal: pneumonia,r,2026-01-02\nb.png,abnormal/effusion,r,2026-01-02\nc.png,NORMAL,r,2026-01-02\n"
	rows, bad, err := ParseLabels(strings.NewReader(in), "csv")
	if err != nil || len(bad) != 0 {
		t.Fatal(err, bad)
	}
	if rows[0].Finding != "pneumonia" || rows[1].Finding != "effusion" || rows[2].Value != Normal {
		t.Fatalf("rows = %+v", rows)
	}
}

func TestParseLabelsJSON(t *testing.T) {
	in := `[
  {"instance_id": "sha256:aa", "label": "abnormal", "finding": "pneumonia", "reader": "dr-a", "time": "2026-01-02T10:00:00Z"},
  {"instance_id": "sha256:bb", "label": "normal", "reader": "dr-a", "time": "2026-01-02"},
  {"label": "normal", "reader": "dr-a", "time": "2026-01-02"},
  {"file": "x.png", "label": 3, "reader": "dr-a", "time": "2026-01-02"},
  "not an object"
]`
	rows, bad, err := ParseLabels(strings.NewReader(in), "json")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Line != 2 || rows[1].Line != 3 || rows[0].Finding != "pneumonia" {
		t.Fatalf("rows = %+v", rows)
	}
	want := []struct {
		line int
		err  error
	}{{4, ErrNoKey}, {5, ErrMalformed}, {6, ErrMalformed}}
	if len(bad) != len(want) {
		t.Fatalf("bad = %v", bad)
	}
	for i, w := range want {
		if bad[i].Line != w.line || !errors.Is(bad[i], w.err) {
			t.Errorf("error %d = %v, want line %d %v", i, bad[i], w.line, w.err)
		}
	}
	// JSON lines, with a syntax error on the third line: the first two
	// import, the error names its line.
	lines := "{\"file\":\"a\",\"label\":\"normal\",\"reader\":\"r\",\"time\":\"2026-01-02\"}\n" +
		"{\"file\":\"b\",\"label\":\"normal\",\"reader\":\"r\",\"time\":\"2026-01-02\"}\n{\"file\": }\n"
	rows, bad, err = ParseLabels(strings.NewReader(lines), "json")
	if err != nil || len(rows) != 2 || len(bad) != 1 || bad[0].Line != 3 || !errors.Is(bad[0], ErrMalformed) {
		t.Fatalf("jsonl: rows %d, bad %v, err %v", len(rows), bad, err)
	}
}

// A row may name a study by accession number or Study Instance UID; an
// image's own key, when the row has one too, comes first.
func TestParseLabelsStudyKeys(t *testing.T) {
	in := strings.Join([]string{
		"file,accession_number,study_instance_uid,label,reader,time",
		",ACC1,,abnormal: pneumonia,dr-a,2026-01-02",  // 2 by accession
		",,1.2.840.9,normal,dr-a,2026-01-02",          // 3 by study
		"a.png,ACC1,1.2.840.9,normal,dr-a,2026-01-02", // 4 the image's key wins
		",ACC2,1.2.840.8,normal,dr-a,2026-01-02",      // 5 accession before study
	}, "\n") + "\n"
	rows, bad, err := ParseLabels(strings.NewReader(in), "csv")
	if err != nil || len(bad) != 0 {
		t.Fatal(err, bad)
	}
	want := []struct {
		key, value string
		study      bool
	}{{"accession_number", "ACC1", true}, {"study_instance_uid", "1.2.840.9", true}, {"file", "a.png", false}, {"accession_number", "ACC2", true}}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v", rows)
	}
	for i, w := range want {
		if r := rows[i]; r.Key != w.key || r.KeyValue != w.value || r.StudyLevel() != w.study {
			t.Errorf("row %d = %s %q study %v, want %s %q study %v", r.Line, r.Key, r.KeyValue, r.StudyLevel(), w.key, w.value, w.study)
		}
	}
	if rows[0].Finding != "pneumonia" {
		t.Errorf("finding = %q", rows[0].Finding)
	}
	// A header with only a study key is a labels file.
	if _, _, err := ParseLabels(strings.NewReader("accession_number,label,reader,time\n"), "csv"); err != nil {
		t.Errorf("accession-only header: %v", err)
	}
}

// An exported worklist with a label column added imports as it is: the
// reader and time come from the defaults, unanswered rows are passed over,
// and a bad row still names its line.
func TestParseLabelsWithWorklistDefaults(t *testing.T) {
	in := strings.Join([]string{
		"query_id,instance_id,file,sop_instance_uid,study_instance_uid,accession_number,score,threshold,decision,uncertainty,model_version,heatmap,strategy,reason,asked_at,label",
		`1,1.2.1,/in/a.dcm,1.2.1,1.2,ACC1,0.5,0.6,normal,,m1,,hybrid,"boundary rank 1 (score 0.5, threshold 0.6)",2026-01-02T10:00:00Z,abnormal: effusion`,
		`2,1.2.2,/in/b.dcm,1.2.2,1.3,ACC2,0.7,0.6,abnormal,,m1,,hybrid,r,2026-01-02T10:00:00Z,normal`,
		`3,1.2.3,/in/c.dcm,1.2.3,1.4,ACC3,0.7,0.6,abnormal,,m1,,hybrid,r,2026-01-02T10:00:00Z,`,
		`4,1.2.4,/in/d.dcm,1.2.4,1.5,ACC4,0.7,0.6,abnormal,,m1,,hybrid,r,2026-01-02T10:00:00Z,perhaps`,
	}, "\n") + "\n"
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	// Without defaults every row is refused, first for want of a reader.
	_, bad, err := ParseLabels(strings.NewReader(in), "csv")
	if err != nil || len(bad) != 4 || !errors.Is(bad[0], ErrNoReader) {
		t.Fatalf("strict: %v %v", bad, err)
	}
	p, err := ParseLabelsWith(strings.NewReader(in), "csv", LabelDefaults{Reader: "dr-a", Time: now, SkipUnanswered: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rows) != 2 || p.Rows[0].Key != "sop_instance_uid" || p.Rows[0].KeyValue != "1.2.1" || p.Rows[0].Reader != "dr-a" ||
		!p.Rows[0].Time.Equal(now) || p.Rows[0].Finding != "effusion" || p.Rows[1].Value != Normal {
		t.Fatalf("rows %+v", p.Rows)
	}
	if len(p.Unanswered) != 1 || p.Unanswered[0] != 4 {
		t.Fatalf("unanswered %v", p.Unanswered)
	}
	if len(p.Bad) != 1 || p.Bad[0].Line != 5 || !errors.Is(p.Bad[0], ErrBadLabel) {
		t.Fatalf("bad %v", p.Bad)
	}
	// A row's own reader and time win over the defaults.
	own := "sop_instance_uid,label,reader,time\n1.2.1,normal,dr-b,2026-01-02\n"
	p, err = ParseLabelsWith(strings.NewReader(own), "csv", LabelDefaults{Reader: "dr-a", Time: now})
	if err != nil || len(p.Rows) != 1 || p.Rows[0].Reader != "dr-b" || p.Rows[0].Time.Equal(now) {
		t.Fatalf("own reader and time: %+v %v", p.Rows, err)
	}
	// Without SkipUnanswered an empty label is a bad label, by line.
	p, _ = ParseLabelsWith(strings.NewReader(in), "csv", LabelDefaults{Reader: "dr-a", Time: now})
	if len(p.Bad) != 2 || p.Bad[0].Line != 4 || !errors.Is(p.Bad[0], ErrBadLabel) {
		t.Fatalf("empty label kept: %v", p.Bad)
	}
}
