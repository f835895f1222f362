package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

func runQueries(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := subcommand(args, "sentinel queries export [--n N] [--strategy S] --out FILE [--format csv|json]", stderr, "export"); err != nil {
		return err
	}
	fs, g := newFlagSet("queries export", "queries export [--n N] [--strategy S] --out FILE [--format csv|json] [flags]", stderr)
	n := fs.Int("n", -1, "new cases to choose this round (default learning.queries_per_round; 0 exports the open worklist only)")
	strategy := fs.String("strategy", "", "hybrid, uncertainty, boundary, diverse or random (default learning.strategy)")
	out := fs.String("out", "", "worklist `file` to write; - for standard output")
	format := fs.String("format", "", "csv or json (default from the --out extension, else csv)")
	seed := fs.Int64("seed", 1, "random seed of the random strategy")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return usageError{"queries export: --out FILE is required and takes no other arguments"}
	}
	f := *format
	if f == "" {
		f = "csv"
		if filepath.Ext(*out) == ".json" {
			f = "json"
		}
	}
	if f != "csv" && f != "json" {
		return usageError{fmt.Sprintf("queries export: --format must be csv or json, got %q", f)}
	}
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	if *n < 0 {
		*n = e.cfg.Learning.QueriesPerRound
	}
	if *strategy == "" {
		*strategy = e.cfg.Learning.Strategy
	}
	st, err := learn.ParseStrategy(*strategy)
	if err != nil {
		return usageError{"queries export: " + err.Error()}
	}
	db, err := e.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := agent.NewQueries(ctx, db, e.learningOptions(), agent.QueryOptions{N: *n, Strategy: st, Seed: *seed,
		ExpireAfter: e.cfg.Learning.QueryExpiry.Duration})
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
	if f == "json" {
		err = writeWorklistJSON(w, rows)
	} else {
		err = writeWorklistCSV(w, rows)
	}
	if err != nil {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(stderr, "%d open queries written to %s\n", len(rows), *out)
	}
	return nil
}

// worklistColumns are the worklist's columns, in order.
var worklistColumns = []string{"query_id", "instance_id", "file", "sop_instance_uid", "study_instance_uid",
	"accession_number", "score", "uncertainty", "model_version", "heatmap", "strategy", "reason", "asked_at"}

type worklistItem struct {
	QueryID          int64    `json:"query_id"`
	InstanceID       string   `json:"instance_id"`
	File             string   `json:"file"`
	SOPInstanceUID   string   `json:"sop_instance_uid"`
	StudyInstanceUID string   `json:"study_instance_uid"`
	AccessionNumber  string   `json:"accession_number"`
	Score            float64  `json:"score"`
	Uncertainty      *float64 `json:"uncertainty"`
	ModelVersion     string   `json:"model_version"`
	Heatmap          string   `json:"heatmap"`
	Strategy         string   `json:"strategy"`
	Reason           string   `json:"reason"`
	AskedAt          string   `json:"asked_at"`
}

func item(r store.WorklistRow) worklistItem {
	return worklistItem{r.QueryID, r.InstanceID, r.SourcePath, r.SOPInstanceUID, r.StudyInstanceUID, r.AccessionNumber,
		r.Score, r.Uncertainty, r.ModelVersion, r.HeatmapPath, r.Strategy, r.Reason, r.CreatedAt.UTC().Format(time.RFC3339)}
}

func writeWorklistCSV(w io.Writer, rows []store.WorklistRow) error {
	cw := csv.NewWriter(w)
	cw.Write(worklistColumns)
	for _, r := range rows {
		it := item(r)
		u := ""
		if it.Uncertainty != nil {
			u = strconv.FormatFloat(*it.Uncertainty, 'g', 6, 64)
		}
		cw.Write([]string{strconv.FormatInt(it.QueryID, 10), it.InstanceID, it.File, it.SOPInstanceUID, it.StudyInstanceUID,
			it.AccessionNumber, strconv.FormatFloat(it.Score, 'g', 6, 64), u, it.ModelVersion, it.Heatmap, it.Strategy,
			it.Reason, it.AskedAt})
	}
	cw.Flush()
	return cw.Error()
}

func writeWorklistJSON(w io.Writer, rows []store.WorklistRow) error {
	items := make([]worklistItem, len(rows))
	for i, r := range rows {
		items[i] = item(r)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(items)
}
