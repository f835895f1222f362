package jpeg2000

// Inverse discrete wavelet transforms of ITU-T T.800 Annex F: the
// reversible 5/3 filter on integers and the irreversible 9/7 filter on
// float32, both by lifting with symmetric extension at the edges.

import "sync"

// 9/7 lifting constants (Table F.4).
const (
	alpha97 = -1.586134342059924
	beta97  = -0.052980118572961
	gamma97 = 0.882911075530934
	delta97 = 0.443506852043971
	k97     = 1.230174104914001

	// invK97 scales the high-pass samples. The exact value is 1/K =
	// 0.8128930661…; OpenJPEG, and so GDCM and most DICOM toolkits, use
	// 1.625732422/2 = 0.812866211 (a relative difference of 3.4e-5, far
	// below a quantisation step). Using theirs makes our 9/7 output
	// bit-identical to theirs on every lossy file of the corpus, instead
	// of differing by one level on about 1% of samples.
	invK97 = 1.625732422 / 2
)

// stripWidth is how many columns the vertical pass of the inverse
// transforms lifts at once: the rows of a strip are contiguous, so the
// pass reads and writes memory in order instead of one sample per row.
const stripWidth = 64

// dwtWorkers bounds the goroutines one inverse transform runs on. Rows
// (and strips of columns) of a level are independent, so they are split
// between the cores; the levels follow one another.
const dwtWorkers = 4

// parallel runs f over [0, n) split into one contiguous range per worker,
// the worker's index given so it can use its own buffers. A panic in a
// worker is raised again in the caller's goroutine, where Decode's
// recover can catch it.
func parallel(n, workers int, f func(w, lo, hi int)) {
	if workers <= 1 || n < 2*workers {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	panics := make([]any, workers)
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Go(func() {
			defer func() { panics[w] = recover() }()
			f(w, lo, hi)
		})
	}
	wg.Wait()
	for _, p := range panics {
		if p != nil {
			panic(p)
		}
	}
}

// inverse53 reconstructs tc.ibuf level by level, rows then columns.
func (tc *tileComp) inverse53(workers int) {
	inverseDWT(tc, tc.ibuf, workers, lift53, lift53Rows)
}

// inverse97 reconstructs tc.fbuf level by level, rows then columns.
func (tc *tileComp) inverse97(workers int) {
	inverseDWT(tc, tc.fbuf, workers, lift97, lift97Rows)
}

// inverseDWT reconstructs buf, a tile component's coefficients, level by
// level: each row with lift on up to workers goroutines, then the columns
// in strips of stripWidth with liftRows, which lifts every column of a
// strip at once.
func inverseDWT[T int32 | float32](tc *tileComp, buf []T, workers int, lift func([]T, int), liftRows func([]T, int, int, int)) {
	stride := tc.x1 - tc.x0
	workers = max(1, min(workers, dwtWorkers))
	tmps := make([][]T, workers)
	strips := make([][]T, workers)
	for r := 1; r < len(tc.res); r++ {
		res, low := &tc.res[r], &tc.res[r-1]
		w, h := res.x1-res.x0, res.y1-res.y0
		lw, lh := low.x1-low.x0, low.y1-low.y0
		parallel(h, workers, func(k, lo, hi int) {
			if len(tmps[k]) < w {
				tmps[k] = make([]T, w)
			}
			tmp := tmps[k][:w]
			for y := lo; y < hi; y++ {
				row := buf[y*stride : y*stride+w]
				interleave(tmp, row, lw, res.x0&1)
				lift(tmp, res.x0&1)
				copy(row, tmp)
			}
		})
		nstrips := (w + stripWidth - 1) / stripWidth
		parallel(nstrips, workers, func(k, lo, hi int) {
			if need := h * min(w, stripWidth); len(strips[k]) < need {
				strips[k] = make([]T, need)
			}
			for s := lo; s < hi; s++ {
				x0 := s * stripWidth
				sw := min(stripWidth, w-x0)
				t := strips[k][:h*sw]
				gatherStrip(t, buf, stride, x0, sw, h, lh, res.y0&1)
				liftRows(t, h, sw, res.y0&1)
				for i := range h {
					copy(buf[i*stride+x0:i*stride+x0+sw], t[i*sw:(i+1)*sw])
				}
			}
		})
	}
}

// gatherStrip copies columns x0..x0+sw of the h rows of buf into t, one
// row after the other, in signal order: the low-pass rows (the first nl)
// and the high-pass rows interleaved as parity says (see interleave).
func gatherStrip[T int32 | float32](t, buf []T, stride, x0, sw, h, nl, parity int) {
	li, hi := 0, nl
	for i := range h {
		src := li
		if (i+parity)&1 == 0 {
			li++
		} else {
			src = hi
			hi++
		}
		copy(t[i*sw:(i+1)*sw], buf[src*stride+x0:src*stride+x0+sw])
	}
}

// mirror maps an index outside 0..n-1 to its symmetric extension (F.3.7).
func mirror(i, n int) int {
	if i < 0 {
		return -i
	}
	if i >= n {
		return 2*(n-1) - i
	}
	return i
}

// lift53Rows is lift53 applied to every column of t, which holds n rows
// of sw samples.
func lift53Rows(t []int32, n, sw, parity int) {
	if n == 1 {
		if parity == 1 {
			for j := range t[:sw] {
				t[j] /= 2
			}
		}
		return
	}
	row := func(i int) []int32 {
		i = mirror(i, n)
		return t[i*sw : (i+1)*sw : (i+1)*sw]
	}
	for i := parity; i < n; i += 2 {
		a, b, c := row(i-1), row(i), row(i+1)
		for j := range b {
			b[j] -= (a[j] + c[j] + 2) >> 2
		}
	}
	for i := 1 - parity; i < n; i += 2 {
		a, b, c := row(i-1), row(i), row(i+1)
		for j := range b {
			b[j] += (a[j] + c[j]) >> 1
		}
	}
}

// interleave puts the low-pass samples src[:nl] and the high-pass samples
// src[nl:] in signal order into dst; parity is that of the first sample's
// coordinate (odd coordinates are high-pass).
func interleave[T int32 | float32](dst, src []T, nl, parity int) {
	low, high := src[:nl], src[nl:]
	for k, i := 0, parity&1; i < len(dst); k, i = k+1, i+2 {
		dst[i] = low[k]
	}
	for k, i := 0, 1-parity&1; i < len(dst); k, i = k+1, i+2 {
		dst[i] = high[k]
	}
}

// lift53 undoes the 5/3 lifting steps (F.3.8.2) on one interleaved line.
func lift53(x []int32, parity int) {
	n := len(x)
	if n == 1 {
		if parity == 1 {
			x[0] /= 2
		}
		return
	}
	// Each step updates every other sample from its two neighbours; only
	// the first and last may need the symmetric extension.
	edge := func(i int) int32 { return x[mirror(i-1, n)] + x[mirror(i+1, n)] }
	i := parity
	if i == 0 {
		x[0] -= (edge(0) + 2) >> 2
		i = 2
	}
	for ; i < n-1; i += 2 {
		x[i] -= (x[i-1] + x[i+1] + 2) >> 2
	}
	if i == n-1 {
		x[i] -= (edge(i) + 2) >> 2
	}
	i = 1 - parity
	if i == 0 {
		x[0] += edge(0) >> 1
		i = 2
	}
	for ; i < n-1; i += 2 {
		x[i] += (x[i-1] + x[i+1]) >> 1
	}
	if i == n-1 {
		x[i] += edge(i) >> 1
	}
}

// lift97Rows is lift97 applied to every column of t, which holds n rows
// of sw samples, with the same float32 operations in the same order.
func lift97Rows(t []float32, n, sw, parity int) {
	if n == 1 {
		if parity == 1 {
			for j := range t[:sw] {
				t[j] /= 2
			}
		}
		return
	}
	row := func(i int) []float32 {
		i = mirror(i, n)
		return t[i*sw : (i+1)*sw : (i+1)*sw]
	}
	even, odd := parity, 1-parity
	for i := even; i < n; i += 2 {
		for j, r := 0, row(i); j < len(r); j++ {
			r[j] *= k97
		}
	}
	for i := odd; i < n; i += 2 {
		for j, r := 0, row(i); j < len(r); j++ {
			r[j] *= invK97
		}
	}
	steps := [4]struct {
		start int
		c     float32
	}{{even, delta97}, {odd, gamma97}, {even, beta97}, {odd, alpha97}}
	for _, s := range steps {
		for i := s.start; i < n; i += 2 {
			a, b, c := row(i-1), row(i), row(i+1)
			for j := range b {
				b[j] -= float32(s.c * (a[j] + c[j]))
			}
		}
	}
}

// lift97 undoes the 9/7 lifting steps and scaling (F.3.8.2) on one line.
func lift97(x []float32, parity int) {
	n := len(x)
	if n == 1 {
		if parity == 1 {
			x[0] /= 2
		}
		return
	}
	at := func(i int) float32 {
		if i < 0 {
			i = -i
		} else if i >= n {
			i = 2*(n-1) - i
		}
		return x[i]
	}
	even, odd := parity, 1-parity
	for i := even; i < n; i += 2 {
		x[i] *= k97
	}
	for i := odd; i < n; i += 2 {
		x[i] *= invK97
	}
	steps := [4]struct {
		start int
		c     float32
	}{{even, delta97}, {odd, gamma97}, {even, beta97}, {odd, alpha97}}
	for _, s := range steps {
		for i := s.start; i < n; i += 2 {
			// The conversion forbids fusing into an FMA, so results are the
			// same on every platform.
			x[i] -= float32(s.c * (at(i-1) + at(i+1)))
		}
	}
}
