package jpegls

import (
	"math/bits"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// decodeLineLossless is decodeLine for NEAR = 0, the case nearly every
// DICOM JPEG-LS file uses, with the regular-mode sample decoding inlined:
// the neighbours stay in registers from one sample to the next and the
// Golomb code word is read straight from the accumulator when it is all
// there. It must give exactly what decodeLine gives; TestFastLine checks.
func (s *state) decodeLineLossless(r *bitReader, l *lines, width, comp int) error {
	prev, cur := l.prev[:width+2], l.cur[:width+2]
	mv := s.cp.maxVal
	qlut := s.qlut[:2*mv+1]
	rng := s.cp.rng
	escape := s.cp.limit - s.cp.qbpp - 1
	reset := int32(s.cp.reset)
	ctxs := &s.ctx
	ra, rc, rb := int(cur[0]), int(prev[0]), int(prev[1])
	for x := 1; x <= width; {
		rd := int(prev[x+1])
		q := int(qlut[rd-rb+mv])*81 + int(qlut[rb-rc+mv])*9 + int(qlut[rc-ra+mv])
		if q != 0 {
			// Regular mode (T.87 A.4 to A.6), as state.regular.
			px := predict(ra, rb, rc)
			sign := q >> 63
			c := &ctxs[(q^sign)-sign]
			px += (int(c.c) ^ sign) - sign
			if px > mv {
				px = mv
			} else if px < 0 {
				px = 0
			}
			k := golombK(c.n, c.a)
			if r.n < 32 {
				r.fill()
			}
			var m int
			lz := uint(bits.LeadingZeros64(r.acc))
			if int(lz) < escape && lz+1+uint(k) <= r.n {
				acc := r.acc << (lz + 1)
				m = int(lz)<<uint(k) | int(acc>>(64-uint(k)))
				r.acc = acc << uint(k)
				r.n -= lz + 1 + uint(k)
			} else {
				m = s.decodeValue(r, k, s.cp.limit)
			}
			if m > 2*rng {
				s.fail(codec.Corruptf("jpegls: mapped prediction error %d out of range", m))
				m = 0
			}
			e := (m >> 1) ^ -(m & 1)
			if k == 0 && 2*c.b+c.n <= 0 {
				e = ^e
			}
			e32 := int32(e)
			c.a += (e32 ^ e32>>31) - e32>>31
			c.b += e32
			if c.n == reset {
				c.a >>= 1
				c.b >>= 1
				c.n >>= 1
			}
			c.n++
			if c.b <= -c.n {
				c.b += c.n
				if c.c > minC {
					c.c--
				}
				if c.b <= -c.n {
					c.b = -c.n + 1
				}
			} else if c.b > 0 {
				c.b -= c.n
				if c.c < maxC {
					c.c++
				}
				if c.b > 0 {
					c.b = 0
				}
			}
			rx := px + ((e ^ sign) - sign)
			if rx < 0 {
				rx += rng
			} else if rx > mv {
				rx -= rng
			}
			rx = min(max(rx, 0), mv)
			cur[x] = int32(rx)
			ra, rc, rb = rx, rb, rd
			x++
			continue
		}
		n := s.runLength(r, comp, width-x+1)
		for i := x; i < x+n; i++ {
			cur[i] = int32(ra)
		}
		x += n
		if x > width {
			break
		}
		rb = int(prev[x])
		var v int
		if ra == rb {
			v = s.reconstruct(ra, s.interruption(r, 1, comp))
		} else {
			e := s.interruption(r, 0, comp)
			if rb < ra {
				e = -e
			}
			v = s.reconstruct(rb, e)
		}
		cur[x] = int32(v)
		if s.runIndex[comp] > 0 {
			s.runIndex[comp]--
		}
		x++
		ra, rc, rb = v, rb, int(prev[x])
	}
	return s.err
}
