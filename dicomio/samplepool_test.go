package dicomio

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// TestDirtySampleBuffer decodes the first frame of every corpus file that
// decodes, and of the chest radiographs, once into a new buffer and once
// into a reused one full of another value: a codec must give the same
// samples whatever the buffer held, since Load reuses them across films.
func TestDirtySampleBuffer(t *testing.T) {
	needDir(t, corpusDir)
	var paths []string
	for _, r := range readInventory(t) {
		if r.expect == "decode" {
			paths = append(paths, filepath.Join(corpusDir, r.path))
		}
	}
	cxr, _ := filepath.Glob(filepath.Join(cxr8Dir, "dicom", "*.dcm"))
	paths = append(paths, cxr...)
	// The chest radiographs again with bytes of their last half changed:
	// what still decodes must not depend on the buffer either.
	type variant struct {
		name string
		data []byte
	}
	var files []variant
	rng := rand.New(rand.NewPCG(1, 2))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, variant{path, data})
	}
	for _, path := range cxr {
		data, _ := os.ReadFile(path)
		for v := range 4 {
			d := slices.Clone(data)
			for range 1 + rng.IntN(4) {
				d[len(d)/2+rng.IntN(len(d)/2)] = byte(rng.IntN(256))
			}
			files = append(files, variant{fmt.Sprintf("%s, changed %d", path, v), d})
		}
	}
	decoded := 0
	for _, file := range files {
		path, data := file.name, file.data
		var in sentinel.Instance
		f, err := openDICOM(data, &in, Options{})
		if err != nil {
			continue // unsupported or no pixels: covered elsewhere
		}
		fresh, err := f.codec(f.pixels, f.layout, 0, nil)
		if err != nil {
			continue
		}
		dirty := make([]int32, len(fresh.samples)+17)
		for i := range dirty {
			dirty[i] = int32(0x5A5A5A5A) ^ int32(i)
		}
		reused, err := f.codec(f.pixels, f.layout, 0, dirty)
		if err != nil {
			t.Fatalf("%s: decodes into a new buffer but not into a reused one: %v", path, err)
		}
		if !slices.Equal(fresh.samples, reused.samples) {
			t.Fatalf("%s: samples depend on what the reused buffer held", path)
		}
		decoded++
	}
	if decoded < 50 {
		t.Fatalf("only %d files decoded", decoded)
	}
	t.Logf("%d files decoded alike into new and reused buffers", decoded)
}

// TestByteLUTSampleOutside renders 8-bit frames through the byte lookup
// table, one with a sample above 255 (no codec should return one, but a
// frame must not take the agent down): each must match the same frame
// rendered the general way, with its stored range found first.
func TestByteLUTSampleOutside(t *testing.T) {
	h := header{slope: 1}
	for _, samples := range [][]int32{
		{0, 7, 255, 128, 3, 90},
		{0, 7, 300, 128, 3, 90},
		{1 << 20, 5, 6, 7, 8, 9},
	} {
		frame8 := frame{samples: samples, photometric: "MONOCHROME2"}
		frameGen := frame{samples: slices.Clone(samples), photometric: "MONOCHROME2"}
		byteLayout := layout{rows: 2, cols: 3, samples: 1, frames: 1, bitsAllocated: 8, bitsStored: 8, highBit: 7}
		general := byteLayout
		general.bitsAllocated = 16 // stored range first; the same VOI (8 bits stored)
		got, want := make([]float32, 6), make([]float32, 6)
		renderGray(frame8, byteLayout, h, got)
		renderGray(frameGen, general, h, want)
		if !slices.Equal(got, want) {
			t.Fatalf("samples %v: byte table gives %v, the general way %v", samples, got, want)
		}
	}
}
