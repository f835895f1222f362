package jpegls

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

const corpusDir = "../../../shared/data/dicom"

// refRow is one row of the corpus's reference.tsv.
type refRow struct {
	path, syntax, dtype, sha256, trusted string
}

// readReference loads reference.tsv keyed by path.
func readReference(t testing.TB) map[string]refRow {
	f, err := os.Open(filepath.Join(corpusDir, "reference.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]refRow{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var col map[string]int
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if col == nil {
			col = map[string]int{}
			for i, name := range fields {
				col[name] = i
			}
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(fields) {
				return fields[i]
			}
			return ""
		}
		rows[get("path")] = refRow{
			path: get("path"), syntax: get("transfer_syntax"), dtype: get("dtype"),
			sha256: get("sha256"), trusted: get("trusted"),
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// skipWithoutCorpus skips the test when the shared corpus is absent.
func skipWithoutCorpus(t testing.TB) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("../shared/data/dicom not found: skipping JPEG-LS corpus test (%v)", err)
	}
}

// decodeFile decodes every frame of a corpus file.
func decodeFile(path string) ([]codec.Frame, *testFile, error) {
	tf, err := readTestFile(path)
	if err != nil {
		return nil, nil, err
	}
	var frames []codec.Frame
	for _, data := range tf.frames {
		fr, err := Decode(data, tf.params)
		if err != nil {
			return nil, tf, err
		}
		frames = append(frames, fr)
	}
	return frames, tf, nil
}

// hashFrames hashes the samples the way the reference does: the numpy
// array of the given dtype, C order, little endian, frames first.
func hashFrames(frames []codec.Frame, dtype string, mask int32) string {
	h := sha256.New()
	var buf []byte
	for _, fr := range frames {
		buf = buf[:0]
		for _, v := range fr.Samples {
			if mask != 0 {
				v &= mask
			}
			switch dtype {
			case "uint8", "|u1", "u1":
				buf = append(buf, byte(v))
			default: // uint16, int16, <u2, <i2
				buf = binary.LittleEndian.AppendUint16(buf, uint16(v))
			}
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// corpusOverride replaces a reference that is known to be wrong.
type corpusOverride struct {
	// twin is a file whose trusted reference hash this file must match.
	twin string
	// sha256 is the hash of an independent decode (dcmtk), with dtype
	// and shape as in reference.tsv.
	sha256 string
	// mask is applied to samples before hashing, for references that did
	// not sign-extend.
	mask int32
	why  string
}

// overrides lists the JPEG-LS files whose pydicom+GDCM reference is not the
// right answer, with what they are compared against instead.
var overrides = map[string]corpusOverride{
	"nema-wg04-and-pydicom/data/WG04/JLSL/MR1_JLSL": {
		twin: "nema-wg04-and-pydicom/data/WG04/REF/MR1_UNC",
		why:  "GDCM returns zeros (padding before EOI); compared with the uncompressed original",
	},
	"cornerstone/testImages/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_ls.80.dcm": {
		twin: "cornerstone/testImages/encapsulated/multi-frame/CT0012.not_fragmented_bot_jpeg_ls.80.dcm",
		why:  "GDCM returns zeros (fragmented frames without BOT); compared with the unfragmented twin",
	},
	"cornerstone/testImages/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_ls.81.dcm": {
		// dcmdjpls CT0012.fragmented_no_bot_jpeg_ls.81.dcm out.dcm (dcmtk
		// 3.6.7), then the sha256 of pydicom's uint16 pixel_array of out.dcm
		// (2x512x512, 0…1198).
		sha256: "280666ecce17e0beb242abfd0b6a403d8505af6cc7bb5ab9212d56bc42f036d3",
		why:    "GDCM returns zeros (fragmented frames without BOT); compared with dcmtk's decode",
	},
	"pydicom-data/data/JLSL_16_15_1_1F.dcm": {
		mask: 0x7FFF,
		why: "pydicom 2.3.1+GDCM does not sign-extend 15-bit signed JPEG-LS samples (pydicom#2009); " +
			"compared on the low 15 bits, and spot values checked against pydicom 3",
	},
}

func TestCorpus(t *testing.T) {
	skipWithoutCorpus(t)
	refs := readReference(t)
	var names []string
	for path, r := range refs {
		if r.syntax == "1.2.840.10008.1.2.4.80" || r.syntax == "1.2.840.10008.1.2.4.81" {
			names = append(names, path)
		}
	}
	if len(names) == 0 {
		t.Fatal("no JPEG-LS rows in reference.tsv")
	}
	for _, name := range names {
		r := refs[name]
		t.Run(name, func(t *testing.T) {
			frames, _, err := decodeFile(filepath.Join(corpusDir, name))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want, mask := r.sha256, int32(0)
			if o, ok := overrides[name]; ok {
				mask = o.mask
				switch {
				case o.twin != "":
					want = refs[o.twin].sha256
				case o.sha256 != "":
					want = o.sha256
				}
				t.Logf("reference overridden: %s", o.why)
			} else if r.trusted != "yes" {
				t.Fatalf("untrusted reference without an override")
			}
			if got := hashFrames(frames, r.dtype, mask); got != want {
				t.Errorf("sha256 %s, want %s", got, want)
			}
		})
	}
}

// TestBrokenFiles checks that the corpus's broken JPEG-LS files fail
// cleanly with a codec error.
func TestBrokenFiles(t *testing.T) {
	skipWithoutCorpus(t)
	for _, name := range []string{
		"broken/cxr_jpegls_corrupt_codestream.dcm",
		"broken/cxr_jpegls_trunc75pct.dcm",
	} {
		t.Run(name, func(t *testing.T) {
			_, tf, err := decodeFile(filepath.Join(corpusDir, name))
			if tf == nil {
				t.Fatalf("test reader could not extract the frame: %v", err)
			}
			if !errors.Is(err, codec.ErrCorrupt) {
				t.Fatalf("got %v, want a codec.ErrCorrupt error", err)
			}
			t.Logf("fails as expected: %v", err)
		})
	}
}

// TestSpotValues checks the two pydicom-data files made for JPEG-LS
// decoder bugs against the values pydicom 3's own tests expect
// (pixels_reference.py): 7-bit samples, where GDCM had a bug, and 15-bit
// signed samples, which need sign extension from the code stream's
// precision.
func TestSpotValues(t *testing.T) {
	skipWithoutCorpus(t)
	tests := []struct {
		path string
		want []int32 // column 58 from row 59 on
	}{
		{"pydicom-data/data/JLSL_08_07_0_1F.dcm", []int32{55, 53, 58, 85, 109, 123, 116, 102, 98, 89}},
		{"pydicom-data/data/JLSL_16_15_1_1F.dcm", []int32{-2073, -2629, -1167, 5566, 11808, 15604}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			frames, _, err := decodeFile(filepath.Join(corpusDir, tt.path))
			if err != nil {
				t.Fatal(err)
			}
			fr := frames[0]
			for i, want := range tt.want {
				if got := fr.Samples[(59+i)*fr.Width+58]; got != want {
					t.Errorf("row %d column 58 = %d, want %d", 59+i, got, want)
				}
			}
		})
	}
}
