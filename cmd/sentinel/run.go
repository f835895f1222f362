package main

import (
	"context"
	"fmt"
	"io"
)

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("run", "run [flags]", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"run: takes no arguments"}
	}
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	m, db, err := e.openForScoring(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "watching %v with model %s; reports go to %s (Ctrl-C to stop)\n",
		e.paths.Inbox, m.Info().Version, e.paths.Reports)
	if e.cfg.HTTP.Addr != "" {
		fmt.Fprintf(stdout, "health, metrics and API on http://%s/ (/healthz, /readyz, /metrics, /api/studies)\n", e.cfg.HTTP.Addr)
	}
	return e.newAgent(db, m, false, nil).Run(ctx)
}
