package jpeg2000

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// fuzzSeeds are small real frames covering lossless and lossy, grey and
// colour, LRCP and other progressions found in the corpus; the HTJ2K
// codestreams of htTestdata are added to them.
var fuzzSeeds = []string{
	"nema-wg04-and-pydicom/data/pydicom/MR_small_jp2klossless.dcm",
	"nema-wg04-and-pydicom/data/pydicom/SC_rgb_gdcm_KY.dcm",
	"nema-wg04-and-pydicom/data/pydicom/693_J2KI.dcm",
	"nema-wg04-and-pydicom/data/pydicom/JPEG2000.dcm",
	"nema-wg04-and-pydicom/data/pydicom/emri_small_jpeg_2k_lossless.dcm",
	"pydicom-data/data/liver_nonbyte_aligned_j2k.dcm",
}

// fuzzParams derives parameters from the codestream's own SIZ, so that
// mutated streams get past the size check and exercise the decoder.
func fuzzParams(data []byte) codec.Params {
	p := codec.Params{Rows: 1, Cols: 1, Samples: 1, BitsAllocated: 16, BitsStored: 16, MaxSamples: 1 << 18}
	data, err := unwrapJP2(data)
	if err != nil || len(data) < 6 {
		return p
	}
	if _, body, _, err := readSegment(data[2:]); err == nil {
		if s, err := parseSIZ(body); err == nil {
			p.Rows, p.Cols, p.Samples = s.y1-s.y0, s.x1-s.x0, len(s.comps)
		}
	}
	return p
}

// fuzzDecodeLimit is the longest one fuzzed decode may take. The largest
// frame the fuzz parameters allow (2^18 samples) decodes in milliseconds.
const fuzzDecodeLimit = 5 * time.Second

func FuzzDecode(f *testing.F) {
	for _, name := range fuzzSeeds {
		img, err := readDICOM(filepath.Join(corpusDir, name))
		if err != nil {
			continue // corpus absent: the fuzzer still runs from the synthetic seeds
		}
		for i, fr := range img.frames {
			if i < 2 {
				f.Add(fr)
			}
		}
	}
	for _, tc := range htCases() {
		if data, err := os.ReadFile(filepath.Join(htTestdata, tc.file)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte{0xFF, 0x4F, 0xFF, 0x51})
	f.Add(jp2([]byte{0xFF, 0x4F, 0xFF, 0x51}))
	recoverPanics = false
	f.Cleanup(func() { recoverPanics = true })
	f.Fuzz(func(t *testing.T, data []byte) {
		// A decode that runs for seconds on a few kilobytes is a hang as far
		// as an agent is concerned; fail it so the fuzzer keeps the input.
		type result struct {
			fr  codec.Frame
			err error
		}
		done := make(chan result, 1)
		go func() {
			fr, err := Decode(data, fuzzParams(data))
			done <- result{fr, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(fuzzDecodeLimit):
			t.Fatalf("decoding %d bytes took more than %v", len(data), fuzzDecodeLimit)
		}
		fr, err := r.fr, r.err
		if err != nil {
			return
		}
		if len(fr.Samples) != fr.Width*fr.Height*fr.Components {
			t.Fatalf("%d samples for %dx%dx%d", len(fr.Samples), fr.Width, fr.Height, fr.Components)
		}
	})
}
