package jpegls

import (
	"encoding/binary"
	"math/bits"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// bitReader reads the entropy-coded segment of a scan (or of one restart
// interval) most significant bit first. JPEG-LS stuffs differently from
// JPEG: after a 0xFF byte the encoder writes a 0 bit, so only the 7 low
// bits of the next byte carry data (T.87 A.1). The segment passed in ends
// before the marker that terminates it, so a reader never sees a marker.
type bitReader struct {
	data   []byte
	pos    int    // next byte of data to load
	acc    uint64 // unread bits, left aligned
	n      uint   // number of valid bits in acc
	prevFF bool   // the last loaded byte was 0xFF
	// total is the number of data bits in the segment and loaded the
	// number of bits moved into acc so far, zero padding included; their
	// difference tells a truncated segment from one with spare bytes.
	total  int
	loaded int
}

// reset makes r read seg, whose data bit count it computes up front.
func (r *bitReader) reset(seg []byte) {
	*r = bitReader{data: seg}
	total := 8 * len(seg)
	for i := 0; i+1 < len(seg); i++ {
		if seg[i] == 0xFF {
			total--
		}
	}
	r.total = total
}

// fill tops acc up to at least 57 valid bits. Past the end of the segment
// it shifts in zeros, which overrun reports afterwards.
func (r *bitReader) fill() {
	// Fast path: eight bytes without 0xFF load in one go.
	if !r.prevFF && r.pos+8 <= len(r.data) {
		v := binary.BigEndian.Uint64(r.data[r.pos:])
		if x := ^v; (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
			nb := (64 - r.n) / 8
			r.acc |= v >> (64 - 8*nb) << (64 - r.n - 8*nb)
			r.pos += int(nb)
			r.n += 8 * nb
			r.loaded += int(8 * nb)
			return
		}
	}
	for r.n <= 56 {
		if r.pos >= len(r.data) {
			r.n += 8
			r.loaded += 8
			continue
		}
		b := r.data[r.pos]
		r.pos++
		if r.prevFF {
			r.acc |= uint64(b&0x7F) << (57 - r.n)
			r.n += 7
			r.loaded += 7
		} else {
			r.acc |= uint64(b) << (56 - r.n)
			r.n += 8
			r.loaded += 8
		}
		r.prevFF = b == 0xFF
	}
}

// consumed returns the number of data bits the decoder has used.
func (r *bitReader) consumed() int { return r.loaded - int(r.n) }

// bits reads k bits (0 ≤ k ≤ 32) as an unsigned value.
func (r *bitReader) bits(k uint) int {
	if k == 0 {
		return 0
	}
	if r.n < k {
		r.fill()
	}
	v := r.acc >> (64 - k)
	r.acc <<= k
	r.n -= k
	return int(v)
}

// bit reads one bit.
func (r *bitReader) bit() int {
	if r.n == 0 {
		r.fill()
	}
	v := r.acc >> 63
	r.acc <<= 1
	r.n--
	return int(v)
}

// zeros reads a unary prefix: the count of 0 bits before the next 1 bit,
// which it consumes too. A count above max is corrupt data (no valid
// code has a longer prefix), and the read stops there so that hostile
// input cannot make it loop over padding.
func (r *bitReader) zeros(max int) (int, error) {
	count := 0
	for {
		if r.n < 57 {
			r.fill()
		}
		if r.acc != 0 {
			lz := uint(bits.LeadingZeros64(r.acc))
			if lz < r.n {
				count += int(lz)
				if count > max {
					return 0, codec.Corruptf("jpegls: golomb code prefix of %d zero bits exceeds the limit %d", count, max)
				}
				r.acc <<= lz + 1
				r.n -= lz + 1
				return count, nil
			}
		}
		count += int(r.n)
		r.acc, r.n = 0, 0
		if count > max {
			return 0, codec.Corruptf("jpegls: golomb code prefix of %d zero bits exceeds the limit %d", count, max)
		}
	}
}

// checkTail compares what the decoder used with what the segment holds.
// Using more means the data was cut short. A valid encoder leaves less
// than a byte; some leave a zero padding byte or more (WG04's MR1_JLSL,
// which GDCM refuses and dcmtk and CharLS 2.2 accept), so spare bits
// are an error only when the spare whole bytes are not all zero, which
// is what a desynchronised decode of corrupt data leaves behind.
func (r *bitReader) checkTail() error {
	spare := r.total - r.consumed()
	if spare < 0 {
		return codec.Corruptf("jpegls: scan data truncated (%d bits missing)", -spare)
	}
	if spare < 16 {
		return nil
	}
	n := min((spare-8)/8, len(r.data))
	for _, b := range r.data[len(r.data)-n:] {
		if b != 0 {
			return codec.Corruptf("jpegls: %d bits of scan data left after the last line", spare)
		}
	}
	return nil
}
