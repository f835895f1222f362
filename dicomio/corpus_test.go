package dicomio

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
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

// inventoryRow is one line of the corpus's INVENTORY.tsv.
type inventoryRow struct {
	path, syntax, photometric, expect string
}

// readInventory reads INVENTORY.tsv: what a decoder must do with each
// corpus file (decode, no-pixels, fail or either).
func readInventory(t *testing.T) []inventoryRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, "INVENTORY.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []inventoryRow
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
		f := strings.Split(line, "\t")
		rows = append(rows, inventoryRow{path: f[0], syntax: f[3], photometric: f[7], expect: f[len(f)-1]})
	}
	return rows
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

// referenceRow is one line of the corpus's reference.tsv: what pydicom and
// GDCM decode a file to, as stored values.
type referenceRow struct {
	path, syntax, photometric, dtype, sha string
	bitsStored                            int
	min, max, mean                        float64
	lossy, trusted                        bool
	note                                  string
}

// readReference reads reference.tsv, by path.
func readReference(t *testing.T) map[string]referenceRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, "reference.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]referenceRow{}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Split(line, "\t")
		if i == 0 || len(f) < 20 {
			continue
		}
		num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		r := referenceRow{path: f[0], syntax: f[1], photometric: f[2], dtype: f[10], sha: f[12],
			bitsStored: int(num(f[8])), min: num(f[13]), max: num(f[14]), mean: num(f[15]),
			lossy: f[16] == "yes", trusted: f[19] != "no"}
		if len(f) > 20 {
			r.note = f[20]
		}
		rows[r.path] = r
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

// unmaskedReference lists reference decodes that do not sign-extend
// signed values below BitsAllocated, where this package masks and
// sign-extends (PS3.5 8.1.1): masked to BitsStored, the values must be
// identical.
var unmaskedReference = map[string]string{
	"nema-wg04-and-pydicom/data/pydicom/mlut_18.dcm": "12 bits stored, signed, in 16 bits allocated: pydicom 2.3 returns the raw int16 words " +
		"(values up to 4095), this package sign-extends bit 11 (-2048..2047)",
	"pydicom-data/data/JLSL_16_15_1_1F.dcm": "JPEG-LS, 15 bits stored, signed, in 16 bits allocated: GDCM returns the 15-bit codestream samples " +
		"without sign extension (7..32760), this package sign-extends bit 14 as PS3.5 8.1.1 and PS3.3 C.7.6.3.1 require; " +
		"masked to 15 bits the values are identical",
}

// unswappedReference lists reference decodes of 8-bit pixel data in OW
// words of a big endian data set, where pydicom reads the bytes as stored
// and this package, like dcmtk (dcmconv +te gives the same values), swaps
// each word's bytes as PS3.5 8.1.1 and 7.3 require: with each pair of
// bytes swapped back, the values must be identical.
var unswappedReference = map[string]string{
	"nema-wg04-and-pydicom/data/pydicom/OBXXXX1A_expb.dcm": "8-bit palette indices in OW, big endian: the file holds the bytes of its little endian twin unswapped, " +
		"which pydicom reads as stored; this package and dcmtk swap the bytes of each 16-bit word as PS3.5 requires, so pairs of " +
		"neighbouring pixels trade places; swapped back, the values are identical",
	"nema-wg04-and-pydicom/data/pydicom/OBXXXX1A_expb_2frame.dcm": "8-bit palette indices in OW, big endian: as OBXXXX1A_expb.dcm; " +
		"swapped back, the values are identical",
}
