package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("status", "status [flags]", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := setupExisting(fs, g, stderr)
	if err != nil {
		return err
	}
	db, err := e.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := db.Counts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "workspace  %s\n", e.cfg.Workspace)
	m, err := db.ActiveModel(ctx)
	switch {
	case errors.Is(err, sentinel.ErrNoModel):
		fmt.Fprintf(stdout, "model      none (train one with 'sentinel train --workspace %s --normals DIR')\n", e.cfg.Workspace)
	case err != nil:
		return err
	default:
		fmt.Fprintf(stdout, "model      %s (%s, %d training normals, threshold %.6g, created %s)\n",
			m.Version, m.Kind, m.TrainImages, m.Threshold, m.CreatedAt.Format("2006-01-02 15:04"))
		comb, err := agent.LearnedCombiner(m.Path)
		if err != nil {
			return err
		}
		if comb != nil {
			fmt.Fprintf(stdout, "           reports use the combined score: head weight %.2f, threshold %.4g set on %s\n",
				comb.Weight, comb.Threshold, comb.ThresholdSource)
		}
	}
	pending, processing, err := db.QueueDepth(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "queue      %d pending, %d processing\n", pending, processing)
	fmt.Fprintf(stdout, "instances  %d scored, %d reported; %d reports revised by a newer model\n", c.Instances, c.Reports, c.Revised)
	fmt.Fprintf(stdout, "files     %s\n", joinCounts(c.Files))
	fmt.Fprintf(stdout, "decisions %s (as last reported)\n", joinCounts(c.ByDecision))
	if err := printLearning(ctx, stdout, db); err != nil {
		return err
	}
	if err := e.printDICOM(ctx, stdout, db); err != nil {
		return err
	}
	revs, err := db.RevisedReports(ctx, 5)
	if err != nil {
		return err
	}
	if len(revs) > 0 {
		fmt.Fprintln(stdout, "recent revisions:")
		for _, r := range revs {
			fmt.Fprintf(stdout, "  %s  %s (study %s, accession %q): %s by %s, now %s by %s (revision %d)\n",
				r.RevisedAt.Format("2006-01-02 15:04:05"), r.SOPInstanceUID, r.StudyInstanceUID, r.AccessionNumber,
				r.PreviousDecision, r.PreviousModelVersion, r.Decision, r.ModelVersion, r.Revision)
		}
	}
	fails, err := db.RecentFailures(ctx, 5)
	if err != nil {
		return err
	}
	if len(fails) > 0 {
		fmt.Fprintln(stdout, "recent failures:")
		for _, f := range fails {
			fmt.Fprintf(stdout, "  %s  %s\n    %s\n", f.SeenAt.Format("2006-01-02 15:04:05"), f.Path, f.Error)
		}
	}
	return nil
}

func joinCounts(m map[string]int) string {
	if len(m) == 0 {
		return " none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf(" %s=%d", k, m[k])
	}
	return s
}

// printLearning says where the learning loop stands: the worklist, the
// labels, the admissions and the last cycles.
func printLearning(ctx context.Context, w io.Writer, db *store.DB) error {
	open, err := db.Queries(ctx, sentinel.QueryOpen)
	if err != nil {
		return err
	}
	labels, err := db.AllLabels(ctx)
	if err != nil {
		return err
	}
	adm, err := db.Admissions(ctx, "")
	if err != nil {
		return err
	}
	holdout, err := db.Holdout(ctx)
	if err != nil {
		return err
	}
	readers, n := map[string]bool{}, 0
	for _, ls := range labels {
		for _, l := range ls {
			readers[l.Reader] = true
			n++
		}
	}
	abnormal := 0
	for _, v := range learn.ResolveAll(labels) {
		if v == learn.Abnormal {
			abnormal++
		}
	}
	undone := 0
	for _, a := range adm {
		if a.State == store.AdmissionUndone {
			undone++
		}
	}
	fmt.Fprintf(w, "learning   %d open queries; %d labels on %d cases (%d abnormal, %d in the holdout), readers: %d; %d admitted (%d undone)\n",
		len(open), n, len(labels), abnormal, len(holdout), len(readers), len(adm)-undone, undone)
	for _, kind := range []string{store.CycleRetrain, store.CycleAdmission} {
		c, ok, err := db.LastCycle(ctx, kind)
		if err != nil {
			return err
		}
		if ok {
			fmt.Fprintf(w, "  last %s cycle %s: %s\n", kind, c.FinishedAt.Local().Format("2006-01-02 15:04"), c.Reason)
		}
	}
	return nil
}
