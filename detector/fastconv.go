package detector

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fastConv is one layer of the network as a single gorgonia op: an optional
// nearest-neighbour 2× upsample, a 3×3 convolution with padding 1 and the
// given stride, a per-channel bias and an optional ReLU, on BCHW float32.
//
// It replaces gorgonia's Conv2d + BroadcastAdd + Rectify (and upsample2x),
// whose im2col and col2im run on one goroutine element by element, whose
// product comes out in BHWC and is transposed back through the tensor
// package's generic iterator, and each of which allocates its own output.
// Here every image (or, at batch 1, every band of output columns) is
// unfolded and multiplied on its own goroutine, the product (sgemmNN)
// is written straight into BCHW, and the bias and ReLU are applied while
// the output is still in cache. The upsample is folded into the unfolding:
// the convolution reads input pixel (y/2, x/2) for upsampled pixel (y, x),
// and col2im adds the gradient back to the same pixel, which is the
// upsample's gradient.
func fastConv(x, w, b *G.Node, stride int, upsample, relu bool) (*G.Node, error) {
	if x.Shape().Dims() != 4 || w.Shape().Dims() != 4 || b.Shape().Dims() != 4 {
		return nil, fmt.Errorf("fast conv: want 4-dimensional input, filter and bias, got %v, %v, %v", x.Shape(), w.Shape(), b.Shape())
	}
	xs, ws := x.Shape(), w.Shape()
	if ws[1] != xs[1] || ws[2] != 3 || ws[3] != 3 {
		return nil, fmt.Errorf("fast conv: filter %v does not fit input %v", ws, xs)
	}
	if stride != 1 && stride != 2 {
		return nil, fmt.Errorf("fast conv: stride %d, want 1 or 2", stride)
	}
	return G.ApplyOp(convOp{geom: newConvGeom(xs, ws[0], stride, upsample), relu: relu}, x, w, b)
}

// convGeom is the geometry of one convolution.
type convGeom struct {
	batch, in, out int // images, input and output channels
	h, w           int // input side, before any upsample
	ih, iw         int // side the filter slides over (2h, 2w with upsample)
	oh, ow         int // output side
	stride         int
	up             bool
}

func newConvGeom(xs tensor.Shape, out, stride int, up bool) convGeom {
	g := convGeom{batch: xs[0], in: xs[1], out: out, h: xs[2], w: xs[3], stride: stride, up: up}
	g.ih, g.iw = g.h, g.w
	if up {
		g.ih, g.iw = 2*g.h, 2*g.w
	}
	g.oh, g.ow = (g.ih+2-3)/stride+1, (g.iw+2-3)/stride+1
	return g
}

func (g convGeom) k() int       { return g.in * 9 }
func (g convGeom) n() int       { return g.oh * g.ow }
func (g convGeom) inSize() int  { return g.in * g.h * g.w }
func (g convGeom) outSize() int { return g.out * g.n() }
func (g convGeom) String() string {
	return fmt.Sprintf("%d×%d×%d×%d→%d s%d up%v", g.batch, g.in, g.h, g.w, g.out, g.stride, g.up)
}

// im2col unfolds columns [n0, n1) of one image's output into col, a
// k×(n1−n0) row-major matrix: row c·9+ky·3+kx holds the input pixel under
// filter tap (ky, kx) of channel c for each output position, 0 in the
// padding. It walks the output one row segment at a time, so that the
// inner loops are a plain copy (stride 1), a stride-2 gather or a
// duplicating gather (upsampled input) with the padding handled at the
// segment's ends instead of per pixel.
func (g convGeom) im2col(x []float32, col []float32, n0, n1 int) {
	width := n1 - n0
	oy0, ox0 := n0/g.ow, n0%g.ow
	for c := range g.in {
		plane := x[c*g.h*g.w : (c+1)*g.h*g.w]
		for ky := range 3 {
			for kx := range 3 {
				row := col[(c*9+ky*3+kx)*width : (c*9+ky*3+kx+1)*width]
				oy, ox := oy0, ox0
				for j := 0; j < width; {
					seg := min(g.ow-ox, width-j)
					g.unfoldSegment(row[j:j+seg], plane, oy*g.stride+ky-1, ox, kx)
					j += seg
					ox = 0
					oy++
				}
			}
		}
	}
}

// unfoldSegment fills dst with the input pixels under filter column kx for
// the output positions ox, ox+1, … of one output row whose filter row
// reads input row iy (in the coordinates the filter slides over).
func (g convGeom) unfoldSegment(dst, plane []float32, iy, ox, kx int) {
	if iy < 0 || iy >= g.ih {
		clear(dst)
		return
	}
	if g.up {
		iy >>= 1
	}
	src := plane[iy*g.w : (iy+1)*g.w]
	// Output position ox+t reads column ix(t) = (ox+t)·stride + kx − 1 of
	// the slid-over input; [lo, hi) are the t for which it is inside.
	lo, hi := 0, len(dst)
	for lo < hi && (ox+lo)*g.stride+kx-1 < 0 {
		dst[lo] = 0
		lo++
	}
	for hi > lo && (ox+hi-1)*g.stride+kx-1 >= g.iw {
		dst[hi-1] = 0
		hi--
	}
	base := (ox+lo)*g.stride + kx - 1 // first ix read
	d := dst[lo:hi]
	switch {
	case g.up && g.stride == 1:
		// Each input pixel fills two neighbouring values: one odd
		// value first when base is odd, then pairs, then one even one.
		j := base >> 1
		if base&1 == 1 && len(d) > 0 {
			d[0] = src[j]
			d, j = d[1:], j+1
		}
		pairs := len(d) / 2
		dd := d[:2*pairs]
		for q, v := range src[j : j+pairs] {
			dd[2*q] = v
			dd[2*q+1] = v
		}
		if len(d) > 2*pairs {
			d[2*pairs] = src[j+pairs]
		}
	case g.up:
		for t := range d {
			d[t] = src[(base+2*t)>>1]
		}
	case g.stride == 1:
		copy(d, src[base:base+len(d)])
	default:
		for t := range d {
			d[t] = src[base+2*t]
		}
	}
}

// col2im adds a k×n column matrix (all output positions of one image) back
// into the image's input gradient dx, the transpose of im2col. Like
// im2col it works one output row segment at a time: the range of output
// columns whose tap falls inside the input is worked out once per row, so
// the inner loops add without a bounds test or a branch per value.
func (g convGeom) col2im(col []float32, dx []float32) {
	n := g.n()
	for c := range g.in {
		plane := dx[c*g.h*g.w : (c+1)*g.h*g.w]
		for ky := range 3 {
			for kx := range 3 {
				row := col[(c*9+ky*3+kx)*n : (c*9+ky*3+kx+1)*n]
				// Output column ox reads slid-over column ox·stride+kx−1:
				// inside for ox in [lo, hi).
				lo := 0
				if kx == 0 {
					lo = 1
				}
				hi := 0
				if g.iw-kx >= 0 {
					hi = min(g.ow, (g.iw-kx)/g.stride+1)
				}
				if lo >= hi {
					continue
				}
				base := lo*g.stride + kx - 1
				for oy := range g.oh {
					iy := oy*g.stride + ky - 1
					if iy < 0 || iy >= g.ih {
						continue
					}
					if g.up {
						iy >>= 1
					}
					g.foldSegment(plane[iy*g.w:(iy+1)*g.w], row[oy*g.ow+lo:oy*g.ow+hi], base)
				}
			}
		}
	}
}

// foldSegment adds src, the gradients of consecutive output columns, to
// the input row dst, starting at slid-over column base.
func (g convGeom) foldSegment(dst, src []float32, base int) {
	switch {
	case g.up && g.stride == 1:
		for t, v := range src {
			dst[(base+t)>>1] += v
		}
	case g.up:
		for t, v := range src {
			dst[(base+2*t)>>1] += v
		}
	case g.stride == 1:
		d := dst[base : base+len(src)]
		for t, v := range src {
			d[t] += v
		}
	default:
		for t, v := range src {
			dst[base+2*t] += v
		}
	}
}

// transposeInto writes the r×c row-major matrix src into dst as its c×r
// transpose.
func transposeInto(dst, src []float32, r, c int) {
	for i := range r {
		for j, v := range src[i*c : (i+1)*c] {
			dst[j*r+i] = v
		}
	}
}

// forward computes act(conv(x, w) + b) into y for the whole batch, on
// every core.
func (g convGeom) forward(x, w, bias, y []float32, relu bool) {
	k, n := g.k(), g.n()
	// Split each image's output columns into bands so that a batch smaller
	// than the worker count still uses every worker.
	bands := max(1, min(workers()/g.batch, n/64))
	bandW := (n + bands - 1) / bands
	cols := make([][]float32, min(workers(), g.batch*bands))
	parallel(g.batch*bands, func(wk, t int) {
		img, band := t/bands, t%bands
		n0, n1 := band*bandW, min((band+1)*bandW, n)
		if n0 >= n1 {
			return
		}
		if cols[wk] == nil {
			cols[wk] = make([]float32, k*bandW)
		}
		g.forwardRange(x[img*g.inSize():(img+1)*g.inSize()], w, bias, y[img*g.outSize():(img+1)*g.outSize()], relu, cols[wk], n0, n1)
	})
}

// forwardRange computes output columns [n0, n1) of one image on the
// calling goroutine, unfolding them into col (at least k·(n1−n0) values).
func (g convGeom) forwardRange(x, w, bias, y []float32, relu bool, col []float32, n0, n1 int) {
	k, n := g.k(), g.n()
	col = col[:k*(n1-n0)]
	g.im2col(x, col, n0, n1)
	sgemmNN(g.out, n1-n0, k, w, k, col, n1-n0, 0, y[n0:], n)
	for o := range g.out {
		row := y[o*n+n0 : o*n+n1]
		bo := bias[o]
		if relu {
			for j, v := range row {
				row[j] = max(v+bo, 0)
			}
		} else {
			for j := range row {
				row[j] += bo
			}
		}
	}
}

// backwardInput computes the input gradient dx from the masked output
// gradient gm: per image, col = wᵀ·gm folded back by col2im. The filter is
// transposed once for the batch, so that every product is an ordinary one.
func (g convGeom) backwardInput(w, gm, dx []float32) {
	k, n := g.k(), g.n()
	wT := make([]float32, k*g.out)
	transposeInto(wT, w, g.out, k)
	cols := make([][]float32, min(workers(), g.batch))
	parallel(g.batch, func(wk, img int) {
		if cols[wk] == nil {
			cols[wk] = make([]float32, k*n)
		}
		col := cols[wk]
		sgemmNN(k, n, g.out, wT, g.out, gm[img*g.outSize():(img+1)*g.outSize()], n, 0, col, n)
		d := dx[img*g.inSize() : (img+1)*g.inSize()]
		clear(d)
		g.col2im(col, d)
	})
}

// backwardWeight computes the filter gradient dw from the input x and the
// masked output gradient gm. Each worker accumulates dwᵀ = Σ col·gmᵀ over
// its images (the unfolding col is the large operand and is used as it
// is; only the image's gm is transposed), and the workers' sums are added
// and transposed once at the end, in worker order, so that the result does
// not depend on timing.
func (g convGeom) backwardWeight(x, gm, dw []float32) {
	k, n := g.k(), g.n()
	nw := min(workers(), g.batch)
	cols := make([][]float32, nw)
	gmTs := make([][]float32, nw)
	parts := make([][]float32, nw) // k×out each
	parallel(g.batch, func(wk, img int) {
		if cols[wk] == nil {
			cols[wk] = make([]float32, k*n)
			gmTs[wk] = make([]float32, n*g.out)
			parts[wk] = make([]float32, k*g.out)
		}
		g.im2col(x[img*g.inSize():(img+1)*g.inSize()], cols[wk], 0, n)
		transposeInto(gmTs[wk], gm[img*g.outSize():(img+1)*g.outSize()], g.out, n)
		sgemmNN(k, g.out, n, cols[wk], n, gmTs[wk], g.out, 1, parts[wk], g.out)
	})
	clear(dw)
	for _, p := range parts {
		for r := range k {
			for o, v := range p[r*g.out : (r+1)*g.out] {
				dw[o*k+r] += v
			}
		}
	}
}

// backwardBias computes the bias gradient: gm summed over images and
// positions, per channel.
func (g convGeom) backwardBias(gm, db []float32) {
	n := g.n()
	for o := range g.out {
		var s float32
		for img := range g.batch {
			for _, v := range gm[img*g.outSize()+o*n : img*g.outSize()+(o+1)*n] {
				s += v
			}
		}
		db[o] = s
	}
}

// convOp is the forward op of fastConv; inputs x, w, b.
type convOp struct {
	geom convGeom
	relu bool
}

func t4() hm.Type { return G.TensorType{Dims: 4, Of: hm.TypeVariable('a')} }

func (convOp) Arity() int    { return 3 }
func (convOp) Type() hm.Type { return hm.NewFnType(t4(), t4(), t4(), t4()) }
func (op convOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	g := op.geom
	return tensor.Shape{g.batch, g.out, g.oh, g.ow}, nil
}

func (op convOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := float32Inputs(inputs, 3)
	if err != nil {
		return nil, fmt.Errorf("fast conv: %w", err)
	}
	g := op.geom
	if len(in[0]) != g.batch*g.inSize() || len(in[1]) != g.out*g.k() || len(in[2]) != g.out {
		return nil, fmt.Errorf("fast conv %v: got %d, %d, %d values", g, len(in[0]), len(in[1]), len(in[2]))
	}
	y := make([]float32, g.batch*g.outSize())
	g.forward(in[0], in[1], in[2], y, op.relu)
	return tensor.New(tensor.WithShape(g.batch, g.out, g.oh, g.ow), tensor.WithBacking(y)), nil
}

func (convOp) ReturnsPtr() bool     { return false }
func (convOp) CallsExtern() bool    { return false }
func (convOp) OverwritesInput() int { return -1 }
func (op convOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "sentinel.conv %v relu%v", op.geom, op.relu)
}
func (op convOp) Hashcode() uint32 { return hashOp(op) }
func (op convOp) String() string   { return fmt.Sprintf("FastConv(%v relu%v)", op.geom, op.relu) }

func (convOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op convOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("fast conv: want 3 inputs, got %d", len(inputs))
	}
	gm := grad
	var err error
	if op.relu {
		if gm, err = G.ApplyOp(reluMaskOp{}, output, grad); err != nil {
			return nil, fmt.Errorf("fast conv gradient: %w", err)
		}
	}
	dx, err := G.ApplyOp(convGradOp{geom: op.geom, wrt: 0}, inputs[1], gm)
	if err != nil {
		return nil, fmt.Errorf("fast conv input gradient: %w", err)
	}
	dw, err := G.ApplyOp(convGradOp{geom: op.geom, wrt: 1}, inputs[0], gm)
	if err != nil {
		return nil, fmt.Errorf("fast conv filter gradient: %w", err)
	}
	db, err := G.ApplyOp(convGradOp{geom: op.geom, wrt: 2}, gm)
	if err != nil {
		return nil, fmt.Errorf("fast conv bias gradient: %w", err)
	}
	return G.Nodes{dx, dw, db}, nil
}

// reluMaskOp passes the gradient where the ReLU's output is positive.
type reluMaskOp struct{}

func (reluMaskOp) Arity() int    { return 2 }
func (reluMaskOp) Type() hm.Type { return hm.NewFnType(t4(), t4(), t4()) }
func (reluMaskOp) InferShape(inputs ...G.DimSizer) (tensor.Shape, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("relu mask: want 2 shapes, got %d", len(inputs))
	}
	s, ok := inputs[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("relu mask: want a shape, got %v", inputs[0])
	}
	return s.Clone(), nil
}

func (reluMaskOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := float32Inputs(inputs, 2)
	if err != nil {
		return nil, fmt.Errorf("relu mask: %w", err)
	}
	y, g := in[0], in[1]
	if len(y) != len(g) {
		return nil, fmt.Errorf("relu mask: %d outputs, %d gradients", len(y), len(g))
	}
	out := make([]float32, len(g))
	for i, v := range y {
		if v > 0 {
			out[i] = g[i]
		}
	}
	return tensor.New(tensor.WithShape(inputs[0].Shape().Clone()...), tensor.WithBacking(out)), nil
}

func (reluMaskOp) ReturnsPtr() bool      { return false }
func (reluMaskOp) CallsExtern() bool     { return false }
func (reluMaskOp) OverwritesInput() int  { return -1 }
func (reluMaskOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "sentinel.relumask") }
func (op reluMaskOp) Hashcode() uint32   { return hashOp(op) }
func (reluMaskOp) String() string        { return "ReluMask" }
func (reluMaskOp) DiffWRT(int) []bool    { return []bool{false, false} }
func (reluMaskOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("relu mask: no second derivative")
}

// convGradOp computes one gradient of convOp from the masked output
// gradient: wrt 0 the input (inputs w, gm), 1 the filter (inputs x, gm),
// 2 the bias (input gm).
type convGradOp struct {
	geom convGeom
	wrt  int
}

func (op convGradOp) Arity() int {
	if op.wrt == 2 {
		return 1
	}
	return 2
}

func (op convGradOp) Type() hm.Type {
	if op.wrt == 2 {
		return hm.NewFnType(t4(), t4())
	}
	return hm.NewFnType(t4(), t4(), t4())
}

func (op convGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	g := op.geom
	switch op.wrt {
	case 0:
		return tensor.Shape{g.batch, g.in, g.h, g.w}, nil
	case 1:
		return tensor.Shape{g.out, g.in, 3, 3}, nil
	}
	return tensor.Shape{1, g.out, 1, 1}, nil
}

func (op convGradOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := float32Inputs(inputs, op.Arity())
	if err != nil {
		return nil, fmt.Errorf("fast conv gradient: %w", err)
	}
	g := op.geom
	gm := in[len(in)-1]
	if len(gm) != g.batch*g.outSize() {
		return nil, fmt.Errorf("fast conv gradient %v: %d output gradients", g, len(gm))
	}
	s, _ := op.InferShape()
	out := make([]float32, s.TotalSize())
	switch op.wrt {
	case 0:
		g.backwardInput(in[0], gm, out)
	case 1:
		g.backwardWeight(in[0], gm, out)
	default:
		g.backwardBias(gm, out)
	}
	return tensor.New(tensor.WithShape(s...), tensor.WithBacking(out)), nil
}

func (convGradOp) ReturnsPtr() bool     { return false }
func (convGradOp) CallsExtern() bool    { return false }
func (convGradOp) OverwritesInput() int { return -1 }
func (op convGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "sentinel.conv.grad%d %v", op.wrt, op.geom)
}
func (op convGradOp) Hashcode() uint32 { return hashOp(op) }
func (op convGradOp) String() string   { return fmt.Sprintf("FastConvGrad%d(%v)", op.wrt, op.geom) }
func (op convGradOp) DiffWRT(n int) []bool {
	return make([]bool, n)
}
func (convGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("fast conv gradient: no second derivative")
}

// float32Inputs returns the contiguous float32 data of n inputs.
func float32Inputs(inputs []G.Value, n int) ([][]float32, error) {
	if len(inputs) != n {
		return nil, fmt.Errorf("want %d inputs, got %d", n, len(inputs))
	}
	out := make([][]float32, n)
	for i, v := range inputs {
		d, ok := v.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("input %d: want a dense tensor, got %T", i, v)
		}
		if d.IsMaterializable() {
			if d, ok = d.Materialize().(*tensor.Dense); !ok {
				return nil, fmt.Errorf("input %d: cannot materialise view", i)
			}
		}
		data, ok := d.Data().([]float32)
		if !ok {
			return nil, fmt.Errorf("input %d: want float32 data, got %v", i, d.Dtype())
		}
		out[i] = data
	}
	return out, nil
}
