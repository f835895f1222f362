package web

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// fixture is a workspace database with films on disk, and the page served
// over real HTTP.
type fixture struct {
	t   *testing.T
	db  *store.DB
	srv *httptest.Server
	ids []string
	// rolledBack records the versions Rollback was asked for.
	rolledBack []string
}

func newFixture(t *testing.T, studies int) *fixture {
	t.Helper()
	dir := t.TempDir()
	db := store.NewDB(dbTarget(t, dir))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db}
	ctx := context.Background()
	if err := db.SaveModel(ctx, sentinel.ModelInfo{Version: "ae-1", Kind: "ae", CreatedAt: time.Now().Add(-time.Hour), Threshold: 1}, true); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < studies; i++ {
		sop := fmt.Sprintf("1.2.826.0.1.3680043.10.1.%d", i)
		study := fmt.Sprintf("1.2.826.0.1.3680043.10.2.%d", i)
		path := filepath.Join(dir, fmt.Sprintf("f%03d.dcm", i))
		if i < 4 {
			if err := phantom.WriteDICOM(path, phantom.Generate(rng, 64, phantom.Normal), 64,
				phantom.Meta{PatientID: "P", StudyInstanceUID: study, SeriesInstanceUID: study + ".1", SOPInstanceUID: sop,
					AccessionNumber: fmt.Sprintf("ACC%03d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		dec := sentinel.DecisionNormal
		if i%3 == 0 {
			dec = sentinel.DecisionAbnormal
		}
		res := store.Result{Instance: sentinel.Instance{ID: sop, SOPInstanceUID: sop, StudyInstanceUID: study, Modality: "DX",
			AccessionNumber: fmt.Sprintf("ACC%03d", i), Format: sentinel.FormatDICOM, SourcePath: path, SHA256: fmt.Sprint(i)},
			Score: sentinel.Score{Value: float64(i) / 10, Threshold: 1, Decision: dec}, ModelVersion: "ae-1",
			ReportPath: filepath.Join(dir, sop+".json"), File: store.File{Path: path, Size: 1, ModTimeNS: int64(i)}}
		if err := db.RecordResult(ctx, res); err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, sop)
	}
	srv, err := New(Options{DB: db, Rollback: func(_ context.Context, v string) (string, error) {
		f.rolledBack = append(f.rolledBack, v)
		return "model " + v + " is current again", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(srv.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// client is a browser-like client: it keeps cookies and does not follow
// redirects, so the test sees them.
type client struct {
	*http.Client
	base string
	csrf string
}

func (f *fixture) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{Client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		base: f.srv.URL}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := c.Get(c.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

func (c *client) post(t *testing.T, path string, form url.Values, withCSRF bool) (int, string) {
	t.Helper()
	if withCSRF {
		form.Set("csrf", c.csrf)
	}
	resp, err := c.PostForm(c.base+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) signIn(t *testing.T, name, role string) *client {
	t.Helper()
	tok, err := f.db.AddReader(context.Background(), name, role)
	if err != nil {
		t.Fatal(err)
	}
	c := f.client()
	if code, _ := c.post(t, "/signin", url.Values{"token": {tok}}, false); code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", code)
	}
	if code, _ := c.get(t, "/worklist"); code != http.StatusOK || c.csrf == "" {
		t.Fatalf("worklist after sign-in: %d, csrf %q", code, c.csrf)
	}
	return c
}

func TestSignInCookieAndRevocation(t *testing.T) {
	f := newFixture(t, 2)
	c := f.client()
	if code, _ := c.get(t, "/worklist"); code != http.StatusSeeOther {
		t.Fatalf("worklist signed out: %d, want a redirect to sign in", code)
	}
	if code, body := c.post(t, "/signin", url.Values{"token": {"nonsense"}}, false); code != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
		t.Fatalf("bad token: %d", code)
	}
	tok, err := f.db.AddReader(context.Background(), "dr-a", store.RoleReader)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.PostForm(c.base+"/signin", url.Values{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value == "" || strings.Contains(cookie.Value, tok) {
		t.Fatalf("session cookie %+v", cookie)
	}
	if code, body := c.get(t, "/worklist"); code != http.StatusOK || !strings.Contains(body, "dr-a") {
		t.Fatalf("worklist: %d", code)
	}
	if err := f.db.RevokeReader(context.Background(), "dr-a"); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.get(t, "/worklist"); code != http.StatusSeeOther {
		t.Fatalf("worklist after revocation: %d, want signed out", code)
	}
	if code, _ := c.post(t, "/answer", url.Values{"instance": {f.ids[0]}, "label": {"normal"}}, true); code != http.StatusUnauthorized {
		t.Fatalf("answer after revocation: %d", code)
	}
}

func TestAnswerNeedsCSRFAndIsStoredWithTheReader(t *testing.T) {
	f := newFixture(t, 3)
	ctx := context.Background()
	if _, err := f.db.AddQuery(ctx, sentinel.Query{InstanceID: f.ids[1], Strategy: "boundary", Reason: "score 7 is 2 from the threshold 5"}); err != nil {
		t.Fatal(err)
	}
	c := f.signIn(t, "dr-b", store.RoleReader)
	code, body := c.get(t, "/worklist")
	if code != http.StatusOK || !strings.Contains(body, "score 0.1 is 0.9 below the threshold 1") {
		t.Fatalf("worklist %d: the reason does not restate the shown numbers:\n%s", code, body)
	}
	if code, _ := c.post(t, "/answer", url.Values{"instance": {f.ids[1]}, "label": {"abnormal"}}, false); code != http.StatusForbidden {
		t.Fatalf("answer without the form token: %d", code)
	}
	if code, _ := c.post(t, "/answer", url.Values{"instance": {f.ids[1]}, "label": {"abnormal"}, "csrf": {"forged"}}, false); code != http.StatusForbidden {
		t.Fatalf("answer with a wrong form token: %d", code)
	}
	if ls, _ := f.db.Labels(ctx, f.ids[1]); len(ls) != 0 {
		t.Fatalf("refused answers stored: %+v", ls)
	}
	if code, _ := c.post(t, "/answer", url.Values{"instance": {f.ids[1]}, "label": {"abnormal"}, "finding": {"effusion"}}, true); code != http.StatusSeeOther {
		t.Fatalf("answer: %d", code)
	}
	ls, err := f.db.Labels(ctx, f.ids[1])
	if err != nil || len(ls) != 1 || ls[0].Reader != "dr-b" || ls[0].Value != "abnormal" || ls[0].Finding != "effusion" || ls[0].Source != "page" {
		t.Fatalf("labels %+v %v", ls, err)
	}
	if log, _ := f.db.AuditLog(ctx, 5); len(log) == 0 || log[0].Action != store.AuditLabel || log[0].Reader != "dr-b" || log[0].Remote == "" {
		t.Fatalf("audit %+v", log)
	}
	// Undo while no retraining has used it.
	if code, _ := c.post(t, "/undo", url.Values{"instance": {f.ids[1]}}, true); code != http.StatusSeeOther {
		t.Fatalf("undo: %d", code)
	}
	if ls, _ := f.db.Labels(ctx, f.ids[1]); len(ls) != 0 {
		t.Fatalf("labels after undo: %+v", ls)
	}
	if code, _ := c.post(t, "/answer", url.Values{"instance": {"nope"}, "label": {"normal"}}, true); code != http.StatusNotFound {
		t.Fatalf("answer about an unknown film: %d", code)
	}
	if code, _ := c.post(t, "/answer", url.Values{"instance": {f.ids[1]}, "label": {"maybe"}}, true); code != http.StatusBadRequest {
		t.Fatalf("answer with a bad label: %d", code)
	}
}

func TestRollbackIsForAdminsOnly(t *testing.T) {
	f := newFixture(t, 1)
	reader := f.signIn(t, "dr-c", store.RoleReader)
	if code, _ := reader.post(t, "/models/rollback", url.Values{"version": {"ae-0"}}, true); code != http.StatusForbidden {
		t.Fatalf("reader rollback: %d", code)
	}
	if _, body := reader.get(t, "/models"); strings.Contains(body, "Roll back to this") {
		t.Fatal("a reader is offered the rollback button")
	}
	if code, body := reader.get(t, "/status"); code != http.StatusOK || !strings.Contains(body, "Queue") || !strings.Contains(body, "No file has failed") {
		t.Fatalf("status: %d", code)
	}
	admin := f.signIn(t, "boss", store.RoleAdmin)
	if code, _ := admin.post(t, "/models/rollback", url.Values{"version": {"ae-0"}}, false); code != http.StatusForbidden {
		t.Fatalf("admin rollback without the form token: %d", code)
	}
	if len(f.rolledBack) != 0 {
		t.Fatalf("rolled back: %v", f.rolledBack)
	}
	if code, _ := admin.post(t, "/models/rollback", url.Values{"version": {"ae-0"}}, true); code != http.StatusSeeOther {
		t.Fatalf("admin rollback: %d", code)
	}
	if len(f.rolledBack) != 1 || f.rolledBack[0] != "ae-0" {
		t.Fatalf("rolled back: %v", f.rolledBack)
	}
	log, _ := f.db.AuditLog(context.Background(), 5)
	if len(log) == 0 || log[0].Action != store.AuditRollback || log[0].Reader != "boss" || log[0].Subject != "ae-0" {
		t.Fatalf("audit %+v", log)
	}
	if code, _ := admin.post(t, "/models/retrain", url.Values{}, true); code != http.StatusNotImplemented {
		t.Fatalf("retrain without the function: %d", code)
	}
}

func TestStudiesFilterPageAndSort(t *testing.T) {
	f := newFixture(t, 120)
	c := f.signIn(t, "dr-d", store.RoleReader)
	rows := regexp.MustCompile(`<a href="/studies/[^"]+">(ACC\d+)</a>`)
	code, body := c.get(t, "/studies?sort=accession&dir=asc")
	got := rows.FindAllStringSubmatch(body, -1)
	if code != http.StatusOK || len(got) != studiesPerPage || got[0][1] != "ACC000" || got[49][1] != "ACC049" {
		t.Fatalf("page 1: %d, %d rows", code, len(got))
	}
	if !strings.Contains(body, "120 studies") || !strings.Contains(body, "2026") && !strings.Contains(body, "–") {
		t.Fatal("page 1 lacks the count")
	}
	_, body = c.get(t, "/studies?sort=accession&dir=asc&page=3")
	got = rows.FindAllStringSubmatch(body, -1)
	if len(got) != 20 || got[0][1] != "ACC100" {
		t.Fatalf("page 3: %v", got)
	}
	// Worst decision abnormal: every third study.
	_, body = c.get(t, "/studies?decision=abnormal&sort=score")
	got = rows.FindAllStringSubmatch(body, -1)
	if !strings.Contains(body, "40 studies") || len(got) != 40 || got[0][1] != "ACC117" {
		t.Fatalf("abnormal by score: %d rows, first %v", len(got), got[0])
	}
	for _, bad := range []string{"/studies?sort=drop", "/studies?page=0", "/studies?from=yesterday", "/studies?decision=odd"} {
		if code, _ := c.get(t, bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d", bad, code)
		}
	}
	// The study date comes from the file.
	_, body = c.get(t, "/studies/"+"1.2.826.0.1.3680043.10.2.1")
	if !strings.Contains(body, "ACC001") || strings.Contains(body, "PatientID") {
		t.Fatal("study page")
	}
}

func TestFilmIsRenderedAndCached(t *testing.T) {
	f := newFixture(t, 2)
	c := f.signIn(t, "dr-e", store.RoleReader)
	resp, err := c.Get(c.base + "/films/" + f.ids[0])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("film: %d %s", resp.StatusCode, b)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != 64 {
		t.Fatalf("film png: %v %v", img.Bounds(), err)
	}
	if code, _ := c.get(t, "/films/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown film: %d", code)
	}
	if code, _ := c.get(t, "/heatmaps/"+f.ids[0]); code != http.StatusNotFound {
		t.Fatalf("heatmap that does not exist: %d", code)
	}
}

func TestFilmCacheBoundsAndSharesRenders(t *testing.T) {
	c := newFilmCache(10)
	calls := 0
	r := func() ([]byte, error) { calls++; return make([]byte, 4), nil }
	for _, k := range []string{"a", "b", "a", "c", "d", "a"} {
		if _, err := c.get(k, r); err != nil {
			t.Fatal(err)
		}
	}
	// a, b, c fit (12 > 10 drops the oldest); a was kept fresh until d came.
	if c.size > 10 || calls != 5 {
		t.Fatalf("size %d, renders %d", c.size, calls)
	}
}

func TestEncodeFilmShrinksToTheSide(t *testing.T) {
	img := sentinel.NewImage(3000, 1500)
	for i := range img.Pix {
		img.Pix[i] = float32(i%3000) / 3000
	}
	b, err := encodeFilm(img, 1024)
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(bytes.NewReader(b))
	if err != nil || got.Bounds().Dx() != 1024 || got.Bounds().Dy() != 512 {
		t.Fatalf("%v %v", got.Bounds(), err)
	}
	if _, err := encodeFilm(sentinel.Image{}, 1024); err == nil {
		t.Fatal("empty image encoded")
	}
}

func TestSignInRedirectStaysOnSite(t *testing.T) {
	for in, want := range map[string]string{"/studies?page=2": "/studies?page=2", "//evil.example": "/worklist",
		"https://evil.example": "/worklist", "": "/worklist", "/\\evil": "/worklist"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
