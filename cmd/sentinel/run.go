package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/store"
)

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("run", "run [flags]", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"run: takes no arguments"}
	}
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	m, db, closeDB, err := e.openForScoring(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	fmt.Fprintf(stdout, "watching %v with model %s; reports go to %s (Ctrl-C to stop)\n",
		e.paths.Inbox, m.Info().Version, e.paths.Reports)
	if e.cfg.HTTP.Addr != "" {
		fmt.Fprintf(stdout, "health, metrics and API on http://%s/ (/healthz, /readyz, /metrics, /api/studies, /api/queries)\n", e.cfg.HTTP.Addr)
	}
	cfg := e.agentConfig(false, nil)
	cfg.DICOM = e.dicomConfig()
	var a *agent.Agent
	l, opt := e.cfg.Learning, e.learningOptions()
	policy := agent.RetrainPolicy{EveryLabels: l.RetrainEveryLabels, EveryAdmissions: l.RetrainEveryAdmissions,
		Every: l.RetrainEvery.Duration, AdmitEvery: l.AdmitEvery.Duration}
	if policy.EveryLabels > 0 || policy.EveryAdmissions > 0 || policy.Every > 0 || policy.AdmitEvery > 0 {
		// Automatic admission and retraining: checked every minute; a
		// promoted model replaces the running one for the files that
		// follow.
		cfg.MaintenanceEvery = time.Minute
		cfg.Maintenance = func(ctx context.Context) error {
			retrained, err := agent.MaybeRetrain(ctx, db, opt, policy)
			if err != nil || !retrained {
				return err
			}
			next, err := e.loadScorer()
			if err != nil {
				return err
			}
			a.SetModel(next)
			return nil
		}
	}
	// A model made current by another process ('sentinel retrain', 'models
	// rollback', 'train') replaces the running one within seconds.
	// Agents sharing a database take up a model made current anywhere
	// through the models folder they share; one whose folder is not shared
	// is told so, once per model, rather than left silently behind.
	unreadable := ""
	cfg.FollowModel = func(running sentinel.ModelInfo) (agent.Scorer, error) {
		if e.cfg.Store.URL != "" {
			if act, err := db.ActiveModel(ctx); err == nil && act.Version != running.Version && act.Version != unreadable {
				if _, err := os.Stat(act.Path); err != nil {
					unreadable = act.Version
					return nil, fmt.Errorf("model %s, made current by another agent, is at %s, which this agent cannot read "+
						"(%v): point paths.models at a folder every agent shares", act.Version, act.Path, err)
				}
			}
		}
		path, err := agent.CurrentModelPath(e.paths.Models)
		if err != nil || filepath.Base(path) == filepath.Base(running.Path) {
			return nil, err
		}
		next, err := e.loadScorer()
		if err != nil {
			return nil, err
		}
		if err := db.SaveModel(ctx, next.Info(), true); err != nil {
			return nil, err
		}
		return next, nil
	}
	cfg.ChooseQueries = func(ctx context.Context, n int) ([]store.WorklistRow, error) {
		if n <= 0 {
			n = -1 // the configured budget
		}
		q, err := e.queryOptions(n, "", 1)
		if err != nil {
			return nil, err
		}
		return agent.NewQueries(ctx, db, opt, q)
	}
	// The page's "retrain now" and "roll back" (for admins): the model they
	// make current is followed like any other (FollowModel above).
	cfg.Retrain = func(context.Context) (string, error) {
		res, err := agent.Retrain(ctx, db, opt) // run's context: a stop ends it
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("candidate %s %s: %s", res.Candidate.Version, verdictWord(res.Verdict.Promote, res.Verdict.Held), res.Verdict.Reason), nil
	}
	cfg.Rollback = func(rctx context.Context, version string) (string, error) {
		info, err := agent.Rollback(rctx, db, e.paths.Models, version)
		if err != nil {
			return "", err
		}
		return "model " + info.Version + " is current again", nil
	}
	a = agent.New(cfg, db, m, e.decoder(), dicomio.Resample)
	return a.Run(ctx)
}
