package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/learn"
)

// errBadRows is returned when some rows of a labels file were not
// imported; the good rows were. The exit status is then 1, so a script
// notices, while nothing already imported is lost.
var errBadRows = errors.New("some rows were not imported")

func runLabels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := subcommand(args, "sentinel labels import [--format csv|json] [--reader NAME] [--json] FILE (- for standard input)", stderr, "import"); err != nil {
		return err
	}
	fs, g := newFlagSet("labels import", "labels import [--format csv|json] [--reader NAME] [--json] FILE|- [flags]", stderr)
	asJSON := jsonFlag(fs)
	format := fs.String("format", "", "csv or json (default from the file's extension; csv for standard input)")
	reader := fs.String("reader", "", "the reader of the rows that name none (an exported worklist with a label column added has no reader column)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"labels import: give exactly one labels file"}
	}
	path := fs.Arg(0)
	f := strings.ToLower(*format)
	if f == "" {
		f = "csv"
		if ext := strings.ToLower(filepath.Ext(path)); ext == ".json" || ext == ".jsonl" {
			f = "json"
		}
	}
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	// A RIS export can be piped in: FILE "-" is standard input.
	var in io.Reader = os.Stdin
	source := "stdin"
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return err
		}
		defer file.Close()
		in, source = file, filepath.Base(path)
	}
	// A row without a time was read now; a row with no label yet (a
	// worklist's question not answered) is passed over.
	parsed, err := learn.ParseLabelsWith(in, f, learn.LabelDefaults{Reader: *reader, Time: time.Now().UTC(), SkipUnanswered: true})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rows, bad := parsed.Rows, parsed.Bad
	db, err := e.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := agent.ImportLabels(ctx, db, rows, bad, source)
	if *asJSON {
		out := labelsResult{Rows: rep.Rows, Added: rep.Added, Unchanged: rep.Unchanged, Rejected: len(rep.Errors),
			Undone: rep.Undone, Unanswered: len(parsed.Unanswered), Errors: []labelsRowError{}}
		if out.Undone == nil {
			out.Undone = []string{}
		}
		for _, re := range rep.Errors {
			out.Errors = append(out.Errors, labelsRowError{Line: re.Line, Error: re.Err.Error()})
		}
		if jerr := printJSON(stdout, out); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else {
		for _, re := range rep.Errors {
			fmt.Fprintf(stderr, "%s:%d: %v\n", path, re.Line, re.Err)
		}
		fmt.Fprintf(stdout, "%d rows: %d labels added, %d already imported, %d rejected", rep.Rows, rep.Added, rep.Unchanged, len(rep.Errors))
		if len(rep.Undone) > 0 {
			fmt.Fprintf(stdout, "; %d admissions undone", len(rep.Undone))
		}
		if n := len(parsed.Unanswered); n > 0 {
			fmt.Fprintf(stdout, "; %d rows without a label passed over", n)
		}
		fmt.Fprintln(stdout)
	}
	if err != nil {
		return err
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("labels import %s: %d of %d rows: %w", path, len(rep.Errors), rep.Rows, errBadRows)
	}
	return nil
}

// labelsResult is what `labels import --json` prints.
type labelsResult struct {
	Rows      int `json:"rows"`
	Added     int `json:"added"`
	Unchanged int `json:"unchanged"`
	Rejected  int `json:"rejected"`
	// Undone lists the admissions the labels contradicted, by instance.
	Undone []string `json:"undone_admissions"`
	// Unanswered counts the rows without a label, passed over.
	Unanswered int              `json:"unanswered"`
	Errors     []labelsRowError `json:"errors"`
}

type labelsRowError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}
