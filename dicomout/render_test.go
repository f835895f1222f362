package dicomout

import (
	"bytes"
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// isRed says whether an overlay pixel is in the red range: a saturated
// colour whose hue is within 15° of pure red. The overlay's colours below
// the threshold's level (yellow to orange, hue 30° to 54°) are not, and
// neither is any grey.
func isRed(c [3]uint8) bool {
	r, g, b := int(c[0]), int(c[1]), int(c[2])
	return r-b >= 40 && 4*(g-b) <= r-b
}

func redPixels(img *image.RGBA, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := img.RGBAAt(x, y)
			if isRed([3]uint8{c.R, c.G, c.B}) {
				n++
			}
		}
	}
	return n
}

// blocks returns an n×n map of block×block tiles whose values step
// between lo and hi like a chessboard.
func blocks(n, block int, lo, hi float32) sentinel.Image {
	m := sentinel.NewImage(n, n)
	for y := range n {
		for x := range n {
			m.Pix[y*n+x] = lo
			if (x/block+y/block)%2 == 0 {
				m.Pix[y*n+x] = hi
			}
		}
	}
	return m
}

func TestHeatColourRedOnlyAboveTheThreshold(t *testing.T) {
	for v := 0.0; v <= 3; v += 0.001 {
		c, a, on := heatColour(v, DefaultHeatThreshold)
		if !on {
			if float32(v) > float32(DefaultHeatThreshold) {
				t.Fatalf("level %v is not coloured", v)
			}
			continue
		}
		// Over any grey, as compose blends it.
		for _, g := range []float64{0, 0.5, 1} {
			px := [3]uint8{}
			for i := range px {
				px[i] = byte8(g*(1-a) + c[i]*a)
			}
			if red := isRed(px); red != (float32(v) > 1) {
				t.Fatalf("level %.3f over grey %v: %v, red %v", v, g, px, red)
			}
		}
	}
}

func TestHeatLevelsAnchoredAtTheThreshold(t *testing.T) {
	heat := blob(32, 0.5, 0.5, 0.4)
	peak := func(m sentinel.Image) float32 {
		var p float32
		for _, v := range m.Pix {
			p = max(p, v)
		}
		return p
	}
	for _, c := range []struct {
		score, threshold float64
		min, max         float32
	}{
		{2.5, 1.25, 2, 2},             // twice the threshold's evidence
		{1.25, 1.25, 1, 1},            // at it: 1, not above
		{1.0, 1.25, 0.8, 0.8},         // below
		{-3, 1.25, 0, 0},              // far below
		{0.5, -1, 2, 2},               // above a threshold that is not positive
		{-2, -1, 0, 0},                // below it
		{math.NaN(), 1.25, 0, 0},      // no score
		{1.2499999999, 1.25, 0.9, 1},  // just below: never above 1
		{1.2500001, 1.25, 1, 1.00001}, // just above
	} {
		p := peak(HeatLevels(heat, c.score, c.threshold))
		if !(p >= c.min && p <= c.max) {
			t.Errorf("score %v threshold %v: peak level %v, want [%v, %v]", c.score, c.threshold, p, c.min, c.max)
		}
	}
	if m := HeatLevels(sentinel.Image{Width: 4, Height: 4, Pix: make([]float32, 3)}, 2, 1); len(m.Pix) != 0 {
		t.Error("a heatmap whose pixels do not match its size gave levels")
	}
}

// TestResampleIsSmoothAndBounded checks that the heat is resampled to the
// film's size without the blocks a nearest-neighbour enlargement shows,
// and never above its largest value.
func TestResampleIsSmoothAndBounded(t *testing.T) {
	heat := blocks(64, 8, 0.1, 0.9)
	const side = 256
	v := resampleHeat(heat, side, side)
	if len(v) != side*side {
		t.Fatalf("%d values", len(v))
	}
	var step, top float64
	for y := range side {
		for x := range side {
			top = max(top, v[y*side+x])
			if x+1 < side {
				step = max(step, math.Abs(v[y*side+x+1]-v[y*side+x]))
			}
			if y+1 < side {
				step = max(step, math.Abs(v[(y+1)*side+x]-v[y*side+x]))
			}
		}
	}
	// Nearest neighbour steps by 0.8 at every block edge, bilinear by
	// 0.2 (the 0.8 over the 4 film pixels of a heat pixel); the spline
	// spreads it wider.
	if step > 0.16 {
		t.Errorf("largest step between neighbouring film pixels %.3f, want at most 0.16", step)
	}
	if top > 0.9+1e-9 {
		t.Errorf("resampled maximum %v exceeds the map's 0.9", top)
	}
}

func TestOverlayNoRedBelowTheThreshold(t *testing.T) {
	film := blob(300, 0.5, 0.5, 0.7)
	heat := blocks(64, 8, 0.2, 1)
	for _, c := range []struct {
		score, threshold float64
		red              bool
	}{
		{1.2, 1.25, false}, {1.25, 1.25, false}, {-1, 1.25, false}, {0.9, 0.1, true}, {1.3, 1.25, true},
	} {
		img, err := Overlay(film, HeatLevels(heat, c.score, c.threshold), []string{"score"})
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dy() != film.Height || b.Dx() <= film.Width {
			t.Fatalf("picture %v for a %d×%d film", b, film.Width, film.Height)
		}
		n := redPixels(img, image.Rect(0, 0, film.Width, film.Height))
		if c.red != (n > 0) {
			t.Errorf("score %v threshold %v: %d red pixels on the film", c.score, c.threshold, n)
		}
		// Below the threshold the film is still coloured where the map
		// is high (orange or yellow), so the test above is not passed by
		// an overlay that draws nothing.
		if !c.red && c.score > 0.9 {
			coloured := 0
			for y := range film.Height {
				for x := range film.Width {
					p := img.RGBAAt(x, y)
					if int(p.R)-int(p.B) > 40 {
						coloured++
					}
				}
			}
			if coloured == 0 {
				t.Errorf("score %v threshold %v: nothing coloured", c.score, c.threshold)
			}
		}
	}
	if _, err := Overlay(sentinel.Image{Width: 2, Height: 2}, heat, nil); err == nil {
		t.Error("a film without pixels was drawn")
	}
}

// TestOverlayLegend checks the legend in the strip beside the film: the
// red block, the bar's warm colours and the threshold's white line, and
// the labels' white text.
func TestOverlayLegend(t *testing.T) {
	film := sentinel.NewImage(256, 256) // black: nothing on it is red or white
	img, err := Overlay(film, sentinel.NewImage(8, 8), nil)
	if err != nil {
		t.Fatal(err)
	}
	strip := image.Rect(film.Width, 0, img.Bounds().Dx(), film.Height)
	if strip.Dx() < 40 {
		t.Fatalf("legend strip %d pixels wide", strip.Dx())
	}
	red, warm, white := 0, 0, 0
	for y := strip.Min.Y; y < strip.Max.Y; y++ {
		for x := strip.Min.X; x < strip.Max.X; x++ {
			c := img.RGBAAt(x, y)
			switch {
			case isRed([3]uint8{c.R, c.G, c.B}):
				red++
			case int(c.R)-int(c.B) > 60 && c.G > c.B:
				warm++
			case c.R > 240 && c.G > 240 && c.B > 240:
				white++
			}
		}
	}
	if red < 50 || warm < 100 || white < 100 {
		t.Errorf("legend: %d red, %d warm, %d white pixels", red, warm, white)
	}
	// With no heat, the film itself is untouched.
	if n := redPixels(img, image.Rect(0, 0, film.Width, film.Height)); n != 0 {
		t.Errorf("%d red pixels on the film", n)
	}
}

// TestSecondaryCaptureAnchoredAtTheThreshold checks the same rule on the
// Secondary Capture: levels from HeatLevels show red on the film only
// for a score above the threshold, and its legend holds the red block.
func TestSecondaryCaptureAnchoredAtTheThreshold(t *testing.T) {
	heat := blob(32, 0.5, 0.6, 0.3)
	for _, c := range []struct {
		score float64
		red   bool
	}{{1.15, false}, {2.0, true}} {
		_, _, img := heatmapOf(t, HeatLevels(heat, c.score, 1.25), 0)
		// The film below the text block, left of the legend.
		n := redPixels(img, image.Rect(0, 150, 170, 256))
		if c.red != (n > 0) {
			t.Errorf("score %v: %d red pixels on the film", c.score, n)
		}
		if m := redPixels(img, image.Rect(170, 0, 256, 256)); m < 20 {
			t.Errorf("score %v: %d red pixels at the right edge, where the legend is", c.score, m)
		}
	}
}

// BenchmarkOverlay draws a report picture of the agent's size: a 512×512
// film with a 64×64 map, part of it above the colour start.
func BenchmarkOverlay(b *testing.B) {
	film := blob(512, 0.5, 0.5, 0.7)
	levels := HeatLevels(blocks(64, 8, 0.2, 1), 1.3, 1.25)
	for b.Loop() {
		if _, err := Overlay(film, levels, []string{"score 1.30"}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestComposeMatchesPlainLoop checks compose against blending every pixel
// the plain way, over films and maps with values outside 0 … 1 and NaN.
func TestComposeMatchesPlainLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, size := range [][2]int{{37, 29}, {64, 64}, {5, 300}} {
		w, h := size[0], size[1]
		film := sentinel.NewImage(w, h)
		for i := range film.Pix {
			film.Pix[i] = float32(rng.Float64()*1.4 - 0.2)
		}
		film.Pix[3] = float32(math.NaN())
		heat := sentinel.NewImage(9, 7)
		for i := range heat.Pix {
			heat.Pix[i] = float32(rng.Float64() * 1.2)
		}
		got := compose(film, heat, DefaultHeatThreshold)
		lv := resampleHeat(heat, w, h)
		for y := range h {
			for x := range w {
				g := float64(clamp01(film.Pix[y*w+x]))
				rgb := [3]float64{g, g, g}
				if c, a, on := heatColour(lv[y*w+x], DefaultHeatThreshold); on {
					for i := range rgb {
						rgb[i] = rgb[i]*(1-a) + c[i]*a
					}
				}
				want := []byte{byte8(rgb[0]), byte8(rgb[1]), byte8(rgb[2]), 255}
				if p := got.Pix[y*got.Stride+4*x:][:4]; !bytes.Equal(p, want) {
					t.Fatalf("%d×%d, pixel (%d, %d): %v, want %v", w, h, x, y, p, want)
				}
			}
		}
	}
}
