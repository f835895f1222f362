package jpeg2000

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

const corpusDir = "../../../shared/data/dicom"

const (
	uidLossless = "1.2.840.10008.1.2.4.90"
	uidLossy    = "1.2.840.10008.1.2.4.91"
)

// readTSV reads a tab-separated file with a header row into maps keyed by
// column name.
func readTSV(t testing.TB, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cols []string
	var rows []map[string]string
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if cols == nil {
			cols = fields
			continue
		}
		row := map[string]string{}
		for i, c := range cols {
			if i < len(fields) {
				row[c] = fields[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func needCorpus(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(corpusDir, "INVENTORY.tsv")); err != nil {
		t.Skipf("../shared/data/dicom not found: skipping JPEG 2000 corpus test")
	}
}

// decodeFile decodes every frame of a corpus file.
func decodeFile(path string) ([]codec.Frame, codec.Params, error) {
	img, err := readDICOM(path)
	if err != nil {
		return nil, codec.Params{}, err
	}
	p := img.params
	p.MaxSamples = 1 << 26
	var frames []codec.Frame
	for _, data := range img.frames {
		f, err := Decode(data, p)
		if err != nil {
			return nil, p, err
		}
		frames = append(frames, f)
	}
	return frames, p, nil
}

// stats summarises decoded frames the way reference.tsv does: sha256 of
// the samples as little-endian values of dtype, min, max and mean.
type stats struct {
	sha            string
	min, max, mean float64
}

func frameStats(frames []codec.Frame, dtype string) stats {
	h := sha256.New()
	st := stats{min: math.Inf(1), max: math.Inf(-1)}
	var sum float64
	n := 0
	buf := make([]byte, 0, 1<<16)
	for _, f := range frames {
		for _, v := range f.Samples {
			switch dtype {
			case "uint8", "int8", "|u1", "|i1":
				buf = append(buf, byte(v))
			default:
				buf = binary.LittleEndian.AppendUint16(buf, uint16(v))
			}
			if len(buf) >= 1<<16-2 {
				h.Write(buf)
				buf = buf[:0]
			}
			fv := float64(v)
			st.min, st.max = min(st.min, fv), max(st.max, fv)
			sum += fv
			n++
		}
	}
	h.Write(buf)
	st.sha = hex.EncodeToString(h.Sum(nil))
	st.mean = sum / float64(n)
	return st
}

// uncompressedTwins gives, for files the reference decoder cannot read
// (GDCM crashes on these 1-bit JPEG 2000 segmentations), a file with the
// same pixels stored uncompressed whose reference they must match.
var uncompressedTwins = map[string]string{
	"pydicom-data/data/liver_j2k.dcm":                 "nema-wg04-and-pydicom/data/pydicom/liver.dcm",
	"pydicom-data/data/liver_nonbyte_aligned_j2k.dcm": "pydicom-data/data/liver_nonbyte_aligned.dcm",
}

// Lossy tolerance against the OpenJPEG reference (via GDCM). Our 9/7
// arithmetic follows OpenJPEG's float32 operations and constants, and every
// lossy corpus file decodes bit-identically; the tolerance is what a valid
// decoder with other rounding (the exact 1/K, say) stays within: a few
// samples one level apart.
const (
	lossyExtremaTol = 1    // levels, on min and max
	lossyMeanTol    = 0.02 // levels, on the mean
)

func TestCorpus(t *testing.T) {
	needCorpus(t)
	refs := map[string]map[string]string{}
	for _, r := range readTSV(t, filepath.Join(corpusDir, "reference.tsv")) {
		refs[r["path"]] = r
	}
	for _, row := range readTSV(t, filepath.Join(corpusDir, "INVENTORY.tsv")) {
		ts := row["ts_uid"]
		if ts != uidLossless && ts != uidLossy {
			continue
		}
		path := row["path"]
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			frames, _, err := decodeFile(filepath.Join(corpusDir, path))
			switch row["expect"] {
			case "fail":
				if err == nil {
					t.Fatalf("decoded a file that must fail")
				}
				t.Logf("fails as expected: %v", err)
				// The file is cut inside its codestream: the codec itself must
				// reject what is left, not only the DICOM reader.
				img, cerr := readDICOMMode(filepath.Join(corpusDir, path), true)
				if cerr != nil || !img.cut {
					return // the codestreams are whole: only the DICOM encoding is broken
				}
				var derr error
				for _, fr := range img.frames {
					if _, derr = Decode(fr, img.params); derr != nil {
						break
					}
				}
				if !errors.Is(derr, codec.ErrCorrupt) {
					t.Errorf("truncated codestream: got %v, want a corrupt codestream", derr)
				}
				t.Logf("codec on the cut codestream: %v", derr)
				return
			case "either":
				if err != nil {
					if !errors.Is(err, codec.ErrUnsupported) && !errors.Is(err, codec.ErrCorrupt) {
						t.Errorf("error is neither unsupported nor corrupt: %v", err)
					}
					t.Logf("refused: %v", err)
					return
				}
				twin, ok := uncompressedTwins[path]
				if !ok {
					return
				}
				ref := refs[twin]
				if st := frameStats(frames, ref["dtype"]); st.sha != ref["sha256"] {
					t.Errorf("decode differs from the uncompressed twin %s", twin)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			ref, ok := refs[path]
			if !ok {
				t.Fatalf("no reference row")
			}
			st := frameStats(frames, ref["dtype"])
			if st.sha == ref["sha256"] {
				return
			}
			// Reversible 5/3 decoding is exact integer arithmetic, even when
			// layers were dropped, so such .91 files must match too.
			if ref["lossy"] != "yes" || ts == uidLossless || reversible(t, filepath.Join(corpusDir, path)) {
				t.Fatalf("lossless decode differs from the reference: got min %v max %v mean %.4f, want %s %s %s",
					st.min, st.max, st.mean, ref["min"], ref["max"], ref["mean"])
			}
			rmin, _ := strconv.ParseFloat(ref["min"], 64)
			rmax, _ := strconv.ParseFloat(ref["max"], 64)
			rmean, _ := strconv.ParseFloat(ref["mean"], 64)
			if math.Abs(st.min-rmin) > lossyExtremaTol || math.Abs(st.max-rmax) > lossyExtremaTol || math.Abs(st.mean-rmean) > lossyMeanTol {
				t.Errorf("lossy decode outside tolerance: got min %v max %v mean %.4f, want %s %s %s",
					st.min, st.max, st.mean, ref["min"], ref["max"], ref["mean"])
			}
			t.Logf("lossy: min %v max %v mean %.4f vs %s %s %s", st.min, st.max, st.mean, ref["min"], ref["max"], ref["mean"])
		})
	}
}

// reversible reports whether the first frame of a file uses the 5/3
// wavelet in every component.
func reversible(t *testing.T, path string) bool {
	img, err := readDICOM(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := unwrapJP2(img.frames[0])
	if err != nil {
		t.Fatal(err)
	}
	cs, err := parseCodestream(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, parts := range cs.tiles {
		_, tm := tileParams(cs, parts)
		for _, st := range tm.coc {
			if !st.reversible {
				return false
			}
		}
	}
	return true
}
