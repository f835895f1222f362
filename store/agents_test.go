package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"
)

// openAgent opens the database at target as the named agent, with its own
// clock starting at t0.
func openAgent(t *testing.T, target, name string, clock *time.Time) *DB {
	t.Helper()
	db := NewDB(target)
	db.Agent = name
	db.ClaimLease = time.Minute
	db.Now = func() time.Time { return *clock }
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAgentsHeartbeat(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	db := openAgent(t, testTarget(t), "host-a:/ws", &clock)
	if err := db.AgentStarted(ctx, "/ws", "1.2.3"); err != nil {
		t.Fatal(err)
	}
	// The same agent starting again (after a crash) is itself.
	if err := db.AgentStarted(ctx, "/ws", "1.2.3"); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute)
	if err := db.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := db.Agents(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("agents = %+v, %v", got, err)
	}
	a := got[0]
	if a.Name != "host-a:/ws" || a.Workspace != "/ws" || a.Version != "1.2.3" || !a.HeartbeatAt.Equal(clock) ||
		!a.StartedAt.Equal(clock.Add(-time.Minute)) || !a.StoppedAt.IsZero() {
		t.Fatalf("agent = %+v", a)
	}
	// Another workspace under the same name, while the first is alive:
	// refused on a shared database.
	other := NewDB(db.path)
	other.Agent, other.Now, other.ClaimLease = db.Agent, db.Now, db.ClaimLease
	if err := other.Open(); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.AgentStarted(ctx, "/elsewhere", "1.2.3"); testPostgres != errors.Is(err, ErrAgentNameInUse) {
		t.Fatalf("a second agent of the same name: %v", err)
	}
	clock = clock.Add(time.Minute)
	if err := db.AgentStopped(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Agents(ctx); len(got) != 1 || !got[0].StoppedAt.Equal(clock) {
		t.Fatalf("after stop: %+v", got)
	}
}

// Two agents on one PostgreSQL database share one queue: a file is claimed
// by one of them only; a claim whose agent keeps its heartbeat stays its
// own; one whose lease ran out is taken up by the other.
func TestSharedQueueClaimsAndLeases(t *testing.T) {
	if !testPostgres {
		t.Skip("agents share a queue on PostgreSQL; a SQLite file has one agent")
	}
	ctx := context.Background()
	target := testTarget(t)
	clock := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	a := openAgent(t, target, "a", &clock)
	b := openAgent(t, target, "b", &clock)
	var items []QueueItem
	for i := range 3 {
		items = append(items, QueueItem{Path: fmt.Sprintf("/in/%d", i), Size: 1, ModTimeNS: 1, FoundAt: clock})
	}
	if err := a.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := b.Enqueue(ctx, items); err != nil { // both agents see the inbox
		t.Fatal(err)
	}
	ga, err := a.ClaimQueued(ctx, 2)
	if err != nil || len(ga) != 2 || ga[0].Path != "/in/0" || ga[1].Path != "/in/1" || ga[0].Attempts != 1 {
		t.Fatalf("a claims %+v, %v", ga, err)
	}
	gb, err := b.ClaimQueued(ctx, 5)
	if err != nil || len(gb) != 1 || gb[0].Path != "/in/2" {
		t.Fatalf("b claims %+v, %v", gb, err)
	}
	if m, _ := b.ClaimsByAgent(ctx); m["a"] != 2 || m["b"] != 1 {
		t.Fatalf("claims by agent = %v", m)
	}
	// b's periodic reclaim leaves a's live claims alone.
	if got, err := b.RequeueProcessing(ctx, map[string]bool{"/in/2": true}); err != nil || len(got) != 0 {
		t.Fatalf("b reclaimed %v, %v", got, err)
	}
	// a's heartbeat keeps its claims past their first lease.
	clock = clock.Add(50 * time.Second)
	if err := a.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(50 * time.Second)
	if got, _ := b.RequeueProcessing(ctx, map[string]bool{"/in/2": true}); len(got) != 0 {
		t.Fatalf("b took claims a renewed: %v", got)
	}
	// a dies: its leases run out and b takes its files up.
	clock = clock.Add(2 * time.Minute)
	if err := b.Heartbeat(ctx); err != nil { // b's own claim lives on
		t.Fatal(err)
	}
	got, err := b.RequeueProcessing(ctx, map[string]bool{"/in/2": true})
	if err != nil || len(got) != 2 {
		t.Fatalf("b reclaimed %v, %v after a's lease ran out", got, err)
	}
	gb, _ = b.ClaimQueued(ctx, 5)
	if len(gb) != 2 || gb[0].Attempts != 2 {
		t.Fatalf("b claims a's files: %+v", gb)
	}
	if m, _ := b.ClaimsByAgent(ctx); m["a"] != 0 || m["b"] != 3 {
		t.Fatalf("claims by agent after take-over = %v", m)
	}
	// a restarts: its own claims are gone, and b's are not its to reclaim.
	if got, _ := a.RequeueProcessing(ctx, nil); len(got) != 0 {
		t.Fatalf("a on restart reclaimed %v", got)
	}
}

// Agents claiming at once from one queue never claim a file twice.
func TestConcurrentClaimsTakeEachFileOnce(t *testing.T) {
	if !testPostgres {
		t.Skip("agents share a queue on PostgreSQL; a SQLite file has one agent")
	}
	ctx := context.Background()
	target := testTarget(t)
	clock := time.Now()
	var items []QueueItem
	for i := range 400 {
		items = append(items, QueueItem{Path: fmt.Sprintf("/in/%03d", i), Size: 1, ModTimeNS: 1, FoundAt: clock})
	}
	dbs := make([]*DB, 4)
	for i := range dbs {
		dbs[i] = openAgent(t, target, fmt.Sprintf("agent-%d", i), &clock)
	}
	if err := dbs[0].Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, len(dbs))
	for _, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := db.ClaimQueued(ctx, 7)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					if prev, ok := seen[it.Path]; ok {
						errs <- fmt.Errorf("%s claimed by %s and %s", it.Path, prev, db.Agent)
					}
					seen[it.Path] = db.Agent
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != len(items) {
		t.Fatalf("%d of %d files claimed", len(seen), len(items))
	}
	per := map[string]int{}
	for _, a := range seen {
		per[a]++
	}
	t.Logf("claims per agent: %v", per)
}

// A database of the previous release (through 0013) takes the agents'
// migration on either engine: a file left processing is taken up again,
// reports written before carry no agent and stay any agent's to revise,
// and new rows record their agent.
func TestAgentsMigrationFromPreviousRelease(t *testing.T) {
	ctx := context.Background()
	old, path := schemaAt(t, "migrations/0013_readers.sql")
	for _, q := range []string{
		`INSERT INTO instances (instance_id, sop_instance_uid, study_instance_uid, format, path, sha256, status, created_at, updated_at)
			VALUES ('1.2.3', '1.2.3', '1.2', 'dicom', '/in/a.dcm', 'ab', 'scored', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
		`INSERT INTO scores (instance_id, model_version, value, threshold, decision, created_at)
			VALUES ('1.2.3', 'm1', 2, 1, 'abnormal', '2026-01-01T00:00:00Z')`,
		`INSERT INTO reports (instance_id, path, created_at, revision, model_version, decision)
			VALUES ('1.2.3', '/r/1.2.3.json', '2026-01-01T00:00:00Z', 1, 'm1', 'abnormal')`,
		`INSERT INTO queue (path, size, mtime_ns, state, attempts, next_attempt_at, found_at, enqueued_at)
			VALUES ('/in/b.dcm', 1, 1, 'processing', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
	} {
		if _, err := old.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	old.db.Close()

	db := NewDB(path)
	db.Agent = "site-a"
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, err := db.RequeueProcessing(ctx, nil); err != nil || len(got) != 1 || got[0] != "/in/b.dcm" {
		t.Fatalf("the file left processing: %v, %v", got, err)
	}
	ref, ok, err := db.Report(ctx, "1.2.3", 0)
	if err != nil || !ok || ref.Agent != "" || len(ref.Body) != 0 || ref.Path != "/r/1.2.3.json" || !db.Mine(ref.Agent) {
		t.Fatalf("the old report: %+v, %v, %v", ref, ok, err)
	}
	todo, err := db.ReportsToRevise(ctx, "m2", time.Time{})
	if err != nil || len(todo) != 1 {
		t.Fatalf("reports to revise after the migration: %d, %v", len(todo), err)
	}
	r := result("1.2.4", "cd", "/in/c.dcm")
	r.ReportBody = []byte(`{"x":1}`)
	if err := db.RecordResult(ctx, r); err != nil {
		t.Fatal(err)
	}
	ref, _, _ = db.Report(ctx, "1.2.4", 0)
	if ref.Agent != "site-a" || string(ref.Body) != `{"x":1}` {
		t.Fatalf("a new report: %+v", ref)
	}
	if got, _ := db.FileAgents(ctx, []string{"/in/c.dcm"}); got["/in/c.dcm"] != "site-a" {
		t.Fatalf("the new file's agent: %v", got)
	}
}

// Agents starting at once on a new PostgreSQL database migrate it once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	if !testPostgres {
		t.Skip("one SQLite file has one agent")
	}
	target := testTarget(t)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := NewDB(target)
			db.Agent = fmt.Sprintf("agent-%d", i)
			if err := db.Open(); err != nil {
				errs <- err
				return
			}
			db.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	db := reopen(t, target)
	var n int
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	if err := db.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(files) {
		t.Fatalf("migrations recorded = %d, want %d: %v", n, len(files), err)
	}
}
