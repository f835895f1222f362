package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

// LearnModel is a trained model as the learning loop needs it.
type LearnModel interface {
	Scorer
	// CalibrationScores are the scores of the normals the model held out
	// from training to set its threshold.
	CalibrationScores() []float64
	// CalibrationUncertainties are those normals' uncertainties (empty
	// when the model gives none).
	CalibrationUncertainties() []float64
	Save(path string) error
}

// TrainFunc trains a model on normal images; ids name the images, in the
// same order, so tests can see exactly what trained.
type TrainFunc func(ctx context.Context, ids []string, images []sentinel.Image, verified int) (LearnModel, error)

// DetectorTrainer returns the TrainFunc that trains the detector with cfg.
func DetectorTrainer(cfg detector.TrainConfig) TrainFunc {
	return func(ctx context.Context, _ []string, images []sentinel.Image, verified int) (LearnModel, error) {
		c := cfg
		c.Verified = verified
		return detector.Train(ctx, images, c)
	}
}

// LearningOptions are the learning loop's settings as plain values.
type LearningOptions struct {
	ModelsDir string
	Decode    Decoder
	Resample  Resampler
	Train     TrainFunc
	// Load reads a model file (LoadLearnModel when nil).
	Load      func(path string) (LearnModel, error)
	Embedder  learn.Embedder
	Holdout   learn.HoldoutConfig
	Head      learn.HeadConfig
	Promotion learn.PromotionConfig
	Gates     learn.GateConfig
	// TargetFPR sets the threshold on the seed-calibrated score while too
	// few abnormals are labelled.
	TargetFPR float64
	// Decisions is the decision policy reports apply (decide.go), with
	// which a candidate's effect on recent reports is previewed.
	Decisions DecisionPolicy
	// ReviseWithin is the window of recent reports a candidate is
	// compared with (0: a week); MaxReviseShare, when positive, is the
	// largest share of them a promotion may revise on its own.
	ReviseWithin   time.Duration
	MaxReviseShare float64
	// DryRun trains and measures a candidate and lists the reports it
	// would revise, but saves nothing and promotes nothing.
	DryRun bool
	Logger *slog.Logger
}

func (o *LearningOptions) log() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// LoadLearnModel loads a detector model file.
func LoadLearnModel(path string) (LearnModel, error) { return detector.Load(path) }

// learnSidecar is what the learning loop keeps beside a model file: how to
// combine its score with the supervised head, and how it evaluated.
type learnSidecar struct {
	Combiner   *learn.Combiner  `json:"combiner"`
	Evaluation learn.Evaluation `json:"evaluation"`
	Verdict    learn.Verdict    `json:"verdict"`
}

func sidecarPath(modelPath string) string {
	return strings.TrimSuffix(modelPath, ".model") + ".learn.json"
}

func readSidecar(modelPath string) (*learnSidecar, error) {
	b, err := os.ReadFile(sidecarPath(modelPath))
	if err != nil {
		return nil, err
	}
	var s learnSidecar
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read %s: %w", sidecarPath(modelPath), err)
	}
	return &s, nil
}

// image loads and resamples one file for model m.
func (o *LearningOptions) image(path string, side int) (string, sentinel.Image, error) {
	inst, img, err := o.Decode(path)
	if err != nil {
		return "", sentinel.Image{}, err
	}
	return inst.ID, o.Resample(img, side, side), nil
}

// ImportReport says what a labels import did.
type ImportReport struct {
	// Rows counts the file's rows; Added and Unchanged count labels, which
	// a row naming a study gives each of its instances.
	Rows, Added, Unchanged int
	// Undone lists the admissions a label contradicted.
	Undone []string
	// Errors are the rows not imported, by line.
	Errors []learn.RowError
}

// ImportLabels matches each row's key to an instance and stores its label;
// a row that names a study (learn.LabelRow.StudyLevel) labels every
// instance of the study the workspace holds. Re-importing the same rows
// changes nothing (and labels a study's late instances). Rows whose key is
// unknown, or names one image but matches several, are reported by line and
// the others still import. After the import, any admission the resolved
// labels now contradict is undone.
func ImportLabels(ctx context.Context, db *store.DB, rows []learn.LabelRow, bad []learn.RowError, source string) (ImportReport, error) {
	rep := ImportReport{Rows: len(rows) + len(bad), Errors: bad}
	for _, r := range rows {
		ids, err := db.FindInstances(ctx, r.Key, r.KeyValue)
		if err != nil {
			return rep, err
		}
		switch {
		case len(ids) == 0:
			rep.Errors = append(rep.Errors, learn.RowError{Line: r.Line, Err: fmt.Errorf("%w: no instance with %s %q", learn.ErrUnknownKey, r.Key, r.KeyValue)})
			continue
		case len(ids) > 1 && !r.StudyLevel():
			rep.Errors = append(rep.Errors, learn.RowError{Line: r.Line, Err: fmt.Errorf("%w: %s %q matches %d instances", learn.ErrAmbiguous, r.Key, r.KeyValue, len(ids))})
			continue
		}
		// A study's reading labels each of its images.
		for _, id := range ids {
			added, err := db.AddLabel(ctx, sentinel.Label{InstanceID: id, Value: r.Value, Finding: r.Finding,
				Reader: r.Reader, Time: r.Time, Source: source})
			if err != nil {
				return rep, err
			}
			if added {
				rep.Added++
			} else {
				rep.Unchanged++
			}
		}
	}
	sortRowErrors(rep.Errors)
	undone, err := UndoContradictedAdmissions(ctx, db)
	rep.Undone = undone
	return rep, err
}

func sortRowErrors(es []learn.RowError) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].Line < es[j-1].Line; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// UndoContradictedAdmissions undoes every admission whose case's resolved
// label (see learn.Resolve) is abnormal, and returns their ids.
func UndoContradictedAdmissions(ctx context.Context, db *store.DB) ([]string, error) {
	labels, err := db.AllLabels(ctx)
	if err != nil {
		return nil, err
	}
	adm, err := db.Admissions(ctx, store.AdmissionAdmitted)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(adm))
	for i, a := range adm {
		ids[i] = a.InstanceID
	}
	var undone []string
	for _, id := range learn.Contradicted(ids, learn.ResolveAll(labels)) {
		if ok, err := db.UndoAdmission(ctx, id, "labelled abnormal by a reader"); err != nil {
			return undone, err
		} else if ok {
			undone = append(undone, id)
		}
	}
	return undone, nil
}

// currentModel loads the active model, or returns ErrNoModel.
func currentModel(ctx context.Context, db *store.DB, opt LearningOptions) (LearnModel, sentinel.ModelInfo, int, error) {
	info, err := db.ActiveModel(ctx)
	if err != nil {
		return nil, info, 0, err
	}
	load := opt.Load
	if load == nil {
		load = LoadLearnModel
	}
	path := info.Path
	if path == "" {
		path = filepath.Join(opt.ModelsDir, SafeName(info.Version)+".model")
	}
	info.Path = path
	m, err := load(path)
	if err != nil {
		return nil, info, 0, fmt.Errorf("load current model %s: %w", info.Version, err)
	}
	return m, info, m.InputSize(), nil
}

// imageCache loads instance images once per input size.
type imageCache struct {
	opt   LearningOptions
	paths map[string]string
	side  int
	imgs  map[string]sentinel.Image
}

func newImageCache(opt LearningOptions, paths map[string]string, side int) *imageCache {
	return &imageCache{opt: opt, paths: paths, side: side, imgs: map[string]sentinel.Image{}}
}

func (c *imageCache) get(id string) (sentinel.Image, error) {
	if img, ok := c.imgs[id]; ok {
		return img, nil
	}
	p, ok := c.paths[id]
	if !ok {
		return sentinel.Image{}, fmt.Errorf("no file known for %s", id)
	}
	_, img, err := c.opt.image(p, c.side)
	if err != nil {
		return sentinel.Image{}, fmt.Errorf("%s: %w", p, err)
	}
	c.imgs[id] = img
	return img, nil
}

// load returns the images of ids that could be read, skipping the others
// with a warning.
func (c *imageCache) load(ids []string, log *slog.Logger) ([]string, []sentinel.Image) {
	var okIDs []string
	var out []sentinel.Image
	for _, id := range ids {
		img, err := c.get(id)
		if err != nil {
			log.Warn("learning image skipped", slog.String("instance", id), slog.Any("error", err))
			continue
		}
		okIDs = append(okIDs, id)
		out = append(out, img)
	}
	return okIDs, out
}

func (o *LearningOptions) embed(img sentinel.Image) []float32 {
	if o.Embedder == nil {
		return learn.Thumbnail{Side: 16}.Embed(img)
	}
	return o.Embedder.Embed(img)
}

// heldOutBy returns the indices, among the images m was trained with, of
// those it held out for calibration (see detector.Model.HeldOut). A model
// that cannot say is taken to have trained on all of them.
func heldOutBy(m LearnModel) []int {
	if h, ok := m.(interface{ HeldOut() []int }); ok {
		return h.HeldOut()
	}
	return nil
}
