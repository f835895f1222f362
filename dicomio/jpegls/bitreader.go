package jpegls

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// bitReader reads the entropy-coded segment of a scan (or of one restart
// interval) most significant bit first. JPEG-LS stuffs differently from
// JPEG: after a 0xFF byte the encoder writes a 0 bit, so only the 7 low
// bits of the next byte carry data (T.87 A.1). The segment passed in ends
// before the marker that terminates it, so a reader never sees a marker.
//
// reset drops the stuffed bits once, into buf, so that fill is a few
// instructions without a branch: the decoders inline it in their
// per-sample loops.
type bitReader struct {
	data []byte // the segment as stored, stuffing included
	// buf holds the segment's data bits, packed, then at least padLen
	// zero bytes.
	buf []byte
	pos int    // next byte of buf to load
	acc uint64 // unread bits, left aligned; the bits below the n valid ones are the data that follows them or zero
	n   uint   // number of valid bits in acc
	// total is the number of data bits in the segment. maxPos is where
	// pos stops: from there on buf holds only padding, so a reader that
	// runs past the end reads zeros, and consumed reports more bits than
	// total.
	total  int
	maxPos int
}

// padLen is the zero padding after the data in buf: fill loads 8 bytes at
// pos, and pos stops 8 bytes past the data.
const padLen = 16

// reset makes r read seg.
func (r *bitReader) reset(seg []byte) {
	buf, total := unstuff(r.buf[:0], seg)
	r.maxPos = len(buf) + 8
	for range padLen {
		buf = append(buf, 0)
	}
	*r = bitReader{data: seg, buf: buf, total: total, maxPos: r.maxPos}
}

// unstuff returns the data bits of seg, packed most significant bit first
// with the last byte zero filled, in dst's storage when it is large
// enough, with room for padLen more bytes, and their count: eight bits of
// every byte except one that follows a 0xFF, whose high (stuffed) bit it
// drops. Between two 0xFF bytes the bits keep one alignment, so each
// stretch is copied, or shifted a byte at a time, without a test per byte.
func unstuff(dst, seg []byte) ([]byte, int) {
	if cap(dst) < len(seg)+padLen {
		dst = make([]byte, 0, len(seg)+padLen)
	}
	out := dst[:len(seg)] // the data bits never take more bytes than seg
	o, total := 0, 0
	var acc uint64 // the nacc (< 8) bits not yet written, right aligned
	nacc := uint(0)
	for i := 0; i < len(seg); {
		// Eight-bit bytes up to and including the next 0xFF.
		end := len(seg)
		if j := bytes.IndexByte(seg[i:], 0xFF); j >= 0 {
			end = i + j + 1
		}
		if nacc == 0 {
			o += copy(out[o:], seg[i:end])
		} else {
			for _, b := range seg[i:end] {
				acc = acc<<8 | uint64(b)
				out[o] = byte(acc >> nacc)
				o++
			}
			acc &= 1<<nacc - 1
		}
		total += 8 * (end - i)
		i = end
		// Each byte after a 0xFF (itself one in corrupt data) brings 7.
		for i < len(seg) && seg[i-1] == 0xFF {
			acc = acc<<7 | uint64(seg[i]&0x7F)
			nacc += 7
			total += 7
			i++
			if nacc >= 8 {
				nacc -= 8
				out[o] = byte(acc >> nacc)
				o++
			}
			acc &= 1<<nacc - 1
		}
	}
	if nacc > 0 {
		out[o] = byte(acc << (8 - nacc))
		o++
	}
	return out[:o], total
}

// fill tops acc up to at least 56 valid bits without a branch: it loads
// the 8 bytes at pos below the valid bits and moves pos on by the whole
// bytes that fit. The bits it loads past those bytes are the ones the next
// fill loads again at the same place, so or-ing them in twice is harmless.
func (r *bitReader) fill() {
	r.acc |= binary.BigEndian.Uint64(r.buf[r.pos:]) >> r.n
	r.pos = min(r.pos+int(63-r.n)>>3, r.maxPos)
	r.n |= 56
}

// consumed returns the number of data bits the decoder has used, or more
// than total once it has read past the end.
func (r *bitReader) consumed() int { return 8*r.pos - int(r.n) }

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
		if lz := uint(bits.LeadingZeros64(r.acc)); lz < r.n {
			count += int(lz)
			if count > max {
				return 0, codec.Corruptf("jpegls: golomb code prefix of %d zero bits exceeds the limit %d", count, max)
			}
			r.acc <<= lz + 1
			r.n -= lz + 1
			return count, nil
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
		return codec.Corruptf("jpegls: scan data truncated")
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
