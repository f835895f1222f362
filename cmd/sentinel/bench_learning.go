package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/internal/parallel"
	"github.com/sentinel-pacs/sentinel/internal/plots"
	"github.com/sentinel-pacs/sentinel/learn"
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
	// Seed is the run's seed: of the random draws and of training.
	Seed      int64 `json:"seed"`
	Labels    int   `json:"labels"`
	Abnormals int   `json:"labelled_abnormals"`
	Admitted  int   `json:"admitted"`
	// AdmittedNormal is the fraction of the admitted cases that are truly
	// normal (from the labels file; never used by the loop).
	AdmittedNormal float64 `json:"admitted_truly_normal"`
	TrainNormals   int     `json:"train_normals"`
	ROCAUC         float64 `json:"roc_auc"`
	PRAUC          float64 `json:"pr_auc"`
	// DetectorROCAUC is the detector's score alone, without the head.
	DetectorROCAUC float64 `json:"detector_roc_auc"`
	Precision      float64 `json:"precision"`
	Recall         float64 `json:"recall"`
	F1             float64 `json:"f1"`
	FP             int     `json:"fp"`
	TP             int     `json:"tp"`
	Threshold      float64 `json:"threshold"`
	HeadWeight     float64 `json:"head_weight"`
	// With --promotion: the frozen holdout's size, and whether this
	// round's candidate replaced the model in use (the figures above are
	// always the model in use's) with the verdict's reason.
	Holdout  int    `json:"holdout,omitempty"`
	Promoted *bool  `json:"promoted,omitempty"`
	Verdict  string `json:"verdict,omitempty"`
	// CandidateROCAUC is the candidate's ROC-AUC on the evaluation split,
	// promoted or not: it audits the gate and steers nothing.
	CandidateROCAUC *float64 `json:"candidate_roc_auc,omitempty"`
	Seconds         float64  `json:"seconds"`
}

// benchCase is one image of the benchmark with its true label.
type benchCase struct {
	id       string
	img      sentinel.Image
	emb      []float32
	abnormal bool
	// patient is the labels file's patient key ("" without one).
	patient string
}

func runBenchLearning(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("bench learning", "bench learning --labels CSV [--images DIR] [flags]", stderr)
	labelsPath := fs.String("labels", "../shared/data/cxr8/labels.csv", "labels `CSV` (file,finding,split)")
	imagesDir := fs.String("images", "", "`folder` of the images (default: images/ beside the labels file)")
	seedSplit := fs.String("seed-split", "seed", "split whose normals train the round-0 model")
	poolSplit := fs.String("pool-split", "pool", "split the queries are drawn from and answered from the file")
	evalSplit := fs.String("eval-split", "dev", "split evaluated after each round (never trained on, never used for thresholds)")
	rounds := fs.Int("rounds", 5, "learning rounds")
	perRound := fs.Int("per-round", 25, "queries answered per round")
	strategy := fs.String("strategy", "hybrid", "hybrid, uncertainty, boundary, diverse, random or admission-only; several, comma-separated, run one after another")
	epochs := fs.Int("epochs", 0, "training epochs per round (default detector.epochs)")
	inputSize := fs.Int("input", 0, "model input size (default detector.input_size)")
	seed := fs.Int64("seed", 1, "random seed of the random strategy and of training")
	seeds := fs.Int("seeds", 1, "run each strategy with this many seeds: --seed, --seed+1, ...")
	plotDir := fs.String("plot", "", "also write the learning curves (evaluation ROC-AUC per round, one line per strategy, the seeds' spread shaded) into this `folder` as learning.png and learning.svg")
	asJSON := fs.Bool("json", false, "print one JSON object per round")
	withAdmission := fs.Bool("admit", false, "with a query strategy, also run an oracle-free admission cycle before each round's queries, as the running agent does between retraining cycles")
	promotion := fs.Bool("promotion", false, "run the retraining cycle as the agent does: learning.holdout_fraction of the labels frozen as a holdout that never trains, and a candidate replaces the model in use only if the promotion gate passes")
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
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	if *epochs > 0 {
		e.cfg.Detector.Epochs = *epochs
	}
	if *inputSize > 0 {
		e.cfg.Detector.InputSize = *inputSize
	}
	tc := e.trainConfig()
	tc.Logger = nil
	opt := e.learningOptions()
	if *imagesDir == "" {
		*imagesDir = filepath.Join(filepath.Dir(*labelsPath), "images")
	}
	rows, err := agent.ReadLabels(*labelsPath)
	if err != nil {
		return err
	}
	load := func(split string, normalsOnly bool) ([]benchCase, error) {
		var files []agent.LabelRow
		for _, r := range rows {
			if r.Split == split && (!normalsOnly || r.Normal()) {
				files = append(files, r)
			}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("bench learning: no rows in split %q of %s", split, *labelsPath)
		}
		out := make([]benchCase, len(files))
		err := parallel.All(ctx, len(files), e.cfg.Ingest.Workers, func(i int) error {
			_, img, err := dicomio.Load(filepath.Join(*imagesDir, files[i].File), dicomio.Options{MaxPixels: e.cfg.Ingest.MaxPixels})
			if err != nil {
				return err
			}
			img = dicomio.Resample(img, tc.InputSize, tc.InputSize)
			out[i] = benchCase{id: files[i].File, img: img, emb: opt.Embedder.Embed(img), abnormal: !files[i].Normal(), patient: files[i].Patient}
			return nil
		})
		return out, err
	}
	seedCases, err := load(*seedSplit, true)
	if err != nil {
		return err
	}
	pool, err := load(*poolSplit, false)
	if err != nil {
		return err
	}
	eval, err := load(*evalSplit, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench learning: %d seed normals (%s), pool %d (%s), evaluation %d (%s), strategy %s, %d seed(s) from %d, %d rounds of %d, input %d, %d epochs\n",
		len(seedCases), *seedSplit, len(pool), *poolSplit, len(eval), *evalSplit, strings.Join(strategies, ", "), *seeds, *seed, *rounds, *perRound, tc.InputSize, tc.Epochs)

	var runs [][]benchRound
	for _, st := range strategies {
		for k := range *seeds {
			sd := *seed + int64(k)
			rtc := tc
			rtc.Seed = sd
			sim := &learningSim{ctx: ctx, tc: rtc, opt: opt, seed: seedCases, pool: pool, eval: eval,
				labelled: map[string]string{}, admitted: map[string]bool{}, streak: map[string]int{}, promotion: *promotion, roles: map[string]bool{}, random: map[string]bool{}}
			all, err := sim.run(st, sd, *rounds, *perRound, *withAdmission, func(row benchRound) {
				if *asJSON {
					b, _ := json.Marshal(row)
					fmt.Fprintln(stdout, string(b))
				}
			})
			if err != nil {
				return err
			}
			runs = append(runs, all)
			if !*asJSON {
				if len(strategies) > 1 || *seeds > 1 {
					fmt.Fprintf(stdout, "strategy %s, seed %d\n", all[0].Strategy, sd)
				}
				printBenchRounds(stdout, all, *promotion)
			}
		}
	}
	if *plotDir != "" {
		paths, err := writeLearningPlot(*plotDir, runs, *evalSplit)
		if err != nil {
			return fmt.Errorf("bench learning: %w", err)
		}
		fmt.Fprintf(stderr, "bench learning: wrote %d pictures into %s\n", len(paths), *plotDir)
	}
	return nil
}

// run runs one strategy with one seed: round 0 trains on the seed
// normals, and each later round queries (or admits), retrains and
// evaluates. Each row is passed to emit as it is made.
func (s *learningSim) run(strategy string, seed int64, rounds, perRound int, withAdmission bool, emit func(benchRound)) ([]benchRound, error) {
	var all []benchRound
	for r := 0; r <= rounds; r++ {
		start := time.Now()
		if r > 0 {
			if strategy == admissionOnly {
				if err := s.admit(); err != nil {
					return nil, err
				}
			} else {
				if withAdmission {
					if err := s.admit(); err != nil {
						return nil, err
					}
				}
				if err := s.query(learn.Strategy(strategy), perRound, seed+int64(r)); err != nil {
					return nil, err
				}
			}
		}
		row, err := s.trainAndEvaluate()
		if err != nil {
			return nil, err
		}
		row.Round, row.Strategy, row.Seed, row.Seconds = r, strategy, seed, time.Since(start).Seconds()
		if withAdmission && strategy != admissionOnly {
			row.Strategy += "+admission"
		}
		all = append(all, row)
		emit(row)
	}
	return all, nil
}

// printBenchRounds prints one run's rounds as a table.
func printBenchRounds(w io.Writer, all []benchRound, promotion bool) {
	head := fmt.Sprintf("%-5s %-6s %-8s %-9s %-7s %-7s %-9s %-7s %-6s %-4s %-7s %-6s", "round", "labels", "admitted", "adm.norm", "roc_auc", "pr_auc", "precision", "recall", "f1", "fp", "det_auc", "head_w")
	if promotion {
		head += " holdout promoted cand_auc verdict"
	}
	fmt.Fprintln(w, head)
	for _, r := range all {
		line := fmt.Sprintf("%-5d %-6d %-8d %-9.3f %-7.4f %-7.4f %-9.3f %-7.3f %-6.3f %-4d %-7.4f %-6.3f", r.Round, r.Labels, r.Admitted,
			r.AdmittedNormal, r.ROCAUC, r.PRAUC, r.Precision, r.Recall, r.F1, r.FP, r.DetectorROCAUC, r.HeadWeight)
		if r.Promoted != nil {
			cand := r.ROCAUC
			if r.CandidateROCAUC != nil {
				cand = *r.CandidateROCAUC
			}
			line += fmt.Sprintf(" %-7d %-8v %-8.4f %s", r.Holdout, *r.Promoted, cand, r.Verdict)
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

// learningSim is the simulated workspace: the radiologists are the labels
// file, the store is a few maps. It uses the same learn decisions as the
// agent's retraining cycle.
type learningSim struct {
	ctx      context.Context
	tc       detector.TrainConfig
	opt      agent.LearningOptions
	seed     []benchCase
	pool     []benchCase
	eval     []benchCase
	model    *detector.Model
	comb     *learn.Combiner
	labelled map[string]string
	admitted map[string]bool
	streak   map[string]int
	// promotion runs the agent's holdout and promotion gate; roles are the
	// labelled cases' decided sides (true: holdout).
	promotion bool
	roles     map[string]bool
	// random holds the cases drawn at random (learn.Pick.Random).
	random map[string]bool
}

// scoreAll scores cases with the model in use, two at a time.
func (s *learningSim) scoreAll(cs []benchCase) ([]sentinel.Score, error) {
	return scoreWith(s.ctx, s.model, cs)
}

// scoreWith scores cases with m, two at a time.
func scoreWith(ctx context.Context, m *detector.Model, cs []benchCase) ([]sentinel.Score, error) {
	out := make([]sentinel.Score, len(cs))
	err := parallel.All(ctx, len(cs), 2, func(i int) (err error) {
		out[i], err = m.Score(cs[i].img)
		return err
	})
	return out, err
}

// unlabelled returns the pool cases neither labelled nor admitted.
func (s *learningSim) unlabelled() []benchCase {
	var out []benchCase
	for _, c := range s.pool {
		if _, ok := s.labelled[c.id]; !ok && !s.admitted[c.id] {
			out = append(out, c)
		}
	}
	return out
}

// query asks about n pool cases and answers them from the file.
func (s *learningSim) query(st learn.Strategy, n int, seed int64) error {
	un := s.unlabelled()
	scores, err := s.scoreAll(un)
	if err != nil {
		return err
	}
	cases := make([]learn.Case, len(un))
	for i, c := range un {
		cases[i] = learn.Case{InstanceID: c.id, Score: s.comb.Score(scores[i].Value, learn.HeadInput(scores[i].Components, c.emb)), Threshold: s.comb.Threshold,
			Uncertainty: scores[i].Uncertainty, Embedding: c.emb, Group: c.patient}
	}
	var anchors [][]float32
	for _, c := range s.pool {
		if _, ok := s.labelled[c.id]; ok {
			anchors = append(anchors, c.emb)
		}
	}
	picks, err := learn.Select(cases, learn.SelectOptions{Strategy: st, N: n, Seed: seed, Anchors: anchors})
	if err != nil {
		return err
	}
	truth := map[string]bool{}
	for _, c := range un {
		truth[c.id] = c.abnormal
	}
	for _, p := range picks {
		s.random[p.InstanceID] = p.Random
		if truth[p.InstanceID] {
			s.labelled[p.InstanceID] = learn.Abnormal
		} else {
			s.labelled[p.InstanceID] = learn.Normal
		}
	}
	return nil
}

// admit runs one oracle-free admission cycle over the unlabelled pool.
func (s *learningSim) admit() error {
	// As the agent's AdmitCycle: the reference is the model's held-out
	// (calibration) seed normals.
	stats := learn.NewSeedStats(s.model.CalibrationScores(), s.model.CalibrationUncertainties())
	un := s.unlabelled()
	scores, err := s.scoreAll(un)
	if err != nil {
		return err
	}
	results := make([]learn.GateResult, len(un))
	for i, c := range un {
		lc := learn.Case{InstanceID: c.id, Score: scores[i].Value, Uncertainty: scores[i].Uncertainty}
		if l, ok := s.comb.HeadLogit(learn.HeadInput(scores[i].Components, c.emb)); ok {
			lc.HeadLogit = &l
		}
		results[i] = learn.Gate(lc, stats, s.opt.Gates)
	}
	var admit []learn.GateResult
	s.streak, admit = learn.Admissions(results, s.streak, s.opt.Gates)
	for _, a := range admit {
		s.admitted[a.InstanceID] = true
	}
	return nil
}

// trainAndEvaluate retrains on the plan's normals, fits the head and
// threshold on the labels gathered, and evaluates on the evaluation split.
// With promotion, it first decides the new labels' sides (holdout or
// training) as the agent does, and the candidate replaces the model in use
// only if the promotion gate passes; the evaluation split is always scored
// by the model in use.
func (s *learningSim) trainAndEvaluate() (benchRound, error) {
	var row benchRound
	var seedIDs, admitted []string
	byID := map[string]benchCase{}
	patient := map[string]string{}
	for _, c := range s.seed {
		seedIDs = append(seedIDs, c.id)
		byID[c.id] = c
	}
	for _, c := range s.pool {
		byID[c.id] = c
		if c.patient != "" {
			patient[c.id] = c.patient
		}
		if s.admitted[c.id] {
			admitted = append(admitted, c.id)
		}
	}
	var holdout []string
	if s.promotion {
		hold, train := learn.AssignHoldout(s.roles, s.labelled, s.random, patient, nil, s.opt.Holdout)
		for _, id := range hold {
			s.roles[id] = true
		}
		for _, id := range train {
			s.roles[id] = false
		}
		for id, in := range s.roles {
			if in {
				holdout = append(holdout, id)
			}
		}
		slices.Sort(holdout)
	}
	plan := learn.PlanTraining(seedIDs, s.labelled, admitted, holdout, patient)
	imgs := make([]sentinel.Image, len(plan.Normals))
	for i, id := range plan.Normals {
		imgs[i] = byID[id].img
	}
	// Admitted cases come last in the plan and only train (see
	// detector.TrainConfig.Verified).
	tc := s.tc
	tc.Verified = len(plan.Normals) - len(admitted)
	m, err := detector.Train(s.ctx, imgs, tc)
	if err != nil {
		return row, err
	}
	// The labelled cases, and the seed normals the detector held out: a
	// seed normal is verified normal, and a held-out one's scores are fair.
	trained := learn.TrainedOn(plan.Normals, m.HeldOut())
	var lab []benchCase
	for _, id := range slices.Concat(plan.LabelledNormals, plan.Abnormals, learn.HeldOutSeeds(seedIDs, plan.Normals, m.HeldOut())) {
		lab = append(lab, byID[id])
	}
	labScores, err := scoreWith(s.ctx, m, lab)
	if err != nil {
		return row, err
	}
	labelled := make([]learn.Labelled, len(lab))
	for i, c := range lab {
		labelled[i] = learn.Labelled{Det: labScores[i].Value, Embedding: learn.HeadInput(labScores[i].Components, c.emb),
			Abnormal: s.labelled[c.id] == learn.Abnormal, DetTrained: trained[c.id], Patient: c.patient}
	}
	comb := learn.FitCombiner(m.CalibrationScores(), s.tc.TargetFPR, labelled, s.opt.Head)
	positive := make([]bool, len(s.eval))
	for i, c := range s.eval {
		positive[i] = c.abnormal
	}
	if s.promotion {
		cand, err := s.evaluate(m, comb, plan.Holdout, byID)
		if err != nil {
			return row, err
		}
		var cur *learn.Evaluation
		if s.model != nil {
			ev, err := s.evaluate(s.model, s.comb, plan.Holdout, byID)
			if err != nil {
				return row, err
			}
			cur = &ev
		}
		v := learn.Promote(cand, cur, s.opt.Promotion)
		row.Holdout, row.Promoted, row.Verdict = len(plan.Holdout), &v.Promote, v.Reason
		if !v.Promote {
			scores, _, err := combinedScores(s.ctx, m, comb, s.eval)
			if err != nil {
				return row, err
			}
			auc := learn.AUROC(scores, positive)
			row.CandidateROCAUC = &auc
		}
	}
	if row.Promoted == nil || *row.Promoted {
		s.model, s.comb = m, comb
	}
	scores, det, err := combinedScores(s.ctx, s.model, s.comb, s.eval)
	if err != nil {
		return row, err
	}
	conf := learn.ConfusionAt(scores, positive, s.comb.Threshold)
	var admNormal int
	for _, id := range admitted {
		if !byID[id].abnormal {
			admNormal++
		}
	}
	row.Labels, row.Abnormals, row.Admitted = len(s.labelled), len(plan.Abnormals), len(admitted)
	row.TrainNormals = len(plan.Normals)
	row.ROCAUC, row.PRAUC, row.DetectorROCAUC = learn.AUROC(scores, positive), learn.PRAUC(scores, positive), learn.AUROC(det, positive)
	row.Precision, row.Recall, row.F1, row.FP, row.TP = conf.Precision(), conf.Recall(), conf.F1(), conf.FP, conf.TP
	row.Threshold, row.HeadWeight = s.comb.Threshold, s.comb.Weight
	if len(admitted) > 0 {
		row.AdmittedNormal = float64(admNormal) / float64(len(admitted))
	} else {
		row.AdmittedNormal = 1
	}
	return row, nil
}

// evaluate is the agent's promotion evaluation: m with comb on the frozen
// holdout and on every seed normal.
func (s *learningSim) evaluate(m *detector.Model, comb *learn.Combiner, holdout map[string]string, byID map[string]benchCase) (learn.Evaluation, error) {
	ids := slices.Sorted(maps.Keys(holdout))
	cs := make([]benchCase, 0, len(ids)+len(s.seed))
	abnormal := make([]bool, len(ids))
	for i, id := range ids {
		cs = append(cs, byID[id])
		abnormal[i] = holdout[id] == learn.Abnormal
	}
	cs = append(cs, s.seed...)
	scores, _, err := combinedScores(s.ctx, m, comb, cs)
	if err != nil {
		return learn.Evaluation{}, err
	}
	return learn.Evaluate(scores[:len(ids)], abnormal, scores[len(ids):], comb.Threshold), nil
}

// combinedScores scores cs with m and comb: each case's combined score
// and the detector's own.
func combinedScores(ctx context.Context, m *detector.Model, comb *learn.Combiner, cs []benchCase) (combined, det []float64, err error) {
	sc, err := scoreWith(ctx, m, cs)
	if err != nil {
		return nil, nil, err
	}
	combined, det = make([]float64, len(cs)), make([]float64, len(cs))
	for i, c := range cs {
		combined[i] = comb.Score(sc[i].Value, learn.HeadInput(sc[i].Components, c.emb))
		det[i] = sc[i].Value
	}
	return combined, det, nil
}
