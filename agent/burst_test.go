package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// stage writes n distinct DICOM files into a staging folder, to be moved
// into the inbox at once.
func stage(t *testing.T, rng *rand.Rand, n int, studies int) []string {
	t.Helper()
	dir := t.TempDir()
	var study []string
	for i := 0; i < studies; i++ {
		study = append(study, phantom.NewUID(rng))
	}
	var out []string
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("f%04d.dcm", i))
		writeDICOM(t, rng, p, phantom.Meta{StudyInstanceUID: study[i%studies]})
		out = append(out, p)
	}
	return out
}

func moveInto(t *testing.T, files []string, dir string) []string {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	var out []string
	for _, f := range files {
		dst := filepath.Join(dir, filepath.Base(f))
		if err := os.Rename(f, dst); err != nil {
			t.Fatal(err)
		}
		out = append(out, dst)
	}
	return out
}

// A burst of 200 files, with the agent stopped in the middle and started
// again: every file is processed exactly once.
func TestBurstWithRestartExactlyOnce(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(5), 0))
	files := moveInto(t, stage(t, rng, 200, 10), filepath.Join(e.inbox, "burst"))
	stop := e.start()
	e.waitFor("some files", 60*time.Second, func(os []Outcome) bool { return len(os) >= 30 })
	stop()
	e.mu.Lock()
	firstRun := len(e.outcomes)
	e.mu.Unlock()
	if firstRun >= 200 {
		t.Logf("all files were done before the stop; the restart still must not redo any")
	}
	stop = e.start()
	e.waitFor("all files", 120*time.Second, handled(files...))
	stop()

	done := map[string]int{}
	e.mu.Lock()
	for _, o := range e.outcomes {
		if o.Status == store.FileDone {
			done[o.Path]++
		}
	}
	e.mu.Unlock()
	for _, f := range files {
		if done[f] != 1 {
			t.Errorf("%s processed %d times", f, done[f])
		}
	}
	c, _ := e.db.Counts(context.Background())
	if c.Instances != 200 || c.Reports != 200 || c.Files[store.FileDone] != 200 {
		t.Fatalf("counts after burst: %+v", c)
	}
	if p, q, _ := e.db.QueueDepth(context.Background()); p+q != 0 {
		t.Fatalf("queue not empty: %d pending, %d processing", p, q)
	}
}

// Study reports are written once a study is quiet, and again as a new
// revision when a late instance arrives.
func TestStudyReportRevisions(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(6), 0))
	study := phantom.NewUID(rng)
	for i := 0; i < 2; i++ {
		writeDICOM(t, rng, filepath.Join(e.inbox, fmt.Sprintf("a%d.dcm", i)), phantom.Meta{StudyInstanceUID: study})
	}
	a := e.agent()
	ctx := context.Background()
	if _, _, err := a.IngestDir(ctx, e.inbox); err != nil {
		t.Fatal(err)
	}
	// Not quiet yet: nothing is reported.
	if err := a.ReportQuietStudies(ctx, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.db.StudyReportCount(ctx, study); n != 0 {
		t.Fatalf("study reported before it was quiet: %d", n)
	}
	if err := a.ReportQuietStudies(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Reporting again with nothing new changes nothing.
	if err := a.ReportQuietStudies(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.db.StudyReportCount(ctx, study); n != 1 {
		t.Fatalf("study reports = %d, want 1", n)
	}
	writeDICOM(t, rng, filepath.Join(e.inbox, "late.dcm"), phantom.Meta{StudyInstanceUID: study})
	if _, _, err := a.IngestDir(ctx, e.inbox); err != nil {
		t.Fatal(err)
	}
	if err := a.ReportQuietStudies(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(e.reports, SafeName(study), "study.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Revision      int    `json:"revision"`
		InstanceCount int    `json:"instance_count"`
		Decision      string `json:"decision"`
		Instances     []struct {
			Score float64 `json:"score"`
		} `json:"instances"`
		MaxScore float64                `json:"max_score"`
		Changes  []sentinel.StudyChange `json:"changes"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Revision != 2 || rep.InstanceCount != 3 || len(rep.Instances) != 3 {
		t.Fatalf("study report = %+v", rep)
	}
	// The second revision says what it adds: the late instance, only.
	if len(rep.Changes) != 1 || rep.Changes[0].Change != "added" || rep.Changes[0].From != "" {
		t.Fatalf("changes of revision 2 = %+v, want the late instance added", rep.Changes)
	}
	maxScore := 0.0
	for _, in := range rep.Instances {
		maxScore = max(maxScore, in.Score)
	}
	if rep.MaxScore != maxScore {
		t.Fatalf("max_score %v, instances' max %v", rep.MaxScore, maxScore)
	}
	if _, err := os.Stat(filepath.Join(e.reports, SafeName(study), "study.r1.json")); err != nil {
		t.Fatalf("first revision not kept: %v", err)
	}
}

// With an archive folder, handled files move there, keeping their path.
func TestArchiveMovesHandledFiles(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(7), 0))
	p := filepath.Join(e.inbox, "x", "one.dcm")
	writeDICOM(t, rng, p, phantom.Meta{})
	a := e.agent()
	a.cfg.Archive = filepath.Join(e.dir, "archive")
	if _, _, err := a.IngestDir(context.Background(), e.inbox); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err == nil {
		t.Fatal("file still in the inbox")
	}
	if _, err := os.Stat(filepath.Join(a.cfg.Archive, "x", "one.dcm")); err != nil {
		t.Fatalf("not archived: %v", err)
	}
	files, _ := e.db.Files(context.Background(), store.FileDone)
	if len(files) != 1 || files[0].Path != p {
		t.Fatalf("files = %+v", files)
	}
}

// The HTTP API over a real loopback server: health, metrics that move, the
// read-only API, and a state-changing endpoint that needs the token.
func TestHTTPAPI(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(8), 0))
	a := e.agent()
	a.cfg.Token = "s3cret"
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "scan") {
		t.Fatalf("readyz before the first scan = %d %q", code, body)
	}
	a.ready.Store(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz = %d", code)
	}
	_, before := get("/metrics")
	if !strings.Contains(before, `sentinel_model_info{version="fake-1"} 1`) {
		t.Fatalf("metrics lack the model version:\n%s", before)
	}
	p := filepath.Join(e.inbox, "m.dcm")
	writeDICOM(t, rng, p, phantom.Meta{StudyInstanceUID: "1.2.3.4"})
	os.WriteFile(filepath.Join(e.inbox, "junk.dcm"), []byte("junk"), 0o644)
	if _, _, err := a.IngestDir(context.Background(), e.inbox); err != nil {
		t.Fatal(err)
	}
	_, after := get("/metrics")
	for _, want := range []string{`sentinel_files_processed_total{status="done"} 1`,
		`sentinel_files_failed_total{reason="not_dicom"} 1`} {
		if !strings.Contains(after, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	code, body := get("/api/studies")
	if code != 200 || !strings.Contains(body, `"study_instance_uid":"1.2.3.4"`) {
		t.Fatalf("studies = %d %s", code, body)
	}
	files, _ := e.db.Files(context.Background(), store.FileDone)
	code, body = get("/api/reports/" + files[0].InstanceID)
	if code != 200 || !strings.Contains(body, files[0].InstanceID) {
		t.Fatalf("report = %d %s", code, body)
	}
	code, body = get("/api/heatmaps/" + files[0].InstanceID)
	if _, err := png.Decode(strings.NewReader(body)); code != 200 || err != nil {
		t.Fatalf("heatmap = %d, %v", code, err)
	}
	if code, _ := get("/api/heatmaps/9.9.9"); code != 404 {
		t.Fatalf("heatmap of an unknown instance = %d, want 404", code)
	}
	if code, _ := get("/api/reports/..%2F..%2Fetc%2Fpasswd"); code != 404 {
		t.Fatalf("hostile report id = %d, want 404", code)
	}
	post := func(token string) int {
		t.Helper()
		code, _, _ := httpDo(t, "POST", srv.URL+"/api/rescan", token, "", "")
		return code
	}
	if code := post(""); code != 401 {
		t.Fatalf("rescan without token = %d", code)
	}
	if code := post("wrong"); code != 401 {
		t.Fatalf("rescan with a wrong token = %d", code)
	}
	if code := post("s3cret"); code != 202 {
		t.Fatalf("rescan with the token = %d", code)
	}
}

// A crafted UID with path separators keeps its report inside the reports
// folder.
func TestHostileUIDStaysInReports(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(9), 0))
	writeDICOM(t, rng, filepath.Join(e.inbox, "evil.dcm"),
		phantom.Meta{SOPInstanceUID: "../../../../tmp/evil", StudyInstanceUID: "../.."})
	_, outs, err := e.agent().IngestDir(context.Background(), e.inbox)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 {
		t.Fatalf("outcomes = %+v", outs)
	}
	o := outs[0]
	if o.Status != store.FileDone && o.Status != store.FileFailed {
		t.Fatalf("status %s: %v", o.Status, o.Err)
	}
	if o.Status == store.FileDone {
		rel, err := filepath.Rel(e.reports, o.ReportPath)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("report escaped: %s", o.ReportPath)
		}
	}
	var escaped []string
	filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".json") && !strings.HasPrefix(p, e.reports) {
			escaped = append(escaped, p)
		}
		return nil
	})
	if len(escaped) > 0 {
		t.Fatalf("report files outside the reports folder: %v", escaped)
	}
}

// A file found again after its first run recorded it (a rescan racing the
// worker) is not queued again: the store checks and inserts in one step.
func TestQueuedKnownFileLeavesQueue(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(10, 0))
	p := filepath.Join(e.inbox, "k.dcm")
	writeDICOM(t, rng, p, phantom.Meta{})
	a := e.agent()
	ctx := context.Background()
	if o := a.Process(ctx, p); o.Status != store.FileDone {
		t.Fatalf("first run: %+v", o)
	}
	fi, _ := os.Stat(p)
	if err := e.db.Enqueue(ctx, []store.QueueItem{{Path: p, Size: fi.Size(), ModTimeNS: fi.ModTime().UnixNano()}}); err != nil {
		t.Fatal(err)
	}
	if pend, proc, _ := e.db.QueueDepth(ctx); pend+proc != 0 {
		t.Fatalf("queue holds %d pending, %d processing", pend, proc)
	}
	// Changed since: it is queued.
	if err := e.db.Enqueue(ctx, []store.QueueItem{{Path: p, Size: fi.Size() + 1, ModTimeNS: fi.ModTime().UnixNano()}}); err != nil {
		t.Fatal(err)
	}
	if pend, _, _ := e.db.QueueDepth(ctx); pend != 1 {
		t.Fatalf("a changed file was not queued: %d pending", pend)
	}
}

// A model swapped in while the agent runs scores the files that follow.
func TestSetModelSwapsScorer(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(12, 0))
	a := e.agent()
	ctx := context.Background()
	p1 := filepath.Join(e.inbox, "one.dcm")
	writeDICOM(t, rng, p1, phantom.Meta{})
	if o := a.Process(ctx, p1); o.Status != store.FileDone {
		t.Fatalf("first: %+v", o)
	}
	a.SetModel(renamedModel{fakeModel{16}, "fake-2"})
	p2 := filepath.Join(e.inbox, "two.dcm")
	writeDICOM(t, rng, p2, phantom.Meta{})
	o := a.Process(ctx, p2)
	if o.Status != store.FileDone {
		t.Fatalf("second: %+v", o)
	}
	b, err := os.ReadFile(o.ReportPath)
	if err != nil || !strings.Contains(string(b), `"model_version": "fake-2"`) {
		t.Fatalf("report after the swap: %s, %v", b, err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), `version="fake-1"`) || !strings.Contains(string(body), `sentinel_model_info{version="fake-2"} 1`) {
		t.Fatalf("model metric after the swap:\n%s", body)
	}
}

type renamedModel struct {
	fakeModel
	version string
}

func (r renamedModel) Info() sentinel.ModelInfo { return sentinel.ModelInfo{Version: r.version} }

// Ingest pauses while free disk space is below the floor and resumes by
// itself when the floor is met again.
func TestDiskFloorPausesAndResumes(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(13, 0))
	a := e.agent()
	os.MkdirAll(e.reports, 0o755)
	free, err := freeBytes(e.reports)
	if err != nil {
		t.Skipf("statfs unavailable: %v", err)
	}
	a.floor.Store(free * 1000) // far above what any disk has free
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	p := filepath.Join(e.inbox, "wait.dcm")
	writeDICOM(t, rng, p, phantom.Meta{})
	time.Sleep(2 * time.Second) // well past stable_for: it would be done if not paused
	if st := e.statusOf(p); st != "" {
		t.Fatalf("file processed while ingest was paused: %s", st)
	}
	if !a.paused.Load() {
		t.Fatal("agent not paused below the floor")
	}
	a.floor.Store(1)
	e.waitFor("the file after resuming", 20*time.Second, handled(p))
	if a.paused.Load() {
		t.Fatal("agent still paused above the floor")
	}
}

// A file failing for a passing reason is retried with backoff, and one that
// keeps failing is quarantined after MaxAttempts.
func TestTransientFailuresRetryThenGiveUp(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(14, 0))
	var mu sync.Mutex
	calls := map[string]int{}
	flaky := func(path string) (sentinel.Instance, sentinel.Image, error) {
		mu.Lock()
		calls[filepath.Base(path)]++
		n := calls[filepath.Base(path)]
		mu.Unlock()
		if filepath.Base(path) == "always.dcm" || n <= 2 {
			return sentinel.Instance{}, sentinel.Image{}, fmt.Errorf("database is busy (attempt %d)", n)
		}
		return dicomio.Load(path, dicomio.Options{})
	}
	a := New(Config{
		Inbox: []string{e.inbox}, Reports: e.reports, Quarantine: e.quar,
		StableFor: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond,
		Workers: 2, QueueSize: 4, MaxAttempts: 4, RetryDelay: 100 * time.Millisecond, MaxRetryDelay: 400 * time.Millisecond,
		OnOutcome: func(o Outcome) { e.mu.Lock(); e.outcomes = append(e.outcomes, o); e.mu.Unlock() },
	}, e.db, fakeModel{16}, flaky, dicomio.Resample)
	ok := filepath.Join(e.inbox, "flaky.dcm")
	bad := filepath.Join(e.inbox, "always.dcm")
	writeDICOM(t, rng, ok, phantom.Meta{})
	writeDICOM(t, rng, bad, phantom.Meta{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	e.waitFor("both files", 30*time.Second, handled(ok, bad))
	cancel()
	<-done
	if st := e.statusOf(ok); st != store.FileDone {
		t.Errorf("flaky file: %s, want done after retries", st)
	}
	if st := e.statusOf(bad); st != store.FileFailed {
		t.Errorf("always-failing file: %s, want quarantined", st)
	}
	mu.Lock()
	if calls["flaky.dcm"] != 3 || calls["always.dcm"] != 4 {
		t.Errorf("attempts: flaky %d (want 3), always %d (want 4)", calls["flaky.dcm"], calls["always.dcm"])
	}
	mu.Unlock()
	reason, err := os.ReadFile(filepath.Join(e.quar, "always.dcm.reason.txt"))
	if err != nil || !strings.Contains(string(reason), "gave up after 4 attempts") {
		t.Errorf("reason: %q, %v", reason, err)
	}
}
