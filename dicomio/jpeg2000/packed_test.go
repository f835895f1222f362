package jpeg2000

import (
	"encoding/binary"
	"slices"
	"testing"
)

// packHeaders rewrites a single-tile, single-tile-part codestream without
// SOP/EPH so that its packet headers travel in PPT (tile-part header) or
// PPM (main header) marker segments, split over two segments stored out
// of order to exercise their reassembly.
func packHeaders(t *testing.T, cs []byte, ppm bool) []byte {
	t.Helper()
	var spans []packetSpan
	traceSpans = func(_ int, s []packetSpan) { spans = slices.Clone(s) }
	defer func() { traceSpans = nil }()
	if _, err := Decode(cs, fuzzParams(cs)); err != nil || len(spans) == 0 {
		t.Fatalf("decode original: %v (%d packets)", err, len(spans))
	}
	sot := markerAt(t, cs, mSOT)
	psot := int(binary.BigEndian.Uint32(cs[sot+6:]))
	sod := sot + 12
	for binary.BigEndian.Uint16(cs[sod:]) != mSOD {
		sod += 2 + int(binary.BigEndian.Uint16(cs[sod+2:]))
	}
	data := cs[sod+2 : sot+psot]
	var headers, bodies []byte
	for _, s := range spans {
		headers = append(headers, data[s.start:s.hdrEnd]...)
		bodies = append(bodies, data[s.hdrEnd:s.end]...)
	}
	seg := func(code int, z byte, body []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(code))
		b = binary.BigEndian.AppendUint16(b, uint16(3+len(body)))
		return append(append(b, z), body...)
	}
	var mainExtra, tileExtra []byte
	if ppm {
		all := binary.BigEndian.AppendUint32(nil, uint32(len(headers)))
		all = append(all, headers...)
		half := len(all) / 2
		mainExtra = append(seg(mPPM, 1, all[half:]), seg(mPPM, 0, all[:half])...)
	} else {
		half := len(headers) / 2
		tileExtra = append(seg(mPPT, 1, headers[half:]), seg(mPPT, 0, headers[:half])...)
	}
	out := slices.Concat(cs[:sot], mainExtra)
	tp := slices.Concat(cs[sot:sod], tileExtra, []byte{0xFF, 0x93}, bodies)
	binary.BigEndian.PutUint32(tp[6:], uint32(len(tp)))
	return slices.Concat(out, tp, []byte{0xFF, 0xD9})
}

func TestPackedHeaders(t *testing.T) {
	seed, p := loadSeed(t)
	want, err := Decode(seed, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ppm  bool
	}{{"PPT", false}, {"PPM", true}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(packHeaders(t, seed, tc.ppm), p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Samples, want.Samples) {
				t.Fatal("decode with packed headers differs")
			}
		})
	}
}
