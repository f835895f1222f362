package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sentinel-pacs/sentinel/agent"
)

func runQueries(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := subcommand(args, "sentinel queries export [--n N] [--strategy S] [--by-study] --out FILE [--format csv|json | --json]", stderr, "export"); err != nil {
		return err
	}
	fs, g := newFlagSet("queries export", "queries export [--n N] [--strategy S] [--by-study] --out FILE [--format csv|json | --json] [flags]", stderr)
	n := fs.Int("n", -1, "new cases to choose this round (default learning.queries_per_round; 0 exports the open worklist only)")
	strategy := fs.String("strategy", "", "hybrid, uncertainty, boundary, diverse or random (default learning.strategy)")
	out := fs.String("out", "", "worklist `file` to write; - for standard output")
	format := fs.String("format", "", "csv or json (default from the --out extension, else csv)")
	asJSON := fs.Bool("json", false, "the same as --format json")
	seed := fs.Int64("seed", 1, "random seed of the random strategy")
	byStudy := fs.Bool("by-study", false, "one row per study (as a RIS lists work, by accession number), with every film of it the workspace holds")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return usageError{"queries export: --out FILE is required and takes no other arguments"}
	}
	f := *format
	if *asJSON {
		if f != "" && f != "json" {
			return usageError{fmt.Sprintf("queries export: --json and --format %s disagree", f)}
		}
		f = "json"
	}
	if f == "" {
		f = "csv"
		if filepath.Ext(*out) == ".json" {
			f = "json"
		}
	}
	if f != "csv" && f != "json" {
		return usageError{fmt.Sprintf("queries export: --format must be csv or json, got %q", f)}
	}
	e, err := setupExisting(fs, g, stderr)
	if err != nil {
		return err
	}
	q, err := e.queryOptions(*n, *strategy, *seed)
	if err != nil {
		return usageError{"queries export: " + err.Error()}
	}
	db, err := e.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := agent.NewQueries(ctx, db, e.learningOptions(), q)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "-" {
		file, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	items := agent.Worklist(rows)
	var studies []agent.StudyWorkItem
	if *byStudy {
		if studies, err = agent.StudyWorklist(ctx, db, items); err != nil {
			return err
		}
	}
	switch {
	case *byStudy && f == "json":
		err = printJSON(w, studies)
	case *byStudy:
		err = agent.WriteStudyWorklistCSV(w, studies)
	case f == "json":
		err = printJSON(w, items)
	default:
		err = agent.WriteWorklistCSV(w, items)
	}
	if err != nil {
		return err
	}
	if *out != "-" {
		if *byStudy {
			fmt.Fprintf(stderr, "%d open queries in %d studies written to %s\n", len(rows), len(studies), *out)
		} else {
			fmt.Fprintf(stderr, "%d open queries written to %s\n", len(rows), *out)
		}
	}
	return nil
}
