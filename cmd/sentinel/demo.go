package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/config"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/internal/metrics"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// demoMarker marks a folder as a demo workspace, which the demo may wipe.
const demoMarker = ".sentinel-demo"

// demoCase is one file the demo drops into the inbox.
type demoCase struct {
	name  string
	kind  phantom.Kind
	path  string
	study string
	sop   string
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("demo", "demo [flags]", stderr)
	fs.Lookup("workspace").DefValue = "./sentinel-demo"
	g.workspace = "./sentinel-demo"
	normals := fs.Int("normals", 80, "synthetic normal chests to train on")
	studies := fs.Int("studies", 12, "studies to drop into the inbox (two images each), half of them abnormal")
	size := fs.Int("size", 256, "side of the synthetic images in pixels")
	seed := fs.Int64("seed", 7, "seed for the synthetic data")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *normals < 10 || *studies < 2 || *size < 32 {
		return usageError{"demo: need --normals >= 10, --studies >= 2, --size >= 32"}
	}
	// The demo always works in its own folder, so it never mixes with a
	// real workspace.
	if err := resetDemoWorkspace(g.workspace); err != nil {
		return err
	}
	fs.Set("workspace", g.workspace)
	e, err := setup(fs, g, io.Discard)
	if err != nil {
		return err
	}
	// Quiet logs: the demo prints its own story.
	e.cfg.Log.Level = "error"
	e.log = newLogger(e.cfg.Log, stderr)
	e.cfg.Ingest.StableFor = config.Duration{Duration: 500 * time.Millisecond}
	e.cfg.Ingest.PollInterval = config.Duration{Duration: 100 * time.Millisecond}
	e.cfg.Detector.Epochs = 25
	e.cfg.Ingest.StudyQuiet = config.Duration{Duration: time.Second}
	// The demo writes each file whole: its broken file is broken, not
	// half-written, and need not be waited for.
	e.cfg.Ingest.WriteGrace = config.Duration{Duration: time.Second}
	// The demo's phantoms are small films; the scope gate's other checks
	// apply as configured.
	e.cfg.Scope.MinSize = 0
	e.cfg.HTTP.Addr = "" // the demo shows its results itself; no port to clash with
	start := time.Now()
	rng := rand.New(rand.NewPCG(uint64(*seed), 0))

	// 1. Synthetic normals, written as real DICOM files.
	trainDir := filepath.Join(e.cfg.Workspace, "train-normals")
	fmt.Fprintf(stdout, "1/5 writing %d synthetic normal chest radiographs (DICOM, %dx%d) to %s\n", *normals, *size, *size, trainDir)
	var files []string
	for i := 0; i < *normals; i++ {
		p := filepath.Join(trainDir, fmt.Sprintf("normal-%03d.dcm", i))
		if err := writePhantom(rng, p, *size, phantom.Kind("normal"), phantom.Meta{}); err != nil {
			return err
		}
		files = append(files, p)
	}

	// 2. Train.
	db, err := e.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	tc := e.trainConfig()
	tc.Progress = progressPrinter(stderr)
	fmt.Fprintf(stdout, "2/5 training the autoencoder (%d epochs at %dx%d)\n", tc.Epochs, tc.InputSize, tc.InputSize)
	trainStart := time.Now()
	info, err := agent.Train(ctx, db, agent.TrainOptions{
		Files: files, ModelsDir: e.paths.Models, Detector: tc,
		Decode: e.decoder(), Resample: dicomio.Resample, Workers: 2, Logger: e.log,
	})
	if err != nil {
		return err
	}
	if err := e.recordSeeds(ctx, db, files); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "    model %s trained in %s; threshold %.5g (set for %.0f%% false positives on %d held-out normals)\n",
		info.Version, time.Since(trainStart).Round(100*time.Millisecond), info.Threshold, 100*info.TargetFPR, info.CalibImages)
	m, err := e.loadScorer()
	if err != nil {
		return err
	}

	// 3. Start the agent and drop studies in the inbox.
	cases, err := demoCases(rng, *studies)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	outcomes := map[string]agent.Outcome{}
	got := make(chan struct{}, 1)
	a := e.newAgent(db, m, false, func(o agent.Outcome) {
		mu.Lock()
		outcomes[o.Path] = o
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default: // a wake-up is already pending
		}
	})
	runCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(runCtx) }()
	inbox := e.paths.Inbox[0]
	fmt.Fprintf(stdout, "3/5 agent watching %s; dropping %d studies (%d images), a copy of one image and a broken file\n",
		inbox, *studies, len(cases))
	dropStart := time.Now()
	var dropped []string
	for i := range cases {
		c := &cases[i]
		c.path = filepath.Join(inbox, c.study[len(c.study)-8:], c.name+".dcm")
		if err := writePhantom(rng, c.path, *size, c.kind, phantom.Meta{
			StudyInstanceUID: c.study, SeriesInstanceUID: c.study + ".1", SOPInstanceUID: c.sop,
			AccessionNumber: fmt.Sprintf("DEMO%04d", i/2), PatientID: fmt.Sprintf("DEMO-P%04d", i/2),
		}); err != nil {
			return err
		}
		dropped = append(dropped, c.path)
	}
	dup := filepath.Join(inbox, "resent", "copy-of-"+cases[0].name+".dcm")
	broken := filepath.Join(inbox, "broken.dcm")
	if err := copyPath(cases[0].path, dup); err != nil {
		return err
	}
	if err := os.WriteFile(broken, append(make([]byte, 128), []byte("DICM this file was cut short")...), 0o644); err != nil {
		return err
	}
	dropped = append(dropped, dup, broken)

	// 4. Wait for every file to be handled, then report.
	timeout := time.After(2 * time.Minute)
	for n := 0; n < len(dropped); {
		select {
		case <-got:
			mu.Lock()
			n = 0
			for _, p := range dropped {
				if o, ok := outcomes[p]; ok && o.Status != agent.StatusRetry {
					n++
				}
			}
			mu.Unlock()
		case <-timeout:
			stopAgent()
			return errors.New("demo: timed out waiting for the agent's reports")
		case <-ctx.Done():
			stopAgent()
			return ctx.Err()
		}
	}
	latency := time.Since(dropStart)
	// Give the agent the time to report the studies, now quiet.
	for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); time.Sleep(200 * time.Millisecond) {
		if st, err := db.Studies(ctx, *studies+1); err == nil && allReported(st, *studies) {
			break
		}
	}
	stopAgent()
	if err := <-agentDone; err != nil {
		return err
	}
	if err := printDemo(stdout, e, db, cases, outcomes, dup, broken, latency); err != nil {
		return err
	}
	if err := demoLearning(ctx, stdout, e, db, a, cases, *seed); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nDone in %s. Look at:\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Fprintf(stdout, "  reports (JSON + heatmap PNG)  %s\n", e.paths.Reports)
	fmt.Fprintf(stdout, "  quarantined files            %s\n", e.paths.Quarantine)
	fmt.Fprintf(stdout, "  the worklist and answers     %s, %s\n", filepath.Join(e.cfg.Workspace, "worklist.csv"), filepath.Join(e.cfg.Workspace, "answers.csv"))
	fmt.Fprintf(stdout, "  state                        sentinel status --workspace %s\n", e.cfg.Workspace)
	fmt.Fprintf(stdout, "  keep watching the inbox      sentinel run --workspace %s\n", e.cfg.Workspace)
	return nil
}

// demoLearning runs the learning loop once on the demo's cases: a worklist
// of the cases the model would most like a radiologist to read, the
// answers of a stand-in radiologist who reads every study (by accession
// number, as a RIS reports), and a retraining. A candidate the evidence
// does not show better is held, and the demo plays the person who promotes
// it; the new model then revises the reports it decides otherwise, as the
// running agent does.
func demoLearning(ctx context.Context, w io.Writer, e *env, db *store.DB, a *agent.Agent, cases []demoCase, seed int64) error {
	opt := e.learningOptions()
	opt.Logger = e.log
	rows, err := agent.NewQueries(ctx, db, opt, agent.QueryOptions{N: 4, Strategy: learn.Hybrid, Seed: seed})
	if err != nil {
		return err
	}
	worklist := filepath.Join(e.cfg.Workspace, "worklist.csv")
	if err := writeFileWith(worklist, func(f io.Writer) error { return agent.WriteWorklistCSV(f, agent.Worklist(rows)) }); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n5/5 learning from a radiologist: %d cases on the worklist (%s)\n", len(rows), worklist)
	for _, r := range rows {
		fmt.Fprintf(w, "    accession %s: %s\n", r.AccessionNumber, r.Reason)
	}
	// The stand-in radiologist answers every study, asked about or not: a
	// study is abnormal when any of its films is.
	abnormal := map[string]bool{}
	var order []string
	for i, c := range cases {
		acc := fmt.Sprintf("DEMO%04d", i/2)
		if _, ok := abnormal[acc]; !ok {
			order = append(order, acc)
		}
		abnormal[acc] = abnormal[acc] || c.kind != "normal"
	}
	var b bytes.Buffer
	b.WriteString("accession_number,label,reader,time\n")
	now := time.Now().UTC().Format(time.RFC3339)
	for _, acc := range order {
		v := "normal"
		if abnormal[acc] {
			v = "abnormal"
		}
		fmt.Fprintf(&b, "%s,%s,demo-radiologist,%s\n", acc, v, now)
	}
	answers := filepath.Join(e.cfg.Workspace, "answers.csv")
	if err := os.WriteFile(answers, b.Bytes(), 0o644); err != nil {
		return err
	}
	parsed, bad, err := learn.ParseLabels(bytes.NewReader(b.Bytes()), "csv")
	if err != nil {
		return err
	}
	rep, err := agent.ImportLabels(ctx, db, parsed, bad, filepath.Base(answers))
	if err != nil {
		return err
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("demo: answers: %v", rep.Errors[0])
	}
	fmt.Fprintf(w, "    answers for %d studies by accession number (%s): %d labels, one per film\n", rep.Rows, answers, rep.Added)
	res, err := agent.Retrain(ctx, db, opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "    retrained: model %s %s (%s)\n", res.Candidate.Version, verdictWord(res.Verdict.Promote, res.Verdict.Held), res.Verdict.Reason)
	switch {
	case res.Verdict.Held:
		// Twelve studies make too small a holdout to show a model better:
		// the demo plays the person who looks and decides.
		if _, err := agent.PromoteModel(ctx, db, e.paths.Models, res.Candidate.Version, "the demo's radiologist"); err != nil {
			return err
		}
		fmt.Fprintf(w, "    a person looks and makes it current: sentinel models promote %s\n", res.Candidate.Version)
	case !res.Verdict.Promote:
		return nil
	}
	fmt.Fprintf(w, "    its reports now combine the detector with what the labels taught (docs/learning.md)\n")
	next, err := e.loadScorer()
	if err != nil {
		return err
	}
	a.SetModel(next)
	rv, err := a.ReviseReports(ctx)
	if err != nil {
		return err
	}
	if err := a.ReportQuietStudies(ctx, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(w, "    the new model compared with the %d earlier reports: %d decided otherwise and issued again as revision 2 (<uid>.r2.json), the others stand\n",
		rv.Checked, rv.Revised)
	return nil
}

func allReported(st []store.StudySummary, n int) bool {
	if len(st) < n {
		return false
	}
	for _, s := range st {
		if s.Revision == 0 {
			return false
		}
	}
	return true
}

func demoCases(rng *rand.Rand, studies int) ([]demoCase, error) {
	abnormal := []phantom.Kind{"nodule", "opacity", "effusion"}
	var cases []demoCase
	for s := 0; s < studies; s++ {
		study := phantom.NewUID(rng)
		for k := 0; k < 2; k++ {
			kind := phantom.Kind("normal")
			if s%2 == 1 {
				kind = abnormal[(s/2+k)%len(abnormal)]
			}
			cases = append(cases, demoCase{
				name: fmt.Sprintf("study%02d-img%d-%s", s+1, k+1, kind), kind: kind,
				study: study, sop: phantom.NewUID(rng),
			})
		}
	}
	return cases, nil
}

func writePhantom(rng *rand.Rand, path string, size int, kind phantom.Kind, meta phantom.Meta) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if meta.SOPInstanceUID == "" {
		meta.StudyInstanceUID = phantom.NewUID(rng)
		meta.SeriesInstanceUID = meta.StudyInstanceUID + ".1"
		meta.SOPInstanceUID = phantom.NewUID(rng)
		// A patient of its own, as the learning loop keys patients.
		meta.PatientID = "DEMO-" + meta.SOPInstanceUID[len(meta.SOPInstanceUID)-8:]
	}
	// Write under a temporary name and rename, as a careful sender does.
	tmp := path + ".part"
	if err := phantom.WriteDICOM(tmp, phantom.Generate(rng, size, kind), size, meta); err != nil {
		return fmt.Errorf("write phantom %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

func copyPath(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".part"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// resetDemoWorkspace empties a previous demo workspace; it refuses to touch
// a folder that is not one.
func resetDemoWorkspace(ws string) error {
	entries, err := os.ReadDir(ws)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(ws, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(ws, demoMarker), nil, 0o644)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(ws, demoMarker)); err != nil {
			return fmt.Errorf("demo: %s exists and is not a demo workspace; choose another --workspace", ws)
		}
		if err := os.RemoveAll(ws); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(ws, demoMarker), nil, 0o644)
}

func printDemo(w io.Writer, e *env, db *store.DB, cases []demoCase, outcomes map[string]agent.Outcome,
	dup, broken string, latency time.Duration) error {
	fmt.Fprintf(w, "4/5 results (all %d files handled %s after the first drop)\n\n", len(cases)+2, latency.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "case\ttruth\tscore\tdecision\treport")
	var scores []float64
	var truth []bool
	sorted := append([]demoCase(nil), cases...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		o := outcomes[c.path]
		t := "normal"
		if c.kind != "normal" {
			t = "abnormal (" + string(c.kind) + ")"
		}
		if o.Score == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t%s\t%v\n", c.name, t, o.Status, o.Err)
			continue
		}
		rel, err := filepath.Rel(filepath.Dir(e.paths.Reports), o.ReportPath)
		if err != nil {
			rel = o.ReportPath
		}
		fmt.Fprintf(tw, "%s\t%s\t%.5f\t%s\t%s\n", c.name, t, o.Score.Value, o.Score.Decision, rel)
		scores = append(scores, o.Score.Value)
		truth = append(truth, c.kind != "normal")
	}
	tw.Flush()
	var sum [2]float64
	var n [2]int
	for i, s := range scores {
		k := 0
		if truth[i] {
			k = 1
		}
		sum[k] += s
		n[k]++
	}
	fmt.Fprintf(w, "\nmean score: normal %.3f, abnormal %.3f; AUROC on these %d images: %.3f (1.0 = every abnormal scored above every normal)\n",
		sum[0]/float64(max(1, n[0])), sum[1]/float64(max(1, n[1])), len(scores), metrics.AUROC(scores, truth))
	fmt.Fprintf(w, "copy of an image already seen: %s\n", outcomes[dup].Status)
	if o := outcomes[broken]; o.Err != nil {
		fmt.Fprintf(w, "broken file: %s (%v)\n", o.Status, o.Err)
	}
	c, err := db.Counts(context.Background())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "database: %d instances, %d reports; files%s\n", c.Instances, c.Reports, joinCounts(c.Files))
	st, err := db.Studies(context.Background(), len(cases))
	if err != nil {
		return err
	}
	flagged := 0
	for _, s := range st {
		if s.Revision > 0 && s.WorstDecision != "normal" {
			flagged++
		}
	}
	fmt.Fprintf(w, "study reports: %d studies, %d flagged abnormal or uncertain (reports/<study>/study.json)\n", len(st), flagged)
	return nil
}
