package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/sentinel-pacs/sentinel/store"
)

// ErrCycleRunning means another learning cycle (retraining or admission)
// is running on the workspace, in this process or another.
var ErrCycleRunning = errors.New("another learning cycle is running on this workspace")

// learningLease names the lease a learning cycle holds, and leaseTTL is how
// long the lease lasts unless renewed: a cycle renews it every third of
// that, and a cycle whose process died frees it when it runs out.
const (
	learningLease = "learning"
	leaseTTL      = 10 * time.Minute
)

// leaseSeq tells apart the cycles of one process.
var leaseSeq atomic.Int64

// withLearningLease runs fn holding the workspace's learning lease, so
// that two retraining or admission cycles never run at once (two cycles
// would train two candidates and promote both, the second over the first).
// It fails with ErrCycleRunning, saying who holds the lease, if another
// cycle does. fn's context is cancelled if the lease is lost.
func withLearningLease(ctx context.Context, db *store.DB, log *slog.Logger, fn func(context.Context) error) error {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s pid %d cycle %d", host, os.Getpid(), leaseSeq.Add(1))
	lease, err := db.Acquire(ctx, learningLease, holder, leaseTTL)
	if errors.Is(err, store.ErrLeaseHeld) {
		return fmt.Errorf("%w: %w", ErrCycleRunning, err)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return // the cycle is stopping anyway
			case <-t.C:
				if err := lease.Renew(ctx); err != nil && ctx.Err() == nil {
					log.Error("learning lease lost; stopping the cycle", slog.Any("error", err))
					cancel(err)
					return
				}
			}
		}
	}()
	err = fn(ctx)
	close(done)
	if rerr := lease.Release(context.WithoutCancel(ctx)); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

// leased runs one learning cycle under the workspace's learning lease (see
// withLearningLease).
func leased[T any](ctx context.Context, db *store.DB, opt LearningOptions, cycle func(context.Context, *store.DB, LearningOptions) (T, error)) (res T, err error) {
	err = withLearningLease(ctx, db, opt.log(), func(ctx context.Context) error {
		res, err = cycle(ctx, db, opt)
		return err
	})
	return res, err
}
