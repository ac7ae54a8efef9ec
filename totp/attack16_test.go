package totp_test

import (
	"errors"
	"testing"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/totp"
)

// Issue 16: TOTP replay and recovery-code double spend, by someone who saw
// the code (over the user's shoulder, a phishing relay, a log): the same
// code again later in its window, the same code at the same moment as the
// user on another instance of the app, the same recovery code twice at
// once. The races of 20 requests on one instance are races_test.go's
// (TestRaceVerifyOneCodeOnce, TestRaceRecoveryCodeOnce); these tests put
// the two uses on two Authenticators sharing one store, the second one
// run inside the first, after its read of the record and before its
// write, so that nothing held in one process can be what refuses.

// attack16Pair is two Authenticators (two instances of the app) over one
// store, with the same key ring and clock; the first reads through a
// hookStore. alice is enrolled, the clock one step past the confirming
// code.
func attack16Pair(t *testing.T, st factorStore) (first, second *authFixture, hooked *hookStore, e enrolled) {
	t.Helper()
	hooked = &hookStore{FactorStore: st}
	clock := newStepClock()
	first = newAuth(t, st, clock, authOptions{factors: hooked})
	second = newAuth(t, st, clock, authOptions{sealer: first.sealer.Sealer})
	e = first.enroll(t.Context(), "alice")
	clock.Advance(period)
	return first, second, hooked, e
}

// TestAttack16TOTPReplayInWindow: a code accepted once is refused again
// for as long as it is inside the window (at its own step and at the next,
// where the ±1 window still holds it), on the instance that accepted it
// and on another; the refusal is a replay and looks like a wrong code to
// the caller (ErrWrongCode, a rejected attempt).
func TestAttack16TOTPReplayInWindow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st factorStore) {
		first, second, _, e := attack16Pair(t, st)
		code := appCode(t, e.secret, first.clock.Now())
		if err := first.auth.Verify(t.Context(), "alice", code, noSource); err != nil {
			t.Fatalf("the code, once: %v", err)
		}
		for _, when := range []string{"same step", "next step"} {
			if when == "next step" {
				first.clock.Advance(period) // the code's step is T−1 now: still in the window
			}
			for i, f := range []*authFixture{first, second} {
				err := f.auth.Verify(t.Context(), "alice", code, noSource)
				if !errors.Is(err, totp.ErrReplayed) || !errors.Is(err, totp.ErrWrongCode) || !rejected(err) {
					t.Errorf("%s, instance %d: the code again: %v, want a rejected replay", when, i+1, err)
				}
			}
		}
		// The refusals consumed nothing: the next step's code is good.
		if err := second.auth.Verify(t.Context(), "alice", appCode(t, e.secret, first.clock.Now().Add(period)), noSource); err != nil {
			t.Errorf("the next code: %v", err)
		}
	})
}

// TestAttack16TOTPReplayAcrossInstancesForced: the first instance reads
// the record to check a code; the second verifies the same code from
// start to end; then the first writes. Exactly one succeeds (the second),
// and the first is refused as a replay, not let through by the record it
// read before.
func TestAttack16TOTPReplayAcrossInstancesForced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st factorStore) {
		first, second, hooked, e := attack16Pair(t, st)
		code := appCode(t, e.secret, first.clock.Now())
		var inner error
		ran := false
		hooked.arm(func() {
			ran = true
			inner = second.auth.Verify(t.Context(), "alice", code, noSource)
		})
		outer := first.auth.Verify(t.Context(), "alice", code, noSource)
		if !ran {
			t.Fatal("the hook did not run: the race was not forced")
		}
		if inner != nil {
			t.Fatalf("the second instance, first to write: %v", inner)
		}
		if !errors.Is(outer, totp.ErrReplayed) || !rejected(outer) || errors.Is(outer, ratelimit.ErrLocked) {
			t.Fatalf("the first instance, which read before the second wrote: %v, want a rejected replay", outer)
		}
	})
}

// TestAttack16RecoveryCodeDoubleSpendForced: the same interleaving with
// one recovery code: exactly one use succeeds, one code is gone from the
// set, and the code is refused afterwards on both instances.
func TestAttack16RecoveryCodeDoubleSpendForced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st factorStore) {
		first, second, hooked, e := attack16Pair(t, st)
		code := e.codes[0].Reveal()
		var inner error
		ran := false
		hooked.arm(func() {
			ran = true
			_, inner = second.auth.UseRecoveryCode(t.Context(), "alice", code, noSource)
		})
		_, outer := first.auth.UseRecoveryCode(t.Context(), "alice", code, noSource)
		if !ran {
			t.Fatal("the hook did not run: the race was not forced")
		}
		if (inner == nil) == (outer == nil) {
			t.Fatalf("second instance: %v; first: %v; want exactly one use to succeed", inner, outer)
		}
		if lost := errors.Join(inner, outer); !rejected(lost) || errors.Is(lost, ratelimit.ErrLocked) {
			t.Errorf("the losing use: %v, want a rejected code", lost)
		}
		status, err := second.auth.RecoveryCodes(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if want := len(e.codes) - 1; status.Remaining != want {
			t.Errorf("%d codes left, want %d", status.Remaining, want)
		}
		for i, f := range []*authFixture{first, second} {
			if _, err := f.auth.UseRecoveryCode(t.Context(), "alice", code, noSource); !rejected(err) {
				t.Errorf("instance %d: the code after the race: %v, want it rejected", i+1, err)
			}
		}
	})
}
