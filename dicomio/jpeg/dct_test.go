package jpeg

import (
	"fmt"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// dcSpec describes a synthetic DCT frame whose blocks are flat (DC only),
// so that the decoded samples are known exactly without a forward DCT.
type dcSpec struct {
	w, h, precision, restart int
	sampling                 []byte // one HV byte per component
}

// dcAt is the DC value of block (bx, by) of component c.
func dcAt(c, bx, by int, precision int) int32 {
	v := int32((bx*31+by*17+c*53)%97) - 48
	return v << uint(precision-8)
}

// encodeDC writes a sequential DCT stream (SOF0 for 8-bit, SOF1 for
// 12-bit) with flat blocks, quantizer 8 for DC (so a block decodes to
// its DC value plus the level shift), one interleaved scan and restart
// markers every s.restart MCUs.
func encodeDC(s dcSpec) []byte {
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
	n := len(s.sampling)
	b := []byte{0xFF, 0xD8, 0xFF, 0xDB, 0, 67, 0, 8}
	for i := 1; i < 64; i++ {
		b = append(b, 1)
	}
	sof := byte(mSOF0)
	if s.precision == 12 {
		sof = mSOF1
	}
	b = append(b, 0xFF, sof, 0, byte(8+3*n), byte(s.precision), byte(s.h>>8), byte(s.h), byte(s.w>>8), byte(s.w), byte(n))
	hmax, vmax := 1, 1
	for c, hv := range s.sampling {
		b = append(b, byte(c+1), hv, 0)
		hmax, vmax = max(hmax, int(hv>>4)), max(vmax, int(hv&15))
	}
	b = append(b, 0xFF, 0xC4, 0, byte(2+17+len(vals)), 0x00)
	for l := 1; l <= 16; l++ {
		b = append(b, byte(counts[l]))
	}
	b = append(b, vals...)
	b = append(b, 0xFF, 0xC4, 0, 2+17+1, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00)
	if s.restart > 0 {
		b = append(b, 0xFF, 0xDD, 0, 4, byte(s.restart>>8), byte(s.restart))
	}
	b = append(b, 0xFF, 0xDA, 0, byte(6+2*n), byte(n))
	for c := 0; c < n; c++ {
		b = append(b, byte(c+1), 0x00)
	}
	b = append(b, 0, 63, 0)

	var w bitWriter
	pred := make([]int32, n)
	block := func(c, bx, by int) {
		d := dcAt(c, bx, by, s.precision) - pred[c]
		pred[c] += d
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
		w.put(0, 1) // EOB
	}
	type mcu struct{ x, y int }
	var mcus []mcu
	if n == 1 {
		for by := 0; by < (s.h+7)/8; by++ {
			for bx := 0; bx < (s.w+7)/8; bx++ {
				mcus = append(mcus, mcu{bx, by})
			}
		}
	} else {
		for my := 0; my < (s.h+8*vmax-1)/(8*vmax); my++ {
			for mx := 0; mx < (s.w+8*hmax-1)/(8*hmax); mx++ {
				mcus = append(mcus, mcu{mx, my})
			}
		}
	}
	for i, m := range mcus {
		if s.restart > 0 && i > 0 && i%s.restart == 0 {
			w.flush()
			w.out = append(w.out, 0xFF, byte(0xD0+(i/s.restart-1)%8))
			clear(pred)
		}
		if n == 1 {
			block(0, m.x, m.y)
			continue
		}
		for c, hv := range s.sampling {
			h, v := int(hv>>4), int(hv&15)
			for by := 0; by < v; by++ {
				for bx := 0; bx < h; bx++ {
					block(c, m.x*h+bx, m.y*v+by)
				}
			}
		}
	}
	w.flush()
	return append(append(b, w.out...), 0xFF, 0xD9)
}

// TestDCTRestarts decodes flat-block DCT frames with and without restart
// intervals, interleaved and single-component, 8 and 12 bits, and checks
// every sample of the full-resolution components exactly.
func TestDCTRestarts(t *testing.T) {
	cases := []dcSpec{
		{w: 37, h: 21, precision: 8, sampling: []byte{0x11}},
		{w: 37, h: 21, precision: 8, restart: 3, sampling: []byte{0x11}},
		{w: 37, h: 21, precision: 8, restart: 1, sampling: []byte{0x22}},
		{w: 37, h: 21, precision: 12, restart: 4, sampling: []byte{0x11}},
		{w: 40, h: 17, precision: 8, restart: 2, sampling: []byte{0x11, 0x11, 0x11}},
		{w: 40, h: 17, precision: 12, restart: 5, sampling: []byte{0x11, 0x11, 0x11}},
		{w: 45, h: 33, precision: 8, restart: 3, sampling: []byte{0x22, 0x11, 0x11}},
		{w: 45, h: 33, precision: 8, restart: 7, sampling: []byte{0x21, 0x11, 0x11}},
		{w: 45, h: 33, precision: 8, sampling: []byte{0x41, 0x11, 0x11}},
	}
	for _, s := range cases {
		t.Run(fmt.Sprintf("%dx%d_p%d_r%d_%x", s.w, s.h, s.precision, s.restart, s.sampling), func(t *testing.T) {
			n := len(s.sampling)
			p := codec.Params{Rows: s.h, Cols: s.w, Samples: n, BitsAllocated: 16, BitsStored: 16}
			f, err := Decode(encodeDC(s), p)
			if err != nil {
				t.Fatal(err)
			}
			if f.ColorTransformed {
				t.Fatal("converted a stream that declares no colour space")
			}
			hmax, vmax := 1, 1
			for _, hv := range s.sampling {
				hmax, vmax = max(hmax, int(hv>>4)), max(vmax, int(hv&15))
			}
			for c, hv := range s.sampling {
				if n > 1 && (int(hv>>4) != hmax || int(hv&15) != vmax) {
					continue // upsampled: not flat at block edges
				}
				for y := 0; y < s.h; y++ {
					for x := 0; x < s.w; x++ {
						want := dcAt(c, x/8, y/8, s.precision) + 1<<uint(s.precision-1)
						if got := f.Samples[(y*s.w+x)*n+c]; got != want {
							t.Fatalf("component %d (%d,%d) = %d, want %d", c, x, y, got, want)
						}
					}
				}
			}
		})
	}
}
