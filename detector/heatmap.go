package detector

import (
	"math"
	"slices"

	"github.com/sentinel-pacs/sentinel"
)

// A score's heatmap (sentinel.Score.Heatmap) blends the components' maps
// as scoring made them: the pixel memory's is constant over each patch,
// so at the default settings the blend is a grid of 8×8 blocks, and every
// pixel of it carries the floor of distance that even a normal patch has
// to its nearest training patch, borders, collimation and burned-in
// letters included. FocusHeatmap turns it into the map that is drawn:
// smooth, zero outside the body and on burned-in markers, and zero where
// the film is no more unusual than its own typical patch.

// HeatmapOptions says how FocusHeatmapWith derives the drawn map; the zero
// value leaves the map as scoring made it.
type HeatmapOptions struct {
	// Blur is the standard deviation, in heatmap pixels, of the Gaussian
	// that smooths the map (0: none). It should be about half the pixel
	// memory's patch stride, which removes the patch grid's steps.
	Blur float64
	// Mask multiplies the map by BodyMask of the film.
	Mask bool
	// Floor subtracts the map's median over the mask (the whole map
	// without Mask), so that only evidence above the film's own typical
	// level remains.
	Floor bool
}

// DefaultHeatmap are the options FocusHeatmap uses, chosen on cxr8 dev
// (docs/heatmap.md).
var DefaultHeatmap = HeatmapOptions{Blur: 3, Mask: true, Floor: true}

// FocusHeatmap returns heat, a score's heatmap, derived for drawing with
// DefaultHeatmap; film is the scored film at any size.
func FocusHeatmap(heat, film sentinel.Image) sentinel.Image {
	return FocusHeatmapWith(heat, film, DefaultHeatmap)
}

// FocusHeatmapWith returns heat, a score's heatmap, smoothed, masked and
// floored as opt says, at heat's size, values in [0, 1] on heat's scale.
// film is the scored film at any size; it is only read with opt.Mask. A
// heatmap or film whose pixels do not match its size gives an empty image.
func FocusHeatmapWith(heat, film sentinel.Image, opt HeatmapOptions) sentinel.Image {
	w, h := heat.Width, heat.Height
	if w < 1 || h < 1 || len(heat.Pix) != w*h {
		return sentinel.Image{}
	}
	v := make([]float64, w*h)
	for i, p := range heat.Pix {
		if p > 0 { // NaN too
			v[i] = float64(min(p, 1))
		}
	}
	mask := make([]float32, w*h)
	for i := range mask {
		mask[i] = 1
	}
	if opt.Mask {
		if film.Width < 1 || film.Height < 1 || len(film.Pix) != film.Width*film.Height {
			return sentinel.Image{}
		}
		mask = BodyMask(film, w, h)
	}
	if opt.Floor {
		var in []float64
		for i, m := range mask {
			if m > 0 {
				in = append(in, v[i])
			}
		}
		if len(in) > 0 {
			slices.Sort(in)
			floor := in[len(in)/2]
			for i := range v {
				v[i] = max(0, v[i]-floor)
			}
		}
	}
	// The mask applies before the blur, so that nothing outside it
	// spreads in, and after it, so that nothing spreads out.
	for i := range v {
		v[i] *= float64(mask[i])
	}
	if opt.Blur > 0 {
		v = blurRect(v, w, h, opt.Blur)
	}
	out := sentinel.NewImage(w, h)
	for i := range v {
		out.Pix[i] = float32(min(max(v[i]*float64(mask[i]), 0), 1))
	}
	return out
}

// Mask settings, in units of the mask's side: the band at every edge left
// out, how far burned-in markers are grown, and the largest bright
// component counted as a marker.
const (
	maskBorder     = 1.0 / 10
	markerGrow     = 1.0 / 32
	markerMaxArea  = 0.02
	markerLevel    = 0.93 // of the film's brightest value, after the border band
	backgroundFrac = 0.45 // of the body's median brightness
)

// markerScale is how many times finer than the mask burned-in markers are
// looked for (at most the film's own size): letters a pixel or two thick
// at the model's input size fade below saturation when averaged down to it.
const markerScale = 4

// BodyMask returns a w×h mask for a film at any size: 1 where a heatmap
// may show evidence and 0 where it may not:
//   - the border band, 1/10 of the side at every edge, where collimation
//     edges, film labels and the detector's own padding sit;
//   - the background: pixels darker than backgroundFrac of the median of
//     the rest that connect to the border band through such pixels, air
//     outside the body (the lungs are dark too, but the body wall and
//     ribs enclose them);
//   - burned-in markers: near-saturated components (at least markerLevel
//     of the film's brightest value) smaller than 2% of the film, found at
//     markerScale times the mask's size and grown by 1/32 of its side,
//     which letters such as L, R and PORTABLE are and bone is not (bone is
//     not near saturation over so small an area on its own, and a large
//     saturated area is left alone).
//
// A film whose pixels do not match its size gives a mask of zeros. It
// costs a few passes over the film at the two sizes: under a millisecond
// for a 64×64 mask.
func BodyMask(film sentinel.Image, w, h int) []float32 {
	if w < 1 || h < 1 {
		return nil
	}
	n := w * h
	mask := make([]float32, n)
	if film.Width < 1 || film.Height < 1 || len(film.Pix) != film.Width*film.Height {
		return mask
	}
	coarse := areaResize(film, w, h)
	bx, by := max(1, int(math.Round(float64(w)*maskBorder))), max(1, int(math.Round(float64(h)*maskBorder)))
	border := func(x, y int) bool { return x < bx || y < by || x >= w-bx || y >= h-by }
	var inner []float32
	for y := range h {
		for x := range w {
			if !border(x, y) {
				p := coarse.Pix[y*w+x]
				if !(p > 0) { // NaN too
					p = 0
				}
				inner = append(inner, p)
			}
		}
	}
	if len(inner) == 0 {
		return mask
	}
	slices.Sort(inner)
	median := inner[len(inner)/2]
	for y := range h {
		for x := range w {
			if !border(x, y) {
				mask[y*w+x] = 1
			}
		}
	}

	// Background: dark pixels reached from the border band.
	dark := func(i int) bool { return coarse.Pix[i] < backgroundFrac*median }
	seen := make([]bool, n)
	var stack []int
	for y := range h {
		for x := range w {
			if border(x, y) {
				i := y*w + x
				seen[i] = true
				stack = append(stack, i)
			}
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		x, y := i%w, i/w
		for _, d := range [4][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
			xx, yy := x+d[0], y+d[1]
			if xx < 0 || yy < 0 || xx >= w || yy >= h {
				continue
			}
			j := yy*w + xx
			if seen[j] || !dark(j) {
				continue
			}
			seen[j] = true
			mask[j] = 0
			stack = append(stack, j)
		}
	}

	// Burned-in markers: small near-saturated components, anywhere,
	// found on a finer copy of the film.
	fine := areaResize(film, min(film.Width, markerScale*w), min(film.Height, markerScale*h))
	fw, fh := fine.Width, fine.Height
	var peak float32
	for _, p := range fine.Pix {
		if p > peak { // not NaN
			peak = p
		}
	}
	if !(peak > 0) {
		return mask
	}
	level := markerLevel * peak
	bright := func(i int) bool { return fine.Pix[i] >= level }
	label := make([]bool, fw*fh)
	grow := max(1, int(math.Round(float64(min(w, h))*markerGrow)))
	maxArea := int(markerMaxArea * float64(fw*fh))
	var comp []int
	for s := range fw * fh {
		if label[s] || !bright(s) {
			continue
		}
		comp = append(comp[:0], s)
		label[s] = true
		for k := 0; k < len(comp); k++ {
			x, y := comp[k]%fw, comp[k]/fw
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					xx, yy := x+dx, y+dy
					if xx < 0 || yy < 0 || xx >= fw || yy >= fh {
						continue
					}
					j := yy*fw + xx
					if !label[j] && bright(j) {
						label[j] = true
						comp = append(comp, j)
					}
				}
			}
		}
		if len(comp) > maxArea {
			continue
		}
		for _, i := range comp {
			x, y := (i%fw)*w/fw, (i/fw)*h/fh
			for yy := max(0, y-grow); yy <= min(h-1, y+grow); yy++ {
				for xx := max(0, x-grow); xx <= min(w-1, x+grow); xx++ {
					mask[yy*w+xx] = 0
				}
			}
		}
	}
	return mask
}

// areaResize returns m resized to w×h by averaging the source pixels each
// target pixel covers (nearest source pixel when enlarging).
func areaResize(m sentinel.Image, w, h int) sentinel.Image {
	if m.Width == w && m.Height == h {
		return m
	}
	out := sentinel.NewImage(w, h)
	for y := range h {
		y0 := y * m.Height / h
		y1 := max(y0+1, (y+1)*m.Height/h)
		for x := range w {
			x0 := x * m.Width / w
			x1 := max(x0+1, (x+1)*m.Width/w)
			var s float64
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					s += float64(m.Pix[yy*m.Width+xx])
				}
			}
			out.Pix[y*w+x] = float32(s / float64((y1-y0)*(x1-x0)))
		}
	}
	return out
}

// blurRect smooths a w×h map with a Gaussian of standard deviation sigma
// pixels, separably, truncated at 3σ and renormalised at the borders so
// that a constant map stays constant.
func blurRect(x []float64, w, h int, sigma float64) []float64 {
	r := max(1, int(math.Ceil(3*sigma)))
	kern := make([]float64, 2*r+1)
	for i := range kern {
		t := float64(i - r)
		kern[i] = math.Exp(-t * t / (2 * sigma * sigma))
	}
	tmp := make([]float64, len(x))
	for y := range h {
		for xx := range w {
			var s, sw float64
			for i, k := range kern {
				if c := xx + i - r; c >= 0 && c < w {
					s += k * x[y*w+c]
					sw += k
				}
			}
			tmp[y*w+xx] = s / sw
		}
	}
	out := make([]float64, len(x))
	for y := range h {
		for xx := range w {
			var s, sw float64
			for i, k := range kern {
				if c := y + i - r; c >= 0 && c < h {
					s += k * tmp[c*w+xx]
					sw += k
				}
			}
			out[y*w+xx] = s / sw
		}
	}
	return out
}
