package agent

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sentinel-pacs/sentinel/store"
	"github.com/sentinel-pacs/sentinel/web"
)

// Handler returns the agent's HTTP API:
//
//	GET  /healthz             the process is alive
//	GET  /readyz              the first scan is done, the database answers and ingest is not paused
//	GET  /metrics             Prometheus metrics
//	GET  /api/studies         studies, most recent first (?limit=N, default 100)
//	GET  /api/reports/{uid}   an instance's latest report, by SOP Instance UID or instance id (?revision=N: that revision)
//	GET  /api/heatmaps/{uid}  the report's heatmap (PNG; ?revision=N as for the report)
//	GET  /api/revisions       reports issued again because a newer model decided otherwise, newest first (?limit=N, default 100)
//	GET  /api/queries         the open worklist: the cases radiologists are asked about
//	POST /api/queries         choose a new round of cases to ask about (?n=N; needs the token)
//	POST /api/labels          import radiologists' labels, a labels file as the body (needs the token)
//	POST /api/rescan          walk the drop folders now (needs the token)
//	/                         the radiologist's page (package web): readers sign in with their own tokens
//
// Endpoints that change state require "Authorization: Bearer <token>" and
// are disabled when no token is configured. When a read token is
// configured, the GET endpoints under /api/ require it (or the token).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/studies", a.requireReader(a.apiStudies))
	mux.HandleFunc("GET /api/reports/{uid}", a.requireReader(a.apiReport))
	mux.HandleFunc("GET /api/heatmaps/{uid}", a.requireReader(a.apiHeatmap))
	mux.HandleFunc("GET /api/revisions", a.requireReader(a.apiRevisions))
	mux.HandleFunc("GET /api/outbox", a.requireReader(a.apiOutbox))
	mux.HandleFunc("GET /api/queries", a.requireReader(a.apiQueries))
	mux.HandleFunc("POST /api/queries", a.requireToken(a.apiChooseQueries))
	mux.HandleFunc("POST /api/labels", a.requireToken(a.apiLabels))
	mux.HandleFunc("POST /api/rescan", a.requireToken(func(w http.ResponseWriter, r *http.Request) {
		select {
		case a.rescanC <- struct{}{}:
		default: // a rescan is already due
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, "rescan requested")
	}))
	// The radiologist's page (package web) takes every other path.
	dirs := map[string]string{"reports": a.cfg.Reports, "quarantine": a.cfg.Quarantine, "database": a.cfg.StateDir}
	if a.cfg.Archive != "" {
		dirs["archive"] = a.cfg.Archive
	}
	page, err := web.New(web.Options{DB: a.db, Retrain: a.cfg.Retrain, Rollback: a.cfg.Rollback, Dirs: dirs, Logger: a.log})
	if err != nil {
		a.log.Error("page", slog.Any("error", err))
	} else {
		mux.Handle("/", page.Handler())
	}
	return mux
}

func (a *Agent) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var problems []string
	if !a.ready.Load() {
		problems = append(problems, "first scan of the drop folders not finished")
	}
	if a.paused.Load() {
		problems = append(problems, "ingest paused: free disk space below the floor")
	}
	if f := a.faultState(); f != "" {
		problems = append(problems, "ingest paused: a write on Sentinel's side failed: "+f)
	}
	if _, _, err := a.db.QueueDepth(ctx); err != nil {
		problems = append(problems, "database: "+err.Error())
	}
	if len(problems) > 0 {
		http.Error(w, strings.Join(problems, "\n"), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (a *Agent) apiStudies(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	studies, err := a.db.Studies(r.Context(), limit)
	if err != nil {
		a.log.Warn("api studies", slog.Any("error", err))
		http.Error(w, "database error", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"studies": studies})
}

// apiRevisions lists the revised instance reports, newest first, each with
// the decision it replaced; "report" is the revision's path relative to the
// reports folder.
func (a *Agent) apiRevisions(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	revs, err := a.db.RevisedReports(r.Context(), limit)
	if err != nil {
		a.log.Warn("api revisions", slog.Any("error", err))
		http.Error(w, "database error", http.StatusInternalServerError)
		return
	}
	for i := range revs {
		if rel, err := filepath.Rel(a.cfg.Reports, revs[i].ReportPath); err == nil {
			revs[i].ReportPath = filepath.ToSlash(rel)
		}
	}
	if revs == nil {
		revs = []store.RevisedReport{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"revisions": revs})
}

// limitParam reads ?limit=N (1 to 10000, 100 by default), answering 400
// itself when it is out of range.
func limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 10000 {
		http.Error(w, "limit must be between 1 and 10000", http.StatusBadRequest)
		return 0, false
	}
	return n, true
}

func (a *Agent) apiReport(w http.ResponseWriter, r *http.Request) { a.serveReportFile(w, r, false) }

func (a *Agent) apiHeatmap(w http.ResponseWriter, r *http.Request) { a.serveReportFile(w, r, true) }

// serveReportFile sends an instance's latest report (JSON) or its heatmap
// (PNG), or those of the revision asked for. The path comes from the
// database, never from the request.
func (a *Agent) serveReportFile(w http.ResponseWriter, r *http.Request, heatmap bool) {
	uid := r.PathValue("uid")
	revision := 0
	if v := r.URL.Query().Get("revision"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			http.Error(w, "revision must be a positive integer", http.StatusBadRequest)
			return
		}
		revision = n
	}
	ref, ok, err := a.db.Report(r.Context(), uid, revision)
	if err != nil {
		a.log.Warn("api report", slog.Any("error", err))
		http.Error(w, "database error", http.StatusInternalServerError)
		return
	}
	path, kind, ctype := ref.Path, "report", "application/json"
	if heatmap {
		path, kind, ctype = ref.Heatmap, "heatmap", "image/png"
	}
	if !ok || path == "" {
		http.Error(w, "no "+kind+" for that instance", http.StatusNotFound)
		return
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
	case !a.db.Mine(ref.Agent) && !heatmap && len(ref.Body) > 0:
		// Written by another agent sharing the database, under its own
		// workspace: the report as it wrote it, as the database keeps it.
		b = ref.Body
	case !a.db.Mine(ref.Agent):
		http.Error(w, kind+" kept by agent "+ref.Agent+", which wrote it: ask that agent", http.StatusNotFound)
		return
	default:
		http.Error(w, kind+" file unreadable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(b)
}

func (a *Agent) requireToken(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Token == "" {
			http.Error(w, "disabled: no API token configured", http.StatusForbidden)
			return
		}
		if !bearer(r, a.cfg.Token) {
			unauthorized(w)
			return
		}
		next(w, r)
	}
}

// requireReader guards the read API when a read token is configured.
func (a *Agent) requireReader(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.ReadToken != "" && !bearer(r, a.cfg.ReadToken) && !bearer(r, a.cfg.Token) {
			unauthorized(w)
			return
		}
		next(w, r)
	}
}

// bearer reports whether the request carries "Authorization: Bearer
// token" for a non-empty token, compared in constant time.
func bearer(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="sentinel"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// HTTP server limits. A request's headers and body must arrive within
// httpReadTimeout (the largest body, a labels file, is small); a response
// must be written within httpWriteTimeout; an idle keep-alive connection
// is closed after httpIdleTimeout.
const (
	httpReadTimeout  = 30 * time.Second
	httpWriteTimeout = 60 * time.Second
	httpIdleTimeout  = 120 * time.Second
	defaultMaxConns  = 64
)

// serveHTTP starts the HTTP server when an address is configured and
// returns a function that shuts it down.
func (a *Agent) serveHTTP(ctx context.Context, wg *sync.WaitGroup) (func(), error) {
	if a.cfg.HTTPAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("agent: http listen %s: %w", a.cfg.HTTPAddr, err)
	}
	maxConns := a.cfg.MaxConns
	if maxConns <= 0 {
		maxConns = defaultMaxConns
	}
	ln = limitListener(ln, maxConns)
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: httpReadTimeout, WriteTimeout: httpWriteTimeout, IdleTimeout: httpIdleTimeout,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	tls := a.cfg.TLSCert != "" && a.cfg.TLSKey != ""
	if !isLoopback(ln.Addr()) {
		if a.cfg.ReadToken == "" && a.cfg.Token == "" {
			a.log.Warn("http listens beyond this machine without a read token: anyone who can reach it reads studies, accession numbers and reports",
				slog.String("addr", ln.Addr().String()))
		}
		if !tls {
			a.log.Warn("http listens beyond this machine without TLS: tokens and reports cross the network in clear",
				slog.String("addr", ln.Addr().String()))
		}
	}
	a.log.Info("http listening", slog.String("addr", ln.Addr().String()), slog.Bool("tls", tls))
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if tls {
			err = srv.ServeTLS(ln, a.cfg.TLSCert, a.cfg.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http", slog.Any("error", err))
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}

func isLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// limitListener accepts at most n connections at once; further clients
// wait in the kernel's backlog until one closes.
func limitListener(l net.Listener, n int) net.Listener {
	return &limitedListener{Listener: l, sem: make(chan struct{}, n)}
}

type limitedListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
