package agent

import (
	"log/slog"
	"syscall"
)

// freeBytes returns the space available to unprivileged users on the
// filesystem holding path.
func freeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// checkDisk pauses ingest while free space under the reports folder is below
// the floor, and resumes it when space comes back. It reports whether ingest
// is paused.
func (a *Agent) checkDisk() bool {
	floor := a.floor.Load()
	if floor <= 0 {
		return false
	}
	free, err := freeBytes(a.cfg.Reports)
	if err != nil {
		// Cannot tell: keep going rather than stall on a statfs quirk.
		return false
	}
	low := free < floor
	if was := a.paused.Swap(low); was != low {
		if low {
			a.log.Warn("ingest paused: free disk space below floor", slog.Int64("free_bytes", free),
				slog.Int64("floor_bytes", floor))
		} else {
			a.log.Info("ingest resumed", slog.Int64("free_bytes", free))
		}
	}
	if low {
		a.metrics.paused.Set(1)
	} else {
		a.metrics.paused.Set(0)
	}
	return low
}
