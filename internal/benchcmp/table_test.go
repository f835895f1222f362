package benchcmp

import (
	"bytes"
	"strings"
	"testing"
)

// A peer whose products ran in the reference BLAS is named, in the table,
// as an unfair peer; one on OpenBLAS or torch's own is not.
func TestReferenceBLASWarned(t *testing.T) {
	for blas, want := range map[string]bool{
		"/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0":        true,
		"/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3": false,
		"torch-bundled": false,
	} {
		if got := ReferenceBLAS(map[string]any{"blas": blas}); got != want {
			t.Errorf("ReferenceBLAS(%s) = %v, want %v", blas, got, want)
		}
	}
}

func TestTableWarnsOfReferenceBLAS(t *testing.T) {
	var b bytes.Buffer
	WriteTable(&b, &Result{Settings: map[string]any{"blas": "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"}})
	if !strings.Contains(b.String(), "WARNING: the peer's matrix products ran in the reference BLAS") {
		t.Errorf("no warning in:\n%s", b.String())
	}
}
