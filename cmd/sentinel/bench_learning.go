package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/internal/plots"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := subcommand(args, "sentinel bench learning [flags] | sentinel bench compare [flags]", stderr, "learning"); err != nil {
		return err
	}
	return runBenchLearning(ctx, args[1:], stdout, stderr)
}

// admissionOnly is the bench's name for running oracle-free admission
// alone, without any labels.
const admissionOnly = "admission-only"

// benchRound is one line of the learning benchmark.
type benchRound struct {
	Round    int    `json:"round"`
	Strategy string `json:"strategy"`
	// Admission says whether admission cycles ran before the retrainings.
	Admission bool `json:"admission"`
	// Seed is the run's seed: of training and of the queries.
	Seed      int64 `json:"seed"`
	Labels    int   `json:"labels"`
	Abnormals int   `json:"labelled_abnormals"`
	// Unanswered counts the round's queries the labels file had no row for.
	Unanswered int `json:"unanswered,omitempty"`
	Admitted   int `json:"admitted"`
	// AdmittedNormal is the fraction of the admitted cases that are truly
	// normal (from the labels file; never used by the loop).
	AdmittedNormal float64 `json:"admitted_truly_normal"`
	// TrainNormals counts the normals the round's candidate trained on
	// (the seed normals in round 0).
	TrainNormals int `json:"train_normals"`
	// The model in use's figures on the evaluation split, as `sentinel
	// eval` gives them.
	Model          string  `json:"model"`
	ROCAUC         float64 `json:"roc_auc"`
	PRAUC          float64 `json:"pr_auc"`
	DetectorROCAUC float64 `json:"detector_roc_auc"`
	Precision      float64 `json:"precision"`
	Recall         float64 `json:"recall"`
	F1             float64 `json:"f1"`
	FP             int     `json:"fp"`
	TP             int     `json:"tp"`
	Threshold      float64 `json:"threshold"`
	HeadWeight     float64 `json:"head_weight"`
	// Holdout is the frozen holdout's size; Promoted and Verdict say what
	// the promotion gate did with the round's candidate.
	Holdout        int    `json:"holdout"`
	HoldoutNormals int    `json:"holdout_normals"`
	Promoted       *bool  `json:"promoted,omitempty"`
	Verdict        string `json:"verdict,omitempty"`
	// CandidateROCAUC is a candidate's ROC-AUC on the evaluation split when
	// it did not become the model in use: it audits the gate and steers
	// nothing.
	CandidateROCAUC *float64 `json:"candidate_roc_auc,omitempty"`
	Seconds         float64  `json:"seconds"`
}

func runBenchLearning(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("bench learning", "bench learning --labels CSV [--images DIR] [flags]", stderr)
	labelsPath := fs.String("labels", "../shared/data/cxr8/labels.csv", "labels `CSV` (file,finding,split[,patient]): the stand-in radiologists")
	imagesDir := fs.String("images", "", "`folder` of the images (default: images/ beside the labels file)")
	seedSplit := fs.String("seed-split", "seed", "split whose normals train the round-0 model")
	poolSplit := fs.String("pool-split", "pool", "split ingested as the site's films: the queries are drawn from it and answered from the file")
	evalSplit := fs.String("eval-split", "dev", "split evaluated after each round (never trained on, never used for thresholds)")
	rounds := fs.Int("rounds", 5, "learning rounds")
	perRound := fs.Int("per-round", 25, "queries answered per round")
	strategy := fs.String("strategy", "hybrid", "hybrid, uncertainty, boundary, diverse, random or admission-only; several, comma-separated, run one after another")
	epochs := fs.Int("epochs", 0, "training epochs per round (default detector.epochs)")
	inputSize := fs.Int("input", 0, "model input size (default detector.input_size)")
	seed := fs.Int64("seed", 1, "seed of training and of the queries")
	seeds := fs.Int("seeds", 1, "run each strategy with this many seeds: --seed, --seed+1, ...")
	plotDir := fs.String("plot", "", "also write the learning curves (evaluation ROC-AUC per round, one line per strategy, the seeds' spread shaded) into this `folder` as learning.png and learning.svg")
	asJSON := fs.Bool("json", false, "print one JSON object per round")
	withAdmission := fs.Bool("admit", true, "run an admission cycle before each retraining, as the running agent does")
	keep := fs.String("keep", "", "keep each run's workspace in this `folder` (default: a temporary folder, removed at the end)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var strategies []string
	for _, st := range strings.Split(*strategy, ",") {
		st = strings.TrimSpace(st)
		if st != admissionOnly {
			if _, err := learn.ParseStrategy(st); err != nil {
				return usageError{"bench learning: " + err.Error()}
			}
		}
		strategies = append(strategies, st)
	}
	if *seeds < 1 {
		return usageError{"bench learning: --seeds must be at least 1"}
	}
	if *rounds < 0 || *perRound < 1 {
		return usageError{"bench learning: --rounds must be at least 0 and --per-round at least 1"}
	}
	// Each run needs a new workspace: a kept folder is not reused.
	if entries, err := os.ReadDir(*keep); *keep != "" && err == nil && len(entries) > 0 {
		return usageError{fmt.Sprintf("bench learning: --keep %s: the folder is not empty", *keep)}
	}
	e, err := setupReadOnly(fs, g, stderr)
	if err != nil {
		return err
	}
	if *epochs > 0 {
		e.cfg.Detector.Epochs = *epochs
	}
	if *inputSize > 0 {
		e.cfg.Detector.InputSize = *inputSize
	}
	if *imagesDir == "" {
		*imagesDir = filepath.Join(filepath.Dir(*labelsPath), "images")
	}
	rows, err := agent.ReadLabels(*labelsPath)
	if err != nil {
		return err
	}
	work := *keep
	if work == "" {
		if work, err = os.MkdirTemp("", "sentinel-bench-learning-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	b := &learningBench{e: e, rows: rows, images: *imagesDir, labels: *labelsPath, work: work,
		rounds: *rounds, perRound: *perRound, admit: *withAdmission}
	if err := b.prepare(ctx, *seedSplit, *poolSplit, *evalSplit); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench learning: %d seed normals (%s), pool %d (%s), evaluation %d (%s), strategy %s, %d seed(s) from %d, %d rounds of %d, input %d, %d epochs\n",
		len(b.seedFiles), *seedSplit, b.poolSize, *poolSplit, len(b.eval), *evalSplit, strings.Join(strategies, ", "), *seeds, *seed,
		*rounds, *perRound, e.cfg.Detector.InputSize, e.cfg.Detector.Epochs)

	prog := e.newProgress(stderr, "bench learning", "rounds", len(strategies)**seeds*(*rounds+1))
	defer prog.Finish()
	var runs [][]benchRound
	for _, st := range strategies {
		for k := range *seeds {
			sd := *seed + int64(k)
			all, err := b.run(ctx, st, sd, func(row benchRound) {
				prog.Add(1)
				if *asJSON {
					line, _ := json.Marshal(row)
					fmt.Fprintln(stdout, string(line))
				}
			})
			if err != nil {
				return fmt.Errorf("bench learning: %s, seed %d: %w", st, sd, err)
			}
			runs = append(runs, all)
			if !*asJSON {
				if len(strategies) > 1 || *seeds > 1 {
					fmt.Fprintf(stdout, "strategy %s, seed %d\n", all[0].Strategy, sd)
				}
				printBenchRounds(stdout, all)
			}
		}
	}
	prog.Finish()
	if *plotDir != "" {
		paths, err := writeLearningPlot(*plotDir, runs, *evalSplit)
		if err != nil {
			return fmt.Errorf("bench learning: %w", err)
		}
		fmt.Fprintf(stderr, "bench learning: wrote %d pictures into %s\n", len(paths), *plotDir)
	}
	return nil
}

// learningBench runs the agent's learning loop on a research labels file:
// each run is a new workspace that trains on the seed split's normals,
// ingests the pool split as a site's films, and rehearses the loop with
// the labels file answering (agent.Rehearse). The evaluation split is
// scored after each round as `sentinel eval` scores it.
type learningBench struct {
	e              *env
	rows           []agent.LabelRow
	images, labels string
	work           string
	rounds         int
	perRound       int
	admit          bool
	seedFiles      []string
	pool           string
	poolSize       int
	eval           []evalCase
	answer         func(path string) (string, bool)
	patients       map[string]string
}

// prepare lists the seed normals and the evaluation cases, and copies the
// pool's films into a folder of their own, the one each run ingests (the
// agent takes no symbolic links; ingesting a folder leaves it as it is).
func (b *learningBench) prepare(ctx context.Context, seedSplit, poolSplit, evalSplit string) error {
	var err error
	if b.seedFiles, err = agent.NormalFiles(b.images, b.labels, seedSplit); err != nil {
		return err
	}
	if b.patients, err = agent.ReadPatients(b.labels); err != nil {
		return err
	}
	b.answer = agent.RehearsalFile(b.rows)
	b.pool = filepath.Join(b.work, "pool")
	if err := os.MkdirAll(b.pool, 0o755); err != nil {
		return err
	}
	for _, r := range b.rows {
		switch r.Split {
		case poolSplit:
			src := filepath.Join(b.images, filepath.FromSlash(r.File))
			if err := copyFile(src, filepath.Join(b.pool, filepath.Base(src))); err != nil {
				return fmt.Errorf("bench learning: pool: %w", err)
			}
			b.poolSize++
		case evalSplit:
			b.eval = append(b.eval, evalCase{path: filepath.Join(b.images, filepath.FromSlash(r.File)), abnormal: !r.Normal()})
		}
	}
	switch {
	case b.poolSize == 0:
		return fmt.Errorf("bench learning: no rows in split %q of %s", poolSplit, b.labels)
	case len(b.eval) == 0:
		return fmt.Errorf("bench learning: no rows in split %q of %s", evalSplit, b.labels)
	}
	return ctx.Err()
}

// copyFile copies src to dst, which must not exist yet.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	_, err = io.Copy(out, in)
	return err
}

// workspace is the environment of one run: the bench's configuration with
// its own workspace (always SQLite: a rehearsal never writes into a shared
// database), training seed, and a log that keeps to warnings.
func (b *learningBench) workspace(name string, seed int64) (*env, error) {
	ce := *b.e
	ce.cfg.Workspace = filepath.Join(b.work, name)
	ce.cfg.Store.URL, ce.cfg.Store.Agent = "", ""
	ce.cfg.Detector.Seed = seed
	if strings.ToLower(ce.cfg.Log.Level) != "debug" {
		ce.cfg.Log.Level = "warn"
	}
	ce.log = newLogger(ce.cfg.Log, os.Stderr)
	ce.filePatients = b.patients
	var err error
	if ce.paths, err = ce.cfg.Resolve(); err != nil {
		return nil, err
	}
	return &ce, ce.paths.Prepare()
}

// run trains, ingests and rehearses one strategy with one seed.
func (b *learningBench) run(ctx context.Context, strategy string, seed int64, emit func(benchRound)) ([]benchRound, error) {
	start := time.Now()
	e, err := b.workspace(fmt.Sprintf("%s-%d", strategy, seed), seed)
	if err != nil {
		return nil, err
	}
	// The run's patient keys follow its seed, so that a run repeats and
	// the strategies of one seed group the patients alike.
	db := store.NewDB(e.paths.Database)
	if err := db.Open(); err != nil {
		return nil, err
	}
	secret := sha256.Sum256(fmt.Appendf(nil, "sentinel bench learning, seed %d", seed))
	err = db.SetPatientSecret(ctx, secret[:])
	db.Close()
	if err != nil {
		return nil, err
	}
	// Round 0: `sentinel train` on the seed split, then `sentinel ingest`
	// of the pool.
	if db, err = e.openDB(); err != nil {
		return nil, err
	}
	_, err = agent.Train(ctx, db, agent.TrainOptions{Files: b.seedFiles, ModelsDir: e.paths.Models, Detector: e.trainConfig(),
		Decode: e.decoder(), Resample: dicomio.Resample, Workers: e.cfg.Ingest.Workers, Logger: e.log})
	if err == nil {
		err = e.recordSeeds(ctx, db, b.seedFiles)
	}
	db.Close()
	if err != nil {
		return nil, err
	}
	m, db, closeDB, err := e.openForScoring(ctx)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	sum, _, err := e.newAgent(db, m, true, nil).IngestDir(ctx, b.pool)
	if err != nil {
		return nil, err
	}
	// A film that repeats another's bytes is one instance to the agent.
	if sum[store.FileDone]+sum[store.FileDuplicate] != b.poolSize {
		return nil, fmt.Errorf("ingest of the pool: %v of %d films", sum, b.poolSize)
	}
	opt := e.learningOptions()
	r := agent.RehearsalOptions{Rounds: b.rounds, PerRound: b.perRound, Seed: seed, Admit: b.admit, Answer: b.answer, Reader: "labels-file"}
	if strategy != admissionOnly {
		r.Strategy = learn.Strategy(strategy)
	}
	var all []benchRound
	err = agent.Rehearse(ctx, db, opt, r, func(rr agent.RehearsalRound) error {
		row, err := b.measure(ctx, e, rr)
		if err != nil {
			return err
		}
		row.Strategy, row.Admission, row.Seed, row.Seconds = strategy, r.Admits(), seed, time.Since(start).Seconds()
		start = time.Now()
		all = append(all, row)
		emit(row)
		return nil
	})
	return all, err
}

// measure turns a rehearsal round into the bench's row: the model in use
// on the evaluation split, and the candidate's figure when the gate kept
// it out.
func (b *learningBench) measure(ctx context.Context, e *env, rr agent.RehearsalRound) (benchRound, error) {
	row := benchRound{Round: rr.Round, Labels: rr.Labels, Abnormals: rr.Abnormals, Unanswered: rr.Unanswered,
		Admitted: len(rr.Admitted), Holdout: rr.Holdout, Model: rr.Model.Version, AdmittedNormal: 1}
	if n := len(rr.Admitted); n > 0 {
		normal := 0
		for _, p := range rr.Admitted {
			if v, ok := b.answer(p); ok && v == learn.Normal {
				normal++
			}
		}
		row.AdmittedNormal = float64(normal) / float64(n)
	}
	row.TrainNormals = rr.Model.TrainImages + rr.Model.CalibImages
	if res := rr.Retrain; res != nil {
		row.TrainNormals = len(res.TrainedIDs)
		row.Promoted, row.Verdict = &res.Verdict.Promote, res.Verdict.Reason
		row.HoldoutNormals = res.CandidateEval.HoldoutNormals
		if !res.Verdict.Promote {
			cand, err := b.evaluate(ctx, e, res.Candidate.Path)
			if err != nil {
				return row, err
			}
			row.CandidateROCAUC = &cand.ROCAUC
		}
	}
	cur, err := b.evaluate(ctx, e, rr.Model.Path)
	if err != nil {
		return row, err
	}
	row.ROCAUC, row.PRAUC, row.DetectorROCAUC = cur.ROCAUC, cur.PRAUC, cur.DetectorROCAUC
	row.Precision, row.Recall, row.F1, row.FP, row.TP = cur.Precision, cur.Recall, cur.F1, cur.FP, cur.TP
	row.Threshold, row.HeadWeight = cur.Threshold, cur.HeadWeight
	return row, nil
}

// benchEval is one model's figures on the evaluation split.
type benchEval struct {
	evalResult
	DetectorROCAUC float64
	HeadWeight     float64
}

// evaluate scores the evaluation split with the model at path, with what
// the learning loop fitted, as `sentinel eval --model` does.
func (b *learningBench) evaluate(ctx context.Context, e *env, path string) (benchEval, error) {
	m, err := detector.Load(path)
	if err != nil {
		return benchEval{}, err
	}
	s, err := agent.WithLearning(m, e.learningOptions().Embedder)
	if err != nil {
		return benchEval{}, err
	}
	cases := make([]evalCase, len(b.eval))
	copy(cases, b.eval)
	if err := scoreCases(ctx, m, s, cases, e.decoder(), max(1, e.cfg.Ingest.Workers)); err != nil {
		return benchEval{}, err
	}
	res := benchEval{evalResult: summarise(m, cases)}
	det := make([]float64, len(cases))
	positive := make([]bool, len(cases))
	for i, c := range cases {
		det[i], positive[i] = c.score.Value, c.abnormal
		if v, ok := c.score.Components[agent.ComponentDetector]; ok {
			det[i] = v
		}
		if w, ok := c.score.Components[agent.ComponentHeadWeight]; ok {
			res.HeadWeight = w
		}
	}
	res.DetectorROCAUC = learn.AUROC(det, positive)
	return res, nil
}

// printBenchRounds prints one run's rounds as a table.
func printBenchRounds(w io.Writer, all []benchRound) {
	fmt.Fprintf(w, "%-5s %-6s %-8s %-9s %-7s %-7s %-9s %-7s %-6s %-4s %-7s %-6s %-7s %-8s %-8s %s\n", "round", "labels", "admitted", "adm.norm",
		"roc_auc", "pr_auc", "precision", "recall", "f1", "fp", "det_auc", "head_w", "holdout", "promoted", "cand_auc", "verdict")
	for _, r := range all {
		line := fmt.Sprintf("%-5d %-6d %-8d %-9.3f %-7.4f %-7.4f %-9.3f %-7.3f %-6.3f %-4d %-7.4f %-6.3f", r.Round, r.Labels, r.Admitted,
			r.AdmittedNormal, r.ROCAUC, r.PRAUC, r.Precision, r.Recall, r.F1, r.FP, r.DetectorROCAUC, r.HeadWeight)
		if r.Promoted != nil {
			cand := r.ROCAUC
			if r.CandidateROCAUC != nil {
				cand = *r.CandidateROCAUC
			}
			line += fmt.Sprintf(" %-7d %-8v %-8.4f %s", r.Holdout, *r.Promoted, cand, r.Verdict)
		} else {
			line += fmt.Sprintf(" %-7d %-8s %-8s %s", r.Holdout, "-", "-", "model trained on the seed normals")
		}
		fmt.Fprintln(w, line)
	}
}

// learningSeries groups the runs' rounds by strategy, in the order the
// strategies ran: one series each, at each round the ROC-AUC of every
// seed. X is the labels given after the round (from the strategy's first
// run), or the round itself when byRound.
func learningSeries(runs [][]benchRound, byRound bool) []plots.Series {
	var out []plots.Series
	index := map[string]int{}
	for _, run := range runs {
		if len(run) == 0 {
			continue
		}
		name := run[0].Strategy
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, plots.Series{Label: name})
		}
		s := &out[i]
		for j, r := range run {
			if j == len(s.X) {
				x := float64(r.Labels)
				if byRound {
					x = float64(r.Round)
				}
				s.X = append(s.X, x)
				s.Y = append(s.Y, nil)
			}
			s.Y[j] = append(s.Y[j], r.ROCAUC)
		}
	}
	return out
}

// writeLearningPlot draws the runs' learning curves into dir. Against the
// labels given, unless a run gives none (admission alone): then against
// the round.
func writeLearningPlot(dir string, runs [][]benchRound, evalSplit string) ([]string, error) {
	byRound := false
	for _, run := range runs {
		if len(run) > 0 && strings.HasPrefix(run[0].Strategy, admissionOnly) {
			byRound = true
		}
	}
	xLabel := "labels given (radiologists' answers)"
	if byRound {
		xLabel = "round"
	}
	return plots.WriteLearning(dir, "Learning curves: ROC-AUC on "+evalSplit+" after each round", xLabel, learningSeries(runs, byRound))
}
