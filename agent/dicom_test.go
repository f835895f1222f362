package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/dicomnet"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// dcmtk returns the path of a dcmtk (or dicom3tools) program, or skips
// the test when it is not installed.
func dcmtk(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install dcmtk dicom3tools): skipping", name)
	}
	return p
}

// receiverConfig is a receiver on a free loopback port that takes
// everything Sentinel decodes from MODALITY.
func receiverConfig() *DICOMConfig {
	return &DICOMConfig{
		Listen:           "127.0.0.1:0",
		AETitle:          "SENTINEL",
		AllowedCallers:   []dicomnet.Caller{{AETitle: "MODALITY", Host: "127.0.0.1"}, {AETitle: "SENTINEL2"}},
		SOPClasses:       dicomnet.RadiographSOPClasses,
		TransferSyntaxes: []string{dicomnet.ExplicitVRLittleEndian, dicomnet.ImplicitVRLittleEndian, dicomnet.JPEGLosslessSV1, dicomnet.JPEGLSLossless, dicomnet.RLELossless},
		MaxAssociations:  8,
		MaxAttempts:      3,
		Backoff:          100 * time.Millisecond,
		MaxBackoff:       time.Second,
	}
}

// dicomAgent runs an agent with dc on e until the test ends, and returns
// it with the receiver's address ("" without a receiver) and a function
// that stops it.
func (e *testEnv) dicomAgent(dc *DICOMConfig) (*Agent, string, func()) {
	e.t.Helper()
	a := e.agent()
	a.cfg.DICOM = dc
	a.cfg.StateDir = e.dir
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				e.t.Error("agent did not stop within 20s")
			}
		})
	}
	e.t.Cleanup(stop)
	addr := ""
	if dc.Listen != "" {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if s := a.node.server.Load(); s != nil && s.Addr() != nil {
				addr = s.Addr().String()
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatal("the receiver did not start")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return a, addr, stop
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func runTool(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// writeStudy writes n phantom radiographs of one study into dir.
func writeStudy(t *testing.T, dir string, seed uint64, n, size int) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	study := phantom.NewUID(rng)
	var paths []string
	for i := range n {
		pix := phantom.Generate(rng, size, phantom.Kinds[i%len(phantom.Kinds)])
		p := filepath.Join(dir, fmt.Sprintf("ph%d-%03d.dcm", seed, i))
		meta := phantom.Meta{PatientID: "P1", StudyInstanceUID: study, SeriesInstanceUID: study + ".1",
			SOPInstanceUID: phantom.NewUID(rng), AccessionNumber: "A1"}
		if err := phantom.WriteDICOM(p, pix, size, meta); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// cxr8 lists the real films of ../shared/data/cxr8/dicom whose name holds
// sub; nil when the folder is absent.
func cxr8(sub string) []string {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "shared", "data", "cxr8", "dicom", "*"+sub+"*.dcm"))
	return paths
}

// dataset returns a Part 10 file's File Meta Information and data set
// bytes.
func dataset(t *testing.T, path string) (dicomnet.FileMeta, []byte) {
	t.Helper()
	fm, err := dicomnet.ReadFileMeta(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fm, b[fm.DatasetOffset:]
}

// inboxFiles lists the files under root, partial ones included.
func inboxFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// doneByInstance counts the outcomes "done" by instance.
func (e *testEnv) doneByInstance() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return doneIn(e.outcomes)
}

func doneIn(outcomes []Outcome) map[string]int {
	n := map[string]int{}
	for _, o := range outcomes {
		if o.Status == store.FileDone {
			n[o.InstanceID]++
		}
	}
	return n
}

func instanceIDOf(t *testing.T, path string) string {
	t.Helper()
	inst, _, err := dicomio.Load(path, dicomio.Options{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return inst.ID
}

func TestReceiverEchoAndRefusals(t *testing.T) {
	echoscu := dcmtk(t, "echoscu")
	storescu := dcmtk(t, "storescu")
	e := newTestEnv(t)
	dc := receiverConfig()
	dc.SOPClasses = []string{dicomnet.CRImageStorage, dicomnet.DXImageStorageForPresentation} // not Secondary Capture
	a, addr, _ := e.dicomAgent(dc)
	host, port := hostPort(t, addr)
	if out, err := runTool(t, echoscu, "-aet", "MODALITY", "-aec", "SENTINEL", host, port); err != nil {
		t.Fatalf("echoscu: %v\n%s", err, out)
	}
	out, err := runTool(t, echoscu, "-aet", "STRANGER", "-aec", "SENTINEL", host, port)
	if err == nil || !strings.Contains(out, "Calling AE Title Not Recognized") {
		t.Errorf("echoscu from an unknown calling AE: %v\n%s", err, out)
	}
	// The phantoms are Secondary Capture, which this receiver does not
	// take: proposing only their class, the association is rejected;
	// proposing every storage class, the object has no context.
	files := writeStudy(t, t.TempDir(), 1, 1, 64)
	out, err = runTool(t, storescu, "-R", "-aet", "MODALITY", "-aec", "SENTINEL", host, port, files[0])
	if err == nil || !strings.Contains(out, "Rejected Permanent") {
		t.Errorf("storescu -R of an unaccepted SOP class: %v\n%s", err, out)
	}
	out, err = runTool(t, storescu, "-aet", "MODALITY", "-aec", "SENTINEL", host, port, files[0])
	if err == nil || !strings.Contains(out, "No presentation context") {
		t.Errorf("storescu of an unaccepted SOP class: %v\n%s", err, out)
	}
	stats, ok := a.DICOMStats()
	if !ok || stats.Echoes != 1 || stats.Rejected[dicomnet.RejectCallingAE] != 1 || stats.Rejected[dicomnet.RejectNoContext] != 1 {
		t.Errorf("stats %+v", stats)
	}
	if left := inboxFiles(t, e.inbox); len(left) != 0 {
		t.Errorf("refused objects stored: %v", left)
	}
	// /metrics shows the receiver.
	body := metricsText(t, a)
	for _, want := range []string{`sentinel_dicom_associations_rejected_total{reason="calling-AE-title-not-recognized"} 1`,
		"sentinel_dicom_echoes_total 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func metricsText(t *testing.T, a *Agent) string {
	t.Helper()
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			fmt.Fprintf(&b, "%s %g\n", name, v)
		}
	}
	return b.String()
}

func TestReceiverStorescuIntoInbox(t *testing.T) {
	storescu := dcmtk(t, "storescu")
	e := newTestEnv(t)
	a, addr, _ := e.dicomAgent(receiverConfig())
	host, port := hostPort(t, addr)
	native := writeStudy(t, t.TempDir(), 2, 8, 128)
	if real := cxr8("explicit_le"); len(real) > 0 {
		native = append(native, real...)
	} else {
		t.Log("../shared/data/cxr8/dicom not found: phantoms only")
	}
	// Several associations at once.
	const procs = 3
	var wg sync.WaitGroup
	errs := make([]error, procs)
	outs := make([]string, procs)
	for p := range procs {
		var mine []string
		for i := p; i < len(native); i += procs {
			mine = append(mine, native[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[p], errs[p] = runTool(t, storescu, append([]string{"-aet", "MODALITY", "-aec", "SENTINEL", host, port}, mine...)...)
		}()
	}
	wg.Wait()
	for p := range procs {
		if errs[p] != nil {
			t.Fatalf("storescu %d: %v\n%s", p, errs[p], outs[p])
		}
	}
	sent := append([]string(nil), native...)
	// Compressed films go in their own transfer syntax.
	for _, c := range []struct{ option, files string }{{"-xs", "jpeg_lossless_sv1"}, {"-xt", "jpeg_ls_lossless"}, {"-xr", "rle"}} {
		files := cxr8(c.files)
		if len(files) > 2 {
			files = files[:2]
		}
		if len(files) == 0 {
			continue
		}
		if out, err := runTool(t, storescu, append([]string{c.option, "-aet", "MODALITY", "-aec", "SENTINEL", host, port}, files...)...); err != nil {
			t.Fatalf("storescu %s: %v\n%s", c.option, err, out)
		}
		sent = append(sent, files...)
	}
	t.Logf("%d objects sent over %d parallel associations and %d more", len(sent), procs, len(sent)-len(native))
	want := map[string]string{}
	for _, f := range sent {
		want[instanceIDOf(t, f)] = f
	}
	e.waitFor("every received object reported", 3*time.Minute, func(os []Outcome) bool {
		return len(doneIn(os)) >= len(want)
	})
	time.Sleep(500 * time.Millisecond) // a second report would come now
	done := e.doneByInstance()
	for id, src := range want {
		if done[id] != 1 {
			t.Errorf("%s reported %d times, want once", filepath.Base(src), done[id])
		}
	}
	if len(done) != len(want) {
		t.Errorf("%d instances reported, %d sent", len(done), len(want))
	}
	// Each stored inbox file holds the data set byte for byte as sent.
	e.mu.Lock()
	outcomes := append([]Outcome(nil), e.outcomes...)
	e.mu.Unlock()
	for _, o := range outcomes {
		if o.Status != store.FileDone {
			continue
		}
		src := want[o.InstanceID]
		fm, got := dataset(t, o.Path)
		sm, exp := dataset(t, src)
		if !bytes.Equal(got, exp) {
			t.Errorf("%s: stored data set (%d bytes) differs from the one sent (%d bytes)", filepath.Base(src), len(got), len(exp))
		}
		if fm.TransferSyntaxUID != sm.TransferSyntaxUID || fm.SourceAETitle != "MODALITY" {
			t.Errorf("%s: stored meta %+v", filepath.Base(src), fm)
		}
		if !strings.HasPrefix(o.Path, filepath.Join(e.inbox, "MODALITY")+string(filepath.Separator)) {
			t.Errorf("stored at %s, not under the calling AE's folder", o.Path)
		}
	}
	st, _ := a.DICOMStats()
	if st.ObjectsReceived != uint64(len(sent)) || st.Aborted != 0 || len(st.StoresFailed) != 0 {
		t.Errorf("stats %+v, %d sent", st, len(sent))
	}
}

// failingReader gives the first half of a data set, waits for the
// spool's partial file, then fails, which makes the SCU abort the
// association halfway through the object.
type failingReader struct {
	data  []byte
	half  int
	off   int
	ready func() bool
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.off < r.half {
		n := copy(p, r.data[r.off:r.half])
		r.off += n
		return n, nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for !r.ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return 0, errors.New("sender gave up")
}

func TestReceiverAbortLeavesNothingAndPauses(t *testing.T) {
	e := newTestEnv(t)
	a, addr, _ := e.dicomAgent(receiverConfig())
	files := writeStudy(t, t.TempDir(), 3, 1, 512)
	fm, ds := dataset(t, files[0])
	ctx := context.Background()
	dial := func() *dicomnet.Association {
		assoc, err := dicomnet.Dial(ctx, addr, "MODALITY", "SENTINEL", dicomnet.DialOptions{MaxPDULength: 16384,
			Contexts: []dicomnet.PresentationContext{{AbstractSyntax: fm.SOPClassUID, TransferSyntaxes: []string{fm.TransferSyntaxUID}}}})
		if err != nil {
			t.Fatal(err)
		}
		return assoc
	}
	assoc := dial()
	partial := func() bool {
		for _, f := range inboxFiles(t, e.inbox) {
			if strings.HasSuffix(f, ".part") {
				return true
			}
		}
		return false
	}
	_, err := assoc.Store(ctx, fm.SOPClassUID, fm.SOPInstanceUID, fm.TransferSyntaxUID,
		&failingReader{data: ds, half: len(ds) / 2, ready: partial})
	if err == nil {
		t.Fatal("a store whose data set failed halfway succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := a.DICOMStats()
		if st.Aborted == 1 && st.Active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the abort was not seen: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if left := inboxFiles(t, e.inbox); len(left) != 0 {
		t.Errorf("an aborted transfer left %v", left)
	}
	// While ingest is paused by the free-space floor, a store answers
	// "out of resources" and writes nothing.
	a.floor.Store(1 << 62)
	waitUntil(t, "ingest paused", func() bool { return a.paused.Load() })
	assoc = dial()
	st, err := assoc.Store(ctx, fm.SOPClassUID, fm.SOPInstanceUID, fm.TransferSyntaxUID, bytes.NewReader(ds))
	if err != nil || st != dicomnet.StatusOutOfResources {
		t.Errorf("store while paused: 0x%04X %v, want 0xA700", st, err)
	}
	if left := inboxFiles(t, e.inbox); len(left) != 0 {
		t.Errorf("a store while paused left %v", left)
	}
	// Once space is back, it is taken.
	a.floor.Store(0)
	waitUntil(t, "ingest resumed", func() bool { return !a.paused.Load() })
	st, err = assoc.Store(ctx, fm.SOPClassUID, fm.SOPInstanceUID, fm.TransferSyntaxUID, bytes.NewReader(ds))
	if err != nil || st != dicomnet.StatusSuccess {
		t.Fatalf("store after resuming: 0x%04X %v", st, err)
	}
	assoc.Release(ctx)
	id := instanceIDOf(t, files[0])
	e.waitFor("the object reported", time.Minute, func(os []Outcome) bool { return doneIn(os)[id] == 1 })
}

// corpusSample picks, from the DICOM conformance corpus's inventory, up to
// two radiographs (CR, DX, SC) the inventory says decode, of each transfer
// syntax storescu can propose, with the storescu option that proposes it.
func corpusSample(t *testing.T) map[string][]string {
	t.Helper()
	root := filepath.Join("..", "..", "shared", "data", "dicom")
	inv, err := os.ReadFile(filepath.Join(root, "INVENTORY.tsv"))
	if err != nil {
		t.Skipf("%s not found: skipping the corpus sample", root)
	}
	option := map[string]string{
		dicomnet.ExplicitVRLittleEndian: "-xe", dicomnet.ImplicitVRLittleEndian: "",
		dicomnet.DeflatedExplicitVRLittleEndian: "-xd", dicomnet.ExplicitVRBigEndian: "-xb",
		dicomnet.JPEGBaseline: "-xy", dicomnet.JPEGExtended: "-xx", dicomnet.JPEGLosslessSV1: "-xs",
		dicomnet.JPEGLSLossless: "-xt", dicomnet.JPEGLSNearLossless: "-xu",
		dicomnet.JPEG2000Lossless: "-xv", dicomnet.JPEG2000: "-xw", dicomnet.RLELossless: "-xr",
	}
	byOption := map[string][]string{}
	seenUID := map[string]bool{}
	lines := strings.Split(string(inv), "\n")
	slices.Sort(lines[1:])
	for _, line := range lines[1:] {
		f := strings.Split(line, "\t")
		if len(f) < 23 || f[2] != "ok" || f[22] == "fail" || !strings.Contains("Computed Radiography|Digital X-Ray|Secondary Capture", strings.SplitN(f[6], " Image", 2)[0]) {
			continue
		}
		opt, ok := option[f[3]]
		size, _ := strconv.Atoi(f[1])
		if !ok || size > 6<<20 || len(byOption[opt]) >= 2 {
			continue
		}
		p := filepath.Join(root, f[0])
		fm, err := dicomnet.ReadFileMeta(p)
		if err != nil || seenUID[fm.SOPInstanceUID] || fm.TransferSyntaxUID != f[3] {
			continue
		}
		seenUID[fm.SOPInstanceUID] = true
		byOption[opt] = append(byOption[opt], p)
	}
	return byOption
}

// A sample of the conformance corpus, in every transfer syntax Sentinel
// takes: each object is stored byte for byte as sent and handled once.
// storescu re-encodes some data sets as it sends them (it drops group
// lengths, for one), so what was sent is what dcmtk's storescp stores in
// its bit-preserving mode (+B) from the same storescu command.
func TestReceiverCorpusSample(t *testing.T) {
	storescu := dcmtk(t, "storescu")
	sample := corpusSample(t)
	e := newTestEnv(t)
	dc := receiverConfig()
	dc.TransferSyntaxes = []string{dicomnet.ExplicitVRLittleEndian, dicomnet.ImplicitVRLittleEndian,
		dicomnet.ExplicitVRBigEndian, dicomnet.DeflatedExplicitVRLittleEndian, dicomnet.JPEGLosslessSV1,
		dicomnet.JPEGLossless, dicomnet.JPEGLSLossless, dicomnet.JPEG2000Lossless, dicomnet.RLELossless,
		dicomnet.JPEGBaseline, dicomnet.JPEGExtended, dicomnet.JPEGLSNearLossless, dicomnet.JPEG2000}
	_, addr, _ := e.dicomAgent(dc)
	host, port := hostPort(t, addr)
	refDir := t.TempDir()
	refAddr := freeAddr(t)
	startStorescp(t, refDir, refAddr, "+B")
	refHost, refPort := hostPort(t, refAddr)
	var sent []string
	groups := 0
	for opt, files := range sample {
		send := func(aec, host, port string, files ...string) (string, error) {
			args := []string{"-aet", "MODALITY", "-aec", aec, host, port}
			if opt != "" {
				args = append([]string{opt}, args...)
			}
			return runTool(t, storescu, append(args, files...)...)
		}
		var ok []string
		for _, f := range files {
			// A file storescu cannot send (no File Meta Information, say)
			// is left out: the sender's limit, not the receiver's.
			if out, err := send("DEST", refHost, refPort, f); err != nil {
				t.Logf("storescu %s cannot send %s: %v\n%s", opt, f, err, out)
				continue
			}
			ok = append(ok, f)
		}
		if len(ok) == 0 {
			continue
		}
		if out, err := send("SENTINEL", host, port, ok...); err != nil {
			t.Errorf("storescu %s to Sentinel: %v\n%s", opt, err, out)
			continue
		}
		sent = append(sent, ok...)
		groups++
	}
	t.Logf("%d corpus files sent, in %d transfer syntaxes", len(sent), groups)
	stored := map[string]string{} // inbox path -> source
	for _, src := range sent {
		fm, err := dicomnet.ReadFileMeta(src)
		if err != nil {
			t.Fatal(err)
		}
		refs, _ := filepath.Glob(filepath.Join(refDir, "*."+fm.SOPInstanceUID))
		if len(refs) != 1 {
			t.Errorf("%s: storescp +B stored %d files", src, len(refs))
			continue
		}
		_, sd := dataset(t, refs[0])
		matches, _ := filepath.Glob(filepath.Join(e.inbox, "MODALITY", "*", SafeName(fm.SOPInstanceUID)+".dcm"))
		if len(matches) != 1 {
			t.Errorf("%s: %d stored files", src, len(matches))
			continue
		}
		abs, _ := filepath.Abs(matches[0])
		stored[abs] = src
		if _, got := dataset(t, matches[0]); !bytes.Equal(got, sd) {
			t.Errorf("%s: stored data set differs from the one sent (as storescp +B stored it)", src)
		}
	}
	e.waitFor("every stored object handled", 5*time.Minute, func(os []Outcome) bool {
		n := 0
		for _, o := range os {
			if _, ok := stored[o.Path]; ok && o.Status != StatusRetry {
				n++
			}
		}
		return n >= len(stored)
	})
	time.Sleep(500 * time.Millisecond)
	e.mu.Lock()
	defer e.mu.Unlock()
	count := map[string]int{}
	for _, o := range e.outcomes {
		if o.Status != StatusRetry {
			count[o.Path]++
		}
	}
	for p, src := range stored {
		if count[p] != 1 {
			t.Errorf("%s handled %d times, want once", src, count[p])
		}
	}
}
