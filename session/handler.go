package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyhold/keyhold/internal/clientip"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// requestState is one request's view of its session. Handler creates it;
// the Manager's methods change it; the response writer commits its cookie
// before the first byte of the response.
type requestState struct {
	mu       sync.Mutex
	m        *Manager
	r        *http.Request
	https    bool
	plainOK  bool   // plain HTTP allowed: AllowInsecureCookies and a loopback peer
	bearer   bool   // the request authenticated with an Authorization header
	token    []byte // the raw token: wiped when the request ends
	id       []byte
	userID   string
	rec      *record
	version  uint64          // the store's version of rec (storage.Session.Version)
	unlocked *vault.Unlocked // opened at most once per request; locked when it ends

	cookie  *http.Cookie // to send, if any
	clear   string       // the Clear-Site-Data value to send (logout), or ""
	written bool         // headers sent: no more cookies

	attempted bool // SecondFactorAttempt counted this request's attempt
}

func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// Handler returns middleware that loads the request's session (from the
// session cookie, or from an "Authorization: Bearer" access token), makes it
// available to the Manager's methods through the request's context, and
// sets any new cookie before the first byte of the response.
//
// A missing, malformed, unknown, expired or revoked token leaves the
// request without a session (and a cookie that names none is cleared); it
// is never adopted. Tokens are accepted only from the cookie or the
// Authorization header, never from the URL or a form, and cookies only over
// HTTPS (see Config.TrustedProxies and AllowInsecureCookies). Responses get
// "Vary: Cookie, Authorization", and "Cache-Control: no-store" when they
// set a cookie or belong to a session. If the store fails, the request is
// answered by Config.DenyHandler with the store's error (fail closed).
// Handler never panics on its own account. If next panics, the request
// stays unauthenticated: no session cookie is sent, a session it created
// is deleted, and Config.DenyHandler answers ErrPanicked (a generic 500,
// no stack trace) unless the response had begun, in which case the
// connection is cut.
func (m *Manager) Handler(next http.Handler) http.Handler {
	if m == nil {
		return nilManagerHandler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &requestState{m: m, r: r, https: m.proxies.HTTPS(r)}
		if m.cfg.AllowInsecureCookies && !st.https {
			st.plainOK = isLoopback(r)
		}
		w.Header().Add("Vary", "Cookie")
		w.Header().Add("Vary", "Authorization")
		if err := m.load(r.Context(), st, r); err != nil {
			m.cfg.DenyHandler(w, r, err)
			return
		}
		defer st.wipe()
		sw := &responseWriter{ResponseWriter: w, st: st}
		defer func() {
			if p := recover(); p != nil {
				m.recoverPanic(sw, r, p)
			}
		}()
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), m.key, st)))
		sw.commit()
	})
}

// load finds and checks the request's session. It returns an error only
// when the store fails.
func (m *Manager) load(ctx context.Context, st *requestState, r *http.Request) error {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, _ := strings.Cut(auth, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return nil
		}
		token, ok := parseToken(strings.TrimSpace(tok))
		if !ok || !(st.https || st.plainOK) {
			return nil
		}
		st.bearer = true
		return m.loadToken(ctx, st, kindBearer, token)
	}
	c, err := r.Cookie(m.cfg.CookieName)
	if err != nil {
		return nil
	}
	if !st.https && !st.plainOK {
		return nil // never accepted over plain HTTP, and not cleared either: we cannot set cookies here
	}
	token, ok := parseToken(c.Value)
	if !ok {
		st.setClearCookie()
		return nil
	}
	if err := m.loadToken(ctx, st, kindCookie, token); err != nil {
		return err
	}
	if st.rec == nil {
		st.setClearCookie()
	}
	return nil
}

// maxLoadAttempts bounds the reads of a session whose touch keeps losing
// to concurrent writes of the same session.
const maxLoadAttempts = 3

// errBusy is a request's answer when its session changed under every one
// of maxLoadAttempts touches: the store is answered as failing (fail
// closed), never by serving a record that may be stale.
var errBusy = fmt.Errorf("session: the session kept changing while it was loaded: %w", storage.ErrConflict)

func (m *Manager) loadToken(ctx context.Context, st *requestState, k kind, token []byte) error {
	id := sessionID(k, token)
	defer func() {
		if st.token == nil {
			clear(token) // no session: nobody else holds it
		}
	}()
	for range maxLoadAttempts {
		s, err := m.store.GetSession(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := decodeRecord(id, s.Data)
		if err != nil || rec.kind != k {
			m.log.LogAttrs(ctx, slog.LevelWarn, "session_malformed", m.baseAttrs(st, s.UserID, ref(id), nil)...)
			return nil
		}
		now := m.now().UnixMilli()
		switch {
		case now >= rec.deadline:
			m.expire(ctx, st, id, s.UserID, rec, "absolute")
			return nil
		case now >= rec.lastSeen+rec.idleMS:
			m.expire(ctx, st, id, s.UserID, rec, "idle")
			return nil
		}
		locking := len(rec.custody) > 0 && now >= rec.lastSeen+m.cfg.LockAfter.Milliseconds()
		touching := now-rec.lastSeen >= m.cfg.TouchInterval.Milliseconds()
		if locking {
			rec.custody = nil
		}
		if touching {
			rec.lastSeen = now
			if ip, ok := m.proxies.Client(st.r); ok {
				rec.ip = ip.String()
			}
		}
		version := s.Version
		if locking || touching {
			// Write back only over the version read: a logout, revoke or
			// lock that landed since the read wins, and this request
			// reads again (issue 10, item 1).
			err := m.put(ctx, id, s.UserID, rec, s.Version)
			if errors.Is(err, storage.ErrConflict) {
				continue
			}
			if err != nil {
				return err
			}
			version++
		}
		st.token, st.id, st.userID, st.rec, st.version = token, id, s.UserID, rec, version
		if locking {
			m.audit(ctx, slog.LevelInfo, "crypt_vault_locked", st, slog.String("reason", "idle"))
		}
		return nil
	}
	return errBusy
}

// expire removes a session found past a deadline.
func (m *Manager) expire(ctx context.Context, st *requestState, id []byte, userID string, rec *record, reason string) {
	if err := m.store.DeleteSession(ctx, id); err != nil {
		m.log.LogAttrs(ctx, slog.LevelWarn, "sys_store_fail", m.baseAttrs(st, userID, ref(rec.ref), []slog.Attr{slog.String("op", "delete_session"), slog.String("error", err.Error())})...)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "session_expired", m.baseAttrs(st, userID, ref(rec.ref), []slog.Attr{slog.String("reason", reason)})...)
}

// put stores rec as the session with this ID if the stored one has version
// expect (0: if there is none), and returns storage.ErrConflict otherwise.
func (m *Manager) put(ctx context.Context, id []byte, userID string, rec *record, expect uint64) error {
	return m.store.PutSession(ctx, storage.Session{ID: id, UserID: userID, Expires: rec.expiresAt(), Data: rec.encode()}, expect)
}

// isLoopback reports whether the connection comes from this machine
// (never a forwarded address: a proxy on this machine makes every client
// look local, so AllowInsecureCookies must not be used behind one).
func isLoopback(r *http.Request) bool {
	a, ok := clientip.Peer(r)
	return ok && a.IsLoopback()
}

// wipe locks the vault opened for this request and clears the raw token
// (the custody key derived from it is cleared where it is used).
func (st *requestState) wipe() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.unlocked != nil {
		st.unlocked.Lock()
		st.unlocked = nil
	}
	clear(st.token)
	st.token = nil
}

// setCookie queues the cookie for a new token.
func (st *requestState) setCookie(token []byte, rec *record) {
	c := st.m.baseCookie()
	c.Value = b64.EncodeToString(token)
	if rec.remember {
		c.Expires = time.UnixMilli(rec.deadline).UTC()
	}
	st.cookie = c
}

func (st *requestState) setClearCookie() {
	c := st.m.baseCookie()
	c.MaxAge = -1 // "Max-Age=0"
	st.cookie = c
}

func (m *Manager) baseCookie() *http.Cookie {
	c := &http.Cookie{Name: m.cfg.CookieName, Path: "/", HttpOnly: true, Secure: !m.cfg.AllowInsecureCookies, SameSite: http.SameSiteLaxMode}
	if m.cfg.SameSiteStrict {
		c.SameSite = http.SameSiteStrictMode
	}
	return c
}

// responseWriter sets the session's cookie and cache headers before the
// response's first byte.
type responseWriter struct {
	http.ResponseWriter
	st *requestState
}

func (w *responseWriter) commit() {
	st := w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.written {
		return
	}
	st.written = true
	h := w.ResponseWriter.Header()
	if st.cookie != nil {
		http.SetCookie(w.ResponseWriter, st.cookie)
		h.Set("Cache-Control", "no-store")
	} else if st.rec != nil && h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	if st.clear != "" {
		h.Set("Clear-Site-Data", st.clear)
	}
}

// WriteHeader commits the session's headers, then writes the status.
func (w *responseWriter) WriteHeader(code int) {
	w.commit()
	w.ResponseWriter.WriteHeader(code)
}

// Write commits the session's headers, then writes b.
func (w *responseWriter) Write(b []byte) (int, error) {
	w.commit()
	return w.ResponseWriter.Write(b)
}

// Flush commits the session's headers and flushes, if the underlying
// writer can.
func (w *responseWriter) Flush() {
	w.commit()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
