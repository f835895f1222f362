package detector

import (
	"fmt"
	"slices"
)

// inferNet is the autoencoder's forward pass outside gorgonia, for scoring
// and feature extraction. Training needs gorgonia's graph for the
// gradients; inference needs only the layers' arithmetic, and running it
// on plain slices avoids the tape machine's per-op bookkeeping and the
// value it allocates per op per run. It computes what the graph's fastConv
// ops compute, through the same layouts (see padconv.go), with each
// layer's view filters summed once per model instead of once per run. An
// inferNet holds its own buffers and is not safe for concurrent use; its
// weights are shared and never written.
type inferNet struct {
	plans   []*padPlan
	relus   []bool
	ps      []param
	batch   int
	filters [][][]float32 // per layer, its views' filters (tapFilters)
	acts    [][]float32   // each layer's output for the whole batch
	scratch padScratch
	outLen  int // values in one image
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
	n := &inferNet{ps: ps, batch: batch, outLen: a.InputSize * a.InputSize}
	shape := []int{batch, 1, a.InputSize, a.InputSize}
	for i, l := range a.layers() {
		g := newConvGeom(shape, l.out, l.stride, l.upsample)
		p := newPadPlan(g)
		n.plans = append(n.plans, p)
		n.relus = append(n.relus, l.relu)
		n.filters = append(n.filters, p.tapFilters(ps[2*i].Data, false))
		n.acts = append(n.acts, make([]float32, batch*g.outSize()))
		shape = []int{batch, g.out, g.oh, g.ow}
	}
	return n, nil
}

// run computes layers [0, upto) on the batch x and returns the last one's
// output, which stays valid until the next run. With parallel set, each
// layer's images (or, at a batch smaller than the workers, its parts and
// bands of rows) are spread over every core; without it the run stays on
// the calling goroutine, for callers that run several networks at once.
func (n *inferNet) run(x []float32, upto int, parallelRun bool) ([]float32, error) {
	if len(x) != n.batch*n.outLen {
		return nil, fmt.Errorf("input has %d values, network takes %d", len(x), n.batch*n.outLen)
	}
	upto = min(upto, len(n.plans))
	in := x
	for i, p := range n.plans[:upto] {
		p.forwardFilters(in, n.filters[i], n.ps[2*i+1].Data, n.acts[i], n.relus[i], &n.scratch, parallelRun)
		in = n.acts[i]
	}
	return in, nil
}

// reconstruct runs the whole network and returns the reconstruction.
func (n *inferNet) reconstruct(x []float32, parallelRun bool) ([]float32, error) {
	return n.run(x, len(n.plans), parallelRun)
}

// stage returns encoder stage i's output (after its ReLU) of the last run,
// which must have computed it.
func (n *inferNet) stage(i int) []float32 { return n.acts[i] }
