package agent

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"sync"
)

// Summary counts the outcomes of an ingest pass by status.
type Summary map[string]int

// IngestDir processes every file under dir once, with the agent's worker
// pool, and returns when all are handled or ctx is cancelled. Files are
// taken as they are, without waiting for them to be stable: the folder is
// assumed complete.
func (a *Agent) IngestDir(ctx context.Context, dir string) (Summary, []Outcome, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && skipName(d.Name()) {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && !skipName(d.Name()) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ingest %s: %w", dir, err)
	}
	sort.Strings(paths)

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
