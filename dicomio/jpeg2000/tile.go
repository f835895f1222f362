package jpeg2000

import (
	"math"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// The tile structure of ITU-T T.800 B.5–B.7: tile-components split into
// resolution levels, sub-bands, precincts and code-blocks.

type tileComp struct {
	x0, y0, x1, y1 int
	st             style
	q              *quant
	roi            int
	res            []resolution
	ibuf           []int32   // reversible coefficients, stride x1−x0
	fbuf           []float32 // irreversible coefficients
}

type resolution struct {
	x0, y0, x1, y1 int
	ppx, ppy       int
	npw, nph       int
	bands          []band
	precincts      []precinct
	nextLayer      []int // per precinct: the next layer whose packet is due
}

type band struct {
	orient         int
	x0, y0, x1, y1 int
	cbw, cbh       int // code-block size exponents within this band
	mb             int // magnitude bit-planes (Mb of E.1)
	step           float32
	offx, offy     int // position in the tile-component buffer
}

type precinct struct {
	bands []precBand // parallel to resolution.bands
}

type precBand struct {
	cw, ch int // code-blocks across and down
	blocks []codeblock
	incl   tagTree
	zbp    tagTree
}

type codeblock struct {
	x0, y0, x1, y1 int // in band coordinates
	included       bool
	lblock         int
	zbp            int
	segs           []segment
	chunks         []chunk
}

// segment is a codeword segment: passes decoded from one MQ or raw
// codeword. maxPasses is how many passes it can hold (D.4.1).
type segment struct {
	passes, maxPasses int
}

// chunk is a piece of a segment's data from one packet.
type chunk struct {
	seg  int32
	data []byte
}

// bandGain is log2 of the nominal gain of each orientation (E.1.1.1).
var bandGain = [4]int{0, 1, 1, 2}

// newTileComp builds the structure of component c of the tile with the
// given area on the reference grid.
func newTileComp(cp component, st style, q *quant, roi int, tx0, ty0, tx1, ty1 int, budget *int) (*tileComp, error) {
	tc := &tileComp{
		x0: ceilDiv(tx0, cp.dx), y0: ceilDiv(ty0, cp.dy),
		x1: ceilDiv(tx1, cp.dx), y1: ceilDiv(ty1, cp.dy),
		st: st, q: q, roi: max(roi, 0),
	}
	nl := st.levels
	tc.res = make([]resolution, nl+1)
	for r := range tc.res {
		res := &tc.res[r]
		scale := 1 << (nl - r)
		res.x0, res.y0 = ceilDiv(tc.x0, scale), ceilDiv(tc.y0, scale)
		res.x1, res.y1 = ceilDiv(tc.x1, scale), ceilDiv(tc.y1, scale)
		res.ppx, res.ppy = int(st.ppx[r]), int(st.ppy[r])
		if res.x1 > res.x0 {
			res.npw = ceilDiv(res.x1, 1<<res.ppx) - floorDiv(res.x0, 1<<res.ppx)
		}
		if res.y1 > res.y0 {
			res.nph = ceilDiv(res.y1, 1<<res.ppy) - floorDiv(res.y0, 1<<res.ppy)
		}
		if *budget -= res.npw * res.nph; *budget < 0 {
			return nil, codec.Corruptf("more precincts than bytes of packet data")
		}
		if err := tc.makeBands(cp, res, r); err != nil {
			return nil, err
		}
		tc.makePrecincts(res, r)
	}
	return tc, nil
}

func (tc *tileComp) makeBands(cp component, res *resolution, r int) error {
	nl := tc.st.levels
	orients := []int{orientLL}
	if r > 0 {
		orients = []int{orientHL, orientLH, orientHH}
	}
	res.bands = make([]band, len(orients))
	for i, o := range orients {
		b := &res.bands[i]
		b.orient = o
		if r == 0 {
			b.x0, b.y0, b.x1, b.y1 = res.x0, res.y0, res.x1, res.y1
		} else {
			nb := nl - r + 1
			xo, yo := o&1, o>>1
			d := 1 << nb
			off := 1 << (nb - 1)
			b.x0, b.x1 = ceilDiv(tc.x0-xo*off, d), ceilDiv(tc.x1-xo*off, d)
			b.y0, b.y1 = ceilDiv(tc.y0-yo*off, d), ceilDiv(tc.y1-yo*off, d)
			low := &tc.res[r-1]
			if xo == 1 {
				b.offx = low.x1 - low.x0
			}
			if yo == 1 {
				b.offy = low.y1 - low.y0
			}
		}
		ppx, ppy := res.ppx, res.ppy
		if r > 0 {
			ppx, ppy = ppx-1, ppy-1
		}
		b.cbw, b.cbh = min(tc.st.cbw, ppx), min(tc.st.cbh, ppy)

		idx := 0
		if r > 0 {
			idx = 3*(r-1) + i + 1
		}
		q := tc.q
		var eps, mu int
		switch {
		case q.kind == 1:
			eps, mu = max(int(q.eps[0])-(r-1)*b2i(r > 0), 0), int(q.mu[0])
		case idx < len(q.eps):
			eps, mu = int(q.eps[idx]), int(q.mu[idx])
		default:
			return codec.Corruptf("quantization lacks sub-band %d", idx)
		}
		b.mb = q.guard + eps - 1 + tc.roi
		if b.mb > 29 {
			return codec.Unsupportedf("%d magnitude bit-planes", b.mb)
		}
		rb := cp.prec + bandGain[o]
		b.step = float32(math.Ldexp(1+float64(mu)/2048, rb-eps))
	}
	return nil
}

func (tc *tileComp) makePrecincts(res *resolution, r int) {
	n := res.npw * res.nph
	res.precincts = make([]precinct, n)
	res.nextLayer = make([]int, n)
	px0, py0 := floorDiv(res.x0, 1<<res.ppx), floorDiv(res.y0, 1<<res.ppy)
	for k := range res.precincts {
		p := &res.precincts[k]
		p.bands = make([]precBand, len(res.bands))
		i, j := k%res.npw, k/res.npw
		for bi := range res.bands {
			b := &res.bands[bi]
			ppx, ppy := res.ppx, res.ppy
			if r > 0 {
				ppx, ppy = ppx-1, ppy-1
			}
			// The precinct's area within the band.
			x0 := max((px0+i)<<ppx, b.x0)
			x1 := min((px0+i+1)<<ppx, b.x1)
			y0 := max((py0+j)<<ppy, b.y0)
			y1 := min((py0+j+1)<<ppy, b.y1)
			if x1 <= x0 || y1 <= y0 {
				continue
			}
			pb := &p.bands[bi]
			cx0, cx1 := floorDiv(x0, 1<<b.cbw), ceilDiv(x1, 1<<b.cbw)
			cy0, cy1 := floorDiv(y0, 1<<b.cbh), ceilDiv(y1, 1<<b.cbh)
			pb.cw, pb.ch = cx1-cx0, cy1-cy0
			pb.blocks = make([]codeblock, pb.cw*pb.ch)
			for n := range pb.blocks {
				cb := &pb.blocks[n]
				cx, cy := cx0+n%pb.cw, cy0+n/pb.cw
				cb.x0, cb.x1 = max(cx<<b.cbw, x0), min((cx+1)<<b.cbw, x1)
				cb.y0, cb.y1 = max(cy<<b.cbh, y0), min((cy+1)<<b.cbh, y1)
				cb.lblock = 3
			}
			pb.incl.init(pb.cw, pb.ch)
			pb.zbp.init(pb.cw, pb.ch)
		}
	}
}

// tagTree is the tag tree of B.10.2, stored level by level from the
// leaves up.
type tagTree struct {
	nodes  []tagNode
	parent []int32
	w      int
}

type tagNode struct {
	value, low int32
}

const tagUnknown = math.MaxInt32

func (t *tagTree) init(w, h int) {
	t.w = w
	n := 0
	for lw, lh := w, h; ; lw, lh = (lw+1)/2, (lh+1)/2 {
		n += lw * lh
		if lw*lh <= 1 {
			break
		}
	}
	t.nodes = make([]tagNode, n)
	t.parent = make([]int32, n)
	for i := range t.nodes {
		t.nodes[i].value = tagUnknown
	}
	base := 0
	for lw, lh := w, h; lw*lh > 1; {
		pw, ph := (lw+1)/2, (lh+1)/2
		pbase := base + lw*lh
		for y := range lh {
			for x := range lw {
				t.parent[base+y*lw+x] = int32(pbase + (y/2)*pw + x/2)
			}
		}
		base = pbase
		lw, lh = pw, ph
	}
	t.parent[n-1] = -1
}

// decode reads bits until it knows whether the value of leaf is below
// threshold, and reports whether it is.
func (t *tagTree) decode(br *bitReader, leaf int, threshold int32) (bool, error) {
	var path [32]int32
	depth := 0
	for i := int32(leaf); i >= 0 && depth < len(path); i = t.parent[i] {
		path[depth] = i
		depth++
	}
	var low int32
	for d := depth - 1; d >= 0; d-- {
		n := &t.nodes[path[d]]
		if low > n.low {
			n.low = low
		} else {
			low = n.low
		}
		for low < threshold && low < n.value {
			bit, err := br.bit()
			if err != nil {
				return false, err
			}
			if bit != 0 {
				n.value = low
			} else {
				low++
			}
		}
		n.low = low
	}
	return t.nodes[leaf].value < threshold, nil
}
