package fixturegen

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

// testdata is the module's top-level testdata folder.
var testdata = filepath.Join("..", "..", "testdata")

func fixturePath(f Fixture) string { return filepath.Join(testdata, "dicom", f.File) }

// The committed files this package encodes are the ones it encodes now:
// otherwise `go run ./testdata/gen` has not been run since a change. A
// deflated data set is compared after inflating, so that another Go
// release's compressor does not count as a change.
func TestCommittedFixturesUpToDate(t *testing.T) {
	for _, f := range Fixtures() {
		if f.Tool != "go" {
			continue
		}
		want, err := Encode(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(fixturePath(f))
		if err != nil {
			t.Fatalf("%v (run `go run ./testdata/gen` from the module root)", err)
		}
		if f.Syntax == DeflatedLE {
			got, want = inflateBody(t, got), inflateBody(t, want)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/dicom/%s differs from what the generator writes (%d bytes, want %d): run `go run ./testdata/gen`", f.File, len(got), len(want))
		}
	}
	dir := t.TempDir()
	if err := writeLabels(filepath.Join(dir, "labels.csv")); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "labels.csv"))
	got, err := os.ReadFile(filepath.Join(testdata, "labels.csv"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("testdata/labels.csv differs from what the generator writes (%v): run `go run ./testdata/gen`", err)
	}
}

// inflateBody returns a deflated file's preamble and meta followed by its
// inflated data set.
func inflateBody(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) < 144 {
		t.Fatalf("deflated file of %d bytes", len(b))
	}
	metaEnd := 132 + 12 + int(binary.LittleEndian.Uint32(b[140:144]))
	body, err := io.ReadAll(flate.NewReader(bytes.NewReader(b[metaEnd:])))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return append(b[:metaEnd:metaEnd], body...)
}

// Two runs of the generator write the same bytes.
func TestWriteIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		res, err := Write(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(Fixtures())+1 {
			t.Fatalf("%d results for %d fixtures and the labels", len(res), len(Fixtures()))
		}
	}
	for _, f := range append(Fixtures(), Fixture{File: "../labels.csv"}) {
		x, errA := os.ReadFile(filepath.Join(a, "dicom", f.File))
		y, errB := os.ReadFile(filepath.Join(b, "dicom", f.File))
		if f.Tool != "go" && f.Tool != "" && errA != nil {
			continue // its tool is not installed
		}
		if errA != nil || errB != nil || !bytes.Equal(x, y) {
			t.Errorf("%s: two runs differ (%v, %v)", f.File, errA, errB)
		}
	}
}

// Every committed fixture decodes as the generator drew it: the header's
// identity and placement, the size and photometric interpretation, and
// every stored value (all the syntaxes are lossless). Broken files give
// an error, not a panic.
func TestDecodeFixtures(t *testing.T) {
	for _, f := range Fixtures() {
		t.Run(f.File, func(t *testing.T) {
			path := fixturePath(f)
			inst, img, err := dicomio.Load(path, dicomio.Options{})
			if f.Role == Broken {
				if err == nil {
					t.Fatalf("loaded a broken file")
				}
				if _, err := dicomio.DecodeStored(path, dicomio.Options{}, -1); err == nil {
					t.Fatalf("DecodeStored read a broken file")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := sentinel.Placement{AccessionNumber: f.AccessionNumber, StudyDate: f.StudyDate, StudyTime: f.StudyTime,
				ViewPosition: f.ViewPosition, BodyPartExamined: f.BodyPart, SeriesNumber: f.SeriesNumber, InstanceNumber: f.InstanceNumber}
			switch {
			case inst.Format != sentinel.FormatDICOM || inst.TransferSyntaxUID != f.Syntax:
				t.Errorf("format %s, transfer syntax %s; want DICOM, %s", inst.Format, inst.TransferSyntaxUID, f.Syntax)
			case inst.Rows != f.Size || inst.Columns != f.Size || inst.Photometric != f.Photometric:
				t.Errorf("%d×%d %s, want %d×%d %s", inst.Columns, inst.Rows, inst.Photometric, f.Size, f.Size, f.Photometric)
			case inst.SOPInstanceUID != f.SOPInstanceUID || inst.StudyInstanceUID != f.StudyInstanceUID ||
				inst.SeriesInstanceUID != f.SeriesUID || inst.SOPClassUID != f.SOPClass || inst.Modality != f.Modality:
				t.Errorf("identity %+v, want %+v", inst, f)
			case inst.Placement != want:
				t.Errorf("placement %+v, want %+v", inst.Placement, want)
			case img.Width == 0 || img.Height == 0:
				t.Errorf("empty display image")
			}
			s, err := dicomio.DecodeStored(path, dicomio.Options{}, -1)
			if err != nil {
				t.Fatal(err)
			}
			pix := Pixels(f)
			if s.Rows != f.Size || s.Columns != f.Size || s.Frames != 1 || s.Samples != 1 || s.Len() != len(pix) {
				t.Fatalf("stored %d×%d, %d frames of %d samples, %d values; want %d×%d, one frame, %d values",
					s.Columns, s.Rows, s.Frames, s.Samples, s.Len(), f.Size, f.Size, len(pix))
			}
			bad := 0
			for i, v := range pix {
				if s.Value(i) != storedValue(f, v) {
					if bad++; bad <= 3 {
						t.Errorf("value %d: %v, want %v", i, s.Value(i), storedValue(f, v))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d values differ", bad, len(pix))
			}
			// A MONOCHROME1 film displays as its MONOCHROME2 twin: the
			// lungs dark, so the display's mean sits below its centre's.
			if f.Role == Film {
				if m := mean(img.Pix); !(m > 0.05 && m < 0.95) {
					t.Errorf("display mean %.3f", m)
				}
			}
		})
	}
}

// storedValue is the number a decoder gives for a generated value: the
// CT slice is signed.
func storedValue(f Fixture, v uint16) float64 {
	if f.Role == OutOfScope {
		return float64(int16(v))
	}
	return float64(v)
}

func mean(p []float32) float64 {
	var s float64
	for _, v := range p {
		s += float64(v)
	}
	return s / float64(len(p))
}

// dcmtk's dcmdump and pydicom (with GDCM for JPEG-LS and JPEG 2000), where
// installed, read each fixture as the generator wrote it; the broken ones
// they refuse.
func TestFixturesAgainstPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs external tools")
	}
	t.Run("dcmdump", func(t *testing.T) {
		if _, err := exec.LookPath("dcmdump"); err != nil {
			t.Skip("dcmdump (dcmtk) is not installed")
		}
		for _, f := range Fixtures() {
			out, err := exec.Command("dcmdump", "-q", "+L", fixturePath(f)).CombinedOutput()
			if f.Role == Broken {
				if f.File == "broken_not_dicom.dcm" && err == nil {
					t.Errorf("%s: dcmdump read it", f.File)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: dcmdump: %v\n%s", f.File, err, out)
				continue
			}
			for _, want := range []string{fmt.Sprintf("US %d ", f.Size), "[" + f.Photometric + "]", "[" + f.AccessionNumber + "]", f.SOPInstanceUID} {
				if !strings.Contains(string(out), want) {
					t.Errorf("%s: dcmdump output lacks %q", f.File, want)
				}
			}
		}
	})
	t.Run("pydicom", func(t *testing.T) {
		py := "/usr/bin/python3"
		if err := exec.Command(py, "-c", "import pydicom, numpy, gdcm").Run(); err != nil {
			t.Skip("python3 with pydicom, numpy and gdcm is not installed")
		}
		const script = `
import hashlib, sys, numpy as np, pydicom
for p in sys.argv[1:]:
    try:
        d = pydicom.dcmread(p)
        a = d.pixel_array
        print(p, a.shape[0], a.shape[1], d.PhotometricInterpretation, hashlib.sha256(a.astype('<i4').tobytes()).hexdigest())
    except Exception as e:
        print(p, 'error', type(e).__name__)
`
		var args []string
		for _, f := range Fixtures() {
			args = append(args, fixturePath(f))
		}
		out, err := exec.Command(py, append([]string{"-c", script}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("pydicom: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != len(args) {
			t.Fatalf("pydicom printed %d lines for %d files:\n%s", len(lines), len(args), out)
		}
		for i, f := range Fixtures() {
			var want string
			if f.Role == Broken {
				want = fixturePath(f) + " error"
			} else {
				var b []byte
				for _, v := range Pixels(f) {
					b = binary.LittleEndian.AppendUint32(b, uint32(int32(storedValue(f, v))))
				}
				sum := sha256.Sum256(b)
				want = fmt.Sprintf("%s %d %d %s %s", fixturePath(f), f.Size, f.Size, f.Photometric, hex.EncodeToString(sum[:]))
			}
			if !strings.HasPrefix(lines[i], want) {
				t.Errorf("pydicom: %q, want %q", lines[i], want)
			}
		}
	})
}

// The command that runs the generator compiles and passes vet: patterns
// like ./... skip testdata folders, so nothing else checks it.
func TestGenCommandVets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet")
	}
	out, err := exec.Command("go", "vet", "../../testdata/gen").CombinedOutput()
	if err != nil {
		t.Fatalf("go vet ./testdata/gen: %v\n%s", err, out)
	}
}
