package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/store"
)

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("ingest", "ingest [flags] DIR", stderr)
	patients := fs.String("patients", "", "`CSV` with columns file and patient (a research labels file will do): the patient of each PNG or JPEG, which carries none, so the learning loop keeps a patient's films together")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"ingest: give exactly one folder"}
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	if *patients != "" {
		if e.filePatients, err = agent.ReadPatients(*patients); err != nil {
			return err
		}
		if len(e.filePatients) == 0 {
			return usageError{fmt.Sprintf("ingest: %s has no file and patient columns", *patients)}
		}
	}
	m, db, closeDB, err := e.openForScoring(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	// The folder is not the agent's: failed files are copied to
	// quarantine, never moved out of it.
	sum, outcomes, err := e.newAgent(db, m, true, nil).IngestDir(ctx, dir)
	for _, o := range outcomes {
		switch o.Status {
		case store.FileDone:
			fmt.Fprintf(stdout, "%-9s %s  score %.4g  %s  -> %s\n", o.Status, o.Path, o.Score.Value, o.Score.Decision, o.ReportPath)
		case store.FileFailed, store.FileConflict, "retry":
			fmt.Fprintf(stdout, "%-9s %s  %v\n", o.Status, o.Path, o.Err)
		default:
			fmt.Fprintf(stdout, "%-9s %s\n", o.Status, o.Path)
		}
	}
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprint(stdout, "summary:")
	if len(keys) == 0 {
		fmt.Fprint(stdout, " no files to take")
	}
	for _, k := range keys {
		fmt.Fprintf(stdout, " %s=%d", k, sum[k])
	}
	fmt.Fprintf(stdout, "\nreports in %s, quarantine in %s\n", e.paths.Reports, e.paths.Quarantine)
	return err
}
