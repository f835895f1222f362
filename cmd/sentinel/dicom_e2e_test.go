package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/dicomnet"
	"github.com/sentinel-pacs/sentinel/dicomout"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
)

// lookTool returns the path of a dcmtk or dicom3tools program, or skips.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install dcmtk dicom3tools): skipping", name)
	}
	return p
}

// storescpOn runs dcmtk's storescp as DEST on port, writing into dir,
// until the test ends.
func storescpOn(t *testing.T, dir string, port int) {
	t.Helper()
	bin := lookTool(t, "storescp")
	// The README's command.
	cmd := exec.Command(bin, "-aet", "DEST", "-od", dir, "+xa", strconv.Itoa(port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dicomNodeConfig writes an agent.toml for ws with the receiver on
// dicomPort and a DICOM destination on destPort.
func dicomNodeConfig(t *testing.T, ws string, httpPort, dicomPort, destPort int) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "agent.toml")
	body := fmt.Sprintf(`workspace = %q
[ingest]
stable_for = "1s"
poll_interval = "50ms"
study_quiet = "1s"
[http]
addr = "127.0.0.1:%d"
[dicom]
listen = "127.0.0.1:%d"
ae_title = "SENTINEL"
allowed_callers = ["PACS@127.0.0.1"]
[dicom.outbox]
backoff = "1s"
[[dicom.destinations]]
name = "pacs"
kind = "dicom"
ae_title = "DEST"
host = "127.0.0.1"
port = %d
outputs = ["sr", "sc"]
`, ws, httpPort, dicomPort, destPort)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// writeStudyFiles writes n phantom radiographs of one study into dir.
func writeStudyFiles(t *testing.T, rng *rand.Rand, dir string, n int) []string {
	t.Helper()
	study := phantom.NewUID(rng)
	var out []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("img%03d.dcm", i))
		kind := phantom.Normal
		if i == 0 {
			kind = phantom.Nodule
		}
		meta := phantom.Meta{PatientID: "P-E2E", StudyInstanceUID: study, SeriesInstanceUID: study + ".1",
			SOPInstanceUID: phantom.NewUID(rng), AccessionNumber: "ACC1"}
		if err := writePhantom(rng, p, 256, kind, meta); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// ownOutputs lists the SRs and SCs in dir.
func ownOutputs(dir string) (srs, scs []string) {
	entries, _ := os.ReadDir(dir)
	for _, en := range entries {
		p := filepath.Join(dir, en.Name())
		fm, err := dicomnet.ReadFileMeta(p)
		if err != nil {
			continue
		}
		switch fm.SOPClassUID {
		case dicomout.SOPClassComprehensiveSR:
			srs = append(srs, p)
		case dicomout.SOPClassSecondaryCapture:
			scs = append(scs, p)
		}
	}
	return srs, scs
}

// TestDICOMNodeEndToEnd follows the README's "Sentinel as a DICOM node"
// with the real binary and dcmtk: echo Sentinel, send it a study with
// storescu, and receive its SR and Secondary Capture in a storescp; both
// pass dciodvfy. It also measures the time from the study's last object
// acknowledged to its last SR written by the storescp.
func TestDICOMNodeEndToEnd(t *testing.T) {
	echoscu := lookTool(t, "echoscu")
	storescu := lookTool(t, "storescu")
	dciodvfy := lookTool(t, "dciodvfy")
	rng := rand.New(rand.NewPCG(19, 1))
	ws := trainWorkspace(t, rng)
	destDir := t.TempDir()
	destPort, dicomPort, httpPort := freePort(t), freePort(t), freePort(t)
	storescpOn(t, destDir, destPort)
	cfg := dicomNodeConfig(t, ws, httpPort, dicomPort, destPort)
	stop := startAgent(t, "--config", cfg)
	defer stop()
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", dicomPort))
	port := strconv.Itoa(dicomPort)

	// 1. echo Sentinel, as the PACS would.
	if out, err := exec.Command(echoscu, "-aet", "PACS", "-aec", "SENTINEL", "127.0.0.1", port).CombinedOutput(); err != nil {
		t.Fatalf("echoscu: %v\n%s", err, out)
	}
	if out, err := exec.Command(echoscu, "-aet", "INTRUDER", "-aec", "SENTINEL", "127.0.0.1", port).CombinedOutput(); err == nil {
		t.Errorf("echoscu from an unknown AE succeeded:\n%s", out)
	}
	// Sentinel echoes its destination.
	out, errOut, code := sentinelCmd(t, "echo", "--config", cfg, "pacs")
	if code != 0 || !strings.Contains(out, "success") {
		t.Fatalf("sentinel echo pacs: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := sentinelCmd(t, "echo", "--config", cfg, "--aec", "DEST", fmt.Sprintf("127.0.0.1:%d", destPort)); code != 0 {
		t.Errorf("sentinel echo HOST:PORT: exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := sentinelCmd(t, "echo", "--config", cfg, "nowhere"); code != exitUsage {
		t.Errorf("sentinel echo of an unknown destination: exit %d, want %d", code, exitUsage)
	}
	if _, errOut, code := sentinelCmd(t, "echo", "--config", cfg, "--aec", "DEST", fmt.Sprintf("127.0.0.1:%d", freePort(t))); code != exitFailure {
		t.Errorf("sentinel echo of a closed port: exit %d, want %d\n%s", code, exitFailure, errOut)
	}

	// 2. send a study with storescu.
	files := writeStudyFiles(t, rng, t.TempDir(), 4)
	args := append([]string{"-aet", "PACS", "-aec", "SENTINEL", "127.0.0.1", port}, files...)
	if out, err := exec.Command(storescu, args...).CombinedOutput(); err != nil {
		t.Fatalf("storescu: %v\n%s", err, out)
	}
	sentAt := time.Now()

	// 3. its SR and SC arrive in the storescp.
	deadline := time.Now().Add(2 * time.Minute)
	var srs, scs []string
	var srDone time.Duration
	for {
		srs, scs = ownOutputs(destDir)
		if len(srs) == len(files) && srDone == 0 {
			srDone = time.Since(sentAt)
		}
		if len(srs) == len(files) && len(scs) == len(files) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("storescp holds %d SR and %d SC after 2 minutes, want %d each", len(srs), len(scs), len(files))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("last object of a %d-image study acknowledged to its last SR stored by storescp: %s (stable_for 1s)",
		len(files), srDone.Round(time.Millisecond))
	for _, p := range append(srs, scs...) {
		out, _ := exec.Command(dciodvfy, p).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "Error") {
				t.Errorf("dciodvfy %s: %s", filepath.Base(p), line)
			}
		}
	}

	// 4. status and /metrics show the node.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var status string
	waitFor("status to show the outbox", func() bool {
		status, _, _ = sentinelCmd(t, "status", "--config", cfg)
		return strings.Contains(status, "outbox     pacs (dicom DEST@127.0.0.1:"+strconv.Itoa(destPort)+"): 0 pending, 8 sent, 0 set aside")
	})
	if !strings.Contains(status, "objects received") || !strings.Contains(status, fmt.Sprintf("%d objects received", len(files))) {
		t.Errorf("status does not show the receiver:\n%s", status)
	}
	metrics := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort))
	for _, want := range []string{
		fmt.Sprintf("sentinel_dicom_objects_received_total %d", len(files)),
		`sentinel_dicom_associations_rejected_total{reason="calling-AE-title-not-recognized"} 1`,
		`sentinel_outbox_objects{destination="pacs",state="sent"} 8`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	api := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/api/outbox?state=sent", httpPort))
	if !strings.Contains(api, `"destination":"pacs"`) || !strings.Contains(api, `"receiver"`) {
		t.Errorf("/api/outbox: %s", api)
	}
}

// TestDICOMKill9LosesNothingAcknowledged kills the agent with SIGKILL in
// the middle of a burst of C-STOREs from several associations: every
// object answered with success before the kill is in the inbox, and is
// reported after a restart.
func TestDICOMKill9LosesNothingAcknowledged(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 1))
	ws := trainWorkspace(t, rng)
	dicomPort, httpPort := freePort(t), freePort(t)
	cfg := dicomNodeConfig(t, ws, httpPort, dicomPort, freePort(t))
	addr := fmt.Sprintf("127.0.0.1:%d", dicomPort)

	cmd := exec.Command(binary, "run", "--config", cfg)
	var agentOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &agentOut, &agentOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitTCP(t, addr)

	const senders, each = 3, 40
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for s := range senders {
		files := writeStudyFiles(t, rand.New(rand.NewPCG(uint64(100+s), 2)), t.TempDir(), each)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			a, err := dicomnet.Dial(ctx, addr, "PACS", "SENTINEL", dicomnet.DialOptions{
				Contexts: []dicomnet.PresentationContext{{AbstractSyntax: dicomnet.SecondaryCaptureImageStorage,
					TransferSyntaxes: []string{dicomnet.ExplicitVRLittleEndian}}}})
			if err != nil {
				return
			}
			defer a.Abort()
			for _, f := range files {
				st, err := a.StoreFile(ctx, f)
				if err != nil {
					return // the agent is gone
				}
				if st == dicomnet.StatusSuccess {
					fm, _ := dicomnet.ReadFileMeta(f)
					mu.Lock()
					acked[fm.SOPInstanceUID] = true
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once a good part of the burst is acknowledged.
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= senders*each/3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n == 0 || n == senders*each {
		t.Fatalf("%d of %d objects acknowledged before the kill: the kill did not fall in the burst", n, senders*each)
	}
	t.Logf("%d of %d objects acknowledged before SIGKILL", n, senders*each)

	// Every acknowledged object is in the inbox, whole.
	inbox := filepath.Join(ws, "inbox", "PACS")
	for uid := range acked {
		matches, _ := filepath.Glob(filepath.Join(inbox, "*", uid+".dcm"))
		if len(matches) != 1 {
			t.Errorf("acknowledged %s not in the inbox", uid)
		}
	}
	// After a restart, each is reported.
	stop := startAgent(t, "--config", cfg)
	defer stop()
	reported := func() map[string]bool {
		got := map[string]bool{}
		for _, p := range instanceReports(ws) {
			got[strings.TrimSuffix(filepath.Base(p), ".json")] = true
		}
		return got
	}
	deadline = time.Now().Add(3 * time.Minute)
	for {
		got := reported()
		missing := 0
		for uid := range acked {
			if !got[uid] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged objects not reported after the restart\n%s", missing, agentOut.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
