package web

import (
	"fmt"
	"net/http"
	"sort"
	"syscall"

	"github.com/sentinel-pacs/sentinel/store"
)

type diskLine struct {
	Name, Path string
	Free       string
	Problem    string
}

type statusData struct {
	Pending, Processing int
	Counts              store.Counts
	FileStates          []kv
	Decisions           []kv
	Quarantined         []store.File
	QuarantinedTotal    int
	Retrying            []store.QueueItem
	Disks               []diskLine
	Model               string
	// Outbox counts what waits to be sent to each DICOM destination, and
	// lists the objects set aside after their last attempt.
	Outbox       []store.OutboxCount
	OutboxFailed []store.OutboxItem
}

type kv struct {
	Key   string
	Value int
}

func sortedKV(m map[string]int) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// status shows the queue, the files that failed with their reasons, the
// files waiting for another attempt, and the free space where the agent
// writes.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var d statusData
	var err error
	if d.Pending, d.Processing, err = s.db.QueueDepth(ctx); err != nil {
		s.fail(w, r, "status", err)
		return
	}
	if d.Counts, err = s.db.Counts(ctx); err != nil {
		s.fail(w, r, "status", err)
		return
	}
	d.FileStates, d.Decisions = sortedKV(d.Counts.Files), sortedKV(d.Counts.ByDecision)
	if d.Quarantined, d.QuarantinedTotal, err = s.db.Quarantined(ctx, 50); err != nil {
		s.fail(w, r, "status", err)
		return
	}
	if d.Retrying, err = s.db.RetryingFiles(ctx, 50); err != nil {
		s.fail(w, r, "status", err)
		return
	}
	if m, err := s.db.ActiveModel(ctx); err == nil {
		d.Model = m.Version
	}
	if d.Outbox, err = s.db.OutboxCounts(ctx); err != nil {
		s.fail(w, r, "status", err)
		return
	}
	if d.OutboxFailed, err = s.db.OutboxItems(ctx, store.OutboxFailed, 20); err != nil {
		s.fail(w, r, "status", err)
		return
	}
	names := make([]string, 0, len(s.opt.Dirs))
	for n := range s.opt.Dirs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		l := diskLine{Name: n, Path: s.opt.Dirs[n]}
		var st syscall.Statfs_t
		if err := syscall.Statfs(l.Path, &st); err != nil {
			l.Problem = err.Error()
		} else {
			l.Free = humanBytes(int64(st.Bavail) * int64(st.Bsize))
		}
		d.Disks = append(d.Disks, l)
	}
	s.render(w, r, http.StatusOK, "status", page{Title: "Status", Nav: "status", Data: d})
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
