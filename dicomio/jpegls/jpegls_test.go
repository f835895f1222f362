package jpegls

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// testImage makes a w×h image with nc components of the given precision:
// smooth gradients with flat areas (run mode) and noise (regular mode).
func testImage(w, h, nc, precision int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 7))
	maxVal := 1<<precision - 1
	img := make([]int, w*h*nc)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < nc; c++ {
				var v int
				switch {
				case y < h/4:
					v = maxVal / 3 // flat: runs to the end of the line
				case x < w/3:
					v = (x*maxVal/w + y*c) % (maxVal + 1) // gradient
				case x%7 == 0:
					v = maxVal // edges that interrupt runs
				default:
					v = rng.IntN(maxVal + 1)
				}
				img[(y*w+x)*nc+c] = v
			}
		}
	}
	return img
}

func params(w, h, nc, precision int, signed bool) codec.Params {
	return codec.Params{Rows: h, Cols: w, Samples: nc, BitsAllocated: 16, BitsStored: precision, Signed: signed, MaxSamples: 1 << 24}
}

// TestRoundTrip decodes streams made by the test encoder over the range
// of precisions, NEAR values, interleave modes, restart intervals and
// preset parameters, and checks the reconstruction is exact (lossless) or
// within NEAR and identical to the encoder's own reconstruction.
func TestRoundTrip(t *testing.T) {
	type tc struct {
		w, h, nc int
		opt      encOptions
	}
	var cases []tc
	for _, p := range []int{2, 5, 7, 8, 10, 12, 15, 16} {
		cases = append(cases, tc{33, 17, 1, encOptions{precision: p}})
		cases = append(cases, tc{20, 9, 1, encOptions{precision: p, near: min(3, (1<<p-1)/2)}})
	}
	for _, ilv := range []int{ilvNone, ilvLine, ilvSample} {
		cases = append(cases,
			tc{31, 12, 3, encOptions{precision: 8, ilv: ilv}},
			tc{31, 12, 3, encOptions{precision: 12, ilv: ilv, near: 2}},
			tc{16, 10, 3, encOptions{precision: 8, ilv: ilv, restart: 3}},
		)
	}
	cases = append(cases,
		tc{40, 20, 1, encOptions{precision: 8, restart: 1}},
		tc{40, 20, 1, encOptions{precision: 16, restart: 7, near: 1}},
		tc{40, 20, 1, encOptions{precision: 12, presets: &presets{t1: 5, t2: 20, t3: 70, reset: 32}}},
		tc{40, 20, 1, encOptions{precision: 12, presets: &presets{maxVal: 1000}}},
		tc{40, 20, 1, encOptions{precision: 16, near: 4, presets: &presets{reset: 255}}},
		tc{1, 1, 1, encOptions{precision: 8}},
		tc{1, 30, 1, encOptions{precision: 8}},
		tc{30, 1, 3, encOptions{precision: 16, ilv: ilvSample}},
	)
	for i, c := range cases {
		name := fmt.Sprintf("%d_%dx%dx%d_P%d_near%d_ilv%d_rst%d_lse%v", i, c.w, c.h, c.nc, c.opt.precision, c.opt.near, c.opt.ilv, c.opt.restart, c.opt.presets != nil)
		t.Run(name, func(t *testing.T) {
			img := testImage(c.w, c.h, c.nc, c.opt.precision, uint64(i))
			if c.opt.presets != nil && c.opt.presets.maxVal != 0 {
				for j := range img {
					img[j] = min(img[j], c.opt.presets.maxVal)
				}
			}
			data, err := encode(img, c.w, c.h, c.nc, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			fr, err := Decode(data, params(c.w, c.h, c.nc, c.opt.precision, false))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if fr.Width != c.w || fr.Height != c.h || fr.Components != c.nc || fr.Precision != c.opt.precision {
				t.Fatalf("frame %dx%dx%d P%d", fr.Width, fr.Height, fr.Components, fr.Precision)
			}
			for j, v := range fr.Samples {
				if d := int(v) - img[j]; d > c.opt.near || d < -c.opt.near {
					t.Fatalf("sample %d is %d, want %d ± %d", j, v, img[j], c.opt.near)
				}
			}
		})
	}
}

// TestSigned checks that samples are sign-extended from the code stream's
// precision when the header says the pixels are signed.
func TestSigned(t *testing.T) {
	img := []int{0, 1, 0x3FFF, 0x4000, 0x7FFF, 0x1234}
	data, err := encode(img, 3, 2, 1, encOptions{precision: 15})
	if err != nil {
		t.Fatal(err)
	}
	fr, err := Decode(data, params(3, 2, 1, 15, true))
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{0, 1, 0x3FFF, -0x4000, -1, 0x1234}
	for i, v := range fr.Samples {
		if v != want[i] {
			t.Errorf("sample %d = %d, want %d", i, v, want[i])
		}
	}
}

// TestDefaultThresholds checks the defaults of T.87 C.2.4.1.1.1 against
// the values the standard's Table C.3 and CharLS give.
func TestDefaultThresholds(t *testing.T) {
	tests := []struct {
		precision, near int
		t1, t2, t3      int
	}{
		{8, 0, 3, 7, 21},
		{8, 2, 9, 17, 35},
		{12, 0, 18, 67, 276},
		{16, 0, 18, 67, 276},
		{16, 3, 27, 82, 297},
		{7, 0, 2, 3, 10},
		{4, 0, 2, 3, 4},
		{2, 0, 2, 3, 3},
	}
	for _, tt := range tests {
		cp, err := newCodingParams(tt.precision, tt.near, presets{})
		if err != nil {
			t.Fatalf("P%d NEAR%d: %v", tt.precision, tt.near, err)
		}
		if cp.t1 != tt.t1 || cp.t2 != tt.t2 || cp.t3 != tt.t3 {
			t.Errorf("P%d NEAR%d: thresholds %d %d %d, want %d %d %d", tt.precision, tt.near, cp.t1, cp.t2, cp.t3, tt.t1, tt.t2, tt.t3)
		}
	}
}

// validStream is a small code stream that exercises regular and run mode.
func validStream(t testing.TB) []byte {
	data, err := encode(testImage(24, 16, 1, 8, 1), 24, 16, 1, encOptions{precision: 8})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestInvalid feeds malformed, truncated and unsupported code streams and
// checks each fails with the right kind of error and no panic.
func TestInvalid(t *testing.T) {
	valid := validStream(t)
	p := params(24, 16, 1, 8, false)
	// Offsets in valid: SOI 0, SOF55 2 (13 bytes), SOS 15 (10 bytes), data 25.
	patch := func(off int, b ...byte) []byte {
		d := append([]byte(nil), valid...)
		copy(d[off:], b)
		return d
	}
	withSegment := func(marker byte, payload ...byte) []byte {
		d := append([]byte{0xFF, markerSOI}, appendSegment(nil, marker, payload...)...)
		return append(d, valid[2:]...)
	}
	tests := []struct {
		name string
		data []byte
		p    codec.Params
		want error
	}{
		{"empty", nil, p, codec.ErrCorrupt},
		{"not jpeg", []byte("DICM not a code stream"), p, codec.ErrCorrupt},
		{"soi only", valid[:2], p, codec.ErrCorrupt},
		{"cut in SOF", valid[:10], p, codec.ErrCorrupt},
		{"cut in SOS", valid[:18], p, codec.ErrCorrupt},
		{"cut at scan start", valid[:25], p, codec.ErrCorrupt},
		{"cut mid scan", valid[:len(valid)/2], p, codec.ErrCorrupt},
		{"cut before EOI", valid[:len(valid)-8], p, codec.ErrCorrupt},
		{"zeroed scan", append(append(append([]byte(nil), valid[:25]...), make([]byte, len(valid)-27)...), 0xFF, 0xD9), p, codec.ErrCorrupt},
		{"precision 1", patch(6, 1), p, codec.ErrCorrupt},
		{"precision 17", patch(6, 17), p, codec.ErrCorrupt},
		{"size mismatch", valid, params(25, 16, 1, 8, false), codec.ErrCorrupt},
		{"samples mismatch", valid, params(24, 16, 3, 8, false), codec.ErrCorrupt},
		{"too large", valid, codec.Params{Rows: 16, Cols: 24, Samples: 1, MaxSamples: 100}, codec.ErrUnsupported},
		{"precision above bits allocated", valid, codec.Params{Rows: 16, Cols: 24, Samples: 1, BitsAllocated: 4, BitsStored: 4}, codec.ErrCorrupt},
		{"bad segment length", patch(4, 0, 1), p, codec.ErrCorrupt},
		{"unknown scan component", patch(20, 9), p, codec.ErrCorrupt},
		{"interleave 3", patch(23, 3), p, codec.ErrCorrupt},
		{"NEAR too large", patch(22, 200), p, codec.ErrCorrupt},
		{"point transform", patch(24, 1), p, codec.ErrUnsupported},
		{"mapping table index", patch(21, 1), p, codec.ErrUnsupported},
		{"subsampled", patch(13, 0x21), p, codec.ErrUnsupported},
		{"mapping table LSE", withSegment(markerLSE, 2, 1, 1, 0), p, codec.ErrUnsupported},
		{"unknown LSE", withSegment(markerLSE, 9), p, codec.ErrCorrupt},
		{"bad LSE thresholds", withSegment(markerLSE, 1, 0, 0, 0, 9, 0, 5, 0, 0, 0, 0), p, codec.ErrCorrupt},
		{"LSE MAXVAL above precision", withSegment(markerLSE, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0), p, codec.ErrCorrupt},
		{"HP colour transform", withSegment(markerAPP8, 'm', 'r', 'f', 'x', 1), p, codec.ErrUnsupported},
		{"baseline JPEG", patch(3, 0xC0), p, codec.ErrUnsupported},
		{"stray marker", patch(2, 0xFF, 0x01), p, codec.ErrCorrupt},
		{"restart marker missing", withSegment(markerDRI, 0, 2), p, codec.ErrCorrupt},
		{"oversize after first scan", append(append([]byte(nil), valid[:len(valid)-2]...), appendSegment(nil, markerLSE, 4, 2, 0, 64, 0, 64)...), p, codec.ErrCorrupt},
		{"SOS before SOF", append([]byte{0xFF, markerSOI}, valid[15:]...), p, codec.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.data, tt.p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestBitFlips flips every bit of a valid stream in turn: each result must
// either decode or fail with a codec error, never panic.
func TestBitFlips(t *testing.T) {
	valid := validStream(t)
	p := params(24, 16, 1, 8, false)
	failed := 0
	for i := 0; i < 8*len(valid); i++ {
		d := append([]byte(nil), valid...)
		d[i/8] ^= 1 << (i % 8)
		if _, err := Decode(d, p); err != nil {
			if !errors.Is(err, codec.ErrCorrupt) && !errors.Is(err, codec.ErrUnsupported) {
				t.Fatalf("bit %d: error %v is neither corrupt nor unsupported", i, err)
			}
			failed++
		}
	}
	t.Logf("%d of %d single-bit flips detected", failed, 8*len(valid))
}

// TestFastLine checks that the inlined lossless line decoder and the
// general one give the same samples and the same errors.
func TestFastLine(t *testing.T) {
	var streams [][]byte
	for i, p := range []int{2, 8, 12, 16} {
		data, err := encode(testImage(37, 21, 1, p, uint64(i)), 37, 21, 1, encOptions{precision: p, restart: 5})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, data)
	}
	valid := validStream(t)
	for i := 0; i < 8*len(valid); i += 3 {
		d := append([]byte(nil), valid...)
		d[i/8] ^= 1 << (i % 8)
		streams = append(streams, d)
	}
	// A real chest radiograph, whole and with bytes of its scan data
	// changed here and there.
	var films [][]byte
	var filmParams codec.Params
	if tf, err := readTestFile(benchFiles[0].path); err == nil {
		film := tf.frames[0]
		films = append(films, film)
		filmParams = tf.params
		rng := rand.New(rand.NewPCG(7, 7))
		for range 12 {
			d := append([]byte(nil), film...)
			for range 1 + rng.IntN(3) {
				d[100+rng.IntN(len(d)-102)] = byte(rng.IntN(256))
			}
			films = append(films, d)
		}
	} else {
		t.Logf("no chest radiograph (../shared absent?): %v", err)
	}
	asm := regularAsm
	defer func() { useFastLine, regularAsm = true, asm }()
	for i, data := range append(streams, films...) {
		p := fuzzParams(data, false)
		if i >= len(streams) {
			p = filmParams
		}
		useFastLine = false
		slow, errSlow := Decode(data, p)
		// The fast line with the Go loop, and by hand where there is one.
		for _, a := range []bool{false, haveRegularAsm} {
			useFastLine, regularAsm = true, a
			fast, errFast := Decode(data, p)
			if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
				t.Fatalf("stream %d (asm %v): fast error %v, general error %v", i, a, errFast, errSlow)
			}
			if !slices.Equal(fast.Samples, slow.Samples) {
				t.Fatalf("stream %d (asm %v): fast and general decoders differ", i, a)
			}
		}
	}
	if !haveRegularAsm {
		t.Log("no hand-written regular-mode loop here: only the Go one was compared")
	}
}

// TestPredict checks the branch-free median against the three cases of
// T.87 A.4.1 as the standard writes them.
func TestPredict(t *testing.T) {
	for ra := 0; ra < 12; ra++ {
		for rb := 0; rb < 12; rb++ {
			for rc := 0; rc < 12; rc++ {
				var want int
				switch {
				case rc >= max(ra, rb):
					want = min(ra, rb)
				case rc <= min(ra, rb):
					want = max(ra, rb)
				default:
					want = ra + rb - rc
				}
				if got := predict(ra, rb, rc); got != want {
					t.Fatalf("predict(%d, %d, %d) = %d, want %d", ra, rb, rc, got, want)
				}
			}
		}
	}
}

// TestUnstuffMatchesBits checks unstuff against dropping the stuffed bits
// one bit at a time, on random segments rich in 0xFF bytes (runs of them
// included, as corrupt data has) and on the chest radiograph's scan.
func TestUnstuffMatchesBits(t *testing.T) {
	reference := func(seg []byte) ([]byte, int) {
		var bitsOut []byte
		prevFF := false
		for _, b := range seg {
			n := 8
			if prevFF {
				n = 7
			}
			for i := n - 1; i >= 0; i-- {
				bitsOut = append(bitsOut, b>>uint(i)&1)
			}
			prevFF = b == 0xFF
		}
		out := make([]byte, (len(bitsOut)+7)/8)
		for i, v := range bitsOut {
			out[i/8] |= v << uint(7-i%8)
		}
		return out, len(bitsOut)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	var segs [][]byte
	for n := range 200 {
		seg := make([]byte, n)
		for i := range seg {
			if rng.IntN(5) == 0 {
				seg[i] = 0xFF
			} else {
				seg[i] = byte(rng.IntN(256))
			}
		}
		segs = append(segs, seg)
	}
	if tf, err := readTestFile(benchFiles[0].path); err == nil {
		segs = append(segs, tf.frames[0])
	}
	buf := make([]byte, 0, 64)
	for _, seg := range segs {
		want, wantBits := reference(seg)
		got, gotBits := unstuff(buf[:0], seg)
		if gotBits != wantBits || !bytes.Equal(got, want) {
			t.Fatalf("segment of %d bytes: %d bits % x, want %d bits % x", len(seg), gotBits, got, wantBits, want)
		}
		if cap(got)-len(got) < padLen {
			t.Fatalf("segment of %d bytes: room for %d bytes of padding, want %d", len(seg), cap(got)-len(got), padLen)
		}
		buf = got
	}
}
