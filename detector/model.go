package detector

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync"

	G "gorgonia.org/gorgonia"

	"github.com/sentinel-pacs/sentinel"
)

// Kind is the ModelInfo.Kind of the models this package trains.
const Kind = "autoencoder"

// ComponentReconstruction names the reconstruction-error component of a
// score: the mean squared difference between the image and its
// reconstruction.
const ComponentReconstruction = "reconstruction"

// preprocessClip01 names how pixels are prepared for the network: the
// [0, 1] pixels are fed as they are, with values outside the range clipped
// to it. Model files record the name so that a later change of
// preprocessing cannot silently score with the wrong input.
const preprocessClip01 = "clip01"

// calibration is what the held-out normals taught the model: their scores,
// the threshold set on them and the scale of the heatmap.
type calibration struct {
	// Scores are the held-out normals' scores, in the order they were held
	// out.
	Scores []float64 `json:"scores"`
	// Threshold is the (1−TargetFPR) quantile of Scores.
	Threshold float64 `json:"threshold"`
	// UncertainMargin is the relative band around Threshold that is
	// "uncertain".
	UncertainMargin float64 `json:"uncertain_margin"`
	// PixelErrorP99 is the 99th percentile of the held-out normals' per-pixel
	// squared errors; heatmaps divide by it.
	PixelErrorP99 float64 `json:"pixel_error_p99"`
}

// Model is a trained autoencoder with its calibration. It is immutable once
// trained or loaded, and safe for concurrent use.
type Model struct {
	info   sentinel.ModelInfo
	arch   Architecture
	config savedConfig
	params []param
	calib  calibration

	// pool holds up to cap(pool) inference networks, nil until first
	// needed. A gorgonia graph and its machine are not safe for concurrent
	// use, so each Score takes one for the duration of its run; the
	// capacity bounds how many graphs (and goroutines scoring at once) a
	// model keeps.
	pool chan *network
}

// newModel assembles a model and its empty inference pool.
func newModel(info sentinel.ModelInfo, arch Architecture, cfg savedConfig, params []param, calib calibration) *Model {
	m := &Model{info: info, arch: arch, config: cfg, params: params, calib: calib}
	n := min(max(runtime.GOMAXPROCS(0), 1), 8)
	m.pool = make(chan *network, n)
	for range n {
		m.pool <- nil
	}
	return m
}

// Info describes the model. The returned value shares nothing with the
// model.
func (m *Model) Info() sentinel.ModelInfo {
	info := m.info
	info.Metrics = maps.Clone(m.info.Metrics)
	return info
}

// InputSize returns the side of the square images the model scores.
func (m *Model) InputSize() int { return m.arch.InputSize }

// Architecture returns the network's layout.
func (m *Model) Architecture() Architecture {
	return Architecture{InputSize: m.arch.InputSize, Channels: slices.Clone(m.arch.Channels)}
}

// TrainConfig returns the configuration the model was trained with, without
// its Progress, Logger and Now functions, for retraining with the same
// settings.
func (m *Model) TrainConfig() TrainConfig { return m.config.config() }

// CalibrationScores returns the scores of the held-out normals the threshold
// was set on, in the order they were held out. A model read back by Load
// returns exactly the values the trained model did.
func (m *Model) CalibrationScores() []float64 { return slices.Clone(m.calib.Scores) }

// Score returns the anomaly score of img, which must be InputSize×InputSize.
// It is safe for concurrent use by several goroutines: up to
// min(GOMAXPROCS, 8) run at once, each on its own graph, and the others wait
// for one to be free.
//
// The score's value is the mean squared reconstruction error. Its decision
// is "uncertain" when the value is within UncertainMargin·Threshold of the
// threshold, otherwise "abnormal" above the threshold and "normal" at or
// below it. Its heatmap is the per-pixel squared error divided by the 99th
// percentile of the held-out normals' pixel errors, clipped to [0, 1].
func (m *Model) Score(img sentinel.Image) (sentinel.Score, error) {
	x, err := prepareImage(img, m.arch.InputSize)
	if err != nil {
		return sentinel.Score{}, fmt.Errorf("detector: score: %w", err)
	}
	recon, err := m.reconstruct(x)
	if err != nil {
		return sentinel.Score{}, fmt.Errorf("detector: score: %w", err)
	}
	sq := squaredErrors(x, recon)
	value := mean(sq)
	return sentinel.Score{
		Value:      value,
		Threshold:  m.calib.Threshold,
		Decision:   decide(value, m.calib.Threshold, m.calib.UncertainMargin),
		Components: map[string]float64{ComponentReconstruction: value},
		Heatmap:    heatmap(sq, m.arch.InputSize, m.calib.PixelErrorP99),
	}, nil
}

// prepareImage checks that img is side×side with finite pixels and returns
// its pixels clipped to [0, 1], the preprocessing named preprocessClip01.
func prepareImage(img sentinel.Image, side int) ([]float32, error) {
	if img.Width != side || img.Height != side {
		return nil, fmt.Errorf("image is %d×%d, model takes %d×%d", img.Width, img.Height, side, side)
	}
	if len(img.Pix) != side*side {
		return nil, fmt.Errorf("image has %d pixels, want %d", len(img.Pix), side*side)
	}
	x := make([]float32, len(img.Pix))
	for i, v := range img.Pix {
		switch {
		case v != v || math.IsInf(float64(v), 0):
			return nil, fmt.Errorf("pixel %d is %v", i, v)
		case v < 0:
			v = 0
		case v > 1:
			v = 1
		}
		x[i] = v
	}
	return x, nil
}

// reconstruct runs the autoencoder on one prepared image.
func (m *Model) reconstruct(x []float32) ([]float32, error) {
	n := <-m.pool
	defer func() { m.pool <- n }()
	if n == nil {
		var err error
		if n, err = newInference(m.arch, m.params); err != nil {
			return nil, err
		}
	}
	y, err := n.run(x)
	if err != nil {
		n = nil // a failed run may leave the machine in any state
	}
	return y, err
}

// graphMu serialises graph building and compiling. Running compiled graphs
// in parallel is safe (measured), but building them touches gorgonia's
// package-level pools, which nothing promises are safe.
var graphMu sync.Mutex

// newInference builds and compiles a batch-1 network for ps.
func newInference(a Architecture, ps []param) (*network, error) {
	graphMu.Lock()
	defer graphMu.Unlock()
	n, err := buildNetwork(a, ps, 1)
	if err != nil {
		return nil, fmt.Errorf("build inference graph: %w", err)
	}
	n.vm = G.NewTapeMachine(n.g)
	return n, nil
}

// run reconstructs one prepared image with a batch-1 network.
func (n *network) run(x []float32) ([]float32, error) {
	if len(x) != len(n.xbuf) {
		return nil, fmt.Errorf("input has %d values, network takes %d", len(x), len(n.xbuf))
	}
	copy(n.xbuf, x)
	defer n.vm.Reset()
	if err := G.Let(n.x, n.input()); err != nil {
		return nil, fmt.Errorf("bind input: %w", err)
	}
	if err := n.vm.RunAll(); err != nil {
		return nil, fmt.Errorf("run network: %w", err)
	}
	out, err := float32Values(n.out)
	if err != nil {
		return nil, err
	}
	if len(out) != len(x) {
		return nil, fmt.Errorf("network returned %d values, want %d", len(out), len(x))
	}
	return slices.Clone(out), nil
}

// float32Values returns the float32 data of a node's current value.
func float32Values(n *G.Node) ([]float32, error) {
	v := n.Value()
	if v == nil {
		return nil, errors.New("node " + n.Name() + " has no value")
	}
	data, ok := v.Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("node %s holds %T, want []float32", n.Name(), v.Data())
	}
	return data, nil
}

// squaredErrors returns (x[i]-y[i])² for every pixel.
func squaredErrors(x, y []float32) []float64 {
	sq := make([]float64, len(x))
	for i := range x {
		d := float64(x[i]) - float64(y[i])
		sq[i] = d * d
	}
	return sq
}

// mean returns the arithmetic mean of v, or 0 for an empty slice.
func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// decide turns a score into a decision: uncertain inside the relative margin
// around the threshold, abnormal above it, normal otherwise.
func decide(value, threshold, margin float64) sentinel.Decision {
	switch {
	case math.Abs(value-threshold) < margin*threshold:
		return sentinel.DecisionUncertain
	case value > threshold:
		return sentinel.DecisionAbnormal
	}
	return sentinel.DecisionNormal
}

// heatmap scales per-pixel squared errors by scale and clips them to [0, 1].
func heatmap(sq []float64, side int, scale float64) sentinel.Image {
	h := sentinel.NewImage(side, side)
	if !(scale > 0) {
		scale = math.SmallestNonzeroFloat64
	}
	for i, v := range sq {
		h.Pix[i] = float32(min(v/scale, 1))
	}
	return h
}

// weightsDigest returns the SHA-256 of the weights as little-endian float32
// in params order.
func weightsDigest(ps []param) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range ps {
		h.Write(float32Bytes(p.Data))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// versionOf returns the model version for ps: "ae-" and the first 12 hex
// digits of weightsDigest.
func versionOf(ps []param) string {
	d := weightsDigest(ps)
	return "ae-" + hex.EncodeToString(d[:])[:12]
}

// float32Bytes returns v as little-endian float32 bytes.
func float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
