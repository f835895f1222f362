package dicomio

import (
	"runtime"
	"sync"
)

// minBand is the fewest items (pixels or rows' worth of work) worth a
// goroutine of their own: below it starting one costs more than it saves.
const minBand = 1 << 16

// eachBand calls f on contiguous ranges [lo, hi) covering [0, n), one per
// core when n holds at least minBand items per range (cost is the work per
// item, in pixels), otherwise once on the calling goroutine. Ranges never
// overlap, so f may write its own range of an output without locks, and
// per-range results combined in range order do not depend on timing.
func eachBand(n, cost int, f func(lo, hi int)) {
	bands := min(runtime.GOMAXPROCS(0), n*cost/minBand, n)
	if bands <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for b := range bands {
		lo, hi := b*n/bands, (b+1)*n/bands
		wg.Go(func() { f(lo, hi) })
	}
	wg.Wait()
}
