package parallel

import (
	"context"
	"errors"
	"fmt"
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
	}
	if errs, err := Each(context.Background(), 0, 2, func(int) error { return errors.New("ran") }); err != nil || len(errs) != 0 {
		t.Errorf("no tasks: %v, %v", errs, err)
	}
}

func TestEachStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int32
	_, err := Each(ctx, 1000, 2, func(i int) error {
		if ran.Add(1) == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := ran.Load(); n > 12 {
		t.Errorf("%d tasks ran after cancelling at the tenth", n)
	}
}
