package jpeg2000

// Tier-1 (EBCOT) decoding of one code-block, ITU-T T.800 Annex D.

// Per-coefficient flags. The low byte says which of the eight neighbours
// are significant, the next nibble which of the four direct neighbours are
// negative, so context labels come from small lookup tables.
const (
	fN uint16 = 1 << iota
	fS
	fW
	fE
	fNW
	fNE
	fSW
	fSE
	fNegN
	fNegS
	fNegW
	fNegE
	fSig
	fVisit
	fRefined
	fNeg
)

// Code-block style flags of COD/COC (Table A.19).
const (
	styleBypass  = 0x01
	styleReset   = 0x02
	styleTermAll = 0x04
	styleCausal  = 0x08
	styleSegSym  = 0x20
	styleKnown   = 0x3F
	// styleHT marks HT code-blocks (ITU-T T.814); styleHTMixed, which
	// lets each code-block choose, is not decoded (nor by OpenJPEG).
	styleHT      = 0x40
	styleHTMixed = 0x80
)

// Sub-band orientations, in the order of a resolution level's packets.
const (
	orientLL = iota
	orientHL
	orientLH
	orientHH
)

var (
	zcTable [4][256]uint8 // zero-coding context by orientation and neighbourhood
	scTable [256]uint8    // sign context | xor bit << 7
)

func init() {
	for o := range 4 {
		for f := range 256 {
			n := uint16(f)
			h := b2i(n&fW != 0) + b2i(n&fE != 0)
			v := b2i(n&fN != 0) + b2i(n&fS != 0)
			d := b2i(n&fNW != 0) + b2i(n&fNE != 0) + b2i(n&fSW != 0) + b2i(n&fSE != 0)
			zcTable[o][f] = zeroContext(o, h, v, d)
		}
	}
	for f := range 256 {
		sig, neg := f&0xF, f>>4
		contrib := func(s, n int) int {
			if sig&s == 0 {
				return 0
			}
			if neg&n != 0 {
				return -1
			}
			return 1
		}
		h := clamp1(contrib(int(fW), int(fNegW>>8)) + contrib(int(fE), int(fNegE>>8)))
		v := clamp1(contrib(int(fN), int(fNegN>>8)) + contrib(int(fS), int(fNegS>>8)))
		xor := 0
		if h < 0 || (h == 0 && v < 0) {
			xor, h, v = 1, -h, -v
		}
		var ctx int
		switch {
		case h == 1 && v == 1:
			ctx = 13
		case h == 1 && v == 0:
			ctx = 12
		case h == 1 && v == -1:
			ctx = 11
		case h == 0 && v == 1:
			ctx = 10
		default:
			ctx = 9
		}
		scTable[f] = uint8(ctx | xor<<7)
	}
}

// zeroContext implements Table D.1.
func zeroContext(orient, h, v, d int) uint8 {
	if orient == orientHL {
		h, v = v, h
	}
	if orient == orientHH {
		hv := h + v
		switch {
		case d >= 3:
			return 8
		case d == 2 && hv >= 1:
			return 7
		case d == 2:
			return 6
		case d == 1 && hv >= 2:
			return 5
		case d == 1 && hv == 1:
			return 4
		case d == 1:
			return 3
		case hv >= 2:
			return 2
		case hv == 1:
			return 1
		}
		return 0
	}
	switch {
	case h == 2:
		return 8
	case h == 1 && v >= 1:
		return 7
	case h == 1 && d >= 1:
		return 6
	case h == 1:
		return 5
	case v == 2:
		return 4
	case v == 1:
		return 3
	case d >= 2:
		return 2
	case d == 1:
		return 1
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func clamp1(x int) int {
	return max(-1, min(1, x))
}

// t1 holds the state for decoding code-blocks; one is reused for all the
// code-blocks of a frame so decoding allocates nothing per block.
type t1 struct {
	w, h, stride int
	flags        []uint16
	data         []int32 // magnitudes at twice scale: bit q+1 is bit-plane q
	zc           *[256]uint8
	causal       bool
	mq           mqDecoder
	raw          rawDecoder
	buf          []byte
	// ht holds the buffers of the HT code-block decoder.
	ht htScratch
}

// pass kinds in the order of a bit-plane.
const (
	passSig = iota
	passRef
	passClean
)

// decode decodes the segments of a code-block of w×h coefficients whose
// first (cleanup) pass is on bit-plane numbps−1. segs gives the data and
// pass count of each codeword segment.
func (t *t1) decode(w, h, orient, style, numbps int, segs []segment, chunks []chunk) {
	t.w, t.h, t.stride = w, h, w+2
	n := (w + 2) * (h + 2)
	if cap(t.flags) < n {
		t.flags = make([]uint16, n)
	}
	t.flags = t.flags[:n]
	clear(t.flags)
	if cap(t.data) < w*h {
		t.data = make([]int32, w*h)
	}
	t.data = t.data[:w*h]
	clear(t.data)
	t.zc = &zcTable[orient]
	t.causal = style&styleCausal != 0
	t.mq.resetContexts()

	q, kind, pass := numbps-1, passClean, 0
	for si := range segs {
		t.buf = t.buf[:0]
		for _, c := range chunks {
			if int(c.seg) == si {
				t.buf = append(t.buf, c.data...)
			}
		}
		t.buf = append(t.buf, 0xFF, 0xFF)
		t.mq.init(t.buf)
		t.raw.init(t.buf)
		for range segs[si].passes {
			if q < 0 {
				return
			}
			raw := style&styleBypass != 0 && pass >= 10 && kind != passClean
			switch kind {
			case passSig:
				t.sigPass(q, raw)
			case passRef:
				t.refPass(q, raw)
			case passClean:
				t.cleanPass(q)
				if style&styleSegSym != 0 {
					for range 4 {
						t.mq.decode(ctxUniform)
					}
				}
			}
			if style&styleReset != 0 {
				t.mq.resetContexts()
			}
			pass++
			if kind++; kind > passClean {
				kind = passSig
				q--
			}
		}
	}
}

// setSig marks coefficient (x, y) at flag index i significant and tells
// its neighbours. In vertically causal mode the stripe above does not
// learn about coefficients of the first row of a stripe.
func (t *t1) setSig(x, y, i int, neg bool) {
	f := t.flags
	s := t.stride
	if neg {
		f[i] |= fSig | fNeg
		f[i-1] |= fE | fNegE
		f[i+1] |= fW | fNegW
		f[i+s] |= fN | fNegN
		if !t.causal || y&3 != 0 {
			f[i-s] |= fS | fNegS
		}
	} else {
		f[i] |= fSig
		f[i-1] |= fE
		f[i+1] |= fW
		f[i+s] |= fN
		if !t.causal || y&3 != 0 {
			f[i-s] |= fS
		}
	}
	f[i+s-1] |= fNE
	f[i+s+1] |= fNW
	if !t.causal || y&3 != 0 {
		f[i-s-1] |= fSE
		f[i-s+1] |= fSW
	}
}

func (t *t1) sign(f uint16, raw bool) bool {
	if raw {
		return t.raw.bit() != 0
	}
	sc := scTable[(f&0xF)|((f>>4)&0xF0)]
	return t.mq.decode(int(sc&0x7F))^int(sc>>7) != 0
}

func (t *t1) sigPass(q int, raw bool) {
	oph := int32(3) << q
	for y0 := 0; y0 < t.h; y0 += 4 {
		y1 := min(y0+4, t.h)
		for x := range t.w {
			for y := y0; y < y1; y++ {
				i := (y+1)*t.stride + x + 1
				f := t.flags[i]
				if f&fSig != 0 || f&0xFF == 0 {
					continue
				}
				var bit int
				if raw {
					bit = t.raw.bit()
				} else {
					bit = t.mq.decode(int(t.zc[f&0xFF]))
				}
				if bit != 0 {
					t.setSig(x, y, i, t.sign(f, raw))
					t.data[y*t.w+x] = oph
				}
				t.flags[i] |= fVisit
			}
		}
	}
}

func (t *t1) refPass(q int, raw bool) {
	half := int32(1) << q
	for y0 := 0; y0 < t.h; y0 += 4 {
		y1 := min(y0+4, t.h)
		for x := range t.w {
			if y1-y0 == 4 {
				i := (y0+1)*t.stride + x + 1
				s := t.stride
				if (t.flags[i]|t.flags[i+s]|t.flags[i+2*s]|t.flags[i+3*s])&fSig == 0 {
					continue
				}
			}
			for y := y0; y < y1; y++ {
				i := (y+1)*t.stride + x + 1
				f := t.flags[i]
				if f&(fSig|fVisit) != fSig {
					continue
				}
				var bit int
				switch {
				case raw:
					bit = t.raw.bit()
				case f&fRefined != 0:
					bit = t.mq.decode(16)
				case f&0xFF != 0:
					bit = t.mq.decode(15)
				default:
					bit = t.mq.decode(14)
				}
				if bit != 0 {
					t.data[y*t.w+x] += half
				} else {
					t.data[y*t.w+x] -= half
				}
				t.flags[i] |= fRefined
			}
		}
	}
}

func (t *t1) cleanPass(q int) {
	oph := int32(3) << q
	s := t.stride
	for y0 := 0; y0 < t.h; y0 += 4 {
		y1 := min(y0+4, t.h)
		for x := range t.w {
			y := y0
			if y1-y0 == 4 {
				i := (y0+1)*s + x + 1
				if (t.flags[i]|t.flags[i+s]|t.flags[i+2*s]|t.flags[i+3*s])&(0xFF|fSig|fVisit) == 0 {
					if t.mq.decode(ctxRL) == 0 {
						continue
					}
					r := t.mq.decode(ctxUniform) << 1
					r |= t.mq.decode(ctxUniform)
					y = y0 + r
					i = (y+1)*s + x + 1
					t.setSig(x, y, i, t.sign(t.flags[i], false))
					t.data[y*t.w+x] = oph
					y++
				}
			}
			// Coefficients above y in this column were not visited (the
			// run-length condition), so clearing visits as we go leaves
			// none set for the next bit-plane.
			for ; y < y1; y++ {
				i := (y+1)*s + x + 1
				f := t.flags[i]
				if f&(fSig|fVisit) != 0 {
					t.flags[i] = f &^ fVisit
					continue
				}
				if t.mq.decode(int(t.zc[f&0xFF])) != 0 {
					t.setSig(x, y, i, t.sign(f, false))
					t.data[y*t.w+x] = oph
				}
			}
		}
	}
}
