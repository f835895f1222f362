package detector

import (
	"context"
	"math/rand"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// testSide is the input size of the models the tests train: small enough to
// train in about two seconds, large enough for three stages.
const testSide = 32

// testConfig returns a configuration that trains quickly on testSide images.
func testConfig() TrainConfig {
	cfg := DefaultTrainConfig()
	cfg.InputSize = testSide
	cfg.Epochs = 20
	cfg.Channels = []int{8, 16, 16}
	// The synthetic lesions are uniform bright squares: per-patch
	// standardisation (the cxr8 default) makes them look like flat normal
	// tissue, so the tests keep the pixel memory on raw standardised
	// patches.
	cfg.PixelLocal = false
	// The tests' models score the memory bank with every SWAG sample, so
	// that the save, load and calibration tests cover that path.
	cfg.SampledMemory = true
	return cfg
}

// shared is one model trained on synthetic normals, with held-out normals
// and lesioned images that it never saw, for the tests that only read it.
var shared struct {
	once     sync.Once
	model    *Model
	progress []Progress
	train    []sentinel.Image
	normals  []sentinel.Image
	lesions  []sentinel.Image
	err      error
}

// sharedModel trains the shared model on first use.
func sharedModel(t testing.TB) *Model {
	t.Helper()
	shared.once.Do(func() {
		rng := rand.New(rand.NewSource(7))
		train := synthImages(rng, 60, testSide, false)
		shared.train = train
		shared.normals = synthImages(rng, 30, testSide, false)
		shared.lesions = synthImages(rng, 30, testSide, true)
		cfg := testConfig()
		cfg.Progress = func(p Progress) { shared.progress = append(shared.progress, p) }
		shared.model, shared.err = Train(context.Background(), train, cfg)
	})
	if shared.err != nil {
		t.Fatalf("train shared model: %v", shared.err)
	}
	return shared.model
}

// scoreAll scores images with m and returns their values.
func scoreAll(t testing.TB, m *Model, images []sentinel.Image) []float64 {
	t.Helper()
	v := make([]float64, len(images))
	for i, img := range images {
		s, err := m.Score(img)
		if err != nil {
			t.Fatalf("score image %d: %v", i, err)
		}
		v[i] = s.Value
	}
	return v
}

// checkCalibration checks that l, a model loaded from m's file, scores the
// images m held out (the first CalibImages of a permutation of train drawn
// from seed, as Train holds them out) exactly as m's calibration saved them.
func checkCalibration(t *testing.T, m, l *Model, train []sentinel.Image, seed int64) {
	t.Helper()
	want := m.CalibrationScores()
	order := rand.New(rand.NewSource(seed)).Perm(len(train))
	for i, j := range order[:m.Info().CalibImages] {
		s, err := l.Score(train[j])
		if err != nil {
			t.Fatal(err)
		}
		if s.Value != want[i] {
			t.Errorf("held-out image %d: loaded model scores %v, calibration saved %v", i, s.Value, want[i])
		}
	}
}

// reload saves m to a temporary file and loads it back.
func reload(t *testing.T, m *Model) *Model {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.model")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
