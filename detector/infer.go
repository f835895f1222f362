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
// value it allocates per op per run. It computes what the graph's fastConv
// ops compute, with the decoder's upsampling folded into its filters (see
// foldUpsample), which changes only the rounding. An inferNet holds its own
// buffers and is not safe for concurrent use; its weights are shared and
// never written.
type inferNet struct {
	geoms  []convGeom
	relus  []bool
	ps     []param
	batch  int
	folded [][4][]float32 // per layer, an upsampling layer's folded filters (see foldUpsample)
	acts   [][]float32    // each layer's output for the whole batch
	cols   [][]float32    // one unfolding buffer per worker
	tmps   [][]float32    // one product buffer per worker, for folded layers
	outLen int            // values in one image
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
	maxCol, maxTmp := 0, 0
	for i, l := range a.layers() {
		g := newConvGeom(shape, l.out, l.stride, l.upsample)
		n.geoms = append(n.geoms, g)
		n.relus = append(n.relus, l.relu)
		n.acts = append(n.acts, make([]float32, batch*g.outSize()))
		var f [4][]float32
		if folds(g) {
			f = foldUpsample(ps[2*i].Data, g.out, g.in)
			rows := upBandRows(g)
			maxCol = max(maxCol, g.in*4*rows*g.w)
			maxTmp = max(maxTmp, g.out*rows*g.w)
		} else {
			maxCol = max(maxCol, g.k()*min(inferBand, g.n()))
		}
		n.folded = append(n.folded, f)
		shape = []int{batch, g.out, g.oh, g.ow}
	}
	n.cols = make([][]float32, workers())
	n.tmps = make([][]float32, workers())
	for i := range n.cols {
		n.cols[i] = make([]float32, maxCol)
		n.tmps[i] = make([]float32, maxTmp)
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
		var tasks int
		var task func(wk, t int)
		if folds(g) {
			rows := upBandRows(g)
			bands := (g.h + rows - 1) / rows
			tasks = n.batch * 4 * bands
			task = func(wk, t int) {
				img, p, band := t/(4*bands), t/bands%4, t%bands
				i0, i1 := band*rows, min((band+1)*rows, g.h)
				g.upForwardRows(in[img*g.inSize():(img+1)*g.inSize()], n.folded[i][p], b, y[img*g.outSize():(img+1)*g.outSize()], n.relus[i], p, i0, i1, n.cols[wk], n.tmps[wk])
			}
		} else {
			bw := min(inferBand, g.n())
			bands := (g.n() + bw - 1) / bw
			tasks = n.batch * bands
			task = func(wk, t int) {
				img, band := t/bands, t%bands
				n0, n1 := band*bw, min((band+1)*bw, g.n())
				g.forwardRange(in[img*g.inSize():(img+1)*g.inSize()], w, b, y[img*g.outSize():(img+1)*g.outSize()], n.relus[i], n.cols[wk], n0, n1)
			}
		}
		if parallelRun {
			parallel(tasks, task)
		} else {
			for t := range tasks {
				task(0, t)
			}
		}
		in = y
	}
	return in, nil
}

// folds reports whether a layer runs as four 2×2 convolutions over its
// low-resolution input (see foldUpsample): every upsample-then-convolve
// layer with stride 1, which is every decoder layer.
func folds(g convGeom) bool { return g.up && g.stride == 1 }

// upBandRows is the number of low-resolution rows one task of a folded
// layer covers: about inferBand output positions per parity.
func upBandRows(g convGeom) int { return max(1, min(g.h, inferBand/g.w)) }

// reconstruct runs the whole network and returns the reconstruction.
func (n *inferNet) reconstruct(x []float32, parallelRun bool) ([]float32, error) {
	return n.run(x, len(n.geoms), parallelRun)
}

// stage returns encoder stage i's output (after its ReLU) of the last run,
// which must have computed it.
func (n *inferNet) stage(i int) []float32 { return n.acts[i] }

// tapGroups[a][d] lists the filter rows (or columns) that land on low-
// resolution offset d of the 2×2 window for output parity a, when a 3×3
// convolution with padding 1 runs over a nearest 2× upsample: output row
// 2i reads upsampled rows 2i−1, 2i, 2i+1, which are input rows i−1, i, i;
// output row 2i+1 reads input rows i, i, i+1.
var tapGroups = [2][2][]int{{{0}, {1, 2}}, {{0, 1}, {2}}}

// foldUpsample returns, for each output parity (a, b) at index 2a+b, the
// out×(in·4) filter of the 2×2 convolution over the low-resolution input
// that gives the same output as the 3×3 filter w over its 2× upsample:
// the taps that read the same input pixel are summed once here instead of
// multiplying the same value several times per pixel. This cuts a decoder
// layer's products by 9/4 and its unfolding to the low-resolution grid.
func foldUpsample(w []float32, out, in int) [4][]float32 {
	var f [4][]float32
	for a := range 2 {
		for b := range 2 {
			fw := make([]float32, out*in*4)
			for o := range out {
				for c := range in {
					for dy := range 2 {
						for dx := range 2 {
							var s float32
							for _, ky := range tapGroups[a][dy] {
								for _, kx := range tapGroups[b][dx] {
									s += w[((o*in+c)*3+ky)*3+kx]
								}
							}
							fw[o*in*4+c*4+dy*2+dx] = s
						}
					}
				}
			}
			f[2*a+b] = fw
		}
	}
	return f
}

// upForwardRows computes output parity p = 2a+b of rows [i0, i1) of the
// low-resolution grid for one image: an upsample-then-convolve layer as a
// 2×2 convolution with the folded filter fw, written with its bias and
// activation into every other pixel of y. col and tmp are scratch of at
// least in·4·(i1−i0)·w and out·(i1−i0)·w values.
func (g convGeom) upForwardRows(x, fw, bias, y []float32, relu bool, p, i0, i1 int, col, tmp []float32) {
	a, b := p/2, p%2
	h, w := g.h, g.w
	width := (i1 - i0) * w
	k := g.in * 4
	col, tmp = col[:k*width], tmp[:g.out*width]
	for c := range g.in {
		plane := x[c*h*w : (c+1)*h*w]
		for dy := range 2 {
			for dx := range 2 {
				row := col[(c*4+dy*2+dx)*width : (c*4+dy*2+dx+1)*width]
				off := b + dx - 1 // column offset: −1, 0 or 1
				for i := i0; i < i1; i++ {
					dst := row[(i-i0)*w : (i-i0+1)*w]
					iy := i + a + dy - 1
					if iy < 0 || iy >= h {
						clear(dst)
						continue
					}
					src := plane[iy*w : (iy+1)*w]
					switch off {
					case -1:
						dst[0] = 0
						copy(dst[1:], src[:w-1])
					case 0:
						copy(dst, src)
					default:
						copy(dst[:w-1], src[1:])
						dst[w-1] = 0
					}
				}
			}
		}
	}
	sgemmNN(g.out, width, k, fw, k, col, width, 0, tmp, width)
	ow := 2 * w
	for o := range g.out {
		bo := bias[o]
		plane := y[o*g.oh*ow : (o+1)*g.oh*ow]
		for i := i0; i < i1; i++ {
			src := tmp[o*width+(i-i0)*w : o*width+(i-i0+1)*w]
			dst := plane[(2*i+a)*ow+b:]
			for j, v := range src {
				v += bo
				if relu {
					v = max(v, 0)
				}
				dst[2*j] = v
			}
		}
	}
}
