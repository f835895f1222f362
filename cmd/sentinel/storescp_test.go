package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// TestStoreSCPSender has a real DICOM network sender that nobody here wrote
// deliver files the way a PACS export does: dcmtk's storescp receives into
// the drop folder, writing each file as it arrives, while storescu sends a
// few hundred files over loopback. Every file must be reported once and
// none read half-written.
func TestStoreSCPSender(t *testing.T) {
	for _, tool := range []string{"storescp", "storescu"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (Debian package dcmtk): skipping the real-sender test", tool)
		}
	}
	const n = 200
	rng := rand.New(rand.NewPCG(11, 0))
	ws := trainWorkspace(t, rng)
	src := filepath.Join(t.TempDir(), "send")
	var files []string
	study := phantom.NewUID(rng)
	for i := 0; i < n; i++ {
		p := filepath.Join(src, fmt.Sprintf("img%03d.dcm", i))
		if i%25 == 0 {
			study = phantom.NewUID(rng)
		}
		meta := phantom.Meta{StudyInstanceUID: study, SeriesInstanceUID: study + ".1", SOPInstanceUID: phantom.NewUID(rng), PatientID: "SCU"}
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := phantom.WriteDICOM(p, phantom.Generate(rng, 256, phantom.Normal), 256, meta); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}

	cfg := filepath.Join(t.TempDir(), "agent.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[ingest]\nstable_for = \"1s\"\npoll_interval = \"100ms\"\n[http]\naddr = \"\"\n", ws)), 0o644)
	stop := startAgent(t, "--config", cfg)
	defer func() {
		if stop != nil {
			stop()
		}
	}()

	port := freePort(t)
	inbox := filepath.Join(ws, "inbox", "storescp")
	os.MkdirAll(inbox, 0o755)
	scp := exec.Command("storescp", "--output-directory", inbox, "--aetitle", "SENTINEL", strconv.Itoa(port))
	scpLog, _ := os.Create(filepath.Join(t.TempDir(), "storescp.log"))
	scp.Stdout, scp.Stderr = scpLog, scpLog
	if err := scp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { scp.Process.Kill(); scp.Wait() }()
	// Wait for the listener.
	time.Sleep(500 * time.Millisecond)
	scu := exec.Command("storescu", append([]string{"--call", "SENTINEL", "--aetitle", "SENDER", "127.0.0.1", strconv.Itoa(port)}, files...)...)
	if out, err := scu.CombinedOutput(); err != nil {
		t.Fatalf("storescu: %v\n%s", err, out)
	}

	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	var c store.Counts
	for time.Now().Before(deadline) {
		c, _ = db.Counts(ctx)
		if c.Reports >= n {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	stop = nil
	received, _ := os.ReadDir(inbox)
	if len(received) != n {
		t.Fatalf("storescp wrote %d files, want %d", len(received), n)
	}
	c, _ = db.Counts(ctx)
	if c.Instances != n || c.Reports != n || c.Files[store.FileDone] != n || c.Files[store.FileFailed] != 0 {
		t.Fatalf("after %d files from storescu: %+v", n, c)
	}
	// Every received file was taken once, whole: its recorded size is its
	// final size.
	recs, _ := db.Files(ctx, store.FileDone)
	for _, r := range recs {
		fi, err := os.Stat(r.Path)
		if err != nil {
			t.Errorf("%s: %v", r.Path, err)
			continue
		}
		if fi.Size() != r.Size {
			t.Errorf("%s was read at %d bytes, final size %d", r.Path, r.Size, fi.Size())
		}
		if !strings.HasPrefix(r.Path, inbox) {
			t.Errorf("unexpected file %s", r.Path)
		}
	}
	if len(instanceReports(ws)) != n {
		t.Errorf("%d report files, want %d", len(instanceReports(ws)), n)
	}
}
