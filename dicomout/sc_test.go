package dicomout

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

// heatmapOf makes the heatmap of a phantom film and returns the film, the
// object and its decoded pixels.
func heatmapOf(t *testing.T, heat sentinel.Image, thr float64) (sentinel.Image, Object, *image.RGBA) {
	t.Helper()
	dir := t.TempDir()
	path := writePhantom(t, dir, 256)
	src, err := ReadSource(path)
	if err != nil {
		t.Fatal(err)
	}
	_, film, err := dicomio.Load(path, dicomio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := SecondaryCapture(src, testReport(src), film, heat, thr, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return film, obj, pixelsOf(t, obj)
}

// pixelsOf reads the RGB pixel data of a secondary capture.
func pixelsOf(t *testing.T, obj Object) *image.RGBA {
	t.Helper()
	_, ds := parseFile(t, obj.Bytes)
	rows, cols := int(le16(ds[0x00280010].value)), int(le16(ds[0x00280011].value))
	if le16(ds[0x00280002].value) != 3 || le16(ds[0x00280006].value) != 0 || ds.str(0x00280004) != "RGB" ||
		le16(ds[0x00280100].value) != 8 || ds[0x7FE00010].vr != "OB" {
		t.Fatal("pixel data is not interleaved 8-bit RGB")
	}
	px := ds[0x7FE00010].value
	if len(px) != (3*rows*cols+1)&^1 {
		t.Fatalf("%d bytes of pixel data for %d×%d", len(px), cols, rows)
	}
	img := image.NewRGBA(image.Rect(0, 0, cols, rows))
	for i := range rows * cols {
		copy(img.Pix[4*i:], px[3*i:3*i+3])
		img.Pix[4*i+3] = 255
	}
	return img
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func TestSecondaryCaptureImage(t *testing.T) {
	film, obj, img := heatmapOf(t, blob(32, 0.5, 0.6, 0.25), 0.5)
	grey := func(x, y int) uint8 { return byte8(float64(film.At(x, y))) }

	// Far from the blob, outside the annotations: the film, untouched.
	for _, p := range []image.Point{{20, 240}, {100, 250}, {128, 154 + 40}} {
		c := img.RGBAAt(p.X, p.Y)
		if g := grey(p.X, p.Y); c.R != g || c.G != g || c.B != g {
			t.Errorf("%v: %v, want the film's grey %d", p, c, g)
		}
	}
	// At the blob's peak: warm, red above green above blue.
	if c := img.RGBAAt(128, 154); !(int(c.R) > int(c.G) && int(c.G) > int(c.B) && int(c.R)-int(c.B) > 100) {
		t.Errorf("peak colour %v is not warm", c)
	}
	// The text block is burned in: yellow title letters at the top left.
	yellow := 0
	for y := range 40 {
		for x := range 160 {
			if c := img.RGBAAt(x, y); c.R > 200 && c.G > 180 && c.B < 80 {
				yellow++
			}
		}
	}
	if yellow < 100 {
		t.Errorf("%d yellow title pixels at the top left", yellow)
	}

	// Sentinel's own decoder reads it at the film's size, and sees the
	// burned-in region differ from the film.
	path := writeObject(t, t.TempDir(), "sc.dcm", obj)
	inst, dec, err := dicomio.Load(path, dicomio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Width != film.Width || dec.Height != film.Height || inst.Photometric != "RGB" || inst.SOPInstanceUID != obj.SOPInstanceUID {
		t.Fatalf("decoded %d×%d %s %s", dec.Width, dec.Height, inst.Photometric, inst.SOPInstanceUID)
	}
	changed := 0
	for y := range 40 {
		for x := range 160 {
			if d := dec.At(x, y) - film.At(x, y); d > 0.1 || d < -0.1 {
				changed++
			}
		}
	}
	if changed < 500 {
		t.Errorf("only %d pixels of the text block differ from the film", changed)
	}

	_, ds := parseFile(t, obj.Bytes)
	for tag, want := range map[uint32]string{
		0x00080008: `DERIVED\SECONDARY`, 0x00080064: "WSD", 0x00280301: "YES", 0x00080060: "OT",
		0x0008103E: "Sentinel heatmap", 0x00200020: `L\F`, 0x00080016: SOPClassSecondaryCapture,
		0x00200011: "9002", 0x00181016: Manufacturer,
	} {
		if got := ds.str(tag); got != want {
			t.Errorf("%s = %q, want %q", tagName(tag), got, want)
		}
	}
	si := ds.seq(0x00082112)
	if len(si) != 1 || si[0].str(0x00081150) != SOPClassSecondaryCapture || si[0].str(0x00081155) != "2.25.1003" ||
		si[0].code(0x0040A170) != codeSourceForProcessing {
		t.Error("Source Image Sequence does not reference the source")
	}
}

// TestSecondaryCaptureThreshold checks that the colour starts above the
// threshold: a uniform map at the threshold colours nothing, one just above
// it colours everything.
func TestSecondaryCaptureThreshold(t *testing.T) {
	uniform := func(v float32) sentinel.Image {
		m := sentinel.NewImage(8, 8)
		for i := range m.Pix {
			m.Pix[i] = v
		}
		return m
	}
	for _, c := range []struct {
		heat, thr float64
		coloured  bool
	}{
		{0.5, 0.5, false},
		{0.5, 0, false}, // 0: the default, 0.5
		{0.3, 0.3, false},
		{0.51, 0.5, true},
		{0.31, 0.3, true},
		{0.4, 0.5, false},
	} {
		film, _, img := heatmapOf(t, uniform(float32(c.heat)), c.thr)
		// The bottom left holds no annotation.
		coloured := 0
		for y := 156; y < 256; y++ {
			for x := range 128 {
				p := img.RGBAAt(x, y)
				if g := byte8(float64(film.At(x, y))); p.R != g || p.G != g || p.B != g {
					coloured++
				}
			}
		}
		if got := coloured == 100*128; c.coloured && !got {
			t.Errorf("heat %v threshold %v: %d pixels coloured, want all", c.heat, c.thr, coloured)
		}
		if !c.coloured && coloured != 0 {
			t.Errorf("heat %v threshold %v: %d pixels coloured, want none", c.heat, c.thr, coloured)
		}
	}
}

func TestSecondaryCaptureShrinksLargeFilms(t *testing.T) {
	src := richSource()
	film := sentinel.NewImage(4300, 1000)
	for i := range film.Pix {
		film.Pix[i] = float32(i%4300) / 4300
	}
	obj, err := SecondaryCapture(src, testReport(src), film, blob(16, 0.5, 0.5, 0.3), 0.5, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if b := pixelsOf(t, obj).Bounds(); b.Dx() != MaxSide || b.Dy() != 953 {
		t.Fatalf("%v, want %d×953", b, MaxSide)
	}
}

func TestSecondaryCaptureDeterministic(t *testing.T) {
	src := richSource()
	rep := testReport(src)
	film, heat := blob(64, 0.5, 0.5, 1), blob(8, 0.3, 0.3, 0.4)
	make := func(rep sentinel.Report, thr float64, now time.Time) Object {
		o, err := SecondaryCapture(src, rep, film, heat, thr, now)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	a := make(rep, 0.5, testNow)
	if b := make(rep, 0, testNow.Add(time.Hour)); b.SOPInstanceUID != a.SOPInstanceUID || b.SeriesInstanceUID != a.SeriesInstanceUID {
		t.Error("the same heatmap made again has new UIDs")
	}
	if b := make(rep, 0.6, testNow); b.SOPInstanceUID == a.SOPInstanceUID {
		t.Error("another heat threshold gives the same SOP Instance UID")
	}
	rep.Revision = 2
	if b := make(rep, 0.5, testNow); b.SOPInstanceUID == a.SOPInstanceUID || b.SeriesInstanceUID != a.SeriesInstanceUID {
		t.Error("revision 2: want a new instance in the same series")
	}
	sr, err := StructuredReport(src, testReport(src), nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if sr.SOPInstanceUID == a.SOPInstanceUID || sr.SeriesInstanceUID == a.SeriesInstanceUID {
		t.Error("report and heatmap share UIDs")
	}
}

func TestSecondaryCaptureRefuses(t *testing.T) {
	src := richSource()
	rep := testReport(src)
	good := blob(8, 0.5, 0.5, 0.5)
	for name, c := range map[string][2]sentinel.Image{
		"no heatmap":      {good, {}},
		"no film":         {{}, good},
		"film pixels":     {{Width: 4, Height: 4, Pix: make([]float32, 15)}, good},
		"heatmap pixels":  {good, {Width: 3, Height: 1, Pix: make([]float32, 4)}},
		"zero-width film": {{Width: 0, Height: 4}, good},
	} {
		if _, err := SecondaryCapture(src, rep, c[0], c[1], 0.5, testNow); err == nil {
			t.Errorf("%s: made", name)
		}
	}
}

// TestSecondaryCapturePNG saves what the secondary capture shows as a PNG,
// for a reader to look at, and checks that it reads back.
func TestSecondaryCapturePNG(t *testing.T) {
	_, obj, img := heatmapOf(t, blob(24, 0.4, 0.45, 0.3), 0.5)
	path := filepath.Join(t.TempDir(), "heatmap.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	back, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	cfg, err := png.DecodeConfig(back)
	if err != nil || cfg.Width != 256 || cfg.Height != 256 {
		t.Fatalf("PNG %v %v", cfg, err)
	}
	t.Logf("%s: %s", obj.SOPInstanceUID, path)
}

func TestTextScaleGrowsWithTheFilm(t *testing.T) {
	for n, want := range map[int]int{256: 1, 1024: 1, 1200: 2, 2000: 3, 4096: 6} {
		if got := textScale(n); got != want {
			t.Errorf("textScale(%d) = %d, want %d", n, got, want)
		}
	}
	// On a 2000-pixel film the warning is over 2% of the height.
	if h := glyphHeight * (textScale(2000) + 1); h < 40 {
		t.Errorf("warning letters %d pixels high on a 2000-pixel film", h)
	}
}
