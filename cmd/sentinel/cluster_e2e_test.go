package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/internal/pgtest"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// clusterAgent is one `sentinel run` sharing a PostgreSQL database with
// others, started and killed for real.
type clusterAgent struct {
	t    *testing.T
	name string
	cfg  string
	ws   string
	cmd  *exec.Cmd
	done chan error
	mu   sync.Mutex
	log  bytes.Buffer
}

// clusterConfig writes an agent's configuration: its own workspace and
// inbox, the shared database and models folder, a short claim lease.
func clusterConfig(t *testing.T, dir, name, inbox, models, url string, addr string) *clusterAgent {
	t.Helper()
	ws := filepath.Join(dir, name)
	cfg := filepath.Join(dir, name+".toml")
	body := fmt.Sprintf(`workspace = %q
[paths]
inbox = [%q]
models = %q
[store]
url = %q
agent = %q
claim_lease = "2s"
[ingest]
stable_for = "500ms"
poll_interval = "100ms"
study_quiet = "1s"
[scope]
min_size = 0
[http]
addr = %q
`, ws, inbox, models, url, name, addr)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return &clusterAgent{t: t, name: name, cfg: cfg, ws: ws}
}

func (a *clusterAgent) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.Write(p)
}

func (a *clusterAgent) start() {
	a.t.Helper()
	a.cmd = exec.Command(binary, "run", "--config", a.cfg, "--log-level", "warn")
	a.cmd.Stdout, a.cmd.Stderr = a, a
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(a.cmd, a.done)
}

func (a *clusterAgent) kill() {
	a.cmd.Process.Kill()
	<-a.done
	a.cmd = nil
}

func (a *clusterAgent) stop() {
	a.t.Helper()
	if a.cmd == nil {
		return
	}
	a.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-a.done:
		if err != nil {
			a.t.Errorf("agent %s exited with %v\n%s", a.name, err, a.output())
		}
	case <-time.After(30 * time.Second):
		a.cmd.Process.Kill()
		a.t.Errorf("agent %s did not stop\n%s", a.name, a.output())
	}
	a.cmd = nil
}

func (a *clusterAgent) output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// trainAt trains the first model of a network at agent a's site, on 24
// normal films; the model goes into the models folder a names.
func trainAt(t *testing.T, rng *rand.Rand, dir string, a *clusterAgent) {
	t.Helper()
	normals := filepath.Join(dir, "normals")
	writeBurst(t, rng, normals, "n", 24, "normal")
	if out, errOut, code := sentinelCmd(t, "train", "--config", a.cfg, "--normals", normals, "--epochs", "2"); code != 0 {
		t.Fatalf("train exited %d\n%s\n%s", code, out, errOut)
	}
}

// openShared opens the network's database as the test sees it; it is
// closed when the test ends.
func openShared(t *testing.T, url string) *store.DB {
	t.Helper()
	db := store.NewDB(url)
	db.Agent = "test"
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// writeBurst writes n films of 128 pixels, twenty to a study, into dir.
func writeBurst(t *testing.T, rng *rand.Rand, dir, prefix string, n int, kind phantom.Kind) {
	t.Helper()
	if err := phantom.WriteStudies(rng, dir, prefix, n, 128, kind); err != nil {
		t.Fatal(err)
	}
}

// moveAll moves every file of src into dst at once.
func moveAll(t *testing.T, src, dst string) int {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return len(entries)
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %s waiting for %s", limit, what)
}

// TestFailoverTwoAgentsOneInbox: two agents on one inbox and one
// PostgreSQL database; 1,000 files dropped at once; one agent is SIGKILLed
// twice during the burst. Every instance gets exactly one report, none is
// missing, the queue ends empty, and the files the killed agent had claimed
// were taken up by the survivor once their claims ran out.
func TestFailoverTwoAgentsOneInbox(t *testing.T) {
	if testing.Short() {
		t.Skip("a burst of 1,000 files")
	}
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(71, 0))
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	models := filepath.Join(dir, "models")
	a := clusterConfig(t, dir, "a", inbox, models, url, "")
	b := clusterConfig(t, dir, "b", inbox, models, url, "")
	trainAt(t, rng, dir, a)
	const n = 1000
	staging := filepath.Join(dir, "staging")
	writeBurst(t, rng, staging, "f", n, "normal")

	db := openShared(t, url)
	done := func() int {
		c, err := db.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c.Files[store.FileDone]
	}
	claimedBy := func(agent string) []string {
		rows, err := db.QueueClaims(ctx, agent)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}

	a.start()
	b.start()
	defer a.stop()
	defer b.stop()
	time.Sleep(time.Second)
	if got := moveAll(t, staging, inbox); got != n {
		t.Fatalf("dropped %d files", got)
	}
	var orphans []string
	for k := 1; k <= 2; k++ {
		waitUntil(t, fmt.Sprintf("%d files done", n*k/3), 5*time.Minute, func() bool { return done() >= n*k/3 })
		// Wait for a to hold claims, then kill it while it does.
		for deadline := time.Now().Add(time.Minute); len(claimedBy("a")) == 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				p, q, _ := db.QueueDepth(ctx)
				m, _ := db.ClaimsByAgent(ctx)
				t.Fatalf("agent a holds no claims (queue: %d pending, %d processing, claims %v, %d done)\n%s", p, q, m, done(), a.output())
			}
		}
		a.kill()
		held := claimedBy("a")
		t.Logf("SIGKILL %d of agent a at %d/%d files done, holding %d claims", k, done(), n, len(held))
		orphans = append(orphans, held...)
		// The survivor takes the dead agent's claims up once they run out
		// (2 s here), before a comes back.
		waitUntil(t, "agent b to take up a's claims", time.Minute, func() bool {
			mine := map[string]bool{}
			for _, p := range claimedBy("b") {
				mine[p] = true
			}
			settled, err := db.FileAgents(ctx, held)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range held {
				if !mine[p] && settled[p] == "" {
					return false
				}
			}
			return true
		})
		if k == 1 {
			a.start()
		}
	}
	waitUntil(t, "every file done", 10*time.Minute, func() bool { return done() >= n })
	time.Sleep(time.Second)
	a.stop()
	b.stop()

	c, err := db.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Instances != n || c.Files[store.FileDone] != n || c.Reports != n {
		t.Fatalf("instances %d, files %v, reports %d; want %d each", c.Instances, c.Files, c.Reports, n)
	}
	rows, err := db.Reports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, r := range rows {
		per[r.InstanceID]++
		if _, err := os.Stat(r.Path); err != nil {
			t.Errorf("report of %s: %v", r.InstanceID, err)
		}
		if !strings.HasPrefix(r.Path, a.ws) && !strings.HasPrefix(r.Path, b.ws) {
			t.Errorf("report %s outside both workspaces", r.Path)
		}
	}
	for id, k := range per {
		if k != 1 {
			t.Errorf("instance %s has %d reports", id, k)
		}
	}
	if p, q, err := db.QueueDepth(ctx); err != nil || p != 0 || q != 0 {
		t.Fatalf("queue after the burst: %d pending, %d processing, %v", p, q, err)
	}
	settled, err := db.FileAgents(ctx, orphans)
	if err != nil {
		t.Fatal(err)
	}
	if len(orphans) == 0 {
		t.Fatal("agent a held no claims when killed")
	}
	for _, p := range orphans {
		if settled[p] != "b" {
			t.Errorf("%s, claimed by a when it was killed, was settled by %q", filepath.Base(p), settled[p])
		}
	}
	byAgent, _ := db.FilesByAgent(ctx)
	t.Logf("files settled by agent: %v; %d claims taken over", byAgent, len(orphans))
	if byAgent["a"] == 0 || byAgent["b"] == 0 {
		t.Errorf("one agent did all the work: %v", byAgent)
	}
	// status lists both agents with their heartbeats: b stopped cleanly,
	// a was killed and never said it stopped.
	out, errOut, code := sentinelCmd(t, "status", "--config", b.cfg, "--json")
	var st statusReport
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
	}
	names := map[string]string{}
	for _, ag := range st.Agents {
		names[ag.Name] = ag.State
	}
	if st.Store.Engine != "postgres" || (names["a"] != "running" && names["a"] != "silent") || names["b"] != "stopped" || strings.Contains(out, "password") {
		t.Errorf("status: store %+v, agents %v", st.Store, names)
	}
}

// TestTwoSitesShareModelAndLabels: two sites, each with its own agent,
// inbox and workspace, share one database and one models folder. Labels
// imported at site A are labels at site B; a model made current at site A
// is taken up by site B's agent, which compares its own reports with it and
// revises them under its own workspace, while A revises A's.
func TestTwoSitesShareModelAndLabels(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(72, 0))
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	port := freePort(t)
	a := clusterConfig(t, dir, "site-a", filepath.Join(dir, "inbox-a"), models, url, fmt.Sprintf("127.0.0.1:%d", port))
	b := clusterConfig(t, dir, "site-b", filepath.Join(dir, "inbox-b"), models, url, "")
	trainAt(t, rng, dir, a)
	for _, s := range []struct {
		site   *clusterAgent
		inbox  string
		prefix string
	}{{a, "inbox-a", "a"}, {b, "inbox-b", "b"}} {
		src := filepath.Join(dir, "src-"+s.prefix)
		writeBurst(t, rng, src, s.prefix+"-normal-", 4, "normal")
		writeBurst(t, rng, src, s.prefix+"-nodule-", 4, "nodule")
		moveAll(t, src, filepath.Join(dir, s.inbox))
	}
	db := openShared(t, url)
	reports := func() []store.ReportRow {
		rows, err := db.Reports(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	a.start()
	b.start()
	defer a.stop()
	defer b.stop()
	waitUntil(t, "the first reports at both sites", 2*time.Minute, func() bool { return len(reports()) == 16 })
	firstBy := map[string]string{} // instance → the site that reported it
	for _, r := range reports() {
		site := "site-a"
		if strings.HasPrefix(r.Path, b.ws) {
			site = "site-b"
		}
		firstBy[r.InstanceID] = site
	}

	// Site A's API answers for site B's films too: with B's study folder
	// out of reach (another machine), A serves B's report as B wrote it,
	// from the database, and says which agent keeps its heatmap. (B is
	// done with the folder once it holds the study's report.)
	var bReport store.ReportRow
	for _, r := range reports() {
		if firstBy[r.InstanceID] == "site-b" {
			bReport = r
			break
		}
	}
	want, err := os.ReadFile(bReport.Path)
	if err != nil {
		t.Fatal(err)
	}
	folder := filepath.Dir(bReport.Path)
	waitUntil(t, "site B's study report", time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(folder, "study.json"))
		return err == nil
	})
	away := filepath.Join(dir, "elsewhere")
	if err := os.Rename(folder, away); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/api/", port)
	if got := httpGet(t, base+"reports/"+bReport.InstanceID); got != string(want) {
		t.Errorf("site A's API for site B's report:\n%s\nwant\n%s", got, want)
	}
	if got := httpGet(t, base+"heatmaps/"+bReport.InstanceID); !strings.Contains(got, "site-b") {
		t.Errorf("site A's API for site B's heatmap: %q", got)
	}
	if err := os.Rename(away, folder); err != nil {
		t.Fatal(err)
	}

	// Labels given at site A, for films of both sites, by file name.
	labels := filepath.Join(dir, "labels.csv")
	var lb strings.Builder
	lb.WriteString("file,label,reader,time\n")
	for _, site := range []string{"a", "b"} {
		for i := range 4 {
			fmt.Fprintf(&lb, "%s-nodule-%05d.dcm,abnormal,dr-a,2026-11-02T09:00:00Z\n", site, i)
			fmt.Fprintf(&lb, "%s-normal-%05d.dcm,normal,dr-a,2026-11-02T09:00:00Z\n", site, i)
		}
	}
	os.WriteFile(labels, []byte(lb.String()), 0o644)
	if out, errOut, code := sentinelCmd(t, "labels", "import", "--config", a.cfg, labels); code != 0 || !strings.Contains(out, "16 labels added") {
		t.Fatalf("labels import at site A: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code := sentinelCmd(t, "status", "--config", b.cfg, "--json")
	var st statusReport
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Learning.Labels != 16 || st.Learning.Abnormal != 8 {
		t.Fatalf("site B's status after site A's labels: exit %d, learning %+v", code, st.Learning)
	}

	// A model made current at site A (trained on nodule films as normal,
	// so that it decides many films otherwise).
	nodules := filepath.Join(dir, "nodules")
	writeBurst(t, rng, nodules, "m", 24, "nodule")
	if out, errOut, code := sentinelCmd(t, "train", "--config", a.cfg, "--normals", nodules, "--epochs", "2", "--seed", "2"); code != 0 {
		t.Fatalf("train at site A exited %d\n%s\n%s", code, out, errOut)
	}
	path, err := agent.CurrentModelPath(models)
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSuffix(filepath.Base(path), ".model")
	waitUntil(t, "both sites to compare every report with the new model", 2*time.Minute, func() bool {
		got, err := db.ScoredInstances(ctx, version)
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, s := range got {
			if s.ModelVersion == version {
				k++
			}
		}
		return k == 16
	})
	time.Sleep(2 * time.Second)
	a.stop()
	b.stop()
	revisedAt := map[string]int{}
	for _, r := range reports() {
		if r.Revision < 2 {
			continue
		}
		site := "site-a"
		if strings.HasPrefix(r.Path, b.ws) {
			site = "site-b"
		}
		if site != firstBy[r.InstanceID] {
			t.Errorf("instance %s reported at %s was revised at %s", r.InstanceID, firstBy[r.InstanceID], site)
		}
		if _, err := os.Stat(r.Path); err != nil {
			t.Error(err)
		}
		revisedAt[site]++
	}
	t.Logf("revisions by site: %v", revisedAt)
	if revisedAt["site-b"] == 0 {
		t.Errorf("site B revised none of its reports after the model changed (revisions: %v)\n%s", revisedAt, b.output())
	}
}

// TestPostgresOutageLosesNothing: the database server stops mid-burst and
// comes back. Ingest pauses on Sentinel's side (no file is blamed or
// quarantined), the agent keeps running, and once the server is back every
// file is recorded once.
func TestPostgresOutageLosesNothing(t *testing.T) {
	cluster, err := pgtest.NewCluster()
	if err != nil {
		t.Skipf("no PostgreSQL cluster of its own: %v", err)
	}
	defer cluster.Remove()
	url, err := pgtest.Create(cluster.URL, "outage")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(73, 0))
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	a := clusterConfig(t, dir, "a", inbox, filepath.Join(dir, "models"), url, "")
	trainAt(t, rng, dir, a)
	const n = 300
	staging := filepath.Join(dir, "staging")
	writeBurst(t, rng, staging, "f", n, "normal")
	db := openShared(t, url)
	done := func() int {
		c, err := db.Counts(ctx)
		if err != nil {
			return -1 // the server is down
		}
		return c.Files[store.FileDone]
	}
	a.start()
	defer a.stop()
	time.Sleep(time.Second)
	moveAll(t, staging, inbox)
	waitUntil(t, "a fifth of the files", 2*time.Minute, func() bool { return done() >= n/5 })
	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "every file after the server came back", 3*time.Minute, func() bool { return done() >= n })
	time.Sleep(time.Second)
	a.stop()
	c, err := db.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Instances != n || c.Reports != n || c.Files[store.FileDone] != n || c.Files[store.FileFailed] != 0 {
		t.Fatalf("after the outage: instances %d, reports %d, files %v", c.Instances, c.Reports, c.Files)
	}
	if p, q, err := db.QueueDepth(ctx); err != nil || p != 0 || q != 0 {
		t.Fatalf("queue after the outage: %d pending, %d processing, %v", p, q, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(a.ws, "quarantine")); len(entries) != 0 {
		t.Fatalf("%d files quarantined during the outage", len(entries))
	}
	if !strings.Contains(a.output(), "ingest paused") {
		t.Errorf("the agent did not say ingest paused:\n%s", a.output())
	}
}
