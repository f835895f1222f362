package dicomio

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/sentinel-pacs/sentinel"
)

// Percentiles of the modality values that bound the automatic window used
// when a file has neither a window nor 8-bit data: wide enough to keep the
// anatomy, narrow enough that collimator edges and burnt-in labels do not
// compress it.
const (
	lowPercentile  = 0.005
	highPercentile = 0.995
)

// voiKind says which VOI transformation applies.
type voiKind int

const (
	voiLinear      voiKind = iota // PS3.3 C.11.2.1.2.1, the default function
	voiLinearExact                // C.11.2.1.3.2
	voiSigmoid                    // C.11.2.1.3.1
	voiRange                      // (x-lo)/(hi-lo): stored range or percentiles
	voiTable                      // the first VOI LUT Sequence item, C.11.2.1.1
)

// voi is the VOI transformation of the display pipeline, mapping a
// modality value to [0, 1].
type voi struct {
	kind          voiKind
	center, width float64
	lo, hi        float64
	// table and its largest output, for voiTable.
	table *lut
	top   float64
}

// apply maps one modality value to [0, 1].
func (v voi) apply(x float64) float64 {
	var y float64
	switch v.kind {
	case voiLinear:
		if v.width <= 1 {
			// Width 1 is a threshold: the formula's w-1 would be zero.
			if x <= v.center-0.5 {
				return 0
			}
			return 1
		}
		y = (x-(v.center-0.5))/(v.width-1) + 0.5
	case voiLinearExact:
		y = (x-v.center)/v.width + 0.5
	case voiSigmoid:
		y = 1 / (1 + math.Exp(-4*(x-v.center)/v.width))
	case voiTable:
		y = float64(v.table.at(int64(math.Round(max(min(x, math.MaxInt32), math.MinInt32))))) / v.top
	default:
		if v.hi <= v.lo {
			if x <= v.lo {
				return 0
			}
			return 1
		}
		y = (x - v.lo) / (v.hi - v.lo)
	}
	if math.IsNaN(y) {
		return 0 // only from overflowing attribute values
	}
	return min(max(y, 0), 1)
}

// windowVOI returns the VOI given by the first WindowCenter/WindowWidth
// pair and VOILUTFunction, if the header has a usable one.
func windowVOI(h header) (voi, bool) {
	if len(h.windowCenter) == 0 || len(h.windowWidth) == 0 {
		return voi{}, false
	}
	v := voi{center: h.windowCenter[0], width: h.windowWidth[0]}
	switch h.voiFunction {
	case "LINEAR_EXACT":
		v.kind = voiLinearExact
		return v, v.width > 0
	case "SIGMOID":
		v.kind = voiSigmoid
		return v, v.width > 0
	}
	v.kind = voiLinear
	return v, v.width >= 1
}

// chooseVOI picks the VOI of a grayscale frame, as PS3.3 C.11.2 allows
// either a window or a VOI LUT: the file's window if it has one; else the
// first item of its VOI LUT Sequence; else, for data of at most 8 bits,
// the identity over the whole stored range (so an 8-bit image shows as
// x/255, exactly like the PNG it was made from) or over the output range
// of an 8-bit Modality LUT; else a window from the 0.5th to the 99.5th
// percentile of the modality values. lo and hi are the range of
// f.samples (see valueRange), which the caller has already.
func chooseVOI(f frame, l layout, h header, lo, hi int64) voi {
	if v, ok := windowVOI(h); ok {
		return v
	}
	if h.voiLUT != nil && f.floats == nil {
		return voi{kind: voiTable, table: h.voiLUT, top: h.voiLUT.outputMax()}
	}
	if f.floats != nil {
		lo, hi := percentiles(slices.Clone(f.floats), lowPercentile, highPercentile)
		return voi{kind: voiRange, lo: lo, hi: hi}
	}
	if m := h.modalityLUT; m != nil {
		if m.outputMax() <= 255 {
			return voi{kind: voiRange, lo: 0, hi: m.outputMax()}
		}
		// LUT entries are 8- or 16-bit words, so the mapped values fit an
		// int32 and are not negative: l.value reads them as themselves
		// whatever the layout's pixel representation.
		mapped := make([]int32, len(f.samples))
		for i, s := range f.samples {
			mapped[i] = int32(m.at(l.value(s)))
		}
		lo, hi := storedPercentiles(mapped, l, lowPercentile, highPercentile)
		return voi{kind: voiRange, lo: lo, hi: hi}
	}
	if l.bitsStored <= 8 {
		lo, hi := 0.0, math.Exp2(float64(l.bitsStored))-1
		if l.signed {
			lo, hi = -math.Exp2(float64(l.bitsStored-1)), math.Exp2(float64(l.bitsStored-1))-1
		}
		return rangeVOI(lo, hi, h)
	}
	plo, phi := storedPercentilesIn(f.samples, l, lo, hi, lowPercentile, highPercentile)
	return rangeVOI(plo, phi, h)
}

// rangeVOI maps a range of stored values through the Modality LUT (which
// is linear, so it maps percentiles to percentiles) into a range VOI.
func rangeVOI(lo, hi float64, h header) voi {
	lo, hi = h.slope*lo+h.intercept, h.slope*hi+h.intercept
	if hi < lo {
		lo, hi = hi, lo
	}
	return voi{kind: voiRange, lo: lo, hi: hi}
}

// render runs the display pipeline of PS3.3 C.11 on a decoded frame:
// Modality LUT, VOI LUT and, for MONOCHROME1 or Presentation LUT Shape
// INVERSE, inversion, so that 1 is bright. Colour frames, palette colour
// through its LUTs, become their luminance.
func render(f frame, l layout, h header) (sentinel.Image, error) {
	img := sentinel.NewImage(l.cols, l.rows)
	switch f.photometric {
	case "MONOCHROME1", "MONOCHROME2":
		if h.lutErr != nil && f.floats == nil {
			return sentinel.Image{}, h.lutErr
		}
		renderGray(f, l, h, img.Pix)
	case "PALETTE COLOR":
		if h.paletteErr != nil {
			return sentinel.Image{}, h.paletteErr
		}
		renderPalette(f, l, h.palette, img.Pix)
	case "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420":
		renderColour(f, l, img.Pix)
	default:
		return sentinel.Image{}, fmt.Errorf("%w: photometric interpretation %q", sentinel.ErrUnsupported, f.photometric)
	}
	return img, nil
}

// maxLUT bounds the stored range rendered through a lookup table: one
// VOI evaluation per possible value instead of one per pixel.
const maxLUT = 1 << 20

// renderGray fills out from a grayscale frame.
func renderGray(f frame, l layout, h header, out []float32) {
	// The stored range serves both the percentile window and the lookup
	// table: one pass over the samples for both.
	var lo, hi int64
	// Unsigned samples of at most 8 bits allocated are all below 256,
	// and chooseVOI needs no stored range for at most 8 bits stored: the
	// lookup table covers 0 … 255 without a pass over the samples. A
	// codec's sample above that (which the table check below catches)
	// sends the frame the general way.
	byteLUT := f.floats == nil && !l.signed && l.bitsAllocated <= 8 && l.bitsStored <= 8
	if f.floats == nil {
		f.samples = f.samples[:len(out)]
		if byteLUT {
			lo, hi = 0, 255
		} else {
			lo, hi = l.valueRange(f.samples)
		}
	}
	v := chooseVOI(f, l, h, lo, hi)
	// In images (unlike presentation states) INVERSE accompanies
	// MONOCHROME1 to describe the same inversion (PS3.3 C.8.11.6.1.2), so
	// the two do not cancel.
	invert := f.photometric == "MONOCHROME1" || h.inverse
	modality := func(s int64) float64 {
		if h.modalityLUT != nil {
			return float64(h.modalityLUT.at(s))
		}
		return h.slope*float64(s) + h.intercept
	}
	display := func(m float64) float32 {
		y := v.apply(m)
		if invert {
			y = 1 - y
		}
		return float32(y)
	}
	if f.floats != nil {
		for i, m := range f.floats[:len(out)] {
			out[i] = display(m)
		}
		return
	}
	samples := f.samples
	if hi-lo >= maxLUT {
		eachBand(len(samples), 1, func(a, b int) {
			for i, s := range samples[a:b] {
				out[a+i] = display(modality(l.value(s)))
			}
		})
		return
	}
	for {
		levels := make([]float32, hi-lo+1)
		for k := range levels {
			levels[k] = display(modality(lo + int64(k)))
		}
		var outside atomic.Bool
		eachBand(len(samples), 1, func(a, b int) {
			o := out[a:b]
			if l.signed {
				for i, s := range samples[a:b] {
					o[i] = levels[int64(s)-lo]
				}
				return
			}
			for i, s := range samples[a:b] {
				k := int64(uint32(s)) - lo
				if k >= int64(len(levels)) {
					outside.Store(true)
					return
				}
				o[i] = levels[k]
			}
		})
		if !outside.Load() {
			return
		}
		// Only a byte table misses: find the stored range after all.
		lo, hi = l.valueRange(samples)
		if hi-lo >= maxLUT {
			eachBand(len(samples), 1, func(a, b int) {
				for i, s := range samples[a:b] {
					out[a+i] = display(modality(l.value(s)))
				}
			})
			return
		}
	}
}

// renderColour fills out with the luminance of an RGB or YBR frame:
// 0.299R + 0.587G + 0.114B, which is Y itself for YBR_FULL. Modality and
// VOI LUTs do not apply to colour images.
func renderColour(f frame, l layout, out []float32) {
	scale := math.Exp2(float64(l.bitsStored)) - 1
	ybr := f.photometric != "RGB"
	for p := range out {
		r, g, b := l.value(f.samples[3*p]), l.value(f.samples[3*p+1]), l.value(f.samples[3*p+2])
		lum := luminance(float64(r), float64(g), float64(b))
		if ybr {
			lum = float64(r)
		}
		out[p] = float32(min(max(lum/scale, 0), 1))
	}
}

// renderPalette fills out with the luminance of each pixel's palette
// colour (PS3.3 C.7.6.3.1.5): indices below the first mapped value take the
// first entry, those past the table the last.
func renderPalette(f frame, l layout, p [3]*lut, out []float32) {
	lum := paletteLuminance(p)
	first := p[0].first
	last := int64(len(lum) - 1)
	for i, s := range f.samples[:len(out)] {
		out[i] = lum[min(max(l.value(s)-first, 0), last)]
	}
}

// valueRange returns the smallest and largest values of samples s of this
// layout, which must not be empty. Unsigned samples are compared as
// uint32, so that 32-bit values above 2^31-1 count as the largest.
func (l layout) valueRange(s []int32) (lo, hi int64) {
	var mu sync.Mutex
	first := true
	eachBand(len(s), 1, func(a, b int) {
		blo, bhi := l.bandRange(s[a:b])
		mu.Lock()
		if first || blo < lo {
			lo = blo
		}
		if first || bhi > hi {
			hi = bhi
		}
		first = false
		mu.Unlock()
	})
	return lo, hi
}

// bandRange is valueRange on one goroutine.
func (l layout) bandRange(s []int32) (lo, hi int64) {
	if l.signed {
		a, b := minMax(s)
		return int64(a), int64(b)
	}
	a, b := minMax(unsafe.Slice((*uint32)(unsafe.Pointer(&s[0])), len(s)))
	return int64(a), int64(b)
}

// minMax returns the smallest and largest values of s, which must not be
// empty, in one pass with four running minima and maxima, so that each
// comparison waits on the one four values back rather than the one
// before.
func minMax[T int32 | uint32](s []T) (T, T) {
	lo0, hi0 := s[0], s[0]
	lo1, hi1, lo2, hi2, lo3, hi3 := lo0, hi0, lo0, hi0, lo0, hi0
	i := 0
	for ; i+4 <= len(s); i += 4 {
		q := s[i : i+4 : i+4]
		lo0, hi0 = min(lo0, q[0]), max(hi0, q[0])
		lo1, hi1 = min(lo1, q[1]), max(hi1, q[1])
		lo2, hi2 = min(lo2, q[2]), max(hi2, q[2])
		lo3, hi3 = min(lo3, q[3]), max(hi3, q[3])
	}
	for _, v := range s[i:] {
		lo0, hi0 = min(lo0, v), max(hi0, v)
	}
	return min(lo0, lo1, lo2, lo3), max(hi0, hi1, hi2, hi3)
}

// storedPercentiles returns the p1 and p2 quantiles of the values of
// integer samples of layout l, interpolated linearly between order
// statistics (numpy's default). It counts a histogram when the range
// allows, which is linear in the number of samples.
func storedPercentiles(s []int32, l layout, p1, p2 float64) (float64, float64) {
	if len(s) == 0 {
		return 0, 0
	}
	lo, hi := l.valueRange(s)
	return storedPercentilesIn(s, l, lo, hi, p1, p2)
}

// storedPercentilesIn is storedPercentiles with the samples' range, lo
// to hi, already known.
func storedPercentilesIn(s []int32, l layout, lo, hi int64, p1, p2 float64) (float64, float64) {
	if len(s) == 0 {
		return 0, 0
	}
	if hi-lo > 1<<22 {
		vals := make([]float64, len(s))
		for i, v := range s {
			vals[i] = float64(l.value(v))
		}
		return percentiles(vals, p1, p2)
	}
	// A histogram per band of samples, added up: counts do not depend on
	// the split. A histogram of more than 2^16 values (samples of more
	// than 16 bits) is counted on one goroutine rather than copied per
	// band.
	counts := make([]int, hi-lo+1)
	var mu sync.Mutex
	split := eachBand
	if len(counts) > 1<<16 {
		split = func(n, _ int, f func(lo, hi int)) { f(0, n) }
	}
	split(len(s), 1, func(a, b int) {
		c := counts
		if a > 0 || b < len(s) {
			c = make([]int, len(counts))
		}
		if l.signed {
			for _, v := range s[a:b] {
				c[int64(v)-lo]++
			}
		} else {
			for _, v := range s[a:b] {
				c[int64(uint32(v))-lo]++
			}
		}
		if a > 0 || b < len(s) {
			mu.Lock()
			for i, n := range c {
				counts[i] += n
			}
			mu.Unlock()
		}
	})
	// kth returns the k-th smallest sample (0-based).
	kth := func(k int) float64 {
		seen := 0
		for i, c := range counts {
			seen += c
			if seen > k {
				return float64(lo + int64(i))
			}
		}
		return float64(hi)
	}
	q := func(p float64) float64 {
		pos := p * float64(len(s)-1)
		k := int(math.Floor(pos))
		a := kth(k)
		if k+1 >= len(s) {
			return a
		}
		return a + (pos-float64(k))*(kth(k+1)-a)
	}
	return q(p1), q(p2)
}

// percentiles returns the p1 and p2 quantiles of vals, which it sorts.
func percentiles(vals []float64, p1, p2 float64) (float64, float64) {
	if len(vals) == 0 {
		return 0, 0
	}
	slices.Sort(vals)
	q := func(p float64) float64 {
		pos := p * float64(len(vals)-1)
		k := int(math.Floor(pos))
		if k+1 >= len(vals) {
			return vals[k]
		}
		return vals[k] + (pos-float64(k))*(vals[k+1]-vals[k])
	}
	return q(p1), q(p2)
}
