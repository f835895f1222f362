package parallel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEachRunsEveryTaskOnce(t *testing.T) {
	for _, workers := range []int{0, 1, 3, 50} {
		var runs [17]atomic.Int32
		errs, err := Each(context.Background(), len(runs), workers, func(i int) error {
			runs[i].Add(1)
			if i%5 == 2 {
				return fmt.Errorf("task %d", i)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range runs {
			if n := runs[i].Load(); n != 1 {
				t.Errorf("workers %d: task %d ran %d times", workers, i, n)
			}
			if (errs[i] != nil) != (i%5 == 2) {
				t.Errorf("workers %d: task %d error %v", workers, i, errs[i])
			}
		}
		if got := First(errs); got == nil || got.Error() != "task 2" {
			t.Errorf("workers %d: First = %v, want task 2", workers, got)
		}
		if got := All(context.Background(), 17, workers, func(i int) error {
			if i == 9 || i == 4 {
				return fmt.Errorf("task %d", i)
			}
			return nil
		}); got == nil || got.Error() != "task 4" {
			t.Errorf("workers %d: All = %v, want task 4", workers, got)
		}
	}
	if errs, err := Each(context.Background(), 0, 2, func(int) error { return errors.New("ran") }); err != nil || len(errs) != 0 {
		t.Errorf("no tasks: %v, %v", errs, err)
	}
}

func TestEachStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	// The count and the cancel happen under one lock, so that no other
	// worker can run tasks between the tenth and its cancel: after it, the
	// other worker may finish only the task it had already taken.
	var mu sync.Mutex
	ran := 0
	_, err := Each(ctx, 1000, 2, func(i int) error {
		mu.Lock()
		defer mu.Unlock()
		if ran++; ran == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if err := All(ctx, 3, 2, func(int) error { return errors.New("ran") }); !errors.Is(err, context.Canceled) {
		t.Errorf("All on a cancelled context = %v, want context.Canceled", err)
	}
	if ran > 11 {
		t.Errorf("%d tasks ran, cancelling at the tenth with two workers", ran)
	}
}
