// Package parallel runs independent tasks, such as decoding or scoring a
// list of images, on a few goroutines.
package parallel

import (
	"context"
	"sync"
	"sync/atomic"
)

// Each runs f(i) for every i in [0, n) on up to workers goroutines (at
// least one), each taking the next index when it finishes one, and returns
// each task's error by index (nil for the tasks that succeeded). Once ctx
// is done no further task starts, and Each returns ctx's error.
func Each(ctx context.Context, n, workers int, f func(i int) error) ([]error, error) {
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(1, workers), max(1, n)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				errs[i] = f(i)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return errs, err
	}
	return errs, nil
}

// All runs f as Each does and returns ctx's error, or else the first task
// error in index order: for work where any failure fails the whole.
func All(ctx context.Context, n, workers int, f func(i int) error) error {
	errs, err := Each(ctx, n, workers, f)
	if err != nil {
		return err
	}
	return First(errs)
}

// First returns the first non-nil error of errs, in index order.
func First(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
