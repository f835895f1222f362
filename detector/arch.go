package detector

import (
	"fmt"
	"math"
	"math/rand"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Limits on architectures, checked before a graph is built so that a hostile
// model file cannot make Load allocate without bound.
const (
	minInputSize = 8
	maxInputSize = 1024
	maxStages    = 6
	maxChannels  = 256
)

// Architecture describes the convolutional autoencoder, enough to rebuild its
// graph from a model file.
//
// The encoder has one stage per entry of Channels: a 3×3 convolution with
// stride 2 and padding 1, a bias and a ReLU, halving the side each time. The
// decoder mirrors it: per stage a nearest-neighbour 2× upsample, a 3×3
// convolution with stride 1 and padding 1 and a bias, with a ReLU after every
// stage but the last, which outputs one linear channel at the input size.
type Architecture struct {
	InputSize int   `json:"input_size"`
	Channels  []int `json:"channels"`
}

// Validate reports whether the architecture can be built: the input side
// must be divisible by 2 for every stage and sizes must be within limits.
func (a Architecture) Validate() error {
	if a.InputSize < minInputSize || a.InputSize > maxInputSize {
		return fmt.Errorf("input size %d outside [%d, %d]", a.InputSize, minInputSize, maxInputSize)
	}
	if len(a.Channels) < 1 || len(a.Channels) > maxStages {
		return fmt.Errorf("%d stages, want 1 to %d", len(a.Channels), maxStages)
	}
	if a.InputSize%(1<<len(a.Channels)) != 0 {
		return fmt.Errorf("input size %d is not divisible by 2^%d for %d stages", a.InputSize, len(a.Channels), len(a.Channels))
	}
	for i, c := range a.Channels {
		if c < 1 || c > maxChannels {
			return fmt.Errorf("stage %d has %d channels, want 1 to %d", i, c, maxChannels)
		}
	}
	return nil
}

// paramSpec names one weight tensor and gives its shape.
type paramSpec struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// size returns the number of values in the tensor.
func (p paramSpec) size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// layer is one convolution of the network: its input and output channels,
// its stride and whether a ReLU follows it. Decoder layers are preceded by a
// 2× upsample.
type layer struct {
	name     string
	in, out  int
	stride   int
	upsample bool
	relu     bool
}

// layers lists the network's convolutions in the order they run.
func (a Architecture) layers() []layer {
	var ls []layer
	in := 1
	for i, c := range a.Channels {
		ls = append(ls, layer{name: fmt.Sprintf("enc%d", i), in: in, out: c, stride: 2, relu: true})
		in = c
	}
	for i := len(a.Channels) - 2; i >= -1; i-- {
		out := 1
		if i >= 0 {
			out = a.Channels[i]
		}
		ls = append(ls, layer{name: fmt.Sprintf("dec%d", len(a.Channels)-2-i), in: in, out: out, stride: 1, upsample: true, relu: i >= 0})
		in = out
	}
	return ls
}

// params lists the weight tensors in the order they are stored: for each
// layer its filter (out, in, 3, 3) and then its bias (1, out, 1, 1).
func (a Architecture) params() []paramSpec {
	var ps []paramSpec
	for _, l := range a.layers() {
		ps = append(ps,
			paramSpec{Name: l.name + ".weight", Shape: []int{l.out, l.in, 3, 3}},
			paramSpec{Name: l.name + ".bias", Shape: []int{1, l.out, 1, 1}})
	}
	return ps
}

// param is one named weight tensor with its values, stored flat so that
// statistics over weights (such as SWAG's moments) need no graph.
type param struct {
	paramSpec
	Data []float32
}

// initParams returns He-initialised weights drawn from rng and zero biases,
// except the output bias, which starts at outBias (the mean training pixel)
// so that the first steps need not learn the overall brightness.
func (a Architecture) initParams(rng *rand.Rand, outBias float32) []param {
	specs := a.params()
	ps := make([]param, len(specs))
	for i, s := range specs {
		ps[i] = param{paramSpec: s, Data: make([]float32, s.size())}
		if len(s.Shape) == 4 && s.Shape[2] == 3 {
			fanIn := float64(s.Shape[1] * 9)
			std := math.Sqrt(2 / fanIn)
			if i == len(specs)-2 {
				std = math.Sqrt(1 / fanIn) // linear output layer
			}
			for j := range ps[i].Data {
				ps[i].Data[j] = float32(rng.NormFloat64() * std)
			}
		}
	}
	last := ps[len(ps)-1].Data
	for j := range last {
		last[j] = outBias
	}
	return ps
}

// cloneParams returns a deep copy of ps.
func cloneParams(ps []param) []param {
	out := make([]param, len(ps))
	for i, p := range ps {
		out[i] = param{paramSpec: paramSpec{Name: p.Name, Shape: slices.Clone(p.Shape)}, Data: slices.Clone(p.Data)}
	}
	return out
}

// network is the autoencoder as gorgonia nodes in one graph, for training
// (scoring runs the same layers on plain slices, see inferNet).
type network struct {
	g       *G.ExprGraph
	x       *G.Node   // input, (batch, 1, side, side)
	out     *G.Node   // reconstruction, same shape as x
	weights G.Nodes   // one node per param, in params order
	backing []param   // the values bound to weights
	shape   []int     // the input shape
	xbuf    []float32 // backing of the input tensor
	vm      G.VM      // compiled machine, set by whoever builds n
}

// buildNetwork builds the forward graph of a for the given batch size with
// a private copy of ps bound to its weight nodes, so that graphs built from
// the same params never share memory.
func buildNetwork(a Architecture, ps []param, batch int) (*network, error) {
	specs := a.params()
	if len(ps) != len(specs) {
		return nil, fmt.Errorf("got %d weight tensors, architecture needs %d", len(ps), len(specs))
	}
	n := &network{g: G.NewGraph(), backing: cloneParams(ps)}
	for i, s := range specs {
		p := n.backing[i]
		if p.Name != s.Name || !slices.Equal(p.Shape, s.Shape) || len(p.Data) != s.size() {
			return nil, fmt.Errorf("weight tensor %d is %s %v, architecture needs %s %v", i, p.Name, p.Shape, s.Name, s.Shape)
		}
		v := tensor.New(tensor.WithShape(s.Shape...), tensor.WithBacking(p.Data))
		n.weights = append(n.weights, G.NewTensor(n.g, tensor.Float32, len(s.Shape), G.WithShape(s.Shape...), G.WithName(s.Name), G.WithValue(v)))
	}
	n.shape = []int{batch, 1, a.InputSize, a.InputSize}
	n.xbuf = make([]float32, batch*a.InputSize*a.InputSize)
	n.x = G.NewTensor(n.g, tensor.Float32, 4, G.WithShape(n.shape...), G.WithName("x"))
	h := n.x
	var err error
	for i, l := range a.layers() {
		if h, err = applyLayer(h, l, n.weights[2*i], n.weights[2*i+1]); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.name, err)
		}
	}
	n.out = h
	return n, nil
}

// applyLayer adds one layer's upsample, convolution, bias and ReLU to h, as
// one fastConv op (see fastconv.go for why not gorgonia's own ops).
func applyLayer(h *G.Node, l layer, w, b *G.Node) (*G.Node, error) {
	h, err := fastConv(h, w, b, l.stride, l.upsample, l.relu)
	if err != nil {
		return nil, fmt.Errorf("convolution: %w", err)
	}
	return h, nil
}

// input returns the tensor to bind to n.x, backed by n.xbuf.
func (n *network) input() *tensor.Dense {
	return tensor.New(tensor.WithShape(n.shape...), tensor.WithBacking(n.xbuf))
}

// params0 returns the architecture's weight tensors filled with zeros, the
// shape to unflatten a weight vector into.
func (a Architecture) params0() []param {
	specs := a.params()
	ps := make([]param, len(specs))
	for i, s := range specs {
		ps[i] = param{paramSpec: s, Data: make([]float32, s.size())}
	}
	return ps
}
