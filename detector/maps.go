package detector

import (
	"math"
	"math/bits"
	"slices"
	"sync"
)

// gaussianBlur smooths a side×side map with a Gaussian of standard
// deviation sigma pixels, separably, truncated at 3σ and renormalised at the
// borders so that a constant map stays constant. sigma ≤ 0 returns a copy.
func gaussianBlur(x []float64, side int, sigma float64) []float64 {
	if !(sigma > 0) {
		return slices.Clone(x)
	}
	r := max(1, int(math.Ceil(3*sigma)))
	kern := make([]float64, 2*r+1)
	for i := range kern {
		t := float64(i - r)
		kern[i] = math.Exp(-t * t / (2 * sigma * sigma))
	}
	// Each pass sums, in tap order, the taps that fall inside the map: a
	// contiguous range [i0, i1) of the kernel for each pixel, and divides
	// by their weights' sum, added in the same order.
	weight := func(i0, i1 int) float64 {
		var w float64
		for _, k := range kern[i0:i1] {
			w += k
		}
		return w
	}
	whole := weight(0, len(kern))
	// Along rows: the columns whose taps all fall inside accumulate tap by
	// tap, a run of columns at a time (so that no pixel's sum waits on
	// another's); the others, near the ends, one pixel at a time.
	tp := blurScratch.Get().(*[]float64)
	defer blurScratch.Put(tp)
	if cap(*tp) < len(x) {
		*tp = make([]float64, len(x))
	}
	tmp := (*tp)[:len(x)]
	clear(tmp)
	for y := range side {
		in, o := x[y*side:][:side], tmp[y*side:][:side]
		if side > 2*r {
			inner := o[r : side-r]
			for i, k := range kern {
				mulAdd(inner, in[i:i+len(inner)], k)
			}
			divide(inner, whole)
		}
		for c := range side {
			if c >= r && c < side-r {
				continue
			}
			i0, i1 := max(0, r-c), min(len(kern), side-c+r)
			win := in[c+i0-r : c+i1-r]
			var s float64
			for i, k := range kern[i0:i1] {
				s += k * win[i]
			}
			o[c] = s / weight(i0, i1)
		}
	}
	// Along columns: each output row accumulates its taps' rows in tap
	// order, a whole row at a time, which sums each pixel's taps in the
	// same order as one pixel at a time.
	out := make([]float64, len(x))
	for y := range side {
		i0, i1 := max(0, r-y), min(len(kern), side-y+r)
		o := out[y*side:][:side]
		for i, k := range kern[i0:i1] {
			mulAdd(o, tmp[(y+i0+i-r)*side:][:side], k)
		}
		divide(o, weight(i0, i1))
	}
	return out
}

// blurScratch keeps gaussianBlur's intermediate map between calls.
var blurScratch = sync.Pool{New: func() any { return new([]float64) }}

// topMean returns the mean of the largest ceil(fraction·len(v)) values of
// v (at least one): fraction 1 is the mean, a fraction below 1/len(v) the
// maximum.
func topMean(v []float64, fraction float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	k := min(len(s), max(1, int(math.Ceil(fraction*float64(len(s))))))
	selectLargest(s, k)
	top := s[len(s)-k:]
	// The mean sums in ascending order, as over a sorted copy.
	if len(top) > 64 {
		sortFloats(top)
	} else {
		slices.Sort(top)
	}
	return mean(top)
}

// sortFloats sorts s in ascending order. The values' bits are turned into
// keys that order as the values (a positive value's bits with the sign
// set, a negative value's all inverted), spread by their leading bits
// below the part every key shares over about as many buckets as there
// are values (one counting pass), and each bucket, a handful of keys on a
// map's smooth distribution, is finished by insertion (or a comparison
// sort, should one hold many). Scoring takes the mean of whole maps in
// ascending order several times per image, and a comparison sort of 4,096
// values was a fifth of scoring's time. Values that compare equal (±0) may
// come out in either order, as with slices.Sort; NaNs, which no map holds,
// are not placed where slices.Sort places them.
func sortFloats(s []float64) {
	n := len(s)
	if n < 2 {
		return
	}
	// The keys and the buckets' counts come from a pool: made afresh,
	// their clearing and collection cost a fifth of the sort.
	sc, _ := sortScratch.Get().(*sortBuffers)
	if sc == nil {
		sc = &sortBuffers{}
	}
	defer sortScratch.Put(sc)
	if cap(sc.keys) < 2*n {
		sc.keys = make([]uint64, 2*n)
	}
	keys := sc.keys[:2*n]
	a, b := keys[:n], keys[n:]
	lo, hi := ^uint64(0), uint64(0)
	for i, v := range s {
		u := math.Float64bits(v)
		if u>>63 != 0 {
			u = ^u
		} else {
			u |= 1 << 63
		}
		a[i] = u
		lo, hi = min(lo, u), max(hi, u)
	}
	if lo == hi {
		return // every value the same
	}
	// About four keys per bucket.
	bucketBits := max(1, bits.Len(uint(n))-3)
	shift := max(0, bits.Len64(hi-lo)-bucketBits)
	if cap(sc.ends) < 1<<bucketBits {
		sc.ends = make([]int, 1<<bucketBits)
	}
	ends := sc.ends[:1<<bucketBits]
	clear(ends)
	for _, u := range a {
		ends[(u-lo)>>shift]++
	}
	start := 0
	for j, c := range ends {
		ends[j] = start // each bucket's start, until the scatter moves it to its end
		start += c
	}
	for _, u := range a {
		j := (u - lo) >> shift
		b[ends[j]] = u
		ends[j]++
	}
	start = 0
	for _, end := range ends {
		bucket := b[start:end]
		start = end
		if len(bucket) > 32 {
			slices.Sort(bucket)
			continue
		}
		for x := 1; x < len(bucket); x++ {
			u := bucket[x]
			y := x
			for ; y > 0 && bucket[y-1] > u; y-- {
				bucket[y] = bucket[y-1]
			}
			bucket[y] = u
		}
	}
	for i, u := range b {
		if u>>63 != 0 {
			u &^= 1 << 63
		} else {
			u = ^u
		}
		s[i] = math.Float64frombits(u)
	}
}

// sortBuffers is sortFloats' scratch, kept in sortScratch.
type sortBuffers struct {
	keys []uint64
	ends []int
}

var sortScratch sync.Pool // of *sortBuffers

// selectLargest reorders s so that its last k values are its k largest
// (in no particular order), by quickselect with a median-of-three pivot:
// scoring takes the top 1% of a few thousand map values several times per
// image, and sorting them all cost more than the rest of the map work.
func selectLargest(s []float64, k int) {
	lo, hi := 0, len(s)-1
	target := len(s) - k // s[target:] must hold the k largest
	for lo < hi {
		mid := lo + (hi-lo)/2
		if s[mid] < s[lo] {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if s[hi] < s[lo] {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if s[hi] < s[mid] {
			s[hi], s[mid] = s[mid], s[hi]
		}
		pivot := s[mid]
		i, j := lo, hi
		for i <= j {
			for s[i] < pivot {
				i++
			}
			for s[j] > pivot {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		// Now s[lo..j] ≤ pivot ≤ s[i..hi], and values between j and i equal
		// the pivot.
		switch {
		case target <= j:
			hi = j
		case target >= i:
			lo = i
		default:
			return
		}
	}
}

// upsampleMap resizes a g×g map to side×side bilinearly.
func upsampleMap(x []float64, g, side int) []float64 {
	f := make([]float32, len(x))
	for i, v := range x {
		f[i] = float32(v)
	}
	r := resizeBilinear(f, 1, g, side)
	out := make([]float64, len(r))
	for i, v := range r {
		out[i] = float64(v)
	}
	return out
}

// standardise returns x shifted and scaled to zero mean and unit variance
// (left at zero mean when x is constant).
func standardise(x []float32) []float32 {
	var s, ss float64
	for _, v := range x {
		s += float64(v)
	}
	mu := s / float64(len(x))
	for _, v := range x {
		ss += (float64(v) - mu) * (float64(v) - mu)
	}
	sd := math.Sqrt(ss / float64(len(x)))
	if sd == 0 {
		sd = 1
	}
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32((float64(v) - mu) / sd)
	}
	return out
}
