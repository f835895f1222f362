package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/store"
)

// TestRunFollowsModelAndRevisesReports runs the real agent, then trains a
// new model in another process. The agent takes the new model up by itself
// (files that follow are scored with it), compares its recent reports with
// it, and issues again, as revision 2, the ones it decides otherwise; each
// other report stays as written.
func TestRunFollowsModelAndRevisesReports(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(21), 0))
	ws := trainWorkspace(t, rng)
	port := freePort(t)
	cfg := filepath.Join(t.TempDir(), "agent.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[ingest]\nstable_for = \"500ms\"\npoll_interval = \"50ms\"\nstudy_quiet = \"500ms\"\n[http]\naddr = \"127.0.0.1:%d\"\n", ws, port)), 0o644)
	src := t.TempDir()
	files := writePhantoms(t, rng, src, 3, "normal")
	files = append(files, writePhantoms(t, rng, src, 3, "nodule")...)
	inbox := filepath.Join(ws, "inbox")
	for _, p := range files {
		if err := copyPath(p, filepath.Join(inbox, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	reports := func() []store.ReportRow {
		rows, err := db.Reports(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	stop := startAgent(t, "--config", cfg)
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	waitFor("the first reports", func() bool { return len(reports()) == len(files) })
	first := reports()
	original := map[string][]byte{}
	for _, r := range first {
		b, err := os.ReadFile(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		original[r.InstanceID] = b
	}

	// A model that learnt the nodule films as normal, trained while the
	// agent runs.
	nodules := filepath.Join(t.TempDir(), "nodules")
	writePhantoms(t, rng, nodules, 24, "nodule")
	out, errOut, code := sentinelCmd(t, "train", "--workspace", ws, "--normals", nodules, "--epochs", "3", "--seed", "2")
	if code != 0 {
		t.Fatalf("train exited %d\n%s\n%s", code, out, errOut)
	}
	path, err := agent.CurrentModelPath(filepath.Join(ws, "models"))
	if err != nil {
		t.Fatal(err)
	}
	b := strings.TrimSuffix(filepath.Base(path), ".model")
	late := writePhantoms(t, rng, t.TempDir(), 1, "normal")[0]
	if err := copyPath(late, filepath.Join(inbox, "late.dcm")); err != nil {
		t.Fatal(err)
	}
	// Every report of the first six is compared with model b: its score
	// by b is stored, and the late file is scored by b.
	waitFor("model b's scores of every instance", func() bool {
		got, err := db.ScoredInstances(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range got {
			if s.ModelVersion == b {
				n++
			}
		}
		return n == len(files)+1
	})
	time.Sleep(time.Second) // the study reports of any revision
	metrics := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	var api struct {
		Revisions []store.RevisedReport `json:"revisions"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/api/revisions", port))), &api); err != nil {
		t.Fatal(err)
	}
	// Each revision of a revised report, and its heatmap, over HTTP.
	api1, api2 := map[string]string{}, map[string]string{}
	for _, r := range api.Revisions {
		base := fmt.Sprintf("http://127.0.0.1:%d/api/", port)
		api1[r.InstanceID] = httpGet(t, base+"reports/"+r.SOPInstanceUID+"?revision=1")
		api2[r.InstanceID] = httpGet(t, base+"reports/"+r.SOPInstanceUID)
		if png := httpGet(t, base+"heatmaps/"+r.SOPInstanceUID+"?revision=2"); !strings.HasPrefix(png, "\x89PNG") {
			t.Errorf("heatmap of revision 2 of %s: not a PNG", r.SOPInstanceUID)
		}
		if bad := httpGet(t, base+"reports/"+r.SOPInstanceUID+"?revision=0"); !strings.Contains(bad, "positive integer") {
			t.Errorf("?revision=0: %q", bad)
		}
	}
	stop()
	stop = nil

	byB, _ := db.ScoredInstances(ctx, b)
	decisionByB := map[string]sentinel.Decision{}
	for _, s := range byB {
		decisionByB[s.InstanceID] = s.Score.Decision
	}
	latest := map[string]store.ReportRow{}
	for _, r := range reports() {
		latest[r.InstanceID] = r
	}
	revised := 0
	for _, r := range first {
		now := latest[r.InstanceID]
		cur, err := os.ReadFile(filepath.Join(filepath.Dir(r.Path), filepath.Base(r.Path)))
		if err != nil {
			t.Fatal(err)
		}
		if sentinel.Decision(r.Decision) == decisionByB[r.InstanceID] {
			if now.Revision != 1 || !bytes.Equal(cur, original[r.InstanceID]) {
				t.Errorf("%s: model b agrees (%s), yet the report was revised", r.InstanceID, r.Decision)
			}
			continue
		}
		revised++
		var rep sentinel.Report
		if now.Revision != 2 || now.ModelVersion != b || json.Unmarshal(cur, &rep) != nil ||
			rep.Revision != 2 || rep.Decision != decisionByB[r.InstanceID] || rep.Supersedes == nil ||
			string(rep.Supersedes.Decision) != r.Decision {
			t.Errorf("%s: model b decides %s where %s was reported; latest report %+v, %s", r.InstanceID,
				decisionByB[r.InstanceID], r.Decision, now, cur)
		}
		if kept, err := os.ReadFile(strings.TrimSuffix(r.Path, ".json") + ".r1.json"); err != nil || !bytes.Equal(kept, original[r.InstanceID]) {
			t.Errorf("%s: revision 1 not kept as written: %v", r.InstanceID, err)
		}
		if api1[r.InstanceID] != string(original[r.InstanceID]) || api2[r.InstanceID] != string(cur) {
			t.Errorf("%s: GET /api/reports gives other bytes than revisions 1 and 2 on disk", r.InstanceID)
		}
	}
	t.Logf("model b changed %d of %d decisions", revised, len(first))
	if revised == 0 {
		t.Fatal("model b, trained on nodule films, changed no decision: the test shows nothing")
	}
	if len(api.Revisions) != revised {
		t.Errorf("GET /api/revisions lists %d, want %d", len(api.Revisions), revised)
	}
	for _, r := range api.Revisions {
		if r.ModelVersion != b || r.Revision != 2 || r.Decision == r.PreviousDecision || !strings.HasSuffix(r.ReportPath, ".r2.json") || filepath.IsAbs(r.ReportPath) {
			t.Errorf("GET /api/revisions: %+v", r)
		}
	}
	if !strings.Contains(metrics, fmt.Sprintf(`sentinel_model_info{version=%q} 1`, b)) ||
		!strings.Contains(metrics, "sentinel_reports_revised_total") {
		t.Errorf("/metrics lacks model b or the revision counter:\n%s", metrics)
	}
	out, _, code = sentinelCmd(t, "status", "--workspace", ws)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d reports revised", revised)) || !strings.Contains(out, "recent revisions:") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}
