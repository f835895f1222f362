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

// ErrRoundRunning means another round of queries is being chosen on the
// workspace, in this process or another.
var ErrRoundRunning = errors.New("another round of queries is being chosen on this workspace")

// learningLease names the lease a learning cycle holds, queriesLease the
// one a round of queries holds, and leaseTTL is how long a lease lasts
// unless renewed: its holder renews it every third of that, and a holder
// whose process died frees it when it runs out.
const (
	learningLease = "learning"
	queriesLease  = "queries"
	leaseTTL      = 10 * time.Minute
)

// leaseSeq tells apart the cycles of one process.
var leaseSeq atomic.Int64

// withLease runs fn holding the workspace's lease of that name: the
// learning lease, so that two retraining or admission cycles never run at
// once (two cycles would train two candidates and promote both, the second
// over the first), or the queries lease, so that two rounds chosen at once
// do not ask for twice the budget. It fails with busy, saying who holds the
// lease, if another holder has it. fn's context is cancelled if the lease
// is lost.
func withLease(ctx context.Context, db *store.DB, name string, busy error, log *slog.Logger, fn func(context.Context) error) error {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s pid %d cycle %d", host, os.Getpid(), leaseSeq.Add(1))
	lease, err := db.Acquire(ctx, name, holder, leaseTTL)
	if errors.Is(err, store.ErrLeaseHeld) {
		return fmt.Errorf("%w: %w", busy, err)
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
					log.Error("lease lost; stopping", slog.String("lease", name), slog.Any("error", err))
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
// withLease).
func leased[T any](ctx context.Context, db *store.DB, opt LearningOptions, cycle func(context.Context, *store.DB, LearningOptions) (T, error)) (res T, err error) {
	err = withLease(ctx, db, learningLease, ErrCycleRunning, opt.log(), func(ctx context.Context) error {
		res, err = cycle(ctx, db, opt)
		return err
	})
	return res, err
}
