package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLoginLimitPerAddress: the sixth login attempt from one address
// within 15 minutes gets 429 with Retry-After, whatever the user name or
// X-Forwarded-For says; the handler (and so the KDF) does not run.
func TestLoginLimitPerAddress(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	for i := range 5 {
		r := e.do(c, "POST", "/login", url.Values{"username": {"user" + strconv.Itoa(i)}, "password": {"wrong password " + strconv.Itoa(i)}},
			http.Header{"X-Forwarded-For": {"198.51.100." + strconv.Itoa(i)}})
		expect(t, "wrong login", r, 401, "")
	}
	r := e.do(c, "POST", "/login", url.Values{"username": {"user9"}, "password": {"wrong password"}},
		http.Header{"X-Forwarded-For": {"198.51.100.9"}})
	expect(t, "sixth login", r, 429, "")
	if !strings.Contains(r.body, "Too many attempts") {
		t.Fatalf("429 page says:\n%s", r.body)
	}
	if n := strings.Count(e.logs.String(), "webapp.login.failed"); n != 5 {
		t.Errorf("the login handler ran %d times, want 5", n)
	}
	if !strings.Contains(e.logs.String(), "excess_rate_limit_exceeded") {
		t.Errorf("no excess_rate_limit_exceeded event in the log")
	}
	e.clock.Advance(3 * time.Minute) // one attempt refills every 3 minutes
	expect(t, "login after 3 minutes", e.post(c, "/login", url.Values{"username": {"user9"}, "password": {"wrong password"}}), 401, "")
}

// TestLockoutSparesTheOwnersDevice: ten wrong passwords lock the account
// for every new browser (answered exactly as a wrong password), while the
// browser the owner logged in from before still gets in.
func TestLockoutSparesTheOwnersDevice(t *testing.T) {
	e := newEnv(t, true)
	owner := e.client()
	e.signup(owner, "ada")
	expect(t, "logout", e.post(owner, "/logout", nil), 303, "/")
	e.login(owner, "ada") // sets the device cookie
	expect(t, "logout", e.post(owner, "/logout", nil), 303, "/")

	attacker := e.client()
	wrong := url.Values{"username": {"ada"}, "password": {"not the password at all"}}
	var first result
	for i := range 10 {
		if i > 0 && i%4 == 0 {
			e.clock.Advance(15 * time.Minute) // past the per-address limit (5 per 15 min)
		}
		r := e.post(attacker, "/login", wrong)
		expect(t, "wrong password", r, 401, "")
		if i == 0 {
			first = r
		}
	}
	if !strings.Contains(e.logs.String(), "msg=authn_login_lock ") {
		t.Fatalf("no authn_login_lock event after 10 failures")
	}
	e.clock.Advance(15 * time.Minute)
	// Locked: the right password from a new browser gets the wrong-password page.
	locked := e.post(e.client(), "/login", url.Values{"username": {"ada"}, "password": {password}})
	expect(t, "right password on a locked account", locked, 401, "")
	if locked.body != first.body {
		t.Errorf("a locked account's page differs from a wrong password's")
	}
	// An unknown name locks the same way, so the lock reveals nothing.
	unknown := e.post(e.client(), "/login", url.Values{"username": {"nobody"}, "password": {password}})
	// The pages differ only in the name typed, which the form shows again.
	if unknown.code != locked.code || strings.Replace(unknown.body, `value="nobody"`, `value="ada"`, 1) != locked.body {
		t.Errorf("unknown user: %d, locked account: %d, or their pages differ", unknown.code, locked.code)
	}
	// The owner's browser has its own counter.
	e.login(owner, "ada")
	if n := strings.Count(e.logs.String(), "authn_login_locked"); n < 1 {
		t.Errorf("no authn_login_locked event")
	}
	if strings.Contains(e.logs.String(), password) || strings.Contains(e.logs.String(), "not the password at all") {
		t.Errorf("a password reached the log")
	}
	// The lock ends on its own after an hour.
	e.clock.Advance(time.Hour)
	e.login(e.client(), "ada")
}
