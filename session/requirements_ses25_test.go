package session_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/keyhold/keyhold/session"
)

// TestRememberNeverReplacesAuthentication is SES-25: the "remember this
// browser" option (LoginOptions.Remember) is the session itself, with a
// longer lifetime and a persistent cookie, never a second credential. The
// remembered session keeps working until its absolute deadline, even with
// activity right up to it; past the deadline the cookie alone gets 401 on
// a protected route, cannot be re-authenticated or renewed into a session,
// and sets no new cookie: only a full login (POST /login) makes one.
func TestRememberNeverReplacesAuthentication(t *testing.T) {
	a := newTestApp(t, session.Config{Lifetime: time.Hour, IdleTimeout: 30 * time.Minute,
		RememberLifetime: 24 * time.Hour, RememberIdleTimeout: 12 * time.Hour})
	name := a.m.Config().CookieName
	resp := a.do(request{method: "POST", target: "/login", form: "user=alice&remember=1"})
	c := sessionCookie(t, resp, name)
	if resp.StatusCode != 200 || c == nil || c.Value == "" {
		t.Fatalf("remembered login: %d, cookie %v", resp.StatusCode, c)
	}
	if c.MaxAge <= 0 && c.Expires.IsZero() {
		t.Fatal("a remembered login set a session-only cookie")
	}
	cookie := c.Value
	// Active every 6 hours up to the deadline: the idle limit never bites.
	for range 3 {
		a.clock.Advance(6 * time.Hour)
		if got := a.status("/me", cookie); got != 200 {
			t.Fatalf("remembered session inside its lifetime: %d", got)
		}
	}
	a.clock.Advance(6*time.Hour + time.Millisecond) // past the 24 h absolute deadline
	for _, r := range []request{
		{method: "GET", target: "/me", cookie: cookie},
		{method: "POST", target: "/reauth", cookie: cookie},
		{method: "POST", target: "/renew", cookie: cookie},
		{method: "GET", target: "/me", cookie: cookie},
	} {
		resp := a.do(r)
		if resp.StatusCode == 200 {
			t.Fatalf("%s %s with the remembered cookie after the absolute deadline: 200 %s", r.method, r.target, body(resp))
		}
		if nc := sessionCookie(t, resp, name); nc != nil && nc.Value != "" {
			t.Fatalf("%s %s after the deadline issued a session cookie", r.method, r.target)
		}
	}
	if got := a.status("/me", cookie); got != http.StatusUnauthorized {
		t.Fatalf("GET /me with the expired remembered cookie: %d, want 401", got)
	}
	// A full login is what it takes.
	if got := a.status("/me", a.login("alice")); got != 200 {
		t.Fatalf("after a full login: %d", got)
	}
}
