package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

const (
	alicePass = "velvet otter learns calculus"
	bobPass   = "mauve heron files taxes early"
	secret    = "the safe's code is 42-17-8"
)

// client is one browser: its own cookie jar, plain HTTP to the loopback
// test server.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newClient(t *testing.T, base string) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: base, hc: &http.Client{Jar: jar}}
}

// do sends a request (a form when form is not nil) and returns the status
// and body.
func (c *client) do(method, path string, form url.Values, header ...string) (int, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (c *client) want(wantStatus int, wantBody, method, path string, form url.Values, header ...string) {
	c.t.Helper()
	status, body := c.do(method, path, form, header...)
	if status != wantStatus || (wantBody != "" && body != wantBody) {
		c.t.Fatalf("%s %s: %d %q, want %d %q", method, path, status, body, wantStatus, wantBody)
	}
}

func login(user, pass string) url.Values { return url.Values{"user": {user}, "passphrase": {pass}} }

// The whole program over HTTP on a loopback listener, as a browser or curl
// uses it: sign-up through the login path, the secret sealed and opened,
// another user who cannot see it, bounds, cross-site refusal, logout, the
// login again, and the rate limit; with every log line checked for the
// secrets.
func TestMinimal(t *testing.T) {
	var logs bytes.Buffer // not parallel: the app logs through slog.Default
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	srv := httptest.NewServer(newServer().Handler) // 127.0.0.1, plain HTTP
	t.Cleanup(srv.Close)
	alice, bob := newClient(t, srv.URL), newClient(t, srv.URL)

	alice.want(http.StatusUnauthorized, "", "GET", "/secret", nil)
	// A new name with a passphrase the policy refuses: no account.
	alice.want(http.StatusForbidden, "", "POST", "/login", login("alice", "password12345678")) // login 1
	alice.want(http.StatusUnauthorized, "", "GET", "/secret", nil)
	// A new name with a good passphrase signs up, logged in and unlocked.
	alice.want(http.StatusOK, "", "POST", "/login", login("alice", alicePass)) // 2
	alice.want(http.StatusBadRequest, "", "GET", "/secret", nil)               // none yet
	alice.want(http.StatusOK, secret, "POST", "/secret", url.Values{"secret": {secret}})
	alice.want(http.StatusOK, secret, "GET", "/secret", nil)
	// Over 4 KiB: refused, and the secret stays as it was.
	alice.want(http.StatusBadRequest, "", "POST", "/secret", url.Values{"secret": {strings.Repeat("x", 5000)}})
	alice.want(http.StatusOK, secret, "GET", "/secret", nil)
	// A cross-site form post (what a browser marks with Sec-Fetch-Site) is
	// refused before it reaches the handler.
	alice.want(http.StatusForbidden, "", "POST", "/secret", url.Values{"secret": {"evil"}}, "Sec-Fetch-Site", "cross-site")
	alice.want(http.StatusOK, secret, "GET", "/secret", nil)

	// Bob has a vault of his own and does not see Alice's secret.
	bob.want(http.StatusOK, "", "POST", "/login", login("bob", bobPass)) // 3
	bob.want(http.StatusBadRequest, "", "GET", "/secret", nil)

	// Logout ends Alice's session; a wrong passphrase does not log in.
	alice.want(http.StatusOK, "", "POST", "/logout", nil)
	alice.want(http.StatusUnauthorized, "", "GET", "/secret", nil)
	alice.want(http.StatusForbidden, "", "POST", "/login", login("alice", bobPass)) // 4
	alice.want(http.StatusUnauthorized, "", "GET", "/secret", nil)
	alice.want(http.StatusOK, "", "POST", "/login", login("alice", alicePass)) // 5
	alice.want(http.StatusOK, secret, "GET", "/secret", nil)
	// The sixth login from this address within 15 minutes is refused.
	bob.want(http.StatusTooManyRequests, "", "POST", "/login", login("bob", bobPass))

	for _, s := range []string{alicePass, bobPass, secret, "password12345678"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the logs hold %q:\n%s", s, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "crypt_vault_unlocked") {
		t.Errorf("no audit events logged:\n%s", logs.String())
	}
}

// The claim "under 60 lines" is checked, so that it cannot rot.
func TestMinimalIsUnder60Lines(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(src, []byte("\n")); n >= 60 {
		t.Errorf("main.go has %d lines; the README promises under 60", n)
	}
}
