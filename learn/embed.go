package learn

import (
	"math"
	"slices"
	"strings"

	"github.com/sentinel-pacs/sentinel"
)

// Thumbnail is the stand-in Embedder: the image box-averaged to Side×Side
// and standardised to zero mean and unit variance, so that brightness and
// contrast differences between sites do not dominate the distances. It
// knows nothing of anatomy; a detector embedding should replace it when
// the detector exposes one.
type Thumbnail struct{ Side int }

// Embed returns the Side×Side standardised thumbnail of img.
func (t Thumbnail) Embed(img sentinel.Image) []float32 {
	s := t.Side
	if s <= 0 {
		s = 16
	}
	out := make([]float32, s*s)
	if img.Width == 0 || img.Height == 0 {
		return out
	}
	for ty := 0; ty < s; ty++ {
		y0, y1 := ty*img.Height/s, max((ty+1)*img.Height/s, ty*img.Height/s+1)
		for tx := 0; tx < s; tx++ {
			x0, x1 := tx*img.Width/s, max((tx+1)*img.Width/s, tx*img.Width/s+1)
			var sum float64
			for y := y0; y < min(y1, img.Height); y++ {
				for x := x0; x < min(x1, img.Width); x++ {
					sum += float64(img.Pix[y*img.Width+x])
				}
			}
			out[ty*s+tx] = float32(sum / float64((y1-y0)*(x1-x0)))
		}
	}
	var mean, sq float64
	for _, v := range out {
		mean += float64(v)
	}
	mean /= float64(len(out))
	for _, v := range out {
		sq += (float64(v) - mean) * (float64(v) - mean)
	}
	sd := math.Sqrt(sq / float64(len(out)))
	if sd < 1e-9 {
		sd = 1
	}
	for i, v := range out {
		out[i] = float32((float64(v) - mean) / sd)
	}
	return out
}

func sqDist(a, b []float32) float64 {
	var d float64
	for i := range min(len(a), len(b)) {
		x := float64(a[i] - b[i])
		d += x * x
	}
	return d
}

// DetectorFeatures returns the head's features from a detector's score:
// the z-scores of its components (the keys ending in "_z", in name
// order), so that labels can reweigh what the detector measures, not only
// what the image looks like. A case the detector trained on has biased
// components; such cases fit no head (see Labelled.DetTrained).
func DetectorFeatures(components map[string]float64) []float32 {
	var names []string
	for k := range components {
		if strings.HasSuffix(k, "_z") {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	out := make([]float32, len(names))
	for i, k := range names {
		v := components[k]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		out[i] = float32(v)
	}
	return out
}

// HeadInput is the input of the supervised head for a case: its detector
// features followed by its embedding.
func HeadInput(components map[string]float64, embedding []float32) []float32 {
	return append(DetectorFeatures(components), embedding...)
}
