package agent

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LabelRow is one row of a research labels file (columns file, finding,
// and optionally split and patient; others are ignored), as in NIH
// ChestX-ray8 or PneumoniaMNIST exports.
type LabelRow struct {
	File    string
	Finding string
	Split   string
	// Patient is the row's patient key, "" without a patient column.
	Patient string
}

// Normal reports whether the row's finding is "normal"; any other finding
// counts as abnormal.
func (r LabelRow) Normal() bool { return strings.EqualFold(r.Finding, "normal") }

// ReadLabels reads a labels CSV with a header naming at least the columns
// file and finding (split and patient are optional).
func ReadLabels(path string) ([]LabelRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("labels %s: header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	fi, okF := col["file"]
	ci, okC := col["finding"]
	if !okF || !okC {
		return nil, fmt.Errorf("labels %s: header must name the columns file and finding, got %v", path, header)
	}
	si, okS := col["split"]
	pi, okP := col["patient"]
	var rows []LabelRow
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("labels %s: line %d: %w", path, line, err)
		}
		if len(rec) <= max(fi, ci) || (okS && len(rec) <= si) || (okP && len(rec) <= pi) {
			return nil, fmt.Errorf("labels %s: line %d: %d columns, want at least %d", path, line, len(rec), len(header))
		}
		row := LabelRow{File: rec[fi], Finding: strings.TrimSpace(rec[ci])}
		if okS {
			row.Split = strings.TrimSpace(rec[si])
		}
		if okP {
			row.Patient = strings.TrimSpace(rec[pi])
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// NormalFiles lists the training images: with a labels file, the rows of
// the given split (all rows when split is empty) whose finding is normal,
// joined to dir; without one, every image file under dir.
func NormalFiles(dir, labelsPath, split string) ([]string, error) {
	if labelsPath == "" {
		return ListFiles(dir)
	}
	rows, err := ReadLabels(labelsPath)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		if (split == "" || r.Split == split) && r.Normal() {
			out = append(out, filepath.Join(dir, filepath.FromSlash(r.File)))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("labels %s: no normal rows in split %q", labelsPath, split)
	}
	return out, nil
}

// ListFiles returns every file under dir that the agent would take, sorted:
// not hidden or temporary files, DICOMDIR or CSV label files kept beside
// the images. A symbolic link to a file counts as the file (a research
// folder is often links into an archive); links to folders are not
// followed.
func ListFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && skipName(d.Name()) {
				return fs.SkipDir
			}
			return nil
		}
		if !skipName(d.Name()) && !strings.EqualFold(filepath.Ext(p), ".csv") && isFile(p, d) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(out)
	return out, nil
}

// isFile reports whether a walked entry is a regular file or a symbolic
// link to one, as the agent takes both (the watcher's events see through
// links too).
func isFile(p string, d fs.DirEntry) bool {
	if d.Type().IsRegular() {
		return true
	}
	if d.Type()&fs.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// ReadPatients reads the patient of each file from a CSV whose header names
// the columns file and patient (a research labels file does), keyed by the
// file's base name: PNG and JPEG files carry no Patient ID, and without one
// the learning loop cannot keep a patient's films together. It returns an
// empty map when the file has no patient column, and an error when one
// name is given two patients.
func ReadPatients(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("patients: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("patients %s: header: %w", path, err)
	}
	fi, pi := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "file":
			fi = i
		case "patient":
			pi = i
		}
	}
	out := map[string]string{}
	if fi < 0 || pi < 0 {
		return out, nil
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("patients %s: line %d: %w", path, line, err)
		}
		if len(rec) <= max(fi, pi) {
			continue
		}
		name, p := filepath.Base(strings.TrimSpace(rec[fi])), strings.TrimSpace(rec[pi])
		if name == "" || p == "" {
			continue
		}
		if q, ok := out[name]; ok && q != p {
			return nil, fmt.Errorf("patients %s: line %d: %s is given two patients", path, line, name)
		}
		out[name] = p
	}
}
