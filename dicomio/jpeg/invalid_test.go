package jpeg

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	stdjpeg "image/jpeg"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// grayBaseline encodes a w×h 8-bit gradient with Go's image/jpeg: a
// baseline JFIF stream with one component.
func grayBaseline(tb testing.TB, w, h int) ([]byte, *image.Gray) {
	tb.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetGray(x, y, color.Gray{Y: uint8(x*7 + y*3 + (x*y)%11)})
		}
	}
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, img, &stdjpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes(), img
}

// smallLossless is a valid 16×9 three-component lossless stream with
// restart intervals.
func smallLossless() ([]byte, codec.Params) {
	s := losslessSpec{w: 16, h: 9, comps: 3, precision: 8, psv: 4, restart: 16, interleaved: true}
	samples := make([]int32, s.w*s.h*s.comps)
	for i := range samples {
		samples[i] = int32(i * 13 % 251)
	}
	return encodeLossless(s, samples), codec.Params{Rows: 9, Cols: 16, Samples: 3, BitsAllocated: 8, BitsStored: 8}
}

// findMarker returns the index of the first marker m in b.
func findMarker(b []byte, m byte) int {
	return bytes.Index(b, []byte{0xFF, m})
}

// edit returns a copy of b changed by f.
func edit(b []byte, f func([]byte) []byte) []byte {
	return f(append([]byte(nil), b...))
}

// TestInvalid feeds malformed, truncated and unsupported codestreams to
// Decode: each must fail with the stated kind of error, never panic.
func TestInvalid(t *testing.T) {
	ll, llp := smallLossless()
	bl, _ := grayBaseline(t, 24, 17)
	blp := codec.Params{Rows: 17, Cols: 24, Samples: 1, BitsAllocated: 8, BitsStored: 8}
	sof3, dht, sos := findMarker(ll, mSOF3), findMarker(ll, mDHT), findMarker(ll, mSOS)
	sof0 := findMarker(bl, mSOF0)
	corrupt, unsupported := codec.ErrCorrupt, codec.ErrUnsupported
	tests := []struct {
		name string
		data []byte
		p    codec.Params
		want error
	}{
		{"empty", nil, llp, corrupt},
		{"no SOI", ll[2:], llp, corrupt},
		{"SOI only", ll[:2], llp, corrupt},
		{"SOI EOI", []byte{0xFF, 0xD8, 0xFF, 0xD9}, llp, corrupt},
		{"garbage after SOI", []byte{0xFF, 0xD8, 1, 2, 3, 4}, llp, corrupt},
		{"truncated in frame header", ll[:sof3+6], llp, corrupt},
		{"truncated in Huffman table", ll[:dht+10], llp, corrupt},
		{"truncated in scan header", ll[:sos+6], llp, corrupt},
		{"truncated in lossless scan", ll[:sos+40], llp, corrupt},
		{"lossless without EOI", ll[:len(ll)-2], llp, corrupt},
		{"truncated in DCT scan", bl[:len(bl)/2], blp, corrupt},
		{"DCT without EOI", bl[:len(bl)-2], blp, corrupt},
		{"size differs from header", ll, codec.Params{Rows: 9, Cols: 15, Samples: 3, BitsAllocated: 8}, corrupt},
		{"components differ from header", ll, codec.Params{Rows: 9, Cols: 16, Samples: 1, BitsAllocated: 8}, corrupt},
		{"precision above bits allocated", ll, codec.Params{Rows: 9, Cols: 16, Samples: 3, BitsAllocated: 4}, corrupt},
		{"frame over the sample limit", ll, codec.Params{Rows: 9, Cols: 16, Samples: 3, BitsAllocated: 8, MaxSamples: 100}, unsupported},
		{"lossless precision 1", edit(ll, func(b []byte) []byte { b[sof3+4] = 1; return b }), llp, corrupt},
		{"DCT precision 16", edit(bl, func(b []byte) []byte { b[sof0+4] = 16; return b }), blp, corrupt},
		{"zero sampling factor", edit(ll, func(b []byte) []byte { b[sof3+11] = 0x01; return b }), llp, corrupt},
		{"duplicate component id", edit(ll, func(b []byte) []byte { b[sof3+13] = b[sof3+10]; return b }), llp, corrupt},
		{"height from DNL", edit(ll, func(b []byte) []byte { b[sof3+5], b[sof3+6] = 0, 0; return b }), llp, unsupported},
		{"two frame headers", append(append([]byte{0xFF, 0xD8}, ll[sof3:sof3+19]...), ll[2:]...), llp, corrupt},
		{"too many Huffman codes", edit(ll, func(b []byte) []byte { b[dht+5+1] = 3; return b }), llp, corrupt},
		{"scan names unknown component", edit(ll, func(b []byte) []byte { b[sos+5] = 9; return b }), llp, corrupt},
		{"undefined Huffman table", edit(ll, func(b []byte) []byte { b[sos+6] = 0x10; return b }), llp, corrupt},
		{"predictor 0", edit(ll, func(b []byte) []byte { b[sos+11] = 0; return b }), llp, corrupt},
		{"predictor 8", edit(ll, func(b []byte) []byte { b[sos+11] = 8; return b }), llp, corrupt},
		{"point transform at precision", edit(ll, func(b []byte) []byte { b[sos+13] = 8; return b }), llp, corrupt},
		{"restart marker replaced", edit(ll, func(b []byte) []byte {
			i := bytes.Index(b[sos+14:], []byte{0xFF, 0xD0})
			b[sos+14+i+1] = 0xD9
			return b
		}), llp, corrupt},
		{"restart interval longer than marked", edit(ll, func(b []byte) []byte {
			i := findMarker(b, mDRI)
			b[i+5] = 15
			return b
		}), llp, corrupt},
		// A sequential scan (Ss 0, Se 63) is no progressive scan: a DC
		// scan must end at 0.
		{"sequential scan under a progressive frame header", edit(bl, func(b []byte) []byte { b[sof0+1] = mSOF2; return b }), blp, corrupt},
		{"arithmetic", edit(bl, func(b []byte) []byte { b[sof0+1] = 0xC9; return b }), blp, unsupported},
		{"hierarchical", edit(bl, func(b []byte) []byte { b[sof0+1] = 0xC5; return b }), blp, unsupported},
		{"undefined quantization table", edit(bl, func(b []byte) []byte { b[sof0+12] = 3; return b }), blp, corrupt},
		{"component coded twice", append(append([]byte(nil), ll[:len(ll)-2]...), ll[sos:]...), llp, corrupt},
		{"scan before frame", append([]byte{0xFF, 0xD8}, ll[sos:]...), llp, corrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode(tc.data, tc.p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if f.Samples != nil {
				t.Fatalf("samples returned with an error")
			}
		})
	}
}

// TestTruncations cuts valid streams at every length: none may decode.
func TestTruncations(t *testing.T) {
	ll, llp := smallLossless()
	bl, _ := grayBaseline(t, 24, 17)
	blp := codec.Params{Rows: 17, Cols: 24, Samples: 1, BitsAllocated: 8, BitsStored: 8}
	for _, s := range []struct {
		data []byte
		p    codec.Params
	}{{ll, llp}, {bl, blp}} {
		for n := 0; n < len(s.data); n++ {
			_, err := Decode(s.data[:n], s.p)
			if !errors.Is(err, codec.ErrCorrupt) {
				t.Fatalf("cut at %d of %d: %v", n, len(s.data), err)
			}
		}
	}
}

// TestBitFlips flips every bit of small valid streams: each result must be
// an error of either kind or a frame of the declared size and range.
func TestBitFlips(t *testing.T) {
	ll, llp := smallLossless()
	bl, _ := grayBaseline(t, 24, 17)
	blp := codec.Params{Rows: 17, Cols: 24, Samples: 1, BitsAllocated: 8, BitsStored: 8}
	for _, s := range []struct {
		data []byte
		p    codec.Params
	}{{ll, llp}, {bl, blp}} {
		for i := 0; i < 8*len(s.data); i++ {
			b := append([]byte(nil), s.data...)
			b[i/8] ^= 1 << uint(i%8)
			checkResult(t, b, s.p)
		}
	}
}

// checkResult decodes data and checks the error kind or the frame shape.
func checkResult(t *testing.T, data []byte, p codec.Params) {
	t.Helper()
	f, err := Decode(data, p)
	if err != nil {
		if !errorKind(err) {
			t.Fatalf("error of neither kind: %v", err)
		}
		return
	}
	if f.Width != p.Cols || f.Height != p.Rows || f.Components != p.Samples || len(f.Samples) != p.Rows*p.Cols*p.Samples {
		t.Fatalf("frame %dx%dx%d with %d samples for %+v", f.Width, f.Height, f.Components, len(f.Samples), p)
	}
	hi := int32(1)<<uint(f.Precision) - 1
	for _, v := range f.Samples {
		if v < 0 || v > hi {
			t.Fatalf("sample %d outside 0…%d", v, hi)
		}
	}
}

// TestBaselineVsImageJPEG compares the 8-bit baseline path with Go's
// image/jpeg on a gray image; the two IDCTs differ in rounding only.
func TestBaselineVsImageJPEG(t *testing.T) {
	data, _ := grayBaseline(t, 61, 43)
	want, err := stdjpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	g := want.(*image.Gray)
	f, err := Decode(data, codec.Params{Rows: 43, Cols: 61, Samples: 1, BitsAllocated: 8, BitsStored: 8})
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 43; y++ {
		for x := 0; x < 61; x++ {
			d := f.Samples[y*61+x] - int32(g.GrayAt(x, y).Y)
			if d < -maxAbsDiff8 || d > maxAbsDiff8 {
				t.Fatalf("(%d,%d): %d vs image/jpeg %d", x, y, f.Samples[y*61+x], g.GrayAt(x, y).Y)
			}
		}
	}
}

// errorKind reports whether err is one of the two codec errors.
func errorKind(err error) bool {
	return errors.Is(err, codec.ErrCorrupt) || errors.Is(err, codec.ErrUnsupported)
}
