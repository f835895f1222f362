package agent

import (
	"context"
	"log/slog"
	"time"
)

// heartbeatEvery is how often an agent says it is alive, relative to the
// lease on its claims: four beats fit in one lease, so one late beat (a
// busy database, a long pause) does not lose a claim.
func (a *Agent) heartbeatEvery() time.Duration {
	d := a.db.ClaimLease / 4
	if d <= 0 {
		d = 15 * time.Second
	}
	return d
}

// heartbeat records, until ctx ends, that the agent is alive, and extends
// the leases on the files it is processing: another agent sharing the
// database takes a file up only once its claim has run out.
func (a *Agent) heartbeat(ctx context.Context) {
	t := time.NewTicker(a.heartbeatEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.db.Heartbeat(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("heartbeat", slog.Any("error", err))
			}
		}
	}
}
