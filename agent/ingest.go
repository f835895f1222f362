package agent

import (
	"context"
	"fmt"

	"github.com/sentinel-pacs/sentinel/internal/parallel"
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

	outcomes := make([]Outcome, len(paths))
	// A file's trouble is its outcome, not an error; cancellation is
	// reported below.
	_, _ = parallel.Each(ctx, len(paths), a.cfg.Workers, func(i int) error {
		outcomes[i] = a.handle(ctx, paths[i])
		return nil
	})
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
