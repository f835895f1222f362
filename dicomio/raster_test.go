package dicomio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// encodePNG encodes img as PNG or fails the test.
func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLoadRaster checks PNG and JPEG decoding to display values.
func TestLoadRaster(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 3, 1))
	copy(gray.Pix, []uint8{0, 51, 255})
	gray16 := image.NewGray16(image.Rect(0, 0, 2, 1))
	gray16.SetGray16(0, 0, color.Gray16{Y: 13107})
	gray16.SetGray16(1, 0, color.Gray16{Y: 65535})
	rgb := image.NewNRGBA(image.Rect(0, 0, 4, 1))
	rgb.SetNRGBA(0, 0, color.NRGBA{R: 255, A: 255})
	rgb.SetNRGBA(1, 0, color.NRGBA{G: 255, A: 255})
	rgb.SetNRGBA(2, 0, color.NRGBA{B: 255, A: 255})
	rgb.SetNRGBA(3, 0, color.NRGBA{R: 51, G: 51, B: 51, A: 128}) // alpha ignored
	var jpg bytes.Buffer
	flat := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range flat.Pix {
		flat.Pix[i] = 102
	}
	if err := jpeg.Encode(&jpg, flat, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		data        []byte
		format      sentinel.Format
		photometric string
		want        []float32
		tol         float64
	}{
		{"gray8 png", encodePNG(t, gray), sentinel.FormatPNG, "MONOCHROME2", []float32{0, 0.2, 1}, 0},
		{"gray16 png", encodePNG(t, gray16), sentinel.FormatPNG, "MONOCHROME2", []float32{0.2, 1}, 0},
		{"colour png", encodePNG(t, rgb), sentinel.FormatPNG, "RGB", []float32{0.299, 0.587, 0.114, 0.2}, 1e-6},
		{"gray jpeg", jpg.Bytes(), sentinel.FormatJPEG, "MONOCHROME2", repeat(0.4, 256), 1.0 / 255},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "image", tt.data)
			inst, img, err := Load(path, Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			sum := sha256.Sum256(tt.data)
			digest := hex.EncodeToString(sum[:])
			if inst.ID != "sha256:"+digest || inst.SHA256 != digest || inst.Format != tt.format || inst.Photometric != tt.photometric ||
				inst.SOPInstanceUID != uidFromDigest(sum) || inst.StudyInstanceUID != "" || inst.Modality != "" || inst.Frames != 1 {
				t.Errorf("instance %+v", inst)
			}
			if len(img.Pix) != len(tt.want) || inst.Rows != img.Height || inst.Columns != img.Width {
				t.Fatalf("image %dx%d, instance %dx%d", img.Width, img.Height, inst.Columns, inst.Rows)
			}
			for i, want := range tt.want {
				if d := math.Abs(float64(img.Pix[i] - want)); d > tt.tol {
					t.Errorf("pixel %d = %v, want %v", i, img.Pix[i], want)
				}
			}
		})
	}
}

func repeat(v float32, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestUIDFromDigest checks the 2.25 UID against a value computed by hand:
// the SHA-256 of no bytes starts e3b0c442 98fc1c14 9afbf4c8 996fb924.
func TestUIDFromDigest(t *testing.T) {
	const want = "2.25.302652579918965577886386472538583578916"
	if got := uidFromDigest(sha256.Sum256(nil)); got != want {
		t.Errorf("uidFromDigest = %s, want %s", got, want)
	}
}
