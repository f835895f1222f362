package dicomout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

func TestReadSourceCopiesAttributes(t *testing.T) {
	src, err := ReadSource(writeRichSource(t, t.TempDir(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := richSource(); src != want {
		t.Fatalf("read\n%#v\nwant\n%#v\n(fields: %+v)", src, want, diffFields(src, want))
	}
}

// diffFields names the fields in which two sources differ, without their
// values.
func diffFields(a, b Source) []string {
	var out []string
	for _, f := range sourceFields {
		if *f.field(&a) != *f.field(&b) {
			out = append(out, tagName(f.tag))
		}
	}
	return out
}

func TestReadSourcePhantom(t *testing.T) {
	src, err := ReadSource(writePhantom(t, t.TempDir(), 32))
	if err != nil {
		t.Fatal(err)
	}
	if src.PatientID != "PHANTOM-17" || src.PatientName != "Phantom^Synthetic" || src.AccessionNumber != "A17" ||
		src.StudyInstanceUID != "2.25.1001" || src.SeriesInstanceUID != "2.25.1002" ||
		src.SOPInstanceUID != "2.25.1003" || src.SOPClassUID != SOPClassSecondaryCapture || src.Modality != "DX" ||
		src.PatientOrientation != `L\F` || src.InstanceNumber != "1" || src.StudyDate != "" {
		t.Fatalf("read %+v", diffFields(src, Source{}))
	}
}

// TestReadSourceReadsHeaderOnly gives ReadSource files whose pixel data
// could not be read (its length runs 1 GiB past the end of the file), and
// whose attributes lie past a large private element, so that the first
// read does not reach them.
func TestReadSourceReadsHeaderOnly(t *testing.T) {
	dir := t.TempDir()
	path := writeRichSource(t, dir, func(d *dataset) {
		d.text(0x00090010, "LO", "ACME PRIVATE")
		d.binary(0x00091001, "OB", make([]byte, 300<<10))
	})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Cut the file inside the pixel data and make its length huge.
	i := bytes.Index(b, []byte{0xE0, 0x7F, 0x10, 0x00, 'O', 'W', 0, 0})
	if i < 0 {
		t.Fatal("no pixel data in the source")
	}
	binary.LittleEndian.PutUint32(b[i+8:], 1<<30)
	if err := os.WriteFile(path, b[:i+100], 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := ReadSource(path)
	if err != nil {
		t.Fatal(err)
	}
	if src != richSource() {
		t.Fatalf("fields read wrong: %v", diffFields(src, richSource()))
	}
	if _, _, err := dicomio.Load(path, dicomio.Options{}); err == nil {
		t.Fatal("the cut file decodes: the test does not show that pixels are not read")
	}
}

func TestReadSourceFallsBackToFileMeta(t *testing.T) {
	path := writeRichSource(t, t.TempDir(), func(d *dataset) {
		d.elems = deleteTags(d.elems, 0x00080016, 0x00080018)
	})
	src, err := ReadSource(path)
	if err != nil {
		t.Fatal(err)
	}
	if src.SOPClassUID != testDXClass || src.SOPInstanceUID != testSOPUID {
		t.Fatalf("SOP Class %q Instance %q, want the file meta's", src.SOPClassUID, src.SOPInstanceUID)
	}
}

func deleteTags(elems []element, tags ...uint32) []element {
	var out []element
	for _, e := range elems {
		keep := true
		for _, t := range tags {
			keep = keep && e.tag != t
		}
		if keep {
			out = append(out, e)
		}
	}
	return out
}

func TestReadSourceRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	png := filepath.Join(dir, "x.png")
	if err := os.WriteFile(png, []byte("\x89PNG\r\n\x1a\n0000000000000000"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSource(png); !errors.Is(err, sentinel.ErrNotDICOM) {
		t.Errorf("PNG: %v, want ErrNotDICOM", err)
	}
	if _, err := ReadSource(filepath.Join(dir, "missing.dcm")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadSource(dir); err == nil {
		t.Error("a folder was read")
	}
}

// TestReadSourceCorpus reads every file of the conformance corpus: none
// may panic, and where the decoder identifies a file, ReadSource must
// agree with it.
func TestReadSourceCorpus(t *testing.T) {
	const corpus = "../../shared/data/dicom"
	var files []string
	_ = filepath.WalkDir(corpus, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || filepath.Dir(p) == corpus {
			return nil
		}
		// Large files cost the decoder seconds under the race detector
		// and add nothing to a header test.
		if info, err := d.Info(); err == nil && info.Size() < 128<<10 {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Skip(corpus + " not found: skipping the corpus test")
	}
	agreed := 0
	for _, f := range files {
		src, err := ReadSource(f)
		inst, _, lerr := dicomio.Load(f, dicomio.Options{})
		if err != nil || lerr != nil || inst.StudyInstanceUID == "" || strings.HasPrefix(inst.ID, "sha256:") {
			continue
		}
		if src.SOPInstanceUID != inst.SOPInstanceUID || src.StudyInstanceUID != inst.StudyInstanceUID ||
			src.SeriesInstanceUID != inst.SeriesInstanceUID || src.Modality != inst.Modality {
			t.Errorf("%s: ReadSource %v, decoder %s %s %s %s", f, src, inst.SOPInstanceUID, inst.StudyInstanceUID, inst.SeriesInstanceUID, inst.Modality)
		}
		agreed++
	}
	if agreed < 50 {
		t.Errorf("only %d corpus files compared", agreed)
	}
	t.Logf("%d corpus files agree with the decoder", agreed)
}

func TestSourceAndObjectRedact(t *testing.T) {
	src := richSource()
	obj := Object{SOPInstanceUID: "2.25.9", Bytes: []byte(src.PatientName + src.PatientID)}
	secrets := []string{src.PatientName, src.PatientID, src.IssuerOfPatientID, src.PatientBirthDate, "PID-4711", "Jürgen", "J\xfcrgen"}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, src), fmt.Sprintf(verb, &src), fmt.Sprintf(verb, obj))
	}
	outs = append(outs, src.String(), fmt.Sprint(src), fmt.Sprintln(src, obj))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("output", "source", src, "object", obj, slog.Any("ptr", &src))
		outs = append(outs, buf.String())
		if !strings.Contains(buf.String(), testSOPUID) {
			t.Errorf("log line lacks the SOP Instance UID: %s", buf.String())
		}
	}
	for _, out := range outs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("%q leaks %q", out, s)
			}
		}
	}
}
