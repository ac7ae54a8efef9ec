package session_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
)

// panicSecret is what the panicking handlers below panic with: it must
// reach neither the client nor the log.
const panicSecret = "secret-in-panic-4f1d2e"

// x07App is a Manager whose handler logs in (on /login) and then does what
// the test says.
func x07App(t *testing.T, then func(w http.ResponseWriter, r *http.Request)) (*session.Manager, *memstore.Store, http.Handler, *testkit.SyncBuffer) {
	t.Helper()
	store := memstore.New()
	logs := &testkit.SyncBuffer{}
	m, err := session.New(store, session.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			if err := m.Login(r.Context(), "alice", session.LoginOptions{}); err != nil {
				t.Errorf("Login: %v", err)
			}
		}
		then(w, r)
	}))
	return m, store, h, logs
}

func x07Request(target, cookie string) *http.Request {
	r := httptest.NewRequest("POST", "https://app.example"+target, nil)
	r.TLS = &tls.ConnectionState{}
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: "__Host-keyhold", Value: cookie})
	}
	return r
}

// a handler behind the middleware that panics, here right after a
// login, gives a generic 500: no stack trace or panic value in the body, no
// Set-Cookie, and no session left in the store (the request stays
// unauthenticated). The panic is logged as sys_crash without its value.
func TestRequirementPanicGivesGeneric500(t *testing.T) {
	_, store, h, logs := x07App(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handler", "set before the panic")
		panic(panicSecret)
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, x07Request("/login", ""))
	resp := rec.Result()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("a panicking login sent Set-Cookie: %q", got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	b := rec.Body.String()
	if strings.TrimSpace(b) != "500 internal server error" {
		t.Errorf("body %q, want the generic 500", b)
	}
	for _, leak := range []string{panicSecret, "goroutine", "panic", ".go:"} {
		if strings.Contains(b, leak) {
			t.Errorf("body holds %q: %q", leak, b)
		}
	}
	if list, err := store.ListUserSessions(context.Background(), "alice"); err != nil || len(list) != 0 {
		t.Errorf("after the panic alice has %d sessions (%v), want 0", len(list), err)
	}
	if !strings.Contains(logs.String(), "sys_crash") {
		t.Errorf("no sys_crash event logged:\n%s", logs)
	}
	if strings.Contains(logs.String(), panicSecret) {
		t.Errorf("the panic's value reached the log:\n%s", logs)
	}
}

// a session that existed before the request is not re-issued by a
// panicking request (no Set-Cookie), and the 500 is the generic one.
func TestRequirementPanicKeepsNoCookieForExistingSession(t *testing.T) {
	panicking := false
	_, _, h, _ := x07App(t, func(w http.ResponseWriter, r *http.Request) {
		if panicking {
			panic(panicSecret)
		}
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, x07Request("/login", ""))
	var cookie string
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-keyhold" {
			cookie = c.Value
		}
	}
	if cookie == "" {
		t.Fatal("no session cookie from the login")
	}
	panicking = true
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, x07Request("/login", cookie)) // a re-login that panics
	resp := rec.Result()
	if resp.StatusCode != http.StatusInternalServerError || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("status %d, Set-Cookie %q; want 500 and none", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if strings.Contains(rec.Body.String(), panicSecret) {
		t.Errorf("body holds the panic's value: %q", rec.Body.String())
	}
}

// once the response has begun, a panic cuts the connection
// (http.ErrAbortHandler, which net/http handles without logging a stack),
// and a handler's own http.ErrAbortHandler passes through unchanged.
func TestRequirementPanicAfterHeadersAborts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write bool
		value any
	}{
		{"after the first byte", true, panicSecret},
		{"ErrAbortHandler", false, http.ErrAbortHandler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, h, _ := x07App(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.write {
					w.Write([]byte("partial"))
				}
				panic(tc.value)
			})
			var got any
			func() {
				defer func() { got = recover() }()
				h.ServeHTTP(httptest.NewRecorder(), x07Request("/", ""))
			}()
			if got != http.ErrAbortHandler {
				t.Errorf("the middleware let %v out, want http.ErrAbortHandler", got)
			}
		})
	}
}
