package dicomout

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

// outputCase is one source and the outputs made of it, written to files.
type outputCase struct {
	name, source string
	src          Source
	rep          sentinel.Report
	sr, sc       string // paths
	film         sentinel.Image
}

// makeOutputs makes a report (with a predecessor for the rich source) and
// a heatmap of a rich synthetic source, a phantom, and real films when
// ../shared has them.
func makeOutputs(t *testing.T) []outputCase {
	t.Helper()
	dir := t.TempDir()
	sources := map[string]string{
		"rich":    writeRichSource(t, dir, nil),
		"phantom": writePhantom(t, dir, 256),
	}
	var real []string
	if files, _ := filepath.Glob(filepath.Join(cxr8Dir, "*.dcm")); len(files) > 0 {
		real = cxr8Files(t)
	} else {
		t.Logf("%s not found: real films not tested", cxr8Dir)
	}
	for _, f := range real {
		sources[filepath.Base(f)] = f
	}
	var out []outputCase
	for name, path := range sources {
		src, err := ReadSource(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, film, err := dicomio.Load(path, dicomio.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rep := testReport(src)
		var pred *Reference
		if name == "rich" {
			rep.Revision = 2
			rep.Supersedes = &sentinel.ReportRef{Revision: 1, ModelVersion: "m20260101-1"}
			p := ReportReference(src, "m20260101-1", 1)
			pred = &p
		}
		sr, err := StructuredReport(src, rep, pred, testNow)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sc, err := SecondaryCapture(src, rep, film, blob(32, 0.4, 0.5, 0.3), 0.5, testNow)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sub := filepath.Join(dir, strings.TrimSuffix(name, ".dcm"))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		out = append(out, outputCase{name: name, source: path, src: src, rep: rep, film: film,
			sr: writeObject(t, sub, "sr.dcm", sr), sc: writeObject(t, sub, "sc.dcm", sc)})
	}
	slices.SortFunc(out, func(a, b outputCase) int { return strings.Compare(a.name, b.name) })
	return out
}

func TestOutputsCopyPatientAndStudy(t *testing.T) {
	for _, c := range makeOutputs(t) {
		for _, path := range []string{c.sr, c.sc} {
			got, err := ReadSource(path)
			if err != nil {
				t.Fatal(err)
			}
			w := c.src
			if got.PatientName != w.PatientName || got.PatientID != w.PatientID || got.IssuerOfPatientID != w.IssuerOfPatientID ||
				got.PatientBirthDate != w.PatientBirthDate || got.PatientSex != w.PatientSex ||
				got.StudyInstanceUID != w.StudyInstanceUID || got.StudyDate != w.StudyDate || got.StudyTime != w.StudyTime ||
				got.ReferringPhysicianName != w.ReferringPhysicianName || got.StudyID != w.StudyID ||
				got.AccessionNumber != w.AccessionNumber {
				t.Errorf("%s %s: patient or study not copied exactly: %v", c.name, filepath.Base(path), diffFields(got, w))
			}
			wantCharset := ""
			if needsCharset(w) {
				wantCharset = w.SpecificCharacterSet
			}
			if got.SpecificCharacterSet != wantCharset {
				t.Errorf("%s: Specific Character Set %q, want %q", c.name, got.SpecificCharacterSet, wantCharset)
			}
			if !IsOwnOutput(got) {
				t.Errorf("%s %s: not recognised as Sentinel's own", c.name, filepath.Base(path))
			}
		}
		if IsOwnOutput(c.src) {
			t.Errorf("%s: the source is taken for Sentinel's own output", c.name)
		}
	}
	if !needsCharset(richSource()) {
		t.Fatal("the rich source does not exercise the character set")
	}
}

// dciodvfyExpected are the warnings dciodvfy gives that the outputs keep on
// purpose: the private coding scheme is not in its list of designators; a
// source without Study Date, Time or ID (the real films have none) gives
// outputs without them, as copying the study demands; and a source that
// names neither its body part nor its laterality (the phantom) gives a
// heatmap whose Laterality is empty, as unknown.
var dciodvfyExpected = []*regexp.Regexp{
	regexp.MustCompile(`^Warning - Unrecognized defined term <99SENTINEL> for value 1 of attribute <Coding Scheme Designator>$`),
	regexp.MustCompile(`^Warning - Missing attribute or value that would be needed to build DICOMDIR - (Study Date|Study Time|Study ID)$`),
	regexp.MustCompile(`^Warning - is only permitted to be empty when actually unknown; .* - attribute <Laterality>$`),
}

func TestDciodvfy(t *testing.T) {
	bin := tool(t, "dciodvfy")
	seen := map[string]int{}
	for _, c := range makeOutputs(t) {
		for _, path := range []string{c.sr, c.sc} {
			out, _ := exec.Command(bin, path).CombinedOutput()
			for _, line := range strings.Split(string(out), "\n") {
				line = strings.TrimSpace(line)
				switch {
				case strings.HasPrefix(line, "Error"):
					t.Errorf("%s %s: %s", c.name, filepath.Base(path), line)
				case strings.HasPrefix(line, "Warning"):
					seen[line]++
					if !slices.ContainsFunc(dciodvfyExpected, func(r *regexp.Regexp) bool { return r.MatchString(line) }) {
						t.Errorf("%s %s: unexpected %s", c.name, filepath.Base(path), line)
					}
				}
			}
		}
	}
	for line, n := range seen {
		t.Logf("%d× %s", n, line)
	}
}

func TestDcmdump(t *testing.T) {
	bin := tool(t, "dcmdump")
	for _, c := range makeOutputs(t) {
		for _, path := range []string{c.sr, c.sc} {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, "-M", path)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("%s %s: %v %s", c.name, filepath.Base(path), err, stderr.String())
			}
			if s := stdout.String(); strings.Contains(s, "W: ") || strings.Contains(s, "E: ") || strings.Contains(s, "ascending") {
				t.Errorf("%s %s: dcmdump complains", c.name, filepath.Base(path))
			}
		}
	}
}

// pydicomCheck reads both outputs with pydicom and prints what it found
// as JSON.
const pydicomCheck = `
import json, sys, pydicom
sr = pydicom.dcmread(sys.argv[1])
sc = pydicom.dcmread(sys.argv[2])
nums, finding, comment = {}, None, None
def walk(items):
    global finding, comment
    for it in items:
        name = it.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in it else ""
        if it.ValueType == "NUM":
            nums[name] = float(it.MeasuredValueSequence[0].FloatingPointValue)
        elif it.ValueType == "CODE" and name == "121071":
            finding = it.ConceptCodeSequence[0].CodeValue
        elif it.ValueType == "TEXT" and name == "121106":
            comment = it.TextValue
        if "ContentSequence" in it:
            walk(it.ContentSequence)
walk(sr.ContentSequence)
print(json.dumps({
    "nums": nums, "finding": finding, "comment": comment,
    "sr_study": sr.StudyInstanceUID, "sc_study": sc.StudyInstanceUID,
    "shape": list(sc.pixel_array.shape),
    "predecessors": len(sr.get("PredecessorDocumentsSequence", [])),
}))
`

func TestPydicom(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import pydicom").Run(); err != nil {
		t.Skip("pydicom not installed for /usr/bin/python3 (Debian: python3-pydicom): skipping")
	}
	for _, c := range makeOutputs(t) {
		out, err := exec.Command(python, "-c", pydicomCheck, c.sr, c.sc).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, out)
		}
		var got struct {
			Nums             map[string]float64
			Finding, Comment string
			SRStudy          string `json:"sr_study"`
			SCStudy          string `json:"sc_study"`
			Shape            []int
			Predecessors     int
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, out)
		}
		if got.Nums["anomaly-score"] != c.rep.Score || got.Nums["threshold"] != c.rep.Threshold ||
			got.Nums["uncertainty"] != *c.rep.Uncertainty {
			t.Errorf("%s: pydicom reads %v", c.name, got.Nums)
		}
		if got.Finding != "flagged" || got.Comment != Disclaimer {
			t.Errorf("%s: finding %q comment %q", c.name, got.Finding, got.Comment)
		}
		if got.SRStudy != c.src.StudyInstanceUID || got.SCStudy != c.src.StudyInstanceUID {
			t.Errorf("%s: studies %s %s", c.name, got.SRStudy, got.SCStudy)
		}
		if want := []int{c.film.Height, c.film.Width, 3}; !slices.Equal(got.Shape, want) {
			t.Errorf("%s: pixel_array shape %v, want %v", c.name, got.Shape, want)
		}
		if want := map[bool]int{true: 1, false: 0}[c.rep.Supersedes != nil]; got.Predecessors != want {
			t.Errorf("%s: %d predecessors, want %d", c.name, got.Predecessors, want)
		}
	}
}
