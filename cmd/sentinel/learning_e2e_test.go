package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/agent"
)

// The learning loop as an integrator runs it, command by command with the
// real binary on a real workspace: ingest, export a worklist, import the
// radiologists' answers (with a bad row), retrain, admit, list and roll
// back models.
func TestLearningWorkflowEndToEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(11), 0))
	ws := trainWorkspace(t, rng)
	pool := filepath.Join(t.TempDir(), "pool")
	files := writePhantoms(t, rng, pool, 10, "normal")
	files = append(files, writePhantoms(t, rng, pool, 10, "nodule")...)
	run := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := sentinelCmd(t, args...)
		if code != wantCode {
			t.Fatalf("sentinel %v exited %d, want %d\n%s\n%s", args, code, wantCode, out, errOut)
		}
		return out, errOut
	}
	if out, _ := run(0, "ingest", pool, "--workspace", ws); !strings.Contains(out, "done=20") {
		t.Fatalf("ingest: %s", out)
	}

	worklist := filepath.Join(t.TempDir(), "worklist.csv")
	run(0, "queries", "export", "--workspace", ws, "--n", "6", "--out", worklist)
	rows := readCSV(t, worklist)
	if !slices.Equal(rows[0], agent.WorklistColumns) || len(rows) != 7 {
		t.Fatalf("worklist: %d rows, header %v", len(rows), rows[0])
	}
	for _, r := range rows[1:] {
		if r[2] == "" || r[3] == "" || r[11] == "" {
			t.Errorf("worklist row without file, SOP Instance UID or reason: %v", r)
		}
	}

	// The answers: every pool file by name (labels may come for cases never
	// asked about), and one file the workspace never saw, on line 22.
	labels := filepath.Join(t.TempDir(), "labels.csv")
	var b strings.Builder
	b.WriteString("file,label,reader,time\n")
	for _, f := range files {
		v := "normal"
		if strings.HasPrefix(filepath.Base(f), "nodule") {
			v = "abnormal"
		}
		fmt.Fprintf(&b, "%s,%s,dr-a,2026-11-02T09:00:00Z\n", filepath.Base(f), v)
	}
	b.WriteString("never-seen.dcm,normal,dr-a,2026-11-02T09:00:00Z\n")
	if err := os.WriteFile(labels, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut := run(1, "labels", "import", "--workspace", ws, labels)
	if !strings.Contains(out, "21 rows: 20 labels added, 0 already imported, 1 rejected") || !strings.Contains(errOut, "labels.csv:22:") {
		t.Fatalf("labels import:\n%s\n%s", out, errOut)
	}
	if out, _ = run(1, "labels", "import", "--workspace", ws, labels); !strings.Contains(out, "0 labels added, 20 already imported") {
		t.Fatalf("labels import again: %s", out)
	}
	// Every query is answered: the open worklist is empty.
	run(0, "queries", "export", "--workspace", ws, "--n", "0", "--out", worklist)
	if rows := readCSV(t, worklist); len(rows) != 1 {
		t.Fatalf("open worklist after the answers: %v", rows)
	}

	if out, _ = run(0, "retrain", "--workspace", ws, "--epochs", "2"); !strings.Contains(out, "candidate ") ||
		!(strings.Contains(out, "promoted: ") || strings.Contains(out, "rejected: ")) {
		t.Fatalf("retrain: %s", out)
	}
	out, _ = run(0, "models", "list", "--workspace", ws, "--json")
	var models []struct {
		Active bool `json:"active"`
		Model  struct {
			Version string `json:"version"`
		} `json:"model"`
	}
	if err := json.Unmarshal([]byte(out), &models); err != nil || len(models) != 2 {
		t.Fatalf("models list: %v\n%s", err, out)
	}
	for range 2 {
		if out, _ = run(0, "admit", "--workspace", ws); !strings.Contains(out, "admission cycle") {
			t.Fatalf("admit: %s", out)
		}
	}
	first := models[0].Model.Version
	if out, _ = run(0, "models", "rollback", "--workspace", ws, first); !strings.Contains(out, "model "+first+" is current again") {
		t.Fatalf("rollback: %s", out)
	}
	out, _ = run(0, "models", "list", "--workspace", ws, "--json")
	json.Unmarshal([]byte(out), &models)
	for _, m := range models {
		if m.Active != (m.Model.Version == first) {
			t.Fatalf("after rolling back to %s: %s", first, out)
		}
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
