package jpeg

import (
	"path/filepath"
	"testing"
)

// benchFiles are real corpus frames, one per process and bit depth.
var benchFiles = []struct{ name, path string }{
	{"lossless-sv1-8bit-1024", "img2dcm/No_findings_00001280_004_jpegll14sv1.dcm"},
	{"lossless-sv1-10bit-2140x1760", "nema-wg04-and-pydicom/data/WG04/JPLL/RG2_JPLL"},
	{"lossless-57-16bit-512", "cornerstone/testImages/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_lossless.57.dcm"},
	{"extended-12bit-2140x1760", "nema-wg04-and-pydicom/data/WG04/JPLY/RG2_JPLY"},
	{"baseline-rgb420-1021x817", "img2dcm/Pneumonia_00000061_012_rgb_jpegbaseline.dcm"},
}

// BenchmarkDecode decodes the first frame of real corpus files.
func BenchmarkDecode(b *testing.B) {
	needCorpus(b)
	inv := map[string]map[string]string{}
	for _, r := range readTSV(b, filepath.Join(corpusDir, "INVENTORY.tsv")) {
		inv[r["path"]] = r
	}
	for _, bf := range benchFiles {
		r := inv[bf.path]
		frame := jpegFrames(b, filepath.Join(corpusDir, bf.path), atoi(r["frames"], 1))[0]
		p := paramsOf(r)
		b.Run(bf.name, func(b *testing.B) {
			b.SetBytes(int64(p.Rows * p.Cols * p.Samples))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(frame, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
