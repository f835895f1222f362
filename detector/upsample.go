package detector

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// upsample2x doubles the height and width of a BCHW float32 node by nearest
// neighbour: each input pixel becomes a 2×2 block.
//
// It replaces gorgonia's Upsample2D, which computes the same values but reads
// and writes one element at a time through the tensor's interface methods;
// on the decoder of a 64×64 autoencoder that was about a quarter of a
// training step. The gradient is the sum over each 2×2 block, computed by
// upsample2xGradOp.
func upsample2x(x *G.Node) (*G.Node, error) {
	if x.Shape().Dims() != 4 {
		return nil, fmt.Errorf("upsample: want a 4-dimensional input, got shape %v", x.Shape())
	}
	return G.ApplyOp(upsample2xOp{}, x)
}

// upsample2xOp is the forward op of upsample2x.
type upsample2xOp struct{}

func (upsample2xOp) Arity() int { return 1 }

func (upsample2xOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := G.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t, t)
}

func (upsample2xOp) InferShape(inputs ...G.DimSizer) (tensor.Shape, error) {
	s, err := shape4(inputs)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0], s[1], 2 * s[2], 2 * s[3]}, nil
}

func (upsample2xOp) Do(inputs ...G.Value) (G.Value, error) {
	in, s, err := float32Input(inputs)
	if err != nil {
		return nil, fmt.Errorf("upsample: %w", err)
	}
	h, w := s[2], s[3]
	out := make([]float32, len(in)*4)
	for p := 0; p < s[0]*s[1]; p++ {
		src := in[p*h*w : (p+1)*h*w]
		dst := out[p*4*h*w : (p+1)*4*h*w]
		for y := 0; y < h; y++ {
			row := src[y*w : (y+1)*w]
			d0 := dst[(2*y)*2*w : (2*y+1)*2*w]
			for x, v := range row {
				d0[2*x] = v
				d0[2*x+1] = v
			}
			copy(dst[(2*y+1)*2*w:(2*y+2)*2*w], d0)
		}
	}
	return tensor.New(tensor.WithShape(s[0], s[1], 2*h, 2*w), tensor.WithBacking(out)), nil
}

func (upsample2xOp) ReturnsPtr() bool      { return false }
func (upsample2xOp) CallsExtern() bool     { return false }
func (upsample2xOp) OverwritesInput() int  { return -1 }
func (upsample2xOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "sentinel.upsample2x") }
func (op upsample2xOp) Hashcode() uint32   { return hashOp(op) }
func (upsample2xOp) String() string        { return "Upsample2x" }

// DiffWRT and SymDiff make the op differentiable by gorgonia's symbolic
// differentiation, which the tape machine uses.
func (upsample2xOp) DiffWRT(inputs int) []bool { return []bool{true} }

func (upsample2xOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("upsample: want 1 input, got %d", len(inputs))
	}
	ret, err := G.ApplyOp(upsample2xGradOp{}, grad)
	if err != nil {
		return nil, fmt.Errorf("upsample gradient: %w", err)
	}
	return G.Nodes{ret}, nil
}

// upsample2xGradOp maps the gradient of upsample2x's output back to its
// input: each input pixel receives the sum of its 2×2 block.
type upsample2xGradOp struct{}

func (upsample2xGradOp) Arity() int { return 1 }

func (upsample2xGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := G.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t, t)
}

func (upsample2xGradOp) InferShape(inputs ...G.DimSizer) (tensor.Shape, error) {
	s, err := shape4(inputs)
	if err != nil {
		return nil, err
	}
	if s[2]%2 != 0 || s[3]%2 != 0 {
		return nil, fmt.Errorf("upsample gradient: odd spatial shape %v", s)
	}
	return tensor.Shape{s[0], s[1], s[2] / 2, s[3] / 2}, nil
}

func (upsample2xGradOp) Do(inputs ...G.Value) (G.Value, error) {
	in, s, err := float32Input(inputs)
	if err != nil {
		return nil, fmt.Errorf("upsample gradient: %w", err)
	}
	if s[2]%2 != 0 || s[3]%2 != 0 {
		return nil, fmt.Errorf("upsample gradient: odd spatial shape %v", s)
	}
	h, w := s[2]/2, s[3]/2
	out := make([]float32, len(in)/4)
	for p := 0; p < s[0]*s[1]; p++ {
		src := in[p*4*h*w : (p+1)*4*h*w]
		dst := out[p*h*w : (p+1)*h*w]
		for y := 0; y < h; y++ {
			r0 := src[(2*y)*2*w : (2*y+1)*2*w]
			r1 := src[(2*y+1)*2*w : (2*y+2)*2*w]
			d := dst[y*w : (y+1)*w]
			for x := range d {
				d[x] = (r0[2*x] + r0[2*x+1]) + (r1[2*x] + r1[2*x+1])
			}
		}
	}
	return tensor.New(tensor.WithShape(s[0], s[1], h, w), tensor.WithBacking(out)), nil
}

func (upsample2xGradOp) ReturnsPtr() bool      { return false }
func (upsample2xGradOp) CallsExtern() bool     { return false }
func (upsample2xGradOp) OverwritesInput() int  { return -1 }
func (upsample2xGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "sentinel.upsample2x.grad") }
func (op upsample2xGradOp) Hashcode() uint32   { return hashOp(op) }
func (upsample2xGradOp) String() string        { return "Upsample2xGrad" }

// hashOp returns the FNV-1a hash of what op writes with WriteHash.
func hashOp(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// shape4 returns the single 4-dimensional shape among inputs.
func shape4(inputs []G.DimSizer) (tensor.Shape, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("want 1 input shape, got %d", len(inputs))
	}
	s, ok := inputs[0].(tensor.Shape)
	if !ok || s.Dims() != 4 {
		return nil, fmt.Errorf("want a 4-dimensional shape, got %v", inputs[0])
	}
	return s, nil
}

// float32Input returns the contiguous float32 data and shape of the single
// 4-dimensional input among inputs.
func float32Input(inputs []G.Value) ([]float32, tensor.Shape, error) {
	if len(inputs) != 1 {
		return nil, nil, fmt.Errorf("want 1 input, got %d", len(inputs))
	}
	d, ok := inputs[0].(*tensor.Dense)
	if !ok {
		return nil, nil, fmt.Errorf("want a dense tensor, got %T", inputs[0])
	}
	if d.IsMaterializable() {
		if d, ok = d.Materialize().(*tensor.Dense); !ok {
			return nil, nil, fmt.Errorf("cannot materialise input view")
		}
	}
	data, ok := d.Data().([]float32)
	if !ok {
		return nil, nil, fmt.Errorf("want float32 data, got %v", d.Dtype())
	}
	s := d.Shape()
	if s.Dims() != 4 || len(data) != s.TotalSize() {
		return nil, nil, fmt.Errorf("want a 4-dimensional tensor, got shape %v with %d values", s, len(data))
	}
	return data, s, nil
}
