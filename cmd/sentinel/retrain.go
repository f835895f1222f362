package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
)

func runRetrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("retrain", "retrain [--normals DIR [--labels CSV --split NAME]] [flags]", stderr)
	normals := fs.String("normals", "", "`folder` of seed normals to record first (only needed if the workspace's model was not made by 'sentinel train')")
	labels := fs.String("labels", "", "with --normals, a labels `CSV` whose normal rows are the seed")
	split := fs.String("split", "", "with --labels, only this split's rows")
	epochs := fs.Int("epochs", 0, "training epochs (overrides detector.epochs)")
	dryRun := fs.Bool("dry-run", false, "train and measure a candidate and list the recent reports it would revise; save and promote nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"retrain: takes no arguments"}
	}
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	if *epochs > 0 {
		e.cfg.Detector.Epochs = *epochs
	}
	db, err := e.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	if *normals != "" {
		files, err := agent.NormalFiles(*normals, *labels, *split)
		if err != nil {
			return err
		}
		if err := e.recordSeeds(ctx, db, files); err != nil {
			return err
		}
	}
	opt := e.learningOptions()
	opt.DryRun = *dryRun
	res, err := agent.Retrain(ctx, db, opt)
	if err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintf(stdout, "dry run: candidate %s (not saved) would be %s: %s\n", res.Candidate.Version, verdictWord(res.Verdict.Promote, res.Verdict.Held), res.Verdict.Reason)
		fmt.Fprintf(stdout, "it would revise %d of the %d recent reports it was compared with\n", len(res.WouldRevise), res.Compared)
		for _, r := range res.WouldRevise {
			fmt.Fprintf(stdout, "  %s  study %s  accession %s  %s -> %s  (reported by %s)\n", r.InstanceID, r.StudyInstanceUID,
				orDash(r.AccessionNumber), r.From, r.To, r.ModelVersion)
		}
		return nil
	}
	fmt.Fprintf(stdout, "candidate %s trained on %d normals (%d labelled abnormals for the head and threshold; frozen holdout %d cases, %d of them new)\n",
		res.Candidate.Version, len(res.TrainedIDs), len(res.Plan.Abnormals), len(res.Plan.Holdout), res.HoldoutAdded)
	fmt.Fprintf(stdout, "%s: %s\n", verdictWord(res.Verdict.Promote, res.Verdict.Held), res.Verdict.Reason)
	if res.Compared > 0 {
		fmt.Fprintf(stdout, "compared with %d recent reports: it decides %d of them otherwise\n", res.Compared, len(res.WouldRevise))
	}
	if res.Verdict.Promote {
		printRevisionNote(stdout, e)
	}
	return nil
}

// printRevisionNote says what happens to earlier reports once a model is
// made current.
func printRevisionNote(w io.Writer, e *env) {
	win := e.cfg.Ingest.ReviseWithin.Duration
	if win <= 0 {
		return
	}
	span := win.String()
	if win%(24*time.Hour) == 0 {
		span = fmt.Sprintf("%d days", win/(24*time.Hour))
	}
	fmt.Fprintf(w, "the running agent (or the next 'sentinel run') takes it up, and issues again each report of the last %s it decides otherwise\n", span)
}

func runAdmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("admit", "admit [flags]", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	db, err := e.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := agent.AdmitCycle(ctx, db, e.learningOptions())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "admission cycle %d: %d unlabelled cases checked, %d passed the gates, %d admitted\n",
		res.Cycle, res.Checked, res.Passed, len(res.Admitted))
	for _, a := range res.Admitted {
		fmt.Fprintf(stdout, "admitted %s: %s\n", a.InstanceID, a.Reason())
	}
	return nil
}

// verdictWord says what became of a candidate.
func verdictWord(promoted, held bool) string {
	switch {
	case promoted:
		return "promoted"
	case held:
		return "held for a person"
	}
	return "kept, not promoted"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
