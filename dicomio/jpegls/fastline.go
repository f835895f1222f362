package jpegls

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// decodeLineLossless is decodeLine for NEAR = 0, the case nearly every
// DICOM JPEG-LS file uses. Runs of regular-mode samples go to
// regularRun; the samples it leaves (run mode, long code words, errors)
// are decoded here as decodeLine decodes them. It must give exactly what
// decodeLine gives, errors included; TestFastLine checks.
func (s *state) decodeLineLossless(r *bitReader, l *lines, width, comp int) error {
	prev, cur := l.prev[:width+2], l.cur[:width+2]
	qlut := s.qlut
	mv := s.cp.maxVal
	ra, rc, rb := int(cur[0]), int(prev[0]), int(prev[1])
	for x := 1; x <= width; {
		x, ra, rb, rc = s.regularRun(r, prev, cur, x, width, ra, rb, rc)
		if x > width {
			break
		}
		rd := int(prev[x+1])
		q := int(qlut[rd-rb+mv])*81 + int(qlut[rb-rc+mv])*9 + int(qlut[rc-ra+mv])
		if q != 0 {
			// A sample regularRun leaves to the general decoder.
			rx := s.regular(r, q, predict(ra, rb, rc))
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

// regularRunGo decodes lossless regular-mode samples of a line from column
// x on (T.87 A.4 to A.6, as state.regular), with Ra, Rb and Rc the
// neighbours of x, and returns the first column it did not decode with
// that column's neighbours. It stops at a sample in run mode, at one
// whose code word is not whole in the bit reader's accumulator or is an
// escape, and at one whose mapped error is out of range, without reading
// any of that sample. Nothing in its loop calls out, and the line, the
// tables and the accumulator are read without bounds tests, so that the
// neighbours and the reader's state stay in registers: every index is in
// range because samples stay within 0 … MAXVAL, contexts within 1 … 364,
// and fill keeps pos within buf.
func (s *state) regularRunGo(r *bitReader, prev, cur []int32, x, width, ra, rb, rc int) (int, int, int, int) {
	mv := s.cp.maxVal
	escape := uint(s.cp.limit - s.cp.qbpp - 1)
	reset := int32(s.cp.reset)
	pp := unsafe.Pointer(unsafe.SliceData(prev))
	cp := unsafe.Pointer(unsafe.SliceData(cur))
	qp := unsafe.Add(unsafe.Pointer(unsafe.SliceData(s.qlut)), mv) // qlut[d+MAXVAL] at qp+d
	ctxs := unsafe.Pointer(&s.ctx[0])
	bp := unsafe.Pointer(unsafe.SliceData(r.buf))
	acc, n, pos, maxPos := r.acc, r.n, r.pos, r.maxPos
	for ; x <= width; x++ {
		rd := int(*(*int32)(unsafe.Add(pp, 4*(x+1))))
		q := int(*(*int8)(unsafe.Add(qp, rd-rb)))*81 + int(*(*int8)(unsafe.Add(qp, rb-rc)))*9 + int(*(*int8)(unsafe.Add(qp, rc-ra)))
		if q == 0 {
			break
		}
		sign := q >> 63
		c := (*regularCtx)(unsafe.Add(ctxs, uintptr((q^sign)-sign)*unsafe.Sizeof(regularCtx{})))
		k := uint(c.k) & 63
		acc |= binary.BigEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(bp, pos)), 8)) >> n
		pos = min(pos+int(63-n)>>3, maxPos)
		n |= 56
		lz := uint(bits.LeadingZeros64(acc))
		if lz >= escape || lz+1+k > n {
			break
		}
		// The unary prefix, its 1 bit and k bits: lz−1 shifted by k plus
		// the 1 bit and the k bits read as one number.
		m := int(lz-1)<<k + int(acc<<(lz&63)>>(63-k))
		if m > 2*mv+2 { // 2·RANGE
			break
		}
		acc <<= (lz + 1 + k) & 63
		n -= lz + 1 + k
		px := min(max(predict(ra, rb, rc)+(int(c.c)^sign)-sign, 0), mv)
		e := (m>>1 ^ -(m & 1)) ^ int(c.flip)
		// Update A, B, N and the bias C (A.6.1, A.6.2) without
		// data-dependent branches: neg and pos are −1 when B ≤ −N and
		// when B > 0, and after the correction B always lies in −N+1 … 0
		// (on neither side it already did).
		e32 := int32(e)
		a, b, nn := c.a+(e32^e32>>31)-e32>>31, c.b+e32, c.n
		if nn == reset {
			a >>= 1
			b >>= 1
			nn >>= 1
		}
		nn++
		neg, pos := (b+nn-1)>>31, (-b)>>31
		b = min(max(b+nn&neg-nn&pos, 1-nn), 0)
		c.a, c.b, c.n = a, b, nn
		c.c = min(max(c.c+neg-pos, minC), maxC)
		kk := int32(golombK(nn, a))
		c.k, c.flip = kk, (kk-1)>>31&((2*b+nn-1)>>31)
		rx := px + ((e ^ sign) - sign)
		if rx < 0 {
			rx += mv + 1 // RANGE
		} else if rx > mv {
			rx -= mv + 1
		}
		rx = min(max(rx, 0), mv)
		*(*int32)(unsafe.Add(cp, 4*x)) = int32(rx)
		ra, rc, rb = rx, rb, rd
	}
	r.acc, r.n, r.pos = acc, n, pos
	return x, ra, rb, rc
}
