package detector

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// workers is the number of goroutines the detector splits work over.
func workers() int { return max(1, runtime.GOMAXPROCS(0)) }

// parallel runs f(t) for t in [0, tasks) on up to workers() goroutines,
// each with its own worker index w for per-worker buffers. Worker w always
// takes tasks w, w+n, w+2n…, so partial sums kept per worker cover the same
// tasks on every run and training stays deterministic.
func parallel(tasks int, f func(w, t int)) {
	nw := min(workers(), tasks)
	if nw <= 1 {
		for t := range tasks {
			f(0, t)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range nw {
		wg.Go(func() {
			for t := w; t < tasks; t += nw {
				f(w, t)
			}
		})
	}
	wg.Wait()
}

// eachTask runs f(t) for t in [0, tasks) on up to workers() goroutines,
// each taking the next task when it finishes one, so that tasks of unequal
// length still keep every core busy. Which goroutine runs a task varies, so
// f must write only that task's own result.
func eachTask(tasks int, f func(t int)) {
	nw := min(workers(), tasks)
	if nw <= 1 {
		for t := range tasks {
			f(t)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range nw {
		wg.Go(func() {
			for {
				t := int(next.Add(1)) - 1
				if t >= tasks {
					return
				}
				f(t)
			}
		})
	}
	wg.Wait()
}
