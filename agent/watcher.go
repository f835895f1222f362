package agent

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// skipName reports whether a file name is one the agent never takes:
// hidden and temporary files that senders rename when complete, and DICOMDIR
// indexes, which hold no image.
func skipName(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(name, ".") ||
		strings.HasSuffix(lower, ".part") ||
		strings.HasSuffix(lower, ".tmp") ||
		strings.HasSuffix(lower, ".reason.txt") ||
		strings.EqualFold(name, "DICOMDIR")
}

// watcher turns filesystem events and folder walks into candidate paths.
type watcher struct {
	roots []string
	fsw   *fsnotify.Watcher
	log   *slog.Logger
}

func newWatcher(roots []string, log *slog.Logger) (*watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &watcher{roots: roots, fsw: fsw, log: log.With(slog.String("component", "watcher"))}, nil
}

func (w *watcher) close() { w.fsw.Close() }

// run watches every root recursively and sends candidate files to found: all
// files present at start, every file an event names, and, every rescan
// interval, all files again in case events were lost. It returns when ctx is
// cancelled.
//
// onScanned is called once the first walk is complete; a value on rescanNow
// asks for a walk at once.
func (w *watcher) run(ctx context.Context, found chan<- string, rescan time.Duration, rescanNow <-chan struct{}, onScanned func()) {
	for _, r := range w.roots {
		w.walk(ctx, r, found)
	}
	onScanned()
	var tick <-chan time.Time
	if rescan > 0 {
		t := time.NewTicker(rescan)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			w.event(ctx, ev, found)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// An overflow means events were dropped: walk everything now.
			w.log.Warn("watch error; rescanning", slog.Any("error", err))
			for _, r := range w.roots {
				w.walk(ctx, r, found)
			}
		case <-tick:
			for _, r := range w.roots {
				w.walk(ctx, r, found)
			}
		case <-rescanNow:
			for _, r := range w.roots {
				w.walk(ctx, r, found)
			}
		}
	}
}

func (w *watcher) event(ctx context.Context, ev fsnotify.Event, found chan<- string) {
	if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Rename) && !ev.Has(fsnotify.Chmod) {
		return
	}
	fi, err := os.Stat(ev.Name)
	if err != nil {
		return // gone already, or renamed away
	}
	if fi.IsDir() {
		// A new folder: watch it, then walk it for files created before the
		// watch was in place.
		w.walk(ctx, ev.Name, found)
		return
	}
	if fi.Mode().IsRegular() && !skipName(filepath.Base(ev.Name)) {
		send(ctx, found, ev.Name)
	}
}

// walk adds a watch on every folder under root and sends every file.
func (w *watcher) walk(ctx context.Context, root string, found chan<- string) {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			w.log.Warn("walk", slog.String("path", p), slog.Any("error", err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			if err := w.fsw.Add(p); err != nil {
				w.log.Warn("watch folder", slog.String("path", p), slog.Any("error", err))
			}
			return nil
		}
		if !skipName(d.Name()) && isFile(p, d) {
			send(ctx, found, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		w.log.Warn("walk", slog.String("root", root), slog.Any("error", err))
	}
}

func send(ctx context.Context, ch chan<- string, p string) {
	select {
	case ch <- p:
	case <-ctx.Done():
	}
}

// tracker decides when a file is complete: its size and modification time
// must stay the same for stableFor. It is owned by one goroutine.
type tracker struct {
	stableFor time.Duration
	now       func() time.Time
	pending   map[string]*pendingFile
	inflight  map[string]bool
	// again marks in-flight files seen again while processing, so they are
	// looked at once more afterwards (the store says if they changed).
	again map[string]bool
	// known holds the size and modification time of files the store has
	// recorded: a rescan that finds one unchanged drops it after a stat,
	// without asking the database.
	known map[string]fileKey
}

type fileKey struct {
	size  int64
	mtime int64
}

type pendingFile struct {
	size  int64
	mtime time.Time
	since time.Time
	found time.Time
}

func newTracker(stableFor time.Duration, now func() time.Time) *tracker {
	return &tracker{stableFor: stableFor, now: now,
		pending: map[string]*pendingFile{}, inflight: map[string]bool{}, again: map[string]bool{},
		known: map[string]fileKey{}}
}

// see records that a file exists and may have changed, and reports whether
// it was new to the tracker.
func (t *tracker) see(p string) bool {
	if t.inflight[p] {
		t.again[p] = true
		return false
	}
	if _, ok := t.pending[p]; ok {
		return false
	}
	t.pending[p] = &pendingFile{size: -1, found: t.now()}
	return true
}

// ready stats every pending file and returns those that have been stable
// long enough, oldest first is not promised.
func (t *tracker) ready() []string {
	now := t.now()
	var out []string
	for p, pf := range t.pending {
		// Lstat: a link is judged by itself, as Process records it, not by
		// its target.
		fi, err := os.Lstat(p)
		if err != nil || !(fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0) {
			delete(t.pending, p)
			continue
		}
		if k, ok := t.known[p]; ok && k == (fileKey{fi.Size(), fi.ModTime().UnixNano()}) {
			delete(t.pending, p)
			continue
		}
		if fi.Size() != pf.size || !fi.ModTime().Equal(pf.mtime) {
			pf.size, pf.mtime, pf.since = fi.Size(), fi.ModTime(), now
			if t.stableFor > 0 {
				continue
			}
		}
		if now.Sub(pf.since) >= t.stableFor {
			out = append(out, p)
		}
	}
	return out
}

// remember records that the store knows a file at this size and time.
func (t *tracker) remember(p string, size int64, mtime time.Time) {
	t.known[p] = fileKey{size, mtime.UnixNano()}
}

// forget drops a pending file that needs no work.
func (t *tracker) forget(p string) { delete(t.pending, p) }

// start moves a file from pending to in flight.
func (t *tracker) start(p string) {
	delete(t.pending, p)
	t.inflight[p] = true
}

// finish marks a file done; if it was seen again meanwhile it is pending
// once more.
func (t *tracker) finish(p string) {
	delete(t.inflight, p)
	if t.again[p] {
		delete(t.again, p)
		t.see(p)
	}
}
