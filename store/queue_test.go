package store

import (
	"context"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

func TestQueueLifecycle(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	items := []QueueItem{{Path: "/in/a", Size: 1, ModTimeNS: 1}, {Path: "/in/b", Size: 2, ModTimeNS: 2}}
	if err := db.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := db.Enqueue(ctx, items[:1]); err != nil { // again: no new row
		t.Fatal(err)
	}
	if p, q, _ := db.QueueDepth(ctx); p != 2 || q != 0 {
		t.Fatalf("depth = %d pending, %d processing", p, q)
	}
	got, err := db.ClaimQueued(ctx, 1)
	if err != nil || len(got) != 1 || got[0].Path != "/in/a" {
		t.Fatalf("claim = %+v, %v", got, err)
	}
	// A crash leaves it processing; a restart returns it to pending.
	if n, err := db.RequeueProcessing(ctx, nil); err != nil || len(n) != 1 {
		t.Fatalf("requeue = %v, %v", n, err)
	}
	got, _ = db.ClaimQueued(ctx, 5)
	if len(got) != 2 {
		t.Fatalf("claim after requeue = %+v", got)
	}
	// Each claim counts an attempt before any work: /in/a was claimed
	// twice (the first ended in a crash).
	if got[0].Path != "/in/a" || got[0].Attempts != 2 || got[1].Attempts != 1 {
		t.Fatalf("attempts after two claims = %+v", got)
	}
	// A row still being worked on is not reclaimed while the agent runs;
	// one whose settle failed is.
	if n, err := db.RequeueProcessing(ctx, map[string]bool{"/in/a": true, "/in/b": true}); err != nil || len(n) != 0 {
		t.Fatalf("reclaim of busy rows = %v, %v", n, err)
	}
	// A failure on Sentinel's side gives the attempt back.
	if n, err := db.RetryLater(ctx, "/in/a", "disk full", 0, false); err != nil || n != 1 {
		t.Fatalf("uncounted retry = %d, %v", n, err)
	}
	if got, _ := db.ClaimPaths(ctx, []string{"/in/a", "/in/nope"}); len(got) != 1 || got[0].Attempts != 2 {
		t.Fatalf("claim by path = %+v", got)
	}
	// A passing failure comes back only after its delay.
	if n, err := db.RetryLater(ctx, "/in/b", "database busy", time.Hour, true); err != nil || n != 1 {
		t.Fatalf("retry = %d, %v", n, err)
	}
	if got, _ := db.ClaimQueued(ctx, 5); len(got) != 0 {
		t.Fatalf("retried file claimed before its delay: %+v", got)
	}
	// Recording the outcome removes the file from the queue in the same step.
	if err := db.RecordResult(ctx, result("1.1", "aa", "/in/a")); err != nil {
		t.Fatal(err)
	}
	if p, q, _ := db.QueueDepth(ctx); p != 1 || q != 0 {
		t.Fatalf("after result: %d pending, %d processing", p, q)
	}
	// Changed since it was queued: reset.
	if err := db.Enqueue(ctx, []QueueItem{{Path: "/in/b", Size: 3, ModTimeNS: 3}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.ClaimQueued(ctx, 5); len(got) != 1 || got[0].Size != 3 || got[0].Attempts != 1 {
		t.Fatalf("changed file = %+v", got)
	}
}

func TestStudyRevisions(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	r1 := result("1.1", "aa", "/in/a")
	r2 := result("1.2", "bb", "/in/b")
	r2.Score.Decision = sentinel.DecisionNormal
	r2.Score.Value = 0.5
	for _, r := range []Result{r1, r2} {
		if err := db.RecordResult(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	quiet, err := db.QuietStudies(ctx, db.Now())
	if err != nil || len(quiet) != 1 || quiet[0] != "1.2.3" {
		t.Fatalf("quiet = %v, %v", quiet, err)
	}
	if q, _ := db.QuietStudies(ctx, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); len(q) != 0 {
		t.Fatalf("a study is quiet before its last instance: %v", q)
	}
	inst, err := db.StudyInstances(ctx, "1.2.3")
	if err != nil || len(inst) != 2 || inst[0].Decision != "abnormal" || *inst[0].Uncertainty != 0.1 {
		t.Fatalf("study instances = %+v, %v", inst, err)
	}
	if err := db.RecordStudyReport(ctx, "1.2.3", 1, 2, 0, "/r/study.json"); err != nil {
		t.Fatal(err)
	}
	if q, _ := db.QuietStudies(ctx, db.Now()); len(q) != 0 {
		t.Fatalf("reported study still due: %v", q)
	}
	// A late instance makes the study due again.
	if err := db.RecordResult(ctx, result("1.3", "cc", "/in/c")); err != nil {
		t.Fatal(err)
	}
	if q, _ := db.QuietStudies(ctx, db.Now()); len(q) != 1 {
		t.Fatalf("late instance did not reopen the study: %v", q)
	}
	if rev, _, _ := db.StudyRevision(ctx, "1.2.3"); rev != 1 {
		t.Fatalf("revision = %d", rev)
	}
	st, err := db.Studies(ctx, 10)
	if err != nil || len(st) != 1 || st[0].Instances != 3 || st[0].WorstDecision != "abnormal" || st[0].MaxScore != 2 {
		t.Fatalf("studies = %+v, %v", st, err)
	}
	if p, _, ok, err := db.ReportPaths(ctx, "1.2", 0); err != nil || !ok || p != "/r/1.2.json" {
		t.Fatalf("report path = %q %v %v", p, ok, err)
	}
	if _, _, ok, err := db.ReportPaths(ctx, "9.9", 0); err != nil || ok {
		t.Fatalf("unknown instance's report: %v %v", ok, err)
	}
}
