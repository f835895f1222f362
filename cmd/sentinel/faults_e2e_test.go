package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/store"
)

// A second 'sentinel run' (or 'ingest') on a workspace the agent holds is
// refused with its own exit code, before it touches the queue: the live
// agent's work is neither requeued nor recorded twice.
func TestSecondProcessRefused(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 0))
	ws := trainWorkspace(t, rng)
	cfg := filepath.Join(t.TempDir(), "agent.toml")
	port := freePort(t)
	os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[ingest]\nstable_for = \"500ms\"\npoll_interval = \"50ms\"\n[http]\naddr = \"127.0.0.1:%d\"\n", ws, port)), 0o644)
	inbox := filepath.Join(ws, "inbox")
	files := writePhantoms(t, rng, inbox, 6, "normal")
	stop := startAgent(t, "--config", cfg)
	defer stop()
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", port))

	_, errOut, code := sentinelCmd(t, "run", "--config", cfg)
	if code != exitBusy || !strings.Contains(errOut, "in use by another sentinel process") {
		t.Errorf("second run: exit %d, stderr %q; want %d", code, errOut, exitBusy)
	}
	_, errOut, code = sentinelCmd(t, "ingest", inbox, "--workspace", ws)
	if code != exitBusy {
		t.Errorf("ingest on the live workspace: exit %d, stderr %q; want %d", code, errOut, exitBusy)
	}

	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, _ := db.Counts(context.Background())
		if c.Files[store.FileDone] == len(files) {
			if len(c.Files) != 1 {
				t.Errorf("file records %v; want only done", c.Files)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files not all done: %v", c.Files)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A deleted database beside existing reports and models is not silently
// made anew; --new-database does it on purpose. A damaged one gets its own
// exit code and a message that names the recovery.
func TestMissingAndDamagedDatabase(t *testing.T) {
	rng := rand.New(rand.NewPCG(32, 0))
	ws := trainWorkspace(t, rng)
	dir := t.TempDir()
	writePhantoms(t, rng, dir, 2, "normal")
	if out, errOut, code := sentinelCmd(t, "ingest", dir, "--workspace", ws); code != 0 {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out, errOut)
	}
	db := filepath.Join(ws, "state.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(db + suffix)
	}
	_, errOut, code := sentinelCmd(t, "ingest", dir, "--workspace", ws)
	if code != exitDamaged || !strings.Contains(errOut, "--new-database") {
		t.Errorf("ingest with the database deleted: exit %d, stderr %q; want %d naming --new-database", code, errOut, exitDamaged)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a database was created although the command was refused")
	}
	if out, errOut, code := sentinelCmd(t, "ingest", dir, "--workspace", ws, "--new-database"); code != 0 {
		t.Fatalf("ingest --new-database: exit %d\n%s\n%s", code, out, errOut)
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state.db mode: %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	b, _ := os.ReadFile(db)
	for i := 4096; i < len(b); i++ {
		b[i] = byte(i * 13)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(db + suffix)
	}
	os.WriteFile(db, b, 0o600)
	_, errOut, code = sentinelCmd(t, "run", "--workspace", ws)
	if code != exitDamaged || !strings.Contains(errOut, "damaged") || !strings.Contains(errOut, "backup") {
		t.Errorf("run on a damaged database: exit %d, stderr %q; want %d naming the recovery", code, errOut, exitDamaged)
	}
}

// A stop asked for during start-up is a clean exit, not a failure.
func TestStopDuringStartupExitsZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 0))
	ws := trainWorkspace(t, rng)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut strings.Builder
	if code := run(ctx, []string{"run", "--workspace", ws}, &out, &errOut); code != exitOK {
		t.Errorf("run stopped before start: exit %d\n%s", code, errOut.String())
	}
	if code := run(context.Background(), []string{"run", "--no-such-flag"}, &out, &errOut); code != exitUsage || code == 2 {
		t.Errorf("bad flag: exit %d, want %d (2 is the Go runtime's)", code, exitUsage)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if body := tryGet(url); body == "ready\n" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never ready", url)
}

// tryGet returns the body of a GET, or "" when the request fails.
func tryGet(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
