package agent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A folder handed to ingest or train: images, and links to images kept
// elsewhere, count; hidden and temporary files, label files, links to
// folders and dangling links do not.
func TestListFilesFollowsLinksToFiles(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	write := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "a.dcm"))
	write(filepath.Join(dir, "sub", "b.png"))
	write(filepath.Join(dir, ".hidden.dcm"))
	write(filepath.Join(dir, "labels.csv"))
	write(filepath.Join(elsewhere, "c.png"))
	write(filepath.Join(elsewhere, "folder", "d.png"))
	link(filepath.Join(elsewhere, "c.png"), "c.png")
	link(filepath.Join(elsewhere, "folder"), "folder")
	link(filepath.Join(elsewhere, "gone.png"), "gone.png")
	got, err := ListFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.dcm"), filepath.Join(dir, "c.png"), filepath.Join(dir, "sub", "b.png")}
	if !slices.Equal(got, want) {
		t.Fatalf("ListFiles = %v, want %v", got, want)
	}
}
