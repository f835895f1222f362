package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/pngenc"
	"github.com/sentinel-pacs/sentinel/store"
)

// SafeName turns a UID or other identifier from a file into one path
// element that cannot leave its folder: only letters, digits, '.', '-' and
// '_' are kept, names made only of dots are replaced, and long names are
// shortened with a digest so that distinct inputs stay distinct.
func SafeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if strings.Trim(out, ".") == "" {
		out = "_" + out
	}
	if strings.HasPrefix(out, ".") {
		out = "_" + out
	}
	if len(out) > 96 || out != s {
		if len(out) > 96 {
			out = out[:80]
		}
		if out != s {
			sum := sha256.Sum256([]byte(s))
			out += "-" + hex.EncodeToString(sum[:6])
		}
	}
	return out
}

// reportPaths returns where the report and heatmap of an instance go:
// <reports>/<study>/<instance>.json and .heatmap.png.
func reportPaths(dir string, rep sentinel.Report) (string, string) {
	study := rep.StudyInstanceUID
	if study == "" {
		study = "no-study"
	}
	id := rep.SOPInstanceUID
	if id == "" {
		id = rep.InstanceID
	}
	base := filepath.Join(dir, SafeName(study), SafeName(id))
	return base + ".json", base + ".heatmap.png"
}

// writeReport writes an instance's JSON report and, when the score has a
// heatmap, a PNG of the image with the heatmap over it. Both are written
// atomically, so a reader never sees half a report.
func writeReport(dir string, rep sentinel.Report, img sentinel.Image, heat sentinel.Image, start time.Time) (string, string, error) {
	jsonPath, heatPath := reportPaths(dir, rep)
	heatPath, _, err := writeReportAt(jsonPath, heatPath, rep, img, heat, start)
	if err != nil {
		return "", "", err
	}
	return jsonPath, heatPath, nil
}

// pendingSuffix ends the name of a report or heatmap written but not yet
// put in place: <dir>/.<name>.pending stands for <dir>/<name>.
const pendingSuffix = ".pending"

func pendingPath(final string) string {
	return filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+pendingSuffix)
}

// finalPath is the inverse of pendingPath; ok is false for other names.
func finalPath(pending string) (string, bool) {
	base := filepath.Base(pending)
	if !strings.HasPrefix(base, ".") || !strings.HasSuffix(base, pendingSuffix) || len(base) <= 1+len(pendingSuffix) {
		return "", false
	}
	return filepath.Join(filepath.Dir(pending), strings.TrimSuffix(base[1:], pendingSuffix)), true
}

// stagedReport is an instance's first report and heatmap written under
// their pending names, to be put in place (commit) once the instance is
// recorded, or removed (discard) if it is not.
type stagedReport struct {
	report, heatmap string // the final paths; heatmap is "" without one
	body            []byte // the report as written
}

// stageReport writes an instance's report and heatmap under their pending
// names, synced.
func stageReport(dir string, rep sentinel.Report, img, heat sentinel.Image, start time.Time) (stagedReport, error) {
	jsonPath, heatPath := reportPaths(dir, rep)
	if len(heat.Pix) > 0 {
		// The report names its heatmap by its final name.
		rep.Heatmap = filepath.Base(heatPath)
	} else {
		heatPath = ""
	}
	st := stagedReport{report: jsonPath, heatmap: heatPath}
	if err := os.MkdirAll(filepath.Dir(jsonPath), dirMode); err != nil {
		return st, fmt.Errorf("report %s: %w", rep.InstanceID, err)
	}
	if heatPath != "" {
		var buf bytes.Buffer
		if err := pngenc.Encode(&buf, overlay(img, heat, rep.Score, rep.Threshold)); err != nil {
			return st, fmt.Errorf("heatmap %s: %w", rep.InstanceID, err)
		}
		if err := writeAtomic(pendingPath(heatPath), buf.Bytes()); err != nil {
			return st, fmt.Errorf("heatmap %s: %w", rep.InstanceID, err)
		}
	}
	b, err := reportJSON(rep, start)
	if err == nil {
		err = writeAtomic(pendingPath(jsonPath), b)
	}
	if err != nil {
		st.discard()
		return st, fmt.Errorf("report %s: %w", rep.InstanceID, err)
	}
	st.body = b
	return st, nil
}

// commit puts the staged heatmap, then the report, in place.
func (s stagedReport) commit() error {
	for _, p := range []string{s.heatmap, s.report} {
		if p == "" {
			continue
		}
		if err := os.Rename(pendingPath(p), p); err != nil {
			return err
		}
	}
	return nil
}

// discard removes whatever was staged.
func (s stagedReport) discard() {
	for _, p := range []string{s.heatmap, s.report} {
		if p != "" {
			os.Remove(pendingPath(p))
		}
	}
}

func reportJSON(rep sentinel.Report, start time.Time) ([]byte, error) {
	rep.CreatedAt = time.Now().UTC()
	rep.Timings.TotalMS = ms(time.Since(start))
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// revisionPaths returns where revision n of an instance's report and its
// heatmap are kept: <uid>.r<n>.json and <uid>.r<n>.heatmap.png.
func revisionPaths(dir string, rep sentinel.Report, n int) (string, string) {
	j, _ := reportPaths(dir, rep)
	base := strings.TrimSuffix(j, ".json")
	return fmt.Sprintf("%s.r%d.json", base, n), fmt.Sprintf("%s.r%d.heatmap.png", base, n)
}

// writtenRevision is where writeRevision put a revision, and what it wrote.
type writtenRevision struct {
	report, heatmap string // the revision's files; heatmap is "" without one
	previous        string // where the superseded revision now is
	body            []byte // the report as written
}

// writeRevision writes revision rep.Revision (2 or more) of an instance's
// report as <uid>.r<n>.json with its own heatmap. The first revision's bytes
// are kept first as <uid>.r1.json, so every revision stays on disk as
// written; its heatmap keeps its name. <uid>.json, the latest report, is
// replaced only once the revision is recorded (see latestReport).
func writeRevision(dir string, rep sentinel.Report, img, heat sentinel.Image, start time.Time) (writtenRevision, error) {
	var w writtenRevision
	latest, _ := reportPaths(dir, rep)
	w.previous, _ = revisionPaths(dir, rep, rep.Revision-1)
	if rep.Revision == 2 && !exists(w.previous) {
		if err := copyFile(latest, w.previous, fileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return w, fmt.Errorf("report %s: keep revision 1: %w", rep.InstanceID, err)
		}
	}
	if rep.Supersedes != nil {
		rep.Supersedes.Report = filepath.Base(w.previous)
	}
	var err error
	w.report, w.heatmap = revisionPaths(dir, rep, rep.Revision)
	w.heatmap, w.body, err = writeReportAt(w.report, w.heatmap, rep, img, heat, start)
	return w, err
}

// latestReport makes <uid>.json hold the same bytes as revision rev of the
// report at path (<uid>.r<rev>.json), unless it already does; it reports
// whether it wrote.
func latestReport(path string, rev int) (bool, error) {
	suffix := fmt.Sprintf(".r%d.json", rev)
	if !strings.HasSuffix(path, suffix) {
		return false, fmt.Errorf("report %s is not revision %d", path, rev)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	latest := strings.TrimSuffix(path, suffix) + ".json"
	if got, err := os.ReadFile(latest); err == nil && bytes.Equal(got, want) {
		return false, nil
	}
	return true, writeAtomic(latest, want)
}

// writeReportAt writes a report to jsonPath and its heatmap, when the score
// has one, to heatPath, and returns the heatmap's path ("" without one) and
// the report as written.
func writeReportAt(jsonPath, heatPath string, rep sentinel.Report, img sentinel.Image, heat sentinel.Image, start time.Time) (string, []byte, error) {
	if err := os.MkdirAll(filepath.Dir(jsonPath), dirMode); err != nil {
		return "", nil, fmt.Errorf("report %s: %w", rep.InstanceID, err)
	}
	if len(heat.Pix) > 0 {
		var buf bytes.Buffer
		if err := pngenc.Encode(&buf, overlay(img, heat, rep.Score, rep.Threshold)); err != nil {
			return "", nil, fmt.Errorf("heatmap %s: %w", rep.InstanceID, err)
		}
		if err := writeAtomic(heatPath, buf.Bytes()); err != nil {
			return "", nil, fmt.Errorf("heatmap %s: %w", rep.InstanceID, err)
		}
		rep.Heatmap = filepath.Base(heatPath)
	} else {
		heatPath = ""
	}
	b, err := reportJSON(rep, start)
	if err == nil {
		err = writeAtomic(jsonPath, b)
	}
	if err != nil {
		return "", nil, fmt.Errorf("report %s: %w", rep.InstanceID, err)
	}
	return heatPath, b, nil
}

// File modes of what Sentinel writes: reports, heatmaps and quarantined
// files are readable by the service's group (a PACS bridge, a backup
// agent), never by others; the database is the owner's alone (see
// store.DatabaseMode).
const (
	fileMode = 0o640
	dirMode  = 0o750
)

// tmpSuffix ends the names of files being written by writeAtomic; one left
// by a crash is removed at the next start (see mendReports).
const tmpSuffix = ".tmp"

// writeAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*"+tmpSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	merr := f.Chmod(fileMode)
	serr := f.Sync()
	cerr := f.Close()
	if err := firstErr(werr, merr, serr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// quarantine moves (or, with copyOnly, copies) a failed file into dir with a
// <name>.reason.txt beside it, never overwriting an earlier one, and
// returns the quarantined path. A file whose size or modification time is
// no longer what was taken is left alone (an error wrapping errNotReady):
// its writer is still at work. A symbolic link is moved as a link, never
// copied through.
func quarantine(dir string, file store.File, cause error, copyOnly bool) (string, error) {
	path := file.Path
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return "", err
	}
	base := SafeName(filepath.Base(path))
	dst := filepath.Join(dir, base)
	for i := 1; exists(dst) || exists(dst+".reason.txt"); i++ {
		dst = filepath.Join(dir, fmt.Sprintf("%s.%d", base, i))
	}
	// The source's name is quoted: a name may hold a newline, and must not
	// forge a line of its own.
	reason := fmt.Sprintf("source: %s\ntime: %s\nreason: %s\n", strconv.Quote(path),
		time.Now().UTC().Format(time.RFC3339), strconv.Quote(cause.Error()))
	fi, err := unchanged(file)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(dst+".reason.txt", []byte(reason)); err != nil {
		return "", err
	}
	if !copyOnly || fi.Mode()&fs.ModeSymlink != 0 {
		if _, err := unchanged(file); err != nil {
			os.Remove(dst + ".reason.txt")
			return "", err
		}
		if err := os.Rename(path, dst); err == nil {
			return dst, nil
		} else if fi.Mode()&fs.ModeSymlink != 0 {
			os.Remove(dst + ".reason.txt")
			return "", err
		}
	}
	// A copy when asked, or when the rename crosses filesystems; the source
	// is removed only once the copy is safely on disk, and only if it did
	// not change meanwhile.
	if err := copyFile(path, dst, fi.Mode().Perm()); err != nil {
		os.Remove(dst + ".reason.txt")
		return "", err
	}
	if !copyOnly {
		if _, err := unchanged(file); err != nil {
			os.Remove(dst)
			os.Remove(dst + ".reason.txt")
			return "", err
		}
		if err := os.Remove(path); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// unchanged returns the file's current information, or an error wrapping
// errNotReady if its size or modification time is not what was taken.
func unchanged(file store.File) (fs.FileInfo, error) {
	fi, err := os.Lstat(file.Path)
	if err != nil {
		return nil, err
	}
	if fi.Size() != file.Size || fi.ModTime().UnixNano() != file.ModTimeNS {
		return nil, fmt.Errorf("%w: %s changed since it was taken; left in place", errNotReady, file.Path)
	}
	return fi, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// copyFile copies src to a new file dst with the given mode, synced. A
// symbolic link at src is refused.
func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	// OpenFile's mode is narrowed by the umask; the copy keeps the source's.
	merr := out.Chmod(mode)
	serr := out.Sync()
	if err := firstErr(cerr, merr, serr, out.Close()); err != nil {
		os.Remove(dst)
		return err
	}
	return nil
}
