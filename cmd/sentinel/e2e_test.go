package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// binary is the sentinel command built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sentinel-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sentinel")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build sentinel: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sentinelCmd runs the binary to completion and returns its output and exit
// code.
func sentinelCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run sentinel %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func writePhantoms(t *testing.T, rng *rand.Rand, dir string, n int, kind phantom.Kind) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("%s-%02d.dcm", kind, i))
		if err := writePhantom(rng, p, 256, kind, phantom.Meta{}); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// trainWorkspace trains a small model on phantoms in a fresh workspace.
func trainWorkspace(t *testing.T, rng *rand.Rand) string {
	t.Helper()
	ws := filepath.Join(t.TempDir(), "ws")
	normals := filepath.Join(t.TempDir(), "normals")
	writePhantoms(t, rng, normals, 24, "normal")
	out, errOut, code := sentinelCmd(t, "train", "--workspace", ws, "--normals", normals, "--epochs", "3")
	if code != 0 {
		t.Fatalf("train exited %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "saved to") {
		t.Fatalf("train output: %s", out)
	}
	return ws
}

func TestCommandsWithoutModelOrWithBadConfig(t *testing.T) {
	ws := filepath.Join(t.TempDir(), "ws")
	_, errOut, code := sentinelCmd(t, "run", "--workspace", ws)
	if code != exitNoModel || !strings.Contains(errOut, "sentinel train") {
		t.Fatalf("run without model: exit %d, stderr %q", code, errOut)
	}
	cfg := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(cfg, []byte("[ingest]\nworkers = -1\n"), 0o644)
	_, errOut, code = sentinelCmd(t, "status", "--config", cfg)
	if code != exitConfig || !strings.Contains(errOut, "ingest.workers") {
		t.Fatalf("bad config: exit %d, stderr %q", code, errOut)
	}
	_, _, code = sentinelCmd(t, "frobnicate")
	if code != exitUsage {
		t.Fatalf("unknown command: exit %d", code)
	}
	// The command-line contract: help on standard output with exit 0; a
	// bad flag printed once, on stderr, with the usage exit code.
	for _, c := range commands() {
		out, errOut, code := sentinelCmd(t, c.name, "--help")
		if c.name != "version" && (code != 0 || !strings.Contains(out, "Usage: sentinel "+c.name) || errOut != "") {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
		if c.name == "version" {
			continue
		}
		out, errOut, code = sentinelCmd(t, c.name, "--no-such-flag")
		if code != exitUsage || out != "" || strings.Count(errOut, "no-such-flag") > 1 || strings.Contains(errOut, "Flags:") ||
			strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s --no-such-flag: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if out, _, code := sentinelCmd(t, args...); code != 0 || !strings.HasPrefix(out, "sentinel ") || !strings.Contains(out, "go1.") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	if _, errOut, code := sentinelCmd(t, "status", "--workspace", ws, "--log-level", "verbose"); code != exitUsage || !strings.Contains(errOut, "--log-level") {
		t.Errorf("--log-level verbose: exit %d, %q", code, errOut)
	}
	// Commands that only read never make a workspace.
	typo := filepath.Join(t.TempDir(), "TYPO")
	for _, args := range [][]string{{"status"}, {"models", "list"}} {
		if _, errOut, code := sentinelCmd(t, append(args, "--workspace", typo)...); code == 0 || !strings.Contains(errOut, "no Sentinel workspace") {
			t.Errorf("%v on a missing workspace: exit %d, %q", args, code, errOut)
		}
		if _, err := os.Stat(typo); err == nil {
			t.Fatalf("%v made the workspace %s", args, typo)
		}
	}
}

// TestRunEndToEnd runs the real binary on a real inbox: valid files, one
// written slowly in chunks, a broken one and a duplicate; then stops it and
// starts it again.
func TestRunEndToEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(3), 0))
	ws := trainWorkspace(t, rng)
	cfg := filepath.Join(t.TempDir(), "agent.toml")
	port := freePort(t)
	os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[ingest]\nstable_for = \"1s\"\nwrite_grace = \"2s\"\npoll_interval = \"50ms\"\nstudy_quiet = \"1s\"\n[http]\naddr = \"127.0.0.1:%d\"\n", ws, port)), 0o644)
	inbox := filepath.Join(ws, "inbox")

	// One file is there before the agent starts.
	src := filepath.Join(t.TempDir(), "src")
	valid := writePhantoms(t, rng, src, 4, "normal")
	valid = append(valid, writePhantoms(t, rng, src, 2, "nodule")...)
	copyInto := func(p, dst string) {
		t.Helper()
		if err := copyPath(p, dst); err != nil {
			t.Fatal(err)
		}
	}
	copyInto(valid[0], filepath.Join(inbox, filepath.Base(valid[0])))

	stop := startAgent(t, "--config", cfg)
	for _, p := range valid[1:5] {
		copyInto(p, filepath.Join(inbox, "sub", filepath.Base(p)))
	}
	// Written in place (no temporary name), slowly, over about 3 s.
	slowSrc, _ := os.ReadFile(valid[5])
	slow := filepath.Join(inbox, "slow.dcm")
	f, err := os.Create(slow)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(slowSrc); off += len(slowSrc)/6 + 1 {
		f.Write(slowSrc[off:min(off+len(slowSrc)/6+1, len(slowSrc))])
		time.Sleep(500 * time.Millisecond)
	}
	f.Close()
	os.WriteFile(filepath.Join(inbox, "broken.dcm"), append(make([]byte, 128), "DICM\x02\x00"...), 0o644)
	copyInto(valid[1], filepath.Join(inbox, "resent", "dup.dcm"))

	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	var c store.Counts
	for time.Now().Before(deadline) {
		c, err = db.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Reports == len(valid) && c.Files[store.FileFailed] == 1 && c.Files[store.FileDuplicate] == 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	metrics := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	for _, want := range []string{fmt.Sprintf(`sentinel_files_processed_total{status="done"} %d`, len(valid)),
		`sentinel_duplicates_total 1`, `sentinel_files_failed_total{reason=`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	stop()
	checkWorkspace(t, ws, db, len(valid))
	first := fmt.Sprint(c)

	// A restart finds nothing new: same database, same reports.
	stop = startAgent(t, "--config", cfg)
	time.Sleep(3 * time.Second)
	stop()
	c2, _ := db.Counts(ctx)
	if fmt.Sprint(c2) != first {
		t.Fatalf("state changed across restart:\n%s\n%s", first, fmt.Sprint(c2))
	}
	checkWorkspace(t, ws, db, len(valid))

	out, _, code := sentinelCmd(t, "status", "--workspace", ws)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d scored", len(valid))) || !strings.Contains(out, "broken.dcm") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	out, _, code = sentinelCmd(t, "score", "--workspace", ws, valid[4])
	var rep map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep["decision"] == nil {
		t.Fatalf("score: exit %d\n%s", code, out)
	}
}

func checkWorkspace(t *testing.T, ws string, db *store.DB, valid int) {
	t.Helper()
	c, err := db.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Instances != valid || c.Scores != valid || c.Reports != valid {
		t.Errorf("instances/scores/reports = %d/%d/%d, want %d", c.Instances, c.Scores, c.Reports, valid)
	}
	if c.Files[store.FileFailed] != 1 || c.Files[store.FileDuplicate] != 1 {
		t.Errorf("files = %v, want 1 failed and 1 duplicate", c.Files)
	}
	reports := instanceReports(ws)
	if len(reports) != valid {
		t.Errorf("%d report files, want %d", len(reports), valid)
	}
	// Each report says why it decided, and its decision agrees with its
	// score, threshold and normal limit.
	for _, p := range reports {
		b, err := os.ReadFile(p)
		var rep sentinel.Report
		if err != nil || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("report %s unreadable: %v", p, err)
		}
		switch {
		case rep.DecisionReason == "" || rep.NormalLimit == nil || !(*rep.NormalLimit < rep.Threshold):
			t.Errorf("report %s: reason %q, normal limit %v, threshold %v", p, rep.DecisionReason, rep.NormalLimit, rep.Threshold)
		case rep.Decision == sentinel.DecisionAbnormal && !(rep.Score > rep.Threshold),
			rep.Decision == sentinel.DecisionNormal && rep.Score > *rep.NormalLimit:
			t.Errorf("report %s: %s at score %v, normal limit %v, threshold %v", p, rep.Decision, rep.Score, *rep.NormalLimit, rep.Threshold)
		}
	}
	// Every DICOM instance's patient is keyed, and the key is not the ID.
	patients, err := db.Patients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(patients) != valid {
		t.Errorf("%d instances with a patient, want %d", len(patients), valid)
	}
	for id, p := range patients {
		if len(p.Key) != 32 || strings.Contains(p.Key, "DEMO") {
			t.Errorf("instance %s: patient key %q", id, p.Key)
		}
	}
	reason, err := os.ReadFile(filepath.Join(ws, "quarantine", "broken.dcm.reason.txt"))
	if err != nil || !strings.Contains(string(reason), "broken.dcm") {
		t.Errorf("quarantine reason: %q, %v", reason, err)
	}
}

// startAgent starts `sentinel run` and returns a function that stops it
// with SIGTERM and checks it exits cleanly.
func startAgent(t *testing.T, args ...string) func() {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"run"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return func() {
		t.Helper()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sentinel run exited with %v\n%s", err, out.String())
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("sentinel run did not stop on SIGTERM\n%s", out.String())
		}
	}
}

// TestIngestSharedCXR8 trains on the real seed normals and ingests the
// full-resolution chest DICOMs, whatever their transfer syntax: each gets a
// report, and the source folder is left as it was.
func TestIngestSharedCXR8(t *testing.T) {
	data := filepath.Join("..", "..", "..", "shared", "data", "cxr8")
	if _, err := os.Stat(filepath.Join(data, "labels.csv")); err != nil {
		t.Skipf("%s not found: skipping the real-data ingest test", data)
	}
	ws := filepath.Join(t.TempDir(), "ws")
	out, errOut, code := sentinelCmd(t, "train", "--workspace", ws, "--normals", filepath.Join(data, "images"),
		"--labels", filepath.Join(data, "labels.csv"), "--split", "seed", "--epochs", "3")
	if code != 0 {
		t.Fatalf("train: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "training on 120 normal images") {
		t.Errorf("train did not use the 120 seed normals: %s", errOut)
	}
	dicomDir := filepath.Join(data, "dicom")
	// The folder before the flags, as the README writes it.
	out, errOut, code = sentinelCmd(t, "ingest", dicomDir, "--workspace", ws)
	if code != 0 {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(dicomDir, "*.dcm"))
	if len(files) != 24 {
		t.Fatalf("found %d DICOM files in %s, want 24", len(files), dicomDir)
	}
	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Files(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]store.File{}
	for _, r := range recs {
		byPath[r.Path] = r
	}
	for _, f := range files {
		abs, _ := filepath.Abs(f) // the records hold absolute paths
		r, ok := byPath[abs]
		if !ok {
			t.Errorf("%s: not recorded", f)
			continue
		}
		// Uncompressed, JPEG Lossless, JPEG-LS, RLE and MONOCHROME1: all decode.
		if r.Status != store.FileDone {
			t.Errorf("%s: %s (%s), want a report", f, r.Status, r.Error)
		}
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: the source folder was changed: %v", f, err)
		}
	}
	if reports := instanceReports(ws); len(reports) != len(files) {
		t.Errorf("%d reports for %d files", len(reports), len(files))
	}
}

// instanceReports lists the instance report files of a workspace (not the
// study reports).
func instanceReports(ws string) []string {
	all, _ := filepath.Glob(filepath.Join(ws, "reports", "*", "*.json"))
	var out []string
	for _, p := range all {
		if !strings.HasPrefix(filepath.Base(p), "study") {
			out = append(out, p)
		}
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
