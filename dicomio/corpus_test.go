package dicomio

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// Shared real data, beside the repository (../shared/data); never copied
// into it.
const (
	cxr8Dir   = "../../shared/data/cxr8"
	corpusDir = "../../shared/data/dicom"
)

// needDir skips the test when the shared data folder is absent.
func needDir(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("../shared/data/%s not found: skipping test on shared data", strings.TrimPrefix(dir, "../../shared/data/"))
	}
}

// meanAbsDiff is the mean absolute difference of two images of one size.
func meanAbsDiff(t *testing.T, a, b sentinel.Image) float64 {
	t.Helper()
	if a.Width != b.Width || a.Height != b.Height {
		t.Fatalf("sizes differ: %dx%d and %dx%d", a.Width, a.Height, b.Width, b.Height)
	}
	var sum float64
	for i := range a.Pix {
		sum += math.Abs(float64(a.Pix[i]) - float64(b.Pix[i]))
	}
	return sum / float64(len(a.Pix))
}

// TestCXR8DICOM checks the 24 chest X-rays in DICOM form: the uncompressed
// ones decode to the image of their PNG (within 1/255 on average, after
// resampling to the PNG's 256×256 the way the PNGs were made), MONOCHROME1
// ones included; the compressed ones are refused as unsupported.
func TestCXR8DICOM(t *testing.T) {
	needDir(t, cxr8Dir)
	files, err := filepath.Glob(filepath.Join(cxr8Dir, "dicom", "*.dcm"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no DICOM files in %s/dicom: %v", cxr8Dir, err)
	}
	var decoded, refused int
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			inst, img, err := Load(path, Options{})
			if !strings.Contains(name, "_explicit_le") {
				if !errors.Is(err, sentinel.ErrUnsupportedTransferSyntax) {
					t.Fatalf("Load: %v, want ErrUnsupportedTransferSyntax", err)
				}
				refused++
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if img.Width != 1024 || img.Height != 1024 || inst.Rows != 1024 || inst.Columns != 1024 {
				t.Errorf("size %dx%d (instance %dx%d), want 1024x1024", img.Width, img.Height, inst.Columns, inst.Rows)
			}
			if inst.ID == "" || inst.ID != inst.SOPInstanceUID || inst.StudyInstanceUID == "" || inst.SeriesInstanceUID == "" {
				t.Errorf("identity incomplete: %+v", inst)
			}
			wantPhoto := "MONOCHROME2"
			if strings.Contains(name, "mono1") {
				wantPhoto = "MONOCHROME1"
			}
			if inst.Photometric != wantPhoto || inst.Modality != "DX" || inst.Format != sentinel.FormatDICOM {
				t.Errorf("photometric %q modality %q format %q", inst.Photometric, inst.Modality, inst.Format)
			}
			_, ref, err := Load(filepath.Join(cxr8Dir, "images", name[:12]+".png"), Options{})
			if err != nil {
				t.Fatalf("Load PNG: %v", err)
			}
			mad := meanAbsDiff(t, Resample(img, ref.Width, ref.Height), ref)
			if mad > 1.0/255 {
				t.Errorf("mean absolute difference from the PNG %.5f, want <= 1/255", mad)
			}
			t.Logf("%s: mean absolute difference from the PNG %.6f", name, mad)
			decoded++
		})
	}
	t.Logf("cxr8: %d decoded, %d refused as unsupported", decoded, refused)
}

// corpusOutcome classifies a Load result.
func corpusOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, sentinel.ErrUnsupportedTransferSyntax), errors.Is(err, sentinel.ErrUnsupported):
		return "unsupported"
	case errors.Is(err, sentinel.ErrNoPixels):
		return "no-pixels"
	case errors.Is(err, sentinel.ErrInvalid):
		return "invalid"
	case errors.Is(err, sentinel.ErrNotDICOM):
		return "not-dicom"
	case errors.Is(err, sentinel.ErrTooLarge):
		return "too-large"
	}
	return "other"
}

// readInventory maps each corpus file to what INVENTORY.tsv says a decoder
// must do with it: decode, no-pixels, fail or either.
func readInventory(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, "INVENTORY.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	expect := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
		f := strings.Split(line, "\t")
		expect[f[0]] = f[len(f)-1]
	}
	return expect
}

// inventoryAllowed says which outcomes meet each INVENTORY expectation: a
// file to decode may be refused as unsupported (a later codec will take
// it), never called invalid; a file to fail must not load.
var inventoryAllowed = map[string][]string{
	"decode":    {"ok", "unsupported"},
	"no-pixels": {"no-pixels"},
	"fail":      {"invalid", "not-dicom", "unsupported", "too-large"},
	"either":    {"ok", "unsupported", "invalid", "not-dicom", "no-pixels"},
}

// byDesign lists corpus files whose INVENTORY expectation does not apply.
var byDesign = map[string]string{
	"broken/not_dicom_png.dcm": "a PNG named .dcm: Load goes by content, and PNG is an accepted format",
}

// TestCorpus loads every file under the conformance corpus: no panic may
// escape, every error must carry a sentinel, and files listed in
// INVENTORY.tsv must meet its expectation. It logs the tally.
func TestCorpus(t *testing.T) {
	needDir(t, corpusDir)
	expect := readInventory(t)
	counts, listedCounts := map[string]int{}, map[string]int{}
	err := filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(corpusDir, path)
		rel = filepath.ToSlash(rel)
		if !strings.Contains(rel, "/") {
			return nil // INVENTORY.tsv, reference.tsv, README.md, the script
		}
		_, _, lerr := Load(path, Options{})
		outcome := corpusOutcome(lerr)
		counts[outcome]++
		if outcome == "other" {
			t.Errorf("%s: error without a sentinel: %v", rel, lerr)
		}
		want, listed := expect[rel]
		if listed {
			listedCounts[outcome]++
		}
		if listed && !slices.Contains(inventoryAllowed[want], outcome) {
			if reason, ok := byDesign[rel]; ok {
				t.Logf("%s: %s although the inventory says %s: %s", rel, outcome, want, reason)
			} else {
				t.Errorf("%s: %s (%v), inventory says %s", rel, outcome, lerr, want)
			}
		}
		if testing.Verbose() {
			t.Logf("%-12s %s %v", outcome, rel, lerr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what   string
		counts map[string]int
	}{{"all files", counts}, {"INVENTORY.tsv files", listedCounts}} {
		t.Logf("corpus, %s: ok %d, unsupported %d, invalid %d, not-dicom %d, no-pixels %d, too-large %d", c.what,
			c.counts["ok"], c.counts["unsupported"], c.counts["invalid"], c.counts["not-dicom"], c.counts["no-pixels"], c.counts["too-large"])
	}
}

// referenceRow is one line of the corpus's reference.tsv: what pydicom and
// GDCM decode a file to, as stored values.
type referenceRow struct {
	path, syntax, dtype, sha string
}

// readReference reads reference.tsv.
func readReference(t *testing.T) []referenceRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, "reference.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []referenceRow
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Split(line, "\t")
		if i == 0 || len(f) < 13 {
			continue
		}
		rows = append(rows, referenceRow{path: f[0], syntax: f[1], dtype: f[10], sha: f[12]})
	}
	return rows
}

// storedBytes serialises decoded frames the way numpy lays out the
// reference array: C order, samples last, in dtype.
func storedBytes(t *testing.T, frames []frame, dtype string) []byte {
	t.Helper()
	var bo binary.AppendByteOrder = binary.LittleEndian
	if big, ok := map[string]string{">i2": "int16", ">u2": "uint16", ">u4": "uint32"}[dtype]; ok {
		bo, dtype = binary.BigEndian, big
	}
	var out []byte
	for _, fr := range frames {
		for i := range max(len(fr.samples), len(fr.floats)) {
			switch dtype {
			case "uint8", "int8":
				out = append(out, byte(fr.samples[i]))
			case "uint16", "int16":
				out = bo.AppendUint16(out, uint16(fr.samples[i]))
			case "uint32", "int32":
				out = bo.AppendUint32(out, uint32(fr.samples[i]))
			case "float32":
				out = bo.AppendUint32(out, math.Float32bits(float32(fr.floats[i])))
			case "float64":
				out = bo.AppendUint64(out, math.Float64bits(fr.floats[i]))
			default:
				t.Fatalf("dtype %q not handled", dtype)
			}
		}
	}
	return out
}

// unmaskedReference lists reference decodes that keep the bits above
// BitsStored, where this package masks and sign-extends (PS3.5 8.1.1).
var unmaskedReference = map[string]string{
	"nema-wg04-and-pydicom/data/pydicom/mlut_18.dcm": "12 bits stored, signed, in 16 bits allocated: pydicom 2.3 returns the raw int16 words " +
		"(values up to 4095), this package sign-extends bit 11 (-2048..2047)",
}

// TestReferenceDecodes compares the stored values this package decodes,
// every frame, with the reference decodes of pydicom and GDCM for every
// file in a transfer syntax it supports: the SHA-256 of the values must be
// the same. Files refused as unsupported (palette colour) are counted.
func TestReferenceDecodes(t *testing.T) {
	needDir(t, corpusDir)
	var matched, refused int
	for _, row := range readReference(t) {
		if _, ok := codecs[row.syntax]; !ok {
			continue
		}
		t.Run(row.path, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(corpusDir, row.path))
			if err != nil {
				t.Fatal(err)
			}
			var inst sentinel.Instance
			f, err := openDICOM(data, &inst, Options{})
			if errors.Is(err, sentinel.ErrUnsupported) {
				refused++
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("openDICOM: %v", err)
			}
			var frames []frame
			for i := range f.layout.frames {
				fr, err := f.codec(f.pixels, f.layout, i)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				frames = append(frames, fr)
			}
			raw := f.pixels.native
			if reason, ok := unmaskedReference[row.path]; ok {
				// The reference keeps bits above BitsStored; check that
				// it is the raw bytes, so masking is the only difference.
				raw = raw[:f.layout.frames*f.layout.rows*f.layout.cols*f.layout.samples*f.layout.bitsAllocated/8]
				if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != row.sha {
					t.Errorf("reference is not the raw pixel data either")
				}
				t.Logf("differs from the reference by design: %s", reason)
				return
			}
			sum := sha256.Sum256(storedBytes(t, frames, row.dtype))
			if got := hex.EncodeToString(sum[:]); got != row.sha {
				t.Errorf("sha256 of stored values %s, reference %s", got, row.sha)
				return
			}
			matched++
		})
	}
	t.Logf("reference decodes: %d identical, %d refused as unsupported", matched, refused)
}
