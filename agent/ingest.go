package agent

import (
	"context"
	"fmt"
	"sync"
)

// Summary counts the outcomes of an ingest pass by status.
type Summary map[string]int

// IngestDir processes every file under dir that ListFiles lists once, with the agent's worker
// pool, and returns when all are handled or ctx is cancelled. Files are
// taken as they are, without waiting for them to be stable: the folder is
// assumed complete.
func (a *Agent) IngestDir(ctx context.Context, dir string) (Summary, []Outcome, error) {
	paths, err := ListFiles(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("ingest: %w", err)
	}

	work := make(chan int)
	outcomes := make([]Outcome, len(paths))
	var wg sync.WaitGroup
	for i := 0; i < a.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				outcomes[i] = a.handle(ctx, paths[i])
			}
		}()
	}
feed:
	for i := range paths {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	sum := Summary{}
	var done []Outcome
	for _, o := range outcomes {
		if o.Path == "" {
			continue // not reached before cancellation
		}
		sum[o.Status]++
		done = append(done, o)
	}
	return sum, done, ctx.Err()
}
