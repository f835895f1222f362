package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/store"
)

// TestOutboxCommand lists the outbox and queues again an object set aside
// after its last attempt.
func TestOutboxCommand(t *testing.T) {
	ws := t.TempDir()
	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	items := []store.OutboxItem{
		{Destination: "pacs", Object: "2.25.1", Output: "sr", InstanceID: "1.2.3", Revision: 1, Path: filepath.Join(ws, "a.dcm")},
		{Destination: "ris", Object: "1.2.3#1", Output: "report", InstanceID: "1.2.3", Revision: 1, Path: filepath.Join(ws, "a.json")},
	}
	if _, err := db.EnqueueOutbox(ctx, items); err != nil {
		t.Fatal(err)
	}
	due, err := db.DueOutbox(ctx, time.Now().Add(time.Minute), 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due %+v, %v", due, err)
	}
	for _, it := range due {
		if it.Destination == "pacs" {
			if _, err := db.OutboxFailedAttempt(ctx, it.ID, "connection refused", time.Now(), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Close()

	list := func(state string) []map[string]any {
		t.Helper()
		out, errOut, code := sentinelCmd(t, "outbox", "list", "--workspace", ws, "--state", state, "--json")
		if code != 0 {
			t.Fatalf("outbox list: exit %d, %s", code, errOut)
		}
		var v struct {
			Objects []map[string]any `json:"objects"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("outbox list: %v\n%s", err, out)
		}
		return v.Objects
	}
	failed := list("failed")
	if len(failed) != 1 || failed[0]["destination"] != "pacs" || failed[0]["last_error"] != "connection refused" {
		t.Fatalf("failed objects %+v", failed)
	}
	out, _, code := sentinelCmd(t, "outbox", "retry", "--workspace", ws, "pacs")
	if code != 0 || !strings.Contains(out, "1 objects set aside for pacs queued again") {
		t.Fatalf("outbox retry: exit %d, %s", code, out)
	}
	if failed := list("failed"); len(failed) != 0 {
		t.Errorf("still set aside after the retry: %+v", failed)
	}
	if pending := list("pending"); len(pending) != 2 {
		t.Errorf("pending after the retry: %+v", pending)
	}
	if _, _, code := sentinelCmd(t, "outbox", "retry", "--workspace", ws); code != exitUsage {
		t.Errorf("outbox retry without a destination: exit %d", code)
	}
	if _, _, code := sentinelCmd(t, "outbox", "list", "--workspace", ws, "--state", "lost"); code != exitUsage {
		t.Errorf("outbox list --state lost: exit %d", code)
	}
}
