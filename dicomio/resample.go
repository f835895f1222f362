package dicomio

import "github.com/sentinel-pacs/sentinel"

// span is the set of input pixels one output pixel covers along one axis:
// inputs first, first+1, ... with integer overlaps whose sum is the
// divisor. weights holds the overlaps as float64, which they are exactly.
type span struct {
	first    int
	overlaps []int64
	weights  []float64
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
		s.weights = make([]float64, len(s.overlaps))
		for i := first; i <= last; i++ {
			s.overlaps[i-first] = min(hi, (i+1)*m) - max(lo, i*m)
			s.weights[i-first] = float64(s.overlaps[i-first])
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
			resampleRow(tmp[y*w:(y+1)*w], img.Pix[y*iw:(y+1)*iw], xs)
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

// resampleRow sets dst[o] to the weighted sum of row under xs[o], adding
// the products in the order of the span. Four outputs whose spans are as
// long are summed side by side: each sum is a chain of dependent
// additions, and four chains keep the adder busy where one leaves it
// waiting, with every sum still added in its own order.
func resampleRow(dst []float64, row []float32, xs []span) {
	for o := 0; o < len(xs); {
		if o+4 <= len(xs) {
			s0, s1, s2, s3 := &xs[o], &xs[o+1], &xs[o+2], &xs[o+3]
			n := len(s0.weights)
			if len(s1.weights) == n && len(s2.weights) == n && len(s3.weights) == n {
				w0, w1, w2, w3 := s0.weights[:n], s1.weights[:n], s2.weights[:n], s3.weights[:n]
				r0, r1, r2, r3 := row[s0.first:s0.first+n], row[s1.first:s1.first+n], row[s2.first:s2.first+n], row[s3.first:s3.first+n]
				var a0, a1, a2, a3 float64
				for k := range n {
					a0 += w0[k] * float64(r0[k])
					a1 += w1[k] * float64(r1[k])
					a2 += w2[k] * float64(r2[k])
					a3 += w3[k] * float64(r3[k])
				}
				dst[o], dst[o+1], dst[o+2], dst[o+3] = a0, a1, a2, a3
				o += 4
				continue
			}
		}
		s := &xs[o]
		r := row[s.first : s.first+len(s.weights)]
		var sum float64
		for k, c := range s.weights {
			sum += c * float64(r[k])
		}
		dst[o] = sum
		o++
	}
}
