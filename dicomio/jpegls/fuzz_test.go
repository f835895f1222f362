package jpegls

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// fuzzParams builds the header parameters a fuzzed stream would match, by
// reading its SOF55 segment, so that mutations get past Params.Check and
// into the scan decoder. The sample limit keeps each run small.
func fuzzParams(data []byte, signed bool) codec.Params {
	p := codec.Params{Rows: 1, Cols: 1, Samples: 1, BitsAllocated: 16, BitsStored: 16, Signed: signed, MaxSamples: 1 << 18}
	if i := bytes.Index(data, []byte{0xFF, markerSOF55}); i >= 0 && i+12 <= len(data) {
		p.Rows = be16(data[i+5:])
		p.Cols = be16(data[i+7:])
		p.Samples = int(data[i+9])
	}
	return p
}

func FuzzDecode(f *testing.F) {
	for i, opt := range []encOptions{
		{precision: 8},
		{precision: 12, near: 2},
		{precision: 16, restart: 3},
		{precision: 5, presets: &presets{t1: 3, t2: 5, t3: 9, reset: 20}},
	} {
		img := testImage(19, 11, 1, opt.precision, uint64(i))
		if data, err := encode(img, 19, 11, 1, opt); err == nil {
			f.Add(data, false)
		}
	}
	for ilv := ilvNone; ilv <= ilvSample; ilv++ {
		if data, err := encode(testImage(13, 7, 3, 8, 9), 13, 7, 3, encOptions{precision: 8, ilv: ilv}); err == nil {
			f.Add(data, false)
		}
	}
	// Small real frames from the corpus, when it is there (large ones
	// make minimisation crawl).
	for _, name := range []string{
		"nema-wg04-and-pydicom/data/pydicom/MR_small_jpeg_ls_lossless.dcm",
		"pydicom-data/data/JLSL_08_07_0_1F.dcm",
		"pydicom-data/data/JLSL_16_15_1_1F.dcm",
	} {
		path := filepath.Join(corpusDir, name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if tf, err := readTestFile(path); err == nil && len(tf.frames) > 0 {
			f.Add(tf.frames[0], tf.params.Signed)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, signed bool) {
		p := fuzzParams(data, signed)
		fr, err := Decode(data, p)
		if err != nil {
			if !errors.Is(err, codec.ErrCorrupt) && !errors.Is(err, codec.ErrUnsupported) {
				t.Fatalf("error %v is neither corrupt nor unsupported", err)
			}
			return
		}
		if len(fr.Samples) != fr.Width*fr.Height*fr.Components || fr.Width != p.Cols || fr.Height != p.Rows {
			t.Fatalf("frame %dx%dx%d with %d samples for params %+v", fr.Width, fr.Height, fr.Components, len(fr.Samples), p)
		}
		maxVal := int32(1)<<fr.Precision - 1
		for _, v := range fr.Samples {
			if !signed && (v < 0 || v > maxVal) {
				t.Fatalf("sample %d outside 0…%d", v, maxVal)
			}
		}
	})
}
