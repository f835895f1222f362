package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/sentinel-pacs/sentinel/store"
)

// cookieName is the session cookie. It holds a random session id whose
// hash alone the database keeps.
const cookieName = "sentinel_session"

type ctxKey struct{}

func sessionOf(r *http.Request) *store.Session {
	s, _ := r.Context().Value(ctxKey{}).(*store.Session)
	return s
}

// session returns the live session of the request's cookie, or
// store.ErrBadToken.
func (s *Server) session(r *http.Request) (store.Session, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return store.Session{}, store.ErrBadToken
	}
	return s.db.SessionByID(r.Context(), c.Value)
}

// signedIn lets through the requests of a live session, and checks the
// CSRF token of every state-changing one. Any other is sent to sign in
// (a page), or refused (a script's request or a form post). A reader
// revoked since signing in finds the session gone at their next request.
func (s *Server) signedIn(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			if !errors.Is(err, store.ErrBadToken) {
				s.fail(w, r, "session", err)
				return
			}
			clearCookie(w, r)
			if r.Method == http.MethodGet && r.Header.Get("X-Requested-With") == "" {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "signed out: sign in again", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
			got := r.Header.Get("X-CSRF-Token")
			if got == "" {
				got = r.PostFormValue("csrf")
			}
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
				http.Error(w, "missing or wrong form token: reload the page", http.StatusForbidden)
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &sess)))
	}
}

// sameOrigin refuses a request whose Origin header names another site.
// Browsers send it with every POST; its absence (a script) is left to the
// CSRF token.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (s *Server) adminOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if sess := sessionOf(r); sess == nil || !sess.Reader.Admin() {
			http.Error(w, "only an admin may do this", http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

type signInData struct {
	Next  string
	Error string
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Data: signInData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// safeNext keeps a post-sign-in destination on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/worklist"
	}
	return next
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	reader, err := s.db.ReaderByToken(r.Context(), token)
	if errors.Is(err, store.ErrBadToken) || token == "" {
		s.render(w, r, http.StatusUnauthorized, "signin", page{Title: "Sign in",
			Data: signInData{Next: next, Error: "That token is not valid: it may have been revoked. Ask an admin for a new one."}})
		return
	}
	if err != nil {
		s.fail(w, r, "sign in", err)
		return
	}
	id, _, err := s.db.NewSession(r.Context(), reader.Name, s.opt.SessionTTL)
	if err != nil {
		s.fail(w, r, "sign in", err)
		return
	}
	if err := s.db.Audit(r.Context(), store.AuditEntry{Reader: reader.Name, Action: store.AuditSignIn, Remote: remote(r)}); err != nil {
		s.log.Warn("audit sign-in", slog.Any("error", err))
	}
	s.setCookie(w, r, id, int(s.opt.SessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if err := s.db.EndSession(r.Context(), c.Value); err != nil {
			s.log.Warn("sign out", slog.Any("error", err))
		}
	}
	clearCookie(w, r)
	http.Redirect(w, r, "/signin?msg="+url.QueryEscape("Signed out."), http.StatusSeeOther)
}
