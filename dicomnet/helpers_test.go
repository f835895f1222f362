package dicomnet

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain fails the run if goroutines of this package outlive the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintln(os.Stderr, "goroutines left running after the tests:\n"+leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines returns the stacks of goroutines running code of this
// package, waiting up to wait for them to end.
func leakedGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "dicomnet.") && !strings.Contains(g, "leakedGoroutines") && !strings.Contains(g, "TestMain") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer is a log sink for several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testLogger logs to a buffer shown when the test fails.
func testLogger(t testing.TB) (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// startServer serves cfg on a free loopback port until the test ends.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger(t)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Serve did not return after its context was cancelled")
		}
	})
	return s, ln.Addr().String()
}

// spoolServer serves a SpoolHandler on a temporary folder.
func spoolServer(t testing.TB, cfg Config) (*Server, string, string) {
	t.Helper()
	root := t.TempDir()
	log, _ := testLogger(t)
	h, err := NewSpoolHandler(SpoolConfig{Root: root, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Handler == nil {
		cfg.Handler = h
	}
	if cfg.AETitle == "" {
		cfg.AETitle = "SENTINEL"
	}
	if cfg.SOPClasses == nil {
		cfg.SOPClasses = RadiographSOPClasses
	}
	cfg.Logger = log
	s, addr := startServer(t, cfg)
	return s, addr, root
}

// elem is a data set element for the test encoders; an SQ's items are in
// items, each encoded with undefined length when undefined is set.
type elem struct {
	group, elem uint16
	vr          string
	value       []byte
	items       [][]elem
	undefined   bool
}

func str(g, e uint16, vr, v string) elem {
	b := []byte(v)
	if len(b)%2 == 1 {
		if vr == "UI" {
			b = append(b, 0)
		} else {
			b = append(b, ' ')
		}
	}
	return elem{group: g, elem: e, vr: vr, value: b}
}

// encodeDataset encodes elems in ts: Implicit VR LE, Explicit VR LE or BE
// (deflated: Explicit VR LE then deflated).
func encodeDataset(ts string, elems []elem) []byte {
	var order interface {
		binary.ByteOrder
		binary.AppendByteOrder
	} = binary.LittleEndian
	explicit := true
	switch ts {
	case ImplicitVRLittleEndian:
		explicit = false
	case ExplicitVRBigEndian:
		order = binary.BigEndian
	}
	var enc func(b []byte, es []elem) []byte
	enc = func(b []byte, es []elem) []byte {
		for _, e := range es {
			b = order.AppendUint16(b, e.group)
			b = order.AppendUint16(b, e.elem)
			v := e.value
			n := uint32(len(v))
			if e.vr == "SQ" {
				var body []byte
				for _, it := range e.items {
					content := enc(nil, it)
					body = order.AppendUint16(body, 0xFFFE)
					body = order.AppendUint16(body, 0xE000)
					if e.undefined {
						body = order.AppendUint32(body, undefinedLength)
						body = append(body, content...)
						body = order.AppendUint16(body, 0xFFFE)
						body = order.AppendUint16(body, 0xE00D)
						body = order.AppendUint32(body, 0)
					} else {
						body = order.AppendUint32(body, uint32(len(content)))
						body = append(body, content...)
					}
				}
				if e.undefined {
					body = order.AppendUint16(body, 0xFFFE)
					body = order.AppendUint16(body, 0xE0DD)
					body = order.AppendUint32(body, 0)
					n = undefinedLength
				} else {
					n = uint32(len(body))
				}
				v = body
			}
			switch {
			case !explicit:
				b = order.AppendUint32(b, n)
			case longVR(e.vr):
				b = append(b, e.vr...)
				b = append(b, 0, 0)
				b = order.AppendUint32(b, n)
			default:
				b = append(b, e.vr...)
				b = order.AppendUint16(b, uint16(n))
			}
			b = append(b, v...)
		}
		return b
	}
	out := enc(nil, elems)
	if ts == DeflatedExplicitVRLittleEndian {
		var z bytes.Buffer
		fw, _ := flate.NewWriter(&z, flate.BestSpeed)
		fw.Write(out)
		fw.Close()
		return z.Bytes()
	}
	return out
}

// testObject is a small image object.
type testObject struct {
	sopClass, sopInstance, study, ts string
	dataset                          []byte
}

// newTestObject makes an object of n pixel bytes with a sequence of
// undefined length before the study UID, encoded in ts.
func newTestObject(i int, ts string, pixels int) testObject {
	o := testObject{
		sopClass:    SecondaryCaptureImageStorage,
		sopInstance: fmt.Sprintf("2.25.1000%d.%d", i, pixels),
		study:       fmt.Sprintf("2.25.2000%d", i%3),
		ts:          ts,
	}
	pix := make([]byte, pixels+pixels%2)
	for j := range pix {
		pix[j] = byte(j*7 + i)
	}
	ref := []elem{str(0x0008, 0x1150, "UI", CRImageStorage), str(0x0008, 0x1155, "UI", "2.25.99")}
	o.dataset = encodeDataset(ts, []elem{
		str(0x0008, 0x0016, "UI", o.sopClass),
		str(0x0008, 0x0018, "UI", o.sopInstance),
		str(0x0008, 0x0060, "CS", "OT"),
		{group: 0x0008, elem: 0x1140, vr: "SQ", items: [][]elem{ref, ref}, undefined: true},
		{group: 0x0008, elem: 0x2112, vr: "SQ", items: [][]elem{ref}},
		str(0x0010, 0x0010, "PN", "Test^Object"),
		str(0x0010, 0x0020, "LO", "ID1"),
		str(0x0020, 0x000D, "UI", o.study),
		str(0x0020, 0x000E, "UI", o.study+".1"),
		{group: 0x0028, elem: 0x0002, vr: "US", value: binary.LittleEndian.AppendUint16(nil, 1)},
		{group: 0x7FE0, elem: 0x0010, vr: "OB", value: pix},
	})
	if ts == ExplicitVRBigEndian {
		// The US value in big endian.
		o.dataset = encodeDataset(ts, []elem{
			str(0x0008, 0x0016, "UI", o.sopClass),
			str(0x0008, 0x0018, "UI", o.sopInstance),
			str(0x0020, 0x000D, "UI", o.study),
			{group: 0x7FE0, elem: 0x0010, vr: "OB", value: pix},
		})
	}
	return o
}

// writePart10 writes o as a Part 10 file.
func writePart10(t testing.TB, path string, o testObject) {
	t.Helper()
	b := append(encodeFileMeta(o.sopClass, o.sopInstance, o.ts, "TEST"), o.dataset...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// datasetOf returns the data set bytes of a Part 10 file, and its meta.
func datasetOf(t testing.TB, path string) (FileMeta, []byte) {
	t.Helper()
	fm, err := ReadFileMeta(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fm, b[fm.DatasetOffset:]
}

// spoolFiles lists the files under root, relative to it, sorted.
func spoolFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dial associates with addr proposing contexts, with a test logger.
func dial(t testing.TB, addr, calling, called string, contexts ...PresentationContext) (*Association, error) {
	t.Helper()
	log, _ := testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Dial(ctx, addr, calling, called, DialOptions{Contexts: contexts, Logger: log})
}

// mustDial is dial that fails the test on error and releases at the end.
func mustDial(t testing.TB, addr string, contexts ...PresentationContext) *Association {
	t.Helper()
	a, err := dial(t, addr, "TESTSCU", "SENTINEL", contexts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Abort() })
	return a
}
