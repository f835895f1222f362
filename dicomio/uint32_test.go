package dicomio

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// le32 returns the little endian bytes of 32-bit words.
func le32(words ...uint32) []byte {
	var out []byte
	for _, w := range words {
		out = binary.LittleEndian.AppendUint32(out, w)
	}
	return out
}

// rleFrame32 encodes single-sample 32-bit words as an RLE frame of four
// segments, one byte plane each, most significant first, of literal runs
// (PS3.5 G.3).
func rleFrame32(words []uint32) []byte {
	var segs [][]byte
	for b := range 4 {
		plane := make([]byte, len(words))
		for i, w := range words {
			plane[i] = byte(w >> (8 * (3 - b)))
		}
		segs = append(segs, rleLiterals(plane))
	}
	out := make([]byte, 64)
	binary.LittleEndian.PutUint32(out, uint32(len(segs)))
	for i, seg := range segs {
		binary.LittleEndian.PutUint32(out[4+4*i:], uint32(len(out)))
		out = append(out, seg...)
	}
	return out
}

// TestUnsigned32 checks that unsigned 32-bit samples above 2^31-1, which
// are held as their int32 bit pattern, keep their value: DecodeStored
// returns the words as stored, and the display pipeline ranks them above
// every smaller value (they are not read as negative), for native and RLE
// pixel data, with the automatic window (through its histogram and its
// sorting paths, and the rendering lookup table or not), a file's window
// and colour. Signed 32-bit samples stay signed.
func TestUnsigned32(t *testing.T) {
	native := func(s spec, words ...uint32) spec {
		s.rows, s.cols, s.bitsAllocated, s.raw = 1, len(words)/max(s.samples, 1), 32, le32(words...)
		return s
	}
	rle := func(words ...uint32) []byte {
		data := encodeDICOM(t, spec{ts: uidRLE, rows: 1, cols: len(words), bitsAllocated: 32, raw: make([]byte, 4*len(words)),
			omit: []tag.Tag{tag.PixelData}})
		return append(data, encapsulatedElement(nil, [][]byte{rleFrame32(words)})...)
	}
	wide := []uint32{0, 0x7FFFFFFF, 0x80000000, 0xC0000000, 0xFFFFFFF0}
	narrow := []uint32{0xFFFFFFF0, 0xFFFFFFF1, 0xFFFFFFF2, 0xFFFFFFFF}
	signed := []uint32{0x80000000, 0xFFFFFFFF, 0, 0x7FFFFFFF} // -2^31, -1, 0, 2^31-1
	tests := []struct {
		name  string
		data  []byte
		words []uint32
		dtype string
		// want is the display image, or nil when it must rise from 0 to
		// 1 with the values of the words, in ascending order.
		want []float32
	}{
		{name: "native, wide range", data: encodeDICOM(t, native(spec{}, wide...)), words: wide, dtype: "uint32"},
		{name: "native, narrow range near the top", data: encodeDICOM(t, native(spec{}, narrow...)), words: narrow, dtype: "uint32"},
		{name: "native, window", data: encodeDICOM(t, native(spec{center: "3221225472", width: "2147483648"}, wide...)),
			words: wide, dtype: "uint32", want: []float32{0, 0, 0, 0.5, 1}},
		{name: "native, rescaled", data: encodeDICOM(t, native(spec{slope: "0.5", intercept: "-100"}, wide...)), words: wide, dtype: "uint32"},
		{name: "native, signed", data: encodeDICOM(t, native(spec{signed: true}, signed...)), words: signed, dtype: "int32"},
		{name: "native, RGB", data: encodeDICOM(t, native(spec{samples: 3, photometric: "RGB"}, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)),
			words: []uint32{0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, dtype: "uint32", want: []float32{0, 1}},
		{name: "RLE, wide range", data: rle(wide...), words: wide, dtype: "uint32"},
		{name: "RLE, narrow range near the top", data: rle(narrow...), words: narrow, dtype: "uint32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "u32.dcm", tc.data)
			s, err := DecodeStored(path, Options{}, -1)
			if err != nil {
				t.Fatal(err)
			}
			if s.Dtype != tc.dtype || s.Len() != len(tc.words) {
				t.Fatalf("dtype %s with %d values, want %s with %d", s.Dtype, s.Len(), tc.dtype, len(tc.words))
			}
			for i, w := range tc.words {
				if got := binary.LittleEndian.Uint32(s.Data[4*i:]); got != w {
					t.Errorf("value %d has the bytes of %#x, want those of %#x", i, got, w)
				}
			}
			img, err := DisplayFrame(path, Options{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil {
				for i, w := range tc.want {
					if math.Abs(float64(img.Pix[i]-w)) > 1e-6 {
						t.Errorf("display %v, want %v", img.Pix, tc.want)
						break
					}
				}
				return
			}
			last := len(img.Pix) - 1
			if img.Pix[0] != 0 || img.Pix[last] != 1 {
				t.Errorf("display %v: the smallest value must be 0 and the largest 1", img.Pix)
			}
			value := func(w uint32) int64 {
				if tc.dtype == "int32" {
					return int64(int32(w))
				}
				return int64(w)
			}
			for i := 1; i <= last; i++ {
				// Neighbouring values closer than float32 resolves at
				// this range may share a display value.
				up := value(tc.words[i]) - value(tc.words[i-1])
				if up <= 0 || img.Pix[i] < img.Pix[i-1] || (up > 1<<28 && img.Pix[i] == img.Pix[i-1]) {
					t.Errorf("display %v does not rise with the values %#x", img.Pix, tc.words)
					break
				}
			}
		})
	}
}
