package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

func runScore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("score", "score [flags] FILE...\n\nPrints each file's report as JSON: one object for one file, JSON Lines (one object a line) for several.", stderr)
	jsonFlag(fs) // the output is always JSON; accepted like every command's --json
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{"score: give at least one file"}
	}
	e, err := setupReadOnly(fs, g, stderr)
	if err != nil {
		return err
	}
	m, err := e.loadScorer()
	if err != nil {
		return err
	}
	// Reports claim what the workspace's labelled holdout allows, as the
	// running agent's do: without it, nothing below the threshold is
	// called normal.
	policy := agent.DecisionPolicy{NormalSensitivity: e.cfg.Decisions.NormalSensitivity, MinPerClass: e.cfg.Decisions.MinPerClass}
	var op *sentinel.OperatingPoint
	if _, err := os.Stat(e.paths.Database); err == nil || e.cfg.Store.URL != "" {
		if db, err := e.openDB(); err == nil {
			op, _ = agent.OperatingPoint(ctx, db, m.Info().Version, policy)
			db.Close()
		}
	}
	decode := e.decoder()
	enc := json.NewEncoder(stdout)
	if fs.NArg() == 1 {
		enc.SetIndent("", "  ")
	}
	var failed []error
	for _, path := range fs.Args() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		start := time.Now()
		inst, img, err := decode(path)
		if err != nil {
			failed = append(failed, err)
			fmt.Fprintln(stderr, "sentinel: score:", err)
			continue
		}
		decoded := time.Now()
		size := m.InputSize()
		s, err := m.Score(dicomio.Resample(img, size, size))
		if err != nil {
			failed = append(failed, fmt.Errorf("score %s: %w", path, err))
			continue
		}
		s = agent.Qualify(s, op, policy)
		rep := agent.NewReport(inst, s, m.Info().Version)
		rep.OperatingPoint = op
		rep.CreatedAt = time.Now().UTC()
		rep.Timings = sentinel.Timings{
			DecodeMS: float64(decoded.Sub(start).Microseconds()) / 1000,
			ScoreMS:  float64(time.Since(decoded).Microseconds()) / 1000,
			TotalMS:  float64(time.Since(start).Microseconds()) / 1000,
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d files could not be scored: %w", len(failed), fs.NArg(), errors.Join(failed...))
	}
	return nil
}
