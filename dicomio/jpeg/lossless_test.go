package jpeg

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// testTable is a Huffman table for lossless difference categories 0–16:
// category 0 takes 2 bits, 1–5 take 3, then one more bit for each further
// category up to 14 bits, so that codes longer than lutBits are exercised.
var testTable = func() (counts [17]int, vals []byte) {
	counts[2], counts[3] = 1, 5
	for l := 4; l <= 14; l++ {
		counts[l] = 1
	}
	for v := 0; v <= 16; v++ {
		vals = append(vals, byte(v))
	}
	return
}

// bitWriter writes an entropy-coded segment with byte stuffing.
type bitWriter struct {
	out  []byte
	acc  uint32
	nacc uint
}

func (w *bitWriter) put(v uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>uint(i))&1
		w.nacc++
		if w.nacc == 8 {
			w.out = append(w.out, byte(w.acc))
			if byte(w.acc) == 0xFF {
				w.out = append(w.out, 0)
			}
			w.acc, w.nacc = 0, 0
		}
	}
}

// flush pads the last byte with ones (T.81 F.1.2.3).
func (w *bitWriter) flush() {
	for w.nacc != 0 {
		w.put(1, 1)
	}
}

// losslessSpec describes a synthetic lossless image to encode.
type losslessSpec struct {
	w, h, comps, precision, psv, pt, restart int
	interleaved                              bool
}

// encodeLossless is a minimal process-14 encoder used to check the
// decoder on every predictor, point transform, precision, restart
// interval and scan layout. samples are interleaved and already multiples
// of 2^pt.
func encodeLossless(s losslessSpec, samples []int32) []byte {
	counts, vals := testTable()
	var codes [17]uint32
	var lens [17]uint
	code, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		for i := 0; i < counts[l]; i++ {
			codes[vals[k]], lens[vals[k]] = code, uint(l)
			code++
			k++
		}
		code <<= 1
	}
	b := []byte{0xFF, 0xD8}
	sof := []byte{0xFF, 0xC3, 0, byte(8 + 3*s.comps), byte(s.precision), byte(s.h >> 8), byte(s.h), byte(s.w >> 8), byte(s.w), byte(s.comps)}
	for c := 0; c < s.comps; c++ {
		sof = append(sof, byte(c+1), 0x11, 0)
	}
	b = append(b, sof...)
	dht := []byte{0xFF, 0xC4, 0, byte(2 + 17 + len(vals)), 0x00}
	for l := 1; l <= 16; l++ {
		dht = append(dht, byte(counts[l]))
	}
	b = append(append(b, dht...), vals...)
	if s.restart > 0 {
		b = append(b, 0xFF, 0xDD, 0, 4, byte(s.restart>>8), byte(s.restart))
	}
	scans := [][]int{}
	if s.interleaved {
		all := []int{}
		for c := 0; c < s.comps; c++ {
			all = append(all, c)
		}
		scans = append(scans, all)
	} else {
		for c := 0; c < s.comps; c++ {
			scans = append(scans, []int{c})
		}
	}
	for _, scan := range scans {
		sos := []byte{0xFF, 0xDA, 0, byte(6 + 2*len(scan)), byte(len(scan))}
		for _, c := range scan {
			sos = append(sos, byte(c+1), 0x00)
		}
		b = append(b, sos...)
		b = append(b, byte(s.psv), 0, byte(s.pt))
		var w bitWriter
		rst := 0
		for i := 0; i < s.w*s.h; i++ {
			if s.restart > 0 && i > 0 && i%s.restart == 0 {
				w.flush()
				w.out = append(w.out, 0xFF, byte(0xD0+rst%8))
				rst++
			}
			for _, c := range scan {
				x, y := i%s.w, i/s.w
				at := func(x, y int) int32 { return samples[(y*s.w+x)*s.comps+c] >> uint(s.pt) }
				start := 0
				if s.restart > 0 {
					start = i - i%s.restart
				}
				var pred int32
				switch {
				case i == start:
					pred = 1 << uint(s.precision-s.pt-1)
				case start >= y*s.w:
					pred = at(x-1, y)
				case x == 0:
					pred = at(x, y-1)
				default:
					pred = predict(s.psv, at(x-1, y), at(x, y-1), at(x-1, y-1))
				}
				d := (at(x, y) - pred) & 0xFFFF
				if d >= 32768 {
					d -= 65536
				}
				if d == -32768 {
					w.put(codes[16], lens[16])
					continue
				}
				ssss, mag := uint(0), d
				if mag < 0 {
					mag = -mag
				}
				for mag>>ssss != 0 {
					ssss++
				}
				w.put(codes[ssss], lens[ssss])
				if ssss > 0 {
					if d < 0 {
						d += 1<<ssss - 1
					}
					w.put(uint32(d), ssss)
				}
			}
		}
		w.flush()
		b = append(b, w.out...)
	}
	return append(b, 0xFF, 0xD9)
}

// TestLosslessSynthetic round-trips synthetic images through the encoder
// above: every predictor, point transforms, precisions 2–16, restart
// intervals that do and do not divide a line, one and three components in
// interleaved and separate scans, and the 16-bit difference 32768.
func TestLosslessSynthetic(t *testing.T) {
	var cases []losslessSpec
	for psv := 1; psv <= 7; psv++ {
		cases = append(cases,
			losslessSpec{w: 37, h: 23, comps: 1, precision: 16, psv: psv},
			losslessSpec{w: 37, h: 23, comps: 1, precision: 12, psv: psv, pt: 2, restart: 37},
			losslessSpec{w: 16, h: 9, comps: 3, precision: 8, psv: psv, interleaved: true},
			losslessSpec{w: 16, h: 9, comps: 3, precision: 8, psv: psv, restart: 5},
		)
	}
	for p := 2; p <= 16; p++ {
		cases = append(cases, losslessSpec{w: 13, h: 11, comps: 1, precision: p, psv: 1 + p%7, restart: 7})
	}
	cases = append(cases, losslessSpec{w: 1, h: 1, comps: 1, precision: 8, psv: 1})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range cases {
		n := s.w * s.h * s.comps
		samples := make([]int32, n)
		for i := range samples {
			// Smooth ramps plus noise, so that predictors matter.
			x, y := (i/s.comps)%s.w, (i/s.comps)/s.w
			v := int32((x*37+y*101)*(1+i%s.comps)) + rng.Int32N(64)
			samples[i] = (v & (1<<uint(s.precision) - 1)) >> uint(s.pt) << uint(s.pt)
		}
		if s.precision == 16 && n > 2 {
			samples[0], samples[1] = 0, 32768 // difference 32768: SSSS = 16
		}
		data := encodeLossless(s, samples)
		p := codec.Params{Rows: s.h, Cols: s.w, Samples: s.comps, BitsAllocated: 16, BitsStored: 16}
		f, err := Decode(data, p)
		if err != nil {
			t.Errorf("%+v: %v", s, err)
			continue
		}
		if !slices.Equal(f.Samples, samples) || f.Precision != s.precision || f.ColorTransformed {
			t.Errorf("%+v: decoded samples differ", s)
		}
	}
}

// TestSigned checks that signed frames are sign-extended from the
// precision or bits stored, whichever is smaller.
func TestSigned(t *testing.T) {
	s := losslessSpec{w: 4, h: 1, comps: 1, precision: 16, psv: 1}
	samples := []int32{0xFFFF, 0x8000, 0x7FFF, 0x0FFF}
	data := encodeLossless(s, samples)
	for _, tc := range []struct {
		stored int
		want   []int32
	}{
		{16, []int32{-1, -32768, 32767, 4095}},
		{12, []int32{-1, 0, -1, -1}},
	} {
		f, err := Decode(data, codec.Params{Rows: 1, Cols: 4, Samples: 1, BitsAllocated: 16, BitsStored: tc.stored, Signed: true})
		if err != nil || !slices.Equal(f.Samples, tc.want) {
			t.Errorf("bits stored %d: %v, %v; want %v", tc.stored, f.Samples, err, tc.want)
		}
	}
}

// Every entry of the lossless scans' combined lookup decodes what the
// code table followed by the difference bits decodes: on tables with
// codes of every length from 1 to 16 bits, categories 0 to 16, and bits
// of every prefix.
func TestFastTableMatchesTwoSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 40 {
		// A complete-enough code: counts per length that fit, values
		// drawn from the categories 0..16.
		var counts [17]int
		room, total := 2, 0
		for l := 1; l <= 16 && total < 17; l++ {
			n := rng.IntN(min(room, 4) + 1)
			if l == 16 {
				n = min(room, 17-total)
			}
			counts[l] = n
			total += n
			room = (room - n) * 2
		}
		vals := make([]byte, total)
		for i := range vals {
			vals[i] = byte(rng.IntN(17))
		}
		var h huffman
		if err := h.build(counts, vals); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		fast := h.fastTable()
		for p := range 1 << fastBits {
			data := make([]byte, 8)
			acc := uint64(p)<<(64-fastBits) | rng.Uint64()>>fastBits
			for i := range data {
				data[i] = byte(acc >> (56 - 8*i))
			}
			if bytes.IndexByte(data, 0xFF) >= 0 {
				continue // a marker byte would be read differently
			}
			two := bitReader{data: data}
			two.refill()
			e := h.lut[two.acc>>(64-lutBits)]
			if e == 0 {
				if fast[p] != 0 {
					t.Fatalf("trial %d prefix %b: fast entry %#x for a long code", trial, p, fast[p])
				}
				continue
			}
			l, s := uint(e>>8), uint(e&0xFF)
			two.acc <<= l
			two.n -= l
			var want int32
			switch {
			case s > 0 && s < 16:
				want = two.receiveExtend(s)
			case s == 16:
				want = 32768
			}
			f := fast[p]
			used := uint(f>>16) & 0xFF
			if f&fastFull == 0 {
				if used != l || uint(f&0xFFFF) != s {
					t.Fatalf("trial %d prefix %b: code-only entry %#x, want length %d category %d", trial, p, f, l, s)
				}
				continue
			}
			if got := int32(int16(f)); got != want || used != l+s {
				t.Fatalf("trial %d prefix %b: fast entry gives %d in %d bits, two steps give %d in %d", trial, p, got, used, want, l+s)
			}
		}
	}
}
