package dicomio

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRetiredProgressiveJPEG encodes a film the project writes with
// dcmtk's dcmcjpeg in the retired progressive processes (spectral
// selection, transfer syntax .53; full progression, .55; 8 and 12 bits,
// grey and colour) and requires the stored values to be dcmdjpeg's,
// sample for sample.
func TestRetiredProgressiveJPEG(t *testing.T) {
	cjpeg, err1 := exec.LookPath("dcmcjpeg")
	djpeg, err2 := exec.LookPath("dcmdjpeg")
	if err1 != nil || err2 != nil {
		t.Skip("dcmtk (dcmcjpeg, dcmdjpeg) not installed: skipping")
	}
	const rows, cols = 61, 83
	grey := func(bits int) spec {
		s := spec{rows: rows, cols: cols, bitsStored: bits}
		if bits == 8 {
			s.bitsAllocated = 8
		}
		for y := range rows {
			for x := range cols {
				v := (x*x + 3*y*y + 7*x*y) % (1 << bits)
				if (x/8+y/8)%2 == 0 {
					v = (1<<bits - 1) - v
				}
				s.pixels = append(s.pixels, v)
			}
		}
		return s
	}
	colour := spec{rows: rows, cols: cols, samples: 3, bitsAllocated: 8, photometric: "RGB"}
	for y := range rows {
		for x := range cols {
			colour.pixels = append(colour.pixels, (4*x)%256, (5*y)%256, (x*y)%256)
		}
	}
	for _, tt := range []struct {
		name string
		src  spec
		opts []string
		ts   string
	}{
		{"spectral selection, 8-bit", grey(8), []string{"+es"}, uidJPEGSpectral},
		{"full progression, 8-bit", grey(8), []string{"+ep"}, uidJPEGProgressive},
		{"full progression, 12-bit", grey(12), []string{"+ep"}, uidJPEGProgressive},
		{"spectral selection, 12-bit", grey(12), []string{"+es"}, uidJPEGSpectral},
		{"full progression, colour", colour, []string{"+ep", "+cr"}, uidJPEGProgressive},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, enc, dec := filepath.Join(dir, "src.dcm"), filepath.Join(dir, "enc.dcm"), filepath.Join(dir, "dec.dcm")
			if err := os.WriteFile(src, encodeDICOM(t, tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(cjpeg, append(tt.opts, src, enc)...).CombinedOutput(); err != nil {
				t.Fatalf("dcmcjpeg: %v: %s", err, b)
			}
			if b, err := exec.Command(djpeg, enc, dec).CombinedOutput(); err != nil {
				t.Fatalf("dcmdjpeg: %v: %s", err, b)
			}
			h, err := ReadHeader(enc, Options{})
			if err != nil || h.TransferSyntaxUID != tt.ts || h.Problem != nil {
				t.Fatalf("header %+v, %v; want transfer syntax %s", h, err, tt.ts)
			}
			got, err := DecodeStored(enc, Options{}, -1)
			if err != nil {
				t.Fatalf("DecodeStored: %v", err)
			}
			want, err := DecodeStored(dec, Options{}, -1)
			if err != nil {
				t.Fatal(err)
			}
			if got.Len() != want.Len() || got.Len() != rows*cols*tt.src.samplesOr1() {
				t.Fatalf("%d values, dcmtk %d", got.Len(), want.Len())
			}
			for i := range got.Len() {
				if got.Value(i) != want.Value(i) {
					t.Fatalf("value %d is %g, dcmtk gives %g", i, got.Value(i), want.Value(i))
				}
			}
			if _, _, err := Load(enc, Options{}); err != nil {
				t.Errorf("Load: %v", err)
			}
		})
	}
}

// samplesOr1 is the samples per pixel of the spec, 1 when unset.
func (s spec) samplesOr1() int { return max(s.samples, 1) }
