package jpeg2000

import (
	"cmp"
	"slices"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// Tier-2 decoding, ITU-T T.800 Annex B: packet headers and the order in
// which packets follow each other.

// stream is packet data being consumed.
type stream struct {
	data []byte
	pos  int
}

// bitReader reads packet header bits with the bit stuffing of B.10.1:
// after a 0xFF byte the next byte carries seven bits.
type bitReader struct {
	s   *stream
	buf byte
	ct  int
}

func (b *bitReader) bit() (int, error) {
	if b.ct == 0 {
		if b.s.pos >= len(b.s.data) {
			return 0, codec.Corruptf("packet header truncated")
		}
		prev := b.buf
		b.buf = b.s.data[b.s.pos]
		b.s.pos++
		b.ct = 8
		if prev == 0xFF {
			b.ct = 7
		}
	}
	b.ct--
	return int(b.buf>>uint(b.ct)) & 1, nil
}

func (b *bitReader) bits(n int) (int, error) {
	v := 0
	for range n {
		bit, err := b.bit()
		if err != nil {
			return 0, err
		}
		v = v<<1 | bit
	}
	return v, nil
}

// align skips to the end of the header, including the stuffed byte after
// a final 0xFF.
func (b *bitReader) align() error {
	if b.buf == 0xFF {
		if b.s.pos >= len(b.s.data) {
			return codec.Corruptf("packet header truncated")
		}
		b.s.pos++
	}
	b.ct, b.buf = 0, 0
	return nil
}

// numPasses reads the codeword of Table B.4.
func (b *bitReader) numPasses() (int, error) {
	steps := [...]struct{ bits, escape, base int }{{1, 1, 1}, {1, 1, 2}, {2, 3, 3}, {5, 31, 6}, {7, 1 << 30, 37}}
	for _, s := range steps {
		v, err := b.bits(s.bits)
		if err != nil {
			return 0, err
		}
		if s.bits == 1 {
			if v == 0 {
				return s.base, nil
			}
			continue
		}
		if v != s.escape {
			return s.base + v, nil
		}
	}
	return 0, codec.Corruptf("invalid number of coding passes")
}

// contribution is what one packet adds to one code-block segment.
type contribution struct {
	cb     *codeblock
	seg    int
	length int
}

// packetSpan locates one packet when headers are not packed: its header
// is data[start:hdrEnd] and its body data[hdrEnd:end] of the tile's data.
type packetSpan struct{ start, hdrEnd, end int }

// traceSpans, when set by a test, receives the packets of every tile.
var traceSpans func(tile int, spans []packetSpan)

// tileDecoder decodes the packets of one tile.
type tileDecoder struct {
	comps     []*tileComp
	sop, eph  bool
	hdr, body *stream
	contribs  []contribution
	spans     []packetSpan
}

func maxPassesOf(style int, segs []segment) int {
	switch {
	case style&styleTermAll != 0:
		return 1
	case style&styleBypass != 0:
		if len(segs) == 0 {
			return 10
		}
		if prev := segs[len(segs)-1].maxPasses; prev == 10 || prev == 1 {
			return 2
		}
		return 1
	}
	return 1 << 20
}

func floorLog2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// packet decodes the packet of layer l, resolution r, precinct p of
// component c.
func (d *tileDecoder) packet(c, r, p, l int) error {
	tc := d.comps[c]
	res := &tc.res[r]
	prec := &res.precincts[p]
	if d.sop {
		b := d.body
		if len(b.data)-b.pos >= 6 && b.data[b.pos] == 0xFF && b.data[b.pos+1] == 0x91 {
			b.pos += 6
		}
	}
	start := d.hdr.pos
	br := bitReader{s: d.hdr}
	d.contribs = d.contribs[:0]
	present, err := br.bit()
	if err != nil {
		return err
	}
	if present != 0 {
		for bi := range prec.bands {
			if err := d.bandHeader(&br, &prec.bands[bi], tc.st.cbStyle, l); err != nil {
				return err
			}
		}
	}
	if err := br.align(); err != nil {
		return err
	}
	if d.eph {
		h := d.hdr
		if len(h.data)-h.pos >= 2 && h.data[h.pos] == 0xFF && h.data[h.pos+1] == 0x92 {
			h.pos += 2
		}
	}
	hdrEnd := d.hdr.pos
	for _, ct := range d.contribs {
		b := d.body
		if ct.length > len(b.data)-b.pos {
			return codec.Corruptf("packet body truncated: code-block needs %d bytes, %d left", ct.length, len(b.data)-b.pos)
		}
		if ct.length > 0 {
			ct.cb.chunks = append(ct.cb.chunks, chunk{seg: int32(ct.seg), data: b.data[b.pos : b.pos+ct.length]})
		}
		b.pos += ct.length
	}
	if traceSpans != nil {
		d.spans = append(d.spans, packetSpan{start, hdrEnd, d.body.pos})
	}
	return nil
}

// bandHeader reads the packet header part of one sub-band of a precinct.
func (d *tileDecoder) bandHeader(br *bitReader, pb *precBand, style, l int) error {
	for i := range pb.blocks {
		cb := &pb.blocks[i]
		var in bool
		if !cb.included {
			ok, err := pb.incl.decode(br, i, int32(l+1))
			if err != nil {
				return err
			}
			in = ok
		} else {
			bit, err := br.bit()
			if err != nil {
				return err
			}
			in = bit != 0
		}
		if !in {
			continue
		}
		if !cb.included {
			z := int32(0)
			for {
				ok, err := pb.zbp.decode(br, i, z+1)
				if err != nil {
					return err
				}
				if ok {
					break
				}
				if z++; z > 74 {
					return codec.Corruptf("too many zero bit-planes")
				}
			}
			cb.zbp = int(pb.zbp.nodes[i].value)
			cb.included = true
		}
		n, err := br.numPasses()
		if err != nil {
			return err
		}
		for {
			bit, err := br.bit()
			if err != nil {
				return err
			}
			if bit == 0 {
				break
			}
			if cb.lblock++; cb.lblock > 32 {
				return codec.Corruptf("code-block length indicator too large")
			}
		}
		if style&styleHT != 0 {
			if err := d.htSegments(br, cb, style, n); err != nil {
				return err
			}
			continue
		}
		for n > 0 {
			if len(cb.segs) == 0 || cb.segs[len(cb.segs)-1].passes >= cb.segs[len(cb.segs)-1].maxPasses {
				if len(cb.segs) >= 256 {
					return codec.Corruptf("too many codeword segments")
				}
				cb.segs = append(cb.segs, segment{maxPasses: maxPassesOf(style, cb.segs)})
			}
			seg := &cb.segs[len(cb.segs)-1]
			k := min(n, seg.maxPasses-seg.passes)
			nbits := cb.lblock + floorLog2(k)
			if nbits > 31 {
				return codec.Corruptf("code-block length of %d bits", nbits)
			}
			length, err := br.bits(nbits)
			if err != nil {
				return err
			}
			seg.passes += k
			d.contribs = append(d.contribs, contribution{cb: cb, seg: len(cb.segs) - 1, length: length})
			n -= k
		}
	}
	return nil
}

// htSegments reads the lengths of the n coding passes an HT code-block
// gets from a packet (T.814 Annex B, as OpenJPEG reads them): the first
// segment holds the cleanup pass alone, the next the refinement passes.
func (d *tileDecoder) htSegments(br *bitReader, cb *codeblock, style, n int) error {
	if len(cb.segs) == 0 || cb.segs[len(cb.segs)-1].passes >= cb.segs[len(cb.segs)-1].maxPasses {
		cb.segs = append(cb.segs, segment{maxPasses: maxPassesOf(style, cb.segs)})
	}
	for {
		if len(cb.segs) > 256 {
			return codec.Corruptf("too many codeword segments")
		}
		si := len(cb.segs) - 1
		k := n
		if si == 0 {
			k = 1
		}
		nbits := cb.lblock + floorLog2(k)
		if nbits > 31 {
			return codec.Corruptf("code-block length of %d bits", nbits)
		}
		length, err := br.bits(nbits)
		if err != nil {
			return err
		}
		cb.segs[si].passes += k
		d.contribs = append(d.contribs, contribution{cb: cb, seg: si, length: length})
		if n -= k; n <= 0 {
			return nil
		}
		cb.segs = append(cb.segs, segment{maxPasses: maxPassesOf(style, cb.segs)})
	}
}

// position is where a precinct starts on the reference grid, which is
// what the position-driven progressions (RPCL, PCRL, CPRL) sort by.
type position struct {
	c, r, p int
	x, y    int
}

// run decodes the packets of one progression.
func (d *tileDecoder) run(pg progression, tx0, ty0 int, comps []component) error {
	c1 := min(pg.c1, len(d.comps))
	maxRes := 0
	for _, tc := range d.comps {
		maxRes = max(maxRes, len(tc.res))
	}
	r1 := min(pg.r1, maxRes)
	emit := func(c, r, p, l1 int) error {
		res := &d.comps[c].res[r]
		for res.nextLayer[p] < l1 {
			if err := d.packet(c, r, p, res.nextLayer[p]); err != nil {
				return err
			}
			res.nextLayer[p]++
		}
		return nil
	}
	layerRes := func(l, r int) error {
		for c := pg.c0; c < c1; c++ {
			tc := d.comps[c]
			if r >= len(tc.res) {
				continue
			}
			res := &tc.res[r]
			for p := range res.precincts {
				if res.nextLayer[p] == l {
					if err := emit(c, r, p, l+1); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	switch pg.order {
	case orderLRCP:
		for l := 0; l < pg.l1; l++ {
			for r := pg.r0; r < r1; r++ {
				if err := layerRes(l, r); err != nil {
					return err
				}
			}
		}
		return nil
	case orderRLCP:
		for r := pg.r0; r < r1; r++ {
			for l := 0; l < pg.l1; l++ {
				if err := layerRes(l, r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var list []position
	for c := pg.c0; c < c1; c++ {
		tc := d.comps[c]
		for r := pg.r0; r < min(r1, len(tc.res)); r++ {
			res := &tc.res[r]
			scale := 1 << (len(tc.res) - 1 - r)
			px0, py0 := floorDiv(res.x0, 1<<res.ppx), floorDiv(res.y0, 1<<res.ppy)
			for p := range res.precincts {
				i, j := p%res.npw, p/res.npw
				x := max((px0+i)<<res.ppx*scale*comps[c].dx, tx0)
				y := max((py0+j)<<res.ppy*scale*comps[c].dy, ty0)
				list = append(list, position{c: c, r: r, p: p, x: x, y: y})
			}
		}
	}
	slices.SortStableFunc(list, func(a, b position) int {
		switch pg.order {
		case orderRPCL:
			return cmp.Or(cmp.Compare(a.r, b.r), cmp.Compare(a.y, b.y), cmp.Compare(a.x, b.x), cmp.Compare(a.c, b.c))
		case orderPCRL:
			return cmp.Or(cmp.Compare(a.y, b.y), cmp.Compare(a.x, b.x), cmp.Compare(a.c, b.c), cmp.Compare(a.r, b.r))
		}
		return cmp.Or(cmp.Compare(a.c, b.c), cmp.Compare(a.y, b.y), cmp.Compare(a.x, b.x), cmp.Compare(a.r, b.r))
	})
	for _, e := range list {
		if err := emit(e.c, e.r, e.p, pg.l1); err != nil {
			return err
		}
	}
	return nil
}
