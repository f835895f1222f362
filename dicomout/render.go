package dicomout

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/sentinel-pacs/sentinel"
)

// DefaultHeatThreshold is where the colour starts on the heatmap's [0,1]
// scale when the caller gives no threshold: values at or below it are not
// coloured.
const DefaultHeatThreshold = 0.5

// MaxSide bounds the heatmap picture: a film longer than this on a side is
// shrunk to fit by area averaging (dicomio.Resample), keeping its aspect.
const MaxSide = 4096

// Overlay colours: the heat runs from red just above the threshold to
// yellow at 1, more opaque as it rises, so that the film stays visible
// under it.
const (
	alphaLow  = 0.30
	alphaHigh = 0.70
)

// heatColour returns the overlay colour and opacity of heat value v for a
// threshold t in (0,1), and false for a value that is not coloured. The
// comparison is made in the heatmap's own precision (float32), so that a
// value stored as the threshold counts as at it, not above.
func heatColour(v, t float64) (rgb [3]float64, alpha float64, on bool) {
	if !(float32(v) > float32(t)) {
		return rgb, 0, false
	}
	s := min((v-t)/(1-t), 1)
	return [3]float64{1, 0.9 * s, 0}, alphaLow + (alphaHigh-alphaLow)*s, true
}

// heatThresholdOrDefault returns t, or DefaultHeatThreshold when t is not
// strictly between 0 and 1 (0 means "not given").
func heatThresholdOrDefault(t float64) float64 {
	if !(t > 0 && t < 1) {
		return DefaultHeatThreshold
	}
	return t
}

// checkImage reports an image whose pixels do not match its size.
func checkImage(name string, m sentinel.Image) error {
	if m.Width < 1 || m.Height < 1 || len(m.Pix) != m.Width*m.Height {
		return fmt.Errorf("%s: %d pixels for a %d×%d image", name, len(m.Pix), m.Width, m.Height)
	}
	return nil
}

// fitSize returns the size of a w×h picture shrunk to at most MaxSide on
// its longer side.
func fitSize(w, h int) (int, int) {
	if w <= MaxSide && h <= MaxSide {
		return w, h
	}
	if w >= h {
		return MaxSide, max(1, int(math.Round(float64(h)*MaxSide/float64(w))))
	}
	return max(1, int(math.Round(float64(w)*MaxSide/float64(h)))), MaxSide
}

func clamp01(v float32) float32 {
	if !(v > 0) { // NaN too
		return 0
	}
	return min(v, 1)
}

// axis holds, for each output coordinate, the two source coordinates a
// bilinear sample mixes and the weight of the second.
type axis struct {
	i0, i1 []int
	f      []float64
}

// bilinearAxis maps n output pixels onto src input pixels, pixel centres
// aligned.
func bilinearAxis(n, src int) axis {
	a := axis{i0: make([]int, n), i1: make([]int, n), f: make([]float64, n)}
	for i := range n {
		p := (float64(i)+0.5)*float64(src)/float64(n) - 0.5
		p = min(max(p, 0), float64(src-1))
		i0 := int(p)
		a.i0[i], a.i1[i], a.f[i] = i0, min(i0+1, src-1), p-float64(i0)
	}
	return a
}

// compose draws the film in grey with the heatmap, resampled bilinearly to
// the film's size, blended over it in colour wherever it exceeds t.
func compose(film, heat sentinel.Image, t float64) *image.RGBA {
	w, h := film.Width, film.Height
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	ax, ay := bilinearAxis(w, heat.Width), bilinearAxis(h, heat.Height)
	for y := range h {
		r0, r1, fy := ay.i0[y]*heat.Width, ay.i1[y]*heat.Width, ay.f[y]
		row := out.Pix[y*out.Stride:]
		for x := range w {
			g := float64(clamp01(film.Pix[y*w+x]))
			x0, x1, fx := ax.i0[x], ax.i1[x], ax.f[x]
			top := float64(clamp01(heat.Pix[r0+x0]))*(1-fx) + float64(clamp01(heat.Pix[r0+x1]))*fx
			bot := float64(clamp01(heat.Pix[r1+x0]))*(1-fx) + float64(clamp01(heat.Pix[r1+x1]))*fx
			rgb := [3]float64{g, g, g}
			if c, a, on := heatColour(top*(1-fy)+bot*fy, t); on {
				for i := range rgb {
					rgb[i] = rgb[i]*(1-a) + c[i]*a
				}
			}
			p := row[4*x : 4*x+4]
			p[0], p[1], p[2], p[3] = byte8(rgb[0]), byte8(rgb[1]), byte8(rgb[2]), 255
		}
	}
	return out
}

func byte8(v float64) uint8 { return uint8(min(max(v, 0), 1)*255 + 0.5) }

// textScale is the integer factor the 7×13 bitmap font is enlarged by on a
// picture whose shorter side is n pixels: 1 up to 1199 pixels, 3 on a
// 2000-pixel film, 6 at 4096, so that the text keeps its size relative to
// the film.
func textScale(n int) int { return max(1, n/600) }

// annotate burns the text block and the legend into img.
func annotate(img *image.RGBA, t float64, lines []string) {
	b := img.Bounds()
	k := textScale(min(b.Dx(), b.Dy()))
	block := textBlock(img, k, lines)
	legend(img, k, t, block)
}

// textBlock draws, on a darkened panel at the top left, the warning in
// large letters (smaller on a film too narrow for them) and the lines
// under it, and returns the panel.
func textBlock(img *image.RGBA, k int, lines []string) image.Rectangle {
	pad := 4 * k
	title := "NOT FOR DIAGNOSTIC USE"
	tk := k + 1
	for tk > 1 && textWidth(title)*tk > img.Bounds().Dx()-4*pad {
		tk--
	}
	w := textWidth(title) * tk
	h := glyphHeight * tk
	for _, l := range lines {
		w = max(w, textWidth(l)*k)
		h += glyphHeight*k + k*3
	}
	panel := image.Rect(pad, pad, pad+w+2*pad, pad+h+2*pad).Intersect(img.Bounds())
	darken(img, panel, 0.3)
	x, y := panel.Min.X+pad, panel.Min.Y+pad
	drawText(img, x, y, tk, title, color.RGBA{255, 225, 0, 255})
	y += glyphHeight*tk + 3*k
	for _, l := range lines {
		drawText(img, x, y, k, l, color.RGBA{255, 255, 255, 255})
		y += glyphHeight*k + 3*k
	}
	return panel
}

// legend draws the colour scale at the right edge, halfway down (or below
// the text block when they would overlap): a bar from 0 (bottom) to 1
// (top) in the colours the overlay gives over a mid grey, its ends
// labelled, and the threshold marked by a line and its value.
func legend(img *image.RGBA, k int, t float64, avoid image.Rectangle) {
	b := img.Bounds()
	pad, gh := 4*k, glyphHeight*k
	barW := max(6, b.Dx()/40)
	barH := max(40, b.Dy()*2/5)
	labels := []string{"heat 1", fmt.Sprintf("threshold %.2f", t), "0"}
	labelW := 0
	for _, l := range labels {
		labelW = max(labelW, textWidth(l)*k)
	}
	// The panel holds the bar, half a line of label above and below it,
	// and padding.
	panelW, extra := barW+labelW+4*pad, gh+4*pad
	x, top := b.Max.X-pad-panelW, b.Dy()/2-(barH+extra)/2
	if image.Rect(x, top, x+panelW, top+barH+extra).Overlaps(avoid) {
		top = avoid.Max.Y + pad
		barH = max(20, min(barH, b.Max.Y-pad-top-extra))
	}
	darken(img, image.Rect(x, top, x+panelW, top+barH+extra), 0.3)
	x1 := x + panelW - pad
	x0 := x1 - barW
	y0 := top + 2*pad + gh/2
	y1 := y0 + barH
	for y := y0; y < y1; y++ {
		v := 1 - float64(y-y0)/float64(max(1, barH-1))
		rgb := [3]float64{0.5, 0.5, 0.5}
		if c, a, on := heatColour(v, t); on {
			for i := range rgb {
				rgb[i] = rgb[i]*(1-a) + c[i]*a
			}
		}
		fill(img, image.Rect(x0, y, x1, y+1), color.RGBA{byte8(rgb[0]), byte8(rgb[1]), byte8(rgb[2]), 255})
	}
	white := color.RGBA{255, 255, 255, 255}
	ty := y0 + int(math.Round((1-t)*float64(barH-1)))
	fill(img, image.Rect(x0-2*pad, ty-max(1, k/2), x1, ty+max(1, k/2)+1), white)
	lx := x0 - 3*pad - k
	for i, y := range []int{y0, ty, y1} {
		drawText(img, lx-textWidth(labels[i])*k, y-gh/2, k, labels[i], white)
	}
}

// darken scales the colour of the pixels in r by f, a translucent black
// panel that keeps text legible over any film.
func darken(img *image.RGBA, r image.Rectangle, f float64) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Pix[y*img.Stride:]
		for x := r.Min.X; x < r.Max.X; x++ {
			for i := 4 * x; i < 4*x+3; i++ {
				row[i] = uint8(float64(row[i])*f + 0.5)
			}
		}
	}
}

// fill paints r in c.
func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// rgbBytes returns the pixels of img as interleaved R, G, B bytes, row by
// row (Planar Configuration 0).
func rgbBytes(img *image.RGBA) []byte {
	b := img.Bounds()
	out := make([]byte, 0, 3*b.Dx()*b.Dy())
	for y := range b.Dy() {
		row := img.Pix[y*img.Stride:]
		for x := range b.Dx() {
			out = append(out, row[4*x], row[4*x+1], row[4*x+2])
		}
	}
	return out
}
