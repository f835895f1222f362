package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/dicomnet"
	"github.com/sentinel-pacs/sentinel/dicomout"
	"github.com/sentinel-pacs/sentinel/store"
)

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startStorescp runs dcmtk's storescp as DEST on addr, writing into dir,
// until the test ends or the returned function is called.
func startStorescp(t *testing.T, dir, addr string, extra ...string) func() {
	t.Helper()
	bin := dcmtk(t, "storescp")
	_, port := hostPort(t, addr)
	args := append([]string{"-od", dir, "-aet", "DEST", "+xa"}, extra...)
	cmd := exec.Command(bin, append(args, port)...)
	var out bytes.Buffer
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &out}, lockedWriter{&mu, &out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			mu.Lock()
			t.Logf("storescp:\n%s", out.String())
			mu.Unlock()
		}
	})
	waitUntil(t, "storescp to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return stop
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// dropInto copies files into dir.
func dropInto(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func outboxCounts(t *testing.T, db *store.DB) map[string]store.OutboxCount {
	t.Helper()
	cs, err := db.OutboxCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.OutboxCount{}
	for _, c := range cs {
		m[c.Destination] = c
	}
	return m
}

// checkDciodvfy fails the test on any line of dciodvfy's output that
// starts with "Error".
func checkDciodvfy(t *testing.T, path string) {
	t.Helper()
	bin := dcmtk(t, "dciodvfy")
	out, _ := exec.Command(bin, path).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "Error") {
			t.Errorf("dciodvfy %s: %s", filepath.Base(path), line)
		}
	}
}

func TestOutputsReachStorescpFolderAndWebhook(t *testing.T) {
	dcmdump := dcmtk(t, "dcmdump")
	destDir := t.TempDir()
	scpAddr := freeAddr(t)
	startStorescp(t, destDir, scpAddr)
	folder := t.TempDir()
	var hookMu sync.Mutex
	var hooks []sentinel.Report
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep sentinel.Report
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&rep) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		hookMu.Lock()
		hooks = append(hooks, rep)
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	e := newTestEnv(t)
	dc := receiverConfig()
	dc.Listen = ""
	dc.AssociationTimeout, dc.IdleTimeout, dc.WriteTimeout = 5*time.Second, 5*time.Second, 5*time.Second
	dc.Destinations = []Destination{
		{Name: "pacs", Kind: DestinationDICOM, AETitle: "DEST", Address: scpAddr, Outputs: []string{OutputSR, OutputSC}},
		{Name: "drop", Kind: DestinationFolder, Path: folder, Outputs: []string{OutputSR}},
		{Name: "ris", Kind: DestinationWebhook, URL: hook.URL, Outputs: []string{OutputReport}},
	}
	a, _, _ := e.dicomAgent(dc)
	files := writeStudy(t, t.TempDir(), 4, 2, 256)
	dropInto(t, e.inbox, files...)
	waitUntil(t, "every output sent", func() bool {
		c := outboxCounts(t, e.db)
		return c["pacs"].Sent == 4 && c["drop"].Sent == 2 && c["ris"].Sent == 2
	})
	for name, c := range outboxCounts(t, e.db) {
		if c.Pending != 0 || c.Failed != 0 {
			t.Errorf("%s: %+v", name, c)
		}
	}
	// storescp took an SR and an SC for each film; each passes dciodvfy,
	// dcmdump reads it, and the SC decodes through dicomio.
	var srs, scs []string
	entries, _ := os.ReadDir(destDir)
	for _, en := range entries {
		p := filepath.Join(destDir, en.Name())
		fm, err := dicomnet.ReadFileMeta(p)
		if err != nil {
			t.Errorf("%s: %v", en.Name(), err)
			continue
		}
		switch fm.SOPClassUID {
		case dicomout.SOPClassComprehensiveSR:
			srs = append(srs, p)
		case dicomout.SOPClassSecondaryCapture:
			scs = append(scs, p)
		}
		checkDciodvfy(t, p)
		if out, err := exec.Command(dcmdump, "-M", p).CombinedOutput(); err != nil || bytes.Contains(out, []byte("E: ")) {
			t.Errorf("dcmdump %s: %v\n%s", en.Name(), err, out)
		}
		src, err := dicomout.ReadSource(p)
		if err != nil || !dicomout.IsOwnOutput(src) {
			t.Errorf("%s: read back %v, own output %v", en.Name(), err, dicomout.IsOwnOutput(src))
		}
	}
	if len(srs) != 2 || len(scs) != 2 {
		t.Fatalf("storescp holds %d SR and %d SC, want 2 and 2", len(srs), len(scs))
	}
	for _, p := range scs {
		if _, img, err := dicomio.Load(p, dicomio.Options{}); err != nil || img.Width != 256 {
			t.Errorf("SC %s through dicomio: %v (width %d)", filepath.Base(p), err, img.Width)
		}
	}
	// The folder holds the SRs, byte for byte as storescp got them.
	dropped, _ := filepath.Glob(filepath.Join(folder, "*", "*.dcm"))
	if len(dropped) != 2 {
		t.Fatalf("folder destination holds %v", dropped)
	}
	for _, p := range dropped {
		_, got := dataset(t, p)
		fm, _ := dicomnet.ReadFileMeta(p)
		matches, _ := filepath.Glob(filepath.Join(destDir, "*"+fm.SOPInstanceUID+"*"))
		if len(matches) != 1 {
			t.Errorf("%s not in storescp's folder", fm.SOPInstanceUID)
			continue
		}
		if _, want := dataset(t, matches[0]); !bytes.Equal(got, want) {
			t.Errorf("%s differs between the folder and storescp", fm.SOPInstanceUID)
		}
	}
	hookMu.Lock()
	if len(hooks) != 2 || hooks[0].InstanceID == "" || hooks[0].ModelVersion != "fake-1" {
		t.Errorf("webhook got %+v", hooks)
	}
	hookMu.Unlock()
	// The files of sent objects are gone from the outbox folder.
	if left, _ := os.ReadDir(filepath.Join(e.dir, "outbox")); len(left) != 0 {
		t.Errorf("outbox folder keeps %d files after every send", len(left))
	}
	body := metricsText(t, a)
	if !strings.Contains(body, `sentinel_outbox_objects{destination="pacs",state="sent"} 4`) {
		t.Errorf("/metrics lacks the outbox:\n%s", body)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/outbox?state=sent&limit=100", nil))
	var api struct {
		Destinations []store.OutboxCount
		Items        []outboxJSON
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &api); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("/api/outbox: %d %v %s", rec.Code, err, rec.Body.String())
	}
	if len(api.Items) != 8 || len(api.Destinations) != 3 {
		t.Errorf("/api/outbox: %d items, destinations %+v", len(api.Items), api.Destinations)
	}
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/outbox?state=lost", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("/api/outbox?state=lost: %d", rec.Code)
	}
}

func TestOutboxRetriesSetsAsideAndResumes(t *testing.T) {
	e := newTestEnv(t)
	down := freeAddr(t) // nothing listens: every association is refused
	later := freeAddr(t)
	dc := receiverConfig()
	dc.Listen = ""
	dc.AssociationTimeout = 2 * time.Second
	dc.MaxAttempts = 100
	dc.Backoff, dc.MaxBackoff = 50*time.Millisecond, 100*time.Millisecond
	dc.Destinations = []Destination{
		{Name: "down", Kind: DestinationDICOM, AETitle: "DEST", Address: down, Outputs: []string{OutputSR}},
		{Name: "later", Kind: DestinationDICOM, AETitle: "DEST", Address: later, Outputs: []string{OutputSR}},
	}
	_, _, stop := e.dicomAgent(dc)
	dropInto(t, e.inbox, writeStudy(t, t.TempDir(), 5, 1, 128)...)
	attempts := func() map[string]store.OutboxItem {
		items, err := e.db.OutboxItems(context.Background(), "", 10)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]store.OutboxItem{}
		for _, it := range items {
			m[it.Destination] = it
		}
		return m
	}
	waitUntil(t, "two failed attempts to each destination", func() bool {
		m := attempts()
		return m["down"].Attempts >= 2 && m["later"].Attempts >= 2
	})
	stop()
	for name, it := range attempts() {
		if it.State != store.OutboxPending || !strings.Contains(it.LastError, "connection refused") {
			t.Errorf("%s after failed attempts: state %s, last error %q", name, it.State, it.LastError)
		}
	}
	// One destination comes up while the agent is stopped: the next start
	// sends what waited. The other stays down, and with three attempts
	// allowed its object is set aside with its reason.
	dir := t.TempDir()
	startStorescp(t, dir, later)
	dc.MaxAttempts = 3
	e.dicomAgent(dc)
	waitUntil(t, "the waiting object sent after the restart, the other set aside", func() bool {
		c := outboxCounts(t, e.db)
		return c["later"].Sent == 1 && c["down"].Failed == 1
	})
	if got, _ := os.ReadDir(dir); len(got) != 1 {
		t.Errorf("storescp holds %d objects, want 1", len(got))
	}
	it := attempts()["down"]
	if it.Attempts < 3 || !strings.Contains(it.LastError, "connection refused") {
		t.Errorf("set aside after %d attempts with reason %q", it.Attempts, it.LastError)
	}
	// The file of the object set aside is kept, for a retry.
	if _, err := os.Stat(it.Path); err != nil {
		t.Errorf("the file of an object set aside: %v", err)
	}
}

func TestSentinelSendsToSentinel(t *testing.T) {
	receiver := newTestEnv(t)
	rc := receiverConfig()
	rc.AETitle = "SENTINEL2"
	rc.AllowedCallers = []dicomnet.Caller{{AETitle: "SENTINEL", Host: "127.0.0.1"}}
	_, raddr, _ := receiver.dicomAgent(rc)

	sender := newTestEnv(t)
	sc := receiverConfig()
	sc.Listen = ""
	sc.Destinations = []Destination{{Name: "peer", Kind: DestinationDICOM, AETitle: "SENTINEL2", Address: raddr, Outputs: []string{OutputSC}}}
	sender.dicomAgent(sc)
	dropInto(t, sender.inbox, writeStudy(t, t.TempDir(), 6, 1, 128)...)
	waitUntil(t, "the SC sent to the peer", func() bool { return outboxCounts(t, sender.db)["peer"].Sent == 1 })
	var got []string
	waitUntil(t, "the SC in the peer's inbox", func() bool {
		got, _ = filepath.Glob(filepath.Join(receiver.inbox, "SENTINEL", "*", "*.dcm"))
		return len(got) == 1
	})
	fm, err := dicomnet.ReadFileMeta(got[0])
	if err != nil || fm.SOPClassUID != dicomout.SOPClassSecondaryCapture || fm.SourceAETitle != "SENTINEL" {
		t.Fatalf("peer stored %+v, %v", fm, err)
	}
	src, err := dicomout.ReadSource(got[0])
	if err != nil || !dicomout.IsOwnOutput(src) {
		t.Errorf("peer's copy is not recognised as Sentinel's output: %v", err)
	}
}

// A revised report is sent again as a new SR whose Predecessor Documents
// Sequence names the SR it replaces.
func TestRevisionSendsSRWithPredecessor(t *testing.T) {
	e := newTestEnv(t)
	folder := t.TempDir()
	files := writeStudy(t, e.inbox, 7, 2, 128)
	var next atomic.Pointer[thresholdModel]
	cfg := Config{Inbox: []string{e.inbox}, Reports: e.reports, Quarantine: e.quar, StateDir: e.dir,
		StableFor: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond, StudyQuiet: 100 * time.Millisecond,
		ReviseWithin: time.Hour, ModelCheckEvery: 50 * time.Millisecond,
		FollowModel: func(running sentinel.ModelInfo) (Scorer, error) {
			if m := next.Load(); m != nil && m.version != running.Version {
				return *m, nil
			}
			return nil, nil
		}}
	dc := receiverConfig()
	dc.Listen = ""
	dc.Destinations = []Destination{{Name: "drop", Kind: DestinationFolder, Path: folder, Outputs: []string{OutputSR}}}
	cfg.DICOM = dc
	decode := func(p string) (sentinel.Instance, sentinel.Image, error) { return dicomio.Load(p, dicomio.Options{}) }
	a := New(cfg, e.db, thresholdModel{fakeModel{16}, "a", 2}, decode, dicomio.Resample) // everything normal
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitUntil(t, "the first SRs sent", func() bool { return outboxCounts(t, e.db)["drop"].Sent == 2 })
	next.Store(&thresholdModel{fakeModel{16}, "b", -1}) // everything abnormal: both revised
	waitUntil(t, "the revised SRs sent", func() bool { return outboxCounts(t, e.db)["drop"].Sent == 4 })
	for _, f := range files {
		src, err := dicomout.ReadSource(f)
		if err != nil {
			t.Fatal(err)
		}
		first := dicomout.ReportReference(src, "a", 1)
		second := dicomout.ReportReference(src, "b", 2)
		dir := filepath.Join(folder, SafeName(src.StudyInstanceUID))
		if _, err := os.Stat(filepath.Join(dir, first.SOPInstanceUID+".dcm")); err != nil {
			t.Errorf("first SR: %v", err)
		}
		b, err := os.ReadFile(filepath.Join(dir, second.SOPInstanceUID+".dcm"))
		if err != nil {
			t.Fatalf("revised SR: %v", err)
		}
		// (0040,A360) Predecessor Documents Sequence, naming the first SR.
		if !bytes.Contains(b, []byte{0x40, 0x00, 0x60, 0xA3}) || !bytes.Contains(b, []byte(first.SOPInstanceUID)) {
			t.Errorf("the revised SR of %s does not name its predecessor %s", filepath.Base(f), first.SOPInstanceUID)
		}
		checkDciodvfy(t, filepath.Join(dir, second.SOPInstanceUID+".dcm"))
	}
}

// TestOutboxSweepRemovesOnlyOldOrphans checks the sweep at start: an old
// file no row names is removed; a file a row names, and a young one, stay.
func TestOutboxSweepRemovesOnlyOldOrphans(t *testing.T) {
	e := newTestEnv(t)
	a := e.agent()
	a.cfg.DICOM = receiverConfig()
	a.cfg.StateDir = e.dir
	o, err := a.newOutbox()
	if err != nil {
		t.Fatal(err)
	}
	dir := a.outboxDir()
	old := time.Now().Add(-time.Hour)
	write := func(name string, mtime time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
		return p
	}
	orphan := write("orphan.dcm", old)
	young := write("young.dcm", time.Now())
	known := write("known.dcm", old)
	ctx := context.Background()
	if _, err := e.db.EnqueueOutbox(ctx, []store.OutboxItem{{Destination: "pacs", Object: "2.25.9", Output: "sr",
		InstanceID: "i", Revision: 1, Path: known}}); err != nil {
		t.Fatal(err)
	}
	o.sweep(ctx, time.Now().Add(-orphanAge))
	if _, err := os.Stat(orphan); err == nil {
		t.Error("an old orphan was kept")
	}
	for _, p := range []string{young, known} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(p), err)
		}
	}
}

// TestOnlyFlaggedDestinations checks that a destination set to take only
// flagged reports gets the abnormal and out-of-distribution ones, first
// reports and revisions, and nothing else.
func TestOnlyFlaggedDestinations(t *testing.T) {
	e := newTestEnv(t)
	a := e.agent()
	a.cfg.StateDir = e.dir
	dc := receiverConfig()
	dc.Destinations = []Destination{
		{Name: "all", Kind: DestinationWebhook, URL: "http://127.0.0.1:1/", Outputs: []string{OutputReport}},
		{Name: "flagged", Kind: DestinationWebhook, URL: "http://127.0.0.1:1/", Outputs: []string{OutputReport}, OnlyFlagged: true},
	}
	a.cfg.DICOM = dc
	for _, c := range []struct {
		decision sentinel.Decision
		revision int
		want     []string
	}{
		{sentinel.DecisionNotFlagged, 1, []string{"all"}},
		{sentinel.DecisionUncertain, 1, []string{"all"}},
		{sentinel.DecisionAbnormal, 1, []string{"all", "flagged"}},
		{sentinel.DecisionOutOfDistribution, 1, []string{"all", "flagged"}},
		{sentinel.DecisionAbnormal, 2, []string{"all", "flagged"}},
	} {
		rep := sentinel.Report{InstanceID: "1.2." + string(c.decision), Decision: c.decision, Revision: c.revision}
		p, err := a.makeOutputs(context.Background(), dc, rep, "", sentinel.Image{}, sentinel.Image{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range p.items {
			got = append(got, it.Destination)
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s revision %d goes to %v, want %v", c.decision, c.revision, got, c.want)
		}
	}
}
