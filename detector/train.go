package detector

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"time"

	G "gorgonia.org/gorgonia"

	"github.com/sentinel-pacs/sentinel"
)

// Log attribute keys.
const (
	logKeyEpoch   = "epoch"
	logKeyEpochs  = "epochs"
	logKeyLoss    = "loss"
	logKeyElapsed = "elapsed"
	logKeyVersion = "version"
	logKeyThresh  = "threshold"
	logKeyImages  = "images"
)

// Metric names in ModelInfo.Metrics.
const (
	MetricTrainLoss      = "train_loss"
	MetricFirstLoss      = "first_epoch_loss"
	MetricCalibMean      = "calib_score_mean"
	MetricCalibStd       = "calib_score_std"
	MetricPixelErrorP99  = "pixel_error_p99"
	MetricTrainSeconds   = "train_seconds"
	MetricEffectiveBatch = "effective_batch_size"
	MetricSWAGSnapshots  = "swag_snapshots"
	MetricMemoryPatches  = "memory_patches"
)

// Train fits the detector on normal images and calibrates its threshold.
//
// The images must already be cfg.InputSize×cfg.InputSize. A seeded shuffle
// holds out max(4, round(HoldoutFraction·n)) of them (of the first
// cfg.Verified only, when that is set). The rest train the
// autoencoder for cfg.Epochs epochs of Adam on the mean squared
// reconstruction error; the last SWAGEpochs (at most all) run at SWAGLearningRate and
// collect the weights once per epoch into the SWAG posterior. The memory
// bank is then the coreset of the training images' patch features under
// the SWAG mean weights. Finally the held-out images standardise the two
// component scores and set the threshold at the (1−TargetFPR) quantile of
// their fused scores. Train checks ctx between batches and returns its
// error when it is done.
func Train(ctx context.Context, images []sentinel.Image, cfg TrainConfig) (*Model, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detector: train config: %w", err)
	}
	arch := cfg.architecture()
	xs := make([][]float32, len(images))
	for i, img := range images {
		x, err := prepareImage(img, cfg.InputSize)
		if err != nil {
			return nil, fmt.Errorf("detector: train: image %d: %w", i, err)
		}
		xs[i] = x
	}
	saved := cfg.saved()
	// Only the first cfg.Verified images, when set, may be held out.
	eligible := len(xs)
	if cfg.Verified > 0 && cfg.Verified < len(xs) {
		eligible = cfg.Verified
	}
	nCalib := max(minCalibImages, int(math.Round(cfg.HoldoutFraction*float64(eligible))))
	if len(xs)-nCalib < minTrainImages || nCalib > eligible {
		return nil, fmt.Errorf("detector: train: %d images (%d of them eligible for calibration) leave %d for training after holding out %d, need at least %d",
			len(xs), eligible, len(xs)-nCalib, nCalib, minTrainImages)
	}

	rng := rand.New(rand.NewSource(cfg.Seed))
	order := rng.Perm(eligible)
	for j := eligible; j < len(xs); j++ {
		order = append(order, j) // train only
	}
	calibX := make([][]float32, nCalib)
	for i, j := range order[:nCalib] {
		calibX[i] = saved.input(xs[j])
	}
	trainX := make([][]float32, 0, len(xs)-nCalib)
	netX := make([][]float32, 0, len(xs)-nCalib)
	for _, j := range order[nCalib:] {
		trainX = append(trainX, xs[j])
		netX = append(netX, saved.input(xs[j]))
	}

	t := &trainer{cfg: cfg, arch: arch, rng: rng, start: start}
	post, losses, err := t.fit(ctx, netX)
	if err != nil {
		return nil, err
	}
	params := unflatten(arch.params0(), post.Mean)
	stage := func(what string, n int) {
		if cfg.Logger != nil {
			cfg.Logger.Info(what, logKeyImages, n, logKeyElapsed, time.Since(start))
		}
	}
	stage("building the memory bank", len(netX))
	bank, dim, err := buildMemoryBank(ctx, arch, params, netX, cfg, rng)
	if err != nil {
		return nil, fmt.Errorf("detector: train: memory bank: %w", err)
	}
	m := newModel(modelParts{
		arch: arch, config: saved, params: params, swag: post, swagSeed: rng.Int63(),
		bank: bank, bankDim: dim, normals: trainX,
	})
	stage("calibrating on the held-out normals", len(calibX))
	if err := m.calibrate(calibX, cfg); err != nil {
		return nil, fmt.Errorf("detector: train: calibrate: %w", err)
	}
	m.heldOut = slices.Clone(order[:nCalib])
	if m.calib.Appearance, err = newAppearanceProfile(xs, cfg.InputSize); err != nil {
		return nil, fmt.Errorf("detector: train: %w", err)
	}

	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	m.info = sentinel.ModelInfo{
		Version:     versionOf(params),
		Kind:        Kind,
		CreatedAt:   now().UTC(),
		InputSize:   cfg.InputSize,
		Threshold:   m.calib.Threshold,
		TargetFPR:   cfg.TargetFPR,
		TrainImages: len(trainX),
		CalibImages: nCalib,
		Fingerprint: fingerprint(images),
		Metrics: map[string]float64{
			MetricTrainLoss:      losses[len(losses)-1],
			MetricFirstLoss:      losses[0],
			MetricCalibMean:      mean(m.calib.Scores),
			MetricCalibStd:       stddev(m.calib.Scores),
			MetricPixelErrorP99:  m.calib.ReconMapP99,
			MetricTrainSeconds:   time.Since(start).Seconds(),
			MetricEffectiveBatch: float64(t.batch),
			MetricSWAGSnapshots:  float64(post.N),
			MetricMemoryPatches:  float64(m.bankRows),
		},
	}
	if cfg.Logger != nil {
		cfg.Logger.Info("model trained", logKeyVersion, m.info.Version, logKeyImages, len(images),
			logKeyLoss, losses[len(losses)-1], logKeyThresh, m.calib.Threshold, logKeyElapsed, time.Since(start))
	}
	return m, nil
}

// trainer runs the epochs of one Train call.
type trainer struct {
	cfg   TrainConfig
	arch  Architecture
	rng   *rand.Rand
	start time.Time
	batch int
}

// fit trains a network on xs and returns the SWAG posterior collected over
// the last cfg.SWAGEpochs epochs and the mean loss of every epoch.
func (t *trainer) fit(ctx context.Context, xs [][]float32) (*swagState, []float64, error) {
	t.batch = min(t.cfg.BatchSize, len(xs))
	var pixSum float64
	for _, x := range xs {
		for _, v := range x {
			pixSum += float64(v)
		}
	}
	init := t.arch.initParams(t.rng, float32(pixSum/float64(len(xs)*len(xs[0]))))

	graphMu.Lock()
	n, loss, err := buildTraining(t.arch, init, t.batch)
	graphMu.Unlock()
	if err != nil {
		return nil, nil, fmt.Errorf("detector: train: %w", err)
	}
	defer n.vm.Close()
	solver := G.NewAdamSolver(G.WithLearnRate(t.cfg.LearningRate))
	grads := G.NodesToValueGrads(n.weights)
	warmup := t.cfg.Epochs - min(t.cfg.SWAGEpochs, t.cfg.Epochs)
	post := newSWAG(len(flatten(init)), t.cfg.SWAGRank)

	side2 := t.arch.InputSize * t.arch.InputSize
	order := make([]int, len(xs))
	for i := range order {
		order[i] = i
	}
	steps := (len(xs) + t.batch - 1) / t.batch
	losses := make([]float64, 0, t.cfg.Epochs)
	for epoch := 1; epoch <= t.cfg.Epochs; epoch++ {
		if epoch == warmup+1 {
			// SWAG's phase runs at a constant learning rate of its own; a
			// fresh Adam is the only way gorgonia offers to change it.
			solver = G.NewAdamSolver(G.WithLearnRate(t.cfg.SWAGLearningRate))
		}
		t.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var sum float64
		for s := range steps {
			if err := ctx.Err(); err != nil {
				return nil, nil, fmt.Errorf("detector: train: epoch %d: %w", epoch, context.Cause(ctx))
			}
			// The last batch of an epoch is filled up with the epoch's
			// first images, because the graph's batch size is fixed.
			for b := range t.batch {
				copy(n.xbuf[b*side2:(b+1)*side2], xs[order[(s*t.batch+b)%len(order)]])
			}
			l, err := n.step(loss, solver, grads)
			if err != nil {
				return nil, nil, fmt.Errorf("detector: train: epoch %d step %d: %w", epoch, s+1, err)
			}
			sum += l
		}
		if epoch > warmup {
			ps, err := n.params()
			if err != nil {
				return nil, nil, fmt.Errorf("detector: train: read weights: %w", err)
			}
			if err := post.collect(flatten(ps)); err != nil {
				return nil, nil, fmt.Errorf("detector: train: %w", err)
			}
		}
		losses = append(losses, sum/float64(steps))
		t.report(epoch, losses[len(losses)-1])
	}
	return post, losses, nil
}

// buildMemoryBank extracts the patch features of every training image
// under params and keeps a coreset of them. It returns the bank's rows
// flattened and their width.
func buildMemoryBank(ctx context.Context, a Architecture, params []param, xs [][]float32, cfg TrainConfig, rng *rand.Rand) ([]float32, int, error) {
	st := cfg.MemoryStage
	n, err := newInferNet(a, params, 1)
	if err != nil {
		return nil, 0, fmt.Errorf("inference network: %w", err)
	}
	g := a.InputSize >> (st + 1)
	cf, cc := a.Channels[st], a.Channels[st+1]
	d := cf + cc
	feats := make([]float32, 0, len(xs)*g*g*d)
	for i, x := range xs {
		if err := ctx.Err(); err != nil {
			return nil, 0, context.Cause(ctx)
		}
		if _, err := n.run(x, st+2, true); err != nil {
			return nil, 0, fmt.Errorf("image %d: %w", i, err)
		}
		feats = append(feats, patchFeatures(n.stage(st), cf, n.stage(st+1), cc, g)...)
	}
	return coreset(feats, len(feats)/d, d, cfg.CoresetFraction, cfg.CoresetProjection, rng), d, nil
}

// report tells cfg.Logger and cfg.Progress about a finished epoch.
func (t *trainer) report(epoch int, loss float64) {
	elapsed := time.Since(t.start)
	eta := elapsed / time.Duration(epoch) * time.Duration(t.cfg.Epochs-epoch)
	if t.cfg.Logger != nil {
		t.cfg.Logger.Debug("epoch done", logKeyEpoch, epoch, logKeyEpochs, t.cfg.Epochs, logKeyLoss, loss, logKeyElapsed, elapsed)
	}
	if t.cfg.Progress != nil {
		t.cfg.Progress(Progress{Epoch: epoch, Epochs: t.cfg.Epochs, Loss: loss, Elapsed: elapsed, ETA: eta})
	}
}

// buildTraining builds the training graph: the network at the given batch
// size, its mean squared reconstruction loss and the loss's gradients with
// respect to every weight.
func buildTraining(a Architecture, ps []param, batch int) (*network, *G.Node, error) {
	n, err := buildNetwork(a, ps, batch)
	if err != nil {
		return nil, nil, fmt.Errorf("build training graph: %w", err)
	}
	diff, err := G.Sub(n.out, n.x)
	if err != nil {
		return nil, nil, fmt.Errorf("build loss: %w", err)
	}
	sq, err := G.Square(diff)
	if err != nil {
		return nil, nil, fmt.Errorf("build loss: %w", err)
	}
	loss, err := G.Mean(sq)
	if err != nil {
		return nil, nil, fmt.Errorf("build loss: %w", err)
	}
	if _, err := G.Grad(loss, n.weights...); err != nil {
		return nil, nil, fmt.Errorf("build gradients: %w", err)
	}
	n.vm = G.NewTapeMachine(n.g, G.BindDualValues(n.weights...))
	return n, loss, nil
}

// step runs one forward and backward pass on the batch in n.xbuf, applies
// one Adam update and returns the batch's loss.
func (n *network) step(loss *G.Node, solver G.Solver, grads []G.ValueGrad) (float64, error) {
	defer n.vm.Reset()
	if err := G.Let(n.x, n.input()); err != nil {
		return 0, fmt.Errorf("bind input: %w", err)
	}
	if err := n.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("run: %w", err)
	}
	v, ok := loss.Value().Data().(float32)
	if !ok {
		return 0, fmt.Errorf("loss holds %T, want float32", loss.Value().Data())
	}
	if err := solver.Step(grads); err != nil {
		return 0, fmt.Errorf("adam step: %w", err)
	}
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return 0, fmt.Errorf("loss diverged to %v; lower LearningRate", v)
	}
	return float64(v), nil
}

// params copies the current values of n's weight nodes.
func (n *network) params() ([]param, error) {
	ps := cloneParams(n.backing)
	for i, w := range n.weights {
		data, err := float32Values(w)
		if err != nil {
			return nil, err
		}
		if len(data) != len(ps[i].Data) {
			return nil, fmt.Errorf("weight %s has %d values, want %d", ps[i].Name, len(data), len(ps[i].Data))
		}
		copy(ps[i].Data, data)
	}
	return ps, nil
}

// fingerprint returns "sha256:" and the hex SHA-256 over the images' sizes
// and pixels, in the order given.
func fingerprint(images []sentinel.Image) string {
	h := sha256.New()
	var b [8]byte
	for _, img := range images {
		binary.LittleEndian.PutUint32(b[:4], uint32(img.Width))
		binary.LittleEndian.PutUint32(b[4:], uint32(img.Height))
		h.Write(b[:])
		h.Write(float32Bytes(img.Pix))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// quantile returns the q-quantile of sorted values by linear interpolation
// between closest ranks (the default of R and NumPy).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	h := q * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// stddev returns the population standard deviation of v.
func stddev(v []float64) float64 {
	mu := mean(v)
	var s float64
	for _, x := range v {
		s += (x - mu) * (x - mu)
	}
	if len(v) == 0 {
		return 0
	}
	return math.Sqrt(s / float64(len(v)))
}
