package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// mendReports, at start, finishes what a stop left in the reports folder:
// a report or heatmap staged under its pending name whose instance was
// recorded is put in place, one whose instance was not is removed, and the
// temporary files of interrupted writes are removed. The agent holds the
// workspace alone (see LockWorkspace), so nothing else is writing them.
func (a *Agent) mendReports() error {
	ctx := context.Background()
	placed, removed := 0, 0
	err := filepath.WalkDir(a.cfg.Reports, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		if strings.HasSuffix(d.Name(), tmpSuffix) {
			if err := os.Remove(p); err == nil {
				removed++
			}
			return nil
		}
		final, ok := finalPath(p)
		if !ok {
			return nil
		}
		recorded, err := a.db.RecordedOutput(ctx, final)
		if err != nil {
			return err
		}
		if recorded && !exists(final) {
			if err := os.Rename(p, final); err != nil {
				return fmt.Errorf("put %s in place: %w", final, err)
			}
			placed++
			return nil
		}
		if err := os.Remove(p); err == nil {
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mend reports: %w", err)
	}
	if placed > 0 || removed > 0 {
		a.log.Info("reports folder mended after an interrupted stop", slog.Int("put_in_place", placed),
			slog.Int("removed", removed))
	}
	return nil
}

// probeWrites checks that every folder the agent writes takes a small
// file again, after a failure on Sentinel's side.
func (a *Agent) probeWrites() error {
	for _, d := range a.writtenDirs() {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return err
		}
		p := filepath.Join(d, ".sentinel-probe")
		if err := writeAtomic(p, make([]byte, 4096)); err != nil {
			return fmt.Errorf("probe %s: %w", d, err)
		}
		os.Remove(p)
	}
	return nil
}
