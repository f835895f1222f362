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

// Names of the components of a score.
const (
	// ComponentReconstruction is the reconstruction score: a high mean of
	// the smoothed squared-error map, averaged over the SWAG samples.
	ComponentReconstruction = "reconstruction"
	// ComponentMemory is the memory-bank score: a high mean of the patch
	// distances to the nearest normal patches.
	ComponentMemory = "memory"
	// ComponentReconstructionZ and ComponentMemoryZ are the two scores
	// standardised against the held-out normals; the value is their
	// weighted sum.
	ComponentReconstructionZ = "reconstruction_z"
	ComponentMemoryZ         = "memory_z"
	// ComponentPixel is the pixel-memory score (a high mean of the raw
	// pixel patches' distances to the nearest normal patches) and
	// ComponentPixelZ its z-score; present when the pixel memory is on.
	ComponentPixel  = "pixel"
	ComponentPixelZ = "pixel_z"
	// ComponentNearest is the whole standardised image's distance to the
	// nearest training normal and ComponentNearestZ its z-score; present
	// when NearestWeight is positive.
	ComponentNearest  = "nearest"
	ComponentNearestZ = "nearest_z"
	// ComponentTexture is how far the standardised image's mean gradient
	// magnitude lies from the training normals' mean of it (either side),
	// and ComponentTextureZ its z-score; present when TextureWeight is
	// positive.
	ComponentTexture  = "texture"
	ComponentTextureZ = "texture_z"
)

// preprocessClip01 names how pixels are prepared for the network: the
// [0, 1] pixels are fed as they are, with values outside the range clipped
// to it. Model files record the name so that a later change of
// preprocessing cannot silently score with the wrong input.
const preprocessClip01 = "clip01"

// preprocessStandardise names clip01 followed by standardising each image to
// zero mean and unit variance (TrainConfig.Standardise).
const preprocessStandardise = "clip01+standardise"

// preprocessName returns the preprocessing a configuration selects.
func (c savedConfig) preprocessName() string {
	if c.Standardise {
		return preprocessStandardise
	}
	return preprocessClip01
}

// input turns a prepared image into the network's input.
func (c savedConfig) input(x []float32) []float32 {
	if c.Standardise {
		return standardise(x)
	}
	return x
}

// calibration is what the held-out normals taught the model: the statistics
// that standardise the two component scores, the fused scores, the
// threshold set on them, the uncertainty limit and the heatmap scales.
type calibration struct {
	// Appearance is the training normals' appearance profile (see
	// appearance.go); nil in files written before it existed, which then
	// check only the score's lower tail.
	Appearance *appearanceProfile `json:"appearance,omitempty"`
	// Scores are the held-out normals' fused scores, in the order they were
	// held out.
	Scores []float64 `json:"scores"`
	// Uncertainties are their SWAG uncertainties (empty without samples).
	Uncertainties []float64 `json:"uncertainties"`
	// Threshold is the (1−TargetFPR) quantile of Scores.
	Threshold float64 `json:"threshold"`
	// UncertainMargin is the band around Threshold that is "uncertain".
	UncertainMargin float64 `json:"uncertain_margin"`
	// NormalLimit, if set, is the NormalQuantile quantile of Scores: a
	// score above it and not above Threshold is "uncertain". Files before
	// format 6, and models with NormalQuantile 1, have none.
	NormalLimit *float64 `json:"normal_limit,omitempty"`
	// UncertaintyLimit is the UncertainQuantile quantile of Uncertainties:
	// a score more uncertain than this is "uncertain".
	UncertaintyLimit float64 `json:"uncertainty_limit"`
	// ReconMean, ReconStd, MemoryMean and MemoryStd are the mean and sample
	// standard deviation of the held-out normals' component scores.
	ReconMean  float64 `json:"recon_mean"`
	ReconStd   float64 `json:"recon_std"`
	MemoryMean float64 `json:"memory_mean"`
	MemoryStd  float64 `json:"memory_std"`
	// ReconMapP99 and MemoryMapP99 are the 99th percentiles of the held-out
	// normals' error and patch-distance maps; heatmaps divide by them.
	ReconMapP99  float64 `json:"recon_map_p99"`
	MemoryMapP99 float64 `json:"memory_map_p99"`
	// BaselineThreshold is the (1−TargetFPR) quantile of the held-out
	// normals' no-learning baseline scores.
	BaselineThreshold float64 `json:"baseline_threshold"`
	// PixelMean, PixelStd, NearestMean and NearestStd standardise the
	// pixel-memory and nearest-normal scores like the two above; they are
	// zero when the component is off. PixelMapP99 scales the pixel
	// memory's map in the heatmap.
	PixelMean   float64 `json:"pixel_mean,omitempty"`
	PixelStd    float64 `json:"pixel_std,omitempty"`
	NearestMean float64 `json:"nearest_mean,omitempty"`
	NearestStd  float64 `json:"nearest_std,omitempty"`
	PixelMapP99 float64 `json:"pixel_map_p99,omitempty"`
	// TextureCenter is the training normals' mean gradient magnitude, from
	// which the texture component measures; TextureMean and TextureStd
	// standardise that component. All three are zero when it is off.
	TextureCenter float64 `json:"texture_center,omitempty"`
	TextureMean   float64 `json:"texture_mean,omitempty"`
	TextureStd    float64 `json:"texture_std,omitempty"`
}

// Model is a trained detector: the SWAG posterior over the autoencoder's
// weights, the memory bank of normal patch features, the training normals
// (for the no-learning baseline) and the calibration. It is immutable once
// trained or loaded, and safe for concurrent use.
type Model struct {
	info   sentinel.ModelInfo
	arch   Architecture
	config savedConfig
	// params are the SWAG mean weights, rounded to float32.
	params []param
	swag   *swagState
	// swagSeed seeds the SWAG samples, so that a loaded model draws the
	// weights it was calibrated with.
	swagSeed int64
	// bank holds bankRows memory patches of bankDim features each.
	bank     []float32
	bankDim  int
	bankRows int
	// normals are the training images as fed to the network.
	normals [][]float32
	calib   calibration

	// Derived when the model is assembled.
	samples    [][]param
	bankSq     []float32
	normalsStd [][]float32
	// centres holds the training normals' centres for the shifted
	// nearest-normal distance; empty unless NearestShift is set.
	centres centreBank
	// pixels is the pixel memory, cut from normalsStd; empty when off.
	pixels *pixelBank

	// pool holds up to cap(pool) scorers, nil until first needed. A
	// scorer's buffers are not safe for concurrent use, so each Score takes
	// one for the duration of its run; the capacity bounds how many sets of
	// buffers (and goroutines scoring at once) a model keeps.
	pool chan *scorer

	// heldOut are the indices, among the images Train was given, of the
	// normals it held out for calibration; nil for a loaded model.
	heldOut []int
}

// scorer is one set of inference networks: the SWAG mean, whose encoder
// feeds the memory bank, and one per SWAG sample.
type scorer struct {
	mean    *inferNet
	samples []*inferNet
}

// modelParts is what a model is assembled from.
type modelParts struct {
	info     sentinel.ModelInfo
	arch     Architecture
	config   savedConfig
	params   []param
	swag     *swagState
	swagSeed int64
	bank     []float32
	bankDim  int
	normals  [][]float32
	calib    calibration
}

// newModel assembles a model, draws its SWAG samples and makes its empty
// scorer pool.
func newModel(p modelParts) *Model {
	m := &Model{
		info: p.info, arch: p.arch, config: p.config, params: p.params, swag: p.swag, swagSeed: p.swagSeed,
		bank: p.bank, bankDim: p.bankDim, normals: p.normals, calib: p.calib,
	}
	if m.bankDim > 0 {
		m.bankRows = len(m.bank) / m.bankDim
		m.bankSq = rowNorms(m.bank, m.bankRows, m.bankDim)
	}
	if m.swag != nil && m.config.SWAGSamples > 0 {
		m.samples = swagSamples(m.swag, m.params, m.config.SWAGSamples, m.config.SWAGScale, m.swagSeed)
	}
	m.normalsStd = make([][]float32, len(m.normals))
	for i, x := range m.normals {
		m.normalsStd[i] = standardise(x)
	}
	m.pixels = newPixelBank(m.normalsStd, m.arch.InputSize, m.config.PixelPatch, m.config.PixelStride, m.config.PixelLocal)
	if m.config.NearestShift > 0 && m.config.NearestWeight > 0 {
		m.centres = newCentreBank(m.normalsStd, m.arch.InputSize, m.config.NearestShift)
	}
	n := min(max(runtime.GOMAXPROCS(0), 1), 8)
	m.pool = make(chan *scorer, n)
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

// CalibrationScores returns the fused scores of the held-out normals the
// threshold was set on, in the order they were held out. A model read back
// by Load returns exactly the values the trained model did, and scoring the
// same images again reproduces them exactly.
func (m *Model) CalibrationScores() []float64 { return slices.Clone(m.calib.Scores) }

// HeldOut returns the indices, among the images Train was given, of the
// normals it held out from training to calibrate on; the others it trained
// on, so their scores are lower than a new normal's would be. It is nil for
// a model loaded from a file.
func (m *Model) HeldOut() []int { return slices.Clone(m.heldOut) }

// CalibrationUncertainties returns the SWAG uncertainties of the same
// held-out normals (empty when the model draws no SWAG samples).
func (m *Model) CalibrationUncertainties() []float64 { return slices.Clone(m.calib.Uncertainties) }

// UncertaintyLimit is the SWAG uncertainty above which the model decides
// "uncertain" whatever the score, and false when it gives no uncertainty.
func (m *Model) UncertaintyLimit() (float64, bool) {
	return m.calib.UncertaintyLimit, len(m.calib.Uncertainties) > 0
}

// UncertainMargin is the half-width of the band around the threshold that
// the model decides "uncertain" (detector.uncertain_margin), in score units;
// 0 when there is none.
func (m *Model) UncertainMargin() float64 { return m.calib.UncertainMargin }

// MemoryBankSize returns the number of patches in the memory bank and the
// number of features per patch.
func (m *Model) MemoryBankSize() (patches, features int) { return m.bankRows, m.bankDim }

// Score returns the anomaly score of img, which must be InputSize×InputSize.
// It is safe for concurrent use by several goroutines: up to
// min(GOMAXPROCS, 8) run at once, each on its own graphs, and the others
// wait for one to be free.
//
// The value fuses two scores, each standardised against the held-out
// normals: the reconstruction score (the mean of the highest
// ReconTopFraction of the smoothed squared-error map, averaged over the SWAG
// samples) and the memory score (the mean of the highest MemoryTopFraction
// of the patch distances to the memory bank), weighted 1−MemoryWeight and
// MemoryWeight. The uncertainty is the standard deviation of the fused score
// over the SWAG samples (with SampledMemory, each sample's encoder also
// scores the memory bank, so that the memory's share varies too). The
// decision is "uncertain" when the value is within UncertainMargin of the
// threshold or the uncertainty exceeds the calibrated limit, otherwise
// "abnormal" above the threshold, "normal" at or below the NormalQuantile
// quantile of the held-out normals' scores, and "uncertain" in between: a
// film more unusual than most normals is not called normal, nor flagged
// unless it passes the threshold. The heatmap blends the error map and the
// patch-distance map, each divided by its 99th percentile on the held-out
// normals, clipped to [0, 1].
func (m *Model) Score(img sentinel.Image) (sentinel.Score, error) {
	x, err := prepareImage(img, m.arch.InputSize)
	if err != nil {
		return sentinel.Score{}, fmt.Errorf("detector: score: %w", err)
	}
	a, err := m.analyse(m.config.input(x))
	if err != nil {
		return sentinel.Score{}, fmt.Errorf("detector: score: %w", err)
	}
	s := m.finish(a)
	m.checkDistribution(&s, x)
	return s, nil
}

// BaselineScore returns the no-learning baseline's score of img: the
// Euclidean distance from the image, standardised to zero mean and unit
// variance, to the nearest training normal standardised the same way. It
// is the yardstick the learned score must beat.
func (m *Model) BaselineScore(img sentinel.Image) (float64, error) {
	x, err := prepareImage(img, m.arch.InputSize)
	if err != nil {
		return 0, fmt.Errorf("detector: baseline score: %w", err)
	}
	if len(m.normalsStd) == 0 {
		return 0, errors.New("detector: baseline score: the model keeps no training normals")
	}
	return m.baseline(x), nil
}

// BaselineThreshold returns the baseline score that the held-out normals
// exceed at the model's target false-positive rate, so that the baseline can
// be judged at a threshold set the same way as the model's.
func (m *Model) BaselineThreshold() float64 { return m.calib.BaselineThreshold }

// baseline returns the baseline score of a prepared image.
func (m *Model) baseline(x []float32) float64 {
	return m.nearestDistance(standardise(x))
}

// nearest returns the nearest-normal component of z, an image standardised
// to zero mean and unit variance: its distance to the nearest training
// normal, tolerating shifts when the model's NearestShift is set.
func (m *Model) nearest(z []float32) float64 {
	if m.centres.n > 0 {
		return m.centres.distance(z)
	}
	return m.nearestDistance(z)
}

// nearestDistance returns the Euclidean distance from z, an image
// standardised to zero mean and unit variance, to the nearest training
// normal standardised the same way.
func (m *Model) nearestDistance(z []float32) float64 {
	best := math.Inf(1)
	for _, n := range m.normalsStd {
		best = min(best, float64(sqDist(z, n)))
	}
	return math.Sqrt(best)
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

// graphMu serialises graph building and compiling. Running compiled graphs
// in parallel is safe (measured), but building them touches gorgonia's
// package-level pools, which nothing promises are safe.
var graphMu sync.Mutex

// newScorer makes the mean network and one per SWAG sample.
func (m *Model) newScorer() (*scorer, error) {
	mean, err := newInferNet(m.arch, m.params, 1)
	if err != nil {
		return nil, fmt.Errorf("inference network: %w", err)
	}
	sc := &scorer{mean: mean}
	for i, ps := range m.samples {
		n, err := newInferNet(m.arch, ps, 1)
		if err != nil {
			return nil, fmt.Errorf("inference network of SWAG sample %d: %w", i, err)
		}
		sc.samples = append(sc.samples, n)
	}
	return sc, nil
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

// normalLimit returns the score at or below which a decision is normal,
// when the model has one below the threshold (a limit at or above it
// leaves no band), and nil otherwise.
func (c *calibration) normalLimit() *float64 {
	if c.NormalLimit == nil || *c.NormalLimit >= c.Threshold {
		return nil
	}
	l := *c.NormalLimit
	return &l
}

// decide turns a score into a decision, and says in words which rule
// made it: uncertain inside the margin around the threshold or when the
// uncertainty u (if any) exceeds the limit, abnormal above the threshold,
// uncertain above the normal limit (if any), normal otherwise.
func (c *calibration) decide(value float64, u *float64) (sentinel.Decision, string) {
	lim := c.normalLimit()
	switch {
	case math.Abs(value-c.Threshold) < c.UncertainMargin:
		return sentinel.DecisionUncertain, fmt.Sprintf("score %.3f within %.3g of the threshold %.3f", value, c.UncertainMargin, c.Threshold)
	case u != nil && *u > c.UncertaintyLimit:
		return sentinel.DecisionUncertain, fmt.Sprintf("SWAG uncertainty %.3g above its limit %.3g", *u, c.UncertaintyLimit)
	case value > c.Threshold:
		return sentinel.DecisionAbnormal, fmt.Sprintf("score %.3f above the threshold %.3f", value, c.Threshold)
	case lim != nil && value > *lim:
		return sentinel.DecisionUncertain, fmt.Sprintf("score %.3f above the normal limit %.3f, not above the threshold %.3f", value, *lim, c.Threshold)
	case lim != nil:
		return sentinel.DecisionNormal, fmt.Sprintf("score %.3f at or below the normal limit %.3f", value, *lim)
	}
	return sentinel.DecisionNormal, fmt.Sprintf("score %.3f at or below the threshold %.3f", value, c.Threshold)
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
