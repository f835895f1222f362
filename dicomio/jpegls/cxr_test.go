package jpegls

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cxrDir = "../../../shared/data/cxr8"

// cxrHashes are pydicom 2.3.1 + GDCM decodes of the chest radiographs
// (sha256 of the uint8 1024x1024 pixel_array), made with
// /usr/bin/python3 -c 'import pydicom, hashlib, numpy; …' since
// reference.tsv does not cover ../shared/data/cxr8.
var cxrHashes = map[string]string{
	"00002633_030_jpeg_ls_lossless.dcm": "8c6ce2f9c3df9566021d6315e0081356da364707b34dad005052bcb62e320eea",
	"00002673_004_jpeg_ls_lossless.dcm": "dff4db65e4bf7e03d21cab96cd3a0eb802e90b32cf04e62725e4b0dcb88114bf",
	"00003391_002_jpeg_ls_lossless.dcm": "de6d10e6a3fd1f62da4a8c8de31d85590f73423105d0e6d24f1d9d86b0e8aecb",
	"00003507_000_jpeg_ls_lossless.dcm": "ebc980213290fa8e71c258d8b8b15becea33eeb94bea0f17de9850aeef837be5",
	"00004344_035_jpeg_ls_lossless.dcm": "22d7cb2c3d2a1523f8399666fb3b421e2a9199b08a826ea796b550df45eb2acc",
}

// TestChestRadiographs decodes the full-resolution JPEG-LS chest
// radiographs and checks them against pydicom+GDCM and, averaged over
// 4x4 blocks, against their 256x256 PNGs within one gray level.
func TestChestRadiographs(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(cxrDir, "dicom", "*_jpeg_ls_lossless.dcm"))
	if len(paths) == 0 {
		t.Skipf("../shared/data/cxr8/dicom not found: skipping JPEG-LS chest radiograph test")
	}
	for _, path := range paths {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			frames, _, err := decodeFile(path)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if want, ok := cxrHashes[name]; ok {
				if got := hashFrames(frames, "uint8", 0); got != want {
					t.Errorf("sha256 %s, want %s", got, want)
				}
			}
			stem := name[:strings.Index(name, "_jpeg_ls")]
			f, err := os.Open(filepath.Join(cxrDir, "images", stem+".png"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxBlockDiff(frames[0].Samples, frames[0].Width, frames[0].Height, img); d > 1 {
				t.Errorf("4x4 block means differ from the PNG by up to %.2f gray levels", d)
			}
		})
	}
}

// maxBlockDiff averages the samples over blocks the size of one PNG
// pixel and returns the largest difference from the PNG's gray level.
func maxBlockDiff(s []int32, w, h int, img image.Image) float64 {
	b := img.Bounds()
	bw, bh := w/b.Dx(), h/b.Dy()
	worst := 0.0
	for py := 0; py < b.Dy(); py++ {
		for px := 0; px < b.Dx(); px++ {
			sum := 0
			for y := py * bh; y < (py+1)*bh; y++ {
				for x := px * bw; x < (px+1)*bw; x++ {
					sum += int(s[y*w+x])
				}
			}
			mean := float64(sum) / float64(bw*bh)
			r, _, _, _ := img.At(b.Min.X+px, b.Min.Y+py).RGBA()
			d := mean - float64(r>>8)
			if d < 0 {
				d = -d
			}
			worst = max(worst, d)
		}
	}
	return worst
}
