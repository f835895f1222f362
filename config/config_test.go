package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The example file documents every key with its default, so loading it must
// give exactly Default().
func TestExampleMatchesDefault(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "agent.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	// The example spells out the default locations that Default() leaves
	// empty for Resolve to fill in; they must resolve to the same places.
	got, _ := cfg.Resolve()
	def, _ := want.Resolve()
	if !reflect.DeepEqual(got, def) {
		t.Fatalf("example paths resolve to %+v, defaults to %+v", got, def)
	}
	cfg.Paths = want.Paths
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("example differs from Default():\n got %+v\nwant %+v", cfg, want)
	}
}

func TestExampleDocumentsPaths(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "agent.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"reports =", "quarantine =", "models =", "database =", "inbox ="} {
		if !strings.Contains(string(b), key) {
			t.Errorf("example does not document %q", key)
		}
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, body, key string
	}{
		{"unknown top-level", "colour = \"red\"\n", "colour"},
		{"unknown nested", "[ingest]\nworkerz = 3\n", "ingest.workerz"},
		{"bad workers", "[ingest]\nworkers = 0\n", "ingest.workers"},
		{"bad duration", "[ingest]\nstable_for = \"soon\"\n", "stable_for"},
		{"negative stable", "[ingest]\nstable_for = \"-1s\"\n", "ingest.stable_for"},
		{"negative revision window", "[ingest]\nrevise_within = \"-1h\"\n", "ingest.revise_within"},
		{"bad input size", "[detector]\ninput_size = 30\n", "detector.input_size"},
		{"bad fpr", "[detector]\ntarget_fpr = 1.5\n", "detector.target_fpr"},
		{"shift too large", "[detector]\ninput_size = 32\nnearest_shift = 8\n", "detector.nearest_shift"},
		{"negative shift", "[detector]\nnearest_shift = -1\n", "detector.nearest_shift"},
		{"head bound not finite", "[learning]\nadmit_head_max_logit = nan\n", "learning.admit_head_max_logit"},
		{"bad log format", "[log]\nformat = \"xml\"\n", "log.format"},
		{"wrong type", "[ingest]\nworkers = \"two\"\n", "workers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.toml")
			if err := os.WriteFile(p, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error %q does not name %q", err, tt.key)
			}
		})
	}
}

func TestValidationErrorType(t *testing.T) {
	c := Default()
	c.Detector.Epochs = 0
	var ve *ValidationError
	if err := c.Validate(); !errors.As(err, &ve) || ve.Key != "detector.epochs" {
		t.Fatalf("Validate() = %v, want ValidationError for detector.epochs", err)
	}
}

func TestResolve(t *testing.T) {
	ws := t.TempDir()
	c := Default()
	c.Workspace = ws
	c.Paths.Reports = "/abs/reports"
	c.Paths.Inbox = []string{"a", "/b"}
	r, err := c.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := Resolved{
		Inbox:      []string{filepath.Join(ws, "a"), "/b"},
		Reports:    "/abs/reports",
		Quarantine: filepath.Join(ws, "quarantine"),
		Models:     filepath.Join(ws, "models"),
		Database:   filepath.Join(ws, "state.db"),
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("Resolve() = %+v, want %+v", r, want)
	}
	c.Paths = Paths{}
	r, _ = c.Resolve()
	if len(r.Inbox) != 1 || r.Inbox[0] != filepath.Join(ws, "inbox") {
		t.Fatalf("default inbox = %v", r.Inbox)
	}
	if err := r.Prepare(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{r.Inbox[0], r.Reports, r.Quarantine, r.Models} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("%s not created: %v", d, err)
		}
	}
}
