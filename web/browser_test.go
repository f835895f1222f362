package web

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/store"
)

// chromium finds Debian's chromium: $SENTINEL_CHROMIUM, else chromium on
// the PATH; the test skips without it.
func chromium(t *testing.T) string {
	if p := os.Getenv("SENTINEL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found (apt-get install chromium, or set SENTINEL_CHROMIUM): the page's script is not tested in a browser")
	return ""
}

func browserContext(t *testing.T, exe string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1280, 860))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// The first run starts the browser, which lives as long as the context
	// of that run: it must have no timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// The worklist's script in a real browser: keys answer, move and undo, and
// each answer is stored at once under the reader's name.
func TestWorklistKeyboardInBrowser(t *testing.T) {
	exe := chromium(t)
	f := newFixture(t, 4)
	ctx := context.Background()
	for _, id := range f.ids[:3] {
		if _, err := f.db.AddQuery(ctx, sentinel.Query{InstanceID: id, Strategy: "boundary", Reason: "score 1 is 1 from the threshold 2"}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := f.db.AddReader(ctx, "dr-k", store.RoleReader)
	if err != nil {
		t.Fatal(err)
	}
	bctx := browserContext(t, exe)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(c, steps...); err != nil {
			html, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("%s: %v\n%s", what, err, html)
		}
	}
	stored := func(i int) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](`document.querySelectorAll("section.q .result")[`+string(rune('0'+i))+`].textContent.startsWith("stored")`,
			chromedp.WithPollingTimeout(10*time.Second))
	}
	do("sign in", chromedp.Navigate(f.srv.URL+"/signin?next="+url.QueryEscape("/worklist")), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), tok), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("section.q.current")))
	do("answers", chromedp.KeyEvent("n"), stored(0), chromedp.KeyEvent("a"), chromedp.KeyEvent("2"), stored(1))
	for i, want := range []string{"normal:", "abnormal:consolidation"} {
		ls, err := f.db.Labels(ctx, f.ids[i])
		if err != nil || len(ls) != 1 || ls[0].Reader != "dr-k" || ls[0].Value+":"+ls[0].Finding != want {
			t.Fatalf("film %d: %+v %v, want %s", i, ls, err, want)
		}
	}
	// U takes the last answer back; the film is shown again.
	do("undo", chromedp.KeyEvent("u"), chromedp.Poll[chromedp.Void](`document.querySelectorAll("section.q .result")[1].textContent === "undone"`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if ls, _ := f.db.Labels(ctx, f.ids[1]); len(ls) != 0 {
		t.Fatalf("after undo: %+v", ls)
	}
	// S skips without storing; the arrows move.
	cur, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("section.q.current").dataset.instance`))
	if err != nil || cur != f.ids[1] {
		t.Fatalf("current after undo: %q %v", cur, err)
	}
	do("skip", chromedp.KeyEvent("s"))
	do("arrow", chromedp.KeyEvent(kb.ArrowLeft))
	cur, _ = chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("section.q.current").dataset.instance`))
	if cur != f.ids[1] {
		t.Fatalf("after S and the left arrow, current %q, want %q", cur, f.ids[1])
	}
	if ls, _ := f.db.Labels(ctx, f.ids[2]); len(ls) != 0 || strings.Contains(cur, "x") {
		t.Fatalf("skip stored %+v", ls)
	}
}
