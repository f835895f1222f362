package dicomio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sentinel-pacs/sentinel"
	pxcodec "github.com/sentinel-pacs/sentinel/dicomio/codec"
	"github.com/sentinel-pacs/sentinel/dicomio/jpeg2000"
)

// TestHTJ2KTransferSyntaxes wraps HTJ2K codestreams the project made (see
// testdata/dicomio/htj2k) in DICOM files of each HTJ2K transfer syntax:
// the stored values are the codec's, the display image is made, and the
// JPIP HTJ2K syntaxes, which hold no pixel data, stay refused.
func TestHTJ2KTransferSyntaxes(t *testing.T) {
	for _, tt := range []struct {
		ts, file          string
		rows, cols, comps int
		bits              int
		photometric       string
	}{
		{uidHTJ2KLossless, "gray12_rev.j2c", 61, 97, 1, 12, "MONOCHROME2"},
		{uidHTJ2KLosslessRP, "gray16_rev.j2c", 70, 130, 1, 16, "MONOCHROME2"},
		{uidHTJ2K, "gray12_lossy.j2c", 61, 97, 1, 12, "MONOCHROME2"},
		{uidHTJ2K, "rgb8_rev.j2c", 45, 67, 3, 8, "YBR_RCT"},
	} {
		t.Run(tt.ts+"/"+tt.file, func(t *testing.T) {
			cs := readTestdata(t, filepath.Join("htj2k", tt.file))
			ba := 8
			if tt.bits > 8 {
				ba = 16
			}
			want, err := jpeg2000.Decode(cs, pxcodec.Params{Rows: tt.rows, Cols: tt.cols, Samples: tt.comps, BitsAllocated: ba, BitsStored: tt.bits})
			if err != nil {
				t.Fatal(err)
			}
			data := encodeHTJ2K(t, tt.ts, spec{rows: tt.rows, cols: tt.cols, samples: tt.comps, bitsAllocated: ba, bitsStored: tt.bits,
				photometric: tt.photometric, pixelData: encapsulatedPixels(t, cs)})
			path := writeFile(t, "ht.dcm", data)
			s, err := DecodeStored(path, Options{}, -1)
			if err != nil {
				t.Fatalf("DecodeStored: %v", err)
			}
			if s.Len() != len(want.Samples) {
				t.Fatalf("%d values, want %d", s.Len(), len(want.Samples))
			}
			for i, v := range want.Samples {
				if s.Value(i) != float64(v) {
					t.Fatalf("value %d is %g, the codec gives %d", i, s.Value(i), v)
				}
			}
			if tt.comps == 3 && s.Photometric != "RGB" {
				t.Errorf("photometric %s after the inverse RCT, want RGB", s.Photometric)
			}
			if _, img, err := Load(path, Options{}); err != nil || img.Width != tt.cols {
				t.Errorf("Load: %v", err)
			}
		})
	}
	data := encodeHTJ2K(t, "1.2.840.10008.1.2.4.204", spec{rows: 61, cols: 97, bitsStored: 12,
		pixelData: encapsulatedPixels(t, readTestdata(t, "htj2k/gray12_rev.j2c"))})
	if _, _, err := Load(writeFile(t, "jpip.dcm", data), Options{}); !errors.Is(err, sentinel.ErrUnsupportedTransferSyntax) {
		t.Errorf("JPIP HTJ2K Referenced: %v, want ErrUnsupportedTransferSyntax", err)
	}
}

// encodeHTJ2K writes s in transfer syntax ts, one of the HTJ2K UIDs the
// dicom library's writer does not know: the file is written as MPEG2
// (a UID of the same length) and the UID patched in.
func encodeHTJ2K(t testing.TB, ts string, s spec) []byte {
	t.Helper()
	const stand = "1.2.840.10008.1.2.4.100"
	if len(ts) != len(stand) {
		t.Fatalf("%s is not %d characters long", ts, len(stand))
	}
	s.ts = stand
	return bytes.Replace(encodeDICOM(t, s), []byte(stand), []byte(ts), 1)
}

// TestHTJ2KCorpusAgainstOpenJPEG decodes the HTJ2K files of the shared
// corpus and compares every sample with OpenJPEG's opj_decompress on the
// same codestream: neither pydicom 2.3 with GDCM nor dcmtk here decodes
// HTJ2K, so OpenJPEG is the reference.
func TestHTJ2KCorpusAgainstOpenJPEG(t *testing.T) {
	needDir(t, corpusDir)
	if _, err := exec.LookPath("opj_decompress"); err != nil {
		t.Skip("opj_decompress not installed (Debian libopenjp2-tools): skipping the HTJ2K comparison")
	}
	for _, name := range []string{"pydicom-data/data/HTJ2KLossless_08_RGB.dcm", "pydicom-data/data/HTJ2K_08_RGB.dcm"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			f, frames, err := decodeAll(filepath.Join(corpusDir, name))
			if err != nil {
				t.Fatal(err)
			}
			cs, err := f.pixels.frameData(0, f.layout.frames, markerJPEG2000)
			if err != nil {
				t.Fatal(err)
			}
			want := opjDecompressRaw(t, cs, f.layout.samples, f.layout.bitsAllocated)
			got := frames[0].samples
			if len(got) != len(want) {
				t.Fatalf("%d samples, OpenJPEG gives %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("sample %d is %d, OpenJPEG gives %d", i, got[i], want[i])
				}
			}
		})
	}
}

// opjDecompressRaw decodes a codestream with opj_decompress into raw
// little endian planes and returns them interleaved.
func opjDecompressRaw(t *testing.T, cs []byte, comps, bitsAllocated int) []int32 {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.j2c"), filepath.Join(dir, "out.rawl")
	if err := os.WriteFile(in, cs, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("opj_decompress", "-i", in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("opj_decompress: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	size := bitsAllocated / 8
	n := len(b) / size / comps
	vals := make([]int32, n*comps)
	for c := range comps {
		for i := range n {
			off := (c*n + i) * size
			v := int32(b[off])
			if size == 2 {
				v = int32(binary.LittleEndian.Uint16(b[off:]))
			}
			vals[i*comps+c] = v
		}
	}
	return vals
}
