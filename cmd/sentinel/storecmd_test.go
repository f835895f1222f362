package main

import (
	"context"
	"encoding/json"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/pgtest"
	"github.com/sentinel-pacs/sentinel/store"
)

// TestStoreMigrate moves a workspace's state from its SQLite file to
// PostgreSQL: status on the server then says what it said on the file, and
// a database already used is refused.
func TestStoreMigrate(t *testing.T) {
	ws := t.TempDir()
	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, id := range []string{"1.2.3.1", "1.2.3.2", "1.2.3.3"} {
		u := 0.1
		r := store.Result{
			Instance: sentinel.Instance{ID: id, SOPInstanceUID: id, StudyInstanceUID: "1.2.3", Format: sentinel.FormatDICOM,
				SourcePath: filepath.Join(ws, "inbox", id+".dcm"), SHA256: fmt.Sprintf("%064x", i)},
			Score:        sentinel.Score{Value: 2, Threshold: 1, Decision: sentinel.DecisionAbnormal, Uncertainty: &u},
			ModelVersion: "ae-1",
			ReportPath:   filepath.Join(ws, "reports", id+".json"),
			File:         store.File{Path: filepath.Join(ws, "inbox", id+".dcm"), Size: 10, ModTimeNS: int64(i)},
		}
		if err := db.RecordResult(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	instances := func(args ...string) float64 {
		t.Helper()
		out, errOut, code := sentinelCmd(t, append([]string{"status", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("status %v: exit %d\n%s", args, code, errOut)
		}
		var st struct {
			Instances float64 `json:"instances"`
			Store     struct {
				Engine string `json:"engine"`
			} `json:"store"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status %v: %v\n%s", args, err, out)
		}
		return st.Instances
	}
	before := instances("--workspace", ws)
	if before != 3 {
		t.Fatalf("status before the move: %v instances, want 3", before)
	}

	if _, errOut, code := sentinelCmd(t, "store", "migrate", "--workspace", ws); code != exitUsage || !strings.Contains(errOut, "--to") {
		t.Errorf("store migrate without --to: exit %d, stderr %q; want %d", code, errOut, exitUsage)
	}
	if _, _, code := sentinelCmd(t, "store", "migrate", "--workspace", ws, "--to", "mysql://h/db"); code != exitUsage {
		t.Errorf("store migrate --to mysql://…: exit %d, want %d", code, exitUsage)
	}

	url := pgtest.NewDatabase(t)
	out, errOut, code := sentinelCmd(t, "store", "migrate", "--workspace", ws, "--to", url)
	if code != 0 {
		t.Fatalf("store migrate: exit %d\n%s\n%s", code, out, errOut)
	}
	if !regexp.MustCompile(`(?m)^\s+instances\s+3$`).MatchString(out) || !strings.Contains(out, "[store] url") {
		t.Errorf("store migrate printed:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(ws, "state.db")); err != nil {
		t.Errorf("the SQLite file is gone: %v", err)
	}

	cfg := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[store]\nurl = %q\n", ws, url)), 0o600); err != nil {
		t.Fatal(err)
	}
	if after := instances("--config", cfg); after != before {
		t.Errorf("status on PostgreSQL: %v instances, want %v", after, before)
	}

	// As JSON, and never with the password (trust authentication lets
	// the test's server take any).
	u, err := neturl.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.UserPassword(u.User.Username(), "s3cret-word")
	out, errOut, code = sentinelCmd(t, "store", "migrate", "--workspace", ws, "--to", u.String(), "--json")
	var moved struct {
		To     string         `json:"to"`
		Tables map[string]int `json:"tables"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &moved) != nil || moved.Tables["instances"] != 3 || moved.To == "" {
		t.Errorf("store migrate --json: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(out+errOut, "s3cret-word") {
		t.Errorf("store migrate printed the password:\n%s\n%s", out, errOut)
	}

	// A database in use is never merged into.
	out, errOut, code = sentinelCmd(t, "store", "migrate", "--workspace", ws, "--to", url, "--json")
	if code != exitFailure || !regexp.MustCompile(`table \w+ holds rows`).MatchString(errOut) {
		t.Errorf("second store migrate: exit %d, stdout %q, stderr %q; want %d naming a table", code, out, errOut, exitFailure)
	}
	// Nor is a workspace whose state already lives on a server moved.
	if _, errOut, code := sentinelCmd(t, "store", "migrate", "--config", cfg, "--to", url); code == 0 || !strings.Contains(errOut, "store.url") {
		t.Errorf("store migrate with store.url set: exit %d, stderr %q", code, errOut)
	}
}
