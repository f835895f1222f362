package dicomio

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// FuzzLoad feeds arbitrary bytes to Load through a file: it must never
// panic, must return a sentinel with every error, and must return an image
// of the size it claims with values in [0, 1].
func FuzzLoad(f *testing.F) {
	seeds := [][]byte{
		encodeDICOM(f, spec{rows: 2, cols: 3, bitsAllocated: 8, pixels: seq(0, 1, 2, 3, 4, 5)}),
		encodeDICOM(f, spec{ts: uidExplicitBE, rows: 2, cols: 2, signed: true, center: "0", width: "100", pixels: seq(-5, 0, 5, 50)}),
		encodeDICOM(f, spec{ts: uidImplicitLE, rows: 1, cols: 2, frames: 2, bitsStored: 12, pixels: seq(1, 2, 3, 4)}),
		encodeDICOM(f, spec{rows: 1, cols: 2, samples: 3, bitsAllocated: 8, photometric: "RGB", pixels: seq(1, 2, 3, 4, 5, 6)}),
		rawFile(deepSequences(3)),
		append(syntheticMeta(uidDeflatedLE), 0x63, 0x60, 0x00, 0x00),
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
		_, img, err := Load(path, Options{MaxPixels: 1 << 20})
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
	})
}
