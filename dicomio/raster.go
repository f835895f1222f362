package dicomio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/big"

	"github.com/sentinel-pacs/sentinel"
)

// uidFromDigest derives a UID for a file that has none from its SHA-256:
// the first 16 bytes read as an unsigned 128-bit integer under the 2.25
// root, the UUID-derived form of PS3.5 B.2.
func uidFromDigest(sum [32]byte) string {
	return "2.25." + new(big.Int).SetBytes(sum[:16]).String()
}

// rasterError classifies an image/png or image/jpeg error.
func rasterError(err error) error {
	var (
		pngUnsupported  png.UnsupportedError
		jpegUnsupported jpeg.UnsupportedError
	)
	if errors.As(err, &pngUnsupported) || errors.As(err, &jpegUnsupported) {
		return fmt.Errorf("%w: %w", sentinel.ErrUnsupported, err)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // a truncated image, not a clean end
	}
	return fmt.Errorf("%w: %w", sentinel.ErrInvalid, err)
}

// loadRaster decodes a PNG or JPEG research image. Such files carry no
// UIDs, so the instance is identified by its content hash.
func loadRaster(data []byte, format sentinel.Format, sum [32]byte, inst *sentinel.Instance, maxPixels int64) (sentinel.Image, error) {
	inst.ID = "sha256:" + inst.SHA256
	inst.SOPInstanceUID = uidFromDigest(sum)
	inst.Frames = 1
	decodeConfig, decode := png.DecodeConfig, png.Decode
	if format == sentinel.FormatJPEG {
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
	}
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return sentinel.Image{}, rasterError(err)
	}
	inst.Rows, inst.Columns = cfg.Height, cfg.Width
	inst.Photometric = "RGB"
	samples := int64(3)
	if cfg.ColorModel == color.GrayModel || cfg.ColorModel == color.Gray16Model {
		inst.Photometric, samples = "MONOCHROME2", 1
	}
	if cfg.Width < 1 || cfg.Height < 1 {
		return sentinel.Image{}, fmt.Errorf("%w: image is %d×%d", sentinel.ErrInvalid, cfg.Width, cfg.Height)
	}
	// Checked before decoding, which allocates the whole image.
	if int64(cfg.Width) > maxPixels/int64(cfg.Height)/samples {
		return sentinel.Image{}, fmt.Errorf("%w: %d×%d pixels × %d samples exceeds %d",
			sentinel.ErrTooLarge, cfg.Width, cfg.Height, samples, maxPixels)
	}
	src, err := decode(bytes.NewReader(data))
	if err != nil {
		return sentinel.Image{}, rasterError(err)
	}
	return grayOf(src), nil
}

// grayOf converts a decoded image to display values: 8-bit gray v/255,
// 16-bit gray v/65535, colour its luminance 0.299R + 0.587G + 0.114B (for
// JPEG's YCbCr, Y itself). Alpha is ignored.
func grayOf(src image.Image) sentinel.Image {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	out := sentinel.NewImage(w, h)
	switch m := src.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				out.Pix[y*w+x] = float32(float64(v) / 255)
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+2*w]
			for x := 0; x < w; x++ {
				v := uint16(row[2*x])<<8 | uint16(row[2*x+1])
				out.Pix[y*w+x] = float32(float64(v) / 65535)
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			row := m.Y[y*m.YStride : y*m.YStride+w]
			for x, v := range row {
				out.Pix[y*w+x] = float32(float64(v) / 255)
			}
		}
	case *image.NRGBA:
		// Non-premultiplied, so the colour is read as is whatever the
		// alpha (PNG gray+alpha decodes to this too).
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				p := row[4*x:]
				out.Pix[y*w+x] = float32(luminance(float64(p[0]), float64(p[1]), float64(p[2])) / 255)
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBA64Model.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
				out.Pix[y*w+x] = float32(luminance(float64(c.R), float64(c.G), float64(c.B)) / 65535)
			}
		}
	}
	return out
}

// luminance is 0.299R + 0.587G + 0.114B, exactly R when R = G = B.
func luminance(r, g, b float64) float64 {
	if r == g && g == b {
		return r
	}
	return 0.299*r + 0.587*g + 0.114*b
}
