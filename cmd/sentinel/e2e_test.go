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
	"github.com/sentinel-pacs/sentinel/internal/pgtest"
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
	pgtest.Stop()
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
	for _, args := range [][]string{{"status"}, {"models", "list"}, {"queries", "export", "--out", filepath.Join(t.TempDir(), "w.csv")}, {"readers", "list"}} {
		if _, errOut, code := sentinelCmd(t, append(args, "--workspace", typo)...); code == 0 || !strings.Contains(errOut, "no Sentinel workspace") {
			t.Errorf("%v on a missing workspace: exit %d, %q", args, code, errOut)
		}
		if _, err := os.Stat(typo); err == nil {
			t.Fatalf("%v made the workspace %s", args, typo)
		}
	}
	for _, args := range [][]string{{"score", "nothing.dcm"}, {"echo", "127.0.0.1:1", "--aec", "X"}} {
		sentinelCmd(t, append(args, "--workspace", typo)...)
		if _, err := os.Stat(typo); err == nil {
			t.Fatalf("%v made the workspace %s", args, typo)
		}
	}
	ws = checkJSONOutputs(t)
	checkEnvironment(t, ws)
}

// oneJSON decodes out as exactly one JSON value.
func oneJSON(t *testing.T, what, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, out)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s: more than one JSON value on standard output:\n%s", what, out)
	}
}

// checkJSONOutputs runs every command that reports something with --json
// and checks that standard output holds one JSON object (JSON Lines for
// score on several files) that says what the text says.
func checkJSONOutputs(t *testing.T) string {
	rng := rand.New(rand.NewPCG(23, 0))
	ws := filepath.Join(t.TempDir(), "ws")
	normals := filepath.Join(t.TempDir(), "normals")
	writePhantoms(t, rng, normals, 24, "normal")
	obj := func(want int, args ...string) map[string]any {
		t.Helper()
		out, errOut, code := sentinelCmd(t, args...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\n%s\n%s", args, code, want, out, errOut)
		}
		var v map[string]any
		oneJSON(t, strings.Join(args, " "), out, &v)
		return v
	}
	// Under JSON logs, training still shows its progress: as log records,
	// durations in seconds.
	jsonLogs := filepath.Join(t.TempDir(), "json-logs.toml")
	os.WriteFile(jsonLogs, []byte("[log]\nformat = \"json\"\n"), 0o644)
	out, errOut, code := sentinelCmd(t, "train", "--config", jsonLogs, "--workspace", ws, "--normals", normals, "--epochs", "3", "--json")
	var model map[string]any
	oneJSON(t, "train --json", out, &model)
	if code != 0 || model["version"] == "" || model["train_images"].(float64)+model["calib_images"].(float64) != 24 {
		t.Fatalf("train --json: exit %d, %v\n%s", code, model, errOut)
	}
	var reading, epochs []map[string]any
	for _, l := range strings.Split(errOut, "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(l), &r) != nil {
			continue
		}
		switch r["task"] {
		case "reading":
			reading = append(reading, r)
		case "training":
			epochs = append(epochs, r)
		}
	}
	if len(reading) == 0 || reading[len(reading)-1]["done"] != 24.0 || reading[len(reading)-1]["msg"] != "reading done" {
		t.Errorf("train: reading progress %v\n%s", reading, errOut)
	}
	if len(epochs) < 2 || epochs[0]["done"] != 1.0 || epochs[len(epochs)-1]["done"] != 3.0 || epochs[len(epochs)-1]["msg"] != "training done" {
		t.Errorf("train: epoch progress %v\n%s", epochs, errOut)
	}
	for _, r := range epochs {
		// Seconds: a three-epoch training of 24 phantoms takes well under a
		// minute, which in nanoseconds would be a large integer.
		if el, ok := r["elapsed"].(float64); !ok || el <= 0 || el > 600 {
			t.Errorf("train: elapsed %v is not in seconds", r["elapsed"])
		}
		if _, ok := r["eta"].(float64); !ok {
			t.Errorf("train: no eta in %v", r)
		}
	}
	st := obj(0, "status", "--workspace", ws, "--json")
	if m, ok := st["model"].(map[string]any); !ok || m["version"] != model["version"] || st["instances"].(float64) != 0 {
		t.Fatalf("status --json: %v", st)
	}

	pool := filepath.Join(t.TempDir(), "pool")
	files := writePhantoms(t, rng, pool, 3, "normal")
	files = append(files, writePhantoms(t, rng, pool, 1, "nodule")...)
	// A file whose header is whole but whose pixel data stops short.
	whole, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short.dcm")
	os.WriteFile(short, whole[:len(whole)-len(whole)/3], 0o644)
	broken := filepath.Join(pool, "broken.dcm")
	os.WriteFile(broken, append(make([]byte, 128), "DICM\x02\x00"...), 0o644)
	// Old enough that no writer can still be busy with it.
	os.Chtimes(broken, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))
	out, errOut, code = sentinelCmd(t, "ingest", pool, "--workspace", ws, "--json")
	var ing map[string]any
	oneJSON(t, "ingest --json", out, &ing)
	if code != 0 || !strings.Contains(errOut, "msg=\"ingest done\" task=ingest done=5 total=5 unit=files") {
		t.Fatalf("ingest --json: exit %d, progress not logged\n%s", code, errOut)
	}
	if sum := ing["summary"].(map[string]any); len(ing["files"].([]any)) != 5 || sum["done"] != 4.0 || sum["failed"] != 1.0 {
		t.Fatalf("ingest --json: %v", ing)
	}
	if st = obj(0, "status", "--workspace", ws, "--json"); st["reported"] != 4.0 || st["files"].(map[string]any)["failed"] != 1.0 {
		t.Fatalf("status --json after ingest: %v", st)
	}

	// score: one object for one file, JSON Lines for several.
	out, errOut, code = sentinelCmd(t, "score", "--workspace", ws, "--json", files[0])
	var rep map[string]any
	oneJSON(t, "score one file", out, &rep)
	if code != 0 || rep["instance_id"] == "" {
		t.Fatalf("score one file: exit %d, %v\n%s", code, rep, errOut)
	}
	out, _, code = sentinelCmd(t, "score", "--workspace", ws, files[0], files[3])
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("score two files: exit %d, %d lines\n%s", code, len(lines), out)
	}
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil || r["instance_id"] == "" {
			t.Fatalf("score two files: line %q: %v", l, err)
		}
	}

	// decode: the header as JSON, and exit 1 on a file it cannot decode.
	if h := obj(0, "decode", "--json", files[0]); h["rows"] != 256.0 || h["decodable"] != true {
		t.Fatalf("decode --json: %v", h)
	}
	if h := obj(exitFailure, "decode", "--json", short); h["decodable"] != false || h["problem"] == "" {
		t.Fatalf("decode --json of a short file: %v", h)
	}
	if out, errOut, code := sentinelCmd(t, "decode", short); code != exitFailure || !strings.Contains(out, "decodable:       no") ||
		!strings.Contains(errOut, "cannot be decoded") {
		t.Fatalf("decode of a short file: exit %d\n%s\n%s", code, out, errOut)
	}

	labels := filepath.Join(t.TempDir(), "labels.csv")
	var b strings.Builder
	b.WriteString("file,label,reader,time\n")
	for i, f := range files {
		fmt.Fprintf(&b, "%s,%s,dr-a,2026-11-02T09:00:00Z\n", filepath.Base(f), map[bool]string{true: "abnormal", false: "normal"}[i == 3])
	}
	b.WriteString("never-seen.dcm,normal,dr-a,2026-11-02T09:00:00Z\n")
	os.WriteFile(labels, []byte(b.String()), 0o644)
	// A rejected row still exits 1, after the JSON.
	if l := obj(exitFailure, "labels", "import", "--workspace", ws, "--json", labels); l["rows"] != 5.0 || l["added"] != 4.0 ||
		l["rejected"] != 1.0 || l["errors"].([]any)[0].(map[string]any)["line"] != 6.0 {
		t.Fatalf("labels import --json: %v", l)
	}
	if a := obj(0, "admit", "--workspace", ws, "--json"); a["cycle"].(float64) < 1 || a["checked"].(float64) > 4 {
		t.Fatalf("admit --json: %v", a)
	}
	if r := obj(0, "retrain", "--workspace", ws, "--epochs", "2", "--dry-run", "--json"); r["dry_run"] != true || r["promoted"] != false ||
		r["outcome"] == "" || r["candidate"].(map[string]any)["version"] == "" {
		t.Fatalf("retrain --dry-run --json: %v", r)
	}
	if _, errOut, code := sentinelCmd(t, "readers", "add", "dr-a", "--workspace", ws); code != 0 {
		t.Fatalf("readers add: exit %d: %s", code, errOut)
	}
	if r := obj(0, "readers", "list", "--workspace", ws, "--json"); len(r["readers"].([]any)) != 1 ||
		r["readers"].([]any)[0].(map[string]any)["name"] != "dr-a" {
		t.Fatalf("readers list --json: %v", r)
	}
	// queries export --json is --format json.
	out, errOut, code = sentinelCmd(t, "queries", "export", "--workspace", ws, "--n", "0", "--out", "-", "--json")
	var worklist []any
	if oneJSON(t, "queries export --json", out, &worklist); code != 0 {
		t.Fatalf("queries export --json: exit %d: %s", code, errOut)
	}

	// echo: against dcmtk's storescp when it is installed.
	if _, err := exec.LookPath("storescp"); err != nil {
		t.Logf("storescp not found (Debian package dcmtk): echo --json not checked")
		return ws
	}
	port := freePort(t)
	scp := exec.Command("storescp", "--output-directory", t.TempDir(), "--aetitle", "PEER", fmt.Sprint(port))
	if err := scp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { scp.Process.Kill(); scp.Wait() }()
	var e map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, errOut, code := sentinelCmd(t, "echo", "--workspace", ws, "--aec", "PEER", "--json", fmt.Sprintf("127.0.0.1:%d", port))
		if code == 0 {
			oneJSON(t, "echo --json", out, &e)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo --json: exit %d: %s", code, errOut)
		}
	}
	if e["success"] != true || e["called_ae_title"] != "PEER" {
		t.Fatalf("echo --json: %v", e)
	}
	return ws
}

// checkEnvironment gives settings through SENTINEL_… variables and a
// token file: the environment overrides the file, the command line both,
// `config show` masks the secrets, and the running agent's API takes the
// tokens so given.
func checkEnvironment(t *testing.T, ws string) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("write-secret-1\n"), 0o600)
	readFile := filepath.Join(dir, "read")
	os.WriteFile(readFile, []byte("read-secret-2\n"), 0o600)
	cfg := filepath.Join(dir, "agent.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[http]\ntoken_file = %q\nread_token = \"file-read-secret\"\n[log]\nlevel = \"warn\"\n",
		filepath.Join(dir, "from-file"), tokenFile)), 0o644)
	port := freePort(t)
	environ := append(os.Environ(), "SENTINEL_CONFIG="+cfg, "SENTINEL_WORKSPACE="+ws,
		"SENTINEL_HTTP_READ_TOKEN_FILE="+readFile, fmt.Sprintf("SENTINEL_HTTP_ADDR=127.0.0.1:%d", port), "SENTINEL_LOG_LEVEL=info")
	withEnv := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = environ
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.String(), stderr.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), 0
	}
	out, errOut, code := withEnv("config", "show", "--json")
	var c struct {
		Workspace string
		HTTP      map[string]any
		Log       map[string]any
	}
	oneJSON(t, "config show --json", out, &c)
	if code != 0 || c.Workspace != ws || c.HTTP["token"] != "***" || c.HTTP["read_token"] != "***" ||
		c.HTTP["read_token_file"] != readFile || c.Log["level"] != "info" {
		t.Fatalf("config show --json: exit %d, %+v\n%s", code, c, errOut)
	}
	if strings.Contains(out, "secret-") {
		t.Fatalf("config show --json prints a secret:\n%s", out)
	}
	other := filepath.Join(dir, "from-flag")
	out, _, code = withEnv("config", "show", "--workspace", other, "--log-level", "error")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("workspace = %q", other)) || !strings.Contains(out, `level = "error"`) ||
		!strings.Contains(out, `token = "***"`) || strings.Contains(out, "secret-") {
		t.Fatalf("config show with flags: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(other); err == nil {
		t.Fatalf("config show made the workspace %s", other)
	}

	// The agent, configured only through the environment and the file.
	cmd := exec.Command(binary, "run")
	cmd.Env = environ
	var agentOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &agentOut, &agentOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("sentinel run: %v\n%s", err, agentOut.String())
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	call := func(method, path, token string) int {
		req, _ := http.NewRequest(method, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for deadline := time.Now().Add(20 * time.Second); call("GET", "/healthz", "") != http.StatusOK; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent's API never answered\n%s", agentOut.String())
		}
	}
	for _, c := range []struct {
		method, path, token string
		ok                  bool
	}{
		{"GET", "/api/studies", "", false},
		{"GET", "/api/studies", "file-read-secret", false}, // overridden by the environment
		{"GET", "/api/studies", "read-secret-2", true},
		{"POST", "/api/rescan", "read-secret-2", false},
		{"POST", "/api/rescan", "write-secret-1", true},
	} {
		if got := call(c.method, c.path, c.token); (got/100 == 2) != c.ok {
			t.Errorf("%s %s with token %q: status %d", c.method, c.path, c.token, got)
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
