package session_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/session"
)

// End to end over TLS with a real client and cookie jar, behind the
// standard library's CSRF protection and the security headers, as the
// package doc recommends: login, unlock, use, lock, logout; the old
// cookie is then refused; a planted cookie is not adopted; a cross-origin
// POST is refused; GET cannot log out.
func TestEndToEnd(t *testing.T) {
	a := newTestApp(t, session.Config{})
	a.createVault("alice")
	srv := httptest.NewTLSServer(session.SecurityHeaders(session.Headers{}, http.NewCrossOriginProtection().Handler(a.handler)))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := srv.Client()
	client.Jar = jar
	u, _ := url.Parse(srv.URL)

	post := func(path, form string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	cookie := func() string {
		for _, c := range jar.Cookies(u) {
			if c.Name == "__Host-keyhold" {
				return c.Value
			}
		}
		return ""
	}

	// A planted cookie (fixation) is not adopted, at login or before.
	planted := b64.EncodeToString(make([]byte, 32))
	jar.SetCookies(u, []*http.Cookie{{Name: "__Host-keyhold", Value: planted, Path: "/"}})
	if code, _ := get("/me"); code != 401 {
		t.Fatalf("planted cookie: %d", code)
	}
	if resp := post("/login", "user=alice"); resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	loggedIn := cookie()
	if loggedIn == "" || loggedIn == planted {
		t.Fatal("login kept the planted cookie")
	}
	if code, who := get("/me"); code != 200 || who != "alice" {
		t.Fatalf("/me: %d %q", code, who)
	}
	if code, _ := get("/secret"); code != 403 {
		t.Errorf("locked /secret: %d, want 403", code)
	}

	// CSRF: a cross-site POST is refused before it reaches the app.
	if resp := post("/unlock", "passphrase=x", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
		t.Errorf("cross-site POST: %d, want 403", resp.StatusCode)
	}
	if resp := post("/unlock", "passphrase=x", "Origin", "https://evil.example"); resp.StatusCode != 403 {
		t.Errorf("cross-origin POST: %d, want 403", resp.StatusCode)
	}
	if resp := post("/unlock", "passphrase="+url.QueryEscape(passphrase), "Sec-Fetch-Site", "same-origin"); resp.StatusCode != 200 {
		t.Fatalf("same-origin unlock: %d", resp.StatusCode)
	}
	unlocked := cookie()
	if unlocked == loggedIn {
		t.Fatal("unlock did not re-issue the cookie")
	}
	if code, got := get("/secret"); code != 200 || got != "secret of alice" {
		t.Fatalf("/secret: %d %q", code, got)
	}

	// GET cannot change state (logout, lock).
	for _, path := range []string{"/logout", "/lock"} {
		if code, _ := get(path); code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 405", path, code)
		}
	}
	if resp := post("/lock", ""); resp.StatusCode != 200 {
		t.Fatalf("lock: %d", resp.StatusCode)
	}
	if code, _ := get("/secret"); code != 403 {
		t.Errorf("after lock: %d", code)
	}
	resp := post("/logout", "")
	if resp.StatusCode != 200 || resp.Header.Get("Clear-Site-Data") == "" {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if cookie() != "" {
		t.Error("the jar still holds the cookie after logout")
	}

	// Replaying the old cookies gets nothing.
	for _, old := range []string{loggedIn, unlocked} {
		jar.SetCookies(u, []*http.Cookie{{Name: "__Host-keyhold", Value: old, Path: "/"}})
		if code, _ := get("/me"); code != 401 {
			t.Errorf("old cookie after logout: %d", code)
		}
	}
	if n, _ := a.store.ListUserSessions(context.Background(), "alice"); len(n) != 0 {
		t.Errorf("%d sessions left after logout", len(n))
	}
}
