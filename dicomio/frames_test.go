package dicomio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/sentinel-pacs/sentinel"
)

// rleFrame encodes 8-bit single-sample values as an RLE frame of one
// segment of literal runs (PS3.5 G.3).
func rleFrame(vals []byte) []byte {
	out := make([]byte, 64)
	binary.LittleEndian.PutUint32(out, 1)
	binary.LittleEndian.PutUint32(out[4:], 64)
	return append(out, rleLiterals(vals)...)
}

// rleLiterals encodes vals as one RLE segment of literal runs of at most
// 128 bytes, padded to an even length.
func rleLiterals(vals []byte) []byte {
	var out []byte
	for i := 0; i < len(vals); i += 128 {
		chunk := vals[i:min(i+128, len(vals))]
		out = append(out, byte(len(chunk)-1))
		out = append(out, chunk...)
	}
	if len(out)%2 == 1 {
		out = append(out, 0x80)
	}
	return out
}

// basicTable encodes offsets as a Basic Offset Table.
func basicTable(offsets ...uint32) []byte {
	var out []byte
	for _, o := range offsets {
		out = binary.LittleEndian.AppendUint32(out, o)
	}
	return out
}

// extendedTable encodes 64-bit values as an Extended Offset Table or its
// lengths.
func extendedTable(vals ...uint64) []byte {
	var out []byte
	for _, v := range vals {
		out = binary.LittleEndian.AppendUint64(out, v)
	}
	return out
}

// encapsulatedElement encodes top-level encapsulated pixel data: the
// offset table item, the fragments, the sequence delimiter.
func encapsulatedElement(table []byte, frags [][]byte) []byte {
	le := binary.LittleEndian
	out := []byte{0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}
	for _, item := range append([][]byte{table}, frags...) {
		out = append(out, 0xFE, 0xFF, 0x00, 0xE0)
		out = le.AppendUint32(out, uint32(len(item)))
		out = append(out, item...)
	}
	return append(out, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0)
}

// ovElement encodes an explicit VR OV element (4-byte length).
func ovElement(element uint16, value []byte) []byte {
	out := []byte{0xE0, 0x7F, byte(element), byte(element >> 8), 'O', 'V', 0, 0}
	return append(binary.LittleEndian.AppendUint32(out, uint32(len(value))), value...)
}

// starts returns the offset of each fragment as offset tables count them.
func starts(frags [][]byte) []uint32 {
	var out []uint32
	var off uint32
	for _, f := range frags {
		out = append(out, off)
		off += 8 + uint32(len(f))
	}
	return out
}

func TestFrameData(t *testing.T) {
	a, b, c := []byte("aaaa"), []byte("bb"), []byte("cccccc")
	soi := func(s string) []byte { return append([]byte{0xFF, 0xD8}, s...) }
	soc := func(s string) []byte { return append([]byte{0xFF, 0x4F}, s...) }
	frags3 := [][]byte{a, b, c}
	st := starts(frags3)
	tests := []struct {
		name   string
		px     pixelData
		frames int
		marker []byte
		want   []string // each frame's bytes, nil for an error
	}{
		{"one fragment per frame", pixelData{fragments: frags3}, 3, nil, []string{"aaaa", "bb", "cccccc"}},
		{"one frame in three fragments", pixelData{fragments: frags3}, 1, nil, []string{"aaaabbcccccc"}},
		{"basic offset table", pixelData{offsetTable: basicTable(0, st[2]), fragments: frags3}, 2, nil, []string{"aaaabb", "cccccc"}},
		{"basic offset table, last frame spans", pixelData{offsetTable: basicTable(0, st[1]), fragments: frags3}, 2, nil, []string{"aaaa", "bbcccccc"}},
		{"basic offset table, one frame", pixelData{offsetTable: basicTable(0), fragments: frags3}, 1, nil, []string{"aaaabbcccccc"}},
		{"JPEG markers", pixelData{fragments: [][]byte{soi("1"), []byte("x"), soi("2"), soi("3"), []byte("y"), []byte("z")}}, 3, markerJPEG,
			[]string{"\xff\xd81x", "\xff\xd82", "\xff\xd83yz"}},
		{"JPEG 2000 markers", pixelData{fragments: [][]byte{soc("1"), soc("2"), []byte("x")}}, 2, markerJPEG2000,
			[]string{"\xff\x4f1", "\xff\x4f2x"}},
		{"extended offset table", pixelData{extOffsets: extendedTable(0, uint64(st[1]), uint64(st[2])), fragments: frags3}, 3, nil,
			[]string{"aaaa", "bb", "cccccc"}},
		{"extended offset table with lengths", pixelData{extOffsets: extendedTable(0, uint64(st[1]), uint64(st[2])),
			extLengths: extendedTable(3, 2, 5), fragments: frags3}, 3, nil, []string{"aaa", "bb", "ccccc"}},

		{"no fragments", pixelData{}, 1, nil, nil},
		{"fewer fragments than frames", pixelData{fragments: frags3}, 4, nil, nil},
		{"RLE fragments without a table", pixelData{fragments: frags3}, 2, nil, nil},
		{"markers do not match frames", pixelData{fragments: [][]byte{soi("1"), soi("2"), soi("3"), []byte("x")}}, 2, markerJPEG, nil},
		{"first fragment without marker", pixelData{fragments: [][]byte{[]byte("x"), soi("1"), soi("2")}}, 2, markerJPEG, nil},
		{"table of the wrong length", pixelData{offsetTable: basicTable(0, st[1]), fragments: frags3}, 3, nil, nil},
		{"table not a multiple of 4", pixelData{offsetTable: []byte{0, 0, 0, 0, 1}, fragments: frags3}, 1, nil, nil},
		{"table not starting at 0", pixelData{offsetTable: basicTable(st[1], st[2]), fragments: frags3}, 2, nil, nil},
		{"offset inside a fragment", pixelData{offsetTable: basicTable(0, st[1]+1), fragments: frags3}, 2, nil, nil},
		{"offset past the end", pixelData{offsetTable: basicTable(0, 1000), fragments: frags3}, 2, nil, nil},
		{"decreasing offsets", pixelData{offsetTable: basicTable(0, st[2], st[1]), fragments: frags3}, 3, nil, nil},
		{"repeated offsets", pixelData{offsetTable: basicTable(0, 0), fragments: frags3}, 2, nil, nil},
		{"extended and basic tables", pixelData{offsetTable: basicTable(0), extOffsets: extendedTable(0), fragments: frags3}, 1, nil, nil},
		{"extended table of the wrong length", pixelData{extOffsets: extendedTable(0, uint64(st[1])), fragments: frags3}, 3, nil, nil},
		{"extended lengths too long", pixelData{extOffsets: extendedTable(0), extLengths: extendedTable(13), fragments: frags3}, 1, nil, nil},
		{"extended lengths count", pixelData{extOffsets: extendedTable(0), extLengths: extendedTable(1, 2), fragments: frags3}, 1, nil, nil},
		{"extended huge offset", pixelData{extOffsets: extendedTable(0, 1<<63), fragments: frags3}, 2, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.px.encapsulated = true
			if tt.want == nil {
				var err error
				for i := 0; i < tt.frames && err == nil; i++ {
					_, err = tt.px.frameData(i, tt.frames, tt.marker)
				}
				if !errors.Is(err, sentinel.ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			for i, want := range tt.want {
				got, err := tt.px.frameData(i, tt.frames, tt.marker)
				if err != nil || string(got) != want {
					t.Fatalf("frame %d = %q, %v; want %q", i, got, err, want)
				}
			}
		})
	}
}

// multiFrameRLE returns three 4×5 frames of 8-bit values and their RLE
// frames.
func multiFrameRLE() ([][]byte, [][]byte) {
	var vals, enc [][]byte
	for f := range 3 {
		v := make([]byte, 20)
		for i := range v {
			v[i] = byte(10*f + i)
		}
		vals, enc = append(vals, v), append(enc, rleFrame(v))
	}
	return vals, enc
}

// TestEncapsulatedRLE decodes synthetic three-frame RLE files whose frames
// are split across fragments in each way the standard allows, through the
// public entry points.
func TestEncapsulatedRLE(t *testing.T) {
	vals, enc := multiFrameRLE()
	// Frame 1 split in two fragments at byte 30.
	split := [][]byte{enc[0], enc[1][:30], enc[1][30:], enc[2]}
	st := starts(split)
	head := func(extra ...[]byte) []byte {
		data := encodeDICOM(t, spec{ts: uidRLE, rows: 4, cols: 5, frames: 3, bitsAllocated: 8, pixels: make([]int, 60),
			omit: []tag.Tag{tag.PixelData}})
		for _, e := range extra {
			data = append(data, e...)
		}
		return data
	}
	tests := []struct {
		name string
		data []byte
		err  error
	}{
		{"one fragment per frame, no table", head(encapsulatedElement(nil, enc)), nil},
		{"basic offset table, split frame", head(encapsulatedElement(basicTable(0, st[1], st[3]), split)), nil},
		{"extended offset table", head(ovElement(1, extendedTable(0, uint64(st[1]), uint64(st[3]))),
			ovElement(2, extendedTable(uint64(len(enc[0])), uint64(len(enc[1])), uint64(len(enc[2])))),
			encapsulatedElement(nil, split)), nil},
		{"split frame without a table", head(encapsulatedElement(nil, split)), sentinel.ErrInvalid},
		{"bad offset", head(encapsulatedElement(basicTable(0, st[1]+2, st[3]), split)), sentinel.ErrInvalid},
		{"truncated frame", head(encapsulatedElement(nil, [][]byte{enc[0], enc[1][:40], enc[2]})), sentinel.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "rle.dcm", tt.data)
			s, err := DecodeStored(path, Options{}, -1)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Frames != 3 || s.Rows != 4 || s.Columns != 5 || s.Dtype != "uint8" || s.Len() != 60 {
				t.Fatalf("stored %+v", s)
			}
			for i, v := range s.Data {
				if v != vals[i/20][i%20] {
					t.Fatalf("value %d = %d, want %d", i, v, vals[i/20][i%20])
				}
			}
			if _, _, err := Load(path, Options{}); err != nil {
				t.Fatalf("Load: %v", err)
			}
			h, err := ReadHeader(path, Options{})
			if err != nil || h.Frames != 3 || h.TransferSyntaxName != "RLE Lossless" || !h.Encapsulated || h.Problem != nil {
				t.Fatalf("header %+v, %v", h, err)
			}
		})
	}
}

// FuzzFrames assembles frames from arbitrary offset tables and fragment
// layouts: never a panic, and every frame returned lies within the data.
func FuzzFrames(f *testing.F) {
	_, enc := multiFrameRLE()
	st := starts(enc)
	f.Add(basicTable(0, st[1], st[2]), []byte{}, []byte{byte(len(enc[0])), byte(len(enc[1])), byte(len(enc[2]))}, uint8(3), uint8(0))
	f.Add([]byte{}, extendedTable(0, 12), []byte{4, 2, 6}, uint8(2), uint8(1))
	f.Add([]byte{}, []byte{}, []byte{4, 2, 6, 1}, uint8(2), uint8(1))
	f.Fuzz(func(t *testing.T, table, ext, lens []byte, frames, marker uint8) {
		if len(lens) > 64 || frames == 0 || frames > 64 {
			return
		}
		var frags [][]byte
		var total int
		for i, n := range lens {
			frag := bytes.Repeat([]byte{byte(i)}, int(n))
			if n > 2 && i%2 == 0 {
				frag[0], frag[1] = 0xFF, 0xD8
			}
			frags = append(frags, frag)
			total += int(n)
		}
		px := pixelData{encapsulated: true, offsetTable: table, fragments: frags}
		if len(ext) > 0 {
			px.extOffsets = ext
			if len(ext) >= 8 {
				px.extLengths = ext[:len(ext)/8*8]
			}
		}
		m := [][]byte{nil, markerJPEG, markerJPEG2000}[int(marker)%3]
		for i := range int(frames) {
			data, err := px.frameData(i, int(frames), m)
			if err != nil {
				if !errors.Is(err, sentinel.ErrInvalid) {
					t.Fatalf("error without ErrInvalid: %v", err)
				}
				continue
			}
			if len(data) > total {
				t.Fatalf("frame %d of %d bytes from %d bytes of fragments", i, len(data), total)
			}
		}
	})
}
