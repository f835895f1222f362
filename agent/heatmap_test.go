package agent

import (
	"image"
	"math"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// heatFilm returns a w×h synthetic chest film: a bright body between
// dark air at the sides, with a saturated marker letter at (mx, my) in
// relative coordinates.
func heatFilm(w, h int, mx, my float64) sentinel.Image {
	m := sentinel.NewImage(w, h)
	for y := range h {
		for x := range w {
			u := (float64(x) + 0.5) / float64(w)
			p := 0.55 + 0.05*math.Sin(float64(x)/7)*math.Cos(float64(y)/5)
			if u < 0.1 || u > 0.9 {
				p = 0.04
			}
			m.Pix[y*w+x] = float32(p)
		}
	}
	s := max(3, w/40)
	x0, y0 := int(mx*float64(w)), int(my*float64(h))
	for y := y0; y < y0+s; y++ {
		for x := x0; x < x0+s; x++ {
			if x-x0 < 3 || y-y0 < 3 || y0+s-1-y < 3 {
				m.Pix[y*w+x] = 1
			}
		}
	}
	return m
}

// hotAt returns a side×side heatmap: 0.3 everywhere, 0.6 in the 8×8
// block holding (0.5, 0.5), and 1 in the 5×5 pixels around (u, v) (where
// a burned-in marker is): unmasked, the marker would be the hottest.
func hotAt(side int, u, v float64) sentinel.Image {
	m := sentinel.NewImage(side, side)
	pu, pv := int(u*float64(side)), int(v*float64(side))
	c := side / 16
	for y := range side {
		for x := range side {
			switch {
			case abs(x-pu) <= 2 && abs(y-pv) <= 2:
				m.Pix[y*side+x] = 1
			case x/8 == c && y/8 == c:
				m.Pix[y*side+x] = 0.6
			default:
				m.Pix[y*side+x] = 0.3
			}
		}
	}
	return m
}

func abs(v int) int { return max(v, -v) }

func redAt(c [4]uint8) bool {
	r, g, b := int(c[0]), int(c[1]), int(c[2])
	return r-b >= 40 && 4*(g-b) <= r-b
}

func TestOverlayAtTheFilmsSizeWithLegendAndThresholdColours(t *testing.T) {
	film := heatFilm(400, 300, 0.24, 0.18)
	heat := hotAt(64, 0.25, 0.2) // hottest at the marker and the centre
	for _, c := range []struct {
		score, threshold float64
		red              bool
	}{{2.5, 1.2, true}, {1.1, 1.2, false}, {-0.5, 1.2, false}} {
		img := overlay(film, heat, c.score, c.threshold)
		b := img.Bounds()
		if b.Dy() != film.Height || b.Dx() <= film.Width || b.Dx() > film.Width+film.Width/2 {
			t.Fatalf("picture %v for a %d×%d film", b, film.Width, film.Height)
		}
		var onFilm, inLegend, nearMarker int
		for y := range b.Dy() {
			for x := range b.Dx() {
				p := img.RGBAAt(x, y)
				if !redAt([4]uint8{p.R, p.G, p.B, p.A}) {
					continue
				}
				switch {
				case x >= film.Width:
					inLegend++
				case math.Abs(float64(x)-0.25*400) < 25 && math.Abs(float64(y)-0.2*300) < 25:
					nearMarker++
				default:
					onFilm++
				}
			}
		}
		if inLegend < 50 {
			t.Errorf("score %v: %d red pixels in the legend", c.score, inLegend)
		}
		if c.red != (onFilm > 0) {
			t.Errorf("score %v threshold %v: %d red pixels on the film", c.score, c.threshold, onFilm)
		}
		if nearMarker > 0 {
			t.Errorf("score %v: %d red pixels around the burned-in marker", c.score, nearMarker)
		}
	}
}

// TestOverlayShrinksLargeFilms checks the picture's bound and that a
// heatmap that does not match its size draws the film alone.
func TestOverlayShrinksLargeFilms(t *testing.T) {
	film := heatFilm(1200, 900, 0.5, 0.05)
	img := overlay(film, hotAt(64, 0.5, 0.5), 3, 1)
	if b := img.Bounds(); b.Dy() != 384 || b.Dx() <= overlayMax || b.Dx() > overlayMax+overlayMax/2 {
		t.Fatalf("picture %v for a 1200×900 film", b)
	}
	bad := overlay(film, sentinel.Image{Width: 8, Height: 8, Pix: make([]float32, 5)}, 3, 1)
	if b := bad.Bounds(); b.Dy() != 384 {
		t.Fatalf("picture %v", b)
	}
	if n := countRed(bad, image.Rect(0, 0, overlayMax, 384)); n != 0 {
		t.Errorf("%d red pixels on a film drawn without heat", n)
	}
	if b := overlay(sentinel.Image{Width: 4, Height: 4}, hotAt(64, 0.5, 0.5), 3, 1).Bounds(); b.Dx() != 4 || b.Dy() != 4 {
		t.Errorf("a film without pixels gave %v", b)
	}
}

func countRed(img *image.RGBA, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p := img.RGBAAt(x, y)
			if redAt([4]uint8{p.R, p.G, p.B, p.A}) {
				n++
			}
		}
	}
	return n
}
