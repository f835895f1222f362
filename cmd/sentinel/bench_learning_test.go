package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/internal/phantom"
)

// TestBenchLearningPhantoms runs the learning benchmark end to end on
// phantom PNGs (seed normals, a pool of normals and nodules, an evaluation
// split): each run is a workspace of its own that trains on the seed
// normals and ingests the pool, and each round asks its budget of
// questions, answers them from the file, admits, and retrains through the
// promotion gate. The JSON rows carry the figures.
func TestBenchLearningPhantoms(t *testing.T) {
	got := benchPhantoms(t, "--per-round", "6", "--strategy", "hybrid")
	for i, r := range got {
		if r.Round != i || r.Labels != 6*i || r.Strategy != "hybrid" || !r.Admission || r.Unanswered != 0 {
			t.Errorf("row %d: round %d, %d labels (%d unanswered), strategy %q", i, r.Round, r.Labels, r.Unanswered, r.Strategy)
		}
		if r.ROCAUC < 0 || r.ROCAUC > 1 || r.FP < 0 || r.FP > 6 || r.TP < 0 || r.TP > 6 || r.Model == "" {
			t.Errorf("row %d: model %q, ROC-AUC %v, %d FP, %d TP", i, r.Model, r.ROCAUC, r.FP, r.TP)
		}
		if i == 0 {
			if r.Promoted != nil || r.Holdout != 0 || r.TrainNormals != 16 {
				t.Errorf("round 0: promoted %v, holdout %d, %d training normals", r.Promoted, r.Holdout, r.TrainNormals)
			}
			continue
		}
		// The candidate trains on the seed normals, the labelled normals
		// outside the holdout and the admitted cases.
		if want := 16 + r.Labels - r.Abnormals - r.HoldoutNormals + r.Admitted; r.TrainNormals != want {
			t.Errorf("row %d: %d training normals, want 16 seed + %d labelled normals - %d in the holdout + %d admitted",
				i, r.TrainNormals, r.Labels-r.Abnormals, r.HoldoutNormals, r.Admitted)
		}
		if r.Promoted == nil || r.Verdict == "" {
			t.Fatalf("row %d: no promotion verdict: %+v", i, r)
		}
		// A candidate kept out of use is measured beside the model in use.
		if (r.CandidateROCAUC != nil) == *r.Promoted {
			t.Errorf("row %d: promoted %v, candidate ROC-AUC %v", i, *r.Promoted, r.CandidateROCAUC)
		}
	}
	// A case is admitted after passing two cycles in a row: none before
	// round 2, and on these phantoms some then.
	if got[1].Admitted != 0 || got[2].Admitted == 0 {
		t.Errorf("admitted %d, %d cases by rounds 1, 2", got[1].Admitted, got[2].Admitted)
	}
}

// TestBenchLearningPromotion runs the benchmark without admission and
// with a promotion rule that takes any candidate not shown worse: the
// holdout grows with the labels, a fifth of each class.
func TestBenchLearningPromotion(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "notworse.toml")
	if err := os.WriteFile(cfg, []byte("[learning]\npromote_only_if_better = false\nmax_revise_share = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := benchPhantoms(t, "--per-round", "10", "--strategy", "random", "--admit=false", "--config", cfg)
	for i, r := range got[1:] {
		if r.Admitted != 0 {
			t.Errorf("round %d: %d admitted without admission", i+1, r.Admitted)
		}
		if r.Promoted == nil {
			t.Fatalf("round %d: no verdict", i+1)
		}
	}
	// A fifth of each class's labels, rounded, per class: 10 labels hold
	// out 1 to 3, 20 labels 3 to 5.
	if h1, h2 := got[1].Holdout, got[2].Holdout; h1 < 1 || h1 > 3 || h2 < 3 || h2 > 5 {
		t.Errorf("holdout of %d after 10 labels and %d after 20", h1, h2)
	}
	// Without a holdout large enough to tell, a candidate not shown worse
	// on the seed normals is promoted under this rule.
	if !*got[1].Promoted || got[1].Model == got[0].Model {
		t.Errorf("round 1: promoted %v (%s), model %s after %s", *got[1].Promoted, got[1].Verdict, got[1].Model, got[0].Model)
	}
}

// benchPhantoms runs two rounds of bench learning with the given flags on
// phantom PNGs (16 seed normals, a pool of 14 normals and 10 nodules, an
// evaluation split of 6 and 6) and returns its JSON rows, one per round.
func benchPhantoms(t *testing.T, flags ...string) []benchRound {
	t.Helper()
	got := benchPhantomRows(t, flags...)
	if len(got) != 3 {
		t.Fatalf("%d rows, want rounds 0, 1 and 2: %+v", len(got), got)
	}
	return got
}

// benchPhantomRows runs two rounds of bench learning with the given flags
// on the phantoms of benchPhantoms and returns every JSON row.
func benchPhantomRows(t *testing.T, flags ...string) []benchRound {
	t.Helper()
	data := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	var rows []string
	add := func(n int, kind phantom.Kind, split, finding string) {
		for _, f := range writePhantomPNGs(t, data, rng, n, kind, split) {
			rows = append(rows, f+","+finding+","+split)
		}
	}
	add(16, phantom.Normal, "seed", "normal")
	add(14, phantom.Normal, "pool", "normal")
	add(10, phantom.Nodule, "pool", "nodule")
	add(6, phantom.Normal, "dev", "normal")
	add(6, phantom.Nodule, "dev", "nodule")
	labels := filepath.Join(data, "labels.csv")
	if err := os.WriteFile(labels, []byte("file,finding,split\n"+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"bench", "learning", "--workspace", t.TempDir(), "--labels", labels, "--images", data,
		"--rounds", "2", "--epochs", "3", "--input", "32", "--json"}, flags...)
	out, errOut, code := sentinelCmd(t, args...)
	if code != exitOK {
		t.Fatalf("bench learning exited %d: %s", code, errOut)
	}
	var got []benchRound
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r benchRound
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, r)
	}
	return got
}

// TestBenchLearningPlot runs two strategies with two seeds each and draws
// their learning curves: every run reports its seed and rounds, and the
// picture is written.
func TestBenchLearningPlot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pictures")
	got := benchPhantomRows(t, "--per-round", "6", "--strategy", "random,uncertainty", "--seeds", "2", "--seed", "7", "--plot", dir)
	if len(got) != 12 {
		t.Fatalf("%d rows, want 2 strategies × 2 seeds × 3 rounds", len(got))
	}
	for i, r := range got {
		st, seed := []string{"random", "uncertainty"}[i/6], int64(7+(i/3)%2)
		if r.Strategy != st || r.Seed != seed || r.Round != i%3 || r.Labels != 6*(i%3) {
			t.Errorf("row %d: %s seed %d round %d with %d labels, want %s seed %d round %d", i, r.Strategy, r.Seed, r.Round, r.Labels, st, seed, i%3)
		}
	}
	// Round 0 trains on the seed normals alone: a strategy does not
	// change it, a seed may.
	if got[0].ROCAUC != got[6].ROCAUC || got[3].ROCAUC != got[9].ROCAUC {
		t.Errorf("round 0 ROC-AUC differs between strategies of the same seed: %v %v, %v %v", got[0].ROCAUC, got[6].ROCAUC, got[3].ROCAUC, got[9].ROCAUC)
	}
	checkPicture(t, filepath.Join(dir, "learning.png"))
	if _, err := os.Stat(filepath.Join(dir, "learning.svg")); err != nil {
		t.Error(err)
	}
	// A strategy that does not exist, or no seed, is a usage error.
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{{"--strategy", "random,bogus"}, {"--seeds", "0"}, {"--keep", full}} {
		args := append([]string{"bench", "learning", "--workspace", t.TempDir(), "--labels", filepath.Join(t.TempDir(), "none.csv")}, flags...)
		if _, _, code := sentinelCmd(t, args...); code != exitUsage {
			t.Errorf("bench learning %v exited %d, want %d", flags, code, exitUsage)
		}
	}
}

// The learning curves' series group the runs by strategy, in the order
// they ran, with every seed's ROC-AUC at each round.
func TestLearningSeries(t *testing.T) {
	run := func(st string, seed int64, aucs ...float64) []benchRound {
		var out []benchRound
		for i, a := range aucs {
			out = append(out, benchRound{Round: i, Strategy: st, Seed: seed, Labels: 10 * i, ROCAUC: a})
		}
		return out
	}
	runs := [][]benchRound{run("hybrid", 1, 0.6, 0.7), run("random", 1, 0.6, 0.65), run("hybrid", 2, 0.62, 0.72)}
	got := learningSeries(runs, false)
	if len(got) != 2 || got[0].Label != "hybrid" || got[1].Label != "random" {
		t.Fatalf("series %+v", got)
	}
	if fmt.Sprint(got[0].X, got[0].Y) != "[0 10] [[0.6 0.62] [0.7 0.72]]" || fmt.Sprint(got[1].X, got[1].Y) != "[0 10] [[0.6] [0.65]]" {
		t.Errorf("series %+v", got)
	}
	if byRound := learningSeries(runs, true); fmt.Sprint(byRound[0].X) != "[0 1]" {
		t.Errorf("by round: x %v", byRound[0].X)
	}
}
