package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/internal/parallel"
	"github.com/sentinel-pacs/sentinel/store"
)

// CurrentModelFile names the file in the models folder holding the file
// name of the model in use.
const CurrentModelFile = "CURRENT"

// TrainOptions says what to train on and where the model goes.
type TrainOptions struct {
	Files     []string
	ModelsDir string
	Detector  detector.TrainConfig
	Decode    Decoder
	Resample  Resampler
	Workers   int
	Logger    *slog.Logger
}

// Train loads the normal images, trains a model on them, saves it in the
// models folder, makes it current and records it and the training run in
// db. Files that cannot be decoded are skipped with a warning.
func Train(ctx context.Context, db *store.DB, opt TrainOptions) (sentinel.ModelInfo, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	images, err := loadImages(ctx, opt, log)
	if err != nil {
		return sentinel.ModelInfo{}, err
	}
	run, err := db.StartTrainingRun(ctx, len(images))
	if err != nil {
		return sentinel.ModelInfo{}, err
	}
	m, err := detector.Train(ctx, images, opt.Detector)
	if err != nil {
		ferr := db.FinishTrainingRun(context.WithoutCancel(ctx), run, "", "failed", nil)
		return sentinel.ModelInfo{}, errors.Join(fmt.Errorf("train: %w", err), ferr)
	}
	info := m.Info()
	name := SafeName(info.Version) + ".model"
	path := filepath.Join(opt.ModelsDir, name)
	if err := m.Save(path); err != nil {
		return info, fmt.Errorf("save model: %w", err)
	}
	if err := writeAtomic(filepath.Join(opt.ModelsDir, CurrentModelFile), []byte(name+"\n")); err != nil {
		return info, fmt.Errorf("make model current: %w", err)
	}
	info.Path = path
	if err := db.SaveModel(ctx, info, true); err != nil {
		return info, err
	}
	if err := db.FinishTrainingRun(ctx, run, info.Version, "done", info.Metrics); err != nil {
		return info, err
	}
	return info, nil
}

// loadImages decodes and resamples the training files in parallel.
func loadImages(ctx context.Context, opt TrainOptions, log *slog.Logger) ([]sentinel.Image, error) {
	size := opt.Detector.InputSize
	imgs := make([]sentinel.Image, len(opt.Files))
	errs, err := parallel.Each(ctx, len(opt.Files), opt.Workers, func(i int) error {
		_, img, err := opt.Decode(opt.Files[i])
		if err != nil {
			return err
		}
		imgs[i] = opt.Resample(img, size, size)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []sentinel.Image
	for i, img := range imgs {
		if errs[i] != nil {
			if errors.Is(errs[i], os.ErrNotExist) {
				log.Warn("training image missing", slog.String("path", opt.Files[i]))
			} else {
				log.Warn("training image skipped", slog.String("path", opt.Files[i]), slog.Any("error", errs[i]))
			}
			continue
		}
		out = append(out, img)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("train: none of the %d files could be read", len(opt.Files))
	}
	log.Info("training images loaded", slog.Int("images", len(out)), slog.Int("skipped", len(opt.Files)-len(out)))
	return out, nil
}

// LoadCurrentModel loads the model the models folder names as current. With
// none, the error wraps sentinel.ErrNoModel.
func LoadCurrentModel(modelsDir string) (*detector.Model, error) {
	path, err := CurrentModelPath(modelsDir)
	if err != nil {
		return nil, err
	}
	m, err := detector.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	return m, nil
}

// CurrentModelPath returns the path of the model file the models folder
// names as current. With none, the error wraps sentinel.ErrNoModel.
func CurrentModelPath(modelsDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(modelsDir, CurrentModelFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w in %s", sentinel.ErrNoModel, modelsDir)
	}
	if err != nil {
		return "", fmt.Errorf("read current model: %w", err)
	}
	name := strings.TrimSpace(string(b))
	if name == "" || filepath.Base(name) != name {
		return "", fmt.Errorf("%s names %q, which is not a model file in %s", CurrentModelFile, name, modelsDir)
	}
	return filepath.Join(modelsDir, name), nil
}
