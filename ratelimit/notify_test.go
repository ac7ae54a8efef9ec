package ratelimit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

// mockNotifier records every event it is given.
type mockNotifier struct {
	mu     sync.Mutex
	events []keyhold.Event
	panics bool
}

func (n *mockNotifier) Notify(_ context.Context, e keyhold.Event) {
	n.mu.Lock()
	n.events = append(n.events, e)
	n.mu.Unlock()
	if n.panics {
		panic("mail server down")
	}
}

func (n *mockNotifier) take() []keyhold.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.events
	n.events = nil
	return e
}

// TestNotifierX06Lockout is X-06 for lockouts: the attempt whose failure
// locks a counter sends keyhold.AccountLocked exactly once (scope and end
// of the lock, the client's address); earlier failures, refused attempts
// while locked, and a locking attempt whose credential turns out right
// send nothing; a panicking Notifier is logged as sys_notify_fail and the
// answer stands.
func TestNotifierX06Lockout(t *testing.T) {
	c := newClock()
	n := &mockNotifier{}
	log, logs := captureLogs()
	l, err := ratelimit.NewLockout(memstore.New(), ratelimit.LockoutOptions{
		Policy: ratelimit.LockoutPolicy{MaxFailures: 3, LockFor: time.Hour}, Logger: log, Now: c.Now, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ip := netip.MustParseAddr("192.0.2.7")
	src := ratelimit.Source{IP: ip}
	check := func(account string, verr error) error {
		return l.Check(ctx, account, src, (&countingCredential{verr: verr}).cred())
	}
	for i := range 2 {
		if err := check("alice", kdf.ErrMismatch); !errors.Is(err, ratelimit.ErrRejected) {
			t.Fatal(err)
		}
		if got := n.take(); len(got) != 0 {
			t.Fatalf("failure %d: events %+v, want none", i+1, got)
		}
	}
	if err := check("alice", kdf.ErrMismatch); !errors.Is(err, ratelimit.ErrRejected) {
		t.Fatal(err)
	}
	got := n.take()
	if len(got) != 1 || got[0].Kind != keyhold.AccountLocked || got[0].UserID != "alice" || got[0].Detail != ratelimit.ScopeSource ||
		got[0].IP != ip || !got[0].Until.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("the locking failure: events %+v, want one AccountLocked (source, until +1h)", got)
	}
	for range 3 { // refused while locked: no new lock, no notice
		if err := check("alice", nil); !errors.Is(err, ratelimit.ErrLocked) {
			t.Fatalf("locked: %v", err)
		}
	}
	if got := n.take(); len(got) != 0 {
		t.Fatalf("refused attempts: events %+v, want none", got)
	}

	// The attempt that would lock, but whose password is right: no notice.
	for range 2 {
		check("bob", kdf.ErrMismatch)
	}
	if err := check("bob", nil); err != nil {
		t.Fatal(err)
	}
	if got := n.take(); len(got) != 0 {
		t.Fatalf("a right password on the locking attempt: events %+v, want none", got)
	}

	// A panicking Notifier: logged, the answer stands.
	n.panics = true
	for range 3 {
		if err := check("carol", kdf.ErrMismatch); !errors.Is(err, ratelimit.ErrRejected) {
			t.Fatalf("with a panicking Notifier: %v", err)
		}
	}
	if got := n.take(); len(got) != 1 {
		t.Fatalf("carol: %d events, want 1", len(got))
	}
	fails := logs.Named("sys_notify_fail")
	if len(fails) != 1 || fails[0]["panic"] != "string" || fails[0]["event"] != string(keyhold.AccountLocked) {
		t.Fatalf("sys_notify_fail logs: %+v", fails)
	}
}

// TestNotifierX06NewDevice is X-06's new-device login: RememberLogin
// sends keyhold.NewDeviceLogin exactly once for a login from a browser
// without the account's device cookie, and none for a recognised device.
func TestNotifierX06NewDevice(t *testing.T) {
	c := newClock()
	n := &mockNotifier{}
	d, err := ratelimit.NewDevices(deviceKey(1), ratelimit.DeviceOptions{Now: c.Now, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.51.100.9")
	login := func(account string, cookies ...*http.Cookie) (bool, []*http.Cookie) {
		t.Helper()
		r := httptest.NewRequest("POST", "https://app.example/login", nil)
		for _, ck := range cookies {
			r.AddCookie(ck)
		}
		w := httptest.NewRecorder()
		isNew, err := d.RememberLogin(w, r, account, ip)
		if err != nil {
			t.Fatal(err)
		}
		return isNew, w.Result().Cookies()
	}
	isNew, cookies := login("alice")
	got := n.take()
	if !isNew || len(cookies) != 1 || len(got) != 1 || got[0].Kind != keyhold.NewDeviceLogin || got[0].UserID != "alice" || got[0].IP != ip {
		t.Fatalf("first login: new=%v, %d cookies, events %+v; want new, 1 cookie, one NewDeviceLogin", isNew, len(cookies), got)
	}
	if isNew, _ = login("alice", cookies[0]); isNew {
		t.Fatal("the same browser counted as a new device")
	}
	if got := n.take(); len(got) != 0 {
		t.Fatalf("recognised device: events %+v, want none", got)
	}
	if isNew, _ = login("bob", cookies[0]); !isNew {
		t.Fatal("alice's device cookie recognised for bob")
	}
	if got := n.take(); len(got) != 1 || got[0].UserID != "bob" {
		t.Fatalf("bob's first login: events %+v", got)
	}
	if _, err := d.RememberLogin(httptest.NewRecorder(), nil, "alice", ip); !errors.Is(err, ratelimit.ErrInvalidInput) {
		t.Fatalf("nil request: %v", err)
	}
}
