package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/detector"
)

// progressEvery is how often long work logs how far it has got when no
// person watches a terminal.
const progressEvery = 10 * time.Second

// progress shows how far long work has got: a bar redrawn on standard
// error when it is a terminal; otherwise log records (so under
// `[log] format = "json"` too) when the work starts, every progressEvery
// and when it ends, each with the count done, the total, the rate and the
// time left. It is safe for concurrent use.
type progress struct {
	task  string // what is done, e.g. "ingest"
	unit  string // what is counted, e.g. "files"
	total int    // 0 when not known in advance
	bar   io.Writer
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	done  int
	attrs []slog.Attr
	// elapsed and eta, when known (training measures its own), replace
	// the ones estimated from the rate.
	elapsed, eta time.Duration
	timed        bool
	start        time.Time
	lastLog      time.Time
	lastDraw     time.Time
	logged       bool
	loggedFinal  bool
	finished     bool
}

// newProgress starts a progress report on stderr, or in e's log when
// stderr is not a terminal. total is 0 when the amount of work is not
// known in advance.
func (e *env) newProgress(stderr io.Writer, task, unit string, total int) *progress {
	p := &progress{task: task, unit: unit, total: total, log: e.log, every: progressEvery, now: time.Now}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		p.bar = stderr
	}
	p.start = p.now()
	return p
}

// Add counts n more units done.
func (p *progress) Add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.update()
}

// Set records that done units are done, with attributes describing the
// latest one (an epoch's loss, say).
func (p *progress) Set(done int, attrs ...slog.Attr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.attrs = done, attrs
	p.update()
}

// SetTimed is Set with the elapsed time and the time left measured by the
// work itself.
func (p *progress) SetTimed(done int, elapsed, eta time.Duration, attrs ...slog.Attr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.attrs = done, attrs
	p.elapsed, p.eta, p.timed = elapsed, eta, true
	p.update()
}

// Finish ends the report: the bar's line is closed, and a final record is
// logged when earlier ones were.
func (p *progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	if p.bar != nil {
		if p.done > 0 {
			p.draw()
			fmt.Fprintln(p.bar)
		}
		return
	}
	if p.logged && !p.loggedFinal {
		msg := "done"
		if p.total > 0 {
			msg = "stopped" // short of the total: cancelled or failed
		}
		p.logRecord(msg)
	}
}

func (p *progress) update() {
	if p.finished {
		return
	}
	now := p.now()
	if p.bar != nil {
		if now.Sub(p.lastDraw) >= 100*time.Millisecond || p.complete() {
			p.lastDraw = now
			p.draw()
		}
		return
	}
	// The first record says the work is under way and how fast it starts;
	// then one every interval, and the last one when it completes.
	if !p.loggedFinal && (!p.logged || now.Sub(p.lastLog) >= p.every || p.complete()) {
		p.lastLog = now
		msg := "progress"
		if p.complete() {
			msg = "done"
		}
		p.logRecord(msg)
		p.logged = true
	}
}

func (p *progress) complete() bool { return p.total > 0 && p.done >= p.total }

// rate is units per second; eta the time left, -1 when it is not known.
func (p *progress) rate() (rate float64, elapsed, eta time.Duration) {
	elapsed = p.now().Sub(p.start)
	if p.timed {
		elapsed = p.elapsed
	}
	eta = -1
	if elapsed > 0 {
		rate = float64(p.done) / elapsed.Seconds()
	}
	if p.total > 0 && rate > 0 {
		eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
	}
	if p.timed {
		eta = p.eta
	}
	return rate, elapsed, eta
}

func (p *progress) logRecord(msg string) {
	rate, elapsed, eta := p.rate()
	attrs := []slog.Attr{slog.String("task", p.task), slog.Int("done", p.done)}
	if p.total > 0 {
		attrs = append(attrs, slog.Int("total", p.total))
	}
	attrs = append(attrs, slog.String("unit", p.unit), slog.Float64("per_second", round3(rate)),
		slog.Duration("elapsed", elapsed.Round(time.Millisecond)))
	if eta >= 0 {
		attrs = append(attrs, slog.Duration("eta", eta.Round(time.Second)))
	}
	attrs = append(attrs, p.attrs...)
	p.log.LogAttrs(context.Background(), slog.LevelInfo, p.task+" "+msg, attrs...)
	if p.complete() {
		p.loggedFinal = true
	}
}

// draw redraws the bar: "[=====     ] ingest 12/40 files 3.1/s eta 9s".
func (p *progress) draw() {
	rate, _, eta := p.rate()
	const width = 30
	var b strings.Builder
	b.WriteString("\r")
	if p.total > 0 {
		n := min(width, width*p.done/p.total)
		fmt.Fprintf(&b, "[%s%s] %s %d/%d %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), p.task, p.done, p.total, p.unit)
	} else {
		fmt.Fprintf(&b, "%s %d %s", p.task, p.done, p.unit)
	}
	fmt.Fprintf(&b, "  %.3g/s", rate)
	if eta >= 0 {
		fmt.Fprintf(&b, "  eta %s", eta.Round(time.Second))
	}
	for _, a := range p.attrs {
		if a.Value.Kind() == slog.KindFloat64 {
			fmt.Fprintf(&b, "  %s %.4g", a.Key, a.Value.Float64())
		} else {
			fmt.Fprintf(&b, "  %s %v", a.Key, a.Value)
		}
	}
	b.WriteString("   ")
	io.WriteString(p.bar, b.String())
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// stages runs one progress report after another, for work done in
// stages (reading images, training, scoring), so that a terminal shows one
// bar at a time. It is safe for concurrent use.
type stages struct {
	e      *env
	stderr io.Writer
	mu     sync.Mutex
	cur    *progress
}

// next finishes the current stage's report and starts one for the next.
func (s *stages) next(task, unit string, total int) *progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.Finish()
	}
	s.cur = s.e.newProgress(s.stderr, task, unit, total)
	return s.cur
}

// current is the current stage's report.
func (s *stages) current() *progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// finish ends the last stage's report.
func (s *stages) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.Finish()
	}
}

// countingDecoder counts each file decoded in the current stage.
func (s *stages) countingDecoder(dec agent.Decoder) agent.Decoder {
	return func(path string) (sentinel.Instance, sentinel.Image, error) {
		defer s.current().Add(1)
		return dec(path)
	}
}

// trainingProgress reports each training epoch as a stage of its own,
// then opens a stage "after" (unit images, total unknown) for what follows
// training; empty after leaves the epochs the last stage.
func (s *stages) trainingProgress(after string) func(detector.Progress) {
	var training *progress
	return func(p detector.Progress) {
		if training == nil || p.Epoch == 1 {
			training = s.next("training", "epochs", p.Epochs)
		}
		training.SetTimed(p.Epoch, p.Elapsed, p.ETA, slog.Float64("loss", p.Loss))
		if p.Epoch == p.Epochs && after != "" {
			s.next(after, "images", 0)
		}
	}
}
