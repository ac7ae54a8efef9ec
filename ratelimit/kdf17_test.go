package ratelimit_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

// KDF-17 through a lockout: a right password against a hash marked
// compromised (kdf.ErrPasswordChangeRequired) is a success for the
// counters (they are reset) and Check hands the error back so the caller
// asks for a new password.
func TestCheckPasswordChangeRequiredIsSuccess(t *testing.T) {
	c := newClock()
	l := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{MaxFailures: 3}, c)
	ctx := t.Context()
	src := ratelimit.Source{IP: netip.MustParseAddr("192.0.2.1")}
	fail := func() error { return l.Check(ctx, "alice", src, (&countingCredential{verr: kdf.ErrMismatch}).cred()) }
	for range 2 {
		if err := fail(); !errors.Is(err, ratelimit.ErrRejected) {
			t.Fatal(err)
		}
	}
	cc := &countingCredential{verr: kdf.ErrPasswordChangeRequired}
	if err := l.Check(ctx, "alice", src, cc.cred()); !errors.Is(err, kdf.ErrPasswordChangeRequired) || errors.Is(err, ratelimit.ErrRejected) {
		t.Fatalf("Check = %v, want kdf.ErrPasswordChangeRequired and not ErrRejected", err)
	}
	// The counters were reset: two more failures do not lock.
	for range 2 {
		if err := fail(); !errors.Is(err, ratelimit.ErrRejected) || errors.Is(err, ratelimit.ErrLocked) {
			t.Fatalf("after the reset: %v", err)
		}
	}
}
