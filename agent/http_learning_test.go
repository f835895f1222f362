package agent

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

// The learning loop over a real loopback server: a viewer reads the open
// worklist and posts the radiologists' labels back in a batch; good rows
// import even when others are rejected (by line), a re-post adds nothing,
// an answered case leaves the worklist, and posting needs the token.
func TestHTTPWorklistAndLabels(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(21), 0))
	a := e.agent()
	a.cfg.Token = "s3cret"
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	writeDICOM(t, rng, filepath.Join(e.inbox, "a.dcm"), phantom.Meta{SOPInstanceUID: "1.2.9.1", AccessionNumber: "ACC1"})
	writeDICOM(t, rng, filepath.Join(e.inbox, "b.dcm"), phantom.Meta{SOPInstanceUID: "1.2.9.2", AccessionNumber: "ACC2"})
	if _, _, err := a.IngestDir(ctx, e.inbox); err != nil {
		t.Fatal(err)
	}
	ids, err := e.db.FindInstances(ctx, store.KeySOPInstanceUID, "1.2.9.1")
	if err != nil || len(ids) != 1 {
		t.Fatalf("instance = %v, %v", ids, err)
	}
	if _, err := e.db.AddQuery(ctx, sentinel.Query{InstanceID: ids[0], Strategy: "boundary", Reason: "near the threshold"}); err != nil {
		t.Fatal(err)
	}

	worklist := func() []WorklistItem {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/queries")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct{ Queries []WorklistItem }
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("queries = %d, %v", resp.StatusCode, err)
		}
		return got.Queries
	}
	if q := worklist(); len(q) != 1 || q[0].SOPInstanceUID != "1.2.9.1" || q[0].AccessionNumber != "ACC1" ||
		q[0].Reason != "near the threshold" || !strings.HasSuffix(q[0].File, "a.dcm") {
		t.Fatalf("worklist = %+v", q)
	}

	post := func(token, contentType, body string) (int, LabelsResponse, string) {
		t.Helper()
		code, header, b := httpDo(t, "POST", srv.URL+"/api/labels", token, contentType, body)
		var lr LabelsResponse
		if strings.HasPrefix(header.Get("Content-Type"), "application/json") {
			if err := json.Unmarshal(b, &lr); err != nil {
				t.Fatalf("response %q: %v", b, err)
			}
		}
		return code, lr, string(b)
	}
	csvBody := "sop_instance_uid,accession_number,label,reader,time\n" +
		",ACC1,normal,dr-a,2026-01-02\n" + // 2: by the study's accession number
		"9.9.9,,normal,dr-a,2026-01-02\n" + // 3: unknown
		"1.2.9.2,,maybe,dr-a,2026-01-02\n" // 4: bad label
	if code, _, _ := post("", "text/csv", csvBody); code != 401 {
		t.Fatalf("labels without the token = %d", code)
	}
	if n, _ := e.db.LabelCount(ctx); n != 0 {
		t.Fatalf("%d labels stored by an unauthorised post", n)
	}
	code, lr, body := post("s3cret", "text/csv; charset=utf-8", csvBody)
	if code != 422 || lr.Rows != 3 || lr.Added != 1 || lr.Rejected != 2 || len(lr.Errors) != 2 ||
		lr.Errors[0].Line != 3 || !strings.Contains(lr.Errors[0].Error, "unknown case") || lr.Errors[1].Line != 4 {
		t.Fatalf("post = %d %s", code, body)
	}
	if q := worklist(); len(q) != 0 {
		t.Fatalf("answered case still on the worklist: %+v", q)
	}
	// The same good row again, as JSON without a type: nothing new.
	code, lr, body = post("s3cret", "", `[{"accession_number": "ACC1", "label": "normal", "reader": "dr-a", "time": "2026-01-02"}]`)
	if code != 200 || lr.Added != 0 || lr.Unchanged != 1 || lr.Rejected != 0 {
		t.Fatalf("re-post = %d %s", code, body)
	}
	if code, _, body := post("s3cret", "application/xml", "<labels/>"); code != 415 {
		t.Fatalf("xml = %d %s", code, body)
	}
	if code, _, body := post("s3cret", "text/csv", "who,what\nx,y\n"); code != 400 || !strings.Contains(body, "header") {
		t.Fatalf("not a labels file = %d %s", code, body)
	}
	if code, _, _ := post("s3cret", "text/csv", strings.Repeat("x", maxLabelsBody+1)); code != 413 {
		t.Fatalf("oversized body = %d", code)
	}
	if n, _ := e.db.LabelCount(ctx); n != 1 {
		t.Fatalf("%d labels stored, want 1", n)
	}

	// Choosing a round needs the learning loop's options, which this agent
	// was not given; with them, n is checked first.
	choose := func(query string) int {
		t.Helper()
		code, _, _ := httpDo(t, "POST", srv.URL+"/api/queries"+query, "s3cret", "", "")
		return code
	}
	if code := choose("?n=2"); code != 501 {
		t.Fatalf("choose without the learning options = %d, want 501", code)
	}
	var asked []int
	a.cfg.ChooseQueries = func(_ context.Context, n int) ([]store.WorklistRow, error) {
		asked = append(asked, n)
		return e.db.Worklist(ctx)
	}
	for _, q := range []string{"?n=0", "?n=x", "?n=1001"} {
		if code := choose(q); code != 400 {
			t.Errorf("choose %s = %d, want 400", q, code)
		}
	}
	if code := choose(""); code != 200 || !slices.Equal(asked, []int{0}) {
		t.Fatalf("choose with the default budget = %d, asked %v", code, asked)
	}
	a.cfg.ChooseQueries = func(context.Context, int) ([]store.WorklistRow, error) {
		return nil, fmt.Errorf("%w: held by x", ErrRoundRunning)
	}
	if code := choose("?n=3"); code != 409 {
		t.Fatalf("choose while another round is chosen = %d, want 409", code)
	}
}

// httpDo sends a request with an optional bearer token and content type
// and returns the status, the headers and the body.
func httpDo(t *testing.T, method, url, token, contentType, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// With a read token, the read API needs it (or the write token); health
// and metrics stay open, and the write token still guards the posts.
func TestHTTPReadToken(t *testing.T) {
	e := newTestEnv(t)
	a := e.agent()
	a.cfg.Token, a.cfg.ReadToken = "s3cret", "r3ad"
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/api/queries", "", 401},
		{"GET", "/api/queries", "wrong", 401},
		{"GET", "/api/queries", "r3ad", 200},
		{"GET", "/api/queries", "s3cret", 200},
		{"GET", "/api/studies", "", 401},
		{"GET", "/api/studies", "r3ad", 200},
		{"GET", "/api/reports/1.2.3", "", 401},
		{"GET", "/api/reports/1.2.3", "r3ad", 404},
		{"GET", "/api/heatmaps/1.2.3", "", 401},
		{"POST", "/api/labels", "r3ad", 401},
		{"POST", "/api/rescan", "r3ad", 401},
	} {
		if code, _, _ := httpDo(t, tc.method, srv.URL+tc.path, tc.token, "", ""); code != tc.want {
			t.Errorf("%s %s with %q = %d, want %d", tc.method, tc.path, tc.token, code, tc.want)
		}
	}
}

// The worklist by study: one item per study, in the order its first film
// was asked about, each with every film of the study as last reported; a
// PNG film is a study of its own. Over HTTP, as the CSV a RIS would read,
// and a bad ?by is refused before a round is chosen.
func TestStudyWorklist(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	rng := rand.New(rand.NewPCG(uint64(23), 0))
	a := e.agent()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	study := phantom.NewUID(rng)
	for i := range 3 {
		writeDICOM(t, rng, filepath.Join(e.inbox, fmt.Sprintf("s%d.dcm", i)),
			phantom.Meta{SOPInstanceUID: fmt.Sprintf("1.2.7.%d", i), StudyInstanceUID: study, AccessionNumber: "ACC7"})
	}
	writeDICOM(t, rng, filepath.Join(e.inbox, "other.dcm"), phantom.Meta{SOPInstanceUID: "1.2.8.1", AccessionNumber: "ACC8"})
	img := image.NewGray(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(e.inbox, "film.png"), buf.Bytes(), 0o644)
	if _, _, err := a.IngestDir(ctx, e.inbox); err != nil {
		t.Fatal(err)
	}
	ask := func(key, value string) {
		t.Helper()
		ids, err := e.db.FindInstances(ctx, key, value)
		if err != nil || len(ids) != 1 {
			t.Fatalf("%s %s: %v, %v", key, value, ids, err)
		}
		if _, err := e.db.AddQuery(ctx, sentinel.Query{InstanceID: ids[0], Strategy: "boundary", Reason: "asked about " + value}); err != nil {
			t.Fatal(err)
		}
	}
	ask(store.KeySOPInstanceUID, "1.2.7.1")
	ask(store.KeyFile, "film.png")
	ask(store.KeySOPInstanceUID, "1.2.7.2")
	rows, err := e.db.Worklist(ctx)
	if err != nil {
		t.Fatal(err)
	}
	studies, err := StudyWorklist(ctx, e.db, Worklist(rows))
	if err != nil {
		t.Fatal(err)
	}
	if len(studies) != 2 {
		t.Fatalf("%d studies, want 2 (the DICOM study and the PNG): %+v", len(studies), studies)
	}
	s := studies[0]
	if s.StudyInstanceUID != study || s.AccessionNumber != "ACC7" || len(s.Asked) != 2 || len(s.Films) != 3 ||
		s.Asked[0].SOPInstanceUID != "1.2.7.1" || s.Asked[1].SOPInstanceUID != "1.2.7.2" {
		t.Fatalf("study item = %+v", s)
	}
	worst, top := "normal", s.Films[0].Score
	for _, f := range s.Films {
		if sentinel.Decision(f.Decision).Severity() > sentinel.Decision(worst).Severity() {
			worst = f.Decision
		}
		top = max(top, f.Score)
		if f.Report == "" || f.File == "" {
			t.Errorf("film %+v lacks its report or file", f)
		}
	}
	if s.Decision != worst || s.MaxScore != top {
		t.Errorf("study decision %s, max %v; want %s, %v", s.Decision, s.MaxScore, worst, top)
	}
	if p := studies[1]; p.StudyInstanceUID != "" || len(p.Films) != 1 || len(p.Asked) != 1 || !strings.HasSuffix(p.Films[0].File, "film.png") || p.Films[0].Report == "" {
		t.Fatalf("PNG item = %+v", p)
	}

	var b bytes.Buffer
	if err := WriteStudyWorklistCSV(&b, studies); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(recs) != 3 || !slices.Equal(recs[0], StudyWorklistColumns) {
		t.Fatalf("CSV %v, %v", recs, err)
	}
	if r := recs[1]; r[1] != "ACC7" || r[2] != "3" || r[3] != "2" || r[5] != "1.2.7.1 1.2.7.2" || r[8] != "asked about 1.2.7.1 | asked about 1.2.7.2" {
		t.Fatalf("CSV study row = %q", r)
	}

	code, _, body := httpDo(t, "GET", srv.URL+"/api/queries?by=study", "", "", "")
	var got struct{ Studies []StudyWorkItem }
	if code != 200 || json.Unmarshal(body, &got) != nil || len(got.Studies) != 2 || len(got.Studies[0].Films) != 3 {
		t.Fatalf("GET /api/queries?by=study: %d %s", code, body)
	}
	if code, _, _ := httpDo(t, "GET", srv.URL+"/api/queries?by=series", "", "", ""); code != 400 {
		t.Fatalf("?by=series: %d, want 400", code)
	}
	a.cfg.Token = "s3cret"
	chosen := false
	a.cfg.ChooseQueries = func(context.Context, int) ([]store.WorklistRow, error) { chosen = true; return nil, nil }
	if code, _, _ := httpDo(t, "POST", srv.URL+"/api/queries?by=series", "s3cret", "", ""); code != 400 || chosen {
		t.Fatalf("POST ?by=series: %d, round chosen %v; want 400 before any round", code, chosen)
	}
}
