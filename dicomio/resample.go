package dicomio

import "github.com/sentinel-pacs/sentinel"

// span is the set of input pixels one output pixel covers along one axis:
// inputs first, first+1, ... with integer overlaps whose sum is the
// divisor.
type span struct {
	first    int
	overlaps []int64
}

// areaSpans returns, for each of out output pixels along an axis of in
// input pixels, the input pixels it covers and by how much. Positions are
// measured in units of 1/(in*out) of the axis, in which both pixel grids
// fall on integers, so the overlaps are exact and every span's overlaps sum
// to exactly in.
func areaSpans(in, out int) []span {
	spans := make([]span, out)
	n, m := int64(in), int64(out)
	for o := range spans {
		lo, hi := int64(o)*n, int64(o+1)*n // output pixel o, in units of 1/m input pixels
		first, last := lo/m, (hi-1)/m
		s := span{first: int(first), overlaps: make([]int64, last-first+1)}
		for i := first; i <= last; i++ {
			s.overlaps[i-first] = min(hi, (i+1)*m) - max(lo, i*m)
		}
		spans[o] = s
	}
	return spans
}

// Resample resizes img to w×h by area averaging: each output pixel is the
// mean of the input pixels under it, each weighted by the area it
// contributes. It works for any ratio, up or down, and preserves the mean.
// A w or h below 1 gives an empty image; an empty or malformed img gives a
// black w×h image.
func Resample(img sentinel.Image, w, h int) sentinel.Image {
	if w < 1 || h < 1 {
		return sentinel.Image{}
	}
	out := sentinel.NewImage(w, h)
	iw, ih := img.Width, img.Height
	if iw < 1 || ih < 1 || len(img.Pix) < iw*ih {
		return out
	}
	xs, ys := areaSpans(iw, w), areaSpans(ih, h)

	// Horizontal pass: ih rows of w sums, each still to be divided by iw.
	// Each pass splits its rows between the cores: every row is summed
	// on its own, so the result does not depend on the split.
	tmp := make([]float64, ih*w)
	eachBand(ih, iw, func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			row := img.Pix[y*iw : (y+1)*iw]
			dst := tmp[y*w : (y+1)*w]
			for ox, s := range xs {
				var sum float64
				for k, c := range s.overlaps {
					sum += float64(c) * float64(row[s.first+k])
				}
				dst[ox] = sum
			}
		}
	})
	// Vertical pass, row by row so the inner loop runs along memory.
	div := float64(iw) * float64(ih)
	eachBand(h, w*max(1, ih/h), func(y0, y1 int) {
		acc := make([]float64, w)
		for oy := y0; oy < y1; oy++ {
			s := ys[oy]
			clear(acc)
			for k, c := range s.overlaps {
				src := tmp[(s.first+k)*w : (s.first+k+1)*w]
				for x, v := range src {
					acc[x] += float64(c) * v
				}
			}
			dst := out.Pix[oy*w : (oy+1)*w]
			for x, v := range acc {
				dst[x] = float32(v / div)
			}
		}
	})
	return out
}
