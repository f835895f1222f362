package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/config"
)

// TestProgressLogs drives a progress report with a clock of its own: off a
// terminal it logs at the start, every interval and at the end, with the
// rate and the time left, durations in seconds under JSON logs.
func TestProgressLogs(t *testing.T) {
	var logs bytes.Buffer
	e := &env{log: newLogger(config.Log{Level: "info", Format: "json"}, &logs)}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := e.newProgress(&bytes.Buffer{}, "ingest", "files", 100)
	p.now = func() time.Time { return clock }
	p.start = clock
	for i := 0; i < 100; i++ {
		clock = clock.Add(500 * time.Millisecond) // 2 files a second
		p.Add(1)
	}
	p.Finish()
	p.Finish()
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	// At 1 file (0.5 s), then every 10 s (at 21, 41, 61, 81 files), and
	// the last one at 100.
	wantDone := []float64{1, 21, 41, 61, 81, 100}
	if len(recs) != len(wantDone) {
		t.Fatalf("%d records, want %d:\n%s", len(recs), len(wantDone), logs.String())
	}
	for i, r := range recs {
		if r["done"] != wantDone[i] || r["total"] != 100.0 || r["task"] != "ingest" || r["per_second"] != 2.0 {
			t.Errorf("record %d: %v", i, r)
		}
		// Seconds, not nanoseconds: 50 s for the whole, the time left at
		// 2 files a second.
		if el := r["elapsed"].(float64); el != wantDone[i]/2 {
			t.Errorf("record %d: elapsed %v s, want %v", i, el, wantDone[i]/2)
		}
		// The time left is rounded to the second.
		if eta := r["eta"].(float64); eta != math.Round((100-wantDone[i])/2) {
			t.Errorf("record %d: eta %v s, want %v", i, eta, math.Round((100-wantDone[i])/2))
		}
	}
	if recs[0]["msg"] != "ingest progress" || recs[len(recs)-1]["msg"] != "ingest done" {
		t.Errorf("messages %v … %v", recs[0]["msg"], recs[len(recs)-1]["msg"])
	}

	// Stopped short of the total: the last record says so.
	logs.Reset()
	p = e.newProgress(&bytes.Buffer{}, "admission", "images", 10)
	p.Add(3)
	p.Finish()
	if n := strings.Count(logs.String(), "\n"); n != 2 || !strings.Contains(logs.String(), `"msg":"admission stopped"`) {
		t.Errorf("stopped early:\n%s", logs.String())
	}
	// Text logs keep durations readable.
	var text bytes.Buffer
	e = &env{log: newLogger(config.Log{Level: "info", Format: "text"}, &text)}
	e.log.Info("x", slog.Duration("eta", 90*time.Second))
	if !strings.Contains(text.String(), "eta=1m30s") {
		t.Errorf("text log: %s", text.String())
	}
}

// TestProgressBar draws the bar as on a terminal.
func TestProgressBar(t *testing.T) {
	var bar, logs bytes.Buffer
	e := &env{log: newLogger(config.Log{Level: "info", Format: "text"}, &logs)}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := e.newProgress(&bytes.Buffer{}, "training", "epochs", 4)
	p.bar = &bar
	p.now = func() time.Time { return clock }
	for i := 1; i <= 4; i++ {
		clock = clock.Add(time.Second)
		p.SetTimed(i, time.Duration(i)*time.Second, time.Duration(4-i)*time.Second, slog.Float64("loss", 0.5))
	}
	p.Finish()
	out := bar.String()
	if logs.Len() != 0 {
		t.Errorf("a terminal gets the bar, not log records: %s", logs.String())
	}
	for _, want := range []string{"\r[=======                       ] training 1/4 epochs", "eta 3s", "loss 0.5",
		"\r[==============================] training 4/4 epochs", "eta 0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the bar %q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("the bar's line is closed once: %q", out)
	}
}
