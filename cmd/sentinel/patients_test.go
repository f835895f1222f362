package main

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// PNG films carry no Patient ID: `ingest --patients` gives them their
// patients from a research labels file, hashed like a DICOM Patient ID, so
// the learning loop keeps a patient's films together.
func TestIngestPatientsForPNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(13), 0))
	ws := trainWorkspace(t, rng)
	dir := t.TempDir()
	n := writePhantomPNGs(t, dir, rng, 4, phantom.Normal, "film")
	patients := filepath.Join(t.TempDir(), "labels.csv")
	os.WriteFile(patients, []byte("file,patient,finding\n"+n[0]+",P1,normal\n"+n[1]+",P1,pneumonia\n"+n[2]+",P2,normal\n"), 0o644)
	out, errOut, code := sentinelCmd(t, "ingest", dir, "--workspace", ws, "--patients", patients)
	if code != 0 || !strings.Contains(out, "done=4") {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out, errOut)
	}
	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	refs, err := db.Patients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	files, err := db.Files(context.Background(), store.FileDone)
	if err != nil {
		t.Fatal(err)
	}
	key := map[string]string{}
	for _, f := range files {
		key[filepath.Base(f.Path)] = refs[f.InstanceID].Key
	}
	if key[n[0]] == "" || key[n[0]] != key[n[1]] || key[n[2]] == "" || key[n[2]] == key[n[0]] || key[n[3]] != "" {
		t.Fatalf("patient keys %v: want the first two films the same, the third another, the fourth none", key)
	}
	if strings.Contains(key[n[0]], "P1") {
		t.Fatalf("patient key %q names the patient", key[n[0]])
	}
	// A file without file and patient columns is refused.
	bad := filepath.Join(t.TempDir(), "x.csv")
	os.WriteFile(bad, []byte("name,who\n"+n[0]+",P1\n"), 0o644)
	if _, errOut, code := sentinelCmd(t, "ingest", dir, "--workspace", ws, "--patients", bad); code == 0 || !strings.Contains(errOut, "no file and patient columns") {
		t.Fatalf("patients file without the columns: exit %d, %s", code, errOut)
	}
	// Two patients for one name is an error, by line.
	clash := filepath.Join(t.TempDir(), "clash.csv")
	os.WriteFile(clash, []byte("file,patient\n"+n[0]+",P1\n"+n[0]+",P2\n"), 0o644)
	if _, errOut, code := sentinelCmd(t, "ingest", dir, "--workspace", ws, "--patients", clash); code == 0 || !strings.Contains(errOut, "line 3") {
		t.Fatalf("clashing patients: exit %d, %s", code, errOut)
	}
}
