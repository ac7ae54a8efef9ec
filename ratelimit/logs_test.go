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
	if app.lockout, err = ratelimit.NewLockout(store, ratelimit.LockoutOptions{Logger: logger, Now: c.Now,
		Policy: ratelimit.LockoutPolicy{MaxFailures: 5, AccountMaxFailures: 10}}); err != nil {
		t.Fatal(err)
	}
	t0 := c.Now()
	h := app.handler()
	ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
	codes := []int{}
	// 10 failures from two addresses: the 5th of each locks its address,
	// the 10th the account too.
	for i := range 10 {
		codes = append(codes, serve(h, loginRequest(ips[i/5]+":1000", "alice", password)).Code)
	}
	codes = append(codes, serve(h, loginRequest(ips[0]+":1000", "alice", password)).Code) // over the address's limit
	codes = append(codes, serve(h, loginRequest(ips[2]+":1000", "alice", password)).Code) // locked
	if want := "[401 401 401 401 401 401 401 401 401 401 429 401]"; fmt.Sprint(codes) != want {
		t.Fatalf("answers %v, want %s", codes, want)
	}

	if strings.Contains(logs.String(), password) || strings.Contains(logs.String(), "Passw0rd") || strings.Contains(logs.String(), "alice") {
		t.Errorf("the password or the name is in the log:\n%s", logs)
	}
	alice := app.lockout.LogHash("alice")

	ex := logs.Named("excess_rate_limit_exceeded")
	if len(ex) != 1 || ex[0]["key_hash"] != app.perIP.LogHash("192.0.2.1") || ex[0]["policy"] != "login" || ex[0]["limit"] != 5.0 || ex[0]["level"] != "WARN" {
		t.Errorf("excess_rate_limit_exceeded: %v", ex)
	}
	fails := logs.Named("authn_login_fail")
	if len(fails) != 10 {
		t.Fatalf("%d authn_login_fail events, want 10", len(fails))
	}
	for i, e := range fails {
		if e["user_hash"] != alice || e["user"] != nil || e["ip"] != ips[i/5] || e["max_failures"] != 5.0 || e["account_max_failures"] != 10.0 {
			t.Errorf("authn_login_fail %d: %v", i+1, e)
		}
		if e["failures"] != float64(i%5+1) || e["account_failures"] != float64(i+1) {
			t.Errorf("authn_login_fail %d: failures=%v, account_failures=%v, want %d, %d", i+1, e["failures"], e["account_failures"], i%5+1, i+1)
		}
	}
	// Every lock is logged when it happens: two addresses', the account's.
	for _, name := range []string{"authn_login_fail_max", "authn_login_lock"} {
		ev := logs.Named(name)
		want := []struct{ ip, scope string }{{ips[0], "source"}, {ips[1], "source"}, {ips[1], "account"}}
		if len(ev) != len(want) {
			t.Errorf("%d %s events, want %d: %v", len(ev), name, len(want), logs.Events())
			continue
		}
		for i, e := range ev {
			if e["user_hash"] != alice || e["ip"] != want[i].ip || e["scope"] != want[i].scope || e["level"] != "WARN" {
				t.Errorf("%s %d: %v", name, i, e)
			}
			if name == "authn_login_lock" {
				until, err := time.Parse(time.RFC3339Nano, e["locked_until"].(string))
				if e["locks"] != 1.0 || err != nil || !until.Equal(t0.Add(time.Hour)) || e["lock_for"] != float64(time.Hour) {
					t.Errorf("%s %d: %v", name, i, e)
				}
			}
		}
	}
	if ev := logs.Named("authn_login_locked"); len(ev) != 1 || ev[0]["ip"] != ips[2] || ev[0]["scope"] != "account" || ev[0]["user_hash"] != alice {
		t.Errorf("authn_login_locked: %v", ev)
	}

	// A known device's attempts say so.
	rec := serve(http.HandlerFunc(app.login), loginRequest("192.0.2.4:1", "bob", "tr0ub4dor%263"))
	dev := rec.Result().Cookies()
	if ev := logs.Named("authn_login_success"); len(ev) != 1 || ev[0]["user_hash"] != app.lockout.LogHash("bob") || ev[0]["ip"] != "192.0.2.4" || ev[0]["level"] != "INFO" {
		t.Errorf("authn_login_success: %v", ev)
	}
	r := loginRequest("192.0.2.4:1", "bob", "wrong")
	for _, ck := range dev {
		r.AddCookie(ck)
	}
	serve(http.HandlerFunc(app.login), r)
	last := logs.Named("authn_login_fail")
	if e := last[len(last)-1]; e["user_hash"] != app.lockout.LogHash("bob") || e["known_device"] != true {
		t.Errorf("a known device's failure: %v", e)
	}
}
