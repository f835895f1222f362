package dicomout

import (
	"image"
	"image/color"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The burned-in text uses the 7×13 bitmap face, enlarged by whole factors
// so that it stays crisp: a scalable font would need a font file and a
// rasteriser for a few lines of ASCII.
var face = basicfont.Face7x13

// glyphHeight is the height of a line of the face at scale 1.
const glyphHeight = 13

// textWidth is the width of s at scale 1.
func textWidth(s string) int { return font.MeasureString(face, s).Ceil() }

// mask returns s drawn at scale 1 as coverage values.
func mask(s string) *image.Alpha {
	m := image.NewAlpha(image.Rect(0, 0, max(1, textWidth(s)), glyphHeight))
	d := font.Drawer{Dst: m, Src: image.Opaque, Face: face, Dot: fixed.P(0, face.Ascent)}
	d.DrawString(s)
	return m
}

// drawText draws s with its top left corner at (x, y), each font pixel a
// k×k block of colour c, clipped to img.
func drawText(img *image.RGBA, x, y, k int, s string, c color.RGBA) {
	m := mask(s)
	b := m.Bounds()
	for my := 0; my < b.Dy(); my++ {
		for mx := 0; mx < b.Dx(); mx++ {
			a := m.AlphaAt(mx, my).A
			if a == 0 {
				continue
			}
			r := image.Rect(x+mx*k, y+my*k, x+(mx+1)*k, y+(my+1)*k).Intersect(img.Bounds())
			for py := r.Min.Y; py < r.Max.Y; py++ {
				for px := r.Min.X; px < r.Max.X; px++ {
					blend(img, px, py, c, a)
				}
			}
		}
	}
}

// blend mixes c into the pixel at (x, y) with coverage a.
func blend(img *image.RGBA, x, y int, c color.RGBA, a uint8) {
	i := img.PixOffset(x, y)
	p := img.Pix[i : i+3]
	f := uint32(a)
	p[0] = uint8((uint32(p[0])*(255-f) + uint32(c.R)*f) / 255)
	p[1] = uint8((uint32(p[1])*(255-f) + uint32(c.G)*f) / 255)
	p[2] = uint8((uint32(p[2])*(255-f) + uint32(c.B)*f) / 255)
}
