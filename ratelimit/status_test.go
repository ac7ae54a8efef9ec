package ratelimit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// status reads the lockout's status of account from src, reading it
// several times: a read that changed a counter would show in the next.
func status(t *testing.T, l *ratelimit.Lockout, account string, src ratelimit.Source) ratelimit.LockoutStatus {
	t.Helper()
	s, err := l.Status(t.Context(), account, src)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for range 3 {
		again, err := l.Status(t.Context(), account, src)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		if again != s {
			t.Fatalf("Status changed between two reads:\n%+v\n%+v", s, again)
		}
	}
	return s
}

func wantCounter(t *testing.T, what string, got ratelimit.CounterStatus, failures, maxFailures, locks int, lockedUntil time.Time) {
	t.Helper()
	if got.Failures != failures || got.MaxFailures != maxFailures || got.Locks != locks || !got.LockedUntil.Equal(lockedUntil) || got.Locked() != !lockedUntil.IsZero() {
		t.Fatalf("%s: %+v; want %d failures of %d, %d locks, locked until %v", what, got, failures, maxFailures, locks, lockedUntil)
	}
}

// Status reports each counter an attempt from a source counts on, with
// its failures, locks and the end of its lock, on every store; reading
// it changes nothing (the failure after the reads locks exactly where it
// would have, and a lock read many times still refuses).
func TestLockoutStatus(t *testing.T) {
	for _, b := range rateBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)(t)
			c := testkit.NewClock(time.Now().Truncate(time.Second)) // the present: Redis expires keys by its own clock
			policy := ratelimit.LockoutPolicy{MaxFailures: 3, AccountMaxFailures: 6, LockFor: time.Hour, MaxLockFor: 4 * time.Hour, ForgetAfter: 24 * time.Hour}
			l := newLockout(t, st, policy, c)
			a := ratelimit.Source{IP: netip.MustParseAddr("192.0.2.1")}
			bb := ratelimit.Source{IP: netip.MustParseAddr("198.51.100.7")}
			name := "alice-" + b.name

			s := status(t, l, name, a)
			wantCounter(t, "fresh account", s.Account, 0, 6, 0, time.Time{})
			wantCounter(t, "fresh source", s.Source, 0, 3, 0, time.Time{})
			if s.Account.Forget != (time.Time{}) || s.Device != (ratelimit.CounterStatus{}) {
				t.Fatalf("fresh account: %+v", s)
			}

			// Two failures from a: its counter and the account's have them;
			// b's counter has none.
			for range 2 {
				fail(t, l, name, a)
			}
			s = status(t, l, name, a)
			wantCounter(t, "2 failures: account", s.Account, 2, 6, 0, time.Time{})
			wantCounter(t, "2 failures: source a", s.Source, 2, 3, 0, time.Time{})
			if want := c.Now().Add(24 * time.Hour); !s.Source.Forget.Equal(want) {
				t.Fatalf("forgotten at %v, want %v", s.Source.Forget, want)
			}
			wantCounter(t, "2 failures: source b", status(t, l, name, bb).Source, 0, 3, 0, time.Time{})

			// The third failure locks a, for an hour: the reads above gave
			// nothing back.
			t1 := c.Now()
			fail(t, l, name, a)
			s = status(t, l, name, a)
			wantCounter(t, "a locked: source a", s.Source, 3, 3, 1, t1.Add(time.Hour))
			wantCounter(t, "a locked: account", s.Account, 3, 6, 0, time.Time{})
			if fail(t, l, name, a) {
				t.Fatal("the locked source was admitted after Status read it")
			}

			// Three from b lock b and the account (6 of 6).
			c.Advance(time.Minute)
			t2 := c.Now()
			for range 3 {
				fail(t, l, name, bb)
			}
			s = status(t, l, name, bb)
			wantCounter(t, "account locked: account", s.Account, 6, 6, 1, t2.Add(time.Hour))
			wantCounter(t, "account locked: source b", s.Source, 3, 3, 1, t2.Add(time.Hour))
			if want := t2.Add(25 * time.Hour); !s.Account.Forget.Equal(want) {
				t.Fatalf("account forgotten at %v, want %v", s.Account.Forget, want)
			}
			// A third address is refused by the account's lock, which the
			// reads did not lift.
			third := ratelimit.Source{IP: netip.MustParseAddr("203.0.113.9")}
			if until := lockedUntil(t, l, name, third); !until.Equal(t2.Add(time.Hour)) {
				t.Fatalf("third address: locked until %v, want %v", until, t2.Add(time.Hour))
			}

			// A recognised device has its own counter, untouched by the
			// others, and counts on no other.
			dev := recognisedDevice(t, c, name)
			s = status(t, l, name, ratelimit.Source{IP: a.IP, Device: dev})
			wantCounter(t, "device, before", s.Device, 0, 3, 0, time.Time{})
			fail(t, l, name, ratelimit.Source{IP: a.IP, Device: dev})
			s = status(t, l, name, ratelimit.Source{IP: a.IP, Device: dev})
			wantCounter(t, "device, one failure", s.Device, 1, 3, 0, time.Time{})
			wantCounter(t, "device, one failure: account", s.Account, 6, 6, 1, t2.Add(time.Hour))

			// After the lock: not locked, the failures still counted until
			// forgotten.
			c.Set(t2.Add(time.Hour))
			s = status(t, l, name, bb)
			wantCounter(t, "lock over: account", s.Account, 6, 6, 1, time.Time{})
			c.Set(t2.Add(25 * time.Hour))
			s = status(t, l, name, bb)
			wantCounter(t, "forgotten: account", s.Account, 0, 6, 0, time.Time{})
			wantCounter(t, "forgotten: source b", s.Source, 0, 3, 0, time.Time{})
		})
	}
}

// recognisedDevice returns a device that Devices recognises for account.
func recognisedDevice(t *testing.T, c *clock, account string) ratelimit.Device {
	t.Helper()
	d, err := ratelimit.NewDevices(deviceKey(1), ratelimit.DeviceOptions{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := d.Remember(rec, account); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	for _, ck := range rec.Result().Cookies() {
		r.AddCookie(ck)
	}
	dev := d.Recognize(r, account)
	if !dev.Known() {
		t.Fatal("the device was not recognised")
	}
	return dev
}

// refundSpy is a memstore that records the refunds it is asked for and
// fails while down is set.
type refundSpy struct {
	*memstore.Store
	down  bool
	locks []int
}

func (s *refundSpy) RefundAttempt(ctx context.Context, key []byte, req storage.LockoutRequest, lock int) (bool, storage.LockoutState, error) {
	if s.down {
		return false, storage.LockoutState{}, errDown
	}
	s.locks = append(s.locks, lock)
	return s.Store.RefundAttempt(ctx, key, req, lock)
}

// Status refuses a name out of bounds, and a nil Lockout; a store failure
// is ErrUnavailable; it reads two counters, three with a device, never
// more, each with the lock number no counter reaches.
func TestLockoutStatusErrors(t *testing.T) {
	c := newClock()
	spy := &refundSpy{Store: memstore.New()}
	l := newLockout(t, spy, ratelimit.LockoutPolicy{}, c)
	for _, name := range []string{"", string(make([]byte, ratelimit.MaxKeyLen+1))} {
		if _, err := l.Status(t.Context(), name, ratelimit.Source{}); !errors.Is(err, ratelimit.ErrInvalidInput) {
			t.Errorf("Status(%d bytes) = %v, want ErrInvalidInput", len(name), err)
		}
	}
	var nilLockout *ratelimit.Lockout
	if _, err := nilLockout.Status(t.Context(), "alice", ratelimit.Source{}); !errors.Is(err, ratelimit.ErrInvalidInput) {
		t.Errorf("nil Lockout: %v", err)
	}
	if _, err := l.Status(t.Context(), "alice", ratelimit.Source{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Status(t.Context(), "alice", ratelimit.Source{Device: recognisedDevice(t, c, "alice")}); err != nil {
		t.Fatal(err)
	}
	if len(spy.locks) != 5 {
		t.Fatalf("%d counters read, want 2 then 3", len(spy.locks))
	}
	for _, lock := range spy.locks {
		if lock != 1<<31-1 {
			t.Fatalf("read with lock %d", lock)
		}
	}
	spy.down = true
	if _, err := l.Status(t.Context(), "alice", ratelimit.Source{}); !errors.Is(err, ratelimit.ErrUnavailable) || !errors.Is(err, errDown) {
		t.Fatalf("store down: %v, want ErrUnavailable wrapping the store's error", err)
	}
}
