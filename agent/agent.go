// Package agent runs Sentinel as a service: it watches drop folders, takes
// each file once it is complete, decodes and scores it, writes its report
// and records everything in the store. It orchestrates the other packages
// and holds no decoding, modelling or SQL of its own.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/store"
)

// Scorer is the trained model as the agent sees it.
type Scorer interface {
	Score(sentinel.Image) (sentinel.Score, error)
	Info() sentinel.ModelInfo
	InputSize() int
}

// Decoder reads one file into its identity and display image.
type Decoder func(path string) (sentinel.Instance, sentinel.Image, error)

// Resampler resizes an image to the model's input.
type Resampler func(img sentinel.Image, w, h int) sentinel.Image

// Config holds the agent's settings as plain values.
type Config struct {
	// Workspace and Version describe the agent to the others sharing its
	// database (see store.DB.AgentStarted).
	Workspace string
	Version   string
	// Inbox lists the drop folders, each watched recursively.
	Inbox []string
	// Scope says which images are scored (scope.go).
	Scope Scope
	// Decisions says when a film may be called normal (decide.go).
	Decisions DecisionPolicy
	// OmitSourceFile leaves source_file out of reports.
	OmitSourceFile bool
	Reports        string
	Quarantine     string
	// Archive, when set, is where input files are moved once handled
	// (keeping their path below the inbox); when empty they stay in place.
	Archive string
	// StableFor is how long a file's size and mtime must not change before
	// it is taken.
	StableFor      time.Duration
	PollInterval   time.Duration
	RescanInterval time.Duration
	Workers        int
	// QueueSize bounds the files handed to workers at once; the rest wait in
	// the durable queue in the database.
	QueueSize int
	// StudyQuiet is how long a study must receive no new instance before its
	// study report is written.
	StudyQuiet time.Duration
	// MinFreeBytes pauses ingest while any filesystem the agent writes
	// (reports, quarantine, archive, and StateDir, the database's folder)
	// has less free space than this; 0 disables the check. Whatever the
	// floor, a write that fails for want of room, or on a read-only or
	// failing disk, pauses ingest too, and the file keeps its attempts.
	MinFreeBytes int64
	StateDir     string
	// WriteGrace is how long after its last modification a file that ends
	// early or cannot be recognised yet is waited for rather than
	// quarantined: a writer that pauses longer than StableFor (an SMB or
	// NFS copy, a slow sender) has not finished it.
	WriteGrace time.Duration
	// FollowLinks lets a symbolic link in a drop folder be read when its
	// target lies inside a watched folder; otherwise links are refused.
	FollowLinks bool
	// MaxAttempts is how many times a file failing for a passing reason is
	// tried before it is quarantined; RetryDelay is the first wait, doubled
	// after each attempt up to MaxRetryDelay.
	MaxAttempts   int
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// HTTPAddr, when set, serves health, metrics and the read-only API;
	// with TLSCert and TLSKey (PEM files) over HTTPS. MaxConns bounds the
	// connections served at once (0: 64).
	HTTPAddr        string
	TLSCert, TLSKey string
	MaxConns        int
	// Token guards the endpoints that change state; empty disables them.
	Token string
	// ReadToken, when set, is required (or Token) by the read API under
	// /api/; health and metrics stay open.
	ReadToken string
	// CopyToQuarantine copies failed files to quarantine instead of moving
	// them, leaving the source untouched (used when ingesting a folder that
	// the agent does not own).
	CopyToQuarantine bool
	Logger           *slog.Logger
	// OnOutcome, when set, is called after each file is handled.
	OnOutcome func(Outcome)
	// Maintenance, when set, runs every MaintenanceEvery in its own
	// goroutine while the agent runs (the learning loop's automatic
	// retraining); it may call SetModel.
	Maintenance      func(context.Context) error
	MaintenanceEvery time.Duration
	// ChooseQueries, when set, serves POST /api/queries: it chooses up to n
	// new cases to ask radiologists about (n = 0: the configured budget)
	// and returns the open worklist (see NewQueries, whose lease lets one
	// round be chosen at a time).
	ChooseQueries func(ctx context.Context, n int) ([]store.WorklistRow, error)
	// ReviseWithin, when positive, has the running agent compare the
	// reports of instances first reported this recently with every new
	// model it uses, and issue again those the model decides otherwise
	// (see ReviseReports).
	ReviseWithin time.Duration
	// FollowModel, when set, is asked every ModelCheckEvery (10 s by
	// default) for the model the models folder names: it returns a Scorer
	// when that is not the running one (after 'sentinel retrain', 'models
	// rollback' or 'train' in another process), nil when it is.
	FollowModel     func(running sentinel.ModelInfo) (Scorer, error)
	ModelCheckEvery time.Duration
	// DICOM, when set, makes the agent a DICOM node (see DICOMConfig).
	DICOM *DICOMConfig
	// Retrain and Rollback, when set, let an admin retrain now and roll
	// back from the page at "/": Retrain says what became of the
	// candidate, Rollback which version is current again.
	Retrain  func(ctx context.Context) (string, error)
	Rollback func(ctx context.Context, version string) (string, error)
}

// Outcome is what became of one file.
type Outcome struct {
	Path       string
	Status     string // a store.File* status, or one of the Status* below
	InstanceID string
	ReportPath string
	Score      *sentinel.Score
	Err        error
}

// Outcome statuses beyond the store's file statuses.
const (
	// StatusSkipped means the file was already handled before.
	StatusSkipped = "skipped"
	// StatusRetry means the file failed for a reason that may pass; it is
	// left in place and taken again later.
	StatusRetry = "retry"
	// StatusGone means the file disappeared before it could be read.
	StatusGone = "gone"
)

// Agent is the running service. Create it with New and start it with Run.
type Agent struct {
	cfg      Config
	db       *store.DB
	model    atomic.Pointer[scorerBox]
	decode   Decoder
	resample Resampler
	log      *slog.Logger
	metrics  *metrics

	claimMu sync.Mutex
	claims  map[string]chan struct{}

	ready  atomic.Bool
	paused atomic.Bool
	// fault is set while ingest waits after a failure on Sentinel's own
	// side (see noteFault).
	faultMu sync.Mutex
	fault   ownFault
	// floor is the free-space floor in bytes (cfg.MinFreeBytes), atomic so
	// that it can be changed while the agent runs.
	floor   atomic.Int64
	rescanC chan struct{}
	// reviseC asks for a pass of ReviseReports (at start and after each
	// change of model).
	reviseC chan struct{}
	// ops caches the current model's operating point (decide.go).
	ops operatingPoints
	// node is the DICOM receiver and sender (see dicom.go).
	node dicomNode
}

// New returns an agent; it does no I/O.
func New(cfg Config, db *store.DB, model Scorer, decode Decoder, resample Resampler) *Agent {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.QueueSize < cfg.Workers {
		cfg.QueueSize = cfg.Workers
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.MaxAttempts < 1 {
		cfg.MaxAttempts = 8
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.MaxRetryDelay < cfg.RetryDelay {
		cfg.MaxRetryDelay = 5 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &Agent{
		cfg: cfg, db: db, decode: decode, resample: resample,
		log:     log.With(slog.String("component", "agent")),
		metrics: newMetrics(),
		claims:  map[string]chan struct{}{},
		rescanC: make(chan struct{}, 1),
		reviseC: make(chan struct{}, 1),
	}
	if a.cfg.ModelCheckEvery <= 0 {
		a.cfg.ModelCheckEvery = 10 * time.Second
	}
	a.SetModel(model)
	a.floor.Store(cfg.MinFreeBytes)
	return a
}

// scorerBox lets the model be swapped atomically.
type scorerBox struct{ Scorer }

// SetModel makes m the model used for files processed from now on, as after
// a retraining cycle promotes a new version. Files already being scored
// finish with the model they started with. The running agent then compares
// recent reports with it (see ReviseReports).
func (a *Agent) SetModel(m Scorer) {
	if old := a.model.Swap(&scorerBox{m}); old != nil {
		a.metrics.model.DeleteLabelValues(old.Info().Version)
	}
	a.metrics.model.WithLabelValues(m.Info().Version).Set(1)
	a.requestRevision()
}

// requestRevision asks the running agent for a pass of ReviseReports.
func (a *Agent) requestRevision() {
	select {
	case a.reviseC <- struct{}{}:
	default: // a pass is due already
	}
}

func (a *Agent) currentModel() Scorer { return a.model.Load().Scorer }

// Run watches the inbox and processes files until ctx is cancelled. Files
// already being processed when ctx ends are finished before Run returns;
// files claimed but not started go back to the queue.
func (a *Agent) Run(ctx context.Context) error {
	if len(a.cfg.Inbox) == 0 {
		return errors.New("agent: no inbox folder configured")
	}
	var bg sync.WaitGroup
	// The HTTP server starts first: a start that cannot bind its port
	// fails before touching the queue.
	stopHTTP, err := a.serveHTTP(ctx, &bg)
	if err != nil {
		return err
	}
	defer stopHTTP()
	stopDICOM, err := a.serveDICOM(ctx, &bg)
	if err != nil {
		return err
	}
	defer stopDICOM()
	if err := a.mendReports(); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := a.db.AgentStarted(ctx, a.cfg.Workspace, a.cfg.Version); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer func() {
		if err := a.db.AgentStopped(context.WithoutCancel(ctx)); err != nil {
			a.log.Warn("recording the stop", slog.Any("error", err))
		}
	}()
	stale, err := a.db.RequeueProcessing(ctx, nil)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if len(stale) > 0 {
		a.log.Info("resuming files interrupted by a stop; each is taken alone first", slog.Int("files", len(stale)))
	}
	w, err := newWatcher(a.cfg.Inbox, a.log)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer w.close()

	work := make(chan store.QueueItem, a.cfg.QueueSize)
	done := make(chan string, a.cfg.QueueSize)
	var workers sync.WaitGroup
	for i := 0; i < a.cfg.Workers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for it := range work {
				if ctx.Err() != nil {
					// Stopping: what was claimed but not started goes
					// back to the queue, its attempt given back.
					a.unclaim(it)
				} else {
					a.work(ctx, it)
				}
				done <- it.Path
			}
		}()
	}
	a.log.Info("agent started", slog.Any("inbox", a.cfg.Inbox), slog.Int("workers", a.cfg.Workers),
		slog.String("model", a.currentModel().Info().Version))

	found := make(chan string, 1024)
	bg.Add(2)
	go func() {
		defer bg.Done()
		w.run(ctx, found, a.cfg.RescanInterval, a.rescanC, func() { a.ready.Store(true) })
	}()
	go func() { defer bg.Done(); a.reportStudies(ctx) }()
	bg.Add(1)
	go func() { defer bg.Done(); a.heartbeat(ctx) }()
	if a.cfg.Maintenance != nil && a.cfg.MaintenanceEvery > 0 {
		bg.Add(1)
		go func() { defer bg.Done(); a.maintain(ctx) }()
	}
	if a.cfg.FollowModel != nil {
		bg.Add(1)
		go func() { defer bg.Done(); a.followModel(ctx) }()
	}
	if a.cfg.ReviseWithin > 0 {
		bg.Add(1)
		go func() { defer bg.Done(); a.revising(ctx) }()
	}

	l := &loop{t: newTracker(a.cfg.StableFor, time.Now), inflight: map[string]bool{}, suspects: map[string]bool{}}
	for _, p := range stale {
		l.suspects[p] = true
	}
	tick := time.NewTicker(a.cfg.PollInterval)
	defer tick.Stop()
	lastReclaim := time.Now()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case p := <-found:
			if l.t.see(p) {
				a.metrics.seen.Inc()
			}
		case p := <-done:
			l.t.finish(p)
			delete(l.inflight, p)
			delete(l.suspects, p)
		case <-tick.C:
			if err := a.enqueueStable(ctx, l.t); err != nil {
				a.log.Warn("enqueue", slog.Any("error", err))
			}
			if time.Since(lastReclaim) >= min(reclaimEvery, a.db.ClaimLease/2) {
				// Rows whose outcome could not be recorded (a full disk
				// under the database) are taken up again.
				lastReclaim = time.Now()
				if n, err := a.db.RequeueProcessing(ctx, l.inflight); err != nil {
					a.log.Warn("reclaim", slog.Any("error", err))
				} else if len(n) > 0 {
					a.log.Info("files whose outcome was not recorded are queued again", slog.Int("files", len(n)))
				}
			}
			if a.faultState() != "" && !a.faulted() {
				// The wait after an own-side failure is over: if every
				// folder takes a write again, ingest resumes.
				if err := a.probeWrites(); err != nil {
					a.noteFault(err)
				} else {
					a.clearFault()
				}
			}
			if a.checkDisk() || a.faulted() {
				a.updateDepth(ctx, l.t, len(l.inflight))
				continue
			}
			if err := a.dispatch(ctx, work, l); err != nil {
				a.log.Warn("dispatch", slog.Any("error", err))
			}
			a.updateDepth(ctx, l.t, len(l.inflight))
		}
	}
	close(work)
	// Drain done while the workers finish their current file.
	go func() { workers.Wait(); close(done) }()
	for range done {
	}
	stopHTTP()
	bg.Wait()
	a.log.Info("agent stopped")
	return nil
}

// reclaimEvery is how often rows left "processing" by a failed settle are
// looked for.
const reclaimEvery = 10 * time.Second

// loop is the state the run loop owns.
type loop struct {
	t *tracker
	// inflight holds the paths claimed from the queue and not yet done.
	inflight map[string]bool
	// suspects are the files that were being processed when the agent
	// last stopped without finishing them, perhaps because one of them
	// took the process down: each is processed alone, so that such a file
	// spends only its own attempts.
	suspects map[string]bool
}

// unclaim returns a claimed file that was not started to the queue.
func (a *Agent) unclaim(it store.QueueItem) {
	if _, err := a.db.RetryLater(context.Background(), it.Path, it.LastError, 0, false); err != nil {
		a.log.Warn("requeue", slog.String("path", a.logName(it.Path)), slog.Any("error", err))
	}
}

// maintain runs the maintenance hook on its schedule until ctx ends.
func (a *Agent) maintain(ctx context.Context) {
	every(ctx, a.cfg.MaintenanceEvery, func() {
		if err := a.cfg.Maintenance(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("maintenance", slog.Any("error", err))
		}
	})
}

// every calls fn every period until ctx is cancelled.
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// enqueueStable moves files that have become stable into the durable queue.
func (a *Agent) enqueueStable(ctx context.Context, t *tracker) error {
	ready := t.ready()
	if len(ready) == 0 {
		return nil
	}
	items := make([]store.QueueItem, 0, len(ready))
	var queued []string
	for _, p := range ready {
		pf := t.pending[p]
		known, err := a.db.KnownFile(ctx, p, pf.size, pf.mtime.UnixNano())
		if err != nil {
			return err
		}
		if known {
			// Handled already (a rescan, or a restart, found it again).
			// A stop between recording it and archiving it left it
			// here: finish the move.
			t.remember(p, pf.size, pf.mtime)
			t.forget(p)
			a.archive(ctx, store.File{Path: p, Size: pf.size, ModTimeNS: pf.mtime.UnixNano()})
			continue
		}
		items = append(items, store.QueueItem{Path: p, Size: pf.size, ModTimeNS: pf.mtime.UnixNano(), FoundAt: pf.found})
		queued = append(queued, p)
	}
	if err := a.db.Enqueue(ctx, items); err != nil {
		return err // the files stay pending and are offered again
	}
	for _, p := range queued {
		t.start(p)
	}
	return nil
}

// dispatch hands due files from the queue to the workers, up to the
// room left; suspects go one at a time, with nothing beside them.
func (a *Agent) dispatch(ctx context.Context, work chan<- store.QueueItem, l *loop) error {
	if len(l.suspects) > 0 {
		if len(l.inflight) > 0 {
			return nil
		}
		for p := range l.suspects {
			items, err := a.db.ClaimPaths(ctx, []string{p})
			if err != nil {
				return err
			}
			if len(items) == 0 {
				delete(l.suspects, p) // settled meanwhile, or not yet due
				continue
			}
			l.inflight[p] = true
			work <- items[0]
			return nil
		}
	}
	room := a.cfg.QueueSize - len(l.inflight)
	if room <= 0 {
		return nil
	}
	items, err := a.db.ClaimQueued(ctx, room)
	if err != nil {
		return err
	}
	for _, it := range items {
		l.inflight[it.Path] = true
		work <- it // never blocks: the channel holds QueueSize and room counts what is in it
	}
	return nil
}

func (a *Agent) updateDepth(ctx context.Context, t *tracker, inflight int) {
	pending, processing, err := a.db.QueueDepth(ctx)
	if err != nil {
		return
	}
	a.metrics.queue.Set(float64(len(t.pending) + pending + processing))
	a.metrics.inflight.Set(float64(inflight))
}

// work processes one queued file and settles its place in the queue.
// it.Attempts counts this attempt (see store.ClaimQueued).
func (a *Agent) work(ctx context.Context, it store.QueueItem) {
	settle := context.WithoutCancel(ctx)
	if it.Attempts > a.cfg.MaxAttempts {
		// Its earlier attempts never settled: each ended with the agent
		// stopping while it was being handled.
		a.report(a.fail(settle, fileOf(it), fmt.Errorf("gave up after %d attempts, the agent having stopped during each (last error: %s)",
			it.Attempts-1, orNone(it.LastError))))
		return
	}
	o := a.handle(ctx, it.Path)
	switch o.Status {
	case StatusRetry:
		switch {
		case ownSide(o.Err):
			// Sentinel's own failure (disk full, read-only, database
			// busy): ingest waits, and the file keeps its attempts.
			delay := a.noteFault(o.Err)
			if _, err := a.db.RetryLater(settle, it.Path, errString(o.Err), delay, false); err != nil {
				a.log.Warn("requeue", slog.String("path", a.logName(it.Path)), slog.Any("error", err))
			}
			return
		case errors.Is(o.Err, errNotReady):
			// Still being written: look again once it has been quiet.
			delay := max(a.cfg.StableFor, a.cfg.RetryDelay)
			if _, err := a.db.RetryLater(settle, it.Path, errString(o.Err), delay, false); err != nil {
				a.log.Warn("requeue", slog.String("path", a.logName(it.Path)), slog.Any("error", err))
			}
			return
		}
		if it.Attempts >= a.cfg.MaxAttempts {
			// It has failed too often to call the cause passing.
			a.report(a.fail(settle, fileOf(it), fmt.Errorf("gave up after %d attempts: %w", it.Attempts, o.Err)))
			return
		}
		delay := a.cfg.RetryDelay << min(it.Attempts-1, 20)
		if delay > a.cfg.MaxRetryDelay || delay <= 0 {
			delay = a.cfg.MaxRetryDelay
		}
		if _, err := a.db.RetryLater(settle, it.Path, errString(o.Err), delay, true); err != nil {
			a.log.Warn("requeue", slog.String("path", a.logName(it.Path)), slog.Any("error", err))
		}
	case StatusGone, StatusSkipped:
		// Nothing to record (gone) or recorded already (a file queued again
		// while its first run was finishing): just leave the queue.
		if err := a.db.Dequeue(settle, it.Path); err != nil {
			a.log.Warn("dequeue", slog.String("path", a.logName(it.Path)), slog.Any("error", err))
		}
	case store.FileDone:
		a.clearFault()
		if !it.FoundAt.IsZero() {
			a.metrics.latency.Observe(time.Since(it.FoundAt).Seconds())
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none recorded"
	}
	return s
}

func fileOf(it store.QueueItem) store.File {
	return store.File{Path: it.Path, Size: it.Size, ModTimeNS: it.ModTimeNS}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// handle processes one file and reports the outcome.
func (a *Agent) handle(ctx context.Context, path string) Outcome {
	o := a.Process(ctx, path)
	a.report(o)
	return o
}

// report logs an outcome, counts it and passes it to OnOutcome.
func (a *Agent) report(o Outcome) {
	path := a.logName(o.Path)
	if o.Err != nil && a.cfg.OmitSourceFile {
		// Decoder errors name the file; with the name withheld, so are
		// they.
		o.Err = scrubbedError{o.Err, strings.ReplaceAll(o.Err.Error(), o.Path, path)}
	}
	switch o.Status {
	case store.FileOutOfScope:
		a.log.Info("file out of scope: not scored", slog.String("path", path), slog.Any("reason", o.Err))
	case store.FileFailed:
		a.log.Warn("file quarantined", slog.String("path", path), slog.Any("error", o.Err))
		a.metrics.failed.WithLabelValues(failureReason(o.Err)).Inc()
	case StatusRetry:
		if errors.Is(o.Err, errNotReady) {
			a.log.Info("file not complete yet; taken again later", slog.String("path", path), slog.Any("error", o.Err))
		} else {
			a.log.Warn("file will be retried", slog.String("path", path), slog.Any("error", o.Err))
		}
	case StatusSkipped, StatusGone:
		a.log.Debug("file not processed", slog.String("path", path), slog.String("status", o.Status))
	case store.FileConflict:
		a.log.Warn("conflicting instance kept", slog.String("path", path), slog.String("instance", o.InstanceID),
			slog.Any("error", o.Err))
	default:
		a.log.Info("file handled", slog.String("path", path), slog.String("status", o.Status),
			slog.String("instance", o.InstanceID))
	}
	a.metrics.handled.WithLabelValues(o.Status).Inc()
	if o.Status == store.FileDuplicate {
		a.metrics.duplicates.Inc()
	}
	if a.cfg.OnOutcome != nil {
		a.cfg.OnOutcome(o)
	}
}

// claim serialises work on one instance id, so that two copies of the same
// instance arriving together are told apart as duplicates rather than both
// scored.
func (a *Agent) claim(id string) func() {
	for {
		a.claimMu.Lock()
		ch, busy := a.claims[id]
		if !busy {
			ch = make(chan struct{})
			a.claims[id] = ch
			a.claimMu.Unlock()
			return func() {
				a.claimMu.Lock()
				delete(a.claims, id)
				a.claimMu.Unlock()
				close(ch)
			}
		}
		a.claimMu.Unlock()
		<-ch
	}
}

// scrubbedError is an error whose message has a file's path replaced, for
// logs that must not name it; it still wraps the original.
type scrubbedError struct {
	err error
	msg string
}

func (e scrubbedError) Error() string { return e.msg }
func (e scrubbedError) Unwrap() error { return e.err }
