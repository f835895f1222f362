package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/learn"
)

func runRetrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("retrain", "retrain [--normals DIR [--labels CSV --split NAME]] [--dry-run] [--json] [flags]", stderr)
	asJSON := jsonFlag(fs)
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
	// Reading the images, each training epoch, then scoring: a bar on a
	// terminal, log records otherwise.
	st := &stages{e: e, stderr: stderr}
	st.next("reading", "images", 0)
	opt.Decode = st.countingDecoder(opt.Decode)
	tc := e.trainConfig()
	tc.Progress = st.trainingProgress("scoring")
	opt.Train = agent.DetectorTrainer(tc)
	res, err := agent.Retrain(ctx, db, opt)
	st.finish()
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, retrainJSON(res, *dryRun))
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
	fs, g := newFlagSet("admit", "admit [--json] [flags]", stderr)
	asJSON := jsonFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"admit: takes no arguments"}
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
	opt := e.learningOptions()
	st := &stages{e: e, stderr: stderr}
	st.next("admission", "images", 0)
	opt.Decode = st.countingDecoder(opt.Decode)
	res, err := agent.AdmitCycle(ctx, db, opt)
	st.finish()
	if err != nil {
		return err
	}
	if *asJSON {
		out := admitResult{Cycle: res.Cycle, Checked: res.Checked, Passed: res.Passed, Admitted: []admitted{}}
		for _, a := range res.Admitted {
			out.Admitted = append(out.Admitted, admitted{InstanceID: a.InstanceID, DistanceZ: a.DistanceZ,
				UncertaintyZ: a.UncertaintyZ, HeadLogit: a.HeadLogit, Reason: a.Reason()})
		}
		return printJSON(stdout, out)
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

// retrainResult is what `retrain --json` prints.
type retrainResult struct {
	DryRun    bool               `json:"dry_run"`
	Candidate sentinel.ModelInfo `json:"candidate"`
	// Current is the model current before the cycle.
	Current string `json:"previous_current,omitempty"`
	// Outcome is "promoted", "held for a person" or "kept, not promoted"
	// (for a dry run: what would become of the candidate).
	Outcome       string                  `json:"outcome"`
	Promoted      bool                    `json:"promoted"`
	Held          bool                    `json:"held"`
	Reason        string                  `json:"reason"`
	TrainedOn     int                     `json:"trained_normals"`
	Abnormals     int                     `json:"labelled_abnormals"`
	Holdout       int                     `json:"holdout"`
	HoldoutAdded  int                     `json:"holdout_added"`
	CandidateEval learn.Evaluation        `json:"candidate_eval"`
	CurrentEval   *learn.Evaluation       `json:"current_eval,omitempty"`
	Compared      int                     `json:"compared"`
	WouldRevise   []agent.RevisionPreview `json:"would_revise"`
}

func retrainJSON(res agent.RetrainResult, dryRun bool) retrainResult {
	r := retrainResult{DryRun: dryRun, Candidate: res.Candidate, Current: res.Current,
		Outcome: verdictWord(res.Verdict.Promote, res.Verdict.Held), Promoted: res.Verdict.Promote && !dryRun,
		Held: res.Verdict.Held, Reason: res.Verdict.Reason, TrainedOn: len(res.TrainedIDs), Abnormals: len(res.Plan.Abnormals),
		Holdout: len(res.Plan.Holdout), HoldoutAdded: res.HoldoutAdded, CandidateEval: res.CandidateEval,
		CurrentEval: res.CurrentEval, Compared: res.Compared, WouldRevise: res.WouldRevise}
	if r.WouldRevise == nil {
		r.WouldRevise = []agent.RevisionPreview{}
	}
	return r
}

// admitResult is what `admit --json` prints.
type admitResult struct {
	Cycle    int64      `json:"cycle"`
	Checked  int        `json:"checked"`
	Passed   int        `json:"passed"`
	Admitted []admitted `json:"admitted"`
}

type admitted struct {
	InstanceID   string   `json:"instance_id"`
	DistanceZ    float64  `json:"distance_z"`
	UncertaintyZ *float64 `json:"uncertainty_z"`
	HeadLogit    *float64 `json:"head_logit"`
	Reason       string   `json:"reason"`
}
