package store

import (
	"context"
	"errors"
	"testing"
)

// The patient hash is stable within a workspace, across reopening, and
// differs between workspaces, IDs and issuers; the keys recorded with the
// instances read back, and only those.
func TestPatientKeys(t *testing.T) {
	ctx := context.Background()
	path := testTarget(t)
	db := NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	key, err := db.PatientKeyer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := key("", "12345")
	if len(a) != 32 || a == "12345" || a != key("", "12345") || a == key("", "12346") || a == key("HOSP-B", "12345") {
		t.Fatalf("keys %q, %q, %q, %q", a, key("", "12345"), key("", "12346"), key("HOSP-B", "12345"))
	}
	r := result("1.1", "aa", "/in/a")
	r.Instance.PatientKey = a
	if err := db.RecordResult(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordResult(ctx, result("1.2", "bb", "/in/b")); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	again, err := db.PatientKeyer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again("", "12345") != a {
		t.Fatal("the patient key changed when the workspace was reopened")
	}
	ps, err := db.Patients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps["1.1"] != (Patient{a, "1.2.3"}) || ps["1.2"] != (Patient{"", "1.2.3"}) {
		t.Fatalf("patients %v, want 1.1 keyed and both in study 1.2.3", ps)
	}
	other, err := MustOpenDB(t).PatientKeyer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if other("", "12345") == a {
		t.Fatal("two workspaces key a patient alike")
	}
}

// A set patient secret keys patients alike in two workspaces; it cannot be
// set once a workspace has one, nor be too short.
func TestSetPatientSecret(t *testing.T) {
	ctx := context.Background()
	secret := []byte("rehearsal seed 1 patient secret!")
	var keys []string
	for range 2 {
		db := MustOpenDB(t)
		if err := db.SetPatientSecret(ctx, secret); err != nil {
			t.Fatal(err)
		}
		key, err := db.PatientKeyer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key("", "12345"))
		if err := db.SetPatientSecret(ctx, secret); !errors.Is(err, ErrSecretSet) {
			t.Errorf("second set: %v", err)
		}
	}
	if keys[0] != keys[1] || len(keys[0]) != 32 {
		t.Errorf("keys %q", keys)
	}
	db := MustOpenDB(t)
	if _, err := db.PatientKeyer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPatientSecret(ctx, secret); !errors.Is(err, ErrSecretSet) {
		t.Errorf("set after a random one was made: %v", err)
	}
	if err := MustOpenDB(t).SetPatientSecret(ctx, []byte("short")); err == nil {
		t.Error("a 5-byte secret was taken")
	}
}
