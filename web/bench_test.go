package web

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// benchServer is a page over a database of n studies, one film each, and
// the session cookie of a signed-in reader.
func benchServer(b *testing.B, n int) (*Server, *store.DB, *http.Cookie) {
	b.Helper()
	dir := b.TempDir()
	db := store.NewDB(filepath.Join(dir, "state.db"))
	if err := db.Open(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	ctx := context.Background()
	for i := 0; i < n; i++ {
		sop := fmt.Sprintf("1.2.826.0.1.3680043.10.1.%d", i)
		res := store.Result{Instance: sentinel.Instance{ID: sop, SOPInstanceUID: sop, StudyInstanceUID: fmt.Sprintf("1.2.826.0.1.3680043.10.2.%d", i),
			Modality: "DX", AccessionNumber: fmt.Sprintf("ACC%06d", i), Format: sentinel.FormatDICOM, SourcePath: filepath.Join(dir, sop), SHA256: fmt.Sprint(i)},
			Score: sentinel.Score{Value: float64(i%1000) / 1000, Threshold: 0.9, Decision: sentinel.DecisionNormal}, ModelVersion: "ae-1",
			ReportPath: filepath.Join(dir, sop+".json"), File: store.File{Path: filepath.Join(dir, sop), Size: 1, ModTimeNS: int64(i)}}
		if err := db.RecordResult(ctx, res); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.AddReader(ctx, "bench", store.RoleReader); err != nil {
		b.Fatal(err)
	}
	id, _, err := db.NewSession(ctx, "bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{DB: db})
	if err != nil {
		b.Fatal(err)
	}
	return s, db, &http.Cookie{Name: cookieName, Value: id}
}

func serve(b *testing.B, h http.Handler, c *http.Cookie, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
	}
	return rec
}

// BenchmarkStudiesPage is the server's time for one page of the studies
// table over 10,000 studies: the first page by time received, and a page
// deep in the table sorted by score and filtered by decision.
func BenchmarkStudiesPage(b *testing.B) {
	s, _, c := benchServer(b, 10000)
	h := s.Handler()
	for _, path := range []string{"/studies", "/studies?sort=score&decision=normal&page=150"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				serve(b, h, c, path)
			}
		})
	}
}

// BenchmarkFilmPage is the server's time for the film of a 3000×3000
// 16-bit DX: rendered from its DICOM file the first time, from the cache
// after.
func BenchmarkFilmPage(b *testing.B) {
	s, db, c := benchServer(b, 0)
	dir := b.TempDir()
	path := filepath.Join(dir, "dx.dcm")
	const side = 3000
	rng := rand.New(rand.NewPCG(3, 4))
	sop, study := "1.2.826.0.1.3680043.10.9.1", "1.2.826.0.1.3680043.10.9.2"
	if err := phantom.WriteDICOM(path, phantom.Generate(rng, side, phantom.Normal), side,
		phantom.Meta{StudyInstanceUID: study, SeriesInstanceUID: study + ".1", SOPInstanceUID: sop, AccessionNumber: "BIG"}); err != nil {
		b.Fatal(err)
	}
	res := store.Result{Instance: sentinel.Instance{ID: sop, SOPInstanceUID: sop, StudyInstanceUID: study, Modality: "DX",
		Format: sentinel.FormatDICOM, SourcePath: path, SHA256: "x"}, Score: sentinel.Score{Value: 1, Threshold: 2, Decision: sentinel.DecisionNormal},
		ModelVersion: "ae-1", ReportPath: filepath.Join(dir, "r.json"), File: store.File{Path: path, Size: 1, ModTimeNS: 1}}
	if err := db.RecordResult(context.Background(), res); err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			if _, err := RenderFilm(path, s.opt.FilmSide); err != nil {
				b.Fatal(err)
			}
		}
	})
	serve(b, h, c, "/films/"+sop)
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			serve(b, h, c, "/films/"+sop)
		}
	})
	b.Run("study", func(b *testing.B) {
		for b.Loop() {
			serve(b, h, c, "/studies/"+study)
		}
	})
}
