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
// Here each image runs on its own goroutine, every filter tap is one
// product (sgemmNN) over a shifted view of the zero-padded input, with
// no unfolding (see padconv.go), the bias and ReLU are applied while the
// output is still in cache, and the gradient ops apply the ReLU's mask
// as they read the output gradient. An upsampling layer runs at the low
// resolution with its taps folded (see tapGroups).
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
	g := newConvGeom(xs, ws[0], stride, upsample)
	return G.ApplyOp(convOp{plan: newPadPlan(g), relu: relu, outs: &convOutputs{}}, x, w, b)
}

// convOutputs keeps one layer's output and its three gradients between
// runs of the training graph, so that each run writes over the last one's
// rather than allocating them afresh (and having the runtime clear them:
// several MB a step, about a tenth of its time). That is safe because
// each op writes every value of its output on every run, and a run's
// values are dead by the next: the trainer reads the loss and the solver
// takes the weights' gradients before it runs the graph again. The graph
// runs one step at a time, so the ops need no lock.
type convOutputs struct {
	bufs [4][]float32 // by the gradient's wrt (0 – 2), then the output (3)
	// The ops' working buffers, kept for the same reason.
	forward     padScratch
	input, filt backScratch
}

// get returns buffer i with n values, whatever they hold.
func (c *convOutputs) get(i, n int) []float32 {
	if len(c.bufs[i]) != n {
		c.bufs[i] = make([]float32, n)
	}
	return c.bufs[i]
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

// backwardBias computes the bias gradient: the output gradient gm,
// masked by the ReLU where y (the layer's output) is given, summed over
// images and positions, per channel.
func (g convGeom) backwardBias(gm, y, db []float32) {
	n := g.n()
	for o := range g.out {
		var s float32
		for img := range g.batch {
			lo := img*g.outSize() + o*n
			var ys []float32
			if y != nil {
				ys = y[lo : lo+n]
			}
			s += sumPositive(gm[lo:lo+n], ys)
		}
		db[o] = s
	}
}

// convOp is the forward op of fastConv; inputs x, w, b.
type convOp struct {
	plan *padPlan // the layer's geometry and layout
	relu bool
	outs *convOutputs
}

func t4() hm.Type { return G.TensorType{Dims: 4, Of: hm.TypeVariable('a')} }

func (convOp) Arity() int    { return 3 }
func (convOp) Type() hm.Type { return hm.NewFnType(t4(), t4(), t4(), t4()) }
func (op convOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	g := op.plan.g
	return tensor.Shape{g.batch, g.out, g.oh, g.ow}, nil
}

func (op convOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := float32Inputs(inputs, 3)
	if err != nil {
		return nil, fmt.Errorf("fast conv: %w", err)
	}
	g := op.plan.g
	if len(in[0]) != g.batch*g.inSize() || len(in[1]) != g.out*g.k() || len(in[2]) != g.out {
		return nil, fmt.Errorf("fast conv %v: got %d, %d, %d values", g, len(in[0]), len(in[1]), len(in[2]))
	}
	y := op.outs.get(3, g.batch*g.outSize())
	op.plan.forwardFilters(in[0], op.plan.tapFilters(in[1], false), in[2], y, op.relu, &op.outs.forward, true)
	return tensor.New(tensor.WithShape(g.batch, g.out, g.oh, g.ow), tensor.WithBacking(y)), nil
}

func (convOp) ReturnsPtr() bool     { return false }
func (convOp) CallsExtern() bool    { return false }
func (convOp) OverwritesInput() int { return -1 }
func (op convOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "sentinel.conv %v relu%v", op.plan.g, op.relu)
}
func (op convOp) Hashcode() uint32 { return hashOp(op) }
func (op convOp) String() string   { return fmt.Sprintf("FastConv(%v relu%v)", op.plan.g, op.relu) }

func (convOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op convOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("fast conv: want 3 inputs, got %d", len(inputs))
	}
	// With a ReLU the gradient ops also read the output, whose sign
	// masks the incoming gradient as they read it.
	tail := G.Nodes{grad}
	if op.relu {
		tail = G.Nodes{output, grad}
	}
	gradOp := func(wrt int, first ...*G.Node) (*G.Node, error) {
		return G.ApplyOp(convGradOp{plan: op.plan, wrt: wrt, relu: op.relu, outs: op.outs}, append(first, tail...)...)
	}
	dx, err := gradOp(0, inputs[1])
	if err != nil {
		return nil, fmt.Errorf("fast conv input gradient: %w", err)
	}
	dw, err := gradOp(1, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("fast conv filter gradient: %w", err)
	}
	db, err := gradOp(2)
	if err != nil {
		return nil, fmt.Errorf("fast conv bias gradient: %w", err)
	}
	return G.Nodes{dx, dw, db}, nil
}

// convGradOp computes one gradient of convOp from the output gradient gm,
// masked where the layer's output y is not positive when relu is set:
// wrt 0 the input (inputs w, [y,] gm), 1 the filter (inputs x, [y,] gm),
// 2 the bias (inputs [y,] gm).
type convGradOp struct {
	plan *padPlan // the layer's geometry and layout
	wrt  int
	relu bool
	outs *convOutputs
}

func (op convGradOp) Arity() int {
	n := 2
	if op.wrt == 2 {
		n = 1
	}
	if op.relu {
		n++
	}
	return n
}

func (op convGradOp) Type() hm.Type {
	ts := make([]hm.Type, op.Arity()+1)
	for i := range ts {
		ts[i] = t4()
	}
	return hm.NewFnType(ts...)
}

func (op convGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	g := op.plan.g
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
	g := op.plan.g
	gm := in[len(in)-1]
	var y []float32
	if op.relu {
		y = in[len(in)-2]
	}
	if len(gm) != g.batch*g.outSize() || (y != nil && len(y) != len(gm)) {
		return nil, fmt.Errorf("fast conv gradient %v: %d output gradients, %d outputs", g, len(gm), len(y))
	}
	s, _ := op.InferShape()
	out := op.outs.get(op.wrt, s.TotalSize())
	switch op.wrt {
	case 0:
		op.plan.backwardInput(in[0], y, gm, out, &op.outs.input)
	case 1:
		op.plan.backwardWeight(in[0], y, gm, out, &op.outs.filt)
	default:
		g.backwardBias(gm, y, out)
	}
	return tensor.New(tensor.WithShape(s...), tensor.WithBacking(out)), nil
}

func (convGradOp) ReturnsPtr() bool     { return false }
func (convGradOp) CallsExtern() bool    { return false }
func (convGradOp) OverwritesInput() int { return -1 }
func (op convGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "sentinel.conv.grad%d %v relu%v", op.wrt, op.plan.g, op.relu)
}
func (op convGradOp) Hashcode() uint32 { return hashOp(op) }
func (op convGradOp) String() string {
	return fmt.Sprintf("FastConvGrad%d(%v relu%v)", op.wrt, op.plan.g, op.relu)
}
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
