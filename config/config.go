// Package config reads Sentinel's TOML configuration. It owns the file
// format, the defaults and validation; components receive plain values from
// the command layer and never import this package.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultWorkspace is the workspace used when neither a flag nor the
// configuration names one.
const DefaultWorkspace = "./sentinel-data"

// Config is the whole configuration. Paths left empty are derived from the
// workspace; relative paths are taken relative to the workspace.
type Config struct {
	// Workspace holds the inbox, reports, quarantine, models and database
	// unless they are set one by one.
	Workspace string   `toml:"workspace"`
	Paths     Paths    `toml:"paths"`
	Ingest    Ingest   `toml:"ingest"`
	Detector  Detector `toml:"detector"`
	Learning  Learning `toml:"learning"`
	HTTP      HTTP     `toml:"http"`
	Log       Log      `toml:"log"`
	// DICOM makes Sentinel a DICOM node (see dicom.go).
	DICOM DICOM `toml:"dicom"`
	// Scope, Decisions and Reports: what is scored, when a film may be
	// called normal, and what reports name (see scope.go).
	Scope     Scope     `toml:"scope"`
	Decisions Decisions `toml:"decisions"`
	Reports   Reports   `toml:"reports"`
	// Store says where the state lives: the workspace's SQLite file, or a
	// PostgreSQL server several agents share.
	Store Store `toml:"store"`
}

// Store configures where Sentinel keeps its state.
type Store struct {
	// URL is a PostgreSQL server's URL ("postgres://user@host/db"); empty
	// keeps the state in the SQLite file paths.database (one agent).
	URL string `toml:"url"`
	// Agent names this agent among those sharing the database; empty
	// means its host and workspace.
	Agent string `toml:"agent"`
	// ClaimLease is how long a file an agent took from the queue stays its
	// own without a heartbeat: after it, another agent takes the file up.
	ClaimLease Duration `toml:"claim_lease"`
}

// HTTP configures the health, metrics and API server.
type HTTP struct {
	// Addr is the listen address; empty disables the server. It binds to
	// loopback by default: exposing it is a deliberate choice.
	Addr string `toml:"addr"`
	// Token guards the endpoints that change state; empty disables them.
	Token string `toml:"token"`
	// ReadToken, when set, guards the read API (/api/...), which names
	// instances, studies and accession numbers; Token is accepted too.
	ReadToken string `toml:"read_token"`
	// TokenFile and ReadTokenFile name files holding Token and ReadToken
	// (a systemd credential, a mounted secret); see ReadSecretFiles.
	TokenFile     string `toml:"token_file"`
	ReadTokenFile string `toml:"read_token_file"`
	// TLSCert and TLSKey, PEM files, serve HTTPS instead of HTTP; both or
	// neither.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// MaxConns bounds the connections served at once.
	MaxConns int `toml:"max_conns"`
}

// Paths locates the agent's folders and database.
type Paths struct {
	// Inbox lists the drop folders watched, each recursively.
	Inbox      []string `toml:"inbox"`
	Reports    string   `toml:"reports"`
	Quarantine string   `toml:"quarantine"`
	Models     string   `toml:"models"`
	Database   string   `toml:"database"`
	// Archive, when set, is where input files are moved once handled;
	// empty leaves them in the drop folder.
	Archive string `toml:"archive"`
}

// Ingest tunes how files are picked up and processed.
type Ingest struct {
	// StableFor is how long a file's size and modification time must stay
	// unchanged before it is read, so half-written files are never taken.
	StableFor Duration `toml:"stable_for"`
	// PollInterval is how often pending files are checked for stability.
	PollInterval Duration `toml:"poll_interval"`
	// RescanInterval is how often the inbox is walked in full, to catch files
	// whose filesystem events were lost. Zero disables the periodic rescan
	// (the scan at start always runs).
	RescanInterval Duration `toml:"rescan_interval"`
	// Workers is the number of files processed at once.
	Workers int `toml:"workers"`
	// QueueSize bounds the files waiting for a worker; beyond it, stable
	// files wait in the pending set until there is room.
	QueueSize int `toml:"queue_size"`
	// MaxPixels caps rows × columns × frames × samples of one image, checked
	// before pixel data is allocated.
	MaxPixels int64 `toml:"max_pixels"`
	// StudyQuiet is how long a study must receive no new instance before
	// its study report is written (again, as a new revision, if late
	// instances arrive).
	StudyQuiet Duration `toml:"study_quiet"`
	// ReviseWithin: when the model in use changes, the running agent
	// compares the reports of the instances first reported this recently
	// with the new model, and issues again, as a new revision, each one it
	// decides otherwise; 0 never revises a report.
	ReviseWithin Duration `toml:"revise_within"`
	// MinFreeMB pauses ingest while any filesystem Sentinel writes
	// (reports, quarantine, archive, the database's folder) has less free
	// space, in MiB; 0 disables the check.
	MinFreeMB int64 `toml:"min_free_mb"`
	// WriteGrace is how long after its last modification a file that ends
	// early, or cannot be recognised yet, is waited for rather than
	// quarantined: a writer may pause longer than stable_for.
	WriteGrace Duration `toml:"write_grace"`
	// FollowLinks lets a symbolic link in a drop folder be read when its
	// target lies inside a watched folder; otherwise links are refused.
	FollowLinks bool `toml:"follow_links"`
	// MaxAttempts is how often a file failing for a passing reason (disk
	// full, database busy) is tried before it is quarantined.
	MaxAttempts int `toml:"max_attempts"`
	// RetryDelay is the wait before the first retry, doubled each time up
	// to MaxRetryDelay.
	RetryDelay    Duration `toml:"retry_delay"`
	MaxRetryDelay Duration `toml:"max_retry_delay"`
}

// Detector holds the model's training settings.
type Detector struct {
	InputSize       int     `toml:"input_size"`
	Epochs          int     `toml:"epochs"`
	BatchSize       int     `toml:"batch_size"`
	LearningRate    float64 `toml:"learning_rate"`
	Seed            int64   `toml:"seed"`
	HoldoutFraction float64 `toml:"holdout_fraction"`
	TargetFPR       float64 `toml:"target_fpr"`
	UncertainMargin float64 `toml:"uncertain_margin"`
	// NormalQuantile: a score is "normal" only at or below this quantile
	// of the held-out normals' scores; above it and not above the
	// threshold it is "uncertain" (1 leaves no such band).
	NormalQuantile float64 `toml:"normal_quantile"`
	// UncertainQuantile: a score whose SWAG uncertainty exceeds this
	// quantile of the held-out normals' is "uncertain" (1 disables).
	UncertainQuantile float64 `toml:"uncertain_quantile"`
	// SWAGEpochs final epochs collect the weights for SWAG; SWAGSamples
	// weight samples are averaged per score (0: the SWAG mean alone).
	SWAGEpochs  int `toml:"swag_epochs"`
	SWAGSamples int `toml:"swag_samples"`
	// CoresetFraction of the training patches form the memory bank; a
	// patch scores its mean distance to its Neighbours nearest ones.
	CoresetFraction float64 `toml:"coreset_fraction"`
	Neighbours      int     `toml:"neighbours"`
	// MemoryWeight weighs the memory score against the reconstruction
	// score (1 − MemoryWeight) in the fused score.
	MemoryWeight float64 `toml:"memory_weight"`
	// Standardise feeds the network each image at zero mean and unit
	// variance.
	Standardise bool `toml:"standardise"`
	// PixelPatch is the side of the raw-pixel patches of the pixel memory
	// (0 turns it off), cut every PixelStride pixels from each
	// standardised training normal and, with PixelLocal, standardised
	// patch by patch.
	PixelPatch  int  `toml:"pixel_patch"`
	PixelStride int  `toml:"pixel_stride"`
	PixelLocal  bool `toml:"pixel_local"`
	// PixelWeight, NearestWeight and TextureWeight are the weights of the
	// pixel-memory score, of the nearest-normal distance and of the
	// texture component (how far the image's mean gradient magnitude lies
	// from the normals') in the fused score; the autoencoder's scores
	// share 1 − PixelWeight − NearestWeight − TextureWeight.
	PixelWeight   float64 `toml:"pixel_weight"`
	NearestWeight float64 `toml:"nearest_weight"`
	TextureWeight float64 `toml:"texture_weight"`
	// NearestShift, in input pixels, lets the nearest-normal distance
	// tolerate an image placed differently from the normals: each shift of
	// up to this many pixels in each direction is compared over the
	// images' centres and the smallest distance counts. 0 compares the
	// whole images unshifted.
	NearestShift int `toml:"nearest_shift"`
	// SampledMemory has every SWAG sample's encoder score the memory bank
	// too, so that the uncertainty covers the memory score and not the
	// reconstruction alone. A model with MemoryWeight 1 needs it to have
	// any uncertainty.
	SampledMemory bool `toml:"sampled_memory"`
}

// Learning configures the learning loop: queries to radiologists,
// oracle-free admission and retraining.
type Learning struct {
	// QueriesPerRound is the default budget of `sentinel queries export`.
	QueriesPerRound int `toml:"queries_per_round"`
	// Strategy is the default query strategy: hybrid, uncertainty,
	// boundary, diverse or random.
	Strategy string `toml:"strategy"`
	// QueryExpiry expires open queries older than this ("0s" never).
	QueryExpiry Duration `toml:"query_expiry"`
	// RetrainEveryLabels retrains automatically once this many labels have
	// arrived since the last retraining (0 disables).
	RetrainEveryLabels int `toml:"retrain_every_labels"`
	// RetrainEveryAdmissions retrains automatically once this many cases
	// have been admitted since the last retraining (0 disables).
	RetrainEveryAdmissions int `toml:"retrain_every_admissions"`
	// RetrainEvery retrains on this schedule when anything new arrived
	// ("0s" disables).
	RetrainEvery Duration `toml:"retrain_every"`
	// AdmitEvery runs an oracle-free admission cycle on this schedule in
	// the running agent ("0s": only just before a retraining).
	AdmitEvery Duration `toml:"admit_every"`
	// HoldoutFraction of the labelled cases of each class is frozen as the
	// holdout: each case's side is decided once, the first retraining cycle
	// after its label, and never changes. The holdout's ROC-AUC judges a
	// candidate once it holds HoldoutMinPerClass cases of each class.
	HoldoutFraction    float64 `toml:"holdout_fraction"`
	HoldoutMinPerClass int     `toml:"holdout_min_per_class"`
	// PromotionTolerance: a candidate is promoted unless its holdout
	// ROC-AUC or its seed false-positive rate is worse than the current
	// model's by more than this.
	PromotionTolerance float64 `toml:"promotion_tolerance"`
	// PromotionSignificance: a lower holdout ROC-AUC refuses a candidate
	// only if DeLong's paired test also finds it lower at this one-sided
	// p-value (0: the tolerance alone decides).
	PromotionSignificance float64 `toml:"promotion_significance"`
	// PromoteOnlyIfBetter: a candidate becomes current on its own only
	// when the holdout holds holdout_min_per_class cases of each class and
	// the paired test finds it better; otherwise it is held until a person
	// runs `sentinel models promote VERSION`.
	PromoteOnlyIfBetter bool `toml:"promote_only_if_better"`
	// MaxReviseShare: a promotion that would revise more than this share
	// of the recent reports (ingest.revise_within) waits for a person.
	// 0 sets no limit.
	MaxReviseShare float64 `toml:"max_revise_share"`
	// AdmitDistanceZ and AdmitUncertaintyZ bound the z-scores against the
	// seed normals a case must stay within, AdmitConsecutive cycles in a
	// row, to join the normal set without a label; AdmitMaxPerCycle caps
	// each cycle's admissions (0: no cap).
	AdmitDistanceZ    float64 `toml:"admit_distance_z"`
	AdmitUncertaintyZ float64 `toml:"admit_uncertainty_z"`
	AdmitConsecutive  int     `toml:"admit_consecutive"`
	AdmitMaxPerCycle  int     `toml:"admit_max_per_cycle"`
	// AdmitHeadGate adds a third admission gate once labels have fitted a
	// supervised head the model trusts: the head must call the case normal,
	// its logit at most AdmitHeadMaxLogit.
	AdmitHeadGate     bool    `toml:"admit_head_gate"`
	AdmitHeadMaxLogit float64 `toml:"admit_head_max_logit"`
	// HeadMinPerClass labelled normals and abnormals are needed before the
	// supervised head is fitted; HeadWeightFolds-fold cross-validation on
	// the training labels chooses its weight in the combined score when
	// there are that many labels of each class (0: never), otherwise
	// HeadShrinkage k weighs it a/(a+k) for a labelled abnormals; HeadL2 is
	// its ridge penalty. HeadMaxFPR bounds the share of labelled normals the
	// retrained threshold may flag (0: unbounded).
	HeadMinPerClass int     `toml:"head_min_per_class"`
	HeadWeightFolds int     `toml:"head_weight_folds"`
	HeadMaxFPR      float64 `toml:"head_max_fpr"`
	HeadShrinkage   float64 `toml:"head_shrinkage"`
	HeadL2          float64 `toml:"head_l2"`
}

// Log selects the log format and level.
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Duration is a time.Duration written in TOML as a string such as "2s".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Workspace: DefaultWorkspace,
		DICOM:     DefaultDICOM(),
		Scope:     DefaultScope(),
		Decisions: DefaultDecisions(),
		Reports:   Reports{SourceFile: "relative"},
		Store:     Store{ClaimLease: Duration{2 * time.Minute}},
		Ingest: Ingest{
			StableFor:      Duration{2 * time.Second},
			PollInterval:   Duration{500 * time.Millisecond},
			RescanInterval: Duration{time.Minute},
			Workers:        2,
			QueueSize:      64,
			MaxPixels:      64 << 20,
			StudyQuiet:     Duration{30 * time.Second},
			ReviseWithin:   Duration{7 * 24 * time.Hour},
			MinFreeMB:      512,
			WriteGrace:     Duration{2 * time.Minute},
			MaxAttempts:    8,
			RetryDelay:     Duration{time.Second},
			MaxRetryDelay:  Duration{5 * time.Minute},
		},
		HTTP: HTTP{Addr: "127.0.0.1:8484", MaxConns: 64},
		Detector: Detector{
			InputSize:       64,
			Epochs:          30,
			BatchSize:       16,
			LearningRate:    1e-3,
			Seed:            1,
			HoldoutFraction: 0.2,
			TargetFPR:       0.05,
			UncertainMargin: 0,
			NormalQuantile:  0.8,

			UncertainQuantile: 0.9,
			SWAGEpochs:        10,
			SWAGSamples:       8,
			CoresetFraction:   0.1,
			Neighbours:        1,
			MemoryWeight:      0.5,
			Standardise:       false,
			PixelPatch:        8,
			PixelStride:       8,
			PixelLocal:        true,
			PixelWeight:       0.75,
			NearestWeight:     0,
			TextureWeight:     0.1,
			NearestShift:      0,
			SampledMemory:     false,
		},
		Learning: Learning{
			QueriesPerRound:        25,
			Strategy:               "hybrid",
			QueryExpiry:            Duration{14 * 24 * time.Hour},
			RetrainEveryLabels:     25,
			RetrainEvery:           Duration{0},
			RetrainEveryAdmissions: 50,
			AdmitEvery:             Duration{0},
			HoldoutFraction:        0.2,
			HoldoutMinPerClass:     10,
			PromotionTolerance:     0.02,
			PromotionSignificance:  0.05,
			PromoteOnlyIfBetter:    true,
			MaxReviseShare:         0.2,
			AdmitDistanceZ:         0,
			AdmitUncertaintyZ:      1,
			AdmitConsecutive:       2,
			AdmitMaxPerCycle:       50,
			AdmitHeadGate:          true,
			HeadMinPerClass:        5,
			HeadWeightFolds:        5,
			HeadMaxFPR:             0.2,
			HeadShrinkage:          20,
			HeadL2:                 100,
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// ValidationError names the key whose value is wrong.
type ValidationError struct {
	Key    string
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("config: %s: %s", e.Key, e.Reason)
}

// Load reads the file at path over the defaults and validates the result.
// Unknown keys are an error naming them.
func Load(path string) (Config, error) {
	cfg := Default()
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("config: %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every value and returns a *ValidationError for the first
// bad one.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &ValidationError{Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(c.Workspace) == "" {
		return bad("workspace", "must not be empty")
	}
	for i, p := range c.Paths.Inbox {
		if strings.TrimSpace(p) == "" {
			return bad(fmt.Sprintf("paths.inbox[%d]", i), "must not be empty")
		}
	}
	in := c.Ingest
	switch {
	case in.StableFor.Duration < 0:
		return bad("ingest.stable_for", "must not be negative, got %s", in.StableFor)
	case in.PollInterval.Duration <= 0:
		return bad("ingest.poll_interval", "must be positive, got %s", in.PollInterval)
	case in.RescanInterval.Duration < 0:
		return bad("ingest.rescan_interval", "must not be negative, got %s", in.RescanInterval)
	case in.Workers < 1 || in.Workers > 64:
		return bad("ingest.workers", "must be between 1 and 64, got %d", in.Workers)
	case in.QueueSize < 1:
		return bad("ingest.queue_size", "must be at least 1, got %d", in.QueueSize)
	case in.MaxPixels < 1:
		return bad("ingest.max_pixels", "must be at least 1, got %d", in.MaxPixels)
	case in.StudyQuiet.Duration < 0:
		return bad("ingest.study_quiet", "must not be negative, got %s", in.StudyQuiet)
	case in.ReviseWithin.Duration < 0:
		return bad("ingest.revise_within", "must not be negative, got %s", in.ReviseWithin)
	case in.MinFreeMB < 0:
		return bad("ingest.min_free_mb", "must not be negative, got %d", in.MinFreeMB)
	case in.WriteGrace.Duration < 0:
		return bad("ingest.write_grace", "must not be negative, got %s", in.WriteGrace)
	case in.MaxAttempts < 1:
		return bad("ingest.max_attempts", "must be at least 1, got %d", in.MaxAttempts)
	case in.RetryDelay.Duration <= 0:
		return bad("ingest.retry_delay", "must be positive, got %s", in.RetryDelay)
	case in.MaxRetryDelay.Duration < in.RetryDelay.Duration:
		return bad("ingest.max_retry_delay", "must be at least ingest.retry_delay, got %s", in.MaxRetryDelay)
	}
	if c.HTTP.Addr != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
			return bad("http.addr", "must be host:port, got %q", c.HTTP.Addr)
		}
	}
	switch {
	case (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == ""):
		return bad("http.tls_cert", "and http.tls_key go together: set both or neither")
	case c.HTTP.MaxConns < 1:
		return bad("http.max_conns", "must be at least 1, got %d", c.HTTP.MaxConns)
	}
	for key, f := range map[string]string{"http.tls_cert": c.HTTP.TLSCert, "http.tls_key": c.HTTP.TLSKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return bad(key, "cannot be read: %v", err)
		}
	}
	d := c.Detector
	switch {
	case d.InputSize < 16 || d.InputSize > 512 || d.InputSize%8 != 0:
		return bad("detector.input_size", "must be a multiple of 8 between 16 and 512, got %d", d.InputSize)
	case d.Epochs < 1:
		return bad("detector.epochs", "must be at least 1, got %d", d.Epochs)
	case d.BatchSize < 1:
		return bad("detector.batch_size", "must be at least 1, got %d", d.BatchSize)
	case !(d.LearningRate > 0 && d.LearningRate < 1):
		return bad("detector.learning_rate", "must be in (0, 1), got %g", d.LearningRate)
	case !(d.HoldoutFraction > 0 && d.HoldoutFraction < 1):
		return bad("detector.holdout_fraction", "must be in (0, 1), got %g", d.HoldoutFraction)
	case !(d.TargetFPR > 0 && d.TargetFPR < 1):
		return bad("detector.target_fpr", "must be in (0, 1), got %g", d.TargetFPR)
	case !(d.UncertainMargin >= 0 && d.UncertainMargin < 1):
		return bad("detector.uncertain_margin", "must be in [0, 1), got %g", d.UncertainMargin)
	case !(d.NormalQuantile > 0 && d.NormalQuantile <= 1):
		return bad("detector.normal_quantile", "must be in (0, 1], got %g", d.NormalQuantile)
	case !(d.UncertainQuantile > 0 && d.UncertainQuantile <= 1):
		return bad("detector.uncertain_quantile", "must be in (0, 1], got %g", d.UncertainQuantile)
	case d.SWAGEpochs < 1:
		return bad("detector.swag_epochs", "must be at least 1, got %d", d.SWAGEpochs)
	case d.SWAGSamples < 0 || d.SWAGSamples > 64:
		return bad("detector.swag_samples", "must be between 0 and 64, got %d", d.SWAGSamples)
	case !(d.CoresetFraction > 0 && d.CoresetFraction <= 1):
		return bad("detector.coreset_fraction", "must be in (0, 1], got %g", d.CoresetFraction)
	case d.Neighbours < 1 || d.Neighbours > 64:
		return bad("detector.neighbours", "must be between 1 and 64, got %d", d.Neighbours)
	case !(d.MemoryWeight >= 0 && d.MemoryWeight <= 1):
		return bad("detector.memory_weight", "must be in [0, 1], got %g", d.MemoryWeight)
	case d.PixelPatch < 0 || d.PixelPatch > d.InputSize:
		return bad("detector.pixel_patch", "must be between 0 and input_size %d, got %d", d.InputSize, d.PixelPatch)
	case d.PixelPatch > 0 && (d.PixelStride < 1 || d.PixelStride > d.PixelPatch):
		return bad("detector.pixel_stride", "must be between 1 and pixel_patch %d, got %d", d.PixelPatch, d.PixelStride)
	case !(d.PixelWeight >= 0 && d.PixelWeight <= 1):
		return bad("detector.pixel_weight", "must be in [0, 1], got %g", d.PixelWeight)
	case d.PixelWeight > 0 && d.PixelPatch == 0:
		return bad("detector.pixel_weight", "must be 0 when pixel_patch is 0, got %g", d.PixelWeight)
	case !(d.NearestWeight >= 0 && d.NearestWeight <= 1):
		return bad("detector.nearest_weight", "must be in [0, 1], got %g", d.NearestWeight)
	case d.NearestShift < 0 || 4*d.NearestShift >= d.InputSize:
		return bad("detector.nearest_shift", "must be at least 0 and less than a quarter of input_size (%d), got %d", d.InputSize, d.NearestShift)
	case !(d.TextureWeight >= 0 && d.TextureWeight <= 1):
		return bad("detector.texture_weight", "must be in [0, 1], got %g", d.TextureWeight)
	case d.PixelWeight+d.NearestWeight+d.TextureWeight > 1:
		return bad("detector.texture_weight", "pixel_weight + nearest_weight + texture_weight must not exceed 1, got %g", d.PixelWeight+d.NearestWeight+d.TextureWeight)
	}
	l := c.Learning
	switch {
	case l.QueriesPerRound < 1:
		return bad("learning.queries_per_round", "must be at least 1, got %d", l.QueriesPerRound)
	case !validStrategy(l.Strategy):
		return bad("learning.strategy", "must be hybrid, uncertainty, boundary, diverse or random, got %q", l.Strategy)
	case l.QueryExpiry.Duration < 0:
		return bad("learning.query_expiry", "must not be negative, got %s", l.QueryExpiry)
	case l.RetrainEveryLabels < 0:
		return bad("learning.retrain_every_labels", "must not be negative, got %d", l.RetrainEveryLabels)
	case l.RetrainEvery.Duration < 0:
		return bad("learning.retrain_every", "must not be negative, got %s", l.RetrainEvery)
	case l.RetrainEveryAdmissions < 0:
		return bad("learning.retrain_every_admissions", "must not be negative, got %d", l.RetrainEveryAdmissions)
	case l.AdmitEvery.Duration < 0:
		return bad("learning.admit_every", "must not be negative, got %s", l.AdmitEvery)
	case !(l.HoldoutFraction > 0 && l.HoldoutFraction < 1):
		return bad("learning.holdout_fraction", "must be in (0, 1), got %g", l.HoldoutFraction)
	case l.HoldoutMinPerClass < 2:
		return bad("learning.holdout_min_per_class", "must be at least 2, got %d", l.HoldoutMinPerClass)
	case !(l.PromotionTolerance >= 0 && l.PromotionTolerance < 1):
		return bad("learning.promotion_tolerance", "must be in [0, 1), got %g", l.PromotionTolerance)
	case !(l.PromotionSignificance >= 0 && l.PromotionSignificance < 1):
		return bad("learning.promotion_significance", "must be in [0, 1), got %g", l.PromotionSignificance)
	case l.AdmitConsecutive < 1:
		return bad("learning.admit_consecutive", "must be at least 1, got %d", l.AdmitConsecutive)
	case math.IsNaN(l.AdmitHeadMaxLogit) || math.IsInf(l.AdmitHeadMaxLogit, 0):
		return bad("learning.admit_head_max_logit", "must be a finite number, got %v", l.AdmitHeadMaxLogit)
	case l.AdmitMaxPerCycle < 0:
		return bad("learning.admit_max_per_cycle", "must not be negative, got %d", l.AdmitMaxPerCycle)
	case l.HeadMinPerClass < 1:
		return bad("learning.head_min_per_class", "must be at least 1, got %d", l.HeadMinPerClass)
	case l.HeadWeightFolds < 0 || l.HeadWeightFolds == 1:
		return bad("learning.head_weight_folds", "must be 0 (off) or at least 2, got %d", l.HeadWeightFolds)
	case !(l.HeadMaxFPR >= 0 && l.HeadMaxFPR < 1):
		return bad("learning.head_max_fpr", "must be in [0, 1), got %g", l.HeadMaxFPR)
	case !(l.HeadShrinkage >= 0):
		return bad("learning.head_shrinkage", "must not be negative, got %g", l.HeadShrinkage)
	case !(l.HeadL2 >= 0):
		return bad("learning.head_l2", "must not be negative, got %g", l.HeadL2)
	case !(l.MaxReviseShare >= 0 && l.MaxReviseShare <= 1):
		return bad("learning.max_revise_share", "must be in [0, 1], got %g", l.MaxReviseShare)
	}
	if err := c.DICOM.validate(); err != nil {
		return err
	}
	if c.Store.URL != "" && !strings.HasPrefix(c.Store.URL, "postgres://") && !strings.HasPrefix(c.Store.URL, "postgresql://") {
		return bad("store.url", "must be a PostgreSQL URL (postgres://…) or empty for the SQLite file, got another scheme")
	}
	if c.Store.ClaimLease.Duration < 2*time.Second {
		return bad("store.claim_lease", "must be at least 2s, got %s", c.Store.ClaimLease.Duration)
	}
	for _, err := range []error{c.Scope.validate(), c.Decisions.validate(), c.Reports.validate()} {
		if err != nil {
			return err
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	return nil
}

func validStrategy(s string) bool {
	switch s {
	case "hybrid", "uncertainty", "boundary", "diverse", "random":
		return true
	}
	return false
}

// Resolved holds the absolute locations derived from a Config.
type Resolved struct {
	Inbox      []string
	Archive    string
	Reports    string
	Quarantine string
	Models     string
	Database   string
}

// Resolve turns the configured paths into absolute ones, filling each empty
// one with its default inside the workspace.
func (c Config) Resolve() (Resolved, error) {
	ws, err := filepath.Abs(c.Workspace)
	if err != nil {
		return Resolved{}, fmt.Errorf("config: workspace %q: %w", c.Workspace, err)
	}
	at := func(p, def string) string {
		if p == "" {
			p = def
		}
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(ws, p)
	}
	r := Resolved{
		Reports:    at(c.Paths.Reports, "reports"),
		Quarantine: at(c.Paths.Quarantine, "quarantine"),
		Models:     at(c.Paths.Models, "models"),
		Database:   at(c.Paths.Database, "state.db"),
	}
	if c.Paths.Archive != "" {
		r.Archive = at(c.Paths.Archive, "")
	}
	if len(c.Paths.Inbox) == 0 {
		r.Inbox = []string{at("", "inbox")}
	}
	for _, p := range c.Paths.Inbox {
		r.Inbox = append(r.Inbox, at(p, ""))
	}
	return r, nil
}

// Prepare creates the folders of r that do not exist yet.
func (r Resolved) Prepare() error {
	dirs := append([]string{r.Reports, r.Quarantine, r.Models, filepath.Dir(r.Database)}, r.Inbox...)
	if r.Archive != "" {
		dirs = append(dirs, r.Archive)
	}
	var errs []error
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o750); err != nil {
			errs = append(errs, fmt.Errorf("config: create %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
