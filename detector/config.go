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
	// TargetFPR is the false-positive rate on the held-out normals the
	// threshold is set for: the threshold is their (1−TargetFPR) quantile.
	TargetFPR float64
	// UncertainMargin is the relative band around the threshold inside which
	// a score's decision is "uncertain": |score−threshold| < margin·threshold.
	UncertainMargin float64
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
		UncertainMargin: 0.1,
		Channels:        []int{8, 16, 32},
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
	}
	if err := c.architecture().Validate(); err != nil {
		return fmt.Errorf("invalid InputSize or Channels: %w", err)
	}
	return nil
}

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
	Channels        []int   `json:"channels"`
}

func (c TrainConfig) saved() savedConfig {
	return savedConfig{
		InputSize:       c.InputSize,
		Epochs:          c.Epochs,
		BatchSize:       c.BatchSize,
		LearningRate:    c.LearningRate,
		Seed:            c.Seed,
		HoldoutFraction: c.HoldoutFraction,
		TargetFPR:       c.TargetFPR,
		UncertainMargin: c.UncertainMargin,
		Channels:        slices.Clone(c.Channels),
	}
}

func (s savedConfig) config() TrainConfig {
	return TrainConfig{
		InputSize:       s.InputSize,
		Epochs:          s.Epochs,
		BatchSize:       s.BatchSize,
		LearningRate:    s.LearningRate,
		Seed:            s.Seed,
		HoldoutFraction: s.HoldoutFraction,
		TargetFPR:       s.TargetFPR,
		UncertainMargin: s.UncertainMargin,
		Channels:        slices.Clone(s.Channels),
	}
}
