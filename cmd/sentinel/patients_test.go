package main

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/store"
)

// PNG films carry no Patient ID: `ingest --patients` gives them their
// patients from a research labels file, hashed like a DICOM Patient ID, so
// the learning loop keeps a patient's films together.
func TestIngestPatientsForPNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(13), 0))
	ws := trainWorkspace(t, rng)
	dir := t.TempDir()
	for _, name := range []string{"a.png", "b.png", "c.png", "d.png"} {
		img := image.NewGray(image.Rect(0, 0, 64, 64))
		for i := range img.Pix {
			img.Pix[i] = uint8(rng.IntN(256))
		}
		img.SetGray(0, 0, color.Gray{Y: uint8(len(name))})
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	patients := filepath.Join(t.TempDir(), "labels.csv")
	os.WriteFile(patients, []byte("file,patient,finding\na.png,P1,normal\nb.png,P1,pneumonia\nc.png,P2,normal\n"), 0o644)
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
	if key["a.png"] == "" || key["a.png"] != key["b.png"] || key["c.png"] == "" || key["c.png"] == key["a.png"] || key["d.png"] != "" {
		t.Fatalf("patient keys %v: want a and b the same, c another, d none", key)
	}
	if strings.Contains(key["a.png"], "P1") {
		t.Fatalf("patient key %q names the patient", key["a.png"])
	}
	// A file without file and patient columns is refused.
	bad := filepath.Join(t.TempDir(), "x.csv")
	os.WriteFile(bad, []byte("name,who\na.png,P1\n"), 0o644)
	if _, errOut, code := sentinelCmd(t, "ingest", dir, "--workspace", ws, "--patients", bad); code == 0 || !strings.Contains(errOut, "no file and patient columns") {
		t.Fatalf("patients file without the columns: exit %d, %s", code, errOut)
	}
	// Two patients for one name is an error, by line.
	clash := filepath.Join(t.TempDir(), "clash.csv")
	os.WriteFile(clash, []byte("file,patient\na.png,P1\na.png,P2\n"), 0o644)
	if _, errOut, code := sentinelCmd(t, "ingest", dir, "--workspace", ws, "--patients", clash); code == 0 || !strings.Contains(errOut, "line 3") {
		t.Fatalf("clashing patients: exit %d, %s", code, errOut)
	}
}
