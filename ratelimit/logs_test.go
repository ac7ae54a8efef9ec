package ratelimit_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

// RL-11: refusals and locks are logged with the event names of the OWASP
// logging vocabulary, the submitted name, the client address and counts,
// and never the submitted password.
func TestLogEvents(t *testing.T) {
	const password = "S3cret-Passw0rd-do-not-log"
	c := newClock()
	logger, logs := captureLogs()
	store := memstore.New()
	clients := resolver(t)
	app := newLoginApp(t, store, c, clients)
	var err error
	if app.perIP, err = ratelimit.New(store, ratelimit.LoginPerIP(), ratelimit.Options{Logger: logger, Now: c.Now}); err != nil {
		t.Fatal(err)
	}
	if app.lockout, err = ratelimit.NewLockout(store, ratelimit.LockoutOptions{Logger: logger, Now: c.Now}); err != nil {
		t.Fatal(err)
	}
	h := app.handler()
	ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
	codes := []int{}
	for i := range 10 { // 10 failures from two addresses: the 10th locks
		codes = append(codes, serve(h, loginRequest(ips[i/5]+":1000", "alice", password)).Code)
	}
	codes = append(codes, serve(h, loginRequest(ips[0]+":1000", "alice", password)).Code) // over the address's limit
	codes = append(codes, serve(h, loginRequest(ips[2]+":1000", "alice", password)).Code) // locked
	if want := "[401 401 401 401 401 401 401 401 401 401 429 401]"; fmt.Sprint(codes) != want {
		t.Fatalf("answers %v, want %s", codes, want)
	}

	if strings.Contains(logs.String(), password) || strings.Contains(logs.String(), "Passw0rd") {
		t.Errorf("the password is in the log:\n%s", logs)
	}

	ex := logs.Named("excess_rate_limit_exceeded")
	if len(ex) != 1 || ex[0]["key"] != "192.0.2.1" || ex[0]["policy"] != "login" || ex[0]["limit"] != 5.0 || ex[0]["level"] != "WARN" {
		t.Errorf("excess_rate_limit_exceeded: %v", ex)
	}
	fails := logs.Named("authn_login_fail")
	if len(fails) != 10 {
		t.Fatalf("%d authn_login_fail events, want 10", len(fails))
	}
	for i, e := range fails {
		if e["user"] != "alice" || e["ip"] != ips[i/5] || e["max_failures"] != 10.0 {
			t.Errorf("authn_login_fail %d: %v", i+1, e)
		}
		if e["failures"] != float64(i+1) {
			t.Errorf("authn_login_fail %d: failures=%v, want %d", i+1, e["failures"], i+1)
		}
	}
	for _, name := range []string{"authn_login_fail_max", "authn_login_lock", "authn_login_locked"} {
		ev := logs.Named(name)
		if len(ev) != 1 {
			t.Errorf("%d %s events, want 1: %v", len(ev), name, logs.Events())
			continue
		}
		e := ev[0]
		wantIP := ips[1]
		if name == "authn_login_locked" {
			wantIP = ips[2]
		}
		if e["user"] != "alice" || e["ip"] != wantIP || e["level"] != "WARN" {
			t.Errorf("%s: %v", name, e)
		}
		switch name {
		case "authn_login_fail_max":
			if e["max_failures"] != 10.0 {
				t.Errorf("%s: %v", name, e)
			}
		case "authn_login_lock", "authn_login_locked":
			until, err := time.Parse(time.RFC3339Nano, e["locked_until"].(string))
			if e["locks"] != 1.0 || err != nil || !until.Equal(t0.Add(time.Hour)) {
				t.Errorf("%s: %v", name, e)
			}
		}
	}
	if e := logs.Named("authn_login_lock"); len(e) == 1 && e[0]["lock_for"] != float64(time.Hour) {
		t.Errorf("authn_login_lock lock_for %v, want 1h", e[0]["lock_for"])
	}

	// A known device's attempts say so.
	rec := serve(http.HandlerFunc(app.login), loginRequest("192.0.2.4:1", "bob", "tr0ub4dor%263"))
	dev := rec.Result().Cookies()
	r := loginRequest("192.0.2.4:1", "bob", "wrong")
	for _, ck := range dev {
		r.AddCookie(ck)
	}
	serve(http.HandlerFunc(app.login), r)
	last := logs.Named("authn_login_fail")
	if e := last[len(last)-1]; e["user"] != "bob" || e["known_device"] != true {
		t.Errorf("a known device's failure: %v", e)
	}
}
