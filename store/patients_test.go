package store

import (
	"context"
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
