package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	db.Now = func() time.Time { return now }
	item := func(dest, obj string) OutboxItem {
		return OutboxItem{Destination: dest, Object: obj, Output: "sr", InstanceID: "i1", Revision: 1,
			SOPClassUID: "1.2.840.10008.5.1.4.1.1.88.33", StudyInstanceUID: "1.2.3", Path: "/out/" + obj + ".dcm"}
	}
	n, err := db.EnqueueOutbox(ctx, []OutboxItem{item("pacs", "1.1"), item("drop", "1.1"), item("pacs", "1.2")})
	if err != nil || n != 3 {
		t.Fatalf("enqueue: %d, %v", n, err)
	}
	// The same object queued again for a destination is not added twice.
	if n, err := db.EnqueueOutbox(ctx, []OutboxItem{item("pacs", "1.1")}); err != nil || n != 0 {
		t.Fatalf("enqueue again: %d, %v", n, err)
	}
	due, err := db.DueOutbox(ctx, now, 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("due: %v, %v", due, err)
	}
	if due[0].Path != "/out/1.1.dcm" || due[0].State != OutboxPending || due[0].StudyInstanceUID != "1.2.3" {
		t.Fatalf("item %+v", due[0])
	}
	// Sent to one destination: the file is still needed by the other.
	free, err := db.OutboxSent(ctx, due[0].ID)
	if err != nil || free {
		t.Fatalf("sent: free %v, %v", free, err)
	}
	if _, err := db.OutboxSent(ctx, due[0].ID); !errors.Is(err, ErrOutboxSettled) {
		t.Fatalf("sent twice: %v", err)
	}
	// A failure waits until its next try; the last attempt sets it aside.
	later := now.Add(time.Minute)
	st, err := db.OutboxFailedAttempt(ctx, due[1].ID, "connection refused", later, 2)
	if err != nil || st != OutboxPending {
		t.Fatalf("attempt 1: %s, %v", st, err)
	}
	if due, _ := db.DueOutbox(ctx, now, 10); len(due) != 1 {
		t.Fatalf("due before the retry: %+v", due)
	}
	if next, ok, err := db.NextOutboxTry(ctx); err != nil || !ok || !next.Equal(now) {
		t.Fatalf("next try %v %v %v", next, ok, err)
	}
	st, err = db.OutboxFailedAttempt(ctx, due[1].ID, "connection refused again", later, 2)
	if err != nil || st != OutboxFailed {
		t.Fatalf("attempt 2: %s, %v", st, err)
	}
	// The last sent copy frees the file; one set aside keeps it.
	if free, err := db.OutboxSent(ctx, due[2].ID); err != nil || !free {
		t.Fatalf("sent 1.2: free %v, %v", free, err)
	}
	counts, err := db.OutboxCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]OutboxCount{"pacs": {Destination: "pacs", Sent: 2}, "drop": {Destination: "drop", Failed: 1}}
	if len(counts) != 2 {
		t.Fatalf("counts %+v", counts)
	}
	for _, c := range counts {
		if c != want[c.Destination] {
			t.Errorf("counts %+v, want %+v", c, want[c.Destination])
		}
	}
	failed, err := db.OutboxItems(ctx, OutboxFailed, 10)
	if err != nil || len(failed) != 1 || failed[0].LastError != "connection refused again" || failed[0].Attempts != 2 {
		t.Fatalf("failed items %+v, %v", failed, err)
	}
	if n, err := db.RetryOutbox(ctx, "drop"); err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	if due, _ := db.DueOutbox(ctx, now, 10); len(due) != 1 || due[0].Attempts != 0 {
		t.Fatalf("due after retry: %+v", due)
	}
}

// The outbox survives closing and opening the database again.
func TestOutboxDurable(t *testing.T) {
	ctx := context.Background()
	path := testTarget(t)
	db := NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnqueueOutbox(ctx, []OutboxItem{{Destination: "d", Object: "o", Output: "sc", InstanceID: "i", Revision: 1, Path: "/p"}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	due, err := db.DueOutbox(ctx, time.Now(), 10)
	if err != nil || len(due) != 1 || due[0].Output != "sc" {
		t.Fatalf("after reopen: %+v, %v", due, err)
	}
}

// TestOutboxRecordedWithTheReport checks that a report's outputs are
// recorded in the report's own transaction: with the report, and not at
// all when the report is not recorded.
func TestOutboxRecordedWithTheReport(t *testing.T) {
	ctx := context.Background()
	db := NewDB(testTarget(t))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	in := sentinel.Instance{ID: "1.2.3", SOPInstanceUID: "1.2.3", StudyInstanceUID: "1.2", Format: sentinel.FormatDICOM, SourcePath: "/in/a.dcm", SHA256: "ab"}
	item := func(object string) OutboxItem {
		return OutboxItem{Destination: "pacs", Object: object, Output: "sr", InstanceID: in.ID, Revision: 1, Path: "/outbox/" + object + ".dcm"}
	}
	res := Result{Instance: in, Score: sentinel.Score{Value: 1, Threshold: 2, Decision: sentinel.DecisionNotFlagged},
		ModelVersion: "m", ReportPath: "/r/a.json", File: File{Path: "/in/a.dcm", Size: 1, ModTimeNS: 1},
		Outbox: []OutboxItem{item("2.25.1")}}
	if err := db.RecordResult(ctx, res); err != nil {
		t.Fatal(err)
	}
	res.File.Path, res.Outbox = "/in/b.dcm", []OutboxItem{item("2.25.2")}
	if err := db.RecordResult(ctx, res); !errors.Is(err, ErrExists) {
		t.Fatalf("the same instance again: %v", err)
	}
	items, err := db.OutboxItems(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Object != "2.25.1" || items[0].State != "pending" {
		t.Fatalf("outbox %+v: want only the recorded report's output, pending", items)
	}
	if err := db.RecordRevision(ctx, Revision{InstanceID: in.ID, Revision: 2, ModelVersion: "m2",
		Score: sentinel.Score{Value: 3, Threshold: 2, Decision: sentinel.DecisionAbnormal}, ReportPath: "/r/a.r2.json",
		Outbox: []OutboxItem{item("2.25.3")}}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordRevision(ctx, Revision{InstanceID: in.ID, Revision: 2, ModelVersion: "m3",
		Score: sentinel.Score{Value: 3, Threshold: 2, Decision: sentinel.DecisionAbnormal}, ReportPath: "/r/a.r2b.json",
		Outbox: []OutboxItem{item("2.25.4")}}); !errors.Is(err, ErrRevised) {
		t.Fatalf("a stale revision: %v", err)
	}
	items, _ = db.OutboxItems(ctx, "", 10)
	if len(items) != 2 {
		t.Fatalf("outbox after the revisions: %+v, want the first report's and the recorded revision's", items)
	}
}
