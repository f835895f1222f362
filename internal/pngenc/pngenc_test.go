package pngenc

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand"
	"runtime"
	"testing"
)

// picture returns a w×h RGBA picture of smooth gradients with noise, as
// a film with a heatmap over it looks to the filters, fully opaque.
func picture(rng *rand.Rand, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := uint8(rng.Intn(8))
			img.SetRGBA(x, y, color.RGBA{uint8(x) + n, uint8(y) + n, uint8(x+y) ^ n, 255})
		}
	}
	return img
}

// decodeRGBA decodes a PNG file into RGBA pixels, failing the test if it
// is not a valid PNG.
func decodeRGBA(t *testing.T, data []byte) *image.RGBA {
	t.Helper()
	im, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("image/png cannot read the file: %v", err)
	}
	b := im.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.Set(x, y, im.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

// samePixels fails the test where got and want (want read through its
// bounds) differ.
func samePixels(t *testing.T, got, want *image.RGBA) {
	t.Helper()
	b := want.Bounds()
	if got.Bounds().Dx() != b.Dx() || got.Bounds().Dy() != b.Dy() {
		t.Fatalf("decoded %v, want %v", got.Bounds(), b)
	}
	for y := range b.Dy() {
		for x := range b.Dx() {
			if g, w := got.RGBAAt(x, y), want.RGBAAt(b.Min.X+x, b.Min.Y+y); g != w {
				t.Fatalf("pixel (%d, %d) = %v, want %v", x, y, g, w)
			}
		}
	}
}

// Every pixel of an opaque picture comes back as written, on pictures of
// one row, one column, and large enough to be split into bands (on as many
// cores as the test forces), and on a sub-picture whose bounds do not
// start at the origin.
func TestEncodeRoundTrip(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	rng := rand.New(rand.NewSource(1))
	for _, size := range [][2]int{{1, 1}, {1, 300}, {300, 1}, {7, 5}, {700, 513}, {1100, 900}} {
		img := picture(rng, size[0], size[1])
		var buf bytes.Buffer
		if err := Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		samePixels(t, decodeRGBA(t, buf.Bytes()), img)
	}
	big := picture(rng, 900, 800)
	sub := big.SubImage(image.Rect(13, 29, 613, 777)).(*image.RGBA)
	var buf bytes.Buffer
	if err := Encode(&buf, sub); err != nil {
		t.Fatal(err)
	}
	samePixels(t, decodeRGBA(t, buf.Bytes()), sub)
}

// The file is no larger than image/png's at its fastest level, give or
// take a tenth, and a picture with transparency keeps its alpha.
func TestEncodeSizeAndAlpha(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	img := picture(rng, 640, 512)
	var ours, theirs bytes.Buffer
	if err := Encode(&ours, img); err != nil {
		t.Fatal(err)
	}
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&theirs, img); err != nil {
		t.Fatal(err)
	}
	if float64(ours.Len()) > 1.1*float64(theirs.Len()) {
		t.Errorf("%d bytes, image/png writes %d", ours.Len(), theirs.Len())
	}
	img.SetRGBA(5, 5, color.RGBA{10, 20, 30, 40})
	ours.Reset()
	if err := Encode(&ours, img); err != nil {
		t.Fatal(err)
	}
	im, err := png.Decode(&ours)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, a := im.At(5, 5).RGBA(); a>>8 != 40 {
		t.Errorf("alpha %d, want 40", a>>8)
	}
}

// BenchmarkEncode writes a picture of the heatmap's size (512 rows, with
// the legend strip) with this package and with image/png at its fastest.
func BenchmarkEncode(b *testing.B) {
	img := picture(rand.New(rand.NewSource(3)), 640, 512)
	b.Run("pngenc", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			if err := Encode(&buf, img); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("image-png", func(b *testing.B) {
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		for b.Loop() {
			var buf bytes.Buffer
			if err := enc.Encode(&buf, img); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestFilterMatchesSpec checks filterRows against the Paeth filter as
// the PNG specification writes it (ISO/IEC 15948 9.4), on a picture of
// random bytes (every order of a, b and c, ties included) split into
// bands at several rows.
func TestFilterMatchesSpec(t *testing.T) {
	paeth := func(a, b, c int) int {
		p := a + b - c
		pa, pb, pc := p-a, p-b, p-c
		if pa < 0 {
			pa = -pa
		}
		if pb < 0 {
			pb = -pb
		}
		if pc < 0 {
			pc = -pc
		}
		if pa <= pb && pa <= pc {
			return a
		}
		if pb <= pc {
			return b
		}
		return c
	}
	rng := rand.New(rand.NewSource(9))
	w, h := 37, 23
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Intn(256))
		if rng.Intn(4) == 0 {
			img.Pix[i] = byte(rng.Intn(3)) // ties between neighbours
		}
	}
	at := func(x, y, k int) int {
		if x < 0 || y < 0 {
			return 0
		}
		return int(img.Pix[img.PixOffset(x, y)+k])
	}
	for _, y0 := range []int{0, 1, 11, 22} {
		got := filterRows(img, y0, h)
		for y := y0; y < h; y++ {
			row := got[(y-y0)*(1+3*w):][:1+3*w]
			if row[0] != 4 {
				t.Fatalf("row %d: filter type %d, want 4", y, row[0])
			}
			for x := range w {
				for k := range 3 {
					want := byte(at(x, y, k) - paeth(at(x-1, y, k), at(x, y-1, k), at(x-1, y-1, k)))
					if g := row[1+3*x+k]; g != want {
						t.Fatalf("band from %d, pixel (%d, %d) sample %d: %d, want %d", y0, x, y, k, g, want)
					}
				}
			}
		}
	}
}
