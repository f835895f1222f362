// Package jpeg2000 decodes JPEG 2000 Part 1 codestreams (ITU-T T.800 |
// ISO/IEC 15444-1), the payload of DICOM transfer syntaxes
// 1.2.840.10008.1.2.4.90 (lossless only) and 1.2.840.10008.1.2.4.91.
//
// It owns one frame's codestream, raw or wrapped in a JP2 file, and turns
// it into stored sample values: tier-2 packet decoding for every
// progression order (with POC, SOP/EPH and PPM/PPT packed headers),
// tier-1 EBCOT decoding with every Part 1 code-block style, ROI max-shift,
// dequantisation, the inverse 5/3 and 9/7 wavelet transforms, the inverse
// RCT/ICT, DC level shift and clamping. It does not know about DICOM
// headers, fragments or photometric interpretations: dicomio does.
//
// Lossless output is exact; lossy (9/7) output uses OpenJPEG's float32
// operations and constants, so it is bit-identical to what GDCM and
// OpenJPEG return (see invK97).
//
// Refused as unsupported: Part 2 and HTJ2K extensions (capabilities in
// SIZ, CAP, non-Part-1 code-block styles, arbitrary wavelets or component
// transforms), ROI styles other than max-shift, sub-sampled components
// (DICOM frames are not sub-sampled in JPEG 2000) and precisions over 31
// bits. Truncated codestreams are corrupt; a missing EOC after complete
// tile-parts is tolerated, as OpenJPEG does.
//
// Allocation is bounded by the frame size that codec.Params.Check accepts:
// the output, one coefficient buffer per tile-component, and code-block
// bookkeeping; tile and precinct counts are bounded by the codestream's
// length before anything is allocated for them.
package jpeg2000

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// recoverPanics turns an unexpected panic into ErrCorrupt, so a decoder bug
// cannot take the agent down; the fuzz test turns it off to find them.
var recoverPanics = true

// Decode decodes the JPEG 2000 codestream of one frame. The codestream's
// size and components must match p; its precision must not exceed
// p.BitsAllocated.
func Decode(data []byte, p codec.Params) (f codec.Frame, err error) {
	if recoverPanics {
		defer func() {
			if r := recover(); r != nil {
				f, err = codec.Frame{}, codec.Corruptf("jpeg2000: internal error decoding codestream: %v", r)
			}
		}()
	}
	f, err = decode(data, p)
	if err != nil {
		return codec.Frame{}, fmt.Errorf("jpeg2000: %w", err)
	}
	return f, nil
}

func decode(data []byte, p codec.Params) (codec.Frame, error) {
	data, err := unwrapJP2(data)
	if err != nil {
		return codec.Frame{}, err
	}
	cs, err := parseCodestream(data)
	if err != nil {
		return codec.Frame{}, err
	}
	s := cs.siz
	prec := s.comps[0].prec
	for i, c := range s.comps {
		if c.dx != 1 || c.dy != 1 {
			return codec.Frame{}, codec.Unsupportedf("component %d is sub-sampled %dx%d", i, c.dx, c.dy)
		}
		if c.prec > 31 {
			return codec.Frame{}, codec.Unsupportedf("component %d has %d-bit precision", i, c.prec)
		}
		if p.BitsAllocated > 0 && c.prec > p.BitsAllocated {
			return codec.Frame{}, codec.Corruptf("component %d has %d-bit precision, more than %d bits allocated", i, c.prec, p.BitsAllocated)
		}
		prec = max(prec, c.prec)
	}
	w, h := s.x1-s.x0, s.y1-s.y0
	if err := p.Check(w, h, len(s.comps)); err != nil {
		return codec.Frame{}, err
	}
	f := codec.Frame{Width: w, Height: h, Components: len(s.comps), Precision: prec}
	f.Samples = make([]int32, w*h*len(s.comps))
	var t1 t1
	for t, parts := range cs.tiles {
		if len(parts) == 0 {
			return codec.Frame{}, codec.Corruptf("tile %d has no tile-parts", t)
		}
		ct, err := decodeTile(cs, t, parts, &f, &t1)
		if err != nil {
			return codec.Frame{}, fmt.Errorf("tile %d: %w", t, err)
		}
		f.ColorTransformed = f.ColorTransformed || ct
	}
	return f, nil
}

// tileParams resolves the coding parameters of a tile from its tile-part
// headers and the main header (A.6: tile COC > tile COD > main COC > main
// COD, and likewise for quantisation).
func tileParams(cs *codestream, parts []*tilePart) (*cod, *markers) {
	ncomp := len(cs.siz.comps)
	tm := newMarkers(ncomp)
	for _, tp := range parts {
		h := tp.hdr
		if h.cod != nil {
			tm.cod = h.cod
		}
		if h.qcd != nil {
			tm.qcd = h.qcd
		}
		for c := range ncomp {
			if h.coc[c] != nil {
				tm.coc[c] = h.coc[c]
			}
			if h.qcc[c] != nil {
				tm.qcc[c] = h.qcc[c]
			}
			if h.roi[c] >= 0 {
				tm.roi[c] = h.roi[c]
			}
		}
		tm.poc = append(tm.poc, h.poc...)
	}
	g := cs.main.cod
	if tm.cod != nil {
		g = tm.cod
	}
	for c := range ncomp {
		switch {
		case tm.coc[c] != nil:
		case tm.cod != nil:
			tm.coc[c] = &tm.cod.style
		case cs.main.coc[c] != nil:
			tm.coc[c] = cs.main.coc[c]
		default:
			tm.coc[c] = &cs.main.cod.style
		}
		switch {
		case tm.qcc[c] != nil:
		case tm.qcd != nil:
			tm.qcc[c] = tm.qcd
		case cs.main.qcc[c] != nil:
			tm.qcc[c] = cs.main.qcc[c]
		default:
			tm.qcc[c] = cs.main.qcd
		}
		if tm.roi[c] < 0 {
			tm.roi[c] = cs.main.roi[c]
		}
	}
	if len(tm.poc) == 0 {
		tm.poc = cs.main.poc
	}
	if len(tm.poc) == 0 {
		tm.poc = []progression{{order: g.order, l1: g.layers, r1: 33, c1: ncomp}}
	}
	return g, tm
}

// decodeTile decodes tile t into f and reports whether it applied an
// inverse component transform.
func decodeTile(cs *codestream, t int, parts []*tilePart, f *codec.Frame, t1 *t1) (bool, error) {
	s := cs.siz
	slices.SortStableFunc(parts, func(a, b *tilePart) int { return a.index - b.index })
	g, tm := tileParams(cs, parts)
	px, py := t%s.ntx, t/s.ntx
	tx0, ty0 := max(s.tx0+px*s.tw, s.x0), max(s.ty0+py*s.th, s.y0)
	tx1, ty1 := min(s.tx0+(px+1)*s.tw, s.x1), min(s.ty0+(py+1)*s.th, s.y1)

	d := &tileDecoder{sop: g.sop, eph: g.eph}
	d.body = &stream{data: parts[0].data}
	if len(parts) > 1 {
		var all []byte
		for _, tp := range parts {
			all = append(all, tp.data...)
		}
		d.body.data = all
	}
	d.hdr = d.body
	if cs.ppm != nil {
		var hs []byte
		for _, tp := range parts {
			hs = append(hs, tp.ppm...)
		}
		d.hdr = &stream{data: hs}
	} else if slices.ContainsFunc(parts, func(tp *tilePart) bool { return tp.ppt != nil }) {
		var hs []byte
		for _, tp := range parts {
			hs = append(hs, slices.Concat(tp.ppt...)...)
		}
		d.hdr = &stream{data: hs}
	}
	// Every packet takes at least one byte of header, so a tile cannot
	// have more precincts than bytes: this bounds what a hostile header
	// can make us allocate.
	budget := len(d.body.data)
	if d.hdr != d.body {
		budget += len(d.hdr.data)
	}
	for c, cp := range s.comps {
		tc, err := newTileComp(cp, *tm.coc[c], tm.qcc[c], tm.roi[c], tx0, ty0, tx1, ty1, &budget)
		if err != nil {
			return false, err
		}
		d.comps = append(d.comps, tc)
	}
	for _, pg := range tm.poc {
		pg.l1 = min(pg.l1, g.layers)
		if err := d.run(pg, tx0, ty0, s.comps); err != nil {
			return false, err
		}
	}
	if traceSpans != nil {
		traceSpans(t, d.spans)
	}
	if n := len(d.body.data) - d.body.pos; n > 0 {
		return false, codec.Corruptf("%d bytes of tile data after the last packet", n)
	}
	for _, tc := range d.comps {
		if err := tc.decodeBlocks(t1); err != nil {
			return false, err
		}
		n := max(tc.x1-tc.x0, tc.y1-tc.y0) * 2
		if tc.st.reversible {
			tc.inverse53(make([]int32, n))
		} else {
			tc.inverse97(make([]float32, n))
		}
	}
	ct := false
	if g.mct {
		if len(d.comps) < 3 {
			return false, codec.Corruptf("component transform with %d components", len(d.comps))
		}
		a, b, c := d.comps[0], d.comps[1], d.comps[2]
		switch {
		case a.st.reversible && b.st.reversible && c.st.reversible:
			inverseRCT(a.ibuf, b.ibuf, c.ibuf)
		case !a.st.reversible && !b.st.reversible && !c.st.reversible:
			inverseICT(a.fbuf, b.fbuf, c.fbuf)
		default:
			return false, codec.Unsupportedf("component transform over mixed wavelet filters")
		}
		ct = true
	}
	for c, tc := range d.comps {
		tc.store(f, c, s.comps[c], s.x0, s.y0)
	}
	return ct, nil
}

// decodeBlocks runs tier-1 on every code-block of the tile-component and
// dequantises the result into its coefficient buffer.
func (tc *tileComp) decodeBlocks(first *t1) error {
	stride := tc.x1 - tc.x0
	n := stride * (tc.y1 - tc.y0)
	if tc.st.reversible {
		tc.ibuf = make([]int32, n)
	} else {
		tc.fbuf = make([]float32, n)
	}
	type job struct {
		b  *band
		cb *codeblock
	}
	var jobs []job
	for r := range tc.res {
		res := &tc.res[r]
		for p := range res.precincts {
			for bi := range res.precincts[p].bands {
				b := &res.bands[bi]
				pb := &res.precincts[p].bands[bi]
				for k := range pb.blocks {
					cb := &pb.blocks[k]
					if len(cb.segs) == 0 {
						continue
					}
					if numbps := b.mb - cb.zbp; numbps <= 0 {
						return codec.Corruptf("code-block with %d zero bit-planes in a sub-band of %d", cb.zbp, b.mb)
					}
					jobs = append(jobs, job{b, cb})
				}
			}
		}
	}
	run := func(t *t1, j job) {
		w, h := j.cb.x1-j.cb.x0, j.cb.y1-j.cb.y0
		t.decode(w, h, j.b.orient, tc.st.cbStyle, j.b.mb-j.cb.zbp, j.cb.segs, j.cb.chunks)
		tc.dequantise(t, j.b, j.cb, stride)
	}
	// Code-blocks are independent and each writes its own part of the
	// coefficient buffer, so they are spread over the cores, which is where
	// nearly all the time of a JPEG 2000 decode goes. A panic in a worker
	// would escape the caller's recover, so each worker recovers its own.
	nw := min(runtime.GOMAXPROCS(0), len(jobs)/4, maxBlockWorkers)
	if nw <= 1 {
		for _, j := range jobs {
			run(first, j)
		}
		return nil
	}
	var next atomic.Int64
	errs := make([]error, nw)
	var wg sync.WaitGroup
	for w := range nw {
		t := first
		if w > 0 {
			t = new(t1)
		}
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					errs[w] = codec.Corruptf("code-block decoder failed: %v", r)
				}
			}()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				run(t, jobs[i])
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// maxBlockWorkers bounds the goroutines one tile-component's code-blocks
// are decoded on.
const maxBlockWorkers = 8

func (tc *tileComp) dequantise(t1 *t1, b *band, cb *codeblock, stride int) {
	w, h := cb.x1-cb.x0, cb.y1-cb.y0
	ox, oy := b.offx+cb.x0-b.x0, b.offy+cb.y0-b.y0
	roi := tc.roi
	thresh := int32(1) << (roi + 1)
	half := b.step / 2
	for y := range h {
		row := (oy+y)*stride + ox
		for x := range w {
			v := t1.data[y*w+x]
			if v == 0 {
				continue
			}
			if roi > 0 && v >= thresh {
				v >>= roi
			}
			neg := t1.flags[(y+1)*t1.stride+x+1]&fNeg != 0
			if tc.st.reversible {
				v >>= 1
				if neg {
					v = -v
				}
				tc.ibuf[row+x] = v
			} else {
				fv := float32(v) * half
				if neg {
					fv = -fv
				}
				tc.fbuf[row+x] = fv
			}
		}
	}
}

func inverseRCT(y0, y1, y2 []int32) {
	for i := range y0 {
		g := y0[i] - (y1[i]+y2[i])>>2
		y0[i], y1[i], y2[i] = y2[i]+g, g, y1[i]+g
	}
}

func inverseICT(y0, y1, y2 []float32) {
	for i := range y0 {
		y, cb, cr := y0[i], y1[i], y2[i]
		// Conversions keep each product rounded (no FMA), as in C.
		y0[i] = y + float32(1.402*cr)
		y1[i] = y - float32(0.34413*cb) - float32(0.71414*cr)
		y2[i] = y + float32(1.772*cb)
	}
}

// store level-shifts, rounds and clamps component c of the tile into f.
func (tc *tileComp) store(f *codec.Frame, c int, cp component, x0, y0 int) {
	lo, hi := int64(0), int64(1)<<cp.prec-1
	shift := int64(1) << (cp.prec - 1)
	if cp.signed {
		lo, hi, shift = -shift, shift-1, 0
	}
	stride := tc.x1 - tc.x0
	nc := f.Components
	for y := tc.y0; y < tc.y1; y++ {
		src := (y - tc.y0) * stride
		dst := ((y-y0)*f.Width+tc.x0-x0)*nc + c
		for x := range stride {
			var v int64
			if tc.st.reversible {
				v = int64(tc.ibuf[src+x])
			} else {
				fv := float64(tc.fbuf[src+x])
				if math.IsNaN(fv) {
					fv = 0
				}
				fv = max(min(fv, 1<<40), -(1 << 40))
				v = int64(math.RoundToEven(fv))
			}
			f.Samples[dst+x*nc] = int32(max(lo, min(hi, v+shift)))
		}
	}
}
