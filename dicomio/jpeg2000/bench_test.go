package jpeg2000

import (
	"os"
	"path/filepath"
	"testing"
)

// benchFile is a real corpus frame: a 512×512 16-bit lossless CT; set
// JPEG2000_BENCH_FILE (relative to the corpus) to time another.
const benchFile = "nema-wg04-and-pydicom/data/WG04/J2KR/CT1_J2KR"

func BenchmarkDecode(b *testing.B) {
	needCorpus(b)
	name := benchFile
	if v := os.Getenv("JPEG2000_BENCH_FILE"); v != "" {
		name = v
	}
	img, err := readDICOM(filepath.Join(corpusDir, name))
	if err != nil {
		b.Fatal(err)
	}
	p := img.params
	b.SetBytes(int64(p.Rows * p.Cols * p.Samples * ((p.BitsAllocated + 7) / 8)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(img.frames[0], p); err != nil {
			b.Fatal(err)
		}
	}
}
