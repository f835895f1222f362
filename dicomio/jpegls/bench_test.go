package jpegls

import (
	"path/filepath"
	"testing"
)

// benchFiles are real corpus frames: an 8-bit 1024x1024 chest
// radiograph (the agent's common case), a 10-bit 2140x1760 CR and its
// near-lossless version, and an RGB sample-interleaved image.
var benchFiles = []struct{ name, path string }{
	{"cxr_8bit_1024", filepath.Join(cxrDir, "dicom", "00002633_030_jpeg_ls_lossless.dcm")},
	{"RG2_10bit_2140x1760", filepath.Join(corpusDir, "nema-wg04-and-pydicom/data/WG04/JLSL/RG2_JLSL")},
	{"RG2_10bit_near", filepath.Join(corpusDir, "nema-wg04-and-pydicom/data/WG04/JLSN/RG2_JLSN")},
	{"rgb_ilv2_256", filepath.Join(corpusDir, "pydicom-data/data/JLSL_RGB_ILV2.dcm")},
}

func BenchmarkDecode(b *testing.B) {
	for _, bf := range benchFiles {
		b.Run(bf.name, func(b *testing.B) {
			tf, err := readTestFile(bf.path)
			if err != nil {
				b.Skipf("corpus frame not available (../shared absent?): %v", err)
			}
			data := tf.frames[0]
			b.SetBytes(int64(tf.params.Rows * tf.params.Cols * tf.params.Samples))
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if _, err := Decode(data, tf.params); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time per frame: unlike ns/op, it does not grow when other
			// processes compete for the cores.
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}
