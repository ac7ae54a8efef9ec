package session_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/alexedwards/scs/v2"
	scsmem "github.com/alexedwards/scs/v2/memstore"

	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// BenchmarkMiddleware measures one authenticated request in process (no
// network): the bare handler, keyhold for a logged-in and an unlocked
// session, and scs/v2's LoadAndSave with its memstore. bench/session.sh
// measures the same over loopback with wrk.
func BenchmarkMiddleware(b *testing.B) {
	store := memstore.New()
	m, err := session.New(store, session.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	v, _ := vault.New(memstore.New(), vault.Config{Hasher: testHasher, KDF: testKDF})
	u, err := v.Create(context.Background(), "bench", []byte(passphrase))
	if err != nil {
		b.Fatal(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	setup := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			m.Login(r.Context(), "bench", session.LoginOptions{})
		} else {
			m.Unlock(r.Context(), u)
		}
	}))
	cookieOf := func(resp *http.Response, old string) string {
		if c := sessionCookie(b, resp, "__Host-keyhold"); c != nil {
			return c.Value
		}
		return old
	}
	loggedIn := cookieOf(serve(setup, "__Host-keyhold", request{method: "POST", target: "/login"}), "")
	unlocked := cookieOf(serve(setup, "__Host-keyhold", request{method: "POST", target: "/unlock", cookie: cookieOf(serve(setup, "__Host-keyhold", request{method: "POST", target: "/login"}), "")}), "")

	sm := scs.New()
	sm.Store = scsmem.New()
	var scsCookie string
	{
		rec := httptest.NewRecorder()
		sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sm.Put(r.Context(), "user", "bench") })).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		scsCookie = rec.Result().Cookies()[0].Value
	}

	run := func(name string, h http.Handler, cookieName, cookie string) {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "https://app.example/", nil)
			req.TLS = &tls.ConnectionState{}
			if cookie != "" {
				req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
			}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
	run("bare", hello, "", "")
	run("keyhold", m.Handler(m.RequireLogin(hello)), "__Host-keyhold", loggedIn)
	run("keyhold-unlocked", m.Handler(m.RequireUnlocked(hello)), "__Host-keyhold", unlocked)
	run("scs", sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sm.GetString(r.Context(), "user") == "" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		hello(w, r)
	})), "session", scsCookie)
}
