// Package phantom draws synthetic chest-radiograph-like images for tests
// and the demo: two lung fields with ribs, clavicles, mediastinum and
// heart inside a soft-tissue outline, with per-image jitter of position,
// size and exposure, and optionally a nodule, an opacity or an effusion.
// It also writes them as real DICOM files.
//
// It is test scaffolding, not a model of anatomy or disease: a detector
// that separates these phantoms has shown that it runs, not that it works
// on radiographs. Everything is drawn from the caller's random source, so a
// seed gives the same image every time.
package phantom

import (
	"math"
	"math/big"
	"math/rand/v2"

	"github.com/sentinel-pacs/sentinel"
)

// Kind names what a phantom shows.
type Kind string

// Phantom kinds.
const (
	Normal   Kind = "normal"
	Nodule   Kind = "nodule"
	Opacity  Kind = "opacity"
	Effusion Kind = "effusion"
)

// Kinds lists every kind, normal first.
var Kinds = []Kind{Normal, Nodule, Opacity, Effusion}

// MaxValue is the brightest stored value: phantoms are 12-bit.
const MaxValue = 4095

// Densities of the drawing, in display units (0 black, 1 white) before the
// exposure is applied. Only their differences matter to the eye; they are
// set so that a lesion is clearly visible against lung but not brighter
// than bone.
const (
	airLevel       = 0.04
	softTissue     = 0.46
	lungDrop       = 0.30 // lungs are this much darker than soft tissue
	mediastinumAdd = 0.24
	heartAdd       = 0.20
	spineAdd       = 0.10
	ribAdd         = 0.10
	clavicleAdd    = 0.16
	textureAmp     = 0.05
	noduleAdd      = 0.26
	opacityAdd     = 0.28
	fluidAdd       = 0.30
	noiseSigma     = 0.012
)

// ellipse is an axis-aligned ellipse in pixel coordinates.
type ellipse struct{ cx, cy, rx, ry float64 }

// r returns the ellipse radius of (x, y): below 1 inside.
func (e ellipse) r(x, y float64) float64 {
	dx, dy := (x-e.cx)/e.rx, (y-e.cy)/e.ry
	return math.Sqrt(dx*dx + dy*dy)
}

// geometry is where the anatomy of one phantom lies, in pixels.
type geometry struct {
	body, mediastinum, heart ellipse
	lungs                    [2]ellipse
}

// Generate draws one size×size chest phantom; values are 12-bit (0..4095)
// with bright = dense (bone, mediastinum), as MONOCHROME2. It returns nil
// for a size below 1; an unknown kind draws a normal phantom.
func Generate(rng *rand.Rand, size int, kind Kind) []uint16 {
	pix, _ := draw(rng, size, kind)
	return pix
}

// draw is Generate that also returns the geometry, for tests. The random
// source is read in a fixed order: anatomy, exposure and the noise seed
// first, the lesion last, so that one seed gives the same patient, normal
// or not.
func draw(rng *rand.Rand, size int, kind Kind) ([]uint16, geometry) {
	if size < 1 {
		return nil, geometry{}
	}
	n := float64(size)
	g := anatomy(rng, n)
	gain := 0.85 + 0.3*rng.Float64()
	gradX, gradY := 0.12*(rng.Float64()-0.5), 0.12*(rng.Float64()-0.5)
	noise := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	texture := newValueNoise(rng, 12)

	c := newCanvas(size)
	c.fill(airLevel)
	c.addBox(g.body, softTissue-airLevel, 0.03)
	lung := c.lungMask(g.lungs[0])
	lung.maxWith(c.lungMask(g.lungs[1]))
	heart := c.mask(g.heart, 0.08)
	mediastinum := c.mask(g.mediastinum, 0.12)
	for i := range lung.v {
		// The heart and mediastinum hide the lung behind them.
		lung.v[i] *= 1 - max(heart.v[i], mediastinum.v[i])
	}
	for i, l := range lung.v {
		if l > 0 {
			x, y := float64(i%size)/n, float64(i/size)/n
			c.v[i] += l * (-lungDrop + textureAmp*(texture.at(x, y)-0.5))
		}
	}
	for i := range c.v {
		c.v[i] += max(mediastinumAdd*mediastinum.v[i], heartAdd*heart.v[i])
	}
	c.addBand(g.mediastinum.cx, 0.03*n, g.body.cy-g.body.ry*0.9, g.body.cy+g.body.ry*0.9, spineAdd)
	drawRibs(c, g, lung, rng)
	drawClavicles(c, g, rng)

	switch kind {
	case Nodule:
		drawNodules(c, g, lung, rng)
	case Opacity:
		drawOpacity(c, g, lung, rng, texture)
	case Effusion:
		drawEffusion(c, g, lung, rng)
	}

	pix := make([]uint16, size*size)
	for i, v := range c.v {
		x, y := float64(i%size)/n-0.5, float64(i/size)/n-0.5
		v = gain*(v+gradX*x+gradY*y) + noiseSigma*noise.NormFloat64()
		pix[i] = uint16(math.Round(MaxValue * min(max(v, 0), 1)))
	}
	return pix, g
}

// anatomy draws the jittered geometry of one chest.
func anatomy(rng *rand.Rand, n float64) geometry {
	jitter := func(sd float64) float64 { return sd * rng.NormFloat64() }
	s := n * (1 + jitter(0.04))
	cx, cy := n*(0.5+jitter(0.015)), n*(0.5+jitter(0.015))
	var g geometry
	g.body = ellipse{cx, cy + 0.05*s, 0.46 * s, 0.55 * s}
	for i, side := range []float64{-1, 1} {
		g.lungs[i] = ellipse{
			cx: cx + side*(0.175+jitter(0.008))*s, cy: cy - 0.01*s,
			rx: (0.145 + jitter(0.006)) * s, ry: (0.33 + jitter(0.01)) * s,
		}
	}
	g.mediastinum = ellipse{cx, cy - 0.02*s, 0.075 * s, 0.36 * s}
	// The heart sits low and to the patient's left (the image's right).
	g.heart = ellipse{cx + (0.05+jitter(0.01))*s, cy + 0.16*s, (0.16 + jitter(0.01)) * s, (0.13 + jitter(0.008)) * s}
	return g
}

// drawRibs adds curved posterior ribs across each lung: arcs leaving the
// spine and bending down laterally, most visible over the lung.
func drawRibs(c *canvas, g geometry, lung *canvas, rng *rand.Rand) {
	n := float64(c.n)
	ribs := newCanvas(c.n)
	for _, l := range g.lungs {
		side := math.Copysign(1, l.cx-g.mediastinum.cx)
		top := l.cy - l.ry*1.05
		gap := 2 * l.ry / 11
		for k := range 10 {
			y0 := top + float64(k)*gap + 0.004*n*rng.NormFloat64()
			bend := (1.1 + 0.4*rng.Float64()) / n // curvature, per pixel
			x0 := g.mediastinum.cx + side*0.02*n
			x1 := l.cx + side*l.rx*1.15
			ribs.addCurve(x0, x1, func(x float64) float64 {
				d := x - x0
				return y0 + bend*d*d
			}, 0.011*n, ribAdd)
		}
	}
	for i, v := range ribs.v {
		c.v[i] += v * (0.35 + 0.65*lung.v[i])
	}
}

// drawClavicles adds two bright bars across the top of the lungs.
func drawClavicles(c *canvas, g geometry, rng *rand.Rand) {
	n := float64(c.n)
	for _, l := range g.lungs {
		side := math.Copysign(1, l.cx-g.mediastinum.cx)
		x0 := g.mediastinum.cx + side*0.03*n
		x1 := l.cx + side*l.rx*1.3
		y0 := l.cy - l.ry*0.98
		slope := (0.12 + 0.06*rng.Float64()) * -1
		c.addCurve(min(x0, x1), max(x0, x1), func(x float64) float64 {
			return y0 + slope*math.Abs(x-x0)
		}, 0.016*n, clavicleAdd)
	}
}

// lungPoint draws a point inside lung l, at least margin (in radius units)
// inside its edge and away from the mediastinum, which would hide a lesion.
func lungPoint(rng *rand.Rand, g geometry, l ellipse, margin float64) (float64, float64) {
	lateral := math.Copysign(1, l.cx-g.mediastinum.cx)
	for {
		x, y := 2*rng.Float64()-1, 2*rng.Float64()-1
		if math.Hypot(x, y) < 1-margin && x*lateral > -0.25 {
			return l.cx + x*l.rx, l.cy + y*l.ry
		}
	}
}

// drawNodules adds one to three round blobs of radius 3 to 8% of the
// image, inside a lung.
func drawNodules(c *canvas, g geometry, lung *canvas, rng *rand.Rand) {
	n := float64(c.n)
	count := 1 + rng.IntN(3)
	l := g.lungs[rng.IntN(2)]
	for range count {
		r := n * (0.03 + 0.05*rng.Float64())
		x, y := lungPoint(rng, g, l, 0.45)
		c.addBlob(x, y, r, noduleAdd, lung)
	}
}

// drawOpacity adds a larger, diffuse, textured consolidation in a lung.
func drawOpacity(c *canvas, g geometry, lung *canvas, rng *rand.Rand, texture *valueNoise) {
	n := float64(c.n)
	l := g.lungs[rng.IntN(2)]
	x, y := lungPoint(rng, g, l, 0.5)
	e := ellipse{x, y, n * (0.08 + 0.05*rng.Float64()), n * (0.10 + 0.06*rng.Float64())}
	c.each(e, 1.6, func(i int, px, py float64) {
		r := e.r(px, py)
		w := math.Exp(-2 * r * r) // soft, no hard edge
		t := 0.7 + 0.6*texture.at(px/n*3, py/n*3)
		c.v[i] += opacityAdd * w * t * lung.v[i]
	})
}

// drawEffusion fills the base of a lung with fluid up to a level that
// rises laterally (a meniscus), blunting the costophrenic angle.
func drawEffusion(c *canvas, g geometry, lung *canvas, rng *rand.Rand) {
	l := g.lungs[rng.IntN(2)]
	depth := l.ry * (0.4 + 0.25*rng.Float64()) // height of fluid at the lung's middle
	bottom := l.cy + l.ry
	soft := 0.01 * float64(c.n)
	box := ellipse{l.cx, l.cy, l.rx * 1.1, l.ry * 1.1}
	c.each(box, 1, func(i int, px, py float64) {
		u := (px - l.cx) / l.rx
		level := bottom - depth - 0.6*depth*u*u // higher at the sides
		w := 1 / (1 + math.Exp(-(py-level)/soft))
		c.v[i] += fluidAdd * w * lung.v[i]
	})
}

// ToImage converts generated pixels to a sentinel.Image in [0,1].
func ToImage(pix []uint16, size int) sentinel.Image {
	img := sentinel.NewImage(size, size)
	for i := range img.Pix {
		if i < len(pix) {
			img.Pix[i] = float32(float64(pix[i]) / MaxValue)
		}
	}
	return img
}

// NewUID returns a fresh UID under the 2.25 root from rng (deterministic
// for a seed): a version 4 UUID from 128 random bits, written as a decimal
// integer (PS3.5 B.2).
func NewUID(rng *rand.Rand) string {
	hi, lo := rng.Uint64(), rng.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // RFC 4122 variant
	v := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
	return "2.25." + v.Or(v, new(big.Int).SetUint64(lo)).String()
}
