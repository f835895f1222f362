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
	"sync"
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
	// Inbox lists the drop folders, each watched recursively.
	Inbox      []string
	Reports    string
	Quarantine string
	// StableFor is how long a file's size and mtime must not change before
	// it is taken.
	StableFor      time.Duration
	PollInterval   time.Duration
	RescanInterval time.Duration
	Workers        int
	QueueSize      int
	// CopyToQuarantine copies failed files to quarantine instead of moving
	// them, leaving the source untouched (used when ingesting a folder that
	// the agent does not own).
	CopyToQuarantine bool
	Logger           *slog.Logger
	// OnOutcome, when set, is called after each file is handled.
	OnOutcome func(Outcome)
}

// Outcome is what became of one file.
type Outcome struct {
	Path       string
	Status     string // a store.File* status, or "skipped" / "retry"
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
)

// Agent is the running service. Create it with New and start it with Run.
type Agent struct {
	cfg      Config
	db       *store.DB
	model    Scorer
	decode   Decoder
	resample Resampler
	log      *slog.Logger

	claimMu sync.Mutex
	claims  map[string]chan struct{}
}

// New returns an agent; it does no I/O.
func New(cfg Config, db *store.DB, model Scorer, decode Decoder, resample Resampler) *Agent {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.QueueSize < 1 {
		cfg.QueueSize = 1
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Agent{
		cfg: cfg, db: db, model: model, decode: decode, resample: resample,
		log:    log.With(slog.String("component", "agent")),
		claims: map[string]chan struct{}{},
	}
}

// Run watches the inbox and processes files until ctx is cancelled. Files
// already being processed when ctx ends are finished before Run returns.
func (a *Agent) Run(ctx context.Context) error {
	if len(a.cfg.Inbox) == 0 {
		return errors.New("agent: no inbox folder configured")
	}
	w, err := newWatcher(a.cfg.Inbox, a.log)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer w.close()

	work := make(chan string, a.cfg.QueueSize)
	done := make(chan string, a.cfg.Workers)
	var wg sync.WaitGroup
	for i := 0; i < a.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for path := range work {
				a.handle(ctx, path)
				done <- path
			}
		}()
	}
	a.log.Info("agent started", slog.Any("inbox", a.cfg.Inbox), slog.Int("workers", a.cfg.Workers),
		slog.String("model", a.model.Info().Version))

	found := make(chan string, 1024)
	var scanners sync.WaitGroup
	scanners.Add(1)
	go func() { defer scanners.Done(); w.run(ctx, found, a.cfg.RescanInterval) }()

	t := newTracker(a.cfg.StableFor, time.Now)
	tick := time.NewTicker(a.cfg.PollInterval)
	defer tick.Stop()
	inflight := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case p := <-found:
			t.see(p)
		case p := <-done:
			t.finish(p)
			inflight--
		case <-tick.C:
			for _, p := range t.ready() {
				select {
				case work <- p:
					t.start(p)
					inflight++
				default:
					// The queue is full: the file stays pending and is
					// offered again at the next tick.
				}
			}
		}
	}
	close(work)
	// Drain done while the workers finish their current file.
	go func() { wg.Wait(); close(done) }()
	for range done {
	}
	scanners.Wait()
	a.log.Info("agent stopped")
	return nil
}

// handle processes one file and reports the outcome.
func (a *Agent) handle(ctx context.Context, path string) Outcome {
	o := a.Process(ctx, path)
	switch {
	case o.Status == store.FileFailed:
		a.log.Warn("file quarantined", slog.String("path", path), slog.Any("error", o.Err))
	case o.Status == StatusRetry:
		a.log.Warn("file will be retried", slog.String("path", path), slog.Any("error", o.Err))
	case o.Status == StatusSkipped:
		a.log.Debug("file already handled", slog.String("path", path))
	default:
		a.log.Info("file handled", slog.String("path", path), slog.String("status", o.Status),
			slog.String("instance", o.InstanceID))
	}
	if a.cfg.OnOutcome != nil {
		a.cfg.OnOutcome(o)
	}
	return o
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
