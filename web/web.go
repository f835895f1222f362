// Package web is the radiologist's page: the worklist of questions the
// learning loop asks, answered from the keyboard; the studies and each
// study's films with their heatmaps; the model versions with their ROC
// curves and learning curve; the agent's status; and the sign-in of
// readers with their own tokens.
//
// It is server-rendered HTML (html/template) with one small script and one
// style sheet, all embedded: the page works with no internet. It reads the
// store the JSON API reads, renders films from their DICOM files through
// dicomio, and never shows, logs or keeps a patient's name, ID or birth
// date. What only the agent can do (retrain now, roll back) comes in as
// functions in Options, so that nothing here imports the agent.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-pacs/sentinel/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options are what the page needs from the agent.
type Options struct {
	DB *store.DB
	// Retrain, when set, retrains now and says what became of the
	// candidate; Rollback makes an earlier model version current again.
	// Without them the page says the agent cannot do it.
	Retrain  func(ctx context.Context) (string, error)
	Rollback func(ctx context.Context, version string) (string, error)
	// Context bounds work the page starts that outlives a request (a
	// retraining); Background when nil.
	Context context.Context
	// Dirs are the folders whose free space the status page shows, by name.
	Dirs map[string]string
	// SessionTTL is how long a sign-in lasts (12 h when 0).
	SessionTTL time.Duration
	// FilmSide is the longest side of a rendered film (1024 when 0);
	// FilmCacheBytes bounds the rendered films kept (128 MiB when 0).
	FilmSide       int
	FilmCacheBytes int
	Logger         *slog.Logger
}

// Server serves the page. Create it with New.
type Server struct {
	opt   Options
	db    *store.DB
	log   *slog.Logger
	tmpl  map[string]*template.Template
	films *filmCache
	dates *dateCache

	retrainMu  sync.Mutex
	retraining atomic.Bool
	lastResult string
}

// New returns the page's server. It does no I/O.
func New(opt Options) (*Server, error) {
	if opt.DB == nil {
		return nil, errors.New("web: no database")
	}
	if opt.Context == nil {
		opt.Context = context.Background()
	}
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = 12 * time.Hour
	}
	if opt.FilmSide <= 0 {
		opt.FilmSide = 1024
	}
	if opt.FilmCacheBytes <= 0 {
		opt.FilmCacheBytes = 128 << 20
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opt: opt, db: opt.DB, log: log.With(slog.String("component", "web")),
		films: newFilmCache(opt.FilmCacheBytes), dates: newDateCache(4096)}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	return s, nil
}

var funcs = template.FuncMap{
	"num": func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "–"
		}
		return strconv.FormatFloat(v, 'g', 4, 64)
	},
	"numptr": func(v *float64) string {
		if v == nil || math.IsNaN(*v) {
			return "–"
		}
		return strconv.FormatFloat(*v, 'g', 4, 64)
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.Local().Format("2006-01-02 15:04")
	},
	"add": func(a, b int) int { return a + b },
	"viewer": func(id string, heatmap bool, label string) viewerData {
		return viewerData{InstanceID: id, Heatmap: heatmap, Label: label}
	},
}

// viewerData is what the film viewer template needs.
type viewerData struct {
	InstanceID string
	Heatmap    bool
	Label      string
}

func (s *Server) parseTemplates() error {
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	s.tmpl = map[string]*template.Template{}
	for _, p := range pages {
		name := p[len("templates/") : len(p)-len(".html")]
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", p)
		if err != nil {
			return fmt.Errorf("web: template %s: %w", name, err)
		}
		s.tmpl[name] = t
	}
	return nil
}

// Handler returns the page's routes; the agent mounts it at "/".
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(http.FileServerFS(static), time.Hour)))
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.signIn)
	mux.HandleFunc("POST /signout", s.signedIn(s.signOut))
	mux.HandleFunc("GET /worklist", s.signedIn(s.worklist))
	mux.HandleFunc("POST /answer", s.signedIn(s.answer))
	mux.HandleFunc("POST /undo", s.signedIn(s.undo))
	mux.HandleFunc("GET /studies", s.signedIn(s.studies))
	mux.HandleFunc("GET /studies/{uid}", s.signedIn(s.study))
	mux.HandleFunc("GET /films/{uid}", s.signedIn(s.film))
	mux.HandleFunc("GET /heatmaps/{uid}", s.signedIn(s.heatmap))
	mux.HandleFunc("GET /models", s.signedIn(s.models))
	mux.HandleFunc("POST /models/retrain", s.signedIn(s.adminOnly(s.retrain)))
	mux.HandleFunc("POST /models/rollback", s.signedIn(s.adminOnly(s.rollback)))
	mux.HandleFunc("GET /status", s.signedIn(s.status))
	return securityHeaders(mux)
}

// securityHeaders sets what every answer of the page carries: nothing is
// loaded from elsewhere, nothing frames it, and nothing is cached by a
// shared cache.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // no-referrer would make browsers send "Origin: null" with the page's own forms
		h.Set("X-Frame-Options", "DENY")
		if h.Get("Cache-Control") == "" {
			h.Set("Cache-Control", "private, no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func cacheFor(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("private, max-age=%d", int(d.Seconds())))
		next.ServeHTTP(w, r)
	})
}

// page is what every template gets: the signed-in reader, the form token,
// the section shown, and the page's own data.
type page struct {
	Title   string
	Nav     string
	Session *store.Session
	Flash   string
	Data    any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	t, ok := s.tmpl[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if p.Session == nil {
		p.Session = sessionOf(r)
	}
	if p.Flash == "" {
		p.Flash = r.URL.Query().Get("msg")
		if len(p.Flash) > 200 {
			p.Flash = p.Flash[:200]
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		s.log.Warn("render", slog.String("page", name), slog.Any("error", err))
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Warn(what, slog.Any("error", err))
	http.Error(w, what+": database error", http.StatusInternalServerError)
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	if _, err := s.session(r); err != nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/worklist", http.StatusSeeOther)
}

// remote is the address a request came from, for the audit table.
func remote(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
