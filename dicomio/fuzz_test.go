package dicomio

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// FuzzLoad feeds arbitrary bytes to Load through a file: it must never
// panic, must return a sentinel with every error, and must return an image
// of the size it claims with values in [0, 1]. A DICOM file that loads
// must also give DecodeStored its first frame, in the bytes of the codec's
// frame (the direct native path against the codec).
func FuzzLoad(f *testing.F) {
	seeds := [][]byte{
		encodeDICOM(f, spec{rows: 2, cols: 3, bitsAllocated: 8, pixels: seq(0, 1, 2, 3, 4, 5)}),
		encodeDICOM(f, spec{ts: uidExplicitBE, rows: 2, cols: 2, signed: true, center: "0", width: "100", pixels: seq(-5, 0, 5, 50)}),
		encodeDICOM(f, spec{ts: uidImplicitLE, rows: 1, cols: 2, frames: 2, bitsStored: 12, pixels: seq(1, 2, 3, 4)}),
		encodeDICOM(f, spec{rows: 1, cols: 2, samples: 3, bitsAllocated: 8, photometric: "RGB", pixels: seq(1, 2, 3, 4, 5, 6)}),
		rawFile(deepSequences(3)),
		append(syntheticMeta(uidDeflatedLE), 0x63, 0x60, 0x00, 0x00),
		rawFile(privateUNSequence()),
	}
	if cs, err := os.ReadFile(filepath.Join(testdataDir, "htj2k", "tiny_rev.j2c")); err == nil {
		seeds = append(seeds, encodeHTJ2K(f, uidHTJ2KLossless, spec{rows: 3, cols: 5, bitsAllocated: 8, pixelData: encapsulatedPixels(f, cs)}))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.dcm")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		opt := Options{MaxPixels: 1 << 20}
		inst, img, err := Load(path, opt)
		if err != nil {
			if !sentinel.Permanent(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			if errors.Is(err, sentinel.ErrInvalid) && img.Pix != nil {
				t.Fatalf("image returned with an error")
			}
			return
		}
		if len(img.Pix) != img.Width*img.Height || img.Width < 1 {
			t.Fatalf("image %dx%d with %d values", img.Width, img.Height, len(img.Pix))
		}
		for i, v := range img.Pix {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("pixel %d = %v outside [0, 1]", i, v)
			}
		}
		if inst.Format != sentinel.FormatDICOM {
			return
		}
		s, err := DecodeStored(path, opt, 0)
		if err != nil {
			t.Fatalf("loads but DecodeStored fails: %v", err)
		}
		var in sentinel.Instance
		df, err := openDICOM(data, &in, opt)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := df.codec(df.pixels, df.layout, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := appendFrame(nil, fr, s.Dtype); !bytes.Equal(s.Data, want) {
			t.Fatalf("DecodeStored % x, codec % x", s.Data, want)
		}
	})
}
