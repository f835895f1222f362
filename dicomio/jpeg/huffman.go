package jpeg

import (
	"encoding/binary"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// lutBits is the width of the Huffman fast lookup: codes of up to this
// many bits (nearly all of them in practice) decode with one table read.
const lutBits = 9

// huffman is one Huffman table (T.81 Annex C) in decoding form.
type huffman struct {
	set bool
	// lut maps the next lutBits bits to length<<8 | value, or 0 when the
	// code is longer than lutBits.
	lut [1 << lutBits]uint16
	// maxcode[l] is the largest code of length l (−1 if none); valptr[l]
	// is the index in vals of the first code of length l, whose code is
	// mincode[l] (T.81 F.2.2.3).
	maxcode [17]int32
	mincode [17]int32
	valptr  [17]int32
	vals    [256]byte
}

// readDHT reads Huffman tables (T.81 B.2.4.2).
func (d *decoder) readDHT() error {
	b, err := d.segment()
	if err != nil {
		return err
	}
	for len(b) > 0 {
		if len(b) < 17 {
			return codec.Corruptf("jpeg: Huffman table truncated")
		}
		tc, th := b[0]>>4, int(b[0]&15)
		if tc > 1 || th > 3 {
			return codec.Corruptf("jpeg: Huffman table class %d, id %d", tc, th)
		}
		var counts [17]int
		total := 0
		for l := 1; l <= 16; l++ {
			counts[l] = int(b[l])
			total += counts[l]
		}
		if total == 0 || total > 256 || len(b) < 17+total {
			return codec.Corruptf("jpeg: Huffman table of %d codes in %d bytes", total, len(b))
		}
		h := &d.dc[th]
		if tc == 1 {
			h = &d.ac[th]
		}
		if err := h.build(counts, b[17:17+total]); err != nil {
			return err
		}
		b = b[17+total:]
	}
	return nil
}

// build makes the decoding tables from the code counts per length and the
// values in code order (T.81 Annex C).
func (h *huffman) build(counts [17]int, vals []byte) error {
	*h = huffman{set: true}
	copy(h.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		h.valptr[l] = k
		h.mincode[l] = code
		n := int32(counts[l])
		if code+n > 1<<l {
			return codec.Corruptf("jpeg: Huffman table has too many codes of length %d", l)
		}
		for i := int32(0); i < n; i++ {
			if l <= lutBits {
				shift := uint(lutBits - l)
				base := (code + i) << shift
				e := uint16(l)<<8 | uint16(vals[k+i])
				for j := int32(0); j < 1<<shift; j++ {
					h.lut[base+j] = e
				}
			}
		}
		code += n
		k += n
		h.maxcode[l] = code - 1
		if n == 0 {
			h.maxcode[l] = -1
		}
		code <<= 1
	}
	return nil
}

// fastBits is the width of the lossless scans' combined lookup, and
// fastFull marks its entries that hold a whole difference.
const (
	fastBits = 11
	fastFull = 1 << 31
)

// fastTable returns the lossless scans' lookup of the next fastBits bits:
// where a code and the difference bits that follow it both fit, the
// entry holds fastFull, their total length <<16 and the difference (an
// int16); where only the code fits (or its category is 16, which has no
// bits and does not fit an int16), the code's length <<16 and its
// category; 0 where the code is longer than lutBits.
func (h *huffman) fastTable() *[1 << fastBits]uint32 {
	t := new([1 << fastBits]uint32)
	for p := range t {
		e := h.lut[p>>(fastBits-lutBits)]
		if e == 0 {
			continue
		}
		l, s := uint32(e>>8), uint32(e&0xFF)
		if s >= 16 || l+s > fastBits {
			t[p] = l<<16 | s
			continue
		}
		var v int32
		if s > 0 {
			v = int32(uint32(p)>>(fastBits-l-s)) & (1<<s - 1)
			if v < 1<<(s-1) {
				v += -1<<s + 1
			}
		}
		t[p] = fastFull | (l+s)<<16 | uint32(uint16(int16(v)))
	}
	return t
}

// bitReader reads the entropy-coded segment of a scan MSB first, removing
// stuffed zero bytes. At a marker or at the end of the data it supplies
// zero bits and counts them, so that a decoder can tell a well-formed scan
// (which never needs them) from a truncated one.
type bitReader struct {
	data []byte
	pos  int
	// acc holds n valid bits left-aligned.
	acc uint64
	n   uint
	// pad counts the zero bits supplied beyond the data; they are the last
	// pad bits of acc.
	pad    uint
	marker bool
}

// refill tops the accumulator up to more than 56 bits.
func (br *bitReader) refill() {
	// Fast path: the next eight bytes hold no 0xFF (so no stuffing and no
	// marker), and whole bytes go in at once.
	if !br.marker && br.pos+8 <= len(br.data) && br.n <= 56 {
		x := binary.BigEndian.Uint64(br.data[br.pos:])
		if y := ^x; (y-0x0101010101010101)&^y&0x8080808080808080 == 0 {
			k := (64 - br.n) / 8
			br.acc |= x >> (64 - 8*k) << (64 - br.n - 8*k)
			br.pos += int(k)
			br.n += 8 * k
			return
		}
	}
	for br.n <= 56 {
		if br.marker || br.pos >= len(br.data) {
			br.n += 8
			br.pad += 8
			continue
		}
		b := br.data[br.pos]
		if b == 0xFF {
			if br.pos+1 < len(br.data) && br.data[br.pos+1] == 0 {
				br.pos += 2
			} else {
				br.marker = true
				continue
			}
		} else {
			br.pos++
		}
		br.acc |= uint64(b) << (56 - br.n)
		br.n += 8
	}
}

// overrun reports whether decoding consumed bits that are not in the data.
func (br *bitReader) overrun() bool {
	return br.pad > br.n
}

// decode reads one Huffman-coded value. The caller ensures br.n ≥ 16.
func (br *bitReader) decode(h *huffman) (int, error) {
	if e := h.lut[br.acc>>(64-lutBits)]; e != 0 {
		l := uint(e >> 8)
		br.acc <<= l
		br.n -= l
		return int(e & 0xFF), nil
	}
	return br.decodeSlow(h)
}

// decodeSlow decodes a code longer than lutBits bits.
func (br *bitReader) decodeSlow(h *huffman) (int, error) {
	for l := uint(lutBits + 1); l <= 16; l++ {
		code := int32(br.acc >> (64 - l))
		if code <= h.maxcode[l] {
			i := h.valptr[l] + code - h.mincode[l]
			if i < 0 || i >= int32(len(h.vals)) {
				break
			}
			br.acc <<= l
			br.n -= l
			return int(h.vals[i]), nil
		}
	}
	return 0, codec.Corruptf("jpeg: invalid Huffman code")
}

// receiveExtend reads s bits (1 ≤ s ≤ 16) and returns the signed value
// they code (T.81 F.2.2.1, EXTEND). The caller ensures br.n ≥ s.
func (br *bitReader) receiveExtend(s uint) int32 {
	v := int32(br.acc >> (64 - s))
	br.acc <<= s
	br.n -= s
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// restart discards the bits left before a restart marker and reads the
// marker, which must be an RSTn.
func (br *bitReader) restart() error {
	if br.overrun() {
		return codec.Corruptf("jpeg: entropy-coded data truncated before a restart marker")
	}
	// Only the padding of the interval's last byte may remain: more means
	// the intervals and the markers disagree, and decoding on would
	// misplace every later sample.
	if br.n-br.pad >= 8 {
		return codec.Corruptf("jpeg: entropy-coded data left over before a restart marker")
	}
	br.acc, br.n, br.pad = 0, 0, 0
	p := br.pos
	if p+1 < len(br.data) && br.data[p] == 0xFF && br.data[p+1] == 0 {
		return codec.Corruptf("jpeg: entropy-coded data left over before a restart marker")
	}
	for p < len(br.data) && br.data[p] == 0xFF {
		p++
	}
	if p >= len(br.data) {
		return codec.Corruptf("jpeg: codestream truncated where a restart marker was expected")
	}
	if m := br.data[p]; m < mRST0 || m > mRST7 {
		return codec.Corruptf("jpeg: expected a restart marker, found 0x%02X", m)
	}
	br.pos = p + 1
	br.marker = false
	return nil
}

// markerPos returns the position of the first marker at or after the
// bytes the reader has consumed: where the next marker segment starts once
// the scan is decoded.
func (br *bitReader) markerPos() int {
	p := br.pos
	for p+1 < len(br.data) {
		if br.data[p] == 0xFF && br.data[p+1] != 0 {
			return p
		}
		p++
	}
	return len(br.data)
}
