package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
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
	col := func(r []string, name string) string { return r[slices.Index(agent.WorklistColumns, name)] }
	for _, r := range rows[1:] {
		if col(r, "file") == "" || col(r, "sop_instance_uid") == "" || col(r, "reason") == "" || col(r, "threshold") == "" ||
			!slices.Contains([]string{"normal", "uncertain", "abnormal"}, col(r, "decision")) {
			t.Errorf("worklist row without file, SOP Instance UID, reason, threshold or decision: %v", r)
		}
	}

	// The same worklist by study: each phantom is a study of its own.
	byStudy := filepath.Join(t.TempDir(), "studies.json")
	run(0, "queries", "export", "--workspace", ws, "--n", "0", "--by-study", "--out", byStudy)
	var studies []agent.StudyWorkItem
	if b, err := os.ReadFile(byStudy); err != nil || json.Unmarshal(b, &studies) != nil || len(studies) != 6 {
		t.Fatalf("worklist by study: %d studies, %v", len(studies), err)
	}
	for _, s := range studies {
		if s.StudyInstanceUID == "" || len(s.Asked) != 1 || len(s.Films) != 1 || s.Films[0].SOPInstanceUID != s.Asked[0].SOPInstanceUID {
			t.Errorf("study item %+v", s)
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
	// A RIS export piped in: a second reader agrees on one film.
	pipe := exec.Command(binary, "labels", "import", "--workspace", ws, "--format", "json", "-")
	pipe.Stdin = strings.NewReader(`{"file": "` + filepath.Base(files[0]) + `", "label": "normal", "reader": "dr-b", "time": "2026-11-03"}`)
	if b, err := pipe.CombinedOutput(); err != nil || !strings.Contains(string(b), "1 rows: 1 labels added") {
		t.Fatalf("labels import from standard input: %v\n%s", err, b)
	}
	// Every query is answered: the open worklist is empty.
	run(0, "queries", "export", "--workspace", ws, "--n", "0", "--out", worklist)
	if rows := readCSV(t, worklist); len(rows) != 1 {
		t.Fatalf("open worklist after the answers: %v", rows)
	}

	// A dry run trains and measures a candidate, lists the recent reports
	// it would decide otherwise, and keeps nothing.
	if out, _ = run(0, "retrain", "--workspace", ws, "--epochs", "2", "--dry-run"); !strings.Contains(out, "dry run: candidate ") ||
		!strings.Contains(out, "recent reports it was compared with") {
		t.Fatalf("retrain --dry-run: %s", out)
	} else if m := regexp.MustCompile(`would revise (\d+) of the (\d+) recent reports`).FindStringSubmatch(out); m == nil || m[2] == "0" {
		t.Fatalf("retrain --dry-run compared no reports: %s", out)
	}
	if out, _ := run(0, "models", "list", "--workspace", ws, "--json"); strings.Count(out, `"version"`) != 1 {
		t.Fatalf("a dry run kept a model: %s", out)
	}
	// The holdout (2 normal, 2 abnormal) is too small to judge a
	// candidate: it is kept, and held for a person.
	if out, _ = run(0, "retrain", "--workspace", ws, "--epochs", "2"); !strings.Contains(out, "candidate ") ||
		!strings.Contains(out, "held for a person: ") || !strings.Contains(out, "too small to rank") {
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
	// status says where the loop stands.
	out, _ = run(0, "status", "--workspace", ws)
	for _, want := range []string{"learning   0 open queries; 21 labels on 20 cases (10 abnormal,", "readers: 2;",
		"last retrain cycle", "last admission cycle"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	first := models[0].Model.Version
	if !models[0].Active || models[1].Active {
		t.Fatalf("a held candidate became current: %s", out)
	}
	// A person promotes it, and can roll back.
	if out, _ = run(0, "models", "promote", "--workspace", ws, "--by", "dr-admin", models[1].Model.Version); !strings.Contains(out, "promoted by dr-admin") {
		t.Fatalf("promote: %s", out)
	}
	if out, _ = run(0, "models", "rollback", "--workspace", ws, first); !strings.Contains(out, "model "+first+" is current again") || !strings.Contains(out, "each report of the last 7 days") {
		t.Fatalf("rollback: %s", out)
	}
	out, _ = run(0, "models", "list", "--workspace", ws, "--json")
	json.Unmarshal([]byte(out), &models)
	for _, m := range models {
		if m.Active != (m.Model.Version == first) {
			t.Fatalf("after rolling back to %s: %s", first, out)
		}
	}

	// The retrained model scores as it was evaluated, with the head and
	// threshold the labels fitted, and says so in its components; the
	// first model, trained on normals alone, scores as the detector.
	scoreComponents := func() map[string]float64 {
		t.Helper()
		out, _ := run(0, "score", "--workspace", ws, files[0])
		var rep struct {
			Score      float64            `json:"score"`
			Threshold  float64            `json:"threshold"`
			Decision   string             `json:"decision"`
			Components map[string]float64 `json:"components"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("score: %v\n%s", err, out)
		}
		if (rep.Decision == "abnormal") != (rep.Score > rep.Threshold) {
			t.Fatalf("score: decision %s at %v against %v", rep.Decision, rep.Score, rep.Threshold)
		}
		return rep.Components
	}
	if c := scoreComponents(); len(c) == 0 || has(c, "detector_score") {
		t.Fatalf("first model's components %v: want the detector's alone", c)
	}
	second := models[1].Model.Version
	run(0, "models", "rollback", "--workspace", ws, second)
	if c := scoreComponents(); !has(c, "detector_score") {
		t.Fatalf("retrained model's components %v: want detector_score", c)
	}
	if out, _ := run(0, "status", "--workspace", ws); !strings.Contains(out, "reports use the combined score: head weight") {
		t.Fatalf("status of a retrained model:\n%s", out)
	}
	// eval measures what the reports say, and the detector alone on asking.
	evalLabels := filepath.Join(t.TempDir(), "eval.csv")
	var eb strings.Builder
	eb.WriteString("file,finding\n")
	for _, f := range files {
		eb.WriteString(filepath.Base(f) + "," + strings.SplitN(filepath.Base(f), "-", 2)[0] + "\n")
	}
	os.WriteFile(evalLabels, []byte(eb.String()), 0o644)
	for _, detectorOnly := range []bool{false, true} {
		args := []string{"eval", "--workspace", ws, "--data", pool, "--labels", evalLabels, "--json"}
		if detectorOnly {
			args = append(args, "--detector-only")
		}
		out, _ := run(0, args...)
		var res struct {
			Normal, Abnormal int
			Source           string `json:"threshold_source"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.Normal != 10 || res.Abnormal != 10 || (res.Source == "") != detectorOnly {
			t.Fatalf("eval (detector only %v): %v\n%s", detectorOnly, err, out)
		}
	}
}

func has(m map[string]float64, k string) bool { _, ok := m[k]; return ok }

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

// The learning loop over the running agent's HTTP API, as a viewer plugin
// drives it: files arrive in the inbox, a round of queries is chosen, the
// worklist is read, and the radiologists' answers are posted back by
// accession number.
func TestLearningOverHTTP(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(12), 0))
	ws := trainWorkspace(t, rng)
	port := freePort(t)
	cfg := filepath.Join(t.TempDir(), "agent.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[ingest]\nstable_for = \"500ms\"\npoll_interval = \"50ms\"\n"+
		"[http]\naddr = \"127.0.0.1:%d\"\ntoken = \"s3cret\"\n", ws, port)), 0o644)
	inbox := filepath.Join(ws, "inbox")
	src := t.TempDir()
	kind := map[string]phantom.Kind{}
	for i := range 6 {
		k := []phantom.Kind{phantom.Normal, phantom.Nodule}[i%2]
		acc := fmt.Sprintf("ACC%d", i)
		kind[acc] = k
		p := filepath.Join(src, acc+".dcm")
		if err := writePhantom(rng, p, 256, k, phantom.Meta{AccessionNumber: acc}); err != nil {
			t.Fatal(err)
		}
	}
	stop := startAgent(t, "--config", cfg)
	defer stop()
	for acc := range kind {
		if err := copyPath(filepath.Join(src, acc+".dcm"), filepath.Join(inbox, acc+".dcm")); err != nil {
			t.Fatal(err)
		}
	}
	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		c, err := db.Counts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c.Reports == len(kind) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d files reported after 60 s", c.Reports, len(kind))
		}
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	do := func(method, path, token, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	worklist := func(b []byte) []agent.WorklistItem {
		t.Helper()
		var w struct{ Queries []agent.WorklistItem }
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatalf("worklist %s: %v", b, err)
		}
		return w.Queries
	}
	if code, _ := do("POST", "/api/queries?n=3", "", ""); code != 401 {
		t.Fatalf("choosing queries without the token = %d", code)
	}
	code, b := do("POST", "/api/queries?n=3", "s3cret", "")
	chosen := worklist(b)
	if code != 200 || len(chosen) != 3 {
		t.Fatalf("choose queries = %d %s", code, b)
	}
	code, b = do("GET", "/api/queries", "", "")
	if open := worklist(b); code != 200 || len(open) != 3 || open[0].SOPInstanceUID != chosen[0].SOPInstanceUID {
		t.Fatalf("worklist = %d %s", code, b)
	}
	var answers []map[string]string
	for _, q := range chosen {
		v := "normal"
		if kind[q.AccessionNumber] == phantom.Nodule {
			v = "abnormal: nodule"
		}
		answers = append(answers, map[string]string{"accession_number": q.AccessionNumber, "label": v,
			"reader": "dr-b", "time": "2026-11-03T08:00:00Z"})
	}
	body, _ := json.Marshal(answers)
	code, b = do("POST", "/api/labels", "s3cret", string(body))
	var lr agent.LabelsResponse
	if err := json.Unmarshal(b, &lr); err != nil || code != 200 || lr.Added != 3 || lr.Rejected != 0 {
		t.Fatalf("labels = %d %s", code, b)
	}
	if code, b = do("GET", "/api/queries", "", ""); len(worklist(b)) != 0 {
		t.Fatalf("worklist after the answers = %d %s", code, b)
	}
}
