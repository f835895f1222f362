// Package jpeg2000 decodes JPEG 2000 Part 1 codestreams (ITU-T T.800 |
// ISO/IEC 15444-1), the payload of DICOM transfer syntaxes
// 1.2.840.10008.1.2.4.90 (lossless only) and 1.2.840.10008.1.2.4.91, and
// HTJ2K ones (Part 15).
//
// It owns one frame's codestream, raw or wrapped in a JP2 file, and turns
// it into stored sample values: tier-2 packet decoding for every
// progression order (with POC, SOP/EPH and PPM/PPT packed headers),
// tier-1 EBCOT decoding with every Part 1 code-block style, ROI max-shift,
// dequantisation, the inverse 5/3 and 9/7 wavelet transforms, the inverse
// RCT/ICT, DC level shift and clamping. It does not know about DICOM
// headers, fragments or photometric interpretations: dicomio does.
//
// When the codestream's signedness (SIZ Ssiz) differs from the DICOM
// Pixel Representation (codec.Params.Signed), the Pixel Representation
// decides what the bits mean (see reinterpret).
//
// Lossless output is exact; lossy (9/7) output uses OpenJPEG's float32
// operations and constants, so it is bit-identical to what GDCM and
// OpenJPEG return (see invK97).
//
// HTJ2K codestreams (ITU-T T.814 | ISO/IEC 15444-15, the payload of DICOM
// transfer syntaxes 1.2.840.10008.1.2.4.201 to .203) are decoded too: their
// HT code-blocks (FBCOT: cleanup, significance propagation and magnitude
// refinement passes, ht.go) on the same tier-2, dequantisation and wavelet
// code, with OpenJPEG's results bit for bit.
//
// Refused as unsupported: Part 2 extensions (capabilities in CAP other
// than Part 15, arbitrary wavelets or component transforms), HT mixed
// code-block mode and HT code-blocks with a region of interest (as in
// OpenJPEG), ROI styles other than max-shift, sub-sampled components
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
	f.Samples = p.SampleSlice(w * h * len(s.comps))
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
	if sd := signedness(s.comps); sd != mixedComps && sd != sign(p.Signed) {
		reinterpret(f.Samples, p.BitsStored, p.Signed)
	}
	return f, nil
}

// Signedness of a codestream's components.
const (
	unsignedComps = iota
	signedComps
	mixedComps
)

func sign(signed bool) int {
	if signed {
		return signedComps
	}
	return unsignedComps
}

// signedness says whether the components are all unsigned, all signed or
// mixed.
func signedness(comps []component) int {
	s := sign(comps[0].signed)
	for _, c := range comps[1:] {
		if sign(c.signed) != s {
			return mixedComps
		}
	}
	return s
}

// reinterpret gives samples decoded from a codestream whose signedness
// differs from the DICOM Pixel Representation the meaning Pixel
// Representation gives their bits, as for native pixel data: the low
// bitsStored bits of each sample, sign-extended when signed. PS3.5 8.2.4
// makes the Pixel Representation the authority; pydicom (with GDCM, or
// with Pillow and its J2K corrections) and OpenJPEG-based viewers read
// an unsigned codestream under Pixel Representation 1 so, and a signed
// codestream under Pixel Representation 0 reads as its two's complement
// bits, as GDCM returns it.
func reinterpret(samples []int32, bitsStored int, signed bool) {
	if bitsStored < 1 || bitsStored > 32 {
		return
	}
	shift := uint(32 - bitsStored)
	for i, v := range samples {
		u := uint32(v) << shift
		if signed {
			samples[i] = int32(u) >> shift
		} else {
			samples[i] = int32(u >> shift)
		}
	}
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
		if tc.st.reversible {
			tc.inverse53(runtime.GOMAXPROCS(0))
		} else {
			tc.inverse97(runtime.GOMAXPROCS(0))
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
		release(&intBuffers, tc.ibuf)
		release(&floatBuffers, tc.fbuf)
		tc.ibuf, tc.fbuf = nil, nil
	}
	return ct, nil
}

// intBuffers and floatBuffers keep coefficient buffers for the next
// tile-component: a frame's worth of coefficients allocated afresh for
// every decode costs the clearing, the page faults and the garbage
// collection of as many bytes as the image, a good part of the time of a
// fast (HT) decode.
var intBuffers, floatBuffers sync.Pool

// maxPooledCoefficients bounds the buffers kept, so that one huge image
// does not stay resident.
const maxPooledCoefficients = 16 << 20

// coefficients returns a zeroed buffer of n coefficients, reused when the
// pool has one large enough.
func coefficients[T int32 | float32](pool *sync.Pool, n int) []T {
	if p, ok := pool.Get().(*[]T); ok && cap(*p) >= n {
		b := (*p)[:n]
		clear(b)
		return b
	}
	return make([]T, n)
}

// release gives a buffer back to its pool.
func release[T int32 | float32](pool *sync.Pool, b []T) {
	if b != nil && cap(b) <= maxPooledCoefficients {
		pool.Put(&b)
	}
}

// decodeBlocks runs tier-1 on every code-block of the tile-component and
// dequantises the result into its coefficient buffer.
func (tc *tileComp) decodeBlocks(first *t1) error {
	stride := tc.x1 - tc.x0
	n := stride * (tc.y1 - tc.y0)
	if tc.st.reversible {
		tc.ibuf = coefficients[int32](&intBuffers, n)
	} else {
		tc.fbuf = coefficients[float32](&floatBuffers, n)
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
					if tc.st.cbStyle&styleHT != 0 {
						if tc.roi > 0 {
							return codec.Unsupportedf("region of interest with HT code-blocks")
						}
						if b.mb == 0 {
							continue // no bit-planes: all zero
						}
					}
					if numbps := b.mb - cb.zbp; numbps <= 0 {
						return codec.Corruptf("code-block with %d zero bit-planes in a sub-band of %d", cb.zbp, b.mb)
					}
					jobs = append(jobs, job{b, cb})
				}
			}
		}
	}
	run := func(t *t1, j job) error {
		w, h := j.cb.x1-j.cb.x0, j.cb.y1-j.cb.y0
		if tc.st.cbStyle&styleHT != 0 {
			if err := t.decodeHT(w, h, j.b.mb, tc.st.cbStyle, j.cb); err != nil {
				return err
			}
			tc.dequantiseHT(t.ht.data, j.b, j.cb, stride)
			return nil
		}
		t.decode(w, h, j.b.orient, tc.st.cbStyle, j.b.mb-j.cb.zbp, j.cb.segs, j.cb.chunks)
		tc.dequantise(t, j.b, j.cb, stride)
		return nil
	}
	// Code-blocks are independent and each writes its own part of the
	// coefficient buffer, so they are spread over the cores, which is where
	// nearly all the time of a JPEG 2000 decode goes. A panic in a worker
	// would escape the caller's recover, so each worker recovers its own.
	nw := min(runtime.GOMAXPROCS(0), len(jobs)/4, maxBlockWorkers)
	if nw <= 1 {
		for _, j := range jobs {
			if err := run(first, j); err != nil {
				return err
			}
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
				if err := run(t, jobs[i]); err != nil {
					errs[w] = err
					next.Store(int64(len(jobs))) // stop the others early
					return
				}
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

// decodeHT decodes an HT code-block into t.htOut.
func (t *t1) decodeHT(w, h, mb, style int, cb *codeblock) error {
	blk := htBlock{w: w, h: h, mb: mb, zbp: cb.zbp, causal: style&styleCausal != 0}
	for _, c := range cb.chunks {
		switch c.seg {
		case 0:
			blk.len1 += len(c.data)
		case 1:
			blk.len2 += len(c.data)
		}
	}
	data := t.buf[:0]
	if len(cb.chunks) == 1 {
		data = cb.chunks[0].data // the decoder only reads it
	} else {
		for _, c := range cb.chunks {
			data = append(data, c.data...)
		}
		t.buf = data
	}
	if len(cb.segs) > 0 {
		blk.passes1 = cb.segs[0].passes
	}
	if len(cb.segs) > 1 {
		blk.passes2 = cb.segs[1].passes
	}
	return t.ht.decodeHT(blk, data, nil)
}

// dequantiseHT is dequantise for the samples of an HT code-block (sign in
// bit 31, magnitude at twice scale), as OpenJPEG does it: halved towards
// zero when reversible, scaled by half the step size when not.
func (tc *tileComp) dequantiseHT(data []uint32, b *band, cb *codeblock, stride int) {
	w, h := cb.x1-cb.x0, cb.y1-cb.y0
	ox, oy := b.offx+cb.x0-b.x0, b.offy+cb.y0-b.y0
	half := b.step / 2
	for y := range h {
		row := (oy+y)*stride + ox
		src := data[y*w : (y+1)*w]
		if tc.st.reversible {
			dst := tc.ibuf[row : row+w]
			for x, v := range src {
				// Branchless: s is 0 or -1, and (m^s)-s is m or -m.
				m, s := int32(v&0x7FFFFFFF)>>1, int32(v)>>31
				dst[x] = m ^ s - s
			}
			continue
		}
		dst := tc.fbuf[row : row+w]
		for x, v := range src {
			m := float32(v&0x7FFFFFFF) * half
			if v>>31 != 0 {
				m = -m
			}
			dst[x] = m
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
	if tc.st.reversible {
		for y := tc.y0; y < tc.y1; y++ {
			src := tc.ibuf[(y-tc.y0)*stride : (y-tc.y0+1)*stride]
			dst := f.Samples[((y-y0)*f.Width+tc.x0-x0)*nc+c:]
			for x, v := range src {
				dst[x*nc] = int32(max(lo, min(hi, int64(v)+shift)))
			}
		}
		return
	}
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
