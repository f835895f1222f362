package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// agentWith returns the test environment's agent with its configuration
// changed by tweak.
func (e *testEnv) agentWith(tweak func(*Config)) *Agent {
	a := e.agent()
	tweak(&a.cfg)
	return a
}

// runAgent runs a until the returned function is called.
func runAgent(t *testing.T, a *Agent) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("agent did not stop within 15s")
		}
	}
}

// A writer that pauses longer than stable_for (an SMB or NFS copy, a slow
// sender) must not lose its image: the half-written file is taken, found
// truncated, and waited for rather than quarantined; once complete it is
// scored. The file is never moved while its writer holds it.
func TestSlowWriterIsWaitedFor(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(21, 0))
	a := e.agentWith(func(c *Config) { c.WriteGrace = 30 * time.Second; c.RetryDelay = 200 * time.Millisecond })
	stop := runAgent(t, a)
	defer stop()
	body := writeDICOM(t, rng, "", phantom.Meta{})
	p := filepath.Join(e.inbox, "slow.dcm")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	chunk := len(body)/4 + 1
	for off := 0; off < len(body); off += chunk {
		if _, err := f.Write(body[off:min(off+chunk, len(body))]); err != nil {
			t.Fatal(err)
		}
		// Each pause is twice stable_for (700 ms): the agent takes the
		// file between chunks.
		time.Sleep(1500 * time.Millisecond)
	}
	f.Close()
	e.waitFor("the slow file", 30*time.Second, handled(p))
	if st := e.statusOf(p); st != store.FileDone {
		t.Fatalf("slow file: %s, want done", st)
	}
	if b, err := os.ReadFile(p); err != nil || len(b) != len(body) {
		t.Fatalf("slow file not where it was written, whole: %d bytes, %v", len(b), err)
	}
	if entries, _ := os.ReadDir(e.quar); len(entries) != 0 {
		t.Fatalf("quarantine holds %d entries", len(entries))
	}
	e.mu.Lock()
	retried := 0
	for _, o := range e.outcomes {
		if o.Path == p && o.Status == StatusRetry {
			retried++
		}
	}
	e.mu.Unlock()
	if retried == 0 {
		t.Log("the file was never taken half-written; the test proved nothing this run")
	}
}

// A truncated file that has stopped changing for longer than the grace is
// quarantined as before.
func TestTruncatedFileQuarantinedAfterGrace(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(22, 0))
	a := e.agentWith(func(c *Config) { c.WriteGrace = 2 * time.Second; c.RetryDelay = 200 * time.Millisecond })
	stop := runAgent(t, a)
	defer stop()
	body := writeDICOM(t, rng, "", phantom.Meta{})
	p := filepath.Join(e.inbox, "cut.dcm")
	os.WriteFile(p, body[:len(body)/2], 0o644)
	e.waitFor("the truncated file", 30*time.Second, handled(p))
	if st := e.statusOf(p); st != store.FileFailed {
		t.Fatalf("truncated file: %s, want failed", st)
	}
}

// mountTmpfs mounts a tmpfs of the given size on a new folder, or skips
// the test where that is not allowed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	os.MkdirAll(dir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a filler file until the filesystem at dir is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	return p
}

// A full disk under the reports, with no free-space floor to warn of it,
// is Sentinel's problem: valid images wait in the inbox, keep their
// attempts, /readyz fails, and once space is freed every one is scored.
func TestFullReportsDiskQuarantinesNothing(t *testing.T) {
	e := newTestEnv(t)
	e.reports = mountTmpfs(t, "1m")
	rng := rand.New(rand.NewPCG(23, 0))
	filler := fill(t, e.reports)
	a := e.agentWith(func(c *Config) {
		c.MaxAttempts = 2
		c.RetryDelay = 50 * time.Millisecond
		c.MaxRetryDelay = 100 * time.Millisecond
	})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	stop := runAgent(t, a)
	defer stop()
	var files []string
	for i := 0; i < 10; i++ {
		p := filepath.Join(e.inbox, fmt.Sprintf("f%02d.dcm", i))
		writeDICOM(t, rng, p, phantom.Meta{})
		files = append(files, p)
	}
	e.waitFor("a write to fail", 20*time.Second, func(os []Outcome) bool {
		for _, o := range os {
			if o.Status == StatusRetry {
				return true
			}
		}
		return false
	})
	time.Sleep(3 * time.Second) // several retry delays: the old code gave up by now
	if resp, err := http.Get(srv.URL + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while writes fail: %v %v", resp.Status, err)
	}
	for _, p := range files {
		if st := e.statusOf(p); st == store.FileFailed {
			t.Fatalf("%s quarantined for a full reports disk", p)
		}
	}
	os.Remove(filler)
	e.waitFor("every file once space is back", 60*time.Second, handled(files...))
	for _, p := range files {
		if st := e.statusOf(p); st != store.FileDone {
			t.Errorf("%s: %s, want done", p, st)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(srv.URL + "/readyz")
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still failing after space came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// With the database on a full disk too, nothing is stranded "processing":
// a settle that failed is retried, and once space is freed every file is
// recorded without a restart.
func TestFullDatabaseDiskRecoversWithoutRestart(t *testing.T) {
	if onPostgres {
		t.Skip("a full disk under the SQLite file")
	}
	e := newTestEnv(t)
	small := mountTmpfs(t, "8m")
	e.db.Close()
	e.dbPath = filepath.Join(small, "state.db")
	e.reports = filepath.Join(small, "reports")
	e.openDB()
	rng := rand.New(rand.NewPCG(24, 0))
	a := e.agentWith(func(c *Config) {
		c.MaxAttempts = 2
		c.RetryDelay = 50 * time.Millisecond
		c.MaxRetryDelay = 100 * time.Millisecond
		c.StateDir = small
	})
	stop := runAgent(t, a)
	defer stop()
	var files []string
	for i := 0; i < 3; i++ {
		p := filepath.Join(e.inbox, fmt.Sprintf("warm%02d.dcm", i))
		writeDICOM(t, rng, p, phantom.Meta{})
		files = append(files, p)
	}
	e.waitFor("the first files", 30*time.Second, handled(files...))
	filler := fill(t, small)
	for i := 0; i < 20; i++ {
		p := filepath.Join(e.inbox, fmt.Sprintf("f%02d.dcm", i))
		writeDICOM(t, rng, p, phantom.Meta{})
		files = append(files, p)
	}
	time.Sleep(4 * time.Second)
	for _, p := range files {
		if st := e.statusOf(p); st == store.FileFailed {
			t.Fatalf("%s quarantined for a full database disk", p)
		}
	}
	os.Remove(filler)
	e.waitFor("every file once space is back", 60*time.Second, handled(files...))
	for _, p := range files {
		if st := e.statusOf(p); st != store.FileDone {
			t.Errorf("%s: %s, want done", p, st)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		pend, proc, err := e.db.QueueDepth(context.Background())
		if err == nil && pend+proc == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %d pending, %d processing after space came back", pend, proc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ownSide tells Sentinel's own failures from the file's.
func TestOwnSideErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("heatmap: %w", &os.PathError{Op: "open", Path: "x", Err: syscall.EROFS}), true},
		{fmt.Errorf("dicomio: %w", sentinel.ErrInvalid), false},
		{errors.New("database is busy"), false},
		{nil, false},
	} {
		if got := ownSide(c.err); got != c.want {
			t.Errorf("ownSide(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// A 2 GiB file of junk is refused from its first bytes: it is never read
// whole into memory. A 2 GiB file that starts like DICOM is refused for
// its size before it is read.
func TestHugeFilesAreNotReadWhole(t *testing.T) {
	e := newTestEnv(t)
	a := e.agent()
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.bin")
	dcm := filepath.Join(dir, "huge.dcm")
	for _, p := range []string{junk, dcm} {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if p == dcm {
			f.Write(append(make([]byte, 128), "DICM"...))
		}
		if err := f.Truncate(2 << 30); err != nil {
			t.Skipf("no sparse files here: %v", err)
		}
		f.Close()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, c := range []struct {
		path string
		want error
	}{{junk, sentinel.ErrNotDICOM}, {dcm, sentinel.ErrTooLarge}} {
		o := a.Process(context.Background(), c.path)
		if o.Status != store.FileFailed || !errors.Is(o.Err, c.want) {
			t.Errorf("%s: %s %v, want failed with %v", filepath.Base(c.path), o.Status, o.Err, c.want)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("refusing two 2 GiB files allocated %d MiB", grew>>20)
	}
}

// An attempt is counted before the work: a file during which the agent
// died on each of its attempts is quarantined without being read again,
// and the files that were beside it when it did are processed one at a
// time and scored.
func TestFileThatKillsTheAgentIsGivenUp(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(25, 0))
	ctx := context.Background()
	killer := filepath.Join(e.inbox, "killer.dcm")
	bystander := filepath.Join(e.inbox, "bystander.dcm")
	writeDICOM(t, rng, killer, phantom.Meta{})
	writeDICOM(t, rng, bystander, phantom.Meta{})
	var items []store.QueueItem
	for _, p := range []string{killer, bystander} {
		fi, _ := os.Stat(p)
		items = append(items, store.QueueItem{Path: p, Size: fi.Size(), ModTimeNS: fi.ModTime().UnixNano(), FoundAt: time.Now()})
	}
	if err := e.db.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	// Three deaths with both in flight, then one with the killer alone.
	const maxAttempts = 3
	for i := 0; i <= maxAttempts; i++ {
		if i < maxAttempts {
			e.db.ClaimQueued(ctx, 2)
		} else {
			e.db.ClaimPaths(ctx, []string{killer})
		}
		if _, err := e.db.RequeueProcessing(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	var readKiller atomic.Bool
	a := e.agentWith(func(c *Config) { c.MaxAttempts = maxAttempts + 1 })
	inner := a.decode
	a.decode = func(p string) (sentinel.Instance, sentinel.Image, error) {
		if p == killer {
			readKiller.Store(true)
		}
		return inner(p)
	}
	stop := runAgent(t, a)
	e.waitFor("both files", 30*time.Second, handled(killer, bystander))
	stop()
	if readKiller.Load() {
		t.Error("the file given up on was read again")
	}
	if st := e.statusOf(killer); st != store.FileFailed {
		t.Errorf("killer: %s, want failed", st)
	}
	if st := e.statusOf(bystander); st != store.FileDone {
		t.Errorf("bystander: %s, want done", st)
	}
	reason, _ := os.ReadFile(filepath.Join(e.quar, "killer.dcm.reason.txt"))
	if !strings.Contains(string(reason), "gave up after 4 attempts") {
		t.Errorf("reason: %s", reason)
	}
}

// A link whose target lies inside the watched folder is read when the
// settings allow links.
func TestFollowLinksInsideInbox(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(26, 0))
	a := e.agentWith(func(c *Config) { c.FollowLinks = true })
	target := filepath.Join(e.inbox, "store", "real.dcm")
	os.MkdirAll(filepath.Dir(target), 0o755)
	writeDICOM(t, rng, target, phantom.Meta{})
	outside := filepath.Join(t.TempDir(), "secret.dcm")
	writeDICOM(t, rng, outside, phantom.Meta{})
	inLink, outLink := filepath.Join(e.inbox, "in.dcm"), filepath.Join(e.inbox, "out.dcm")
	os.Symlink(target, inLink)
	os.Symlink(outside, outLink)
	ctx := context.Background()
	if o := a.Process(ctx, target); o.Status != store.FileDone {
		t.Fatalf("target: %+v", o)
	}
	if o := a.Process(ctx, inLink); o.Status != store.FileDuplicate {
		t.Errorf("link inside the inbox: %s %v, want duplicate of its target", o.Status, o.Err)
	}
	if o := a.Process(ctx, outLink); o.Status != store.FileFailed || !strings.Contains(o.Err.Error(), "outside") {
		t.Errorf("link outside the inbox: %s %v, want refused", o.Status, o.Err)
	}
}

// Reports and heatmaps are group-readable and no more; a report reaches
// its final name only once its instance is recorded, and a stop between
// the two is mended at the next start, as are temporary files.
func TestReportModesAndMending(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(27, 0))
	a := e.agent()
	p := filepath.Join(e.inbox, "a.dcm")
	writeDICOM(t, rng, p, phantom.Meta{})
	o := a.Process(context.Background(), p)
	if o.Status != store.FileDone {
		t.Fatalf("process: %+v", o)
	}
	fi, err := os.Stat(o.ReportPath)
	if err != nil || fi.Mode().Perm() != fileMode {
		t.Fatalf("report mode %v, %v; want %v", fi.Mode().Perm(), err, fileMode)
	}
	// As a stop right after the record leaves it: the report under its
	// pending name, plus a stray temporary file and a pending report no
	// record names.
	if err := os.Rename(o.ReportPath, pendingPath(o.ReportPath)); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(filepath.Dir(o.ReportPath), ".x.json.123.tmp")
	orphan := pendingPath(filepath.Join(filepath.Dir(o.ReportPath), "never-recorded.json"))
	os.WriteFile(stray, []byte("{"), 0o600)
	os.WriteFile(orphan, []byte("{}"), 0o600)
	if err := a.mendReports(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.ReportPath); err != nil {
		t.Errorf("recorded report not put in place: %v", err)
	}
	for _, q := range []string{stray, orphan, pendingPath(o.ReportPath)} {
		if _, err := os.Stat(q); err == nil {
			t.Errorf("%s left behind", filepath.Base(q))
		}
	}
}

// A stop finishes the files in progress only: what was claimed and not
// started goes back to the queue with its attempt given back.
func TestStopDrainsOnlyFilesInProgress(t *testing.T) {
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(28, 0))
	files := moveInto(t, stage(t, rng, 40, 2), filepath.Join(e.inbox, "b"))
	var started atomic.Int32
	a := e.agentWith(func(c *Config) { c.Workers = 1; c.QueueSize = 40 })
	a.decode = func(p string) (sentinel.Instance, sentinel.Image, error) {
		started.Add(1)
		time.Sleep(300 * time.Millisecond)
		return dicomio.Load(p, dicomio.Options{})
	}
	stop := runAgent(t, a)
	e.waitFor("a first file", 30*time.Second, func(os []Outcome) bool { return len(os) >= 1 })
	stop()
	n := started.Load()
	if n > 4 {
		t.Errorf("%d files started after the stop was asked for; only the one in progress should finish", n)
	}
	ctx := context.Background()
	pend, proc, _ := e.db.QueueDepth(ctx)
	if proc != 0 || pend+int(n) < len(files) {
		t.Errorf("after the stop: %d pending, %d processing, %d started", pend, proc, n)
	}
	items, _ := e.db.ClaimQueued(ctx, len(files))
	for _, it := range items {
		if it.Attempts != 1 {
			t.Errorf("%s has %d attempts after an unstarted claim, want 1 (this one)", filepath.Base(it.Path), it.Attempts)
			break
		}
	}
}
