package dicomio

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestRecode checks the in-place recoding of native words against unpack,
// the native codec's path, for every word size, byte order, position of
// the stored bits and pixel representation.
func TestRecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 2, 4} {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			for _, signed := range []bool{false, true} {
				for stored := 1; stored <= 8*size; stored++ {
					for _, high := range []int{stored - 1, 8*size - 1} {
						l := layout{bitsAllocated: 8 * size, bitsStored: stored, highBit: high, signed: signed}
						raw := make([]byte, 67*size) // not a multiple of 8 bytes: the tail too
						for i := range raw {
							raw[i] = byte(rng.Uint32())
						}
						samples := make([]int32, 67)
						unpack(samples, raw, size, bo, newSampleFormat(l))
						dtype := map[int]string{1: "uint8", 2: "uint16", 4: "uint32"}[size]
						want := appendFrame(nil, frame{samples: samples}, dtype)
						got := bytes.Clone(raw)
						recode(got, size, bo == binary.BigEndian, newSampleFormat(l))
						if !bytes.Equal(got, want) {
							t.Fatalf("%d bytes %v signed=%v stored %d high %d: recode\n% x\nwant\n% x", size, bo, signed, stored, high, got, want)
						}
					}
				}
			}
		}
	}
}

// TestStoredDtypes checks the bytes and values Stored gives each integer
// dtype's extreme values, which frames hold as int32 (unsigned 32-bit
// values above 2^31-1 as their bit pattern).
func TestStoredDtypes(t *testing.T) {
	for _, tc := range []struct {
		dtype  string
		values []int64
		size   int
	}{
		{"uint8", []int64{0, 1, 254, 255}, 1},
		{"int8", []int64{-128, -1, 0, 127}, 1},
		{"uint16", []int64{0, 1, 0x8000, 0xFFFF}, 2},
		{"int16", []int64{-0x8000, -1, 0, 0x7FFF}, 2},
		{"uint32", []int64{0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0}, 4},
		{"int32", []int64{-0x80000000, -1, 0, 0x7FFFFFFF}, 4},
	} {
		var fr frame
		var want []byte
		for _, v := range tc.values {
			fr.samples = append(fr.samples, int32(v))
			want = binary.LittleEndian.AppendUint64(want, uint64(v))[:len(want)+tc.size]
		}
		s := Stored{Dtype: tc.dtype, Data: appendFrame(nil, fr, tc.dtype)}
		if !bytes.Equal(s.Data, want) {
			t.Errorf("%s: data % x, want % x", tc.dtype, s.Data, want)
		}
		if s.Len() != len(tc.values) {
			t.Errorf("%s: Len %d, want %d", tc.dtype, s.Len(), len(tc.values))
		}
		for i, v := range tc.values {
			if s.Value(i) != float64(v) {
				t.Errorf("%s: value %d = %v, want %d", tc.dtype, i, s.Value(i), v)
			}
		}
	}
	for _, dtype := range []string{"float32", "float64"} {
		s := Stored{Dtype: dtype, Data: appendFrame(nil, frame{floats: []float64{-1.5, 0, 1e6}}, dtype)}
		if s.Len() != 3 || s.Value(0) != -1.5 || s.Value(2) != 1e6 {
			t.Errorf("%s: %d values, %v and %v", dtype, s.Len(), s.Value(0), s.Value(2))
		}
	}
}

// TestDecodeStoredCorpus checks, on every corpus file the inventory says
// decodes, that DecodeStored (which takes a direct path for native pixel
// data) gives the bytes of the codec's frames, which TestConformance
// compares with pydicom's.
func TestDecodeStoredCorpus(t *testing.T) {
	needDir(t, corpusDir)
	direct, checked := 0, 0
	for _, inv := range readInventory(t) {
		if inv.expect != "decode" {
			continue
		}
		path := filepath.Join(corpusDir, inv.path)
		f, frames, err := decodeAll(path)
		if err != nil {
			continue // refused as unsupported: TestConformance's business
		}
		s, err := DecodeStored(path, Options{}, -1)
		if err != nil {
			t.Errorf("%s: DecodeStored: %v", inv.path, err)
			continue
		}
		want := storedBytes(t, frames, dtype(f.layout))
		if s.Dtype != dtype(f.layout) || s.Frames != f.layout.frames || !bytes.Equal(s.Data, want) {
			t.Errorf("%s: DecodeStored gives %d bytes of %s, the frames %d bytes of %s (equal: %v)",
				inv.path, len(s.Data), s.Dtype, len(want), dtype(f.layout), bytes.Equal(s.Data, want))
		}
		if f.layout.frames > 1 {
			one, err := DecodeStored(path, Options{}, f.layout.frames-1)
			n := len(want) / f.layout.frames
			if err != nil || !bytes.Equal(one.Data, want[len(want)-n:]) {
				t.Errorf("%s: last frame alone differs (%v)", inv.path, err)
			}
		}
		checked++
		if f.nativeDirect() {
			direct++
		}
	}
	t.Logf("%d files checked, %d through the direct native path", checked, direct)
	if direct == 0 || checked == direct {
		t.Errorf("%d of %d files took the direct path: both paths must be exercised", direct, checked)
	}
}

// TestDecodeStoredOwnsItsBytes checks that stored values never alias the
// reused read buffer: decoding other files afterwards (which reuse it)
// leaves earlier results unchanged.
func TestDecodeStoredOwnsItsBytes(t *testing.T) {
	a := writeDICOM(t, spec{rows: 4, cols: 4, bitsAllocated: 16, pixels: rampInts(0, 15)})
	b := writeDICOM(t, spec{rows: 4, cols: 4, bitsAllocated: 16, pixels: rampInts(100, 115)})
	first, err := DecodeStored(a, Options{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(first.Data)
	for range 20 {
		if _, err := DecodeStored(b, Options{}, -1); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Load(b, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(first.Data, want) {
		t.Errorf("an earlier result changed after later decodes: % x, was % x", first.Data, want)
	}
	if first.Value(15) != 15 {
		t.Errorf("last value %v, want 15", first.Value(15))
	}
}
