package session_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/session"
)

// TestSecondFactorPendingRefused is SES-13 (httptest): a session started
// after only the password step of an MFA-enrolled user
// (LoginOptions.SecondFactorPending) is refused by RequireLogin,
// RequireUnlocked and RequireFresh with ErrSecondFactorRequired (a
// redirect to the second factor's page through DenyHandler; 401 with the
// default one), cannot unlock the vault or step up, and reaches only the
// page behind RequireFirstFactor. SecondFactorVerified re-issues the token
// (the old cookie is dead), and the protected routes then let it in.
func TestSecondFactorPendingRefused(t *testing.T) {
	var mu sync.Mutex
	var denied []error
	a := newTestApp(t, session.Config{DenyHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		mu.Lock()
		denied = append(denied, err)
		mu.Unlock()
		if errors.Is(err, session.ErrSecondFactorRequired) {
			http.Redirect(w, r, "/2fa", http.StatusSeeOther)
			return
		}
		http.Error(w, "denied", http.StatusUnauthorized)
	}})
	a.createVault("alice")
	m := a.m
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// The password was right and alice has TOTP: one factor so far.
		if err := m.Login(r.Context(), "alice", session.LoginOptions{SecondFactorPending: true}); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "/2fa", http.StatusSeeOther)
	})
	mux.Handle("GET /2fa", m.RequireFirstFactor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := m.Current(r.Context())
		if !info.SecondFactorPending || info.MultiFactor {
			http.Error(w, "not pending", http.StatusConflict)
			return
		}
		io.WriteString(w, "enter your code")
	})))
	mux.Handle("POST /2fa", m.RequireFirstFactor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The code was checked (through the lockout) by the app.
		if err := m.SecondFactorVerified(r.Context(), session.FactorTOTP); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})))
	call := func(f func(r *http.Request) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := f(r); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			io.WriteString(w, "ok")
		}
	}
	mux.HandleFunc("POST /unlock", call(func(r *http.Request) error {
		u, err := a.vault.Unlock(r.Context(), "alice", []byte(passphrase))
		if err != nil {
			return err
		}
		defer u.Lock()
		return m.Unlock(r.Context(), u)
	}))
	mux.HandleFunc("POST /reauth", call(func(r *http.Request) error { return m.Reauthenticated(r.Context()) }))
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "protected") })
	mux.Handle("GET /me", m.RequireLogin(ok))
	mux.Handle("GET /secret", m.RequireUnlocked(ok))
	mux.Handle("GET /fresh", m.RequireFresh(time.Hour, ok))
	h := m.Handler(mux)
	do := func(method, target, cookie string) *http.Response {
		return serve(h, m.Config().CookieName, request{method: method, target: target, cookie: cookie})
	}

	resp := do("POST", "/login", "")
	c := sessionCookie(t, resp, m.Config().CookieName)
	if c == nil || c.Value == "" {
		t.Fatal("the password step set no session cookie")
	}
	pending := c.Value
	for _, path := range []string{"/me", "/secret", "/fresh"} {
		mu.Lock()
		denied = nil
		mu.Unlock()
		resp := do("GET", path, pending)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/2fa" {
			t.Fatalf("GET %s after only the password: %d %q, want a redirect to /2fa", path, resp.StatusCode, body(resp))
		}
		mu.Lock()
		if len(denied) != 1 || !errors.Is(denied[0], session.ErrSecondFactorRequired) {
			t.Fatalf("GET %s: DenyHandler got %v, want ErrSecondFactorRequired", path, denied)
		}
		mu.Unlock()
	}
	for _, path := range []string{"/unlock", "/reauth"} {
		resp := do("POST", path, pending)
		if b := body(resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, session.ErrSecondFactorRequired.Error()) {
			t.Fatalf("POST %s while pending: %d %q, want ErrSecondFactorRequired", path, resp.StatusCode, b)
		}
	}
	if resp := do("GET", "/2fa", pending); resp.StatusCode != 200 {
		t.Fatalf("the second factor's page: %d %s", resp.StatusCode, body(resp))
	}
	// The default DenyHandler answers a pending session with 401.
	plain := newTestApp(t, session.Config{})
	plainH := plain.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			if err := plain.m.Login(r.Context(), "alice", session.LoginOptions{SecondFactorPending: true}); err != nil {
				http.Error(w, err.Error(), 400)
			}
			return
		}
		plain.m.RequireLogin(ok).ServeHTTP(w, r)
	}))
	pc := sessionCookie(t, serve(plainH, plain.m.Config().CookieName, request{method: "POST", target: "/login"}), plain.m.Config().CookieName)
	if got := serve(plainH, plain.m.Config().CookieName, request{method: "GET", target: "/me", cookie: pc.Value}).StatusCode; got != http.StatusUnauthorized {
		t.Fatalf("default DenyHandler, pending session: %d, want 401", got)
	}

	// The second factor: the token changes, and the session is let in.
	resp = do("POST", "/2fa", pending)
	c = sessionCookie(t, resp, m.Config().CookieName)
	if resp.StatusCode != 200 || c == nil || c.Value == "" || c.Value == pending {
		t.Fatalf("SecondFactorVerified: %d, cookie %v: want a new token", resp.StatusCode, c)
	}
	full := c.Value
	if got := do("GET", "/me", full); got.StatusCode != 200 {
		t.Fatalf("GET /me after the second factor: %d", got.StatusCode)
	}
	if got := do("GET", "/fresh", full); got.StatusCode != 200 {
		t.Fatalf("GET /fresh after the second factor: %d", got.StatusCode)
	}
	if got := do("GET", "/2fa", full); got.StatusCode != http.StatusConflict {
		t.Fatalf("the session is still pending (or not multi-factor): %d", got.StatusCode)
	}
	if got := do("GET", "/me", pending); got.StatusCode == 200 {
		t.Fatal("the pre-second-factor token still works")
	}
	resp = do("POST", "/unlock", full)
	unlocked := sessionCookie(t, resp, m.Config().CookieName)
	if resp.StatusCode != 200 || unlocked == nil {
		t.Fatalf("unlock after the second factor: %d %s", resp.StatusCode, body(resp))
	}
	if got := do("GET", "/secret", unlocked.Value); got.StatusCode != 200 {
		t.Fatalf("GET /secret unlocked: %d", got.StatusCode)
	}
}
