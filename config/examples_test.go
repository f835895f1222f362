package config

import (
	"path/filepath"
	"testing"
)

// TestExamplesLoad loads every configuration in examples/ as a command
// would, and checks that each says what the docs say it does.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("examples: %d files, want at least pneumoniamnist.toml and cxr8.toml", len(files))
	}
	loaded := map[string]Config{}
	for _, f := range files {
		cfg, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if _, err := cfg.Resolve(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		loaded[filepath.Base(f)] = cfg
	}
	def := Default().Detector
	if pm, ok := loaded["pneumoniamnist.toml"]; !ok {
		t.Error("no examples/pneumoniamnist.toml")
	} else if d := pm.Detector; d.InputSize != 32 || !d.Standardise || d.PixelPatch != 0 || d.NearestWeight != 0.5 ||
		d.NearestShift != 4 || !d.SampledMemory || d.MemoryWeight != 1 || d.TextureWeight != 0.25 {
		t.Errorf("pneumoniamnist.toml: detector %+v", d)
	}
	// cxr8's detector is measured at the defaults: the example only
	// writes them out. Both examples set the promotion rule the learning
	// figures are measured with, and no other learning setting.
	want := Default().Learning
	want.PromoteOnlyIfBetter, want.MaxReviseShare = false, 0
	if c, ok := loaded["cxr8.toml"]; !ok {
		t.Error("no examples/cxr8.toml")
	} else if c.Detector != def {
		t.Errorf("cxr8.toml differs from the defaults:\n got %+v\nwant %+v", c.Detector, def)
	}
	for name, c := range loaded {
		if c.Learning != want {
			t.Errorf("%s: learning %+v, want the defaults with promote_only_if_better = false and max_revise_share = 0", name, c.Learning)
		}
	}
}
