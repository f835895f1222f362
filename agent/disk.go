package agent

import (
	"errors"
	"log/slog"
	"syscall"
	"time"

	"github.com/sentinel-pacs/sentinel/store"
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

// writtenDirs lists the folders the agent writes into: each may sit on a
// filesystem of its own.
func (a *Agent) writtenDirs() []string {
	dirs := []string{a.cfg.Reports, a.cfg.Quarantine}
	for _, d := range []string{a.cfg.Archive, a.cfg.StateDir} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// checkDisk pauses ingest while free space under any folder the agent
// writes is below the floor, and resumes it when space comes back. It
// reports whether ingest is paused.
func (a *Agent) checkDisk() bool {
	floor := a.floor.Load()
	if floor <= 0 {
		a.paused.Store(false)
		a.metrics.paused.Set(0)
		return false
	}
	low, lowDir, lowFree := false, "", int64(0)
	for _, d := range a.writtenDirs() {
		free, err := freeBytes(d)
		if err != nil {
			continue // cannot tell: do not stall on a statfs quirk
		}
		if free < floor {
			low, lowDir, lowFree = true, d, free
			break
		}
	}
	if was := a.paused.Swap(low); was != low {
		if low {
			a.log.Warn("ingest paused: free disk space below floor", slog.String("folder", lowDir),
				slog.Int64("free_bytes", lowFree), slog.Int64("floor_bytes", floor))
		} else {
			a.log.Info("ingest resumed: free disk space above floor")
		}
	}
	if low {
		a.metrics.paused.Set(1)
	} else {
		a.metrics.paused.Set(0)
	}
	return low
}

// ownSide reports whether err is a failure on Sentinel's side rather than
// the file's: no space or quota left, a read-only or failing disk, or the
// database unable to take the write. Such a failure never spends a file's
// attempts.
func ownSide(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return store.Unavailable(err)
}

// ownFault is the state of ingest after a failure on Sentinel's side.
type ownFault struct {
	until   time.Time
	backoff time.Duration
	err     string
}

// Bounds of the wait after a failure on Sentinel's side: the wait doubles
// with each failure in a row, and a success ends it.
const (
	faultFirstWait = time.Second
	faultMaxWait   = 30 * time.Second
)

// noteFault pauses ingest after a failure on Sentinel's side and returns
// how long the file that met it should wait.
func (a *Agent) noteFault(err error) time.Duration {
	a.faultMu.Lock()
	defer a.faultMu.Unlock()
	f := &a.fault
	if f.backoff == 0 {
		f.backoff = faultFirstWait
		a.log.Warn("ingest paused: a write on Sentinel's side failed; files keep their attempts", slog.Any("error", err))
	} else {
		f.backoff = min(2*f.backoff, faultMaxWait)
	}
	f.until = time.Now().Add(f.backoff)
	f.err = err.Error()
	a.metrics.ownFaults.Inc()
	return f.backoff
}

// faulted reports whether ingest is waiting after a failure on Sentinel's
// side. Once the wait is over, work is tried again; the next failure makes
// the wait longer, a success ends it.
func (a *Agent) faulted() bool {
	a.faultMu.Lock()
	defer a.faultMu.Unlock()
	return time.Now().Before(a.fault.until)
}

// faultState returns the last own-side failure while ingest is held back
// by it ("" when it is not).
func (a *Agent) faultState() string {
	a.faultMu.Lock()
	defer a.faultMu.Unlock()
	if a.fault.backoff == 0 {
		return ""
	}
	return a.fault.err
}

// clearFault ends the wait after a file was handled successfully.
func (a *Agent) clearFault() {
	a.faultMu.Lock()
	defer a.faultMu.Unlock()
	if a.fault.backoff != 0 {
		a.log.Info("ingest resumed: writes succeed again")
	}
	a.fault = ownFault{}
}
