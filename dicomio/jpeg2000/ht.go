package jpeg2000

import (
	"math/bits"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// The HT (High-Throughput) block decoder of ITU-T T.814 | ISO/IEC 15444-15
// (FBCOT): the cleanup pass (MEL, VLC and MagSgn segments), then the
// significance propagation and magnitude refinement passes. It follows
// the structure of OpenJPEG's ht_dec.c (itself from OpenJPH, BSD
// 2-clause), whose results it must reproduce bit for bit: the same
// checks, the same handling of bytes past the end of each segment, the
// same sample values. Its bit readers take one byte at a time where
// OpenJPEG reads four aligned bytes; unstuffing is per byte in both, so
// the bits read are the same.

// htScratch holds the buffers of the HT decoder, reused across blocks.
type htScratch struct {
	data      []uint32 // samples: sign in bit 31, magnitude at twice scale
	flags     []uint32 // sigma1, sigma2, mbr1, mbr2: 132 words each
	lineState []byte
}

// Offsets of the significance (sigma) and membership (mbr) arrays in
// htScratch.flags: each word holds 4 rows of 8 columns, a nibble a column.
const (
	htSigma1 = 0
	htSigma2 = 132
	htMbr1   = 264
	htMbr2   = 396
)

// melDecoder reads the MEL segment (forward, MSB first) and decodes its
// runs of events.
type melDecoder struct {
	data    []byte
	pos     int
	size    int
	tmp     uint64
	bits    int
	unstuff bool
	k       int
}

var melExp = [13]int{0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5}

// init starts the MEL segment. Like OpenJPEG, it refuses a segment whose
// first bytes (up to the fourth, as many as OpenJPEG reads to align its
// reads, taking the block's data to start aligned) have a byte above
// 0x8F after 0xFF, where the stuffed bit must be zero.
func (m *melDecoder) init(data []byte, lcup, scup int) bool {
	*m = melDecoder{data: data, pos: lcup - scup, size: scup - 1}
	for range 4 - (lcup-scup)&3 {
		if m.unstuff && m.data[m.pos] > 0x8F {
			return false
		}
		d := uint64(0xFF)
		if m.size > 0 {
			d = uint64(m.data[m.pos])
			if m.size == 1 {
				d |= 0xF
			}
			m.pos++
		}
		m.size--
		m.push(d)
	}
	return true
}

// push appends the bits of byte d to tmp, MSB first, less the stuffed
// bit after 0xFF.
func (m *melDecoder) push(d uint64) {
	if m.unstuff {
		m.bits += 7
	} else {
		m.bits += 8
	}
	m.tmp |= d << uint(64-m.bits)
	m.unstuff = d == 0xFF
}

// fill appends bytes to tmp, MSB first: past the segment it reads 0xFF,
// and its last byte is read with its four low bits set (the MEL and VLC
// segments share that byte).
func (m *melDecoder) fill() {
	for m.bits <= 56 {
		d := uint64(0xFF)
		if m.size > 0 {
			d = uint64(m.data[m.pos])
			m.pos++
			if m.size == 1 {
				d |= 0xF
			}
		}
		m.size--
		m.push(d)
	}
}

// next spends one MEL event of the run counter run (two per quad pair): it
// reports whether the event is the run's end, a significant quad, and
// fetches the next run once the counter is spent.
func (m *melDecoder) next(run *int) bool {
	*run -= 2
	hit := *run == -1
	if *run < 0 {
		*run = m.run()
	}
	return hit
}

// run returns the next run: twice the number of zero events, plus one
// when the run ends in a one event.
func (m *melDecoder) run() int {
	if m.bits < 6 {
		m.fill()
	}
	eval := melExp[m.k]
	if m.tmp>>63 != 0 {
		m.k = min(m.k+1, 12)
		m.tmp <<= 1
		m.bits--
		return ((1 << eval) - 1) << 1
	}
	r := int(m.tmp>>uint(63-eval)) & ((1 << eval) - 1)
	m.k = max(m.k-1, 0)
	m.tmp <<= uint(eval + 1)
	m.bits -= eval + 1
	return r<<1 + 1
}

// revReader reads a segment that grows backward (VLC, MagRef), LSB first,
// unstuffing a 0x7F that follows a byte above 0x8F; past the segment it
// reads zeros.
type revReader struct {
	data    []byte
	pos     int
	size    int
	tmp     uint64
	bits    uint
	unstuff bool
}

// initVLC starts the VLC segment, whose last byte and a half hold Scup.
func (r *revReader) initVLC(data []byte, lcup, scup int) {
	d := data[lcup-2]
	*r = revReader{data: data, pos: lcup - 3, size: scup - 2}
	r.tmp = uint64(d >> 4)
	r.bits = 4
	if r.tmp&7 == 7 {
		r.bits = 3
	}
	r.unstuff = d|0xF > 0x8F
	r.fill()
}

// initMRP starts the MagRef segment, which ends the refinement data.
func (r *revReader) initMRP(data []byte, lcup, len2 int) {
	*r = revReader{data: data, pos: lcup + len2 - 1, size: len2, unstuff: true}
	r.fill()
}

func (r *revReader) fill() {
	for r.bits <= 56 {
		var d uint64
		if r.size > 0 {
			d = uint64(r.data[r.pos])
			r.pos--
		}
		r.size--
		n := uint(8)
		if r.unstuff && d&0x7F == 0x7F {
			n = 7
		}
		r.tmp |= d << r.bits
		r.bits += n
		r.unstuff = d > 0x8F
	}
}

func (r *revReader) fetch() uint32 {
	if r.bits < 32 {
		r.fill()
	}
	return uint32(r.tmp)
}

func (r *revReader) advance(n uint32) uint32 {
	r.tmp >>= n
	r.bits -= uint(n)
	return uint32(r.tmp)
}

// fwdReader reads a segment that grows forward (MagSgn, SigProp), LSB
// first, dropping the MSB of the byte after 0xFF; past the segment it
// reads x.
type fwdReader struct {
	data    []byte
	pos     int
	size    int
	tmp     uint64
	bits    uint
	unstuff bool
	x       uint64
}

func (f *fwdReader) init(data []byte, size int, x uint64) {
	*f = fwdReader{data: data, size: size, x: x}
	f.fill()
}

// fill is kept out of line: it runs once in several samples, and the
// sample decoding that calls it stays small.
//
//go:noinline
func (f *fwdReader) fill() {
	for f.bits <= 56 {
		d := f.x
		if f.size > 0 {
			d = uint64(f.data[f.pos])
			f.pos++
		}
		f.size--
		f.tmp |= d << f.bits
		if f.unstuff {
			f.bits += 7
		} else {
			f.bits += 8
		}
		f.unstuff = d&0xFF == 0xFF
	}
}

func (f *fwdReader) fetch() uint32 {
	if f.bits < 32 {
		f.fill()
	}
	return uint32(f.tmp)
}

func (f *fwdReader) advance(n uint32) {
	f.tmp >>= n
	f.bits -= uint(n)
}

// uvlcPrefix decodes the prefix of a u codeword from its three lowest
// bits: prefix length (bits 0–1), suffix length (bits 2–4) and prefix
// value (bits 5–7), Table 3 of T.814.
var uvlcPrefix = [8]uint8{
	3 | 5<<2 | 5<<5,
	1 | 0<<2 | 1<<5,
	2 | 0<<2 | 2<<5,
	1 | 0<<2 | 1<<5,
	3 | 1<<2 | 3<<5,
	1 | 0<<2 | 1<<5,
	2 | 0<<2 | 2<<5,
	1 | 0<<2 | 1<<5,
}

// decodeUVLC decodes the u values of a quad pair (u + 1 in u) and returns
// the bits consumed. mode holds the two u_off bits; in the initial row,
// mode 3 with a MEL one event is mode 4, and u_q of 2+ pairs are coded
// differently.
func decodeUVLC(vlc, mode uint32, initial bool, u *[2]uint32) uint32 {
	var consumed uint32
	switch {
	case mode == 0:
		u[0], u[1] = 1, 1
	case mode <= 2:
		d := uint32(uvlcPrefix[vlc&7])
		vlc >>= d & 3
		consumed += d & 3
		sl := (d >> 2) & 7
		consumed += sl
		d = d>>5 + vlc&(1<<sl-1)
		if mode == 1 {
			u[0], u[1] = d+1, 1
		} else {
			u[0], u[1] = 1, d+1
		}
	case mode == 3 && initial:
		d1 := uint32(uvlcPrefix[vlc&7])
		vlc >>= d1 & 3
		consumed += d1 & 3
		if d1&3 > 2 {
			u[1] = vlc&1 + 1 + 1
			consumed++
			vlc >>= 1
			sl := (d1 >> 2) & 7
			consumed += sl
			d1 = d1>>5 + vlc&(1<<sl-1)
			u[0] = d1 + 1
		} else {
			d2 := uint32(uvlcPrefix[vlc&7])
			vlc >>= d2 & 3
			consumed += d2 & 3
			sl := (d1 >> 2) & 7
			consumed += sl
			d1 = d1>>5 + vlc&(1<<sl-1)
			u[0] = d1 + 1
			vlc >>= sl
			sl = (d2 >> 2) & 7
			consumed += sl
			d2 = d2>>5 + vlc&(1<<sl-1)
			u[1] = d2 + 1
		}
	case mode == 3 || mode == 4:
		d1 := uint32(uvlcPrefix[vlc&7])
		vlc >>= d1 & 3
		consumed += d1 & 3
		d2 := uint32(uvlcPrefix[vlc&7])
		vlc >>= d2 & 3
		consumed += d2 & 3
		sl := (d1 >> 2) & 7
		consumed += sl
		d1 = d1>>5 + vlc&(1<<sl-1)
		vlc >>= sl
		sl = (d2 >> 2) & 7
		consumed += sl
		d2 = d2>>5 + vlc&(1<<sl-1)
		add := uint32(1)
		if mode == 4 {
			add = 3
		}
		u[0], u[1] = d1+add, d2+add
	}
	return consumed
}

// htBlock describes one HT code-block to decode.
type htBlock struct {
	w, h int
	mb   int // magnitude bit-planes of the sub-band
	zbp  int // missing MSBs (the zero bit-planes of the packet headers)
	// passes and lengths of the cleanup segment and of the refinement
	// segment (SigProp and MagRef).
	passes1, passes2 int
	len1, len2       int
	causal           bool
}

// decodeHT decodes an HT code-block into s.data: w×h samples, sign in
// bit 31, magnitude at twice scale (the centre of the bin in the lowest
// bit decoded); when out is not nil, it also gives them in two's
// complement there.
func (s *htScratch) decodeHT(b htBlock, data []byte, out []int32) error {
	width, height := b.w, b.h
	stride := width
	n := width * height
	if cap(s.data) < n {
		s.data = make([]uint32, n)
	}
	dec := s.data[:n]
	clear(dec)
	if len(s.flags) < 4*132 {
		s.flags = make([]uint32, 4*132)
		s.lineState = make([]byte, 528)
	}
	fl := s.flags
	clear(fl)
	clear(s.lineState)
	if out != nil {
		defer func() {
			for i, v := range dec {
				m := int32(v & 0x7FFFFFFF)
				if v&0x80000000 != 0 {
					m = -m
				}
				out[i] = m
			}
		}()
	}
	if b.mb == 0 {
		return nil
	}
	zeroBplanes := uint32(b.zbp + 1)
	mb := uint32(b.mb)
	numPasses := b.passes1 + b.passes2
	len1, len2 := b.len1, b.len2
	if numPasses > 1 && len2 == 0 {
		numPasses = 1
	}
	if numPasses > 3 {
		return codec.Unsupportedf("HT code-block with %d coding passes", numPasses)
	}
	if mb > 30 {
		return codec.Unsupportedf("HT code-block with %d bit-planes", mb)
	}
	if zeroBplanes > mb {
		return codec.Corruptf("HT code-block with %d zero bit-planes of %d", zeroBplanes, mb)
	}
	if zeroBplanes == mb && numPasses > 1 {
		numPasses = 1
	}
	p := uint32(b.mb - b.zbp)
	zeroBplanesP1 := zeroBplanes + 1
	if len1 < 2 || len1 > len(data) || len1+len2 > len(data) {
		return codec.Corruptf("HT code-block segment lengths %d and %d for %d bytes", len1, len2, len(data))
	}
	lcup := len1
	scup := int(data[lcup-1])<<4 + int(data[lcup-2]&0xF)
	if scup < 2 || scup > lcup || scup > 4079 {
		return codec.Corruptf("HT code-block with Scup %d and Lcup %d", scup, lcup)
	}
	var mel melDecoder
	var vlc, magref revReader
	var magsgn, sigprop fwdReader
	if !mel.init(data, lcup, scup) {
		return codec.Corruptf("HT code-block: MEL segment badly stuffed")
	}
	vlc.initVLC(data, lcup, scup)
	magsgn.init(data[:lcup-scup], lcup-scup, 0xFF)
	if numPasses > 1 {
		sigprop.init(data[len1:len1+len2], len2, 0)
	}
	if numPasses > 2 {
		magref.initMRP(data, len1, len2)
	}
	ls := s.lineState

	cl := htCleanup{dec: dec, ls: ls, stride: stride, p: p, ms: &magsgn}

	// The initial row pair.
	run := mel.run()
	var qinf, uq [2]uint32
	cq := uint32(0)
	sip, sipShift := htSigma1, uint32(0)
	li := 0
	for x := 0; x < width; x += 4 {
		vlcVal := vlc.fetch()
		qinf[0] = uint32(vlcTable0[cq<<7|vlcVal&0x7F])
		if cq == 0 && !mel.next(&run) {
			qinf[0] = 0
		}
		cq = (qinf[0]&0x10)>>4 | (qinf[0]&0xE0)>>5
		vlcVal = vlc.advance(qinf[0] & 7)
		fl[sip] |= ((qinf[0]&0x30)>>4 | (qinf[0]&0xC0)>>2) << sipShift
		qinf[1] = 0
		if x+2 < width {
			qinf[1] = uint32(vlcTable0[cq<<7|vlcVal&0x7F])
			if cq == 0 && !mel.next(&run) {
				qinf[1] = 0
			}
			cq = (qinf[1]&0x10)>>4 | (qinf[1]&0xE0)>>5
			vlcVal = vlc.advance(qinf[1] & 7)
		}
		fl[sip] |= ((qinf[1] & 0x30) | (qinf[1]&0xC0)<<2) << (4 + sipShift)
		if x&7 != 0 {
			sip++
		}
		sipShift ^= 0x10
		mode := (qinf[0]&8)>>3 | (qinf[1]&8)>>2
		if mode == 3 && mel.next(&run) {
			mode++
		}
		consumed := decodeUVLC(vlcVal, mode, true, &uq)
		if uq[0] > zeroBplanesP1 || uq[1] > zeroBplanesP1 {
			return codec.Corruptf("HT code-block: u_q exceeds the bit-planes")
		}
		vlc.advance(consumed)
		locs := uint32(0xFF)
		if x+4 > width {
			locs >>= uint(x+4-width) << 1
		}
		if height <= 1 {
			locs &= 0x55
		}
		if ((qinf[0]&0xF0)>>4|(qinf[1]&0xF0))&^locs != 0 {
			return codec.Corruptf("HT code-block: significant samples outside the block")
		}
		cl.quads(&qinf, &uq, x, 0, li, locs)
		li += 2
	}

	// Later row pairs.
	for y := 2; y < height; {
		sipShift ^= 2
		sipShift &= 0xFFFFFFEF
		sip := htSigma1
		if y&4 != 0 {
			sip = htSigma2
		}
		li := 0
		ls0 := ls[0]
		ls[0] = 0
		cq := uint32(0)
		for x := 0; x < width; x += 4 {
			cq |= uint32(ls0 >> 7)
			cq |= uint32(ls[li+1]>>5) & 4
			vlcVal := vlc.fetch()
			qinf[0] = uint32(vlcTable1[cq<<7|vlcVal&0x7F])
			if cq == 0 && !mel.next(&run) {
				qinf[0] = 0
			}
			cq = (qinf[0]&0x40)>>5 | (qinf[0]&0x80)>>6
			vlcVal = vlc.advance(qinf[0] & 7)
			fl[sip] |= ((qinf[0]&0x30)>>4 | (qinf[0]&0xC0)>>2) << sipShift
			qinf[1] = 0
			if x+2 < width {
				cq |= uint32(ls[li+1] >> 7)
				cq |= uint32(ls[li+2]>>5) & 4
				qinf[1] = uint32(vlcTable1[cq<<7|vlcVal&0x7F])
				if cq == 0 && !mel.next(&run) {
					qinf[1] = 0
				}
				cq = (qinf[1]&0x40)>>5 | (qinf[1]&0x80)>>6
				vlcVal = vlc.advance(qinf[1] & 7)
			}
			fl[sip] |= ((qinf[1] & 0x30) | (qinf[1]&0xC0)<<2) << (4 + sipShift)
			if x&7 != 0 {
				sip++
			}
			sipShift ^= 0x10
			mode := (qinf[0]&8)>>3 | (qinf[1]&8)>>2
			consumed := decodeUVLC(vlcVal, mode, false, &uq)
			vlc.advance(consumed)
			if g := qinf[0] & 0xF0; g&(g-1) != 0 {
				e := max(uint32(ls0&0x7F), uint32(ls[li+1]&0x7F))
				if e > 2 {
					uq[0] += e - 2
				}
			}
			if g := qinf[1] & 0xF0; g&(g-1) != 0 {
				e := max(uint32(ls[li+1]&0x7F), uint32(ls[li+2]&0x7F))
				if e > 2 {
					uq[1] += e - 2
				}
			}
			if uq[0] > zeroBplanesP1 || uq[1] > zeroBplanesP1 {
				return codec.Corruptf("HT code-block: u_q exceeds the bit-planes")
			}
			ls0 = ls[li+2]
			ls[li+1], ls[li+2] = 0, 0
			locs := uint32(0xFF)
			if x+4 > width {
				locs >>= uint(x+4-width) << 1
			}
			if y+2 > height {
				locs &= 0x55
			}
			if ((qinf[0]&0xF0)>>4|(qinf[1]&0xF0))&^locs != 0 {
				return codec.Corruptf("HT code-block: significant samples outside the block")
			}
			cl.quads(&qinf, &uq, x, y, li, locs)
			li += 2
		}
		y += 2
		if numPasses > 1 && y&3 == 0 {
			if numPasses > 2 {
				curSig := htSigma2
				if y&4 != 0 {
					curSig = htSigma1
				}
				s.magRef(&magref, dec[(y-4)*stride:], curSig, width, stride, p)
			}
			if y >= 4 {
				sig, mbr := htSigma2, htMbr2
				if y&4 != 0 {
					sig, mbr = htSigma1, htMbr1
				}
				s.stripeMembership(sig, mbr, width)
			}
			if y >= 8 {
				if err := s.sigProp(&sigprop, dec, y-8, y, width, stride, p, b.causal, 0xFFFFFFFF, true, true); err != nil {
					return err
				}
			}
		}
	}

	if numPasses > 1 {
		if numPasses > 2 && (height&3 == 1 || height&3 == 2) {
			curSig := htSigma1
			if height&4 != 0 {
				curSig = htSigma2
			}
			s.magRef(&magref, dec[(height&0xFFFFFC)*stride:], curSig, width, stride, p)
		}
		if height&3 == 1 || height&3 == 2 {
			sig, mbr := htSigma1, htMbr1
			if height&4 != 0 {
				sig, mbr = htSigma2, htMbr2
			}
			s.stripeMembership(sig, mbr, width)
		}
		st := height
		if height > 6 {
			st -= (height+1)&3 + 3
		} else {
			st = 0
		}
		for y := st; y < height; y += 4 {
			pattern := uint32(0xFFFFFFFF)
			switch height - y {
			case 3:
				pattern = 0x77777777
			case 2:
				pattern = 0x33333333
			case 1:
				pattern = 0x11111111
			}
			if err := s.sigProp(&sigprop, dec, y, y+8, width, stride, p, b.causal, pattern, height-y > 4, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// htCleanup decodes the samples of quad pairs from the MagSgn segment.
type htCleanup struct {
	dec    []uint32
	ls     []byte
	stride int
	p      uint32
	ms     *fwdReader
}

// quads decodes the samples of the quad pair at column x of rows y and
// y+1 (qinf their VLC codewords, uq their u values + 1, locs the samples
// inside the block) and updates the line state from entry li: the
// exponent E of each quad's bottom-left sample goes to its entry, that
// of its bottom-right sample to the next.
func (c *htCleanup) quads(qinf, uq *[2]uint32, x, y, li int, locs uint32) {
	dec, ls, stride, p, ms := c.dec, c.ls, c.stride, c.p, c.ms
	sp := y*stride + x
	for qi := range 2 {
		q, u := qinf[qi], uq[qi]
		l := locs >> (4 * uint(qi))
		// Each significant sample: m_n = u - e_k bits of MagSgn, the
		// lowest the sign, e_1 above them and the bin centre below, as
		// T.814 7.3.8 and OpenJPEG reconstruct it (sign in bit 31). The
		// four samples are written out for speed.
		if q&0x10 != 0 {
			if ms.bits < 32 {
				ms.fill()
			}
			v, mn := uint32(ms.tmp), u-(q>>12)&1
			ms.tmp >>= mn
			ms.bits -= uint(mn)
			vn := v&(1<<mn-1) | ((q>>8)&1)<<mn | 1
			dec[sp] = v<<31 | (vn+2)<<(p-1)
		} else if l&1 != 0 {
			dec[sp] = 0
		}
		if q&0x20 != 0 {
			if ms.bits < 32 {
				ms.fill()
			}
			v, mn := uint32(ms.tmp), u-(q>>13)&1
			ms.tmp >>= mn
			ms.bits -= uint(mn)
			vn := v&(1<<mn-1) | ((q>>9)&1)<<mn | 1
			dec[sp+stride] = v<<31 | (vn+2)<<(p-1)
			e := 32 - uint32(bits.LeadingZeros32(vn))
			ls[li] = byte(0x80 | max(uint32(ls[li]&0x7F), e))
		} else if l&2 != 0 {
			dec[sp+stride] = 0
		}
		if q&0x40 != 0 {
			if ms.bits < 32 {
				ms.fill()
			}
			v, mn := uint32(ms.tmp), u-(q>>14)&1
			ms.tmp >>= mn
			ms.bits -= uint(mn)
			vn := v&(1<<mn-1) | ((q>>10)&1)<<mn | 1
			dec[sp+1] = v<<31 | (vn+2)<<(p-1)
		} else if l&4 != 0 {
			dec[sp+1] = 0
		}
		if y == 0 {
			ls[li+1] = 0
		}
		if q&0x80 != 0 {
			if ms.bits < 32 {
				ms.fill()
			}
			v, mn := uint32(ms.tmp), u-(q>>15)&1
			ms.tmp >>= mn
			ms.bits -= uint(mn)
			vn := v&(1<<mn-1) | ((q>>11)&1)<<mn | 1
			dec[sp+1+stride] = v<<31 | (vn+2)<<(p-1)
			ls[li+1] = byte(0x80 | (32 - uint32(bits.LeadingZeros32(vn))))
		} else if l&8 != 0 {
			dec[sp+1+stride] = 0
		}
		li++
		sp += 2
	}
}

// magRef runs the magnitude refinement pass over the stripe of four rows
// at dp, whose significance is at curSig.
func (s *htScratch) magRef(mr *revReader, dp []uint32, curSig, width, stride int, p uint32) {
	fl := s.flags
	half := uint32(1) << (p - 2)
	for i := 0; i < width; i += 8 {
		cwd := mr.fetch()
		sig := fl[curSig]
		curSig++
		colMask := uint32(0xF)
		if sig != 0 {
			for j := range 8 {
				if sig&colMask != 0 {
					sampleMask := 0x11111111 & colMask
					for r := range 4 {
						if sig&sampleMask != 0 {
							k := r*stride + i + j
							sym := cwd & 1
							dp[k] ^= (1 - sym) << (p - 1)
							dp[k] |= half
							cwd >>= 1
						}
						sampleMask += sampleMask
					}
				}
				colMask <<= 4
			}
		}
		mr.advance(uint32(bits.OnesCount32(sig)))
	}
}

// stripeMembership computes the membership (mbr) of a stripe from its
// significance: the insignificant neighbours of significant samples
// within the stripe.
func (s *htScratch) stripeMembership(sig, mbr, width int) {
	fl := s.flags
	prev := uint32(0)
	for i := 0; i < width; i, mbr, sig = i+8, mbr+1, sig+1 {
		m := fl[sig]
		m |= prev >> 28
		m |= fl[sig] << 4
		m |= fl[sig] >> 4
		m |= fl[sig+1] << 28
		prev = fl[sig]
		t, z := m, m
		z |= (t & 0x77777777) << 1
		z |= (t & 0xEEEEEEEE) >> 1
		fl[mbr] = z &^ fl[sig]
	}
}

// sigProp runs the significance propagation pass over the stripe of rows
// row..row+3. sel is the y that selects the sigma and mbr arrays (y & 4,
// as OpenJPEG chooses them); pattern masks the rows that exist; withNext
// adds membership from the stripe below first; clearAfter clears the
// stripe's significance when done.
func (s *htScratch) sigProp(sp *fwdReader, dec []uint32, row, sel, width, stride int, p uint32, causal bool, pattern uint32, withNext, clearAfter bool) error {
	fl := s.flags
	curSig, curMbr, nxtSig, nxtMbr := htSigma1, htMbr1, htSigma2, htMbr2
	if sel&4 != 0 {
		curSig, curMbr, nxtSig, nxtMbr = htSigma2, htMbr2, htSigma1, htMbr1
	}
	if withNext {
		prev := uint32(0)
		cs, cm, ns := curSig, curMbr, nxtSig
		for i := 0; i < width; i, cm, cs, ns = i+8, cm+1, cs+1, ns+1 {
			t := fl[ns]
			t |= prev >> 28
			t |= fl[ns] << 4
			t |= fl[ns] >> 4
			t |= fl[ns+1] << 28
			prev = fl[ns]
			if !causal {
				fl[cm] |= (t & 0x11111111) << 3
			}
			fl[cm] &^= fl[cs]
		}
	}
	val := uint32(3) << (p - 2)
	cs, cm, ns, nm := curSig, curMbr, nxtSig, nxtMbr
	for i := 0; i < width; i, cs, cm, ns, nm = i+8, cs+1, cm+1, ns+1, nm+1 {
		mbr := fl[cm] & pattern
		newSig := uint32(0)
		if mbr != 0 {
			for n := 0; n < 8; n += 4 {
				cwd := sp.fetch()
				cnt := uint32(0)
				colMask := uint32(0xF) << (4 * n)
				invSig := ^fl[cs] & pattern
				end := width - i
				if n+4+i < width {
					end = n + 4
				}
				for j := n; j < end; j, colMask = j+1, colMask<<4 {
					if colMask&mbr == 0 {
						continue
					}
					sampleMask := 0x11111111 & colMask
					for _, prop := range [4]uint32{0x32, 0x74, 0xE8, 0xC0} {
						if mbr&sampleMask != 0 {
							if cwd&1 != 0 {
								newSig |= sampleMask
								mbr |= (prop << (j * 4)) & invSig
							}
							cwd >>= 1
							cnt++
						}
						sampleMask += sampleMask
					}
				}
				if newSig&(0xFFFF<<(4*n)) != 0 {
					colMask := uint32(0xF) << (4 * n)
					for j := n; j < end; j, colMask = j+1, colMask<<4 {
						if colMask&newSig == 0 {
							continue
						}
						sampleMask := 0x11111111 & colMask
						for r := range 4 {
							if newSig&sampleMask != 0 {
								dec[(row+r)*stride+i+j] |= (cwd&1)<<31 | val
								cwd >>= 1
								cnt++
							}
							sampleMask += sampleMask
						}
					}
				}
				sp.advance(cnt)
				if n == 4 {
					t := newSig >> 28
					t |= (t&0xE)>>1 | (t&7)<<1
					fl[cm+1] |= t &^ fl[cs+1]
				}
			}
		}
		newSig |= fl[cs]
		ux := (newSig & 0x88888888) >> 3
		tx := ux | ux<<4 | ux>>4
		if i > 0 {
			fl[nm-1] |= (ux << 28) &^ fl[ns-1]
		}
		fl[nm] |= tx &^ fl[ns]
		fl[nm+1] |= (ux >> 28) &^ fl[ns+1]
	}
	if clearAfter {
		// The stripe is done: clear its significance (membership is
		// rewritten, not accumulated).
		clear(fl[curSig : curSig+(width+7)>>3+1])
	}
	return nil
}
