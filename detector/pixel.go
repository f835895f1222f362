package detector

import "math"

// The pixel memory is a second memory bank beside the encoder's: the
// training normals, each standardised to zero mean and unit variance, cut
// into small square patches of raw pixels. A patch of a new image, cut and
// standardised the same way, scores its distance to the nearest training
// patch, and the image score aggregates the patch scores. It needs no
// learning, so it is rebuilt from the training normals the model file
// already keeps (for the no-learning baseline) whenever a model is
// assembled, and adds nothing to the file but its settings.
//
// It is there because on the small training sets Sentinel starts from (a
// hundred normals) the autoencoder's features do not beat raw pixels: the
// 8×8 standardised pixel patches, mean-aggregated, were measured at 0.70
// ROC-AUC on cxr8 dev, above the encoder memory and the reconstruction
// error (docs/detection.md).

// pixelGrid returns the number of patch positions along a side of a
// side×side image cut into size×size patches every stride pixels.
func pixelGrid(side, size, stride int) int {
	if size < 1 || stride < 1 || size > side {
		return 0
	}
	return (side-size)/stride + 1
}

// pixelPatches cuts the side×side image x into size×size patches every
// stride pixels, row-major, one row of size·size values per patch. With
// local, each patch is further shifted and scaled to zero mean and unit
// variance (left at zero mean when constant), so that it carries texture
// and shape but not brightness.
func pixelPatches(x []float32, side, size, stride int, local bool) []float32 {
	g := pixelGrid(side, size, stride)
	d := size * size
	out := make([]float32, 0, g*g*d)
	for py := range g {
		for px := range g {
			y0, x0 := py*stride, px*stride
			start := len(out)
			for y := range size {
				out = append(out, x[(y0+y)*side+x0:(y0+y)*side+x0+size]...)
			}
			if local {
				standardiseInPlace(out[start:])
			}
		}
	}
	return out
}

// standardiseInPlace shifts and scales v to zero mean and unit variance
// (left at zero mean when v is constant).
func standardiseInPlace(v []float32) {
	var s, ss float64
	for _, x := range v {
		s += float64(x)
	}
	mu := s / float64(len(v))
	for _, x := range v {
		ss += (float64(x) - mu) * (float64(x) - mu)
	}
	sd := math.Sqrt(ss / float64(len(v)))
	if sd == 0 {
		sd = 1
	}
	for i, x := range v {
		v[i] = float32((float64(x) - mu) / sd)
	}
}

// pixelBank holds the patches of the training normals.
type pixelBank struct {
	size, stride int
	local        bool
	rows         []float32
	sq           []float32
	n            int
}

// newPixelBank cuts every image of xs (side×side, already standardised
// per image) into patches. size 0 gives an empty bank.
func newPixelBank(xs [][]float32, side, size, stride int, local bool) *pixelBank {
	b := &pixelBank{size: size, stride: stride, local: local}
	if size == 0 || pixelGrid(side, size, stride) == 0 {
		return b
	}
	for _, x := range xs {
		b.rows = append(b.rows, pixelPatches(x, side, size, stride, local)...)
	}
	d := size * size
	b.n = len(b.rows) / d
	b.sq = rowNorms(b.rows, b.n, d)
	return b
}

// scores returns the distance of each patch of z (side×side, standardised
// per image) to its k nearest bank patches, on the g×g patch grid.
func (b *pixelBank) scores(z []float32, side, k int) ([]float64, int) {
	g := pixelGrid(side, b.size, b.stride)
	q := pixelPatches(z, side, b.size, b.stride, b.local)
	return knnScores(q, g*g, b.rows, b.sq, b.n, b.size*b.size, k), g
}

// pixelMap places the g×g patch scores of a pixel memory at the centres of
// their patches on a side×side map: each pixel gets the mean score of the
// patches that cover it (0 where none does, which a stride no larger than
// the size rules out).
func pixelMap(ps []float64, g, side, size, stride int) []float64 {
	sum := make([]float64, side*side)
	cnt := make([]float64, side*side)
	for py := range g {
		for px := range g {
			v := ps[py*g+px]
			for y := py * stride; y < py*stride+size; y++ {
				for x := px * stride; x < px*stride+size; x++ {
					sum[y*side+x] += v
					cnt[y*side+x]++
				}
			}
		}
	}
	for i, c := range cnt {
		if c > 0 {
			sum[i] /= c
		}
	}
	return sum
}
