package detector

import (
	"math"
	"unsafe"
)

// This file computes a layer and its gradients without unfolding the
// input. The input is copied once into zero-padded source planes, laid out
// so that every filter tap reads them as one shifted view with a fixed row
// stride: the product for a tap is then an ordinary matrix product whose
// second operand is the source itself, and the input gradient is a product
// accumulated straight into the padded planes. No im2col buffer is
// written or read back, and no col2im pass scatters one back.
//
//   - Stride 1: one plane per channel, the input with a border of one
//     zero. Output pixel (y, x) under tap (ky, kx) reads plane position
//     (y+ky, x+kx), so over the output grid, taken with the plane's width
//     (the two extra columns of each row are computed and discarded), a
//     tap is the plane shifted by ky·pw+kx.
//   - Stride 2: four planes per channel, the polyphase split of the padded
//     input (rows and columns of each parity). Tap (ky, kx) reads plane
//     (ky mod 2, kx mod 2) shifted by (ky/2, kx/2).
//   - Nearest 2× upsample, then stride 1: the low-resolution input padded
//     by one, and four output parities, each a 2×2 convolution with the
//     3×3 taps that read the same input pixel summed (see tapGroups):
//     9/4 fewer products, and a quarter of the source.
//   - Upsample, then stride 2: the polyphase planes of the upsampled input.

// tapGroups[a][d] lists the filter rows (or columns) that land on low-
// resolution offset d of the 2×2 window for output parity a, when a 3×3
// convolution with padding 1 runs over a nearest 2× upsample: output row
// 2i reads upsampled rows 2i−1, 2i, 2i+1, which are input rows i−1, i, i;
// output row 2i+1 reads input rows i, i, i+1.
var tapGroups = [2][2][]int{{{0}, {1, 2}}, {{0, 1}, {2}}}

// padTap is one shifted view: the offset of its first value from the
// start of channel 0's planes, and the 3×3 filter taps (ky·3+kx) whose
// weights it multiplies, summed.
type padTap struct {
	off  int
	from []int
}

// padPart is one grid of output pixels, all read through the same taps:
// grid point (i, j) is output pixel (oy+step·i, ox+step·j), and it sits at
// position i·pw+j of the product.
type padPart struct {
	oy, ox, step int
	gh, gw       int
	taps         []padTap
}

// padPlan is the layout of one layer's source planes and output parts.
type padPlan struct {
	g      convGeom
	phases int     // source planes per channel: 1, or 4 for stride 2
	ph, pw int     // rows and columns of one source plane
	src    []int32 // stride 2: for each position of one channel's planes, the input pixel it holds (index in the channel's h×w plane), or −1 for padding
	parts  []padPart
	maxNp  int // the longest part's product width
}

func (p *padPlan) plane() int { return p.ph * p.pw }

// srcSize is the number of values in one image's source planes.
func (p *padPlan) srcSize() int { return p.phases * p.g.in * p.plane() }

// np is the width of part t's product: its grid rows at the plane's width,
// the last row cut after the grid's own columns.
func (p *padPlan) np(t padPart) int { return (t.gh-1)*p.pw + t.gw }

func newPadPlan(g convGeom) *padPlan {
	p := &padPlan{g: g}
	switch {
	case g.stride == 1:
		// The plane is the padded input: at low resolution when upsampling.
		p.phases, p.ph, p.pw = 1, g.h+2, g.w+2
		if !g.up {
			part := padPart{step: 1, gh: g.oh, gw: g.ow}
			for ky := range 3 {
				for kx := range 3 {
					part.taps = append(part.taps, padTap{off: ky*p.pw + kx, from: []int{ky*3 + kx}})
				}
			}
			p.parts = []padPart{part}
			break
		}
		for a := range 2 {
			for b := range 2 {
				part := padPart{oy: a, ox: b, step: 2, gh: g.h, gw: g.w}
				for dy := range 2 {
					for dx := range 2 {
						var from []int
						for _, ky := range tapGroups[a][dy] {
							for _, kx := range tapGroups[b][dx] {
								from = append(from, ky*3+kx)
							}
						}
						part.taps = append(part.taps, padTap{off: (a+dy)*p.pw + b + dx, from: from})
					}
				}
				p.parts = append(p.parts, part)
			}
		}
	default:
		// Polyphase planes of the padded slid-over input (the upsampled
		// one when upsampling): plane (ry, rx) position (i, j) holds
		// slid-over pixel (2i+ry−1, 2j+rx−1).
		p.phases, p.ph, p.pw = 4, (g.ih+3)/2, (g.iw+3)/2
		pl := p.plane()
		p.src = make([]int32, 4*pl)
		for ry := range 2 {
			for rx := range 2 {
				for i := range p.ph {
					for j := range p.pw {
						y, x := 2*i+ry-1, 2*j+rx-1
						idx := int32(-1)
						if y >= 0 && y < g.ih && x >= 0 && x < g.iw {
							if g.up {
								y, x = y>>1, x>>1
							}
							idx = int32(y*g.w + x)
						}
						p.src[(ry*2+rx)*pl+i*p.pw+j] = idx
					}
				}
			}
		}
		part := padPart{step: 1, gh: g.oh, gw: g.ow}
		for ky := range 3 {
			for kx := range 3 {
				phase := (ky&1)*2 + kx&1
				part.taps = append(part.taps, padTap{off: phase*g.in*pl + (ky>>1)*p.pw + kx>>1, from: []int{ky*3 + kx}})
			}
		}
		p.parts = []padPart{part}
	}
	for _, t := range p.parts {
		p.maxNp = max(p.maxNp, p.np(t))
	}
	return p
}

// gather fills s, one image's source planes, from x, the image's input.
func (p *padPlan) gather(x, s []float32) {
	g := p.g
	pl, hw := p.plane(), g.h*g.w
	if p.phases == 1 {
		// The padded input: a border of zeros around each row.
		for c := range g.in {
			dst := s[c*pl : (c+1)*pl]
			clear(dst[:p.pw])
			for i := range g.h {
				row := dst[(i+1)*p.pw : (i+2)*p.pw]
				row[0] = 0
				copy(row[1:1+g.w], x[c*hw+i*g.w:c*hw+(i+1)*g.w])
				row[p.pw-1] = 0
			}
			clear(dst[(g.h+1)*p.pw:])
		}
		return
	}
	if !g.up {
		p.gatherPhases(x, s)
		return
	}
	for ph := range p.phases {
		idx := p.src[ph*pl : (ph+1)*pl]
		for c := range g.in {
			xc := x[c*hw : (c+1)*hw]
			dst := s[(ph*g.in+c)*pl : (ph*g.in+c+1)*pl]
			for q, i := range idx {
				if i >= 0 {
					dst[q] = xc[i]
				} else {
					dst[q] = 0
				}
			}
		}
	}
}

// gatherPhases is gather for a stride-2 layer without upsample, row by
// row rather than through p.src: plane (ry, rx) row i holds input row
// 2i+ry−1 at columns 2j+rx−1, so an input row's even columns go to row i
// of plane (ry, 1) from position 0, and its odd ones to plane (ry, 0)
// from position 1, both in one split of the row; the rest is the zero
// padding.
func (p *padPlan) gatherPhases(x, s []float32) {
	g := p.g
	pl, hw := p.plane(), g.h*g.w
	half := g.w / 2 // column pairs of an input row
	for c := range g.in {
		xc := x[c*hw : (c+1)*hw]
		for ry := range 2 {
			p0 := s[((2*ry)*g.in+c)*pl:][:pl]   // plane (ry, 0)
			p1 := s[((2*ry+1)*g.in+c)*pl:][:pl] // plane (ry, 1)
			for i := range p.ph {
				r0, r1 := p0[i*p.pw:][:p.pw], p1[i*p.pw:][:p.pw]
				y := 2*i + ry - 1
				if y < 0 || y >= g.h {
					clear(r0)
					clear(r1)
					continue
				}
				row := xc[y*g.w:][:g.w]
				splitPositive(float32Bits(r1[:half]), float32Bits(r0[1:1+half]), float32Bits(row[:2*half]), nil)
				r0[0] = 0
				clear(r0[1+half:])
				n1 := half
				if g.w%2 == 1 {
					r1[half] = row[g.w-1]
					n1++
				}
				clear(r1[n1:])
			}
		}
	}
}

// scatter adds ds, a gradient over one image's source planes, into dx,
// the gradient of the image's input: the transpose of gather.
func (p *padPlan) scatter(ds, dx []float32) {
	g := p.g
	pl, hw := p.plane(), g.h*g.w
	if p.phases == 1 {
		for c := range g.in {
			for i := range g.h {
				src := ds[c*pl+(i+1)*p.pw+1:][:g.w]
				dst := dx[c*hw+i*g.w:][:g.w]
				for j, v := range src {
					dst[j] += v
				}
			}
		}
		return
	}
	if !g.up {
		p.scatterPhases(ds, dx)
		return
	}
	for ph := range p.phases {
		idx := p.src[ph*pl : (ph+1)*pl]
		for c := range g.in {
			dxc := dx[c*hw : (c+1)*hw]
			src := ds[(ph*g.in+c)*pl : (ph*g.in+c+1)*pl]
			for q, i := range idx {
				if i >= 0 {
					dxc[i] += src[q]
				}
			}
		}
	}
}

// scatterPhases is scatter for a stride-2 layer without upsample, row by
// row as gatherPhases gathers: input row 2i+ry−1 takes its even columns
// from row i of plane (ry, 1) and its odd ones from plane (ry, 0), from
// position 1.
func (p *padPlan) scatterPhases(ds, dx []float32) {
	g := p.g
	pl, hw := p.plane(), g.h*g.w
	half := g.w / 2
	for c := range g.in {
		dxc := dx[c*hw : (c+1)*hw]
		for y := range g.h {
			ry, i := (y+1)&1, (y+1)>>1
			r0 := ds[((2*ry)*g.in+c)*pl+i*p.pw:][:p.pw]
			r1 := ds[((2*ry+1)*g.in+c)*pl+i*p.pw:][:p.pw]
			row := dxc[y*g.w:][:g.w]
			odd := r0[1 : 1+half]
			for j, v := range r1[:half] {
				row[2*j] += v
				row[2*j+1] += odd[j]
			}
			if g.w%2 == 1 {
				row[g.w-1] += r1[half]
			}
		}
	}
}

// panels rounds a product's width up to whole panels of the kernels when
// they do not handle a partial one themselves (which costs a copy of the
// panel's operand on every product): the extra columns are computed from
// whatever follows and thrown away.
func panels(n int) int { return panelsOf(sgemmBest, n) }

// panelsOf is panels for the kernels of impl.
func panelsOf(impl *sgemmImpl, n int) int {
	if impl.partial {
		return n
	}
	return (n + impl.nr - 1) / impl.nr * impl.nr
}

// panels is panels for a product over this plan's source planes, whose
// row stride is one plane: a plane smaller than the rounded width (the
// deepest layers of a small input) keeps the width as it is, and the
// kernels' driver computes the partial panel.
func (p *padPlan) panels(n int) int {
	if r := panels(n); r <= p.plane() {
		return r
	}
	return n
}

// slack is how many values past one image's source planes the products
// may read or add zeros into: a product's width rounded up to panels
// reaches less than a panel past the part's last grid point.
func (p *padPlan) slack() int { return sgemmBest.nr }

// tapFilters returns, for each part and tap in order, the out×in filter
// of the view (the weights of its 3×3 taps summed), or with transpose its
// in×out transpose.
func (p *padPlan) tapFilters(w []float32, transpose bool) [][]float32 {
	in, out := p.g.in, p.g.out
	var fs [][]float32
	for _, part := range p.parts {
		for _, tap := range part.taps {
			f := make([]float32, out*in)
			for o := range out {
				for c := range in {
					var s float32
					for _, t := range tap.from {
						s += w[(o*in+c)*9+t]
					}
					if transpose {
						f[c*out+o] = s
					} else {
						f[o*in+c] = s
					}
				}
			}
			fs = append(fs, f)
		}
	}
	return fs
}

// padBand is the number of output positions, about, that one task of a
// layer computes when a batch has fewer images than there are workers:
// the grid rows of a part are split into bands this wide.
const padBand = 256

// forwardFilters computes act(conv(x, w) + b) into y for the whole batch,
// given the views' filters of w (tapFilters), which inference computes
// once per model. scratch, if given, holds
// buffers kept between calls (see padScratch). With parallelRun the
// images, or when there are fewer images than workers their parts and
// bands of rows, are spread over every core; without it everything runs
// on the calling goroutine.
func (p *padPlan) forwardFilters(x []float32, fs [][]float32, bias, y []float32, relu bool, scratch *padScratch, parallelRun bool) {
	g := p.g
	nw := 1
	if parallelRun {
		nw = workers()
	}
	if scratch == nil {
		scratch = &padScratch{}
	}
	scratch.fit(p, nw, g.batch)
	if nw <= g.batch {
		// One image per task: its source planes stay in cache from the
		// gather through every product.
		task := func(wk, img int) {
			s := scratch.srcs[wk]
			p.gather(x[img*g.inSize():(img+1)*g.inSize()], s)
			f := 0
			for _, part := range p.parts {
				p.forwardRows(s, fs[f:], bias, y[img*g.outSize():(img+1)*g.outSize()], relu, part, 0, part.gh, scratch.prods[wk])
				f += len(part.taps)
			}
		}
		if nw == 1 {
			for img := range g.batch {
				task(0, img)
			}
		} else {
			parallel(g.batch, task)
		}
		return
	}
	// Fewer images than workers: every image's source planes first, then
	// each part of each image in bands of rows.
	parallel(g.batch, func(_, img int) {
		p.gather(x[img*g.inSize():(img+1)*g.inSize()], scratch.srcs[img])
	})
	type band struct{ img, part, f, i0, i1 int }
	var bands []band
	for img := range g.batch {
		f := 0
		for t, part := range p.parts {
			rows := max(1, min(part.gh, padBand/p.pw))
			for i0 := 0; i0 < part.gh; i0 += rows {
				bands = append(bands, band{img, t, f, i0, min(i0+rows, part.gh)})
			}
			f += len(part.taps)
		}
	}
	parallel(len(bands), func(wk, t int) {
		b := bands[t]
		p.forwardRows(scratch.srcs[b.img], fs[b.f:], bias, y[b.img*g.outSize():(b.img+1)*g.outSize()], relu, p.parts[b.part], b.i0, b.i1, scratch.prods[wk])
	})
}

// padScratch holds the buffers of forward passes: source planes and
// products, one of each per worker (or per image, for the sources, when
// the images are fewer than the workers).
type padScratch struct {
	srcs, prods [][]float32
}

// fit makes sure s has buffers for plan p run by nw workers on batch
// images.
func (s *padScratch) fit(p *padPlan, nw, batch int) {
	nsrc := nw
	if nw > batch {
		nsrc = batch
	}
	srcLen, prodLen := p.srcSize()+p.slack(), p.g.out*panels(p.maxNp)
	for len(s.srcs) < nsrc {
		s.srcs = append(s.srcs, nil)
	}
	for len(s.prods) < nw {
		s.prods = append(s.prods, nil)
	}
	for i := range s.srcs {
		if len(s.srcs[i]) < srcLen {
			s.srcs[i] = make([]float32, srcLen)
		}
	}
	for i := range s.prods {
		if len(s.prods[i]) < prodLen {
			s.prods[i] = make([]float32, prodLen)
		}
	}
}

// forwardRows computes grid rows [i0, i1) of part t of one image from its
// source planes s, with the part's view filters first in fs, and writes
// them with the bias and activation into the image's output y. prod is
// scratch of at least out·panels(np) values.
func (p *padPlan) forwardRows(s []float32, fs [][]float32, bias, y []float32, relu bool, t padPart, i0, i1 int, prod []float32) {
	g := p.g
	np := p.panels((i1-i0-1)*p.pw + t.gw)
	for j, tap := range t.taps {
		sgemmNN(g.out, np, g.in, fs[j], g.in, s[tap.off+i0*p.pw:], p.plane(), float32(min(j, 1)), prod, np)
	}
	for o := range g.out {
		bo := bias[o]
		plane := y[o*g.n() : (o+1)*g.n()]
		for i := i0; i < i1; i++ {
			src := prod[o*np+(i-i0)*p.pw:][:t.gw]
			row := plane[(t.oy+t.step*i)*g.ow+t.ox:]
			if t.step == 1 {
				biasRelu(row[:len(src)], src, bo, relu)
				continue
			}
			for j, v := range src {
				v += bo
				if relu {
					v = max(v, 0)
				}
				row[2*j] = v
			}
		}
	}
}

// backScratch keeps a backward pass's buffers, per worker, between calls
// for one layer: kept, they hold what the last call left, which the
// passes rely on only where every call writes the same values (the zeros
// around the grid points of the gradient's copy, which gridGradients
// never writes).
type backScratch struct {
	bufs [3][][]float32
}

// fit returns buffers i of nw workers, n values each: new ones are zero.
func (k *backScratch) fit(i, nw, n int) [][]float32 {
	b := k.bufs[i]
	if len(b) < nw {
		b = append(b, make([][]float32, nw-len(b))...)
	}
	for w := range b[:nw] {
		if len(b[w]) != n {
			b[w] = make([]float32, n)
		}
	}
	k.bufs[i] = b
	return b[:nw]
}

// gridGradients copies one image's output gradient gm, masked where the
// output y is not positive if y is given, into dst laid out as the parts'
// products: grid point (i, j) of part t, channel o, goes to
// dst[t·per + o·so + (i·pw+j)·sq]. Only grid points are written, so the
// columns of a product that are not outputs keep the zeros dst was made
// with. The output is read once, row by row: an upsampling layer's row
// is split between its two column parities as it is read.
func (p *padPlan) gridGradients(gm, y, dst []float32, per, so, sq int) {
	g := p.g
	n := g.n()
	// The mask works on the values' bits: read as integers, the
	// gradient and the output never pass through a float register.
	gb, yb, db := float32Bits(gm), float32Bits(y), float32Bits(dst)
	if so == 1 && sq >= g.out && g.out >= 16 {
		p.gridGradientsT(gb, yb, db, per, sq)
		return
	}
	for o := range g.out {
		for oy := range g.oh {
			src := gb[o*n+oy*g.ow:][:g.ow]
			var ys []uint32
			if y != nil {
				ys = yb[o*n+oy*g.ow:][:g.ow]
			}
			if len(p.parts) == 1 {
				d := db[o*so+oy*p.pw*sq:]
				if sq == 1 {
					if y == nil {
						copy(d[:len(src)], src)
					} else {
						maskPositive(d[:len(src)], src, ys)
					}
					continue
				}
				if y == nil {
					for j, v := range src {
						d[j*sq] = v
					}
				} else {
					for j, v := range src {
						d[j*sq] = v & reluKeep(ys[j])
					}
				}
				continue
			}
			// Parts 2a and 2a+1 hold the even and odd columns of the
			// output rows of parity a.
			a, i := oy&1, oy>>1
			d0 := db[2*a*per+o*so+i*p.pw*sq:]
			d1 := db[(2*a+1)*per+o*so+i*p.pw*sq:]
			if sq == 1 {
				splitPositive(d0[:g.w], d1[:g.w], src, ys)
				continue
			}
			if y == nil {
				for j := range g.w {
					d0[j*sq] = src[2*j]
					d1[j*sq] = src[2*j+1]
				}
			} else {
				for j := range g.w {
					d0[j*sq] = src[2*j] & reluKeep(ys[2*j])
					d1[j*sq] = src[2*j+1] & reluKeep(ys[2*j+1])
				}
			}
		}
	}
}

// gridGradientsT is gridGradients for a dst whose channels are adjacent
// (so 1, as the filter gradient's transposed layout has them): it visits
// the grid points in order and writes each one's channels together,
// reading the output's channel planes side by side, rather than writing
// a value per cache line of dst, plane after plane. The bits are
// gridGradients'; only the order of the writes differs. It pays from 16
// channels (a training layer's filter gradient about 10 – 15 % faster);
// with fewer, the loop over a grid point's channels is too short, and at
// 8 channels the plane-by-plane order was about a third faster.
func (p *padPlan) gridGradientsT(gb, yb, db []uint32, per, sq int) {
	g := p.g
	n := g.n()
	xs := g.ow
	if len(p.parts) != 1 {
		xs = 2 * g.w
	}
	for oy := range g.oh {
		a, i := oy&1, oy>>1
		for x := range xs {
			var d []uint32
			if len(p.parts) == 1 {
				d = db[(oy*p.pw+x)*sq:][:g.out]
			} else {
				// Parts 2a and 2a+1 hold the even and odd columns of
				// the output rows of parity a.
				t := 2*a + (x & 1)
				d = db[t*per+(i*p.pw+(x>>1))*sq:][:g.out]
			}
			col := gb[oy*g.ow+x:]
			if yb == nil {
				for o := range d {
					d[o] = col[o*n]
				}
				continue
			}
			ycol := yb[oy*g.ow+x:]
			for o := range d {
				d[o] = col[o*n] & reluKeep(ycol[o*n])
			}
		}
	}
}

// float32Bits returns s's values as their bits, sharing s's memory, or
// nil for a nil s.
func float32Bits(s []float32) []uint32 {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&s[0])), len(s))
}

// backwardInput computes the input gradient dx from the output gradient
// gm (masked by y's sign when y is given): for each view, its filter's
// transpose times the view's part of gm, added into the padded planes at
// the view's offset, which are then folded back onto the input. keep
// holds its buffers between calls.
func (p *padPlan) backwardInput(w, y, gm, dx []float32, keep *backScratch) {
	g := p.g
	fs := p.tapFilters(w, true)
	nw := min(workers(), g.batch)
	width := panels(p.maxNp)
	per := g.out * width
	dss, gps := keep.fit(0, nw, p.srcSize()+p.slack()), keep.fit(1, nw, len(p.parts)*per)
	parallel(g.batch, func(wk, img int) {
		ds, gp := dss[wk], gps[wk]
		clear(ds)
		p.gridGradients(gm[img*g.outSize():(img+1)*g.outSize()], imageOf(y, img, g.outSize()), gp, per, width, 1)
		f := 0
		for t, part := range p.parts {
			np := p.panels(p.np(part))
			for _, tap := range part.taps {
				sgemmNN(g.in, np, g.out, fs[f], g.out, gp[t*per:], width, 1, ds[tap.off:], p.plane())
				f++
			}
		}
		d := dx[img*g.inSize() : (img+1)*g.inSize()]
		clear(d)
		p.scatter(ds, d)
	})
}

// backwardWeight computes the filter gradient dw from the input x and the
// output gradient gm (masked by y's sign when y is given). For each view,
// dfᵀ (in×out) accumulates the view times the part's gradient transposed;
// each worker keeps its own sums over its images, which are added in
// worker order at the end, so that the result does not depend on timing,
// and each view's sum goes to every 3×3 tap it stands for. keep holds its
// buffers between calls.
func (p *padPlan) backwardWeight(x, y, gm, dw []float32, keep *backScratch) {
	g := p.g
	// The gradient's columns are padded to whole kernel panels where the
	// kernels would otherwise copy a partial panel on every product.
	impl := narrowKernels(g.out)
	ow := panelsOf(impl, g.out)
	views := 0
	for _, part := range p.parts {
		views += len(part.taps)
	}
	nw := min(workers(), g.batch)
	per := p.maxNp * ow
	srcs, gts, sums := keep.fit(0, nw, p.srcSize()), keep.fit(1, nw, len(p.parts)*per), keep.fit(2, nw, views*g.in*ow)
	for _, sum := range sums {
		clear(sum)
	}
	parallel(g.batch, func(wk, img int) {
		s, gt, sum := srcs[wk], gts[wk], sums[wk]
		p.gather(x[img*g.inSize():(img+1)*g.inSize()], s)
		// gt holds each part's gradient transposed: np×ow, zero in the
		// rows that are not outputs and past column out.
		p.gridGradients(gm[img*g.outSize():(img+1)*g.outSize()], imageOf(y, img, g.outSize()), gt, per, 1, ow)
		f := 0
		for t, part := range p.parts {
			np := p.np(part)
			for _, tap := range part.taps {
				sgemmWith(impl, g.in, ow, np, s[tap.off:], p.plane(), gt[t*per:], ow, 1, sum[f*g.in*ow:], ow)
				f++
			}
		}
	})
	clear(dw)
	for _, sum := range sums {
		f := 0
		for _, part := range p.parts {
			for _, tap := range part.taps {
				v := sum[f*g.in*ow : (f+1)*g.in*ow]
				for c := range g.in {
					for o := range g.out {
						d := v[c*ow+o]
						for _, t := range tap.from {
							dw[(o*g.in+c)*9+t] += d
						}
					}
				}
				f++
			}
		}
	}
}

// imageOf returns image img of a batch of n-value images, or nil if the
// batch is nil.
func imageOf(batch []float32, img, n int) []float32 {
	if batch == nil {
		return nil
	}
	return batch[img*n : (img+1)*n]
}

// reluPass returns the gradient v where the ReLU's output y is positive
// and 0 elsewhere, without a branch: whether an output is positive is as
// good as random, and a mispredicted branch per value cost more than the
// rest of the gradient's copy.
func reluPass(v, y float32) float32 {
	return math.Float32frombits(math.Float32bits(v) & reluKeep(math.Float32bits(y)))
}

// reluKeep returns all ones if the float32 with bits b is positive (not
// ±0, sign clear, not a NaN, whose bits lie above +Inf's) and 0 otherwise:
// the positive floats are the bits from 1 (the smallest subnormal) to
// 0x7F800000 (+Inf), one unsigned comparison away. The compiler makes the
// choice a conditional move (half the time of the shifts and masks this
// was before: 1.0 against 1.5 – 2.1 ms a million values).
func reluKeep(b uint32) uint32 {
	m := uint32(0)
	if b-1 < 0x7F800000 {
		m = ^uint32(0)
	}
	return m
}
