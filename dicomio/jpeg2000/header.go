package jpeg2000

import (
	"encoding/binary"
	"math"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// Marker codes of ITU-T T.800 Annex A.
const (
	mSOC = 0xFF4F
	mCAP = 0xFF50
	mSIZ = 0xFF51
	mCOD = 0xFF52
	mCOC = 0xFF53
	mTLM = 0xFF55
	mPLM = 0xFF57
	mPLT = 0xFF58
	mQCD = 0xFF5C
	mQCC = 0xFF5D
	mRGN = 0xFF5E
	mPOC = 0xFF5F
	mPPM = 0xFF60
	mPPT = 0xFF61
	mCRG = 0xFF63
	mCOM = 0xFF64
	mSOT = 0xFF90
	mSOP = 0xFF91
	mEPH = 0xFF92
	mSOD = 0xFF93
	mEOC = 0xFFD9
)

// Progression orders (Table A.16).
const (
	orderLRCP = iota
	orderRLCP
	orderRPCL
	orderPCRL
	orderCPRL
)

// maxCoord bounds every coordinate of the reference grid so that sums and
// products of two of them fit in an int on any platform Go supports.
const maxCoord = 1 << 30

type component struct {
	prec   int
	signed bool
	dx, dy int
}

// siz is the image and tile geometry of the SIZ marker segment.
type siz struct {
	x0, y0, x1, y1 int // image area on the reference grid
	tx0, ty0       int // tile grid origin
	tw, th         int // nominal tile size
	ntx, nty       int
	comps          []component
}

// style is the per-component part of COD/COC.
type style struct {
	levels     int
	cbw, cbh   int // code-block size exponents
	cbStyle    int
	reversible bool
	ppx, ppy   [33]uint8 // precinct size exponents per resolution level
}

// cod is a COD marker segment: the tile-wide fields and the default
// component style.
type cod struct {
	sop, eph bool
	order    int
	layers   int
	mct      bool
	style    style
}

// quant is a QCD/QCC marker segment.
type quant struct {
	kind  int // 0 none, 1 scalar derived, 2 scalar expounded
	guard int
	eps   []uint8
	mu    []uint16
}

// progression is one progression of a POC marker segment, or the single
// progression COD implies. Ends are exclusive.
type progression struct {
	order      int
	r0, c0, l1 int
	r1, c1     int
}

// markers collects the coding parameters of a main or tile-part header.
type markers struct {
	cod *cod
	coc []*style
	qcd *quant
	qcc []*quant
	roi []int // ROI shift per component, -1 if none
	poc []progression
}

func newMarkers(ncomp int) *markers {
	m := &markers{coc: make([]*style, ncomp), qcc: make([]*quant, ncomp), roi: make([]int, ncomp)}
	for i := range m.roi {
		m.roi[i] = -1
	}
	return m
}

// reader walks a byte slice, recording truncation instead of panicking.
type reader struct {
	b   []byte
	err error
}

func (r *reader) u8() int {
	if len(r.b) < 1 {
		r.short()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return int(v)
}

func (r *reader) u16() int {
	if len(r.b) < 2 {
		r.short()
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return int(v)
}

func (r *reader) u32() int {
	if len(r.b) < 4 {
		r.short()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	if v > maxCoord {
		if r.err == nil {
			r.err = codec.Unsupportedf("coordinate %d exceeds %d", v, maxCoord)
		}
		return 0
	}
	return int(v)
}

// u32raw reads a 32-bit length, which may exceed maxCoord.
func (r *reader) u32raw() int {
	if len(r.b) < 4 {
		r.short()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return int(int64(v) & math.MaxInt)
}

func (r *reader) short() {
	if r.err == nil {
		r.err = codec.Corruptf("marker segment too short")
	}
	r.b = nil
}

func ceilDiv(a, b int) int {
	return -floorDiv(-a, b)
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func parseSIZ(body []byte) (*siz, error) {
	r := &reader{b: body}
	// Rsiz, the profile and whether a CAP marker segment lists the parts
	// of ISO/IEC 15444 the codestream needs (parseCAP checks those).
	r.u16()
	s := &siz{}
	s.x1, s.y1, s.x0, s.y0 = r.u32(), r.u32(), r.u32(), r.u32()
	s.tw, s.th, s.tx0, s.ty0 = r.u32(), r.u32(), r.u32(), r.u32()
	n := r.u16()
	if r.err != nil {
		return nil, r.err
	}
	if s.x1 <= s.x0 || s.y1 <= s.y0 {
		return nil, codec.Corruptf("empty image area %d..%d x %d..%d", s.x0, s.x1, s.y0, s.y1)
	}
	if s.tw == 0 || s.th == 0 || s.tx0 > s.x0 || s.ty0 > s.y0 || s.tx0+s.tw <= s.x0 || s.ty0+s.th <= s.y0 {
		return nil, codec.Corruptf("invalid tile grid")
	}
	if n < 1 || n > 16384 {
		return nil, codec.Corruptf("SIZ has %d components", n)
	}
	if len(r.b) < 3*n {
		return nil, codec.Corruptf("SIZ too short for %d components", n)
	}
	s.comps = make([]component, n)
	for i := range s.comps {
		ssiz, dx, dy := r.u8(), r.u8(), r.u8()
		c := component{prec: ssiz&0x7F + 1, signed: ssiz&0x80 != 0, dx: dx, dy: dy}
		if c.prec > 38 || dx == 0 || dy == 0 {
			return nil, codec.Corruptf("component %d: precision %d, subsampling %dx%d", i, c.prec, dx, dy)
		}
		s.comps[i] = c
	}
	s.ntx = ceilDiv(s.x1-s.tx0, s.tw)
	s.nty = ceilDiv(s.y1-s.ty0, s.th)
	return s, nil
}

// parseStyle reads SPcod/SPcoc; precincts says whether precinct sizes follow.
func parseStyle(r *reader, precincts bool) (style, error) {
	var s style
	s.levels = r.u8()
	s.cbw = r.u8() + 2
	s.cbh = r.u8() + 2
	s.cbStyle = r.u8()
	transform := r.u8()
	if r.err != nil {
		return s, r.err
	}
	if s.levels > 32 {
		return s, codec.Corruptf("%d decomposition levels", s.levels)
	}
	if s.cbw > 10 || s.cbh > 10 || s.cbw+s.cbh > 12 {
		return s, codec.Corruptf("code-block size 2^%d x 2^%d", s.cbw, s.cbh)
	}
	if s.cbStyle&styleHTMixed != 0 {
		return s, codec.Unsupportedf("code-block style 0x%02x (HT mixed mode)", s.cbStyle)
	}
	if s.cbStyle&^(styleKnown|styleHT) != 0 {
		return s, codec.Unsupportedf("code-block style 0x%02x", s.cbStyle)
	}
	switch transform {
	case 0:
	case 1:
		s.reversible = true
	default:
		return s, codec.Unsupportedf("wavelet transform %d (Part 2 arbitrary kernels)", transform)
	}
	for i := 0; i <= s.levels; i++ {
		s.ppx[i], s.ppy[i] = 15, 15
		if precincts {
			v := r.u8()
			s.ppx[i], s.ppy[i] = uint8(v&0xF), uint8(v>>4)
			if i > 0 && (s.ppx[i] == 0 || s.ppy[i] == 0) {
				return s, codec.Corruptf("precinct size 2^0 at resolution %d", i)
			}
		}
	}
	return s, r.err
}

func parseCOD(body []byte) (*cod, error) {
	r := &reader{b: body}
	scod := r.u8()
	c := &cod{sop: scod&2 != 0, eph: scod&4 != 0}
	c.order = r.u8()
	c.layers = r.u16()
	mct := r.u8()
	if r.err != nil {
		return nil, r.err
	}
	if c.order > orderCPRL {
		return nil, codec.Corruptf("progression order %d", c.order)
	}
	if c.layers == 0 {
		return nil, codec.Corruptf("zero quality layers")
	}
	if mct > 1 {
		return nil, codec.Unsupportedf("multiple component transform %d (Part 2)", mct)
	}
	c.mct = mct == 1
	var err error
	c.style, err = parseStyle(r, scod&1 != 0)
	return c, err
}

// compIndex reads a component index of one or two bytes.
func compIndex(r *reader, ncomp int) (int, error) {
	var c int
	if ncomp < 257 {
		c = r.u8()
	} else {
		c = r.u16()
	}
	if r.err != nil {
		return 0, r.err
	}
	if c >= ncomp {
		return 0, codec.Corruptf("component index %d of %d", c, ncomp)
	}
	return c, nil
}

func parseCOC(m *markers, body []byte, ncomp int) error {
	r := &reader{b: body}
	c, err := compIndex(r, ncomp)
	if err != nil {
		return err
	}
	scoc := r.u8()
	s, err := parseStyle(r, scoc&1 != 0)
	if err != nil {
		return err
	}
	m.coc[c] = &s
	return nil
}

func parseQuant(r *reader) (*quant, error) {
	sq := r.u8()
	if r.err != nil {
		return nil, r.err
	}
	q := &quant{kind: sq & 0x1F, guard: sq >> 5}
	switch q.kind {
	case 0:
		for len(r.b) > 0 {
			q.eps = append(q.eps, uint8(r.u8()>>3))
			q.mu = append(q.mu, 0)
		}
	case 1, 2:
		for len(r.b) >= 2 {
			v := r.u16()
			q.eps = append(q.eps, uint8(v>>11))
			q.mu = append(q.mu, uint16(v&0x7FF))
		}
		if q.kind == 1 && len(q.eps) > 1 {
			q.eps, q.mu = q.eps[:1], q.mu[:1]
		}
	default:
		return nil, codec.Unsupportedf("quantization style %d", q.kind)
	}
	if len(q.eps) == 0 {
		return nil, codec.Corruptf("quantization without step sizes")
	}
	return q, nil
}

func parseQCC(m *markers, body []byte, ncomp int) error {
	r := &reader{b: body}
	c, err := compIndex(r, ncomp)
	if err != nil {
		return err
	}
	q, err := parseQuant(r)
	if err != nil {
		return err
	}
	m.qcc[c] = q
	return nil
}

func parseRGN(m *markers, body []byte, ncomp int) error {
	r := &reader{b: body}
	c, err := compIndex(r, ncomp)
	if err != nil {
		return err
	}
	srgn, shift := r.u8(), r.u8()
	if r.err != nil {
		return r.err
	}
	if srgn != 0 {
		return codec.Unsupportedf("ROI style %d", srgn)
	}
	m.roi[c] = shift
	return nil
}

func parsePOC(m *markers, body []byte, ncomp int) error {
	r := &reader{b: body}
	wide := ncomp >= 257
	for len(r.b) > 0 {
		var p progression
		p.r0 = r.u8()
		if wide {
			p.c0 = r.u16()
		} else {
			p.c0 = r.u8()
		}
		p.l1 = r.u16()
		p.r1 = r.u8()
		if wide {
			p.c1 = r.u16()
		} else {
			p.c1 = r.u8()
			if p.c1 == 0 {
				p.c1 = 256
			}
		}
		p.order = r.u8()
		if r.err != nil {
			return r.err
		}
		if p.order > orderCPRL {
			return codec.Corruptf("POC progression order %d", p.order)
		}
		m.poc = append(m.poc, p)
	}
	return nil
}

// capPart15 is the bit of Pcap for ISO/IEC 15444-15 (HTJ2K): bit i from
// the most significant, counting from 1, is Part i.
const capPart15 = 1 << (32 - 15)

// parseCAP checks the capabilities a codestream needs (Part 1 A.5.2 as
// amended by Part 15): HT block coding is decoded, any other part is not.
// The Ccap fields of Part 15 (HT sets, MAGB) only bound what an encoder
// used, so they are not needed to decode.
func parseCAP(body []byte) error {
	r := &reader{b: body}
	if len(r.b) < 4 {
		return codec.Corruptf("CAP marker of %d bytes", len(body))
	}
	pcap := uint32(r.u16())<<16 | uint32(r.u16())
	if pcap&^capPart15 != 0 {
		return codec.Unsupportedf("CAP capabilities 0x%08x (parts other than 15, HTJ2K)", pcap)
	}
	return nil
}

// parseSegment applies one marker segment of a main or tile-part header.
func parseSegment(m *markers, code int, body []byte, ncomp int) error {
	var err error
	switch code {
	case mCOD:
		m.cod, err = parseCOD(body)
	case mCOC:
		err = parseCOC(m, body, ncomp)
	case mQCD:
		m.qcd, err = parseQuant(&reader{b: body})
	case mQCC:
		err = parseQCC(m, body, ncomp)
	case mRGN:
		err = parseRGN(m, body, ncomp)
	case mPOC:
		err = parsePOC(m, body, ncomp)
	case mCAP:
		err = parseCAP(body)
	case mTLM, mPLM, mPLT, mCRG, mCOM:
		// Informational only: lengths are recomputed from packet headers.
	default:
		if code < 0xFF30 || code > 0xFF3F {
			if code>>8 != 0xFF {
				return codec.Corruptf("expected a marker, found 0x%04x", code)
			}
			// Unknown marker segments with a length are skipped (A.1.2).
		}
	}
	return err
}
