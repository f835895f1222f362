package learn

import (
	"errors"
	"math"
	"math/rand"
	"slices"
)

// HeadConfig sets the small supervised head fitted over the embeddings of
// labelled cases (labels as weak supervision).
type HeadConfig struct {
	// L2 is the ridge penalty on the standardised weights.
	L2 float64
	// Iterations of full-batch gradient descent.
	Iterations int
	// MinPerClass labelled cases of each class are needed to fit a head.
	MinPerClass int
	// Shrinkage k sets the head's weight in the combined score as
	// a/(a+k) for a labelled abnormals: with few labels the detector
	// dominates, with many the head does. It is the weight used when there
	// are too few labels to choose one by cross-validation.
	Shrinkage float64
	// WeightFolds, when at least 2 and there are at least that many labels
	// of each class, chooses the head's weight by cross-validation over the
	// training labels instead (see cvWeight); 0 always uses Shrinkage.
	WeightFolds int
	// MaxFPR, in (0, 1), bounds the share of the labelled normals the
	// fitted threshold may flag (out of fold when the weight is
	// cross-validated); 0 leaves it unbounded. The best sensitivity +
	// specificity on labels rich in abnormals is a sensitive threshold, and
	// a worklist that flags half of the normal studies is not one a
	// radiologist can use.
	MaxFPR float64
}

// DefaultHeadConfig is the head used unless the configuration says
// otherwise.
func DefaultHeadConfig() HeadConfig {
	return HeadConfig{L2: 100, Iterations: 300, MinPerClass: 5, Shrinkage: 20, WeightFolds: 5, MaxFPR: 0.2}
}

// Head is a class-balanced, L2-regularised logistic regression over
// standardised features. Its logit is higher for abnormal.
type Head struct {
	Mean []float64 `json:"mean"`
	SD   []float64 `json:"sd"`
	W    []float64 `json:"w"`
	B    float64   `json:"b"`
}

// ErrTooFewLabels means there are not enough labels of each class to fit a
// head; the detector's score is used alone.
var ErrTooFewLabels = errors.New("learn: too few labels of each class for a supervised head")

// FitHead fits a head telling abnormals (positives) from normals.
func FitHead(normals, abnormals [][]float32, cfg HeadConfig) (*Head, error) {
	if len(normals) < max(cfg.MinPerClass, 1) || len(abnormals) < max(cfg.MinPerClass, 1) {
		return nil, ErrTooFewLabels
	}
	d := len(normals[0])
	xs := append(append([][]float32{}, normals...), abnormals...)
	h := &Head{Mean: make([]float64, d), SD: make([]float64, d), W: make([]float64, d)}
	for _, x := range xs {
		if len(x) != d {
			return nil, errors.New("learn: head features differ in length")
		}
		for j, v := range x {
			h.Mean[j] += float64(v)
		}
	}
	n := float64(len(xs))
	for j := range h.Mean {
		h.Mean[j] /= n
	}
	for _, x := range xs {
		for j, v := range x {
			dv := float64(v) - h.Mean[j]
			h.SD[j] += dv * dv
		}
	}
	for j := range h.SD {
		h.SD[j] = math.Sqrt(h.SD[j]/n) + 1e-6
	}
	z := make([][]float64, len(xs))
	for i, x := range xs {
		z[i] = h.standardise(x)
	}
	// Each class weighs half, whatever the counts.
	wNeg, wPos := 0.5/float64(len(normals)), 0.5/float64(len(abnormals))
	weight := func(i int) float64 {
		if i >= len(normals) {
			return wPos
		}
		return wNeg
	}
	// Nesterov's accelerated gradient with the step 1/L, L the gradient's
	// Lipschitz constant. A fixed step diverges along the leading
	// direction of correlated inputs (neighbouring thumbnail cells), and
	// then the ridge penalty no longer sets the solution.
	step := 1 / (0.25*(topEigen(z, weight)+1) + cfg.L2/n)
	grad := make([]float64, d)
	prev := make([]float64, d)
	look := make([]float64, d)
	var prevB float64
	for k := range max(cfg.Iterations, 1) {
		mom := float64(k) / float64(k+3)
		for j := range look {
			look[j] = h.W[j] + mom*(h.W[j]-prev[j])
		}
		lookB := h.B + mom*(h.B-prevB)
		clear(grad)
		var gb float64
		for i, zi := range z {
			y := 0.0
			if i >= len(normals) {
				y = 1
			}
			g := weight(i) * (sigmoid(dot(look, zi)+lookB) - y)
			gb += g
			for j, v := range zi {
				grad[j] += g * v
			}
		}
		copy(prev, h.W)
		prevB = h.B
		for j := range h.W {
			h.W[j] = look[j] - step*(grad[j]+cfg.L2*look[j]/n)
		}
		h.B = lookB - step*gb
	}
	return h, nil
}

// topEigen returns the largest eigenvalue of Σ weight(i)·z_i z_iᵀ, by power
// iteration.
func topEigen(z [][]float64, weight func(int) float64) float64 {
	if len(z) == 0 {
		return 0
	}
	v := make([]float64, len(z[0]))
	for j := range v {
		v[j] = 1
	}
	next := make([]float64, len(v))
	var lambda float64
	for range 50 {
		clear(next)
		for i, zi := range z {
			a := weight(i) * dot(v, zi)
			for j, x := range zi {
				next[j] += a * x
			}
		}
		norm := math.Sqrt(dot(next, next))
		if norm == 0 {
			return 0
		}
		lambda = norm / math.Sqrt(dot(v, v))
		for j := range v {
			v[j] = next[j] / norm
		}
	}
	return lambda
}

func (h *Head) standardise(x []float32) []float64 {
	z := make([]float64, len(h.Mean))
	for j := range z {
		if j < len(x) {
			z[j] = (float64(x[j]) - h.Mean[j]) / h.SD[j]
		}
	}
	return z
}

// Logit returns the head's log-odds that x is abnormal.
func (h *Head) Logit(x []float32) float64 { return dot(h.W, h.standardise(x)) + h.B }

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// Combiner turns a detector score and an embedding into the score the
// learning loop ranks and thresholds by: the detector score standardised
// against the seed normals, blended with the head's logit standardised by
// its spread over the training cases, weighted by how many abnormals the
// head learnt from. Without a head it is the standardised detector score.
type Combiner struct {
	DetMean float64 `json:"det_mean"`
	DetSD   float64 `json:"det_sd"`
	Head    *Head   `json:"head,omitempty"`
	// LogitMean and LogitSD standardise the head's logit.
	LogitMean float64 `json:"logit_mean"`
	LogitSD   float64 `json:"logit_sd"`
	// Weight is the head's share of the combined score, in [0, 1), and
	// WeightSource says how it was chosen.
	Weight       float64 `json:"weight"`
	WeightSource string  `json:"weight_source,omitempty"`
	// Threshold is the combined score above which a case is abnormal.
	Threshold float64 `json:"threshold"`
	// Input names what the head reads: HeadInputDetector for
	// HeadInput's detector features followed by the embedding. A combiner
	// saved before the head read detector features has none, and its head
	// reads the embedding alone (the tail of the input).
	Input string `json:"input,omitempty"`
	// ThresholdSource says how Threshold was set.
	ThresholdSource string `json:"threshold_source"`
}

// HeadInputDetector is Combiner.Input for heads over HeadInput.
const HeadInputDetector = "detector-features+embedding"

// Score combines a detector score and the case's head input (HeadInput).
func (c *Combiner) Score(det float64, emb []float32) float64 {
	z := (det - c.DetMean) / c.DetSD
	l, ok := c.HeadLogit(emb)
	if !ok {
		return z
	}
	zh := (l - c.LogitMean) / c.LogitSD
	return (1-c.Weight)*z + c.Weight*zh
}

// UsesHead reports whether the combiner has a head and gives it weight:
// only then does a case's head input matter.
func (c *Combiner) UsesHead() bool { return c != nil && c.Head != nil && c.Weight != 0 }

// HeadLogit returns the head's logit for a case's head input (HeadInput),
// and false when the combiner does not use a head (UsesHead).
func (c *Combiner) HeadLogit(emb []float32) (float64, bool) {
	if !c.UsesHead() {
		return 0, false
	}
	if c.Input == "" && len(emb) > len(c.Head.Mean) {
		emb = emb[len(emb)-len(c.Head.Mean):]
	}
	return c.Head.Logit(emb), true
}

// Labelled is a training case for the combiner: its detector score (from
// a model it did not train), its embedding and whether it is abnormal.
type Labelled struct {
	Det float64
	// Embedding is the head's input, HeadInput: the detector's component
	// scores followed by the image embedding.
	Embedding []float32
	Abnormal  bool
	// DetTrained says the detector trained on this case (a labelled normal
	// that joined the normal set), so Det and the component scores are
	// lower than the detector would give a new normal. Such a case fits
	// neither the head nor its weight nor the threshold, which would
	// otherwise take the detector for better than it is (see fair).
	DetTrained bool
	// Patient is the key of the case's patient ("" if unknown): the
	// cross-validation that weighs the head keeps a patient's cases in one
	// fold, so that no fold is scored by a head fitted on another film of
	// the same patient.
	Patient string
}

// HeldOutSeeds returns, in the order of heldOut, the seed normals among
// the images a detector was given (ids) that it held out for calibration
// (the heldOut indices): verified normals whose scores are fair, which the
// combiner takes as negatives beside the labels.
func HeldOutSeeds(seeds, ids []string, heldOut []int) []string {
	isSeed := make(map[string]bool, len(seeds))
	for _, id := range seeds {
		isSeed[id] = true
	}
	var out []string
	for _, i := range heldOut {
		if i >= 0 && i < len(ids) && isSeed[ids[i]] {
			out = append(out, ids[i])
		}
	}
	return out
}

// TrainedOn returns which of ids, the images a detector was given in that
// order, it trained on: all but those at the heldOut indices, which it kept
// aside to calibrate on (see Labelled.DetTrained). Indices out of range are
// ignored.
func TrainedOn(ids []string, heldOut []int) map[string]bool {
	trained := make(map[string]bool, len(ids))
	for _, id := range ids {
		trained[id] = true
	}
	for _, i := range heldOut {
		if i >= 0 && i < len(ids) {
			delete(trained, ids[i])
		}
	}
	return trained
}

// FitCombiner builds the combiner for a model. seedScores are the
// detector's scores of normals it did not train on (its calibration
// normals), which set the standardisation and, with targetFPR, the
// threshold when there are too few labelled abnormals. labelled are the
// training labels (never the holdout or evaluation labels): with at least
// cfg.MinPerClass of each class they fit the head and the threshold is the
// one with the best sensitivity + specificity over them (see
// BestBalancedThreshold).
func FitCombiner(seedScores []float64, targetFPR float64, labelled []Labelled, cfg HeadConfig) *Combiner {
	c := &Combiner{Input: HeadInputDetector}
	c.DetMean, c.DetSD = meanSD(seedScores)
	c.Threshold = (Quantile(seedScores, 1-targetFPR) - c.DetMean) / c.DetSD
	c.ThresholdSource = "seed normals at the target false-positive rate"
	// Only the cases the detector did not train on fit the head and choose
	// its weight and the threshold: the head's input includes the
	// detector's component scores, which are biased low for a training
	// normal (its own patches are in the memory banks).
	labelled = pick(labelled, fair(labelled))
	var neg, pos [][]float32
	for _, l := range labelled {
		if l.Abnormal {
			pos = append(pos, l.Embedding)
		} else {
			neg = append(neg, l.Embedding)
		}
	}
	h, err := FitHead(neg, pos, cfg)
	if err != nil {
		return c
	}
	logits := make([]float64, 0, len(neg))
	for _, x := range neg {
		logits = append(logits, h.Logit(x))
	}
	c.Head = h
	c.LogitMean, c.LogitSD = meanSD(logits)
	c.Weight = float64(len(pos)) / (float64(len(pos)) + cfg.Shrinkage)
	c.WeightSource = "shrinkage"
	if w, oof, ok := cvWeight(labelled, c.DetMean, c.DetSD, cfg); ok {
		// The out-of-fold scores are what the head does on cases it did not
		// learn from, which is what the threshold will meet; scores of the
		// cases the head was fitted on are pushed apart by the fit itself,
		// and a threshold between them lands too low for new cases.
		c.Weight, c.WeightSource = w, "cross-validated on the training labels"
		c.Threshold = BestBalancedThreshold(oof, positives(labelled), cfg.MaxFPR)
		c.ThresholdSource = "best sensitivity + specificity on the training labels, scored out of fold"
		return c
	}
	scores := make([]float64, len(labelled))
	for i, l := range labelled {
		scores[i] = c.Score(l.Det, l.Embedding)
	}
	c.Threshold = BestBalancedThreshold(scores, positives(labelled), cfg.MaxFPR)
	c.ThresholdSource = "best sensitivity + specificity on the training labels"
	return c
}

// headWeights are the head's shares of the combined score that
// cross-validation chooses from; the detector always keeps a tenth.
var headWeights = []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}

// cvRepeats is how many times cvWeight repeats its cross-validation, each
// time with the labels dealt into folds in another order. One split of a
// few dozen labels decides the weight by which handful of cases share a
// fold; averaging over several splits steadies the choice.
const cvRepeats = 5

// cvWeight chooses the head's weight in the combined score by stratified
// cfg.WeightFolds-fold cross-validation over the training labels, repeated
// cvRepeats times with the labels dealt into folds in different orders:
// each fold's cases are scored by a head fitted on the other folds, and the
// weight whose combined out-of-fold scores rank the labels best (ROC-AUC
// averaged over the repeats; the smallest such weight on a tie) wins. A
// fixed shrinkage trusts the head by the number of labels alone, which is
// wrong both ways: a head over thumbnails can be worthless after a hundred
// labels when the detector already ranks well, and decisive after twenty
// when the detector ranks backwards. It also returns each case's combined
// out-of-fold score at the chosen weight, averaged over the repeats. It
// reports false when there are too few labels of a class for the folds, or
// a fold's head cannot be fitted.
func cvWeight(labelled []Labelled, detMean, detSD float64, cfg HeadConfig) (float64, []float64, bool) {
	k := cfg.WeightFolds
	if k < 2 {
		return 0, nil, false
	}
	var posIdx, negIdx []int
	for i, l := range labelled {
		if l.Abnormal {
			posIdx = append(posIdx, i)
		} else {
			negIdx = append(negIdx, i)
		}
	}
	if len(posIdx) < k || len(negIdx) < k {
		return 0, nil, false
	}
	positive := positives(labelled)
	det := make([]float64, len(labelled))
	for i, l := range labelled {
		det[i] = (l.Det - detMean) / detSD
	}
	aucs := make([]float64, len(headWeights))
	zhs := make([][]float64, cvRepeats)
	fold := make([]int, len(labelled))
	for r := range cvRepeats {
		dealFolds(fold, labelled, posIdx, negIdx, k, r)
		zh, err := outOfFold(labelled, fold, k, cfg)
		if err != nil {
			return 0, nil, false
		}
		zhs[r] = zh
		for wi, w := range headWeights {
			scores := make([]float64, len(labelled))
			for i := range labelled {
				scores[i] = (1-w)*det[i] + w*zh[i]
			}
			aucs[wi] += AUROC(scores, positive) / cvRepeats
		}
	}
	best, bestW := math.Inf(-1), 0.0
	for wi, a := range aucs {
		if a > best+1e-12 {
			best, bestW = a, headWeights[wi]
		}
	}
	scores := make([]float64, len(labelled))
	for i := range labelled {
		for _, zh := range zhs {
			scores[i] += ((1-bestW)*det[i] + bestW*zh[i]) / cvRepeats
		}
	}
	return bestW, scores, true
}

// dealFolds deals the labelled cases into k folds for repeat r of the
// cross-validation, each class (posIdx, negIdx) round-robin so that the
// folds are stratified: repeat 0 in the cases' order, the others in a
// seeded shuffle of it, so the split is reproducible. A patient's cases
// share the fold of the first of them dealt.
func dealFolds(fold []int, labelled []Labelled, posIdx, negIdx []int, k, r int) {
	var next [2]int
	patientFold := map[string]int{}
	deal := func(idx []int, cls int) {
		order := slices.Clone(idx)
		if r > 0 {
			rand.New(rand.NewSource(int64(r))).Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		}
		for _, i := range order {
			if p := labelled[i].Patient; p != "" {
				if f, ok := patientFold[p]; ok {
					fold[i] = f
					continue
				}
				patientFold[p] = next[cls] % k
			}
			fold[i] = next[cls] % k
			next[cls]++
		}
	}
	deal(posIdx, 1)
	deal(negIdx, 0)
}

// outOfFold scores each labelled case by a head fitted on the cases of the
// other k−1 folds (fold[i] is case i's fold), its logit standardised by
// that head's logits over its own training normals.
func outOfFold(labelled []Labelled, fold []int, k int, cfg HeadConfig) ([]float64, error) {
	zh := make([]float64, len(labelled))
	for f := range k {
		var neg, pos [][]float32
		for i, l := range labelled {
			switch {
			case fold[i] == f:
			case l.Abnormal:
				pos = append(pos, l.Embedding)
			default:
				neg = append(neg, l.Embedding)
			}
		}
		h, err := FitHead(neg, pos, cfg)
		if err != nil {
			return nil, err
		}
		logits := make([]float64, len(neg))
		for i, x := range neg {
			logits[i] = h.Logit(x)
		}
		lm, ls := meanSD(logits)
		for i, l := range labelled {
			if fold[i] == f {
				zh[i] = (h.Logit(l.Embedding) - lm) / ls
			}
		}
	}
	return zh, nil
}

// fair returns the indices of the labelled cases whose detector score is
// fair to weigh and threshold by: those the detector did not train on.
// When that leaves fewer than two of a class, it returns every index, and
// the detector's share is judged on optimistic scores rather than none.
func fair(labelled []Labelled) []int {
	var use []int
	var pos, neg int
	for i, l := range labelled {
		if l.DetTrained {
			continue
		}
		use = append(use, i)
		if l.Abnormal {
			pos++
		} else {
			neg++
		}
	}
	if pos < 2 || neg < 2 {
		use = use[:0]
		for i := range labelled {
			use = append(use, i)
		}
	}
	return use
}

// positives returns whether each labelled case is abnormal.
func positives(labelled []Labelled) []bool {
	out := make([]bool, len(labelled))
	for i, l := range labelled {
		out[i] = l.Abnormal
	}
	return out
}

// pick returns v at the given indices.
func pick[T any](v []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = v[j]
	}
	return out
}
