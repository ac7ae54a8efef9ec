package ratelimit_test

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// fail makes one failed attempt on account and reports whether it was
// admitted; any error but ErrLocked fails the test.
func fail(t *testing.T, l *ratelimit.Lockout, account string, src ratelimit.Source) bool {
	t.Helper()
	att, err := l.Begin(t.Context(), account, src)
	if err != nil {
		if !errors.Is(err, ratelimit.ErrLocked) || att != nil {
			t.Fatalf("Begin(%q) = %v, %v; want an attempt or ErrLocked", account, att, err)
		}
		return false
	}
	att.Failed(t.Context())
	return true
}

// lockedUntil returns when Begin's refusal says the lock ends, or the
// zero time if Begin admitted the attempt (which is then counted as a
// failure).
func lockedUntil(t *testing.T, l *ratelimit.Lockout, account string, src ratelimit.Source) time.Time {
	t.Helper()
	att, err := l.Begin(t.Context(), account, src)
	if err == nil {
		att.Failed(t.Context())
		return time.Time{}
	}
	var le *ratelimit.LockedError
	if !errors.As(err, &le) || !errors.Is(err, ratelimit.ErrLocked) {
		t.Fatalf("Begin: %v; want a *LockedError wrapping ErrLocked", err)
	}
	if le.Error() != "ratelimit: account locked" || strings.Contains(err.Error(), account) {
		t.Errorf("LockedError text %q", err)
	}
	return le.Until
}

// RL-07: of 200 concurrent attempts on an account with MaxFailures 10,
// exactly 10 are admitted (reach the verifier); the rest get ErrLocked.
//
// From 200 addresses, the account's counter (AccountMaxFailures 25) admits
// 25; from one address, its counter (MaxFailures 10) admits 10.
func TestConcurrentBeginExact(t *testing.T) {
	for _, tc := range []struct {
		addresses, want int
	}{{200, 25}, {1, 10}} {
		concurrentBegin(t, tc.addresses, tc.want)
	}
}

func concurrentBegin(t *testing.T, addresses, want int) {
	c := newClock()
	l := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{MaxFailures: 10, AccountMaxFailures: 25}, c)
	var verified, locked atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 200 {
		wg.Go(func() {
			<-start
			ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i % addresses)})
			att, err := l.Begin(t.Context(), "alice", ratelimit.Source{IP: ip})
			switch {
			case err == nil:
				verified.Add(1) // the verifier would run here
				att.Failed(t.Context())
			case errors.Is(err, ratelimit.ErrLocked) && att == nil:
				locked.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if verified.Load() != int64(want) || locked.Load() != int64(200-want) {
		t.Fatalf("from %d addresses, %d attempts reached the verifier and %d were locked out, want %d and %d", addresses, verified.Load(), locked.Load(), want, 200-want)
	}
}

// RL-01: failures on one account count together whatever the address
// and whichever factor (password, TOTP, recovery code: call sites of the
// same Lockout) they come from, and trip the account's lock at
// AccountMaxFailures (100, NIST's cap) when no address reaches its own
// MaxFailures.
func TestFailuresCountAcrossAddressesAndFactors(t *testing.T) {
	c := newClock()
	l := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{}, c)
	if p := l.Policy(); p != ratelimit.DefaultLockoutPolicy() || p.MaxFailures != 10 {
		t.Fatalf("Policy() = %+v, want the default", p)
	}
	password := func(ip netip.Addr) bool { return fail(t, l, "alice", ratelimit.Source{IP: ip}) }
	totp := func(ip netip.Addr) bool { return fail(t, l, "alice", ratelimit.Source{IP: ip}) }
	recovery := func(ip netip.Addr) bool { return fail(t, l, "alice", ratelimit.Source{IP: ip}) }
	factors := []func(netip.Addr) bool{password, totp, recovery}

	admitted := 0
	for i := range 150 { // 50 addresses × 3 factors
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 50)})
		if factors[i%3](ip) {
			admitted++
		}
		c.Advance(time.Second)
	}
	if admitted != 100 {
		t.Fatalf("%d attempts admitted over 50 addresses and 3 factors, want AccountMaxFailures = 100", admitted)
	}
	if !fail(t, l, "bob", ratelimit.Source{}) {
		t.Error("another account is locked too")
	}
}

// RL-02: locks grow 1h, 2h, 4h, 8h, 16h, then stay at the 24h cap; each
// lock clears on its own after exactly its duration (refused 1 ms before,
// admitted at).
func TestLockGrowsAndExpires(t *testing.T) {
	lockSequence(t, memstore.New(), newClock())
}

// lockSequence checks the default policy's locks on store, from c's time.
func lockSequence(t *testing.T, store storage.LockoutStore, c *clock) {
	l := newLockout(t, store, ratelimit.LockoutPolicy{}, c)
	h := time.Hour
	var prev time.Duration
	for i, want := range []time.Duration{h, 2 * h, 4 * h, 8 * h, 16 * h, 24 * h, 24 * h} {
		for j := range 10 {
			if !fail(t, l, "alice", ratelimit.Source{}) {
				t.Fatalf("lock %d: failure %d refused", i+1, j+1)
			}
		}
		until := lockedUntil(t, l, "alice", ratelimit.Source{})
		if got := until.Sub(c.Now()); got != want {
			t.Fatalf("lock %d lasts %v, want %v", i+1, got, want)
		}
		if got := until.Sub(c.Now()); got < prev {
			t.Fatalf("lock %d (%v) shorter than the one before (%v)", i+1, got, prev)
		}
		prev = until.Sub(c.Now())
		c.Set(until.Add(-time.Millisecond))
		if u := lockedUntil(t, l, "alice", ratelimit.Source{}); !u.Equal(until) {
			t.Fatalf("lock %d: 1 ms before its end: locked until %v, want refused until %v", i+1, u, until)
		}
		// At its end the lock is over: the next round's first failure
		// is admitted at exactly until.
		c.Set(until)
	}
}

// ForgetAfter of quiet forgets failures (after the last attempt) and the
// lock's growth (after the end of the last lock), not a millisecond
// before.
func TestForgetAfter(t *testing.T) {
	c := newClock()
	l := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{}, c)
	day := 24 * time.Hour

	// Failures: 9, then 24h−1ms of quiet: the 10th still locks.
	for range 9 {
		fail(t, l, "kept", ratelimit.Source{})
	}
	for range 9 {
		fail(t, l, "forgotten", ratelimit.Source{})
	}
	last := c.Now()
	c.Set(last.Add(day - time.Millisecond))
	if !fail(t, l, "kept", ratelimit.Source{}) || lockedUntil(t, l, "kept", ratelimit.Source{}).IsZero() {
		t.Error("the 10th failure 1 ms before ForgetAfter did not lock")
	}
	// 24h of quiet: 9 failures, then a 10th, are admitted again.
	c.Set(last.Add(day))
	for i := range 10 {
		if !fail(t, l, "forgotten", ratelimit.Source{}) {
			t.Fatalf("failure %d after ForgetAfter refused: the old failures were not forgotten", i+1)
		}
	}

	// Growth: a lock, then ForgetAfter after its end: the next lock is
	// 1h again; 1 ms earlier it would have been 2h.
	for _, tc := range []struct {
		account string
		quiet   time.Duration
		want    time.Duration
	}{
		{"grown", day - time.Millisecond, 2 * time.Hour},
		{"reset", day, time.Hour},
	} {
		c.Set(t0)
		for range 10 {
			fail(t, l, tc.account, ratelimit.Source{})
		}
		until := lockedUntil(t, l, tc.account, ratelimit.Source{})
		c.Set(until.Add(tc.quiet))
		for range 10 {
			if !fail(t, l, tc.account, ratelimit.Source{}) {
				t.Fatalf("%s: failure refused after the lock ended", tc.account)
			}
		}
		if got := lockedUntil(t, l, tc.account, ratelimit.Source{}).Sub(c.Now()); got != tc.want {
			t.Errorf("%s: second lock after %v of quiet lasts %v, want %v", tc.account, tc.quiet, got, tc.want)
		}
	}
}

// RL-03: a success resets the count: after 4 failures and a success, it
// takes 10 more failures to lock, and the next failure is logged as the
// first.
func TestSuccessResetsCount(t *testing.T) {
	c := newClock()
	logger, logs := captureLogs()
	l, err := ratelimit.NewLockout(memstore.New(), ratelimit.LockoutOptions{Logger: logger, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for range 4 {
		fail(t, l, "alice", ratelimit.Source{})
	}
	att, err := l.Begin(ctx, "alice", ratelimit.Source{})
	if err != nil {
		t.Fatal(err)
	}
	if err := att.Succeeded(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if !fail(t, l, "alice", ratelimit.Source{}) {
			t.Fatalf("failure %d after the success refused: the count was not reset", i+1)
		}
	}
	if lockedUntil(t, l, "alice", ratelimit.Source{}).IsZero() {
		t.Fatal("10 failures after the success did not lock")
	}
	var counts []float64
	for _, e := range logs.Named("authn_login_fail") {
		counts = append(counts, e["failures"].(float64))
	}
	if len(counts) != 14 || counts[4] != 1 {
		t.Errorf("logged failure counts %v: want 1..4, then from 1 again after the success", counts)
	}
}

// The attempt that reaches MaxFailures locks the account but is itself
// admitted, and a success on it lifts the lock; an attempt neither
// Succeeded nor Failed still counts.
func TestLockingAttemptCanSucceed(t *testing.T) {
	c := newClock()
	l := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{MaxFailures: 3}, c)
	ctx := t.Context()
	fail(t, l, "alice", ratelimit.Source{})
	fail(t, l, "alice", ratelimit.Source{})
	att, err := l.Begin(ctx, "alice", ratelimit.Source{})
	if err != nil {
		t.Fatalf("the 3rd attempt: %v", err)
	}
	if _, err := l.Begin(ctx, "alice", ratelimit.Source{}); !errors.Is(err, ratelimit.ErrLocked) {
		t.Fatalf("after the 3rd attempt: %v, want locked", err)
	}
	if err := att.Succeeded(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Begin(ctx, "alice", ratelimit.Source{}); err != nil {
		t.Fatalf("after the 3rd attempt succeeded: %v", err)
	}

	for range 3 {
		if _, err := l.Begin(ctx, "bob", ratelimit.Source{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Begin(ctx, "bob", ratelimit.Source{}); !errors.Is(err, ratelimit.ErrLocked) {
		t.Errorf("attempts never concluded did not count: %v", err)
	}
}

// Lockout.Reset clears the account's counter and lock.
func TestLockoutReset(t *testing.T) {
	c := newClock()
	l := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{}, c)
	for range 10 {
		fail(t, l, "alice", ratelimit.Source{})
	}
	if lockedUntil(t, l, "alice", ratelimit.Source{}).IsZero() {
		t.Fatal("not locked")
	}
	if err := l.Reset(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if !fail(t, l, "alice", ratelimit.Source{}) {
			t.Fatalf("failure %d after Reset refused", i+1)
		}
	}
	if err := l.Reset(t.Context(), "nobody"); err != nil {
		t.Errorf("Reset of an account without state: %v", err)
	}
}

// Lockouts with different names on one store keep separate counters, and
// lockout counters never share keys with rate limiters of the same name.
func TestLockoutNames(t *testing.T) {
	c := newClock()
	store := memstore.New()
	mk := func(name string) *ratelimit.Lockout {
		l, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Name: name, Policy: ratelimit.LockoutPolicy{MaxFailures: 2}, Logger: discard, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b, def := mk("a"), mk("b"), mk("")
	fail(t, a, "alice", ratelimit.Source{})
	fail(t, a, "alice", ratelimit.Source{})
	if !fail(t, b, "alice", ratelimit.Source{}) || !fail(t, def, "alice", ratelimit.Source{}) {
		t.Error("lockouts with other names share the counter")
	}
	if fail(t, mk("a"), "alice", ratelimit.Source{}) {
		t.Error("a second lockout with the same name does not share it")
	}
	rl := newLimiter(t, store, ratelimit.Rule{Name: "a", Limit: 1, Period: time.Hour}, c)
	if d, _ := rl.Allow(t.Context(), "alice"); !d.Allowed {
		t.Error("a rate limiter named like a locked lockout refuses")
	}
}

// Policies and accounts outside their bounds are refused with
// ErrInvalidInput; zero fields take the defaults.
func TestInvalidLockout(t *testing.T) {
	store := memstore.New()
	day := 24 * time.Hour
	for _, tc := range []struct {
		name string
		opts ratelimit.LockoutOptions
	}{
		{"bad name", ratelimit.LockoutOptions{Name: "a b"}},
		{"long name", ratelimit.LockoutOptions{Name: strings.Repeat("x", 65)}},
		{"MaxFailures over the cap", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{MaxFailures: storage.MaxLockoutFailures + 1}}},
		{"negative MaxFailures", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{MaxFailures: -1}}},
		{"LockFor under 1ms", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{LockFor: time.Microsecond}}},
		{"negative LockFor", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{LockFor: -time.Hour}}},
		{"MaxLockFor under LockFor", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{LockFor: 2 * time.Hour, MaxLockFor: time.Hour}}},
		{"MaxLockFor over 90 days", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{MaxLockFor: 91 * day}}},
		{"ForgetAfter over 90 days", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{ForgetAfter: 91 * day}}},
		{"negative ForgetAfter", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{ForgetAfter: -time.Hour}}},
		{"AccountMaxFailures under MaxFailures", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{MaxFailures: 20, AccountMaxFailures: 19}}},
		{"AccountMaxFailures over 100", ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{AccountMaxFailures: 101}}},
		{"log key of 31 bytes", ratelimit.LockoutOptions{LogKey: make([]byte, 31)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if l, err := ratelimit.NewLockout(store, tc.opts); !errors.Is(err, ratelimit.ErrInvalidInput) || l != nil {
				t.Errorf("NewLockout(%+v) = %v, %v; want ErrInvalidInput", tc.opts, l, err)
			}
		})
	}
	if _, err := ratelimit.NewLockout(nil, ratelimit.LockoutOptions{}); !errors.Is(err, ratelimit.ErrInvalidInput) {
		t.Errorf("NewLockout(nil store): %v", err)
	}
	l, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{MaxFailures: storage.MaxLockoutFailures, LockFor: 48 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if p, want := l.Policy(), (ratelimit.LockoutPolicy{MaxFailures: 100, AccountMaxFailures: 100, LockFor: 48 * time.Hour, MaxLockFor: 48 * time.Hour, ForgetAfter: day}); p != want {
		t.Errorf("Policy() = %+v, want %+v", p, want)
	}
	for _, account := range []string{"", strings.Repeat("a", ratelimit.MaxKeyLen+1)} {
		if att, err := l.Begin(t.Context(), account, ratelimit.Source{}); !errors.Is(err, ratelimit.ErrInvalidInput) || att != nil {
			t.Errorf("Begin(account of %d bytes) = %v, %v; want ErrInvalidInput", len(account), att, err)
		}
		if err := l.Reset(t.Context(), account); !errors.Is(err, ratelimit.ErrInvalidInput) {
			t.Errorf("Reset(account of %d bytes) = %v; want ErrInvalidInput", len(account), err)
		}
	}
}
