package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README's first command, small: it trains, runs the agent on dropped
// studies, reports them, and runs the learning loop once; a second run
// starts again from an empty demo workspace, and a folder that is not one
// is refused.
func TestDemo(t *testing.T) {
	ws := filepath.Join(t.TempDir(), "demo")
	args := []string{"demo", "--workspace", ws, "--normals", "16", "--studies", "4", "--size", "64"}
	for run := range 2 {
		out, errOut, code := sentinelCmd(t, args...)
		if code != 0 {
			t.Fatalf("run %d: demo exited %d\n%s\n%s", run, code, out, errOut)
		}
		for _, want := range []string{"2/5 training", "4/5 results", "AUROC on these 8 images",
			"copy of an image already seen: duplicate", "broken file: failed",
			"5/5 learning from a radiologist", "answers for 4 studies by accession number", "8 labels, one per film",
			"retrained: model "} {
			if !strings.Contains(out, want) {
				t.Errorf("run %d: output lacks %q:\n%s", run, want, out)
			}
		}
		if (strings.Contains(out, " promoted (") || strings.Contains(out, "a person looks and makes it current")) &&
			!strings.Contains(out, "the new model compared with the 8 earlier reports") {
			t.Errorf("run %d: a promoted model compared no reports:\n%s", run, out)
		}
		for _, f := range []string{"worklist.csv", "answers.csv", "state.db"} {
			if _, err := os.Stat(filepath.Join(ws, f)); err != nil {
				t.Errorf("run %d: %v", run, err)
			}
		}
	}
	out, _, _ := sentinelCmd(t, "status", "--workspace", ws)
	if !strings.Contains(out, "8 labels on 8 cases (") || !strings.Contains(out, "last retrain cycle") {
		t.Errorf("status after the demo:\n%s", out)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "keep.txt"), []byte("mine"), 0o644)
	if _, errOut, code := sentinelCmd(t, "demo", "--workspace", other); code == 0 || !strings.Contains(errOut, "not a demo workspace") {
		t.Fatalf("demo in a foreign folder: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(other, "keep.txt")); err != nil {
		t.Fatalf("demo touched a foreign folder: %v", err)
	}
}
