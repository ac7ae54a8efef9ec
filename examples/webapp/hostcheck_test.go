package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// DNS rebinding in the plain-HTTP development mode: a request for another
// host name, arriving at the loopback listener, is refused before any
// handler runs (no sign-up made, no login counted), with the error page and
// the security headers; localhost and loopback addresses are served.
func TestDevModeRefusesOtherHostNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false) // plain HTTP on loopback, as `go run ./examples/webapp`
	c := e.client()
	for _, host := range []string{"attacker.example:8080", "attacker.example", "127.0.0.1.attacker.example", "localhost.attacker.example:80", "[::ffff:7f00:1]x"} {
		h := http.Header{"Origin": {"http://" + host}}
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/signup", strings.NewReader(url.Values{"username": {"mallory"}, "password": {"velvet otter learns calculus"}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header = h
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("Host %q: %d, want 421", host, resp.StatusCode)
		}
		if resp.Header.Get("Content-Security-Policy") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("Host %q: the refusal is not the error page with the security headers: %v", host, resp.Header)
		}
	}
	var n int
	if err := e.db().QueryRow("SELECT COUNT(*) FROM users").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d users signed up through a foreign Host", n)
	}
	for _, host := range []string{"localhost", "LOCALHOST:1234", "127.0.0.1", "127.0.0.2:80", "[::1]:8080"} {
		if !loopbackHost(host) {
			t.Fatalf("loopbackHost(%q) = false", host)
		}
	}
	e.signup(c, "ada") // the test's own requests go to 127.0.0.1:port
}
