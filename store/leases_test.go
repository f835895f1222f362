package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A lease keeps a second holder out until it is released or runs out, and
// only its holder renews or releases it.
func TestLeases(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	a, err := db.Acquire(ctx, "learning", "host-a pid 1", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Acquire(ctx, "learning", "host-b pid 2", 10*time.Minute); !errors.Is(err, ErrLeaseHeld) || !strings.Contains(err.Error(), "host-a pid 1") {
		t.Fatalf("second holder: %v, want ErrLeaseHeld naming the first", err)
	}
	if _, err := db.Acquire(ctx, "other", "host-b pid 2", 10*time.Minute); err != nil {
		t.Fatalf("another name: %v", err)
	}
	// Renewed before it runs out, it holds past its first ttl.
	now = now.Add(8 * time.Minute)
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(8 * time.Minute)
	if _, err := db.Acquire(ctx, "learning", "host-b pid 2", 10*time.Minute); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("after a renewal: %v, want ErrLeaseHeld", err)
	}
	// Not renewed, it runs out and another holder takes it; the first can
	// then neither renew nor release it.
	now = now.Add(11 * time.Minute)
	b, err := db.Acquire(ctx, "learning", "host-b pid 2", 10*time.Minute)
	if err != nil {
		t.Fatalf("after it ran out: %v", err)
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("renewing a lost lease: %v, want ErrLeaseHeld", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Acquire(ctx, "learning", "host-c pid 3", time.Minute); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("a stale holder's release freed the lease: %v", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Acquire(ctx, "learning", "host-c pid 3", time.Minute); err != nil {
		t.Fatalf("after release: %v", err)
	}
}
