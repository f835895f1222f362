package jpeg

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// TestDcmtkEncoded covers what the corpus lacks (predictors 2–7 at
// 16 bits, point transforms, three-component lossless, 4:2:2 and 4:1:1
// chroma, RGB baseline, 12-bit from 16-bit sources): dcmcjpeg compresses
// uncompressed corpus files, and the decode must equal dcmdjpeg's, bit
// for bit when lossless and within the lossy bound otherwise. It skips
// when dcmtk is not installed.
func TestDcmtkEncoded(t *testing.T) {
	needCorpus(t)
	cjpeg, err1 := exec.LookPath("dcmcjpeg")
	djpeg, err2 := exec.LookPath("dcmdjpeg")
	if err1 != nil || err2 != nil {
		t.Skip("dcmtk (dcmcjpeg, dcmdjpeg) not installed: skipping")
	}
	const (
		ct = "nema-wg04-and-pydicom/data/WG04/REF/CT1_UNC" // 512×512, 16-bit signed
		us = "nema-wg04-and-pydicom/data/WG04/REF/US1_UNC" // 640×480 RGB
	)
	type tc struct {
		src     string
		opts    string
		samples int
		lossy   bool
	}
	var cases []tc
	for sv := 1; sv <= 7; sv++ {
		cases = append(cases, tc{ct, "+el +sv " + string(rune('0'+sv)), 1, false})
	}
	cases = append(cases,
		tc{ct, "+el +sv 7 +pt 3", 1, false},
		tc{us, "+el +sv 4", 3, false},
		tc{us, "+e1 +pt 1", 3, false},
		tc{us, "+eb +s2", 3, true},
		tc{us, "+eb +n2", 3, true},
		tc{us, "+eb +n1", 3, true},
		tc{us, "+eb +np", 3, true},
		tc{us, "+eb +s4 +q 75", 3, true},
		tc{us, "+eb +cr", 3, true},
		tc{ct, "+ee", 1, true},
		tc{ct, "+eb", 1, true},
		// Retired progressive processes (transfer syntaxes .53, .55).
		tc{ct, "+es", 1, true},
		tc{ct, "+ep", 1, true},
		tc{us, "+es", 3, true},
		tc{us, "+ep", 3, true},
		tc{us, "+ep +s2", 3, true},
		tc{ct, "+ep +be", 1, true},
		tc{us, "+ep +q 40 +sm 30", 3, true},
		tc{us, "+es +bt", 3, true},
	)
	for _, c := range cases {
		t.Run(filepath.Base(c.src)+" "+c.opts, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			enc := filepath.Join(dir, "enc.dcm")
			args := append(strings.Fields(c.opts), filepath.Join(corpusDir, c.src), enc)
			if b, err := exec.Command(cjpeg, args...).CombinedOutput(); err != nil {
				t.Fatalf("dcmcjpeg %s: %v: %s", c.opts, err, b)
			}
			rows, cols := 512, 512
			if c.src == us {
				rows, cols = 480, 640
			}
			p := codec.Params{Rows: rows, Cols: cols, Samples: c.samples, BitsAllocated: 16, BitsStored: 16}
			f, err := Decode(jpegFrames(t, enc, 1)[0], p)
			if err != nil {
				t.Fatal(err)
			}
			want := dcmtkDecode(t, djpeg, enc, len(f.Samples), f.Precision <= 8)
			got := f.Samples
			if c.samples == 3 && !f.ColorTransformed && !strings.Contains(c.opts, "+cr") && c.lossy {
				ycbcrToRGB(got, 8) // as dicomio would for YBR_FULL*
			}
			maxd, meand := diff(got, want)
			t.Logf("precision %d, vs dcmtk: max abs diff %d, mean %.4f", f.Precision, maxd, meand)
			bound := int32(maxAbsDiff8)
			if f.Precision > 8 {
				bound = maxAbsDiff12
			}
			if (!c.lossy && maxd != 0) || maxd > bound || meand > maxMeanDiff {
				t.Errorf("differs from dcmtk by max %d, mean %.4f", maxd, meand)
			}
		})
	}
}
