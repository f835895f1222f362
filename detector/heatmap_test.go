package detector

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// blockyHeat returns a side×side heatmap made of block×block tiles of
// random values in [0.1, 1], as the pixel memory's map is.
func blockyHeat(side, block int, seed uint64) sentinel.Image {
	rng := rand.New(rand.NewPCG(seed, 1))
	g := side / block
	tiles := make([]float32, g*g)
	for i := range tiles {
		tiles[i] = 0.1 + 0.9*rng.Float32()
	}
	m := sentinel.NewImage(side, side)
	for y := range side {
		for x := range side {
			m.Pix[y*side+x] = tiles[(y/block)*g+x/block]
		}
	}
	return m
}

// chestFilm returns a side×side synthetic film: a bright body (0.6, with
// darker lung fields of 0.35 and a little texture) between dark air at the
// left and right edges (0.05).
func chestFilm(side int) sentinel.Image {
	m := sentinel.NewImage(side, side)
	for y := range side {
		for x := range side {
			u, v := (float64(x)+0.5)/float64(side), (float64(y)+0.5)/float64(side)
			p := 0.6 + 0.03*math.Sin(float64(x*7+y*3))
			if u < 0.12 || u > 0.88 {
				p = 0.05
			} else if math.Hypot((u-0.32)/0.14, (v-0.45)/0.25) < 1 || math.Hypot((u-0.68)/0.14, (v-0.45)/0.25) < 1 {
				p = 0.35
			}
			m.Pix[y*side+x] = float32(p)
		}
	}
	return m
}

// maxStep returns the largest difference between horizontal or vertical
// neighbours of m among the pixels where keep is true for both.
func maxStep(m sentinel.Image, keep func(x, y int) bool) float64 {
	var s float64
	for y := range m.Height {
		for x := range m.Width {
			if !keep(x, y) {
				continue
			}
			if x+1 < m.Width && keep(x+1, y) {
				s = max(s, math.Abs(float64(m.At(x+1, y)-m.At(x, y))))
			}
			if y+1 < m.Height && keep(x, y+1) {
				s = max(s, math.Abs(float64(m.At(x, y+1)-m.At(x, y))))
			}
		}
	}
	return s
}

func TestFocusHeatmapSmoothsTheBlocks(t *testing.T) {
	const side = 64
	heat := blockyHeat(side, 8, 1)
	film := chestFilm(side)
	everywhere := func(x, y int) bool { return true }
	before := maxStep(heat, everywhere)
	if before < 0.3 {
		t.Fatalf("the blocky map steps by only %.2f", before)
	}
	out := FocusHeatmap(heat, film)
	if out.Width != side || out.Height != side || len(out.Pix) != side*side {
		t.Fatalf("%d×%d with %d pixels", out.Width, out.Height, len(out.Pix))
	}
	// Away from the mask's edge (where it cuts to zero on purpose), no
	// neighbour differs by more than a fifth of the largest step before.
	mask := BodyMask(film, side, side)
	inside := func(x, y int) bool {
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				xx, yy := x+dx, y+dy
				if xx < 0 || yy < 0 || xx >= side || yy >= side || mask[yy*side+xx] == 0 {
					return false
				}
			}
		}
		return true
	}
	if after := maxStep(out, inside); after > before/5 {
		t.Errorf("largest step between neighbours %.3f, before %.3f: want at most a fifth", after, before)
	}
	// Nothing is left where the mask is zero, and something is inside.
	var in float64
	for i, m := range mask {
		if m == 0 && out.Pix[i] != 0 {
			t.Fatalf("pixel %d outside the mask is %v", i, out.Pix[i])
		}
		in += float64(out.Pix[i])
	}
	if !(in > 0) {
		t.Error("the focused map is empty")
	}
}

func TestBodyMaskLeavesOutBordersBackgroundAndMarkers(t *testing.T) {
	const side = 64
	film := chestFilm(side)
	// A burned-in "R": a saturated 4×5 letter at the top left, inside
	// the border band's edge, and a second marker over the body.
	marker := [][2]int{}
	for _, o := range [][2]int{{9, 8}, {40, 50}} {
		for y := range 5 {
			for x := range 4 {
				if x == 0 || y == 0 || y == 2 || (x == 3 && y < 2) || (y > 2 && x == y-1) {
					film.Pix[(o[1]+y)*side+o[0]+x] = 1
					marker = append(marker, [2]int{o[0] + x, o[1] + y})
				}
			}
		}
	}
	mask := BodyMask(film, side, side)
	band := int(math.Round(side * maskBorder))
	for y := range side {
		for x := range side {
			inBand := x < band || y < band || x >= side-band || y >= side-band
			if inBand && mask[y*side+x] != 0 {
				t.Fatalf("border band pixel (%d,%d) is in the mask", x, y)
			}
		}
	}
	for _, p := range marker {
		if mask[p[1]*side+p[0]] != 0 {
			t.Errorf("marker pixel %v is in the mask", p)
		}
	}
	// Air at the sides is out, the body and the lungs in.
	for _, p := range [][2]int{{band + 1, 32}, {side - band - 2, 32}} {
		if mask[p[1]*side+p[0]] != 0 {
			t.Errorf("background pixel %v is in the mask", p)
		}
	}
	for _, p := range [][2]int{{20, 28}, {44, 28}, {32, 40}, {32, 55}} {
		if mask[p[1]*side+p[0]] != 1 {
			t.Errorf("body pixel %v is not in the mask", p)
		}
	}

	// A heatmap hottest at the markers and the corners keeps nothing
	// there once focused.
	heat := sentinel.NewImage(side, side)
	for i := range heat.Pix {
		heat.Pix[i] = 0.2
	}
	for _, p := range marker {
		heat.Pix[p[1]*side+p[0]] = 1
	}
	for y := range 6 {
		for x := range 6 {
			heat.Pix[y*side+x] = 1
		}
	}
	out := FocusHeatmap(heat, film)
	for _, p := range marker {
		if v := out.At(p[0], p[1]); v != 0 {
			t.Errorf("focused map at marker pixel %v is %v", p, v)
		}
	}
	if v := out.At(2, 2); v != 0 {
		t.Errorf("focused map in the corner is %v", v)
	}
}

// TestBodyMaskKeepsLargeBrightAreas checks that bone or a large saturated
// region is not taken for a marker.
func TestBodyMaskKeepsLargeBrightAreas(t *testing.T) {
	const side = 64
	film := chestFilm(side)
	for y := 20; y < 40; y++ {
		for x := 20; x < 40; x++ {
			film.Pix[y*side+x] = 1
		}
	}
	mask := BodyMask(film, side, side)
	if mask[30*side+30] != 1 {
		t.Error("the centre of a 20×20 bright area is masked out")
	}
}

func TestFocusHeatmapBadInput(t *testing.T) {
	film := chestFilm(64)
	for name, heat := range map[string]sentinel.Image{
		"empty":      {},
		"short":      {Width: 8, Height: 8, Pix: make([]float32, 63)},
		"zero width": {Width: 0, Height: 8},
	} {
		if out := FocusHeatmap(heat, film); len(out.Pix) != 0 {
			t.Errorf("%s: got a %d×%d map", name, out.Width, out.Height)
		}
	}
	if out := FocusHeatmap(blockyHeat(64, 8, 2), sentinel.Image{Width: 3, Height: 3}); len(out.Pix) != 0 {
		t.Error("a film without pixels gave a map")
	}
	// NaN and out-of-range heat values give values in [0, 1].
	heat := blockyHeat(64, 8, 3)
	heat.Pix[100], heat.Pix[200], heat.Pix[300] = float32(math.NaN()), -4, 9
	for i, v := range FocusHeatmap(heat, film).Pix {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("pixel %d is %v", i, v)
		}
	}
	if m := BodyMask(sentinel.Image{Width: 2, Height: 2, Pix: make([]float32, 3)}, 2, 2); len(m) != 4 || m[0] != 0 {
		t.Error("a film whose pixels do not match its size is not masked out")
	}
}

func BenchmarkFocusHeatmap(b *testing.B) {
	heat, film := blockyHeat(64, 8, 1), chestFilm(256)
	for b.Loop() {
		FocusHeatmap(heat, film)
	}
}
