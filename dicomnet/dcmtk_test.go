package dicomnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/internal/phantom"
)

// These tests run dcmtk's tools (Debian package dcmtk) against our Server
// and our SCU against dcmtk's storescp, on loopback.

// tool returns the path of a dcmtk tool, or skips the test.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found (Debian package dcmtk): %v", name, err)
	}
	return p
}

// port returns the port of a loopback address.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs a command for at most a minute and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// phantomFiles writes n phantom DICOM files (Secondary Capture, Explicit
// VR Little Endian, size×size) into dir.
func phantomFiles(t *testing.T, dir string, n, size int) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	study := phantom.NewUID(rng)
	var paths []string
	for i := range n {
		pix := phantom.Generate(rng, size, phantom.Kinds[i%len(phantom.Kinds)])
		p := filepath.Join(dir, fmt.Sprintf("ph%03d.dcm", i))
		meta := phantom.Meta{PatientID: "P1", StudyInstanceUID: study, SeriesInstanceUID: study + ".1",
			SOPInstanceUID: phantom.NewUID(rng), AccessionNumber: "A1"}
		if err := phantom.WriteDICOM(p, pix, size, meta); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// cxr8Files lists the real DICOM files of ../shared/data/cxr8/dicom whose
// name contains sub, or skips the test when the folder is absent.
func cxr8Files(t *testing.T, sub string) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "data", "cxr8", "dicom")
	paths, err := filepath.Glob(filepath.Join(dir, "*"+sub+"*.dcm"))
	if err != nil || len(paths) == 0 {
		t.Skipf("../shared/data/cxr8/dicom not found or without %q files: skipping", sub)
	}
	return paths
}

// checkSpooled checks that each source file arrived under root with the
// same data set bytes and that dcmdump reads it without complaint.
func checkSpooled(t *testing.T, root, calling string, sources []string) {
	t.Helper()
	dcmdump, _ := exec.LookPath("dcmdump")
	for _, src := range sources {
		fm, want := datasetOf(t, src)
		matches, _ := filepath.Glob(filepath.Join(root, calling, "*", safeUID(fm.SOPInstanceUID)+".dcm"))
		if len(matches) != 1 {
			t.Errorf("%s: %d spooled files for SOP instance %s", filepath.Base(src), len(matches), fm.SOPInstanceUID)
			continue
		}
		gm, got := datasetOf(t, matches[0])
		if !bytes.Equal(got, want) {
			t.Errorf("%s: spooled data set (%d bytes) differs from the source's (%d bytes)", filepath.Base(src), len(got), len(want))
		}
		if gm.TransferSyntaxUID != fm.TransferSyntaxUID || gm.SourceAETitle != calling {
			t.Errorf("%s: spooled meta %+v", filepath.Base(src), gm)
		}
		if dcmdump != "" {
			out, err := run(t, dcmdump, "+E", matches[0])
			if err != nil || strings.Contains(out, "W: ") || strings.Contains(out, "E: ") {
				t.Errorf("dcmdump %s: %v\n%s", matches[0], err, firstLines(out, 10))
			}
		}
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func TestEchoscu(t *testing.T) {
	echoscu := tool(t, "echoscu")
	s, addr, _ := spoolServer(t, Config{AllowedCallers: []Caller{{AETitle: "MODALITY", Host: "127.0.0.1"}}})
	if out, err := run(t, echoscu, "-aet", "MODALITY", "-aec", "SENTINEL", "127.0.0.1", port(t, addr)); err != nil {
		t.Fatalf("echoscu from an allowed caller: %v\n%s", err, out)
	}
	out, err := run(t, echoscu, "-aet", "STRANGER", "-aec", "SENTINEL", "127.0.0.1", port(t, addr))
	if err == nil {
		t.Errorf("echoscu from a caller not on the list succeeded:\n%s", out)
	}
	if !strings.Contains(out, "Calling AE Title Not Recognized") {
		t.Errorf("echoscu did not report the reason:\n%s", out)
	}
	if _, err := run(t, echoscu, "-aet", "MODALITY", "-aec", "WRONG", "127.0.0.1", port(t, addr)); err == nil {
		t.Error("echoscu to the wrong called AE title succeeded")
	}
	st := s.Stats()
	if st.Accepted != 1 || st.Echoes != 1 || st.Rejected[RejectCallingAE] != 1 || st.Rejected[RejectCalledAE] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestStorescuParallel(t *testing.T) {
	storescu := tool(t, "storescu")
	src := t.TempDir()
	files := phantomFiles(t, src, 12, 256)
	// storescu sends native files as they are; compressed ones need the
	// -x options of TestStorescuCompressed.
	if real, err := filepath.Glob(filepath.Join("..", "..", "shared", "data", "cxr8", "dicom", "*explicit_le*.dcm")); err == nil && len(real) > 0 {
		files = append(files, real...)
	} else {
		t.Log("../shared/data/cxr8/dicom not found: phantoms only")
	}
	s, addr, root := spoolServer(t, Config{MaxAssociations: 4,
		TransferSyntaxes: []string{ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLosslessSV1, JPEGLSLossless, RLELossless}})
	const procs = 4
	var wg sync.WaitGroup
	errs := make([]error, procs)
	outs := make([]string, procs)
	for p := range procs {
		var mine []string
		for i := p; i < len(files); i += procs {
			mine = append(mine, files[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"-aet", "MODALITY", "-aec", "SENTINEL", "127.0.0.1", port(t, addr)}, mine...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, storescu, args...).CombinedOutput()
			outs[p], errs[p] = string(out), err
		}()
	}
	wg.Wait()
	for p := range procs {
		if errs[p] != nil {
			t.Errorf("storescu %d: %v\n%s", p, errs[p], firstLines(outs[p], 20))
		}
	}
	checkSpooled(t, root, "MODALITY", files)
	st := s.Stats()
	if st.ObjectsReceived != uint64(len(files)) || st.Accepted != procs || len(st.StoresFailed) != 0 || st.Aborted != 0 {
		t.Errorf("stats %+v, want %d objects over %d associations", st, len(files), procs)
	}
}

func TestStorescuCompressed(t *testing.T) {
	storescu := tool(t, "storescu")
	for _, c := range []struct{ option, files, ts string }{
		{"-xs", "jpeg_lossless_sv1", JPEGLosslessSV1},
		{"-xt", "jpeg_ls_lossless", JPEGLSLossless},
		{"-xr", "rle", RLELossless},
	} {
		t.Run(c.option, func(t *testing.T) {
			files := cxr8Files(t, c.files)
			s, addr, root := spoolServer(t, Config{TransferSyntaxes: []string{c.ts, ExplicitVRLittleEndian}})
			args := append([]string{c.option, "-aet", "MODALITY", "-aec", "SENTINEL", "127.0.0.1", port(t, addr)}, files...)
			if out, err := run(t, storescu, args...); err != nil {
				t.Fatalf("storescu %s: %v\n%s", c.option, err, out)
			}
			checkSpooled(t, root, "MODALITY", files)
			if got := s.Stats().ObjectsReceived; got != uint64(len(files)) {
				t.Errorf("%d objects received, want %d", got, len(files))
			}
		})
	}
}

func TestStorescuUnsupportedSOPClass(t *testing.T) {
	storescu := tool(t, "storescu")
	files := phantomFiles(t, t.TempDir(), 1, 64) // Secondary Capture
	s, addr, root := spoolServer(t, Config{SOPClasses: []string{CRImageStorage}})
	// Proposing only what the file needs: nothing acceptable, rejected.
	out, err := run(t, storescu, "-R", "-aet", "MODALITY", "-aec", "SENTINEL", "127.0.0.1", port(t, addr), files[0])
	if err == nil || !strings.Contains(out, "Rejected Permanent") {
		t.Errorf("storescu -R with an unsupported SOP class: %v\n%s", err, out)
	}
	// Proposing every storage class: accepted, but the object's context
	// is refused and storescu cannot send it.
	out, err = run(t, storescu, "-aet", "MODALITY", "-aec", "SENTINEL", "127.0.0.1", port(t, addr), files[0])
	if err == nil || !strings.Contains(out, "No presentation context") {
		t.Errorf("storescu with an unsupported SOP class: %v\n%s", err, out)
	}
	if files := spoolFiles(t, root); len(files) != 0 {
		t.Errorf("files stored: %v", files)
	}
	st := s.Stats()
	if st.Rejected[RejectNoContext] != 1 || st.ContextsRejected < 2 || st.ObjectsReceived != 0 {
		t.Errorf("stats %+v", st)
	}
}

// startStorescp runs dcmtk's storescp writing into dir, until the test
// ends, and returns its address.
func startStorescp(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	storescp := tool(t, "storescp")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append([]string{"-od", dir, "-aet", "DEST"}, extra...)
	cmd := exec.Command(storescp, append(args, port(t, addr))...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("storescp output:\n%s", out.String())
		}
	})
	waitFor(t, "storescp to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

func TestOwnSCUAgainstStorescp(t *testing.T) {
	dir := t.TempDir()
	addr := startStorescp(t, dir, "+B", "+xa")
	files := phantomFiles(t, t.TempDir(), 2, 128)
	o := newTestObject(3, ImplicitVRLittleEndian, 5000)
	implicit := filepath.Join(t.TempDir(), "implicit.dcm")
	writePart10(t, implicit, o)
	files = append(files, implicit)
	log, _ := testLogger(t)
	ctx := context.Background()
	a, err := Dial(ctx, addr, "SENTINEL", "DEST", DialOptions{Logger: log, Contexts: []PresentationContext{
		{SecondaryCaptureImageStorage, []string{ExplicitVRLittleEndian}},
		{SecondaryCaptureImageStorage, []string{ImplicitVRLittleEndian}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Abort()
	if err := a.Echo(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if st, err := a.StoreFile(ctx, f); err != nil || st != StatusSuccess {
			t.Fatalf("store %s: 0x%04X %v", f, st, err)
		}
	}
	// A transfer syntax that was not negotiated is a clear error.
	be := filepath.Join(t.TempDir(), "be.dcm")
	writePart10(t, be, newTestObject(4, ExplicitVRBigEndian, 10))
	if _, err := a.StoreFile(ctx, be); err == nil || !strings.Contains(err.Error(), "no accepted presentation context") {
		t.Errorf("store of a file in a transfer syntax not negotiated: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fm, want := datasetOf(t, f)
		matches, _ := filepath.Glob(filepath.Join(dir, "*"+fm.SOPInstanceUID+"*"))
		if len(matches) != 1 {
			t.Errorf("storescp wrote %d files for %s", len(matches), fm.SOPInstanceUID)
			continue
		}
		if _, got := datasetOf(t, matches[0]); !bytes.Equal(got, want) {
			t.Errorf("%s: storescp's file has a different data set (%d bytes, sent %d)", filepath.Base(f), len(got), len(want))
		}
	}
}

func TestStorescpRejectsUs(t *testing.T) {
	addr := startStorescp(t, t.TempDir(), "--refuse")
	_, err := dial(t, addr, "SENTINEL", "DEST")
	var rj *RejectError
	if !errors.As(err, &rj) {
		t.Fatalf("storescp --refuse: %v, want a RejectError", err)
	}
	t.Logf("storescp --refuse: %v", err)
}
