package ratelimit_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

// RL-10: when the store fails, limiters and lockouts fail closed: Allow
// refuses with ErrUnavailable, the middleware answers 503 without calling
// the handler, Begin returns ErrUnavailable and no attempt, so a login
// is refused even with the right password. With FailOpen they allow and
// still report the error. Nothing of the key is in the errors.
func TestStoreFailure(t *testing.T) {
	c := newClock()
	store := &flakyStore{Store: memstore.New()}
	logger, logs := captureLogs()
	closed, err := ratelimit.New(store, ratelimit.LoginPerIP(), ratelimit.Options{Logger: logger, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	open, err := ratelimit.New(store, ratelimit.LoginPerIP(), ratelimit.Options{Logger: logger, Now: c.Now, FailOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	lockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Logger: logger, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	openLockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Logger: logger, Now: c.Now, FailOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	store.fail.Store(true)

	const key = "192.0.2.77"
	checkErr := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ratelimit.ErrUnavailable) || !errors.Is(err, errDown) {
			t.Errorf("%s: %v, want ErrUnavailable wrapping the store's error", what, err)
		} else if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "alice") {
			t.Errorf("%s: the error names the key: %v", what, err)
		}
	}
	d, err := closed.Allow(ctx, key)
	checkErr("Allow", err)
	if d.Allowed || !errors.Is(d.Err, ratelimit.ErrUnavailable) || d.Remaining != 0 || d.RetryAfter != 0 {
		t.Errorf("fail-closed decision: %+v", d)
	}
	d, err = open.Allow(ctx, key)
	checkErr("Allow, FailOpen", err)
	if !d.Allowed || !errors.Is(d.Err, ratelimit.ErrUnavailable) {
		t.Errorf("fail-open decision: %+v", d)
	}
	checkErr("Limiter.Reset", closed.Reset(ctx, key))

	att, err := lockout.Begin(ctx, "alice", ratelimit.Source{})
	checkErr("Begin", err)
	if att != nil {
		t.Error("Begin returned an attempt with its error")
	}
	att, err = openLockout.Begin(ctx, "alice", ratelimit.Source{})
	checkErr("Begin, FailOpen", err)
	if att == nil {
		t.Fatal("fail-open Begin returned no attempt")
	}
	att.Failed(ctx)
	checkErr("Succeeded", att.Succeeded(ctx))
	checkErr("Lockout.Reset", lockout.Reset(ctx, "alice"))

	// Over HTTP: 503 from the middleware, and the login refused.
	app := newLoginApp(t, store, c, resolver(t))
	app.perIP, app.lockout = closed, lockout
	rec := serve(app.handler(), loginRequest(key+":1", "alice", "correct horse battery staple"))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || app.reached.Load() != 0 {
		t.Errorf("middleware on a failed store: %d, Retry-After %q, handler reached %d times", rec.Code, rec.Header().Get("Retry-After"), app.reached.Load())
	}
	for _, k := range rateLimitHeaders[:5] {
		if v := rec.Header().Values(k); v != nil {
			t.Errorf("503 carries %s: %q", k, v)
		}
	}
	rec = serve(http.HandlerFunc(app.login), loginRequest(key+":1", "alice", "correct horse battery staple"))
	if rec.Code != http.StatusUnauthorized || app.verified.Load() != 0 {
		t.Errorf("login with the right password on a failed store: %d, %d passwords checked; want refused unchecked", rec.Code, app.verified.Load())
	}
	app.perIP = open
	if rec := serve(app.handler(), loginRequest(key+":1", "bob", "tr0ub4dor%263")); app.reached.Load() != 2 || rec.Code != http.StatusUnauthorized {
		t.Errorf("fail-open middleware: %d, reached %d", rec.Code, app.reached.Load())
	}
	if n := len(logs.Named("sys_store_fail")); n < 8 {
		t.Errorf("%d sys_store_fail events logged", n)
	}
	ops := map[any]bool{}
	for _, e := range logs.Named("sys_store_fail") {
		ops[e["op"]] = true
		if e["op"] == "begin_attempt" && (e["user_hash"] == nil || e["level"] != "ERROR") {
			t.Errorf("sys_store_fail of a lockout: %v", e)
		}
	}
	if !ops["take_rate"] || !ops["begin_attempt"] {
		t.Errorf("sys_store_fail ops %v, want take_rate and begin_attempt", ops)
	}
	if strings.Contains(logs.String(), "correct horse") {
		t.Error("the password is in the log")
	}

	// The store is back: everything works again.
	store.fail.Store(false)
	if d, err := closed.Allow(ctx, key); err != nil || !d.Allowed {
		t.Errorf("after recovery: %+v, %v", d, err)
	}
	if _, err := lockout.Begin(ctx, "alice", ratelimit.Source{}); err != nil {
		t.Errorf("Begin after recovery: %v", err)
	}
}
