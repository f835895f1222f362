package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// statusReport is what `sentinel status` says, as text or as JSON.
type statusReport struct {
	Workspace string `json:"workspace"`
	// Store is the engine ("sqlite" or "postgres") and where it is (a
	// server's URL without its password).
	Store struct {
		Engine string `json:"engine"`
		Where  string `json:"where"`
	} `json:"store"`
	// Agents lists the agents that have run on the database, the most
	// recently heard from first, with the files each holds and settled.
	Agents []statusAgent `json:"agents"`
	// Model is the model in use; nil when there is none.
	Model *sentinel.ModelInfo `json:"model"`
	// Combined is set when reports use the learning loop's combined score.
	Combined *statusCombined `json:"combined,omitempty"`
	Queue    struct {
		Pending    int `json:"pending"`
		Processing int `json:"processing"`
	} `json:"queue"`
	Instances int            `json:"instances"`
	Reported  int            `json:"reported"`
	Revised   int            `json:"revised"`
	Files     map[string]int `json:"files"`
	Decisions map[string]int `json:"decisions"`
	Learning  statusLearning `json:"learning"`
	DICOM     *statusDICOM   `json:"dicom,omitempty"`
	// Revisions and Failures are the five most recent of each.
	Revisions []store.RevisedReport `json:"recent_revisions"`
	Failures  []statusFailure       `json:"recent_failures"`
}

type statusAgent struct {
	Name        string    `json:"name"`
	Host        string    `json:"host"`
	Workspace   string    `json:"workspace"`
	Version     string    `json:"version"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	// State is "running" (a heartbeat within two leases), "stopped" (it
	// stopped cleanly) or "silent" (no heartbeat: it died or lost the
	// database).
	State      string `json:"state"`
	Processing int    `json:"processing"`
	Settled    int    `json:"settled_files"`
}

type statusCombined struct {
	HeadWeight      float64 `json:"head_weight"`
	Threshold       float64 `json:"threshold"`
	ThresholdSource string  `json:"threshold_source"`
}

type statusLearning struct {
	OpenQueries   int `json:"open_queries"`
	Labels        int `json:"labels"`
	LabelledCases int `json:"labelled_cases"`
	Abnormal      int `json:"abnormal"`
	Holdout       int `json:"holdout"`
	Readers       int `json:"readers"`
	Admitted      int `json:"admitted"`
	Undone        int `json:"undone"`
	// LastCycles holds the last retrain and admission cycles, by kind.
	LastCycles map[string]statusCycle `json:"last_cycles"`
}

type statusCycle struct {
	FinishedAt time.Time `json:"finished_at"`
	Reason     string    `json:"reason"`
}

type statusFailure struct {
	SeenAt time.Time `json:"seen_at"`
	Path   string    `json:"path"`
	Error  string    `json:"error"`
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("status", "status [--json] [flags]", stderr)
	asJSON := jsonFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"status: takes no arguments"}
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
	st, err := e.status(ctx, db)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, st)
	}
	printStatus(stdout, st)
	return nil
}

// status gathers the workspace's state.
func (e *env) status(ctx context.Context, db *store.DB) (statusReport, error) {
	st := statusReport{Workspace: e.cfg.Workspace}
	st.Store.Engine, st.Store.Where = db.Engine(), db.Where()
	var err error
	if st.Agents, err = agentsStatus(ctx, db, time.Now()); err != nil {
		return st, err
	}
	c, err := db.Counts(ctx)
	if err != nil {
		return st, err
	}
	st.Instances, st.Reported, st.Revised = c.Instances, c.Reports, c.Revised
	st.Files, st.Decisions = nonNil(c.Files), nonNil(c.ByDecision)
	m, err := db.ActiveModel(ctx)
	switch {
	case errors.Is(err, sentinel.ErrNoModel):
	case err != nil:
		return st, err
	default:
		st.Model = &m
		comb, err := agent.LearnedCombiner(m.Path)
		if err != nil {
			return st, err
		}
		if comb != nil {
			st.Combined = &statusCombined{HeadWeight: comb.Weight, Threshold: comb.Threshold, ThresholdSource: comb.ThresholdSource}
		}
	}
	if st.Queue.Pending, st.Queue.Processing, err = db.QueueDepth(ctx); err != nil {
		return st, err
	}
	if st.Learning, err = learningStatus(ctx, db); err != nil {
		return st, err
	}
	if st.DICOM, err = e.dicomStatus(ctx, db); err != nil {
		return st, err
	}
	if st.Revisions, err = db.RevisedReports(ctx, 5); err != nil {
		return st, err
	}
	fails, err := db.RecentFailures(ctx, 5)
	if err != nil {
		return st, err
	}
	st.Failures = []statusFailure{}
	for _, f := range fails {
		st.Failures = append(st.Failures, statusFailure{SeenAt: f.SeenAt, Path: f.Path, Error: f.Error})
	}
	if st.Revisions == nil {
		st.Revisions = []store.RevisedReport{}
	}
	return st, nil
}

// agentsStatus lists the agents sharing the database, as of now.
func agentsStatus(ctx context.Context, db *store.DB, now time.Time) ([]statusAgent, error) {
	agents, err := db.Agents(ctx)
	if err != nil {
		return nil, err
	}
	claims, err := db.ClaimsByAgent(ctx)
	if err != nil {
		return nil, err
	}
	settled, err := db.FilesByAgent(ctx)
	if err != nil {
		return nil, err
	}
	out := []statusAgent{}
	for _, a := range agents {
		s := statusAgent{Name: a.Name, Host: a.Host, Workspace: a.Workspace, Version: a.Version,
			StartedAt: a.StartedAt, HeartbeatAt: a.HeartbeatAt, Processing: claims[a.Name], Settled: settled[a.Name]}
		switch {
		case !a.StoppedAt.IsZero():
			s.State = "stopped"
		case now.Sub(a.HeartbeatAt) <= 2*db.ClaimLease:
			s.State = "running"
		default:
			s.State = "silent"
		}
		out = append(out, s)
	}
	return out, nil
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// printStatus writes st as text.
func printStatus(w io.Writer, st statusReport) {
	fmt.Fprintf(w, "workspace  %s\n", st.Workspace)
	fmt.Fprintf(w, "store      %s %s\n", st.Store.Engine, st.Store.Where)
	if len(st.Agents) > 1 || st.Store.Engine != "sqlite" {
		fmt.Fprintln(w, "agents:")
		for _, a := range st.Agents {
			fmt.Fprintf(w, "  %-8s %s, last heartbeat %s; %d files processing, %d settled\n",
				a.State, a.Name, a.HeartbeatAt.Local().Format("2006-01-02 15:04:05"), a.Processing, a.Settled)
		}
	}
	if m := st.Model; m == nil {
		fmt.Fprintf(w, "model      none (train one with 'sentinel train --workspace %s --normals DIR')\n", st.Workspace)
	} else {
		fmt.Fprintf(w, "model      %s (%s, %d training normals, threshold %.6g, created %s)\n",
			m.Version, m.Kind, m.TrainImages, m.Threshold, m.CreatedAt.Format("2006-01-02 15:04"))
		if c := st.Combined; c != nil {
			fmt.Fprintf(w, "           reports use the combined score: head weight %.2f, threshold %.4g set on %s\n",
				c.HeadWeight, c.Threshold, c.ThresholdSource)
		}
	}
	fmt.Fprintf(w, "queue      %d pending, %d processing\n", st.Queue.Pending, st.Queue.Processing)
	fmt.Fprintf(w, "instances  %d scored, %d reported; %d reports revised by a newer model\n", st.Instances, st.Reported, st.Revised)
	fmt.Fprintf(w, "files     %s\n", joinCounts(st.Files))
	fmt.Fprintf(w, "decisions %s (as last reported)\n", joinCounts(st.Decisions))
	l := st.Learning
	fmt.Fprintf(w, "learning   %d open queries; %d labels on %d cases (%d abnormal, %d in the holdout), readers: %d; %d admitted (%d undone)\n",
		l.OpenQueries, l.Labels, l.LabelledCases, l.Abnormal, l.Holdout, l.Readers, l.Admitted, l.Undone)
	for _, kind := range []string{store.CycleRetrain, store.CycleAdmission} {
		if c, ok := l.LastCycles[kind]; ok {
			fmt.Fprintf(w, "  last %s cycle %s: %s\n", kind, c.FinishedAt.Local().Format("2006-01-02 15:04"), c.Reason)
		}
	}
	if st.DICOM != nil {
		printDICOM(w, *st.DICOM)
	}
	if len(st.Revisions) > 0 {
		fmt.Fprintln(w, "recent revisions:")
		for _, r := range st.Revisions {
			fmt.Fprintf(w, "  %s  %s (study %s, accession %q): %s by %s, now %s by %s (revision %d)\n",
				r.RevisedAt.Format("2006-01-02 15:04:05"), r.SOPInstanceUID, r.StudyInstanceUID, r.AccessionNumber,
				r.PreviousDecision, r.PreviousModelVersion, r.Decision, r.ModelVersion, r.Revision)
		}
	}
	if len(st.Failures) > 0 {
		fmt.Fprintln(w, "recent failures:")
		for _, f := range st.Failures {
			fmt.Fprintf(w, "  %s  %s\n    %s\n", f.SeenAt.Format("2006-01-02 15:04:05"), f.Path, f.Error)
		}
	}
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

// learningStatus says where the learning loop stands: the worklist, the
// labels, the admissions and the last cycles.
func learningStatus(ctx context.Context, db *store.DB) (statusLearning, error) {
	var s statusLearning
	open, err := db.Queries(ctx, sentinel.QueryOpen)
	if err != nil {
		return s, err
	}
	labels, err := db.AllLabels(ctx)
	if err != nil {
		return s, err
	}
	adm, err := db.Admissions(ctx, "")
	if err != nil {
		return s, err
	}
	holdout, err := db.Holdout(ctx)
	if err != nil {
		return s, err
	}
	readers := map[string]bool{}
	for _, ls := range labels {
		for _, l := range ls {
			readers[l.Reader] = true
			s.Labels++
		}
	}
	for _, v := range learn.ResolveAll(labels) {
		if v == learn.Abnormal {
			s.Abnormal++
		}
	}
	for _, a := range adm {
		if a.State == store.AdmissionUndone {
			s.Undone++
		}
	}
	s.OpenQueries, s.LabelledCases, s.Holdout, s.Readers = len(open), len(labels), len(holdout), len(readers)
	s.Admitted = len(adm) - s.Undone
	s.LastCycles = map[string]statusCycle{}
	for _, kind := range []string{store.CycleRetrain, store.CycleAdmission} {
		c, ok, err := db.LastCycle(ctx, kind)
		if err != nil {
			return s, err
		}
		if ok {
			s.LastCycles[kind] = statusCycle{FinishedAt: c.FinishedAt, Reason: c.Reason}
		}
	}
	return s, nil
}
