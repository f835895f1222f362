package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/store"
)

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("ingest", "ingest [--json] [flags] DIR", stderr)
	asJSON := jsonFlag(fs)
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
	total := 0
	if files, err := agent.ListFiles(dir); err == nil {
		total = len(files)
	}
	prog := e.newProgress(stderr, "ingest", "files", total)
	sum, outcomes, err := e.newAgent(db, m, true, func(agent.Outcome) { prog.Add(1) }).IngestDir(ctx, dir)
	prog.Finish()
	if *asJSON {
		if jerr := printJSON(stdout, ingestJSON(sum, outcomes, e)); jerr != nil {
			return errors.Join(err, jerr)
		}
		return err
	}
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

// ingestFile is one file's outcome in `ingest --json`.
type ingestFile struct {
	Path       string            `json:"path"`
	Status     string            `json:"status"`
	InstanceID string            `json:"instance_id,omitempty"`
	Score      *float64          `json:"score,omitempty"`
	Decision   sentinel.Decision `json:"decision,omitempty"`
	Report     string            `json:"report,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// ingestResult is what `ingest --json` prints.
type ingestResult struct {
	Files      []ingestFile   `json:"files"`
	Summary    map[string]int `json:"summary"`
	Reports    string         `json:"reports"`
	Quarantine string         `json:"quarantine"`
}

func ingestJSON(sum agent.Summary, outcomes []agent.Outcome, e *env) ingestResult {
	r := ingestResult{Files: []ingestFile{}, Summary: map[string]int{}, Reports: e.paths.Reports, Quarantine: e.paths.Quarantine}
	for k, v := range sum {
		r.Summary[k] = v
	}
	for _, o := range outcomes {
		f := ingestFile{Path: o.Path, Status: o.Status, InstanceID: o.InstanceID, Report: o.ReportPath}
		if o.Score != nil {
			f.Score, f.Decision = &o.Score.Value, o.Score.Decision
		}
		if o.Err != nil {
			f.Error = o.Err.Error()
		}
		r.Files = append(r.Files, f)
	}
	return r
}
