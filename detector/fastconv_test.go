package detector

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convCase is one layer shape the fast convolution is checked on.
type convCase struct {
	batch, in, out, side, stride int
	up, relu                     bool
}

// convResult is a layer's output and its gradients with respect to the
// input, the filter and the bias under the loss sum(out ⊙ r).
type convResult struct{ out, dx, dw, db []float32 }

// runConvGraph builds x → layer → sum(out ⊙ r) with either gorgonia's ops
// (Conv2d, BroadcastAdd, Rectify, after upsample2x when c.up) or fastConv,
// runs it forward and backward and returns the values.
func runConvGraph(t *testing.T, c convCase, fast bool, x, w, b, r []float32) convResult {
	return runConvGraphRuns(t, c, fast, false, x, w, b, r)
}

// runConvGraphRuns is runConvGraph; with again, it runs the graph a second
// time after filling the fast op's kept buffers with NaNs, and returns the
// second run's values.
func runConvGraphRuns(t *testing.T, c convCase, fast, again bool, x, w, b, r []float32) convResult {
	t.Helper()
	g := G.NewGraph()
	node := func(name string, data []float32, shape ...int) *G.Node {
		v := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), data...)))
		return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(v))
	}
	xn := node("x", x, c.batch, c.in, c.side, c.side)
	wn := node("w", w, c.out, c.in, 3, 3)
	bn := node("b", b, 1, c.out, 1, 1)
	var out *G.Node
	var err error
	if fast {
		out, err = fastConv(xn, wn, bn, c.stride, c.up, c.relu)
	} else {
		out, err = gorgoniaLayer(xn, wn, bn, c.stride, c.up, c.relu)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := out.Shape()
	rn := node("r", r, s...)
	prod, err := G.HadamardProd(out, rn)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := G.Sum(prod)
	if err != nil {
		t.Fatal(err)
	}
	var outV G.Value
	G.Read(out, &outV)
	if _, err := G.Grad(loss, xn, wn, bn); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(xn, wn, bn))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if again {
		for _, buf := range out.Op().(convOp).outs.bufs {
			for i := range buf {
				buf[i] = float32(math.NaN())
			}
		}
		// The machine adds each run's gradients into the inputs' own;
		// clear those, as the solver does after its step.
		for _, n := range []*G.Node{xn, wn, bn} {
			v, err := n.Grad()
			if err != nil {
				t.Fatal(err)
			}
			v.(*tensor.Dense).Zero()
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	grad := func(n *G.Node) []float32 {
		v, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), v.Data().([]float32)...)
	}
	return convResult{
		out: append([]float32(nil), outV.Data().([]float32)...),
		dx:  grad(xn), dw: grad(wn), db: grad(bn),
	}
}

// gorgoniaLayer is the layer as gorgonia's own ops compute it: the
// repository's upsample2x (itself tested against gorgonia's Upsample2D),
// Conv2d, BroadcastAdd and Rectify.
func gorgoniaLayer(h, w, b *G.Node, stride int, up, relu bool) (*G.Node, error) {
	var err error
	if up {
		if h, err = upsample2x(h); err != nil {
			return nil, err
		}
	}
	if h, err = G.Conv2d(h, w, tensor.Shape{3, 3}, []int{1, 1}, []int{stride, stride}, []int{1, 1}); err != nil {
		return nil, err
	}
	if h, err = G.BroadcastAdd(h, b, nil, []byte{0, 2, 3}); err != nil {
		return nil, err
	}
	if relu {
		return G.Rectify(h)
	}
	return h, nil
}

// maxRelErr returns the largest |a−b| relative to the largest |b|.
func maxRelErr(a, b []float32) float64 {
	var d, scale float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		scale = max(scale, math.Abs(float64(b[i])))
	}
	return d / max(scale, 1e-12)
}

// convCases are the layers the op tests run: every kind of layer the
// network has, at batch 1 and above.
var convCases = []convCase{
	{batch: 1, in: 1, out: 8, side: 32, stride: 2, relu: true},
	{batch: 3, in: 1, out: 8, side: 16, stride: 2, relu: true},
	{batch: 2, in: 5, out: 7, side: 10, stride: 2, relu: true},
	{batch: 1, in: 8, out: 4, side: 16, stride: 1, up: true, relu: true},
	{batch: 3, in: 6, out: 3, side: 6, stride: 1, up: true, relu: true},
	{batch: 2, in: 8, out: 1, side: 8, stride: 1, up: true, relu: false},
	{batch: 2, in: 3, out: 2, side: 7, stride: 1, relu: false},
	{batch: 1, in: 2, out: 3, side: 9, stride: 2, relu: true},
	{batch: 2, in: 3, out: 4, side: 6, stride: 2, up: true, relu: true},
	{batch: 1, in: 2, out: 2, side: 5, stride: 2, up: true, relu: false},
	// The default network's widest layers, at batches that give each
	// worker several images.
	{batch: 5, in: 8, out: 16, side: 32, stride: 2, relu: true},
	{batch: 4, in: 32, out: 16, side: 8, stride: 1, up: true, relu: true},
	{batch: 4, in: 8, out: 1, side: 32, stride: 1, up: true, relu: false},
}

// TestFastConvMatchesGorgonia checks fastConv's output and its three
// gradients against gorgonia's own Conv2d + BroadcastAdd + Rectify (after
// the repository's upsample2x when upsampling) on random inputs, for every
// kind of layer the network has, at batch 1 and above.
func TestFastConvMatchesGorgonia(t *testing.T) {
	for _, c := range convCases {
		t.Run(fmt.Sprintf("b%d_c%d_o%d_s%d_st%d_up%v_relu%v", c.batch, c.in, c.out, c.side, c.stride, c.up, c.relu), func(t *testing.T) {
			x, w, b, r := randomConvInputs(c)
			want := runConvGraph(t, c, false, x, w, b, r)
			got := runConvGraph(t, c, true, x, w, b, r)
			for _, p := range []struct {
				name      string
				got, want []float32
			}{{"output", got.out, want.out}, {"input gradient", got.dx, want.dx}, {"filter gradient", got.dw, want.dw}, {"bias gradient", got.db, want.db}} {
				if len(p.got) != len(p.want) {
					t.Fatalf("%s: %d values, gorgonia gives %d", p.name, len(p.got), len(p.want))
				}
				if e := maxRelErr(p.got, p.want); e > 1e-5 {
					t.Errorf("%s: relative error %.3g against gorgonia", p.name, e)
				}
			}
		})
	}
}

// randomConvInputs draws a layer's input, filter, bias and the weights of
// the test's loss (one per output value) for c, from a seed of c's own.
func randomConvInputs(c convCase) (x, w, b, r []float32) {
	rng := rand.New(rand.NewSource(int64(c.batch*1000 + c.in*100 + c.out)))
	randn := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	geom := newConvGeom(tensor.Shape{c.batch, c.in, c.side, c.side}, c.out, c.stride, c.up)
	return randn(c.batch * c.in * c.side * c.side), randn(c.out * c.in * 9), randn(c.out), randn(c.batch * c.out * geom.oh * geom.ow)
}

// A second run of the training graph writes every value of the outputs
// and gradients whose buffers the op keeps from the first: filled with
// NaNs in between, they come out bit for bit as a fresh graph's.
func TestFastConvRunsAgainOverItsBuffers(t *testing.T) {
	for _, c := range convCases {
		x, w, b, r := randomConvInputs(c)
		once := runConvGraphRuns(t, c, true, false, x, w, b, r)
		twice := runConvGraphRuns(t, c, true, true, x, w, b, r)
		for _, p := range []struct {
			name        string
			once, twice []float32
		}{{"output", once.out, twice.out}, {"input gradient", once.dx, twice.dx}, {"filter gradient", once.dw, twice.dw}, {"bias gradient", once.db, twice.db}} {
			for i := range p.once {
				if math.Float32bits(p.once[i]) != math.Float32bits(p.twice[i]) {
					t.Fatalf("%+v: %s [%d] is %v on the second run, %v on the first", c, p.name, i, p.twice[i], p.once[i])
				}
			}
		}
	}
}

// reluPass passes the gradient exactly where y > 0, for every kind of
// float32: zeros of both signs, subnormals, infinities and NaNs.
func TestReluPassMatchesComparison(t *testing.T) {
	ys := []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		math.MaxFloat32, -math.MaxFloat32, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.Float32frombits(0x7F800001), math.Float32frombits(0xFFC00000), 3.5e-39}
	rng := rand.New(rand.NewSource(3))
	for range 1000 {
		ys = append(ys, math.Float32frombits(rng.Uint32()))
	}
	for _, y := range ys {
		for _, v := range []float32{1.5, -2, 0} {
			want := float32(0)
			if y > 0 {
				want = v
			}
			if got := reluPass(v, y); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("reluPass(%v, %v (%#x)) = %v, want %v", v, y, math.Float32bits(y), got, want)
			}
		}
	}
}

// A stride-2 layer's source planes, gathered row by row, are the ones its
// index table (p.src) describes, padding included, on even and odd sides.
func TestGatherPhasesMatchesIndex(t *testing.T) {
	rng := rand.New(rand.NewSource(31))
	for side := 1; side <= 11; side++ {
		for _, in := range []int{1, 3} {
			g := newConvGeom(tensor.Shape{1, in, side, side + 1}, 2, 2, false)
			p := newPadPlan(g)
			x := make([]float32, g.inSize())
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			got := make([]float32, p.srcSize())
			for i := range got {
				got[i] = float32(math.NaN())
			}
			p.gather(x, got)
			pl := p.plane()
			for ph := range p.phases {
				for c := range in {
					for q, i := range p.src[ph*pl : (ph+1)*pl] {
						want := float32(0)
						if i >= 0 {
							want = x[c*g.h*g.w+int(i)]
						}
						if v := got[(ph*in+c)*pl+q]; math.Float32bits(v) != math.Float32bits(want) {
							t.Fatalf("%v: phase %d, channel %d, position %d: %v, want %v", g, ph, c, q, v, want)
						}
					}
				}
			}
		}
	}
}

// A stride-2 layer's scatter, row by row, adds each source position into
// the input pixel its index table (p.src) names, and ignores the padding.
func TestScatterPhasesMatchesIndex(t *testing.T) {
	rng := rand.New(rand.NewSource(32))
	for side := 1; side <= 11; side++ {
		for _, in := range []int{1, 3} {
			g := newConvGeom(tensor.Shape{1, in, side, side + 1}, 2, 2, false)
			p := newPadPlan(g)
			ds := make([]float32, p.srcSize())
			for i := range ds {
				ds[i] = float32(rng.NormFloat64())
			}
			got, want := make([]float32, g.inSize()), make([]float32, g.inSize())
			for i := range got {
				got[i] = float32(i)
				want[i] = float32(i)
			}
			p.scatter(ds, got)
			pl := p.plane()
			for ph := range p.phases {
				for c := range in {
					for q, i := range p.src[ph*pl : (ph+1)*pl] {
						if i >= 0 {
							want[c*g.h*g.w+int(i)] += ds[(ph*in+c)*pl+q]
						}
					}
				}
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v: input value %d: %v, want %v", g, i, got[i], want[i])
				}
			}
		}
	}
}
