package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/sentinel-pacs/sentinel"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("status", "status [flags]", stderr)
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
	}
	pending, processing, err := db.QueueDepth(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "queue      %d pending, %d processing\n", pending, processing)
	fmt.Fprintf(stdout, "instances  %d scored, %d reports\n", c.Instances, c.Reports)
	fmt.Fprintf(stdout, "files     %s\n", joinCounts(c.Files))
	fmt.Fprintf(stdout, "decisions %s\n", joinCounts(c.ByDecision))
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
