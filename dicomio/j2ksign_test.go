package dicomio

import (
	"os"
	"path/filepath"
	"testing"
)

// testdataDir holds the small codestreams the tests wrap in DICOM files
// (see its README for how each was made).
const testdataDir = "../testdata/dicomio"

// readTestdata reads a file of testdataDir.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJ2KPixelRepresentationMismatch checks the policy for a JPEG 2000
// codestream whose signedness differs from Pixel Representation: the
// header decides what the bits mean (PS3.5 8.2.4), as for native data.
// unsigned13.j2k holds CT values -2000..1896 as 13-bit two's complement
// in an unsigned codestream (pydicom's J2K_pixelrep_mismatch.dcm case);
// signed16.j2k holds -2048..2047 in a signed 16-bit codestream (the
// TOSHIBA_J2K_SIZ1_PixRep0.dcm case).
func TestJ2KPixelRepresentationMismatch(t *testing.T) {
	const w, h = 32, 32
	ct := make([]float64, w*h)  // unsigned13.j2k's values as signed
	s16 := make([]float64, w*h) // signed16.j2k's values
	for y := range h {
		for x := range w {
			i := y*w + x
			ct[i] = float64(int(-2000 + 3896*float64((x+y*w)%97)/96))
			s16[i] = float64(int(-2048 + 4095*float64((x*7+y*3)%64)/63))
		}
	}
	ct[1] = 1896
	u16 := make([]float64, w*h) // signed16.j2k's bits read as unsigned
	for i, v := range s16 {
		u16[i] = float64(uint16(int16(v)))
	}
	for _, tt := range []struct {
		name       string
		codestream string
		bitsStored int
		signed     bool
		want       []float64
	}{
		{"unsigned codestream, Pixel Representation 1", "unsigned13.j2k", 13, true, ct},
		{"signed codestream, Pixel Representation 0", "signed16.j2k", 16, false, u16},
		{"signed codestream, Pixel Representation 1", "signed16.j2k", 16, true, s16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := encodeDICOM(t, spec{ts: uidJPEG2000Lossless, rows: h, cols: w, bitsStored: tt.bitsStored, signed: tt.signed,
				pixelData: encapsulatedPixels(t, readTestdata(t, tt.codestream))})
			path := writeFile(t, "j2k.dcm", data)
			s, err := DecodeStored(path, Options{}, -1)
			if err != nil {
				t.Fatalf("DecodeStored: %v", err)
			}
			if s.Len() != len(tt.want) {
				t.Fatalf("%d values, want %d", s.Len(), len(tt.want))
			}
			for i, want := range tt.want {
				if got := s.Value(i); got != want {
					t.Fatalf("value %d is %g, want %g (dtype %s)", i, got, want, s.Dtype)
				}
			}
			if _, img, err := Load(path, Options{}); err != nil || len(img.Pix) != w*h {
				t.Errorf("Load: %v", err)
			}
		})
	}
}
