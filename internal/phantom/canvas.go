package phantom

import (
	"math"
	"math/rand/v2"
)

// canvas is a square float image that shapes are added to. Shapes touch
// only the pixels of their bounding box, which keeps a 512×512 phantom to
// a few milliseconds.
type canvas struct {
	n int
	v []float64
}

func newCanvas(n int) *canvas { return &canvas{n: n, v: make([]float64, n*n)} }

func (c *canvas) fill(v float64) {
	for i := range c.v {
		c.v[i] = v
	}
}

// each calls f for every pixel centre in the bounding box of e scaled by
// grow, clipped to the canvas.
func (c *canvas) each(e ellipse, grow float64, f func(i int, x, y float64)) {
	x0 := max(0, int(math.Floor(e.cx-e.rx*grow)))
	x1 := min(c.n-1, int(math.Ceil(e.cx+e.rx*grow)))
	y0 := max(0, int(math.Floor(e.cy-e.ry*grow)))
	y1 := min(c.n-1, int(math.Ceil(e.cy+e.ry*grow)))
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			f(y*c.n+x, float64(x)+0.5, float64(y)+0.5)
		}
	}
}

// edge is a smooth step from 1 inside (r < 1-soft) to 0 outside (r >
// 1+soft), so that shapes have no jagged borders.
func edge(r, soft float64) float64 {
	t := min(max((1+soft-r)/(2*soft), 0), 1)
	return t * t * (3 - 2*t)
}

// mask returns a canvas holding the soft mask of e.
func (c *canvas) mask(e ellipse, soft float64) *canvas {
	m := newCanvas(c.n)
	m.each(e, 1+soft, func(i int, x, y float64) { m.v[i] = edge(e.r(x, y), soft) })
	return m
}

// lungMask returns the soft mask of a lung: the ellipse e narrowed towards
// its apex, so the lung is egg-shaped with a broad base.
func (c *canvas) lungMask(e ellipse) *canvas {
	m := newCanvas(c.n)
	m.each(e, 1.05, func(i int, x, y float64) {
		t := (y - e.cy) / e.ry // -1 at the apex, 1 at the base
		w := 0.78 + 0.22*min(max(t, -1), 1)
		dx, dy := (x-e.cx)/(e.rx*w), (y-e.cy)/e.ry
		m.v[i] = edge(math.Sqrt(dx*dx+dy*dy), 0.05)
	})
	return m
}

// addBox adds amount inside a shape between the ellipse e and the
// rectangle around it (the mean of the ellipse radius and the p = 4
// superellipse radius), with a soft edge: the outline of a trunk.
func (c *canvas) addBox(e ellipse, amount, soft float64) {
	c.each(e, 1+soft, func(i int, x, y float64) {
		dx, dy := (x-e.cx)/e.rx, (y-e.cy)/e.ry
		d2 := dx*dx + dy*dy
		r := 0.5 * (math.Sqrt(d2) + math.Sqrt(math.Sqrt(dx*dx*dx*dx+dy*dy*dy*dy)))
		c.v[i] += amount * edge(r, soft)
	})
}

// maxWith sets c to the pixelwise maximum of c and o.
func (c *canvas) maxWith(o *canvas) {
	for i, v := range o.v {
		c.v[i] = max(c.v[i], v)
	}
}

// addBand adds amount in a vertical band of half-width w around cx from
// y0 to y1, fading at the sides.
func (c *canvas) addBand(cx, w, y0, y1, amount float64) {
	c.each(ellipse{cx, (y0 + y1) / 2, 1.5 * w, (y1 - y0) / 2}, 1, func(i int, x, y float64) {
		d := (x - cx) / w
		c.v[i] += amount * math.Exp(-d*d)
	})
}

// addCurve adds a bar of half-thickness thick along y = f(x) for x from x0
// to x1, brighter at its edges than its middle like the cortex of a bone.
func (c *canvas) addCurve(x0, x1 float64, f func(float64) float64, thick, amount float64) {
	if x1 < x0 {
		x0, x1 = x1, x0
	}
	for x := max(0, int(x0)); x <= min(c.n-1, int(x1)); x++ {
		yc := f(float64(x) + 0.5)
		for y := max(0, int(yc-thick-1)); y <= min(c.n-1, int(yc+thick+1)); y++ {
			d := math.Abs(float64(y)+0.5-yc) / thick
			if d < 1 {
				c.v[y*c.n+x] += amount * (0.75 + 0.25*d*d) * edge(d, 0.15)
			}
		}
	}
}

// addBlob adds a round lesion of radius r at (x, y) whose density falls
// smoothly to its edge, weighted by mask m (the lungs), so it stays inside.
func (c *canvas) addBlob(x, y, r, amount float64, m *canvas) {
	e := ellipse{x, y, r, r}
	c.each(e, 1.1, func(i int, px, py float64) {
		d := e.r(px, py)
		if d < 1 {
			c.v[i] += amount * math.Sqrt(1-d*d) * edge(d, 0.1) * m.v[i]
		}
	})
}

// valueNoise is smooth random texture: random values on a coarse grid,
// interpolated with a smooth step.
type valueNoise struct {
	n    int
	grid []float64
}

func newValueNoise(rng *rand.Rand, n int) *valueNoise {
	g := &valueNoise{n: n, grid: make([]float64, (n+1)*(n+1))}
	for i := range g.grid {
		g.grid[i] = rng.Float64()
	}
	return g
}

// at returns the texture at (x, y) in image units (0..1 across the
// image); it repeats outside.
func (g *valueNoise) at(x, y float64) float64 {
	fx, fy := x*float64(g.n), y*float64(g.n)
	ix, iy := int(math.Floor(fx)), int(math.Floor(fy))
	tx, ty := fx-float64(ix), fy-float64(iy)
	ix, iy = ((ix%g.n)+g.n)%g.n, ((iy%g.n)+g.n)%g.n
	tx, ty = tx*tx*(3-2*tx), ty*ty*(3-2*ty)
	v := func(i, j int) float64 { return g.grid[j*(g.n+1)+i] }
	top := v(ix, iy)*(1-tx) + v(ix+1, iy)*tx
	bottom := v(ix, iy+1)*(1-tx) + v(ix+1, iy+1)*tx
	return top*(1-ty) + bottom*ty
}
