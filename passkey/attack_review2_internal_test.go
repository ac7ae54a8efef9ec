//go:build attackreview2

package passkey

// Second outside review of issue 13 (package passkey): the step-up
// ceremony and the first review's fixes. Each test shows one finding and
// fails on the code it was written against; run:
// go test -tags attackreview2 ./passkey -run Attack
//
// Races use forced interleavings (hookStore, from the first review's
// file: it pauses one PutPasskeys of a user until the test releases it).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
)

// Finding L1 (low): undoRegistration deletes the passkey record when the
// undone credential was its only one, and so forgets that the account has
// had a passkey (passkeyLevel reads the record's version): afterwards the
// password alone adds a passkey again, the remove-then-add bypass the first
// review's fix closed. Here alice removed her passkey (the record stays,
// emptied: adding needs a multi-factor session), registers a new one from
// her passkey session, and her sessions are revoked (logout everywhere,
// which a password-only session can do in apps like examples/webapp)
// between the registration's write and its Recheck. The undo deletes the
// record, and a password-only session then begins a registration.
func TestAttackUndoRegistrationForgetsPasskeyLevel(t *testing.T) {
	s, hs := newHookEnv(t)
	pw := newBrowser()
	s.harness.login(pw, "alice", false)
	c := s.mustRegister(pw)
	mfa := newBrowser()
	if _, err := s.login(mfa, c, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	s.doTLS(mfa, func(w http.ResponseWriter, r *http.Request) { err = s.m.Remove(r, "alice", b64(c.ID)) })
	if err != nil {
		t.Fatalf("alice removes her passkey: %v", err)
	}
	attacker := newBrowser()
	s.harness.login(attacker, "alice", false)
	s.doTLS(attacker, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.BeginRegistration(r, "mallory") })
	if !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("precondition: a password session adds a passkey to an account that had one: %v", err)
	}

	// alice adds a new passkey; her sessions end between its write and
	// its Recheck.
	opts := s.beginRegistration(mfa)
	_, resp := s.auth.create(t, opts, 0, nil)
	hs.arm("alice", false) // pause after the registration's write
	done := make(chan error, 1)
	go func() {
		_, err := s.finishRegistration(mfa, resp, "new")
		done <- err
	}()
	hs.wait(t)
	if err := s.sessions.RevokeAll(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	close(hs.release)
	if err := <-done; err == nil {
		t.Fatal("precondition: the registration of a revoked session succeeded")
	}

	attacker = newBrowser()
	s.harness.login(attacker, "alice", false) // the password again
	s.doTLS(attacker, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.BeginRegistration(r, "mallory") })
	if errors.Is(err, ErrStepUpRequired) {
		return // fixed
	}
	t.Errorf("after an undone registration, a password-only session of an account that had a passkey begins a "+
		"registration (%v): the undo deleted the record, and with it the passkey level", err)
}

// Finding L2 (medium): whoever has the password of a user with TOTP and a
// passkey locks the owner's passkey sign-in for everyone, the owner's own
// devices included. Every refused FinishStepUp of a login pending its
// second factor counts on Config.Lockout for the user (3 per pending
// login, then it ends; a new password login gives 3 more), and from
// enough addresses the account-wide counter locks. FinishLogin takes its
// ratelimit.Source before it knows the user, so an app cannot give it
// the device (Source.Device, recognised per user) that would spare the
// owner's browser, as the TOTP and password paths do: the owner's right
// passkey is then refused with ErrLoginFailed, for hours.
func TestAttackPendingStepUpsLockOwnersPasskeySignIn(t *testing.T) {
	s := newSoftEnv(t, nil)
	owner := newBrowser()
	s.harness.login(owner, "alice", false)
	c := s.mustRegister(owner)

	failures := 0
	for ip := 1; ip <= 11; ip++ { // 10 refusals from each address: its own limit, not locked yet
		src := ratelimit.Source{IP: netip.AddrFrom4([4]byte{203, 0, 113, byte(ip)})}
		for n := 0; n < 10; {
			attacker := newBrowser() // a new password login, pending its second factor
			s.harness.do(attacker, func(w http.ResponseWriter, r *http.Request) {
				if err := s.sessions.Login(r.Context(), "alice", session.LoginOptions{SecondFactorPending: true}); err != nil {
					t.Fatal(err)
				}
			})
			for k := 0; k < 3 && n < 10; k, n = k+1, n+1 {
				var opts []byte
				var err error
				s.doTLS(attacker, func(w http.ResponseWriter, r *http.Request) { opts, err = s.m.BeginStepUp(r) })
				if err != nil {
					t.Fatalf("BeginStepUp of a pending login: %v", err)
				}
				bad := s.auth.get(t, c, opts, func(a *softAnswer) { a.Signature = []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01} })
				s.doTLS(attacker, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.FinishStepUp(r, bad, src) })
				if !errors.Is(err, ErrLoginFailed) {
					t.Fatalf("a wrong step-up: %v", err)
				}
				failures++
			}
		}
	}
	// The owner, at her usual address, with her own passkey.
	b := newBrowser()
	var res LoginResult
	var err error
	opts := s.beginLogin(b)
	answer := s.auth.get(t, c, opts, nil)
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) {
		res, err = s.m.FinishLogin(w, r, answer, ratelimit.Source{IP: netip.MustParseAddr("198.51.100.7")}, LoginOptions{})
	})
	if err == nil {
		t.Logf("the owner still signs in after %d refused step-ups (fixed)", failures)
		return
	}
	t.Errorf("%s", fmt.Sprintf("after %d refused step-ups of password-only pending logins from other addresses, the owner's "+
		"right passkey sign-in is refused: %v (%+v); FinishLogin's Source cannot carry her device", failures, err, res))
}
