package jpeg

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// fuzzParams takes the frame size from the first frame header in data, so
// that mutated streams get past the size check and into the scans.
func fuzzParams(data []byte) codec.Params {
	p := codec.Params{Rows: 8, Cols: 8, Samples: 1, BitsAllocated: 16, BitsStored: 16, MaxSamples: 1 << 16}
	for i := 0; i+10 < len(data); i++ {
		if data[i] == 0xFF && data[i+1] >= 0xC0 && data[i+1] <= 0xCF && data[i+1] != mDHT && data[i+1] != mDAC {
			p.Rows = int(data[i+5])<<8 | int(data[i+6])
			p.Cols = int(data[i+7])<<8 | int(data[i+8])
			p.Samples = int(data[i+9])
			p.Signed = data[i+4]%2 == 1
			break
		}
	}
	return p
}

// FuzzDecode decodes arbitrary bytes: Decode must not panic, must fail
// with ErrCorrupt or ErrUnsupported, or return a frame of the declared
// size with samples in range.
func FuzzDecode(f *testing.F) {
	ll, _ := smallLossless()
	bl, _ := grayBaseline(f, 24, 17)
	f.Add(ll)
	f.Add(bl)
	f.Add(encodeDC(dcSpec{w: 20, h: 12, precision: 8, restart: 2, sampling: []byte{0x22, 0x11, 0x11}}))
	f.Add(encodeDC(dcSpec{w: 9, h: 9, precision: 12, restart: 1, sampling: []byte{0x11}}))
	for _, s := range []losslessSpec{
		{w: 9, h: 7, comps: 1, precision: 16, psv: 6, restart: 4},
		{w: 5, h: 4, comps: 3, precision: 12, psv: 7, pt: 1},
	} {
		f.Add(encodeLossless(s, make([]int32, s.w*s.h*s.comps)))
	}
	if _, err := os.Stat(filepath.Join(corpusDir, "INVENTORY.tsv")); err == nil {
		for _, name := range []string{
			"nema-wg04-and-pydicom/data/pydicom/SC_rgb_small_odd_jpeg.dcm",
			"nema-wg04-and-pydicom/data/pydicom/SC_rgb_dcmtk_+eb+cy+s2.dcm",
			"nema-wg04-and-pydicom/data/pydicom/SC_rgb_jpeg_lossy_gdcm.dcm",
			"nema-wg04-and-pydicom/data/pydicom/SC_rgb_jpeg_gdcm.dcm",
		} {
			f.Add(jpegFrames(f, filepath.Join(corpusDir, name), 1)[0])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := fuzzParams(data)
		fr, err := Decode(data, p)
		if err != nil {
			if !errorKind(err) {
				t.Fatalf("error of neither kind: %v", err)
			}
			return
		}
		if len(fr.Samples) != p.Rows*p.Cols*p.Samples {
			t.Fatalf("%d samples for %+v", len(fr.Samples), p)
		}
	})
}
