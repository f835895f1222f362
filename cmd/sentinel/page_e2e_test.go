package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/store"
)

var screenshots = flag.String("screenshots", "", "with TestPageInBrowser, save each page's screenshot in this `folder` (docs/images/page)")

// chromiumPath finds Debian's chromium: $SENTINEL_CHROMIUM, else chromium
// or chromium-browser on the PATH.
func chromiumPath() string {
	if p := os.Getenv("SENTINEL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// axePath finds axe-core's axe.min.js: $SENTINEL_AXE, else the one npm
// installed globally (npm install -g axe-core).
func axePath() string {
	if p := os.Getenv("SENTINEL_AXE"); p != "" {
		return p
	}
	if out, err := exec.Command("npm", "root", "-g").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "axe-core", "axe.min.js")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// TestPageInBrowser drives the radiologist's page in a real browser against
// the real agent: a reader signs in with their token, answers three films
// on the worklist with the keyboard alone, and the three labels are in the
// database under their name; a reader cannot roll back, a request without
// the form token is refused, and a revoked reader is signed out. Every page
// is checked with axe-core at WCAG 2 A and AA.
func TestPageInBrowser(t *testing.T) {
	chrome := chromiumPath()
	if chrome == "" {
		t.Skip("chromium not found (apt-get install chromium, or set SENTINEL_CHROMIUM): the page is not tested in a browser")
	}
	rng := rand.New(rand.NewPCG(uint64(21), 0))
	ws := trainWorkspace(t, rng)
	port := freePort(t)
	cfg := filepath.Join(t.TempDir(), "agent.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("workspace = %q\n[ingest]\nstable_for = \"500ms\"\npoll_interval = \"50ms\"\nstudy_quiet = \"1s\"\n"+
		"[http]\naddr = \"127.0.0.1:%d\"\ntoken = \"s3cret\"\n", ws, port)), 0o644)
	inbox := filepath.Join(ws, "inbox")
	src := t.TempDir()
	const studies = 6
	for i := range studies {
		k := []phantom.Kind{phantom.Normal, phantom.Nodule}[i%2]
		acc := fmt.Sprintf("ACC%d", i)
		if err := writePhantom(rng, filepath.Join(src, acc+".dcm"), 256, k, phantom.Meta{AccessionNumber: acc}); err != nil {
			t.Fatal(err)
		}
	}
	stop := startAgent(t, "--config", cfg)
	defer stop()
	for i := range studies {
		acc := fmt.Sprintf("ACC%d", i)
		if err := copyPath(filepath.Join(src, acc+".dcm"), filepath.Join(inbox, acc+".dcm")); err != nil {
			t.Fatal(err)
		}
	}
	db := store.NewDB(filepath.Join(ws, "state.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if c, err := db.Counts(context.Background()); err != nil {
			t.Fatal(err)
		} else if c.Reports == studies {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the studies were not reported within 60 s")
		}
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	req, _ := http.NewRequest("POST", base+"/api/queries?n=4", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("choose queries: %v %v", resp, err)
	}
	token := func(args ...string) string {
		out, errOut, code := sentinelCmd(t, append([]string{"readers", "add"}, append(args, "--workspace", ws)...)...)
		if code != 0 {
			t.Fatalf("readers add: %d %s", code, errOut)
		}
		return strings.TrimSpace(out)
	}
	readerTok := token("dr-page")
	adminTok := token("boss", "--admin")

	shotDir := *screenshots
	if shotDir == "" {
		shotDir = t.TempDir()
	}
	axe := ""
	if p := axePath(); p == "" {
		t.Log("axe-core not found (npm install -g axe-core, or set SENTINEL_AXE): accessibility not checked")
	} else if b, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	} else {
		axe = string(b)
	}

	browser := func() (context.Context, context.CancelFunc) {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
			chromedp.WindowSize(1280, 860), chromedp.Flag("disable-gpu", true))
		actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelC := chromedp.NewContext(actx)
		ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
		return ctx, func() { cancelT(); cancelC(); cancelA() }
	}
	ctx, cancel := browser()
	defer cancel()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shotDir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkAxe := func(name string) {
		t.Helper()
		if axe == "" {
			return
		}
		type result struct {
			Passes     []struct{ ID string }
			Violations []struct {
				ID, Impact, Help string
				Nodes            []struct{ Target []string }
			}
		}
		run("axe "+name, chromedp.Evaluate[chromedp.Void](axe))
		res, err := chromedp.Run(ctx, chromedp.Evaluate[result](
			`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe %s: %v", name, err)
		}
		t.Logf("axe-core on %s: %d rules passed, %d violated", name, len(res.Passes), len(res.Violations))
		for _, v := range res.Violations {
			var where []string
			for _, n := range v.Nodes {
				where = append(where, strings.Join(n.Target, " "))
			}
			t.Errorf("%s: axe %s (%s): %s at %v", name, v.ID, v.Impact, v.Help, where)
		}
	}
	location := func() string {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}

	// Sign in: the worklist sends a signed-out browser to the sign-in form.
	run("open", chromedp.Navigate(base+"/worklist"), chromedp.WaitVisible(chromedp.ID("token")))
	if !strings.Contains(location(), "/signin") {
		t.Fatalf("signed out, /worklist went to %s", location())
	}
	shoot("signin")
	checkAxe("signin")
	run("sign in", chromedp.SendKeys(chromedp.ID("token"), readerTok), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("section.q.current")))
	if !strings.HasSuffix(location(), "/worklist") {
		t.Fatalf("after sign-in at %s", location())
	}
	instances, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("section.q")).map(s => s.dataset.instance)`))
	if err != nil || len(instances) < 4 {
		t.Fatalf("%d questions on the worklist, want at least 3", len(instances))
	}
	waitFilm := chromedp.Poll[chromedp.Void](`(() => { const i = document.querySelector("section.q.current img.film"); return i && i.complete && i.naturalWidth > 0; })()`,
		chromedp.WithPollingTimeout(20*time.Second))
	run("film", waitFilm)
	shoot("worklist")
	checkAxe("worklist")

	// Three answers by keyboard: N; A then 3 (the third finding); the
	// arrows back and forth, then N.
	stored := func(i int) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelectorAll("section.q .result")[%d].textContent.startsWith("stored")`, i),
			chromedp.WithPollingTimeout(10*time.Second))
	}
	run("answer 1", chromedp.KeyEvent("n"), stored(0))
	run("answer 2", chromedp.KeyEvent("a"), chromedp.KeyEvent("3"), stored(1))
	run("answer 3", chromedp.KeyEvent(kb.ArrowLeft), chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent("n"), stored(2))
	labels := map[string]string{}
	for _, id := range instances[:3] {
		ls, err := db.Labels(context.Background(), id)
		if err != nil || len(ls) != 1 || ls[0].Reader != "dr-page" {
			t.Fatalf("labels of %s: %+v %v", id, ls, err)
		}
		labels[id] = ls[0].Value + ":" + ls[0].Finding
	}
	if labels[instances[0]] != "normal:" || labels[instances[1]] != "abnormal:effusion" || labels[instances[2]] != "normal:" {
		t.Fatalf("labels %v", labels)
	}
	log, err := db.AuditLog(context.Background(), 10)
	if err != nil || len(log) < 3 || log[0].Action != store.AuditLabel || log[0].Reader != "dr-page" || log[0].Remote != "127.0.0.1" {
		t.Fatalf("audit %+v %v", log, err)
	}

	// A reader cannot roll back, even with the form token; a request
	// without the form token is refused, and stores nothing.
	status := func(js string) int {
		t.Helper()
		code, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		return code
	}
	csrf := `document.getElementById("main").dataset.csrf`
	if code := status(`fetch("/models/rollback", {method: "POST", headers: {"X-CSRF-Token": ` + csrf + `}, body: new URLSearchParams({version: "any"})}).then(r => r.status)`); code != http.StatusForbidden {
		t.Errorf("a reader's rollback answered %d, want 403", code)
	}
	if code := status(`fetch("/answer", {method: "POST", body: new URLSearchParams({instance: "` + instances[3] + `", label: "normal"})}).then(r => r.status)`); code != http.StatusForbidden {
		t.Errorf("an answer without the form token answered %d, want 403", code)
	}
	if ls, _ := db.Labels(context.Background(), instances[3]); len(ls) != 0 {
		t.Errorf("an answer without the form token was stored: %+v", ls)
	}

	// The CSV path: the exported worklist, a label column added, imports
	// as it is with --reader; then every study is read by accession
	// number (no time column), and a retraining uses the labels.
	exported := filepath.Join(t.TempDir(), "worklist.csv")
	if _, errOut, code := sentinelCmd(t, "queries", "export", "--workspace", ws, "--n", "0", "--out", exported); code != 0 {
		t.Fatalf("queries export: %s", errOut)
	}
	raw, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], instances[3]) {
		t.Fatalf("exported worklist after three answers:\n%s", raw)
	}
	filled := lines[0] + ",label\n" + lines[1] + ",abnormal: nodule\n"
	os.WriteFile(exported, []byte(filled), 0o644)
	if out, errOut, code := sentinelCmd(t, "labels", "import", "--workspace", ws, "--reader", "dr-csv", exported); code != 0 ||
		!strings.Contains(out, "1 rows: 1 labels added") {
		t.Fatalf("filled-in worklist: %d\n%s\n%s", code, out, errOut)
	}
	if ls, _ := db.Labels(context.Background(), instances[3]); len(ls) != 1 || ls[0].Reader != "dr-csv" || ls[0].Finding != "nodule" ||
		time.Since(ls[0].Time) > time.Minute {
		t.Fatalf("the filled-in worklist's label: %+v", ls)
	}
	var all strings.Builder
	all.WriteString("accession_number,label\n")
	for i := range studies {
		fmt.Fprintf(&all, "ACC%d,%s\n", i, []string{"normal", "abnormal"}[i%2])
	}
	allPath := filepath.Join(t.TempDir(), "readings.csv")
	os.WriteFile(allPath, []byte(all.String()), 0o644)
	if out, errOut, code := sentinelCmd(t, "labels", "import", "--workspace", ws, "--reader", "dr-csv", allPath); code != 0 {
		t.Fatalf("readings: %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := sentinelCmd(t, "retrain", "--workspace", ws, "--epochs", "2"); code != 0 {
		t.Fatalf("retrain: %d\n%s\n%s", code, out, errOut)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		vs, err := db.ModelVersions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d model versions after the retraining", len(vs))
		}
	}

	// The other pages, each checked and pictured.
	var study string
	for name, path := range map[string]string{"studies": "/studies", "models": "/models", "status": "/status"} {
		run(name, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
		if name == "models" {
			if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart").length`)); err != nil || n == 0 {
				t.Errorf("the models page after a retraining draws %d charts (%v)", n, err)
			}
		}
		shoot(name)
		checkAxe(name)
	}
	run("studies by decision", chromedp.Navigate(base+"/studies?sort=decision"), chromedp.WaitVisible(chromedp.CSS("table.studies")))
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`table.studies tbody a`), "href"))
	if err != nil {
		t.Fatal(err)
	}
	study = href.Value
	run("study", chromedp.Navigate(base+study), chromedp.WaitVisible(chromedp.CSS("figure.viewer")),
		chromedp.Poll[chromedp.Void](`Array.from(document.querySelectorAll("img.film")).every(i => i.complete && i.naturalWidth > 0)`, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Click(chromedp.CSS(`.presets button:nth-child(2)`)))
	wl, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("output.wl")))
	if err != nil {
		t.Fatal(err)
	}
	if wl != "window 150, level 90" {
		t.Errorf("after the Lungs preset the viewer says %q", wl)
	}
	shoot("study")
	checkAxe("study")

	// An admin sees the rollback buttons.
	actx, acancel := browser()
	defer acancel()
	if err := chromedp.Do(actx, chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.ID("token")), chromedp.SendKeys(chromedp.ID("token"), adminTok),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("p.lead")),
		chromedp.Navigate(base+"/models"), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatal(err)
	}
	if html, err := chromedp.Run(actx, chromedp.OuterHTML(chromedp.CSS("main"))); err != nil || !strings.Contains(html, "Recent actions") || !strings.Contains(html, "Retrain") {
		t.Errorf("admin's models page lacks the audit or the retrain button: %v", err)
	}
	// The admin makes the kept candidate current from the page: the
	// running agent's rollback, recorded in the audit.
	if err := chromedp.Do(actx, chromedp.Click(chromedp.CSS(`form[action="/models/rollback"] button`)),
		chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatalf("roll back from the page: %v", err)
	}
	// The click returns when the page it leaves still shows a heading, so
	// the form's request may not have been handled yet: read the list
	// until the rollback shows or ten seconds pass.
	type listed struct {
		Active bool   `json:"active"`
		Note   string `json:"note"`
	}
	var after []listed
	var out string
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, _, _ = sentinelCmd(t, "models", "list", "--workspace", ws, "--json")
		after = nil
		if err := json.Unmarshal([]byte(out), &after); err != nil || len(after) < 2 {
			t.Fatalf("models list after the page's rollback: %v\n%s", err, out)
		}
		done := false
		for _, m := range after {
			done = done || (m.Active && strings.Contains(m.Note, "rolled back"))
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	active := 0
	for _, m := range after {
		if m.Active {
			active++
			if !strings.Contains(m.Note, "rolled back") {
				t.Errorf("the version made current from the page has the note %q", m.Note)
			}
		}
	}
	if active != 1 {
		t.Errorf("%d versions active after the page's rollback:\n%s", active, out)
	}

	// Revoked: the reader's next request finds them signed out.
	if _, errOut, code := sentinelCmd(t, "readers", "revoke", "dr-page", "--workspace", ws); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	out, _, _ = sentinelCmd(t, "readers", "list", "--workspace", ws)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && ((f[0] == "dr-page" && (f[1] != "reader" || f[len(f)-1] == "-")) || (f[0] == "boss" && (f[1] != "admin" || f[len(f)-1] != "-"))) {
			t.Errorf("readers list: %q", line)
		}
	}
	if !strings.Contains(out, "dr-page") || !strings.Contains(out, "boss") || strings.Contains(out, readerTok) {
		t.Errorf("readers list:\n%s", out)
	}
	run("after revocation", chromedp.Navigate(base+"/worklist"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := location(); !strings.Contains(loc, "/signin") {
		t.Fatalf("a revoked reader's /worklist went to %s", loc)
	}
	if b, err := json.Marshal(labels); err == nil {
		t.Logf("labels stored from the keyboard: %s; screenshots in %s", b, shotDir)
	}
}
