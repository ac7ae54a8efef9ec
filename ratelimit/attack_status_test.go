package ratelimit_test

// Attack review of Lockout.Status (review 15b): it reads through
// RefundAttempt, a store call that may write. These tests record every
// store call Status makes and check that none changed anything.

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// writeSpy is a memstore that records every lockout call: the attempts
// and resets (writes, always), and whether each refund changed a state.
type writeSpy struct {
	*memstore.Store
	begins, resets, refunds, refunded int
}

func (s *writeSpy) BeginAttempt(ctx context.Context, key []byte, req storage.LockoutRequest) (bool, storage.LockoutState, error) {
	s.begins++
	return s.Store.BeginAttempt(ctx, key, req)
}

func (s *writeSpy) ResetLockout(ctx context.Context, key []byte) error {
	s.resets++
	return s.Store.ResetLockout(ctx, key)
}

func (s *writeSpy) RefundAttempt(ctx context.Context, key []byte, req storage.LockoutRequest, lock int) (bool, storage.LockoutState, error) {
	s.refunds++
	ok, st, err := s.Store.RefundAttempt(ctx, key, req, lock)
	if ok {
		s.refunded++
	}
	return ok, st, err
}

// Status never writes: at every state a counter goes through (none, some
// failures, locked, locked again, a lock that ended, forgotten), from an
// address, from none, and from a recognised device, every store call it
// makes is a refund that refunds nothing; and two lockouts fed the same
// attempts, one read by Status after each, decide every attempt alike.
func TestR15bStatusNeverWrites(t *testing.T) {
	t.Parallel()
	c := newClock()
	policy := ratelimit.LockoutPolicy{MaxFailures: 2, AccountMaxFailures: 3, LockFor: time.Minute, MaxLockFor: 4 * time.Minute, ForgetAfter: time.Hour}
	spy, twin := &writeSpy{Store: memstore.New()}, memstore.New()
	read, plain := newLockout(t, spy, policy, c), newLockout(t, twin, policy, c)
	dev := recognisedDevice(t, c, "alice")
	sources := []ratelimit.Source{
		{IP: netip.MustParseAddr("192.0.2.1")},
		{IP: netip.MustParseAddr("2001:db8::1")},
		{},
		{IP: netip.MustParseAddr("192.0.2.1"), Device: dev},
	}
	wrong := ratelimit.Credential{
		Verify: func(context.Context) error { return ratelimit.ErrWrongCredential },
		Dummy:  func(context.Context) error { return nil },
	}
	statusReads := func() {
		t.Helper()
		before := *spy
		for _, src := range sources {
			for _, name := range []string{"alice", "bob", "alice\x00", strings.Repeat("é", ratelimit.MaxKeyLen/2)} {
				if _, err := read.Status(t.Context(), name, src); err != nil {
					t.Fatalf("Status(%q): %v", name, err)
				}
			}
		}
		if spy.begins != before.begins || spy.resets != before.resets || spy.refunded != before.refunded {
			t.Fatalf("Status wrote: %d attempts, %d resets, %d refunds that changed a counter", spy.begins-before.begins, spy.resets-before.resets, spy.refunded-before.refunded)
		}
		if spy.refunds == before.refunds {
			t.Fatal("Status read nothing")
		}
	}
	for step := range 40 {
		statusReads()
		src := sources[step%len(sources)]
		e1 := read.Check(t.Context(), "alice", src, wrong)
		e2 := plain.Check(t.Context(), "alice", src, wrong)
		if errors.Is(e1, ratelimit.ErrLocked) != errors.Is(e2, ratelimit.ErrLocked) || (e1 == nil) != (e2 == nil) {
			t.Fatalf("step %d: with Status reads %v, without %v", step, e1, e2)
		}
		c.Advance(time.Duration(step%7) * 20 * time.Second)
		if step == 30 {
			c.Advance(2 * time.Hour) // forgotten
		}
	}
	statusReads()
}

// Status panics on no input and reads only its own account's counters:
// names that differ by a byte, or that embed another name after a
// separator, are other counters.
func TestR15bStatusOddInputAndOtherAccounts(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{MaxFailures: 2, AccountMaxFailures: 2, LockFor: time.Minute}, c)
	src := ratelimit.Source{IP: netip.MustParseAddr("192.0.2.9")}
	wrong := ratelimit.Credential{
		Verify: func(context.Context) error { return ratelimit.ErrWrongCredential },
		Dummy:  func(context.Context) error { return nil },
	}
	for range 2 {
		if err := l.Check(t.Context(), "victim", src, wrong); !errors.Is(err, ratelimit.ErrRejected) {
			t.Fatalf("Check: %v", err)
		}
	}
	if st, err := l.Status(t.Context(), "victim", src); err != nil || !st.Account.Locked() || !st.Source.Locked() {
		t.Fatalf("victim: %+v %v, want locked", st, err)
	}
	for _, name := range []string{"Victim", "victim ", "victim\x00", "\x00victim", "s\x00victim", "a\x00victim", "victi", "victimm"} {
		st, err := l.Status(t.Context(), name, src)
		if err != nil {
			t.Fatalf("Status(%q): %v", name, err)
		}
		if st != (ratelimit.LockoutStatus{Account: ratelimit.CounterStatus{MaxFailures: 2}, Source: ratelimit.CounterStatus{MaxFailures: 2}}) {
			t.Errorf("Status(%q) read the victim's counters: %+v", name, st)
		}
	}
	for _, src := range []ratelimit.Source{{}, {IP: netip.Addr{}}, {IP: netip.MustParseAddr("::ffff:192.0.2.9")}, {IP: netip.IPv6Unspecified()}} {
		if _, err := l.Status(t.Context(), "victim", src); err != nil {
			t.Errorf("Status from %+v: %v", src, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Status(ctx, "victim", src); !errors.Is(err, ratelimit.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v, want ErrUnavailable wrapping context.Canceled", err)
	}
}
