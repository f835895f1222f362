package dicomout

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/sentinel-pacs/sentinel"
)

// The heatmap is drawn on one colour scale, in levels of evidence
// relative to the decision threshold: level 1 is the evidence of a film
// scored at the threshold, so a film's colours say how close it came to
// being flagged. HeatLevels turns a score's heatmap into levels (the
// film's hottest pixel gets its score divided by the threshold, the
// others in proportion); compose colours a level map over the film:
//
//   - at or below the colour start (DefaultHeatThreshold, 0.5 × the
//     threshold's evidence, unless the caller gives another): the film,
//     untouched;
//   - above it up to 1: translucent yellow turning orange and more opaque
//     as the level rises;
//   - above 1 (the film scored above the threshold, and this is where its
//     evidence is): red, the "hot" colour, which nothing else uses.
//
// So a film that is not flagged shows no red, and a map whose values stay
// within [0, 1] (a heatmap not made into levels) shows no red either. The
// legend shows the same scale, with the threshold marked.

// DefaultHeatThreshold is where the colour starts on the level scale when
// the caller gives no other: half the threshold's level of evidence.
const DefaultHeatThreshold = 0.5

// MaxSide bounds the heatmap picture: a film longer than this on a side is
// shrunk to fit by area averaging (dicomio.Resample), keeping its aspect.
const MaxSide = 4096

// Overlay colours: from translucent yellow just above the colour start to
// a more opaque orange at the threshold's level; red above it. The film
// stays visible under all of them.
const (
	alphaLow  = 0.45
	alphaHigh = 0.65
	alphaHot  = 0.75
	greenLow  = 0.9 // yellow
	greenHigh = 0.5 // orange
	maxLevel  = 1e6 // levels are capped here, so that no value overflows
	hotLevel  = 1.0 // above this level the colour is red
)

// HeatLevels returns heat, a heatmap with values in [0,1] (a score's, or
// one derived from it for drawing), as levels of evidence relative to the
// threshold: each pixel's share of the map's maximum times score ÷
// threshold. A film scored at or below a positive threshold gets levels of
// at most 1, so no red; one above it gets its hottest region in red,
// more of it the further above. With a threshold that is not positive
// the ratio means nothing: a film at or below it gets no colour, one above
// it the level 2 at its maximum. NaN scores and maps give zeros.
func HeatLevels(heat sentinel.Image, score, threshold float64) sentinel.Image {
	out := sentinel.NewImage(heat.Width, heat.Height)
	if len(heat.Pix) != heat.Width*heat.Height {
		return sentinel.Image{}
	}
	var peak float32
	for _, v := range heat.Pix {
		if v > peak {
			peak = v
		}
	}
	e := evidence(score, threshold)
	if !(peak > 0) || !(e > 0) {
		return out
	}
	for i, v := range heat.Pix {
		if v > 0 {
			out.Pix[i] = float32(min(float64(min(v, peak)/peak)*e, maxLevel))
		}
	}
	return out
}

// evidence returns the level of a film's hottest pixel: its score ÷ the
// threshold, capped at 1 when the score is not above it.
func evidence(score, threshold float64) float64 {
	switch {
	case math.IsNaN(score) || math.IsNaN(threshold):
		return 0
	case !(threshold > 0):
		if score > threshold {
			return 2
		}
		return 0
	}
	e := min(max(score/threshold, 0), maxLevel)
	if score <= threshold {
		e = min(e, hotLevel)
	}
	return e
}

// heatColour returns the overlay colour and opacity of level v for a
// colour start t in (0,1), and false for a level that is not coloured.
// The comparisons are made in the heatmap's own precision (float32), so
// that a value stored as the colour start counts as at it, not above.
func heatColour(v, t float64) (rgb [3]float64, alpha float64, on bool) {
	if !(float32(v) > float32(t)) {
		return rgb, 0, false
	}
	if float32(v) > hotLevel {
		return [3]float64{1, 0, 0}, alphaHot, true
	}
	s := min((v-t)/(hotLevel-t), 1)
	return [3]float64{1, greenLow + (greenHigh-greenLow)*s, 0}, alphaLow + (alphaHigh-alphaLow)*s, true
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

// level returns a heat level as drawn: NaN and negatives as 0.
func level(v float32) float64 {
	if !(v > 0) {
		return 0
	}
	return min(float64(v), maxLevel)
}

// axis holds, for each output coordinate, the four source coordinates a
// cubic B-spline sample mixes and their weights.
type axis struct {
	i [][4]int
	w [][4]float64
}

// splineAxis maps n output pixels onto src input pixels, pixel centres
// aligned, with the cubic B-spline: smooth (its curve has no creases where
// bilinear's has) and a weighted mean with positive weights, so that a
// resampled map never exceeds its largest value, nor a level map crosses
// into red where its samples do not. It blurs lightly, by about half a
// source pixel.
func splineAxis(n, src int) axis {
	a := axis{i: make([][4]int, n), w: make([][4]float64, n)}
	for k := range n {
		p := (float64(k)+0.5)*float64(src)/float64(n) - 0.5
		i0 := int(math.Floor(p))
		t := p - float64(i0)
		a.w[k] = [4]float64{
			(1 - t) * (1 - t) * (1 - t) / 6,
			(3*t*t*t - 6*t*t + 4) / 6,
			(-3*t*t*t + 3*t*t + 3*t + 1) / 6,
			t * t * t / 6,
		}
		for j := range 4 {
			a.i[k][j] = min(max(i0-1+j, 0), src-1)
		}
	}
	return a
}

// resampleHeat returns heat resampled to w×h with the cubic B-spline.
func resampleHeat(heat sentinel.Image, w, h int) []float64 {
	ax, ay := splineAxis(w, heat.Width), splineAxis(h, heat.Height)
	rows := make([]float64, heat.Height*w) // horizontal pass
	for y := range heat.Height {
		src := heat.Pix[y*heat.Width : (y+1)*heat.Width]
		for x := range w {
			var v float64
			for j, i := range ax.i[x] {
				v += ax.w[x][j] * level(src[i])
			}
			rows[y*w+x] = v
		}
	}
	out := make([]float64, w*h)
	for y := range h {
		for j, i := range ay.i[y] {
			wy := ay.w[y][j]
			src := rows[i*w : (i+1)*w]
			dst := out[y*w : (y+1)*w]
			for x, v := range src {
				dst[x] += wy * v
			}
		}
	}
	return out
}

// compose draws the film in grey with the level map heat, resampled
// smoothly to the film's size, blended over it in colour wherever it
// exceeds the colour start t (see heatColour).
func compose(film, heat sentinel.Image, t float64) *image.RGBA {
	w, h := film.Width, film.Height
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	lv := resampleHeat(heat, w, h)
	for y := range h {
		row := out.Pix[y*out.Stride:][:4*w]
		fr, lr := film.Pix[y*w:][:w], lv[y*w:][:w]
		for x, f := range fr {
			g := float64(clamp01(f))
			p := row[4*x : 4*x+4 : 4*x+4]
			if c, a, on := heatColour(lr[x], t); on {
				p[0], p[1], p[2] = byte8(g*(1-a)+c[0]*a), byte8(g*(1-a)+c[1]*a), byte8(g*(1-a)+c[2]*a)
			} else {
				// Grey: g is in 0 … 1 already, so byte8 reduces to this.
				v := uint8(g*255 + 0.5)
				p[0], p[1], p[2] = v, v, v
			}
			p[3] = 255
		}
	}
	return out
}

// Overlay draws film in grey with levels, a level map from HeatLevels at
// any size, resampled smoothly to the film's size and coloured on the
// scale the Secondary Capture uses (colour from DefaultHeatThreshold, red
// above the threshold's level). The legend, the same as the Secondary
// Capture's, is drawn in a black strip to the right of the film, so that
// it hides none of it; lines of text, if any, go on a dark panel at the
// film's bottom left. Images whose pixels do not match their size give an
// error.
func Overlay(film, levels sentinel.Image, lines []string) (*image.RGBA, error) {
	if err := checkImage("film", film); err != nil {
		return nil, fmt.Errorf("dicomout: overlay: %w", err)
	}
	if err := checkImage("heatmap", levels); err != nil {
		return nil, fmt.Errorf("dicomout: overlay: %w", err)
	}
	pic := compose(film, levels, DefaultHeatThreshold)
	k := textScale(min(film.Width, film.Height))
	strip := legendWidth(film.Width, k, DefaultHeatThreshold) + 3*k
	img := image.NewRGBA(image.Rect(0, 0, film.Width+strip, film.Height))
	for y := range film.Height {
		copy(img.Pix[y*img.Stride:], pic.Pix[y*pic.Stride:y*pic.Stride+4*film.Width])
		for i := 4 * film.Width; i < img.Stride; i += 4 {
			img.Pix[y*img.Stride+i+3] = 255
		}
	}
	if len(lines) > 0 {
		pad := 3 * k
		w, h := 0, 0
		for _, l := range lines {
			w = max(w, textWidth(l)*k)
			h += glyphHeight*k + k
		}
		panel := image.Rect(pad, film.Height-pad-h-2*pad, pad+w+2*pad, film.Height-pad).Intersect(pic.Bounds())
		darken(img, panel, 0.3)
		y := panel.Min.Y + pad
		for _, l := range lines {
			drawText(img, panel.Min.X+pad, y, k, l, color.RGBA{255, 255, 255, 255})
			y += glyphHeight*k + k
		}
	}
	legendIn(img, img.Bounds(), film.Width, k, DefaultHeatThreshold, image.Rectangle{})
	return img, nil
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

// legend draws the colour scale at the right edge, halfway down (or
// below the rectangle avoid when they would overlap): a bar of levels
// from 0 (bottom) to the threshold's level, in the colours the overlay
// gives over a mid grey, topped by a block of the red that marks evidence
// above the threshold; the threshold is marked by a white line and the
// word, the colour start t (as a share of the threshold's level) and 0 by
// their values.
func legend(img *image.RGBA, k int, t float64, avoid image.Rectangle) {
	legendIn(img, img.Bounds(), img.Bounds().Dx(), k, t, avoid)
}

// legendLabels are the legend's labels, from the top: the red block, the
// threshold's line, the colour start and the bottom of the bar.
func legendLabels(t float64) []string {
	return []string{"above", "threshold", fmt.Sprintf("%.2g", t), "0"}
}

// legendWidth returns the width of the legend's panel on a picture w
// pixels wide, text scale k.
func legendWidth(w, k int, t float64) int {
	labelW := 0
	for _, l := range legendLabels(t) {
		labelW = max(labelW, textWidth(l)*k)
	}
	return max(6, w/40) + labelW + 4*3*k
}

// legendIn draws the legend at the right edge of b, halfway down, sized
// for a picture w pixels wide.
func legendIn(img *image.RGBA, b image.Rectangle, w, k int, t float64, avoid image.Rectangle) {
	pad, gh := 3*k, glyphHeight*k
	barW := max(6, w/40)
	barH := max(40, b.Dy()*2/5)
	labels := legendLabels(t)
	// The panel holds the red block and the bar, half a line of label
	// above and below them, and padding.
	hotH := max(2*gh, barH/5)
	panelW, extra := legendWidth(w, k, t), gh+4*pad+hotH
	x, top := b.Max.X-pad-panelW, b.Min.Y+b.Dy()/2-(barH+extra)/2
	if r := image.Rect(x, top, x+panelW, top+barH+extra); r.Overlaps(avoid) {
		if avoid.Min.Y > b.Min.Y+b.Dy()/2 { // a panel at the bottom: go above it
			top = max(pad, avoid.Min.Y-pad-barH-extra)
		} else {
			top = avoid.Max.Y + pad
		}
		barH = max(20, min(barH, b.Max.Y-pad-top-extra))
	}
	darken(img, image.Rect(x, top, x+panelW, top+barH+extra), 0.3)
	x1 := x + panelW - pad
	x0 := x1 - barW
	yh := top + 2*pad + gh/2 // top of the red block
	y0 := yh + hotH          // the threshold's level
	y1 := y0 + barH
	paint := func(y int, v float64) {
		rgb := [3]float64{0.5, 0.5, 0.5}
		if c, a, on := heatColour(v, t); on {
			for i := range rgb {
				rgb[i] = rgb[i]*(1-a) + c[i]*a
			}
		}
		fill(img, image.Rect(x0, y, x1, y+1), color.RGBA{byte8(rgb[0]), byte8(rgb[1]), byte8(rgb[2]), 255})
	}
	for y := yh; y < y0; y++ {
		paint(y, 2*hotLevel)
	}
	for y := y0; y < y1; y++ {
		paint(y, hotLevel*(1-float64(y-y0)/float64(max(1, barH-1))))
	}
	white := color.RGBA{255, 255, 255, 255}
	th := max(1, k/2)
	fill(img, image.Rect(x0-2*pad, y0-th, x1, y0+th), white)
	ty := y0 + int(math.Round((1-t/hotLevel)*float64(barH-1)))
	fill(img, image.Rect(x0-pad, ty, x0, ty+1), white)
	lx := x0 - 2*pad - k
	for i, y := range []int{(yh + y0) / 2, y0, ty, y1} {
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
