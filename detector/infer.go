package detector

import (
	"fmt"
	"slices"
)

// inferBand is the number of output positions one unfolding covers when a
// layer runs on one goroutine: at the widest layer (288 taps) a band's
// columns take 288 KiB, which stays in the second-level cache with the
// filter and the output rows.
const inferBand = 256

// inferNet is the autoencoder's forward pass outside gorgonia, for scoring
// and feature extraction. Training needs gorgonia's graph for the
// gradients; inference needs only the layers' arithmetic, and running it
// on plain slices avoids the tape machine's per-op bookkeeping and the
// value it allocates per op per run. It computes exactly what the graph's
// fastConv ops compute, with the same kernels. An inferNet holds its own
// buffers and is not safe for concurrent use; its weights are shared and
// never written.
type inferNet struct {
	geoms  []convGeom
	relus  []bool
	ps     []param
	batch  int
	acts   [][]float32 // each layer's output for the whole batch
	cols   [][]float32 // one unfolding buffer per worker
	stages int         // number of encoder stages
	side   int         // input side
	outLen int         // values in one image
}

// newInferNet checks ps against the architecture and allocates the
// buffers for batch images.
func newInferNet(a Architecture, ps []param, batch int) (*inferNet, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	specs := a.params()
	if len(ps) != len(specs) {
		return nil, fmt.Errorf("got %d weight tensors, architecture needs %d", len(ps), len(specs))
	}
	for i, s := range specs {
		p := ps[i]
		if p.Name != s.Name || !slices.Equal(p.Shape, s.Shape) || len(p.Data) != s.size() {
			return nil, fmt.Errorf("weight tensor %d is %s %v, architecture needs %s %v", i, p.Name, p.Shape, s.Name, s.Shape)
		}
	}
	n := &inferNet{ps: ps, batch: batch, stages: len(a.Channels), side: a.InputSize, outLen: a.InputSize * a.InputSize}
	shape := []int{batch, 1, a.InputSize, a.InputSize}
	maxCol := 0
	for _, l := range a.layers() {
		g := newConvGeom(shape, l.out, l.stride, l.upsample)
		n.geoms = append(n.geoms, g)
		n.relus = append(n.relus, l.relu)
		n.acts = append(n.acts, make([]float32, batch*g.outSize()))
		maxCol = max(maxCol, g.k()*min(inferBand, g.n()))
		shape = []int{batch, g.out, g.oh, g.ow}
	}
	n.cols = make([][]float32, workers())
	for i := range n.cols {
		n.cols[i] = make([]float32, maxCol)
	}
	return n, nil
}

// run computes layers [0, upto) on the batch x and returns the last one's
// output, which stays valid until the next run. With parallel set, the
// images and bands of each layer are spread over every core; without it
// the run stays on the calling goroutine, for callers that run several
// networks at once.
func (n *inferNet) run(x []float32, upto int, parallelRun bool) ([]float32, error) {
	if len(x) != n.batch*n.outLen {
		return nil, fmt.Errorf("input has %d values, network takes %d", len(x), n.batch*n.outLen)
	}
	upto = min(upto, len(n.geoms))
	in := x
	for i, g := range n.geoms[:upto] {
		w, b := n.ps[2*i].Data, n.ps[2*i+1].Data
		y := n.acts[i]
		bw := min(inferBand, g.n())
		bands := (g.n() + bw - 1) / bw
		task := func(wk, t int) {
			img, band := t/bands, t%bands
			n0, n1 := band*bw, min((band+1)*bw, g.n())
			g.forwardRange(in[img*g.inSize():(img+1)*g.inSize()], w, b, y[img*g.outSize():(img+1)*g.outSize()], n.relus[i], n.cols[wk], n0, n1)
		}
		if parallelRun {
			parallel(n.batch*bands, task)
		} else {
			for t := range n.batch * bands {
				task(0, t)
			}
		}
		in = y
	}
	return in, nil
}

// reconstruct runs the whole network and returns the reconstruction.
func (n *inferNet) reconstruct(x []float32, parallelRun bool) ([]float32, error) {
	return n.run(x, len(n.geoms), parallelRun)
}

// stage returns encoder stage i's output (after its ReLU) of the last run,
// which must have computed it.
func (n *inferNet) stage(i int) []float32 { return n.acts[i] }
