package session_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// SES-01, SES-04, SES-05: the cookie's attributes, and a value that is a
// 256-bit token the store never sees.
func TestCookieAttributes(t *testing.T) {
	a := newTestApp(t, session.Config{})
	resp := a.do(request{method: "POST", target: "/login", form: "user=alice"})
	c := sessionCookie(t, resp, "__Host-keyhold")
	if c == nil {
		t.Fatal("no __Host-keyhold cookie")
	}
	if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie attributes: Secure=%v HttpOnly=%v Path=%q Domain=%q SameSite=%v", c.Secure, c.HttpOnly, c.Path, c.Domain, c.SameSite)
	}
	if c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("a login without remember-me set a persistent cookie: Max-Age=%d Expires=%v", c.MaxAge, c.Expires)
	}
	if len(c.Name)+len(c.Value) > 4096 {
		t.Errorf("cookie is %d bytes", len(c.Name)+len(c.Value))
	}
	token, err := base64.RawURLEncoding.Strict().DecodeString(c.Value)
	if err != nil || len(token) != 32 {
		t.Fatalf("cookie value %q is not 32 bytes of base64url: %v", c.Value, err)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control on a response that sets the cookie = %q, want no-store", got)
	}
	list, err := a.store.ListUserSessions(context.Background(), "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("ListUserSessions = %d sessions, %v", len(list), err)
	}
	s := list[0]
	if len(s.ID) != storage.SessionIDLen {
		t.Errorf("stored ID has %d bytes", len(s.ID))
	}
	for _, stored := range [][]byte{s.ID, s.Data, []byte(s.UserID)} {
		if bytes.Contains(stored, token) || bytes.Contains(stored, []byte(c.Value)) {
			t.Fatal("the store holds the token")
		}
	}
	// The ID is a hash of the token, and not the plain SHA-256 of it.
	if plain := sha256.Sum256(token); bytes.Equal(plain[:], s.ID) {
		t.Error("the ID is SHA-256(token) without a label")
	}

	// With remember-me the cookie persists, but no longer than the
	// session's absolute lifetime.
	resp = a.do(request{method: "POST", target: "/login", form: "user=alice&remember=1"})
	c = sessionCookie(t, resp, "__Host-keyhold")
	if c.Expires.IsZero() || c.Expires.After(a.clock.Now().Add(session.DefaultRememberLifetime)) {
		t.Errorf("remembered cookie expires %v", c.Expires)
	}
}

// SES-02, A1: a token the server did not issue is never adopted; the
// response clears it and a later login issues another.
func TestUnknownTokenNeverAdopted(t *testing.T) {
	a := newTestApp(t, session.Config{})
	attacker := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xA5}, 32))
	for _, value := range []string{attacker, "attacker-value", attacker + "A", strings.Repeat("A", 5000)} {
		resp := a.do(request{method: "GET", target: "/me", cookie: value})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%.20q: status %d, want 401", value, resp.StatusCode)
		}
		c := sessionCookie(t, resp, "__Host-keyhold")
		if c == nil || c.Value != "" || c.MaxAge >= 0 {
			t.Errorf("%.20q: the unknown cookie was not cleared: %v", value, c)
		}
	}
	resp := a.do(request{method: "POST", target: "/login", form: "user=alice", cookie: attacker})
	c := sessionCookie(t, resp, "__Host-keyhold")
	if c == nil || c.Value == attacker {
		t.Fatal("login kept the attacker's token")
	}
	if a.status("/me", attacker) != http.StatusUnauthorized {
		t.Error("the attacker's token logs in")
	}
	if a.status("/me", c.Value) != http.StatusOK {
		t.Error("the issued token does not work")
	}
}

// SES-03: every privilege change re-issues the token and kills the old.
func TestTokenReissued(t *testing.T) {
	a := newTestApp(t, session.Config{})
	a.createVault("alice")
	c0 := a.login("alice")
	resp0 := a.do(request{method: "POST", target: "/login", form: "user=alice", cookie: c0}) // again, same browser
	c1 := sessionCookie(t, resp0, "__Host-keyhold").Value
	if a.status("/me", c0) != http.StatusUnauthorized {
		t.Error("the cookie from before the second login still works")
	}
	c2 := a.unlock(c1)
	if a.status("/me", c1) != http.StatusUnauthorized {
		t.Error("the cookie from before unlock still works")
	}
	cookie := c2
	for _, path := range []string{"/reauth", "/renew"} {
		resp := a.do(request{method: "POST", target: path, cookie: cookie})
		next := sessionCookie(t, resp, "__Host-keyhold")
		if resp.StatusCode != 200 || next == nil || next.Value == cookie {
			t.Fatalf("%s: status %d, cookie %v: not re-issued", path, resp.StatusCode, next)
		}
		if a.status("/me", cookie) != http.StatusUnauthorized {
			t.Errorf("the cookie from before %s still works", path)
		}
		// The vault stays unlocked across the re-issue.
		if got := a.status("/secret", next.Value); got != http.StatusOK {
			t.Errorf("after %s the vault is no longer unlocked: %d", path, got)
		}
		cookie = next.Value
	}
}

// SES-06: tokens only from the cookie or the Authorization header.
func TestTokenNotAcceptedFromURLOrForm(t *testing.T) {
	a := newTestApp(t, session.Config{})
	c := a.login("alice")
	if got := a.status("/me?session="+c+"&__Host-keyhold="+c, ""); got != http.StatusUnauthorized {
		t.Errorf("token in the query: %d", got)
	}
	resp := a.do(request{method: "POST", target: "/fresh", form: "__Host-keyhold=" + c + "&session=" + c})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token in a form: %d", resp.StatusCode)
	}
}

// SES-07, SES-08: idle and absolute timeouts on the fake clock; only a
// reauthentication moves the absolute deadline.
func TestTimeouts(t *testing.T) {
	a := newTestApp(t, session.Config{IdleTimeout: 60 * time.Minute, Lifetime: 24 * time.Hour})
	c := a.login("alice")
	a.clock.Advance(61 * time.Minute)
	if got := a.status("/me", c); got != http.StatusUnauthorized {
		t.Errorf("after 61 idle minutes: %d, want 401", got)
	}
	if list, _ := a.store.ListUserSessions(context.Background(), "alice"); len(list) != 0 {
		t.Error("the idle session is still in the store")
	}

	c = a.login("alice")
	for elapsed := time.Duration(0); elapsed < 24*time.Hour; elapsed += 10 * time.Minute {
		if got := a.status("/me", c); got != http.StatusOK {
			t.Fatalf("active session refused after %v: %d", elapsed, got)
		}
		a.clock.Advance(10 * time.Minute)
	}
	a.clock.Advance(time.Second)
	if got := a.status("/me", c); got != http.StatusUnauthorized {
		t.Errorf("24h+ after login, though active: %d, want 401", got)
	}

	// A reauthentication at 23 h extends the absolute deadline.
	c = a.login("alice")
	for range 23 * 6 {
		a.clock.Advance(10 * time.Minute)
		a.status("/me", c)
	}
	resp := a.do(request{method: "POST", target: "/reauth", cookie: c})
	c = sessionCookie(t, resp, "__Host-keyhold").Value
	a.clock.Advance(50 * time.Minute)
	a.status("/me", c)
	a.clock.Advance(50 * time.Minute)
	if got := a.status("/me", c); got != http.StatusOK {
		t.Errorf("24 h 40 min after login, 100 min after reauthentication: %d, want 200", got)
	}
}

// Sliding renewal writes the store at most once per TouchInterval.
func TestSlidingRenewalWritesRarely(t *testing.T) {
	store := &countingStore{Store: memstore.New()}
	clk := newClock()
	m, err := session.New(store, session.Config{Now: clk.Now, TouchInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			if err := m.Login(r.Context(), "alice", session.LoginOptions{}); err != nil {
				t.Error(err)
			}
		}
	}))
	c := sessionCookie(t, serve(h, "__Host-keyhold", request{method: "POST", target: "/login"}), "__Host-keyhold").Value
	before := store.puts.Load()
	for range 100 {
		clk.Advance(time.Second) // 100 requests over 100 s
		serve(h, "__Host-keyhold", request{method: "GET", target: "/", cookie: c})
	}
	if writes := store.puts.Load() - before; writes > 2 {
		t.Errorf("100 requests over 100 s wrote the session %d times, want at most 2", writes)
	}
}

// Logout sends the configured Clear-Site-Data, and still expires the
// session cookie when "cookies" is left out (to keep a device cookie).
func TestLogoutClearSiteDataConfigurable(t *testing.T) {
	a := newTestApp(t, session.Config{ClearSiteData: `"cache", "storage"`})
	a.createVault("alice")
	c := a.login("alice")
	resp := a.do(request{method: "POST", target: "/logout", cookie: c})
	if got := resp.Header.Get("Clear-Site-Data"); got != `"cache", "storage"` {
		t.Errorf("Clear-Site-Data = %q", got)
	}
	if gone := sessionCookie(t, resp, "__Host-keyhold"); gone == nil || gone.MaxAge >= 0 {
		t.Errorf("logout did not expire the session cookie: %v", gone)
	}
	if a.status("/me", c) != http.StatusUnauthorized {
		t.Error("the cookie works after logout")
	}
}

// SES-09: logout deletes the session, expires the cookie and clears the
// site's data; the old cookie is then refused.
func TestLogout(t *testing.T) {
	a := newTestApp(t, session.Config{})
	a.createVault("alice")
	c := a.unlock(a.login("alice"))
	resp := a.do(request{method: "POST", target: "/logout", cookie: c})
	if resp.StatusCode != 200 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	gone := sessionCookie(t, resp, "__Host-keyhold")
	if gone == nil || gone.MaxAge >= 0 || gone.Value != "" {
		t.Errorf("logout did not expire the cookie: %v", gone)
	}
	if !strings.Contains(resp.Header.Get("Clear-Site-Data"), `"cookies"`) {
		t.Errorf("Clear-Site-Data = %q", resp.Header.Get("Clear-Site-Data"))
	}
	if a.status("/me", c) != http.StatusUnauthorized || a.status("/secret", c) != http.StatusUnauthorized {
		t.Error("the cookie works after logout")
	}
	if list, _ := a.store.ListUserSessions(context.Background(), "alice"); len(list) != 0 {
		t.Error("the session is still in the store after logout")
	}
}

// SES-10, SES-11: revoke all, revoke others, list devices and revoke one.
func TestRevocation(t *testing.T) {
	a := newTestApp(t, session.Config{})
	c1, c2, c3 := a.login("alice"), a.login("alice"), a.login("alice")
	cb := a.login("bob")

	resp := a.do(request{method: "POST", target: "/others", cookie: c1})
	if resp.StatusCode != 200 {
		t.Fatalf("RevokeOthers: %d %s", resp.StatusCode, body(resp))
	}
	if a.status("/me", c1) != 200 || a.status("/me", c2) != 401 || a.status("/me", c3) != 401 || a.status("/me", cb) != 200 {
		t.Error("RevokeOthers: wrong sessions survive")
	}

	c4 := a.login("alice")
	devices, err := a.m.Devices(context.Background(), "alice")
	if err != nil || len(devices) != 2 {
		t.Fatalf("Devices = %d, %v; want 2", len(devices), err)
	}
	for _, d := range devices {
		if d.IP == "" || d.Created.IsZero() || d.LastSeen.IsZero() || d.Ref == "" {
			t.Errorf("device without details: %+v", d)
		}
	}
	if err := a.m.Revoke(context.Background(), "alice", devices[0].Ref); err != nil {
		t.Fatal(err)
	}
	if ok1, ok4 := a.status("/me", c1) == 200, a.status("/me", c4) == 200; ok1 == ok4 {
		t.Errorf("Revoke of one device: c1 works %v, c4 works %v", ok1, ok4)
	}
	if err := a.m.Revoke(context.Background(), "alice", "no-such-ref"); !errors.Is(err, session.ErrNoSuchSession) {
		t.Errorf("Revoke of an unknown ref: %v", err)
	}
	if err := a.m.Revoke(context.Background(), "bob", devices[1].Ref); !errors.Is(err, session.ErrNoSuchSession) {
		t.Errorf("Revoke of another user's session: %v", err)
	}

	if err := a.m.RevokeAll(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if a.status("/me", c1) != 401 || a.status("/me", c4) != 401 || a.status("/me", cb) != 200 {
		t.Error("RevokeAll: wrong sessions survive")
	}
}

// SES-14: at the limit, a new login ends the least recently used session.
func TestSessionLimit(t *testing.T) {
	a := newTestApp(t, session.Config{MaxSessionsPerUser: 3})
	var cookies []string
	for range 3 {
		cookies = append(cookies, a.login("alice"))
		a.clock.Advance(2 * time.Minute)
	}
	a.status("/me", cookies[0]) // the oldest login is now the most recently used
	a.clock.Advance(2 * time.Minute)
	cookies = append(cookies, a.login("alice"))
	want := []int{200, 401, 200, 200}
	for i, c := range cookies {
		if got := a.status("/me", c); got != want[i] {
			t.Errorf("session %d: %d, want %d", i, got, want[i])
		}
	}
}

// SES-12: RequireFresh refuses a stale authentication until the user
// reauthenticates.
func TestRequireFresh(t *testing.T) {
	a := newTestApp(t, session.Config{})
	c := a.login("alice")
	if got := a.do(request{method: "POST", target: "/fresh", cookie: c}).StatusCode; got != 200 {
		t.Fatalf("fresh login: %d", got)
	}
	a.clock.Advance(6 * time.Minute)
	if got := a.do(request{method: "POST", target: "/fresh", cookie: c}).StatusCode; got != 401 {
		t.Errorf("6 minutes after login: %d, want 401", got)
	}
	resp := a.do(request{method: "POST", target: "/reauth", cookie: c})
	c = sessionCookie(t, resp, "__Host-keyhold").Value
	if got := a.do(request{method: "POST", target: "/fresh", cookie: c}).StatusCode; got != 200 {
		t.Errorf("after reauthentication: %d", got)
	}

	// The deny handler receives the typed error.
	var got error
	m, _ := session.New(memstore.New(), session.Config{DenyHandler: func(w http.ResponseWriter, r *http.Request, err error) { got = err }})
	h := m.Handler(m.RequireFresh(time.Minute, http.NotFoundHandler()))
	serve(h, "__Host-keyhold", request{method: "POST", target: "/"})
	if !errors.Is(got, session.ErrNotLoggedIn) {
		t.Errorf("deny handler got %v", got)
	}
}

// SES-18: no cookie over plain HTTP, unless a trusted proxy says HTTPS.
func TestNoCookiesOverPlainHTTP(t *testing.T) {
	a := newTestApp(t, session.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	forged := http.Header{"X-Forwarded-Proto": {"https"}}
	resp := a.do(request{method: "POST", target: "/login", form: "user=alice", plain: true, header: forged, remoteAddr: "203.0.113.9:5000"})
	if resp.StatusCode == 200 || sessionCookie(t, resp, "__Host-keyhold") != nil {
		t.Fatalf("untrusted X-Forwarded-Proto: status %d, cookie %v", resp.StatusCode, sessionCookie(t, resp, "__Host-keyhold"))
	}
	if !strings.Contains(body(resp), session.ErrInsecureTransport.Error()) {
		t.Error("the refusal is not ErrInsecureTransport")
	}
	resp = a.do(request{method: "POST", target: "/login", form: "user=alice", plain: true, header: forged, remoteAddr: "10.1.2.3:5000"})
	c := sessionCookie(t, resp, "__Host-keyhold")
	if resp.StatusCode != 200 || c == nil {
		t.Fatalf("trusted proxy: status %d", resp.StatusCode)
	}
	// A valid cookie sent over plain HTTP is not accepted either.
	if got := a.do(request{method: "GET", target: "/me", cookie: c.Value, plain: true}).StatusCode; got != 401 {
		t.Errorf("cookie over plain HTTP: %d, want 401", got)
	}

	// AllowInsecureCookies: plain HTTP works from loopback, without
	// Secure and prefix; from anywhere else it is still refused.
	dev := newTestApp(t, session.Config{AllowInsecureCookies: true})
	resp = dev.do(request{method: "POST", target: "/login", form: "user=alice", plain: true, remoteAddr: "127.0.0.1:5000"})
	c = sessionCookie(t, resp, "keyhold")
	if c == nil || c.Secure {
		t.Fatalf("insecure development cookie: %v", c)
	}
	if got := dev.do(request{method: "GET", target: "/me", cookie: c.Value, plain: true, remoteAddr: "[::1]:5000"}).StatusCode; got != 200 {
		t.Errorf("development cookie from ::1: %d", got)
	}
	if got := dev.do(request{method: "GET", target: "/me", cookie: c.Value, plain: true, remoteAddr: "192.0.2.7:5000"}).StatusCode; got != 401 {
		t.Errorf("development cookie over plain HTTP from another host: %d, want 401", got)
	}
	resp = dev.do(request{method: "POST", target: "/login", form: "user=alice", plain: true, remoteAddr: "192.0.2.7:5000"})
	if resp.StatusCode == 200 || sessionCookie(t, resp, "keyhold") != nil {
		t.Error("AllowInsecureCookies issued a plain-HTTP cookie to a non-loopback client")
	}
	if _, err := session.New(memstore.New(), session.Config{CookieName: "session"}); !errors.Is(err, session.ErrInvalidInput) {
		t.Errorf("a cookie name without __Host- was accepted: %v", err)
	}
}

// Handler never panics: no middleware, no session.
func TestNoSessionIsNotAPanic(t *testing.T) {
	m, err := session.New(memstore.New(), session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, ok := m.Current(ctx); ok {
		t.Error("Current without middleware reports a session")
	}
	if err := m.Login(ctx, "alice", session.LoginOptions{}); !errors.Is(err, session.ErrNoMiddleware) {
		t.Errorf("Login without middleware: %v", err)
	}
	if _, err := m.Unlocked(ctx); !errors.Is(err, session.ErrNoMiddleware) {
		t.Errorf("Unlocked without middleware: %v", err)
	}
	a := newTestApp(t, session.Config{})
	for _, path := range []string{"/lock", "/reauth", "/renew", "/others"} {
		if resp := a.do(request{method: "POST", target: path}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body(resp), "not logged in") {
			t.Errorf("%s without a session: %d", path, resp.StatusCode)
		}
	}
	if resp := a.do(request{method: "POST", target: "/logout"}); resp.StatusCode != 200 {
		t.Errorf("logout without a session: %d", resp.StatusCode)
	}
}

// SES-16 and the middleware's headers.
func TestCacheHeaders(t *testing.T) {
	a := newTestApp(t, session.Config{})
	c := a.login("alice")
	resp := a.do(request{method: "GET", target: "/me", cookie: c})
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("authenticated GET: Cache-Control %q", got)
	}
	if v := resp.Header.Values("Vary"); !strings.Contains(strings.Join(v, ","), "Cookie") {
		t.Errorf("Vary = %v", v)
	}
}

// A store that fails makes requests fail closed, not anonymous.
func TestStoreFailureFailsClosed(t *testing.T) {
	store := &countingStore{Store: memstore.New()}
	m, _ := session.New(store, session.Config{})
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			m.Login(r.Context(), "alice", session.LoginOptions{})
		}
	}))
	c := sessionCookie(t, serve(h, "__Host-keyhold", request{method: "POST", target: "/login"}), "__Host-keyhold").Value
	store.fail.Store(true)
	if got := serve(h, "__Host-keyhold", request{method: "GET", target: "/", cookie: c}).StatusCode; got != http.StatusInternalServerError {
		t.Errorf("store down: %d, want 500", got)
	}
}

// Unlock refuses a vault of another user.
func TestUnlockOtherUsersVault(t *testing.T) {
	a := newTestApp(t, session.Config{})
	a.createVault("bob")
	ub, err := a.vault.Unlock(context.Background(), "bob", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	defer ub.Lock()
	c := a.login("alice")
	var got error
	h := a.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = a.m.Unlock(r.Context(), ub) }))
	serve(h, "__Host-keyhold", request{method: "POST", target: "/", cookie: c})
	if !errors.Is(got, session.ErrUserMismatch) {
		t.Errorf("Unlock with bob's vault in alice's session: %v", got)
	}
}
