package jpeg2000

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// seedFile is a small real lossless frame (64×64 signed 16-bit MR) that
// the mutation tests start from.
const seedFile = "nema-wg04-and-pydicom/data/pydicom/MR_small_jp2klossless.dcm"

func loadSeed(t testing.TB) ([]byte, codec.Params) {
	t.Helper()
	needCorpus(t)
	img, err := readDICOM(filepath.Join(corpusDir, seedFile))
	if err != nil {
		t.Fatal(err)
	}
	return img.frames[0], img.params
}

// markerAt returns the offset of the first marker segment with the given
// code in the main header of cs.
func markerAt(t testing.TB, cs []byte, code int) int {
	t.Helper()
	pos := 2
	for pos+4 <= len(cs) {
		m := int(binary.BigEndian.Uint16(cs[pos:]))
		if m == code {
			return pos
		}
		if m == mSOT {
			break
		}
		pos += 2 + int(binary.BigEndian.Uint16(cs[pos+2:]))
	}
	t.Fatalf("marker 0x%04x not in the main header", code)
	return 0
}

func edit(b []byte, f func([]byte) []byte) []byte {
	return f(slices.Clone(b))
}

// jp2 wraps a codestream in the signature, file type and jp2c boxes of a
// JP2 file.
func jp2(cs []byte) []byte {
	box := func(typ string, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
		return append(append(b, typ...), body...)
	}
	out := box("jP  ", []byte{0x0D, 0x0A, 0x87, 0x0A})
	out = append(out, box("ftyp", []byte("jp2 \x00\x00\x00\x00jp2 "))...)
	return append(out, box("jp2c", cs)...)
}

func TestDecodeJP2Wrapper(t *testing.T) {
	seed, p := loadSeed(t)
	want, err := Decode(seed, p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(jp2(seed), p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Samples, want.Samples) {
		t.Fatal("JP2-wrapped codestream decodes differently")
	}
}

// TestDecodeWithoutEOC accepts a codestream whose only fault is a missing
// EOC marker (or zero padding in its place), as OpenJPEG does: every
// tile-part is complete, so nothing is lost.
func TestDecodeWithoutEOC(t *testing.T) {
	seed, p := loadSeed(t)
	want, err := Decode(seed, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{seed[:len(seed)-2], append(slices.Clone(seed[:len(seed)-2]), 0, 0, 0)} {
		got, err := Decode(data, p)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Samples, want.Samples) {
			t.Fatal("decode differs")
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	p64 := codec.Params{Rows: 64, Cols: 64, Samples: 1, BitsAllocated: 16, BitsStored: 16, Signed: true}
	synthetic := []struct {
		name string
		data []byte
		p    codec.Params
		want error
	}{
		{"empty", nil, p64, codec.ErrCorrupt},
		{"garbage", []byte("not a codestream at all"), p64, codec.ErrCorrupt},
		{"SOC only", []byte{0xFF, 0x4F}, p64, codec.ErrCorrupt},
		{"SOC then EOC", []byte{0xFF, 0x4F, 0xFF, 0xD9}, p64, codec.ErrCorrupt},
		{"JP2 without jp2c", jp2(nil)[:32], p64, codec.ErrCorrupt},
		{"JP2 box overrun", append(jp2(nil)[:12], 0, 0, 0xFF, 0xFF, 'j', 'p', '2', 'c'), p64, codec.ErrCorrupt},
	}
	for _, tc := range synthetic {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data, tc.p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	seed, p := loadSeed(t)
	siz := markerAt(t, seed, mSIZ)
	cod := markerAt(t, seed, mCOD)
	sot := bytes.Index(seed, []byte{0xFF, 0x90, 0x00, 0x0A})
	if sot < 0 {
		t.Fatal("no SOT in the seed")
	}
	pSmall := p
	pSmall.MaxSamples = 100
	pBits := p
	pBits.BitsAllocated = 8
	mutations := []struct {
		name string
		data []byte
		p    codec.Params
		want error
	}{
		{"truncated in SIZ", seed[:20], p, codec.ErrCorrupt},
		{"truncated in main header", seed[:sot-3], p, codec.ErrCorrupt},
		{"truncated in tile data", seed[:len(seed)/2], p, codec.ErrCorrupt},
		{"truncated in the last tile-part", seed[:len(seed)-3], p, codec.ErrCorrupt},
		{"size differs from header", seed, codec.Params{Rows: 32, Cols: 64, Samples: 1, BitsAllocated: 16}, codec.ErrCorrupt},
		{"components differ from header", seed, codec.Params{Rows: 64, Cols: 64, Samples: 3, BitsAllocated: 16}, codec.ErrCorrupt},
		{"over the sample limit", seed, pSmall, codec.ErrUnsupported},
		{"precision over bits allocated", seed, pBits, codec.ErrCorrupt},
		{"SIZ marker flipped", edit(seed, func(b []byte) []byte { b[siz+1] ^= 0x04; return b }), p, codec.ErrCorrupt},
		{"SIZ length overruns", edit(seed, func(b []byte) []byte { b[siz+2] = 0xFF; return b }), p, codec.ErrCorrupt},
		{"Part 2 capabilities", edit(seed, func(b []byte) []byte {
			// Rsiz says a CAP marker follows; it lists Part 2.
			b[siz+4] |= 0x40
			end := siz + 2 + (int(b[siz+2])<<8 | int(b[siz+3]))
			capSeg := []byte{0xFF, 0x50, 0, 8, 0x40, 0, 0, 0, 0, 0}
			return append(b[:end:end], append(capSeg, b[end:]...)...)
		}), p, codec.ErrUnsupported},
		{"zero tile width", edit(seed, func(b []byte) []byte { copy(b[siz+22:], []byte{0, 0, 0, 0}); return b }), p, codec.ErrCorrupt},
		{"1x1 tiles", edit(seed, func(b []byte) []byte {
			copy(b[siz+22:], []byte{0, 0, 0, 1, 0, 0, 0, 1})
			return b
		}), p, codec.ErrCorrupt},
		{"sub-sampled component", edit(seed, func(b []byte) []byte { b[siz+41] = 2; return b }), p, codec.ErrUnsupported},
		{"progression order 9", edit(seed, func(b []byte) []byte { b[cod+5] = 9; return b }), p, codec.ErrCorrupt},
		{"zero layers", edit(seed, func(b []byte) []byte { b[cod+6], b[cod+7] = 0, 0; return b }), p, codec.ErrCorrupt},
		{"Part 2 component transform", edit(seed, func(b []byte) []byte { b[cod+8] = 2; return b }), p, codec.ErrUnsupported},
		{"33 decomposition levels", edit(seed, func(b []byte) []byte { b[cod+9] = 33; return b }), p, codec.ErrCorrupt},
		{"code-block too large", edit(seed, func(b []byte) []byte { b[cod+10], b[cod+11] = 8, 8; return b }), p, codec.ErrCorrupt},
		{"HT mixed code-block style", edit(seed, func(b []byte) []byte { b[cod+12] = 0xC0; return b }), p, codec.ErrUnsupported},
		{"HT code-block style over EBCOT data", edit(seed, func(b []byte) []byte { b[cod+12] = 0x40; return b }), p, codec.ErrCorrupt},
		{"arbitrary wavelet", edit(seed, func(b []byte) []byte { b[cod+13] = 2; return b }), p, codec.ErrUnsupported},
		{"tile index out of range", edit(seed, func(b []byte) []byte { b[sot+5] = 7; return b }), p, codec.ErrCorrupt},
		{"tile-part length overruns", edit(seed, func(b []byte) []byte { b[sot+6] = 0x7F; return b }), p, codec.ErrCorrupt},
		{"tile-part length too short", edit(seed, func(b []byte) []byte { copy(b[sot+6:], []byte{0, 0, 0, 3}); return b }), p, codec.ErrCorrupt},
		{"packet data zeroed", edit(seed, func(b []byte) []byte { clear(b[sot+14 : len(b)-2]); return b }), p, codec.ErrCorrupt},
		{"packet data 0xFF", edit(seed, func(b []byte) []byte {
			for i := sot + 14; i < len(b)-2; i++ {
				b[i] = 0xFF
			}
			return b
		}), p, codec.ErrCorrupt},
	}
	for _, tc := range mutations {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data, tc.p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestDecodeBitFlips flips every bit of the seed's headers and many of its
// packet data: the decoder may return pixels (entropy-coded data has no
// redundancy to check) but must never panic, and errors must say whether
// the codestream is corrupt or unsupported.
func TestDecodeBitFlips(t *testing.T) {
	seed, p := loadSeed(t)
	recoverPanics = false
	defer func() { recoverPanics = true }()
	step := 1
	for i := 0; i < len(seed); i += step {
		if i > 200 {
			step = 37
		}
		for bit := range 8 {
			b := slices.Clone(seed)
			b[i] ^= 1 << bit
			_, err := Decode(b, p)
			if err != nil && !errors.Is(err, codec.ErrCorrupt) && !errors.Is(err, codec.ErrUnsupported) {
				t.Fatalf("byte %d bit %d: unclassified error %v", i, bit, err)
			}
		}
	}
}
