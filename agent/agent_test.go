package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

// fakeModel scores an image by its mean brightness; it stands in for the
// detector at the package boundary so these tests need no training.
type fakeModel struct{ size int }

func (f fakeModel) Score(img sentinel.Image) (sentinel.Score, error) {
	var s float64
	for _, v := range img.Pix {
		s += float64(v)
	}
	s /= float64(len(img.Pix))
	d := sentinel.DecisionNormal
	if s > 0.5 {
		d = sentinel.DecisionAbnormal
	}
	heat := sentinel.NewImage(f.size, f.size)
	copy(heat.Pix, img.Pix)
	return sentinel.Score{Value: s, Threshold: 0.5, Decision: d, Heatmap: heat,
		Components: map[string]float64{"mean": s}}, nil
}
func (f fakeModel) Info() sentinel.ModelInfo { return sentinel.ModelInfo{Version: "fake-1"} }
func (f fakeModel) InputSize() int           { return f.size }

// testEnv is a workspace with an open database and an agent on it.
type testEnv struct {
	t       *testing.T
	dir     string
	inbox   string
	reports string
	quar    string
	dbPath  string
	db      *store.DB

	mu       sync.Mutex
	outcomes []Outcome
	// decodedSizes records the size of each file when it was decoded.
	decodedSizes map[string]int64
}

func newTestEnv(t *testing.T) *testEnv {
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, inbox: filepath.Join(dir, "inbox"), reports: filepath.Join(dir, "reports"),
		quar: filepath.Join(dir, "quarantine"), dbPath: dbTarget(t, dir), decodedSizes: map[string]int64{}}
	if err := os.MkdirAll(e.inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	e.openDB()
	return e
}

func (e *testEnv) openDB() {
	e.db = store.NewDB(e.dbPath)
	if err := e.db.Open(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { e.db.Close() })
}

func (e *testEnv) agent() *Agent {
	decode := func(path string) (sentinel.Instance, sentinel.Image, error) {
		if fi, err := os.Stat(path); err == nil {
			e.mu.Lock()
			e.decodedSizes[path] = fi.Size()
			e.mu.Unlock()
		}
		return dicomio.Load(path, dicomio.Options{})
	}
	return New(Config{
		Inbox: []string{e.inbox}, Reports: e.reports, Quarantine: e.quar,
		StableFor: 700 * time.Millisecond, PollInterval: 50 * time.Millisecond, RescanInterval: time.Second,
		Workers: 2, QueueSize: 4,
		OnOutcome: func(o Outcome) {
			e.mu.Lock()
			e.outcomes = append(e.outcomes, o)
			e.mu.Unlock()
		},
	}, e.db, fakeModel{16}, decode, dicomio.Resample)
}

// start runs a new agent until the returned function is called.
func (e *testEnv) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent().Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			e.t.Fatal("agent did not stop within 10s")
		}
	}
}

// waitFor waits until cond holds on the outcomes so far.
func (e *testEnv) waitFor(what string, timeout time.Duration, cond func([]Outcome) bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		ok := cond(e.outcomes)
		e.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.t.Fatalf("timed out waiting for %s; outcomes: %+v", what, e.outcomes)
}

func handled(paths ...string) func([]Outcome) bool {
	return func(os []Outcome) bool {
		seen := map[string]bool{}
		for _, o := range os {
			if o.Status != StatusRetry {
				seen[o.Path] = true
			}
		}
		for _, p := range paths {
			if !seen[p] {
				return false
			}
		}
		return true
	}
}

func writeDICOM(t *testing.T, rng *rand.Rand, path string, meta phantom.Meta) []byte {
	t.Helper()
	if meta.SOPInstanceUID == "" {
		meta.SOPInstanceUID = phantom.NewUID(rng)
	}
	if meta.StudyInstanceUID == "" {
		meta.StudyInstanceUID = phantom.NewUID(rng)
	}
	meta.SeriesInstanceUID = meta.StudyInstanceUID + ".1"
	tmp := filepath.Join(t.TempDir(), "x.dcm")
	if err := phantom.WriteDICOM(tmp, phantom.Generate(rng, 64, "normal"), 64, meta); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (e *testEnv) statusOf(path string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := ""
	for _, o := range e.outcomes {
		if o.Path == path && o.Status != StatusRetry {
			st = o.Status
		}
	}
	return st
}

func TestAgentEndToEnd(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(1), 0))

	// Files present before the agent starts must be picked up.
	early := filepath.Join(e.inbox, "early.dcm")
	writeDICOM(t, rng, early, phantom.Meta{})

	// A link to a file kept elsewhere is refused: recorded as failed, left
	// where it is, and its target neither read nor copied.
	target := filepath.Join(t.TempDir(), "kept.dcm")
	writeDICOM(t, rng, target, phantom.Meta{})
	linked := filepath.Join(e.inbox, "linked.dcm")
	if err := os.Symlink(target, linked); err != nil {
		t.Fatal(err)
	}

	stop := e.start()
	valid := []string{early}
	for i := 0; i < 3; i++ {
		p := filepath.Join(e.inbox, "study", "sub", "img"+string(rune('a'+i))+".dcm")
		writeDICOM(t, rng, p, phantom.Meta{})
		valid = append(valid, p)
	}
	// A file written slowly, in chunks over about 3 s, must not be read
	// before it is complete.
	slow := filepath.Join(e.inbox, "slow.dcm")
	slowBytes := writeDICOM(t, rng, "", phantom.Meta{})
	go func() {
		f, err := os.Create(slow)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		chunk := len(slowBytes)/6 + 1
		for off := 0; off < len(slowBytes); off += chunk {
			f.Write(slowBytes[off:min(off+chunk, len(slowBytes))])
			time.Sleep(500 * time.Millisecond)
		}
	}()
	valid = append(valid, slow)

	broken := filepath.Join(e.inbox, "broken.dcm")
	os.WriteFile(broken, append(make([]byte, 128), "DICM\x02\x00\x10\x00UI"...), 0o644)
	text := filepath.Join(e.inbox, "notes.txt")
	os.WriteFile(text, []byte("not an image at all\n"), 0o644)
	// Names a sender uses while writing, and DICOMDIR, are never taken.
	os.WriteFile(filepath.Join(e.inbox, "incoming.part"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(e.inbox, "DICOMDIR"), []byte("index"), 0o644)

	e.waitFor("valid and broken files", 30*time.Second, handled(append(valid, broken, text, linked)...))

	// A copy of an instance already scored, and the same UID with other bytes.
	dup := filepath.Join(e.inbox, "again", "copy.dcm")
	b, _ := os.ReadFile(valid[1])
	os.MkdirAll(filepath.Dir(dup), 0o755)
	os.WriteFile(dup, b, 0o644)
	var meta phantom.Meta
	inst, _, err := dicomio.Load(valid[2], dicomio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	meta.SOPInstanceUID, meta.StudyInstanceUID = inst.SOPInstanceUID, inst.StudyInstanceUID
	conflict := filepath.Join(e.inbox, "again", "conflict.dcm")
	writeDICOM(t, rng, conflict, meta)
	e.waitFor("duplicate and conflict", 30*time.Second, handled(dup, conflict))
	stop()

	for _, p := range valid {
		if st := e.statusOf(p); st != store.FileDone {
			t.Errorf("%s: status %q, want done", p, st)
		}
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("the linked file's target: %v", err)
	}
	if st := e.statusOf(linked); st != store.FileFailed {
		t.Errorf("link to a file outside the inbox: status %q, want failed", st)
	}
	if fi, err := os.Lstat(linked); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("refused link not left in place: %v", err)
	}
	if _, ok := e.decodedSizes[target]; ok {
		t.Errorf("the target of a refused link was read")
	}
	if e.decodedSizes[slow] != int64(len(slowBytes)) {
		t.Errorf("slow file decoded at %d bytes, complete is %d", e.decodedSizes[slow], len(slowBytes))
	}
	for _, p := range []string{broken, text} {
		if st := e.statusOf(p); st != store.FileFailed {
			t.Errorf("%s: status %q, want failed", p, st)
		}
		q := filepath.Join(e.quar, filepath.Base(p))
		if _, err := os.Stat(q); err != nil {
			t.Errorf("%s not in quarantine: %v", p, err)
		}
		reason, err := os.ReadFile(q + ".reason.txt")
		if err != nil || !strings.Contains(string(reason), "reason:") {
			t.Errorf("reason for %s: %q, %v", p, reason, err)
		}
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s still in the inbox after quarantine", p)
		}
	}
	if st := e.statusOf(dup); st != store.FileDuplicate {
		t.Errorf("duplicate: status %q", st)
	}
	if st := e.statusOf(conflict); st != store.FileConflict {
		t.Errorf("conflict: status %q", st)
	}
	if _, err := os.Stat(conflict); err != nil {
		t.Errorf("conflicting file must be kept: %v", err)
	}
	for _, name := range []string{"incoming.part", "DICOMDIR"} {
		if st := e.statusOf(filepath.Join(e.inbox, name)); st != "" {
			t.Errorf("%s was taken: %s", name, st)
		}
	}
	ctx := context.Background()
	want := e.checkState(ctx, len(valid))

	// Started again, the agent finds nothing new to do.
	e.mu.Lock()
	e.outcomes = nil
	e.mu.Unlock()
	stop = e.start()
	time.Sleep(2 * time.Second)
	stop()
	e.mu.Lock()
	for _, o := range e.outcomes {
		if o.Status != StatusSkipped {
			t.Errorf("after restart %s was %s, want skipped", o.Path, o.Status)
		}
	}
	e.mu.Unlock()
	if got := e.checkState(ctx, len(valid)); got != want {
		t.Errorf("state changed across restart: %+v then %+v", want, got)
	}
}

// checkState asserts one report per valid instance and returns the counts.
func (e *testEnv) checkState(ctx context.Context, valid int) string {
	e.t.Helper()
	c, err := e.db.Counts(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if c.Instances != valid || c.Scores != valid || c.Reports != valid {
		e.t.Errorf("instances/scores/reports = %d/%d/%d, want %d each", c.Instances, c.Scores, c.Reports, valid)
	}
	if c.Files[store.FileDuplicate] != 1 || c.Files[store.FileConflict] != 1 || c.Files[store.FileFailed] != 3 {
		e.t.Errorf("file counts = %v", c.Files)
	}
	rows, err := e.db.Reports(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rows {
		b, err := os.ReadFile(r.Path)
		if err != nil {
			e.t.Errorf("report %s: %v", r.Path, err)
			continue
		}
		var rep map[string]any
		if err := json.Unmarshal(b, &rep); err != nil {
			e.t.Errorf("report %s: %v", r.Path, err)
			continue
		}
		for _, k := range []string{"schema_version", "sop_instance_uid", "study_instance_uid", "series_instance_uid",
			"source_file", "model_version", "score", "threshold", "decision", "uncertainty", "timings"} {
			if _, ok := rep[k]; !ok {
				e.t.Errorf("report %s lacks %q", r.Path, k)
			}
		}
		if rep["sop_instance_uid"] != r.InstanceID {
			e.t.Errorf("report %s is for %v, stored for %s", r.Path, rep["sop_instance_uid"], r.InstanceID)
		}
		if _, err := os.Stat(r.HeatmapPath); err != nil {
			e.t.Errorf("heatmap of %s: %v", r.InstanceID, err)
		}
	}
	var n int
	filepath.WalkDir(e.reports, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".json") && !strings.HasPrefix(filepath.Base(p), "study") {
			n++
		}
		return nil
	})
	if n != valid {
		e.t.Errorf("%d report files on disk, want %d", n, valid)
	}
	return fmt.Sprintf("%d instances, %d reports, files %v", c.Instances, c.Reports, c.Files)
}
