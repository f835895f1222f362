package detector

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"
)

// TrainConfig sets how Train fits and calibrates a model. Start from
// DefaultTrainConfig: Train checks every field and uses none of its zero
// values as a default, because for some fields (Seed, UncertainMargin) zero
// is a meaningful setting.
type TrainConfig struct {
	// InputSize is the side of the square images the model takes, in
	// pixels. It must be divisible by 2^len(Channels).
	InputSize int
	// Epochs is the number of passes over the training images.
	Epochs int
	// BatchSize is the number of images per Adam step. When fewer training
	// images are left than this, the batch is the whole training set.
	BatchSize int
	// LearningRate is Adam's step size.
	LearningRate float64
	// Seed makes training deterministic: the same images, configuration and
	// seed give bit-identical weights.
	Seed int64
	// HoldoutFraction is the fraction of the normals held out from training
	// to calibrate the threshold on; at least minCalibImages are held out.
	HoldoutFraction float64
	// Verified, when positive, says that only the first Verified images
	// given to Train are verified normals, and only they may be held out
	// (HoldoutFraction of them); the rest, such as cases admitted by the
	// model's own gates, only train. A calibration drawn from cases chosen
	// for their low scores would standardise every component against too
	// normal a reference. It is a property of one call, not of the model,
	// and is not saved.
	Verified int
	// TargetFPR is the false-positive rate on the held-out normals the
	// threshold is set for: the threshold is their (1−TargetFPR) quantile.
	TargetFPR float64
	// UncertainMargin is the band around the threshold inside which a
	// score's decision is "uncertain": |score−threshold| < margin, in the
	// units of the fused score (standard deviations of held-out normals).
	UncertainMargin float64
	// NormalQuantile sets how typical a score must be to be decided
	// "normal": at or below this quantile of the held-out normals' scores.
	// A score above it but not above the threshold is "uncertain": more
	// unusual than most normals, not unusual enough to flag. 1, or any
	// value at or above 1−TargetFPR, leaves no such band.
	NormalQuantile float64
	// UncertainQuantile sets when the SWAG uncertainty alone makes a
	// decision "uncertain": above this quantile of the held-out normals'
	// uncertainties. 1 turns the rule off.
	UncertainQuantile float64

	// SWAGEpochs is the number of final epochs (at most Epochs) that run at
	// the constant SWAGLearningRate and collect the weights once each for
	// SWAG; the epochs before them are the warm-up.
	SWAGEpochs int
	// SWAGLearningRate is Adam's step size during the SWAG epochs.
	SWAGLearningRate float64
	// SWAGRank is K, the number of last deviations kept for the low-rank
	// part of the SWAG covariance.
	SWAGRank int
	// SWAGScale is s, the scale of the sampled perturbations.
	SWAGScale float64
	// SWAGSamples is S, the number of weight samples a score averages over.
	// 0 scores with the SWAG mean alone and gives no uncertainty.
	SWAGSamples int

	// MemoryStage is the encoder stage whose output is the finer of the two
	// feature maps of the memory bank; the next stage gives the coarser.
	MemoryStage int
	// CoresetFraction is the fraction of the training patches the greedy
	// k-center coreset keeps in the memory bank.
	CoresetFraction float64
	// CoresetProjection is the dimension of the random projection the
	// coreset is selected in; features no wider are used as they are.
	CoresetProjection int
	// Neighbours is k: a patch's score is its mean distance to its k nearest
	// memory patches.
	Neighbours int
	// MemoryTopFraction aggregates patch scores into the memory score: the
	// mean of the highest fraction of them (1 is the mean, 0 the maximum).
	MemoryTopFraction float64

	// ReconBlur is the standard deviation, in input pixels, of the Gaussian
	// that smooths the squared-error map before it is aggregated.
	ReconBlur float64
	// ReconTopFraction aggregates the smoothed error map into the
	// reconstruction score: the mean of its highest fraction of pixels.
	ReconTopFraction float64
	// MemoryWeight is the weight of the memory score's z-score in the fused
	// score; the reconstruction's has 1−MemoryWeight.
	MemoryWeight float64

	// PixelPatch is the side, in input pixels, of the raw-pixel patches of
	// the pixel memory (pixel.go): the training normals, each standardised
	// to zero mean and unit variance, cut into PixelPatch×PixelPatch patches
	// every PixelStride pixels. 0 turns the pixel memory off.
	PixelPatch int
	// PixelStride is the step between pixel-memory patches, from 1 to
	// PixelPatch (so that every pixel is covered).
	PixelStride int
	// PixelLocal further standardises every pixel patch on its own, so
	// that it is compared by texture and shape but not brightness.
	PixelLocal bool
	// PixelTopFraction aggregates the pixel patches' distances into the
	// pixel score: the mean of the highest fraction of them.
	PixelTopFraction float64
	// PixelWeight and NearestWeight are the weights, in the fused score, of
	// the pixel score's z-score and of the nearest-normal distance's (the
	// no-learning baseline's score: the whole standardised image's
	// Euclidean distance to the nearest training normal). The autoencoder's
	// two scores share the rest, 1−PixelWeight−NearestWeight, split by
	// MemoryWeight.
	PixelWeight   float64
	NearestWeight float64
	// NearestShift lets the nearest-normal distance tolerate the image
	// being placed differently from the normal: the image is shifted by
	// up to NearestShift input pixels in each direction and compared with
	// each training normal over their centres (a border of NearestShift
	// pixels left out), and the distance is the smallest over shifts and
	// normals. 0 compares the whole images unshifted, as the baseline does.
	NearestShift int
	// TextureWeight is the weight of the texture component: how far the
	// mean gradient magnitude of the standardised image lies from the
	// training normals' (either side), z-scored on the held-out normals.
	// Consolidation blurs the fine vascular and rib detail of a normal
	// film, and a sharper or noisier film than any normal is unusual too.
	// The autoencoder's share is 1−PixelWeight−NearestWeight−TextureWeight.
	TextureWeight float64
	// SampledMemory makes the uncertainty cover the memory score too: each
	// SWAG sample's encoder scores the image's patches against the memory
	// bank, and the uncertainty is the spread over the samples of the
	// autoencoder's whole share of the fused score, not of the
	// reconstruction's alone. Without it a model whose autoencoder share is
	// all memory (MemoryWeight 1) has no uncertainty at all. It costs one
	// memory-bank search per sample.
	SampledMemory bool

	// Standardise feeds the network each image shifted and scaled to zero
	// mean and unit variance instead of its [0, 1] pixels, so that exposure
	// and contrast, which vary between machines far more than anatomy does,
	// do not dominate what the model learns.
	Standardise bool

	// Channels lists the encoder's channels per stride-2 stage; the decoder
	// mirrors them. Training time grows with the square of the channels of
	// the stages nearest the input, which run at the highest resolution.
	Channels []int
	// Progress, when set, is called after every epoch.
	Progress func(p Progress) `json:"-"`
	// Logger, when set, receives one debug record per epoch and an info
	// record when training ends.
	Logger *slog.Logger `json:"-"`
	// Now, when set, replaces time.Now for the model's creation time.
	Now func() time.Time `json:"-"`
}

// Progress reports the state of training after an epoch.
type Progress struct {
	// Epoch counts the epochs done, from 1 to Epochs.
	Epoch, Epochs int
	// Loss is the mean training loss (mean squared reconstruction error)
	// over the epoch's batches.
	Loss float64
	// Elapsed is the time since training started; ETA estimates the time
	// left from the mean epoch time so far.
	Elapsed, ETA time.Duration
}

// Minimum numbers of images, so that the threshold quantile and the weights
// are estimated from more than a handful of values.
const (
	minCalibImages = 4
	minTrainImages = 4
)

// DefaultTrainConfig returns the configuration measured to train 100 images
// of 64×64 for 30 epochs in well under a minute on two cores.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		InputSize:       64,
		Epochs:          30,
		BatchSize:       16,
		LearningRate:    1e-3,
		Seed:            1,
		HoldoutFraction: 0.2,
		TargetFPR:       0.05,
		UncertainMargin: 0,
		NormalQuantile:  0.8,
		Channels:        []int{8, 16, 32},

		UncertainQuantile: 0.9,
		SWAGEpochs:        10,
		SWAGLearningRate:  5e-4,
		SWAGRank:          20,
		SWAGScale:         0.5,
		SWAGSamples:       8,
		MemoryStage:       1,
		CoresetFraction:   0.1,
		CoresetProjection: 128,
		Neighbours:        1,
		MemoryTopFraction: 1,
		ReconBlur:         1,
		ReconTopFraction:  1,
		MemoryWeight:      0.5,
		Standardise:       false,
		PixelPatch:        8,
		PixelStride:       8,
		PixelLocal:        true,
		PixelTopFraction:  1,
		PixelWeight:       0.75,
		NearestWeight:     0,
		NearestShift:      0,
		TextureWeight:     0.1,
		SampledMemory:     false,
	}
}

// Validate reports the first field of c that is out of range, by name.
func (c TrainConfig) Validate() error {
	switch {
	case c.Epochs < 1:
		return fmt.Errorf("invalid Epochs %d: want at least 1", c.Epochs)
	case c.BatchSize < 1:
		return fmt.Errorf("invalid BatchSize %d: want at least 1", c.BatchSize)
	case !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0):
		return fmt.Errorf("invalid LearningRate %v: want positive and finite", c.LearningRate)
	case !(c.HoldoutFraction > 0 && c.HoldoutFraction < 1):
		return fmt.Errorf("invalid HoldoutFraction %v: want within (0, 1)", c.HoldoutFraction)
	case !(c.TargetFPR >= 0 && c.TargetFPR < 1):
		return fmt.Errorf("invalid TargetFPR %v: want within [0, 1)", c.TargetFPR)
	case !(c.UncertainMargin >= 0 && c.UncertainMargin < 1):
		return fmt.Errorf("invalid UncertainMargin %v: want within [0, 1)", c.UncertainMargin)
	case !(c.NormalQuantile > 0 && c.NormalQuantile <= 1):
		return fmt.Errorf("invalid NormalQuantile %v: want within (0, 1]", c.NormalQuantile)
	}
	if err := c.architecture().Validate(); err != nil {
		return fmt.Errorf("invalid InputSize or Channels: %w", err)
	}
	switch {
	case !(c.UncertainQuantile > 0 && c.UncertainQuantile <= 1):
		return fmt.Errorf("invalid UncertainQuantile %v: want within (0, 1]", c.UncertainQuantile)
	case c.SWAGEpochs < 1:
		return fmt.Errorf("invalid SWAGEpochs %d: want at least 1", c.SWAGEpochs)
	case !(c.SWAGLearningRate > 0) || math.IsInf(c.SWAGLearningRate, 0):
		return fmt.Errorf("invalid SWAGLearningRate %v: want positive and finite", c.SWAGLearningRate)
	case c.SWAGRank < 2 || c.SWAGRank > maxSWAGRank:
		return fmt.Errorf("invalid SWAGRank %d: want 2 to %d", c.SWAGRank, maxSWAGRank)
	case !(c.SWAGScale >= 0 && c.SWAGScale <= 10):
		return fmt.Errorf("invalid SWAGScale %v: want within [0, 10]", c.SWAGScale)
	case c.SWAGSamples < 0 || c.SWAGSamples > maxSWAGSamples:
		return fmt.Errorf("invalid SWAGSamples %d: want 0 to %d", c.SWAGSamples, maxSWAGSamples)
	case c.MemoryStage < 0 || c.MemoryStage > len(c.Channels)-2:
		return fmt.Errorf("invalid MemoryStage %d: want 0 to %d (two stages from it must exist)", c.MemoryStage, len(c.Channels)-2)
	case !(c.CoresetFraction > 0 && c.CoresetFraction <= 1):
		return fmt.Errorf("invalid CoresetFraction %v: want within (0, 1]", c.CoresetFraction)
	case c.CoresetProjection < 1:
		return fmt.Errorf("invalid CoresetProjection %d: want at least 1", c.CoresetProjection)
	case c.Neighbours < 1 || c.Neighbours > maxNeighbours:
		return fmt.Errorf("invalid Neighbours %d: want 1 to %d", c.Neighbours, maxNeighbours)
	case !(c.MemoryTopFraction >= 0 && c.MemoryTopFraction <= 1):
		return fmt.Errorf("invalid MemoryTopFraction %v: want within [0, 1]", c.MemoryTopFraction)
	case !(c.ReconBlur >= 0 && c.ReconBlur <= 64):
		return fmt.Errorf("invalid ReconBlur %v: want within [0, 64]", c.ReconBlur)
	case !(c.ReconTopFraction >= 0 && c.ReconTopFraction <= 1):
		return fmt.Errorf("invalid ReconTopFraction %v: want within [0, 1]", c.ReconTopFraction)
	case !(c.MemoryWeight >= 0 && c.MemoryWeight <= 1):
		return fmt.Errorf("invalid MemoryWeight %v: want within [0, 1]", c.MemoryWeight)
	case c.PixelPatch < 0 || c.PixelPatch > c.InputSize:
		return fmt.Errorf("invalid PixelPatch %d: want 0 to InputSize %d", c.PixelPatch, c.InputSize)
	case c.PixelPatch > 0 && (c.PixelStride < 1 || c.PixelStride > c.PixelPatch):
		return fmt.Errorf("invalid PixelStride %d: want 1 to PixelPatch %d", c.PixelStride, c.PixelPatch)
	case c.PixelPatch > 0 && !(c.PixelTopFraction >= 0 && c.PixelTopFraction <= 1):
		return fmt.Errorf("invalid PixelTopFraction %v: want within [0, 1]", c.PixelTopFraction)
	case !(c.PixelWeight >= 0 && c.PixelWeight <= 1):
		return fmt.Errorf("invalid PixelWeight %v: want within [0, 1]", c.PixelWeight)
	case c.PixelWeight > 0 && c.PixelPatch == 0:
		return fmt.Errorf("invalid PixelWeight %v: the pixel memory is off (PixelPatch 0)", c.PixelWeight)
	case !(c.NearestWeight >= 0 && c.NearestWeight <= 1):
		return fmt.Errorf("invalid NearestWeight %v: want within [0, 1]", c.NearestWeight)
	case c.NearestShift < 0 || 4*c.NearestShift >= c.InputSize:
		return fmt.Errorf("invalid NearestShift %d: want within [0, InputSize/4)", c.NearestShift)
	case c.Verified < 0:
		return fmt.Errorf("invalid Verified %d: want 0 or more", c.Verified)
	case !(c.TextureWeight >= 0 && c.TextureWeight <= 1):
		return fmt.Errorf("invalid TextureWeight %v: want within [0, 1]", c.TextureWeight)
	case c.PixelWeight+c.NearestWeight+c.TextureWeight > 1:
		return fmt.Errorf("invalid PixelWeight %v, NearestWeight %v and TextureWeight %v: their sum must not exceed 1", c.PixelWeight, c.NearestWeight, c.TextureWeight)
	}
	return nil
}

// Bounds on settings that size what scoring allocates, so that a model file
// cannot make Score allocate without bound.
const (
	maxSWAGSamples = 64
	maxNeighbours  = 64
)

// architecture returns the network c describes.
func (c TrainConfig) architecture() Architecture {
	return Architecture{InputSize: c.InputSize, Channels: slices.Clone(c.Channels)}
}

// savedConfig is the part of a TrainConfig recorded in a model file.
type savedConfig struct {
	InputSize       int     `json:"input_size"`
	Epochs          int     `json:"epochs"`
	BatchSize       int     `json:"batch_size"`
	LearningRate    float64 `json:"learning_rate"`
	Seed            int64   `json:"seed"`
	HoldoutFraction float64 `json:"holdout_fraction"`
	TargetFPR       float64 `json:"target_fpr"`
	UncertainMargin float64 `json:"uncertain_margin"`
	NormalQuantile  float64 `json:"normal_quantile,omitempty"`
	Channels        []int   `json:"channels"`

	UncertainQuantile float64 `json:"uncertain_quantile"`
	SWAGEpochs        int     `json:"swag_epochs"`
	SWAGLearningRate  float64 `json:"swag_learning_rate"`
	SWAGRank          int     `json:"swag_rank"`
	SWAGScale         float64 `json:"swag_scale"`
	SWAGSamples       int     `json:"swag_samples"`
	MemoryStage       int     `json:"memory_stage"`
	CoresetFraction   float64 `json:"coreset_fraction"`
	CoresetProjection int     `json:"coreset_projection"`
	Neighbours        int     `json:"neighbours"`
	MemoryTopFraction float64 `json:"memory_top_fraction"`
	ReconBlur         float64 `json:"recon_blur"`
	ReconTopFraction  float64 `json:"recon_top_fraction"`
	MemoryWeight      float64 `json:"memory_weight"`
	Standardise       bool    `json:"standardise"`
	PixelPatch        int     `json:"pixel_patch"`
	PixelStride       int     `json:"pixel_stride"`
	PixelLocal        bool    `json:"pixel_local"`
	PixelTopFraction  float64 `json:"pixel_top_fraction"`
	PixelWeight       float64 `json:"pixel_weight"`
	NearestWeight     float64 `json:"nearest_weight"`
	NearestShift      int     `json:"nearest_shift,omitempty"`
	TextureWeight     float64 `json:"texture_weight,omitempty"`
	SampledMemory     bool    `json:"sampled_memory,omitempty"`
}

func (c TrainConfig) saved() savedConfig {
	return savedConfig{
		InputSize:         c.InputSize,
		Epochs:            c.Epochs,
		BatchSize:         c.BatchSize,
		LearningRate:      c.LearningRate,
		Seed:              c.Seed,
		HoldoutFraction:   c.HoldoutFraction,
		TargetFPR:         c.TargetFPR,
		UncertainMargin:   c.UncertainMargin,
		NormalQuantile:    c.NormalQuantile,
		Channels:          slices.Clone(c.Channels),
		UncertainQuantile: c.UncertainQuantile,
		SWAGEpochs:        c.SWAGEpochs,
		SWAGLearningRate:  c.SWAGLearningRate,
		SWAGRank:          c.SWAGRank,
		SWAGScale:         c.SWAGScale,
		SWAGSamples:       c.SWAGSamples,
		MemoryStage:       c.MemoryStage,
		CoresetFraction:   c.CoresetFraction,
		CoresetProjection: c.CoresetProjection,
		Neighbours:        c.Neighbours,
		MemoryTopFraction: c.MemoryTopFraction,
		ReconBlur:         c.ReconBlur,
		ReconTopFraction:  c.ReconTopFraction,
		MemoryWeight:      c.MemoryWeight,
		Standardise:       c.Standardise,
		PixelPatch:        c.PixelPatch,
		PixelStride:       c.PixelStride,
		PixelLocal:        c.PixelLocal,
		PixelTopFraction:  c.PixelTopFraction,
		PixelWeight:       c.PixelWeight,
		NearestWeight:     c.NearestWeight,
		NearestShift:      c.NearestShift,
		TextureWeight:     c.TextureWeight,
		SampledMemory:     c.SampledMemory,
	}
}

func (s savedConfig) config() TrainConfig {
	return TrainConfig{
		InputSize:         s.InputSize,
		Epochs:            s.Epochs,
		BatchSize:         s.BatchSize,
		LearningRate:      s.LearningRate,
		Seed:              s.Seed,
		HoldoutFraction:   s.HoldoutFraction,
		TargetFPR:         s.TargetFPR,
		UncertainMargin:   s.UncertainMargin,
		NormalQuantile:    s.normalQuantile(),
		Channels:          slices.Clone(s.Channels),
		UncertainQuantile: s.UncertainQuantile,
		SWAGEpochs:        s.SWAGEpochs,
		SWAGLearningRate:  s.SWAGLearningRate,
		SWAGRank:          s.SWAGRank,
		SWAGScale:         s.SWAGScale,
		SWAGSamples:       s.SWAGSamples,
		MemoryStage:       s.MemoryStage,
		CoresetFraction:   s.CoresetFraction,
		CoresetProjection: s.CoresetProjection,
		Neighbours:        s.Neighbours,
		MemoryTopFraction: s.MemoryTopFraction,
		ReconBlur:         s.ReconBlur,
		ReconTopFraction:  s.ReconTopFraction,
		MemoryWeight:      s.MemoryWeight,
		Standardise:       s.Standardise,
		PixelPatch:        s.PixelPatch,
		PixelStride:       s.PixelStride,
		PixelLocal:        s.PixelLocal,
		PixelTopFraction:  s.PixelTopFraction,
		PixelWeight:       s.PixelWeight,
		NearestWeight:     s.NearestWeight,
		NearestShift:      s.NearestShift,
		TextureWeight:     s.TextureWeight,
		SampledMemory:     s.SampledMemory,
	}
}

// normalQuantile is the saved NormalQuantile; files before format 6 have
// none, and decided without the band (1).
func (s savedConfig) normalQuantile() float64 {
	if s.NormalQuantile == 0 {
		return 1
	}
	return s.NormalQuantile
}
