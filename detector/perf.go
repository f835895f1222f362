package detector

import (
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"

	"github.com/sentinel-pacs/sentinel"
)

// This file exposes the pieces of training and scoring that the speed
// comparison with the PyTorch peer (sentinel bench compare) times on their
// own: one training step, one forward pass at a given batch size, the kNN
// query, and a model with a synthetic memory bank of a chosen size. None of
// it is used by training or scoring.

// TrainStepper runs Adam steps of the autoencoder's training graph on
// batches the caller supplies, exactly as Train does.
type TrainStepper struct {
	n      *network
	loss   *G.Node
	solver G.Solver
	grads  []G.ValueGrad
}

// NewTrainStepper builds the training graph of a at the given batch size
// with He-initialised weights drawn from seed.
func NewTrainStepper(a Architecture, batch int, seed int64) (*TrainStepper, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("detector: train stepper: %w", err)
	}
	init := a.initParams(rand.New(rand.NewSource(seed)), 0.5)
	graphMu.Lock()
	n, loss, err := buildTraining(a, init, batch)
	graphMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("detector: train stepper: %w", err)
	}
	return &TrainStepper{n: n, loss: loss, solver: G.NewAdamSolver(G.WithLearnRate(1e-3)), grads: G.NodesToValueGrads(n.weights)}, nil
}

// Step runs one forward and backward pass and one Adam update on x, the
// batch's pixels (batch·side·side values), and returns the loss.
func (t *TrainStepper) Step(x []float32) (float64, error) {
	if len(x) != len(t.n.xbuf) {
		return 0, fmt.Errorf("detector: train step: %d values, graph takes %d", len(x), len(t.n.xbuf))
	}
	copy(t.n.xbuf, x)
	return t.n.step(t.loss, t.solver, t.grads)
}

// Close releases the graph's machine.
func (t *TrainStepper) Close() error { return t.n.vm.Close() }

// Forward runs the autoencoder's forward pass at a fixed batch size, as
// scoring does at batch 1, on every core.
type Forward struct{ n *inferNet }

// NewForward makes the forward pass of a at the given batch size with
// weights drawn from seed.
func NewForward(a Architecture, batch int, seed int64) (*Forward, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("detector: forward: %w", err)
	}
	ps := a.initParams(rand.New(rand.NewSource(seed)), 0.5)
	n, err := newInferNet(a, ps, batch)
	if err != nil {
		return nil, fmt.Errorf("detector: forward: %w", err)
	}
	return &Forward{n: n}, nil
}

// Run reconstructs the batch x (batch·side·side values). The result is
// valid until the next Run.
func (f *Forward) Run(x []float32) ([]float32, error) { return f.n.reconstruct(x, true) }

// Close releases the forward pass's buffers.
func (f *Forward) Close() error { f.n = nil; return nil }

// KNNScores returns, for each of the nq query rows of q (d values each),
// the mean Euclidean distance to its k nearest of the nb rows of bank, whose
// squared norms are bankSq (see BankNorms). It is the query scoring runs
// against the memory bank.
func KNNScores(q []float32, nq int, bank, bankSq []float32, nb, d, k int) []float64 {
	return knnScores(q, nq, bank, bankSq, nb, d, k)
}

// BankNorms returns the squared norms of the n rows (d wide) of bank, which
// a model computes once when it is loaded.
func BankNorms(bank []float32, n, d int) []float32 { return rowNorms(bank, n, d) }

// SyntheticModel returns a model with cfg's architecture and scoring
// settings, He-initialised weights drawn from seed, a SWAG posterior of a few
// small perturbations of them, a memory bank of bankPatches uniform random
// feature rows and a made-up calibration. Its scores mean nothing; it scores
// in the same time as a trained model with a bank of that size, which is
// what the speed comparison needs without training first.
func SyntheticModel(cfg TrainConfig, bankPatches int, seed int64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detector: synthetic model: %w", err)
	}
	if bankPatches < 1 {
		return nil, fmt.Errorf("detector: synthetic model: %d bank patches, want at least 1", bankPatches)
	}
	arch := cfg.architecture()
	rng := rand.New(rand.NewSource(seed))
	init := arch.initParams(rng, 0.5)
	post := newSWAG(len(flatten(init)), cfg.SWAGRank)
	for range 3 {
		theta := flatten(init)
		for i := range theta {
			theta[i] += float32(0.01 * rng.NormFloat64())
		}
		if err := post.collect(theta); err != nil {
			return nil, fmt.Errorf("detector: synthetic model: %w", err)
		}
	}
	params := unflatten(init, post.Mean)
	st := cfg.MemoryStage
	dim := cfg.Channels[st] + cfg.Channels[st+1]
	bank := make([]float32, bankPatches*dim)
	for i := range bank {
		bank[i] = rng.Float32()
	}
	side := cfg.InputSize
	normal := sentinel.NewImage(side, side)
	for i := range normal.Pix {
		normal.Pix[i] = rng.Float32()
	}
	x, err := prepareImage(normal, side)
	if err != nil {
		return nil, fmt.Errorf("detector: synthetic model: %w", err)
	}
	calib := calibration{
		Scores: []float64{-1, 0, 1, 2}, Uncertainties: []float64{0.1, 0.2, 0.3, 0.4}, Threshold: 2,
		UncertainMargin: cfg.UncertainMargin, UncertaintyLimit: 0.35, ReconMean: 0.01, ReconStd: 0.01,
		MemoryMean: 1, MemoryStd: 1, ReconMapP99: 0.1, MemoryMapP99: 1,
	}
	info := sentinel.ModelInfo{Version: versionOf(params), Kind: Kind, InputSize: side, Threshold: 2, CalibImages: 4}
	return newModel(modelParts{
		info: info, arch: arch, config: cfg.saved(), params: params, swag: post, swagSeed: seed,
		bank: bank, bankDim: dim, normals: [][]float32{x}, calib: calib,
	}), nil
}
