package detector

import (
	"math"
	"math/rand"
	"slices"

	"github.com/sentinel-pacs/sentinel"
)

// synthImage returns a smooth "normal" image: a vertical gradient and a few
// Gaussian blobs with pixel noise. With lesion set, a bright square or disc
// is added at a random place, the kind of local anomaly the detector must
// find.
func synthImage(rng *rand.Rand, side int, lesion bool) sentinel.Image {
	img := sentinel.NewImage(side, side)
	s := float64(side)
	type blob struct{ x, y, r, a float64 }
	blobs := make([]blob, 2+rng.Intn(3))
	for i := range blobs {
		blobs[i] = blob{
			x: s * (0.2 + 0.6*rng.Float64()),
			y: s * (0.2 + 0.6*rng.Float64()),
			r: s * (0.12 + 0.12*rng.Float64()),
			a: 0.2 + 0.25*rng.Float64(),
		}
	}
	base := 0.15 + 0.1*rng.Float64()
	for y := range side {
		for x := range side {
			v := base + 0.15*float64(y)/s
			for _, b := range blobs {
				dx, dy := float64(x)-b.x, float64(y)-b.y
				v += b.a * math.Exp(-(dx*dx+dy*dy)/(2*b.r*b.r))
			}
			v += 0.02 * rng.NormFloat64()
			img.Pix[y*side+x] = float32(min(max(v, 0), 1))
		}
	}
	if lesion {
		r := s * (0.06 + 0.06*rng.Float64())
		cx := s * (0.25 + 0.5*rng.Float64())
		cy := s * (0.25 + 0.5*rng.Float64())
		disc := rng.Intn(2) == 0
		for y := range side {
			for x := range side {
				dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
				in := math.Abs(dx) <= r && math.Abs(dy) <= r
				if disc {
					in = dx*dx+dy*dy <= r*r
				}
				if in {
					i := y*side + x
					img.Pix[i] = float32(min(float64(img.Pix[i])+0.45, 1))
				}
			}
		}
	}
	return img
}

// synthImages returns n images from synthImage.
func synthImages(rng *rand.Rand, n, side int, lesion bool) []sentinel.Image {
	imgs := make([]sentinel.Image, n)
	for i := range imgs {
		imgs[i] = synthImage(rng, side, lesion)
	}
	return imgs
}

// auroc returns the area under the ROC curve of scores for positives
// against negatives: the probability that a random positive outscores a
// random negative, ties counting half.
func auroc(neg, pos []float64) float64 {
	neg = slices.Clone(neg)
	slices.Sort(neg)
	var sum float64
	for _, p := range pos {
		lo, _ := slices.BinarySearch(neg, p)
		hi := lo
		for hi < len(neg) && neg[hi] == p {
			hi++
		}
		sum += float64(lo) + 0.5*float64(hi-lo)
	}
	return sum / float64(len(neg)*len(pos))
}
