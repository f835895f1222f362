package jpegls

import (
	"math/bits"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// numContexts is the number of regular-mode contexts (T.87 A.3.4); the
// two run-interruption contexts are kept apart in runCtx.
const numContexts = 365

// Bounds of the bias correction C[Q] (T.87 A.6.2).
const (
	minC = -128
	maxC = 127
)

// jTable is the run-length order table J of T.87 A.2.1.
var jTable = [32]int{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// regularCtx holds A[Q], B[Q], C[Q] and N[Q] of one regular-mode context,
// and what the next sample coded in it reads first: its Golomb parameter
// k and, for lossless scans, flip, which is −1 when the k = 0 special
// error mapping applies (2B + N ≤ 0) and 0 otherwise. Both are worked out
// when the context changes, so that a decoder finds them with one load.
type regularCtx struct {
	a, b, c, n int32
	k, flip    int32
}

// setK works out k and flip from A, B and N.
func (c *regularCtx) setK() {
	k := int32(golombK(c.n, c.a))
	c.k = k
	c.flip = (k - 1) >> 31 & ((2*c.b + c.n - 1) >> 31)
}

// runCtx holds A, N and Nn of one of the two run-interruption contexts
// (indices 365 and 366 of T.87).
type runCtx struct {
	a, n, nn int32
}

// state is the adaptive state of one scan: the contexts, shared by all
// components of the scan, and the run index, kept per component.
type state struct {
	cp       codingParams
	ctx      [numContexts]regularCtx
	run      [2]runCtx
	runIndex []int
	// err is the first corruption found in the scan (see fail).
	err error
	// qlut maps a gradient d in −MAXVAL … MAXVAL, at qlut[d+MAXVAL], to
	// its quantized region −4 … 4.
	qlut []int8
}

// init sets the coding parameters and builds the quantization table;
// the table is reused when the parameters have not changed.
func (s *state) init(cp codingParams, comps int) {
	if s.qlut == nil || s.cp != cp {
		size := 2*cp.maxVal + 1
		if cap(s.qlut) >= size {
			s.qlut = s.qlut[:size]
		} else {
			s.qlut = make([]int8, size)
		}
		for i := range s.qlut {
			s.qlut[i] = int8(cp.quantize(i - cp.maxVal))
		}
	}
	s.cp = cp
	s.err = nil
	if cap(s.runIndex) >= comps {
		s.runIndex = s.runIndex[:comps]
	} else {
		s.runIndex = make([]int, comps)
	}
	s.resetContexts()
}

// resetContexts initialises the contexts and run indices as at the start
// of a scan or after a restart marker (T.87 A.2.1).
func (s *state) resetContexts() {
	a := int32(max(2, (s.cp.rng+32)/64))
	c := regularCtx{a: a, n: 1}
	c.setK()
	for i := range s.ctx {
		s.ctx[i] = c
	}
	s.run[0] = runCtx{a: a, n: 1}
	s.run[1] = runCtx{a: a, n: 1}
	for i := range s.runIndex {
		s.runIndex[i] = 0
	}
}

// decodeValue reads one limited-length Golomb code word with parameter k
// (T.87 A.5.3): a unary prefix, then either k low bits or, after the
// escape prefix, qbpp bits of the value minus one. Corrupt data sets
// s.err and gives 0.
func (s *state) decodeValue(r *bitReader, k, limit int) int {
	escape := limit - s.cp.qbpp - 1
	if r.n < 32 {
		r.fill()
	}
	// Fast path: the whole code word is in the accumulator.
	lz := uint(bits.LeadingZeros64(r.acc))
	if int(lz) < escape && lz+1+uint(k) <= r.n {
		acc := r.acc << (lz + 1)
		v := int(lz)<<uint(k) | int(acc>>(64-uint(k))&(1<<uint(k)-1))
		r.acc = acc << uint(k)
		r.n -= lz + 1 + uint(k)
		return v
	}
	high, err := r.zeros(escape)
	if err != nil {
		s.fail(err)
		return 0
	}
	if high == escape {
		return r.bits(uint(s.cp.qbpp)) + 1
	}
	return high<<uint(k) | r.bits(uint(k))
}

// fail records the first error of a scan; decoding goes on to the end of
// the line with harmless values and the caller reports it there, which
// keeps error checks out of the per-sample path.
func (s *state) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// golombK returns the smallest k with N·2^k ≥ A. It is bounded because A
// stays below RANGE·RESET while N ≥ 1. With A of La bits and N of Ln,
// N·2^(La−Ln) < 2^La and N·2^(La−Ln+1) ≥ 2^La > A, so k is La−Ln or one
// more: one comparison instead of a loop whose exit is as good as random.
func golombK(n, a int32) int {
	if n >= a {
		return 0
	}
	k := bits.Len32(uint32(a)) - bits.Len32(uint32(n))
	if n<<uint(k) < a {
		k++
	}
	return min(k, 31)
}

// regular decodes the sample at a context with quantized gradients q
// and MED prediction px (T.87 A.4 to A.6) and returns the reconstructed
// value. q is negated, with the error, when its first non-zero region
// is negative; q = 0 only occurs in sample-interleaved scans.
func (s *state) regular(r *bitReader, q, px int) int {
	sign := q >> 63 // 0 or −1
	q = (q ^ sign) - sign
	if q >= numContexts {
		return 0
	}
	c := &s.ctx[q]
	cp := &s.cp
	px += (int(c.c) ^ sign) - sign
	if px > cp.maxVal {
		px = cp.maxVal
	} else if px < 0 {
		px = 0
	}
	k := int(c.k)
	m := s.decodeValue(r, k, cp.limit)
	if m > 2*cp.rng {
		s.fail(codec.Corruptf("jpegls: mapped prediction error %d out of range", m))
		m = 0
	}
	// Inverse of the error mapping of A.5.2; the special mapping of the
	// lossless k = 0 case with negative bias flips every bit.
	e := (m >> 1) ^ -(m & 1)
	if cp.near == 0 {
		e ^= int(c.flip)
	}

	// Update A, B, N and the bias C (A.6.1, A.6.2).
	e32 := int32(e)
	if e32 < 0 {
		c.a -= e32
	} else {
		c.a += e32
	}
	c.b += e32 * int32(2*cp.near+1)
	if c.n == int32(cp.reset) {
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
	c.setK()

	e = (e ^ sign) - sign
	if cp.near == 0 {
		rx := px + e
		if rx < 0 {
			rx += cp.rng
		} else if rx > cp.maxVal {
			rx -= cp.rng
		}
		return min(max(rx, 0), cp.maxVal)
	}
	return s.reconstruct(px, e)
}

// interruption decodes the error of a run-interruption sample with
// context rit (0 or 1, the RItype) and updates that context (T.87 A.7.2).
func (s *state) interruption(r *bitReader, rit int, comp int) int {
	c := &s.run[rit]
	temp := c.a
	if rit == 1 {
		temp += c.n >> 1
	}
	k := golombK(c.n, temp)
	m := s.decodeValue(r, k, s.cp.limit-jTable[s.runIndex[comp]]-1)
	if m > 2*s.cp.rng {
		s.fail(codec.Corruptf("jpegls: mapped run interruption error %d out of range", m))
		m = 0
	}
	t := m + rit
	mapBit := t & 1
	abs := (t + mapBit) >> 1
	e := abs
	if (k != 0 || 2*c.nn >= c.n) == (mapBit == 1) {
		e = -abs
	}
	if e < 0 {
		c.nn++
	}
	c.a += int32((m + 1 - rit) >> 1)
	if c.n == int32(s.cp.reset) {
		c.a >>= 1
		c.n >>= 1
		c.nn >>= 1
	}
	c.n++
	return e
}

// runLength reads the run-length code at the start of run mode for a
// component with left samples remaining in the line (T.87 A.7.1.2) and
// returns the run length; a run shorter than left is followed by an
// interruption sample.
func (s *state) runLength(r *bitReader, comp, left int) int {
	ri := s.runIndex[comp]
	count := 0
	for r.bit() == 1 {
		step := 1 << jTable[ri]
		n := min(step, left-count)
		count += n
		if n == step && ri < 31 {
			ri++
		}
		if count == left {
			break
		}
	}
	if count != left && jTable[ri] > 0 {
		count += r.bits(uint(jTable[ri]))
	}
	s.runIndex[comp] = ri
	if count > left {
		s.fail(codec.Corruptf("jpegls: run of %d samples exceeds the %d left in the line", count, left))
		return left
	}
	return count
}

// reconstruct adds the dequantized error e to the prediction px, reduces
// the result modulo RANGE and clamps it to 0 … MAXVAL (T.87 A.4.4, A.6).
func (s *state) reconstruct(px, e int) int {
	cp := &s.cp
	step := 2*cp.near + 1
	rx := px + e*step
	if rx < -cp.near {
		rx += cp.rng * step
	} else if rx > cp.maxVal+cp.near {
		rx -= cp.rng * step
	}
	return min(max(rx, 0), cp.maxVal)
}
