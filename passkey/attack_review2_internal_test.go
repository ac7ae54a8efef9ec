package passkey

// Second outside review of issue 13 (package passkey): the step-up
// ceremony and the first review's fixes. Each test showed one finding
// failing on the code it was written against, and passes since its fix.
//
// Races use forced interleavings (hookStore, from the first review's
// file: it pauses one PutPasskeys of a user until the test releases it).

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"testing"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
)

// Finding L1 (low): undoRegistration deleted the passkey record when the
// undone credential was its only one, and so forgot that the account had
// had a passkey, on which adding one with the password alone then turned.
// That rule is gone (removing a passkey needs a multi-factor session, as
// adding one does), but what the undo does to the record still matters:
// a registration whose session ends between its write and its Recheck
// (logout everywhere, account deletion) takes its credential back, leaves
// a record that was there before in place (with its other passkeys, or
// emptied, with its user handle), and deletes a record it created (a
// deleted account gets no record back).
func TestAttackUndoRegistrationForgetsPasskeyLevel(t *testing.T) {
	// registerRevoked registers a new passkey from b's session, whose
	// user's sessions are all revoked between the registration's write
	// and its Recheck; it returns the new credential.
	registerRevoked := func(t *testing.T, s *softEnv, hs *hookStore, b *browser, userID string) *softCred {
		t.Helper()
		opts := s.beginRegistration(b)
		c, resp := s.auth.create(t, opts, 0, nil)
		hs.arm(userID, false) // pause after the registration's write
		done := make(chan error, 1)
		go func() {
			var err error
			s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.FinishRegistration(r, resp, "new") })
			done <- err
		}()
		hs.wait(t)
		if sr := s.stored(userID); !containsID(sr.CredentialIDs, c.ID) {
			close(hs.release)
			t.Fatal("precondition: the paused registration has not stored its credential")
		}
		if err := s.sessions.RevokeAll(context.Background(), userID); err != nil {
			t.Fatal(err)
		}
		close(hs.release)
		if err := rcWait(t, done, "the registration"); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("the registration of a revoked session: %v, want ErrStepUpRequired", err)
		}
		if _, err := s.store.UserByCredential(context.Background(), c.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the undone credential is still indexed: %v", err)
		}
		if _, err := s.login(newBrowser(), c, nil); !errors.Is(err, ErrLoginFailed) {
			t.Fatalf("the undone credential signs in: %v", err)
		}
		return c
	}

	t.Run("existing record with another passkey", func(t *testing.T) {
		s, hs := newHookEnv(t)
		pw := newBrowser()
		s.harness.login(pw, "alice", false)
		c := s.mustRegister(pw)
		mfa := newBrowser()
		if _, err := s.login(mfa, c, nil); err != nil {
			t.Fatal(err)
		}
		before := s.stored("alice")
		registerRevoked(t, s, hs, mfa, "alice")
		after := s.stored("alice")
		if len(after.CredentialIDs) != 1 || !containsID(after.CredentialIDs, c.ID) || !bytes.Equal(after.Handle, before.Handle) {
			t.Fatalf("after the undo: %d credentials, handle kept %v; want alice's first passkey alone, same handle",
				len(after.CredentialIDs), bytes.Equal(after.Handle, before.Handle))
		}
		if _, err := s.login(newBrowser(), c, nil); err != nil {
			t.Fatalf("alice's first passkey after the undo: %v", err)
		}
	})

	t.Run("existing record, emptied", func(t *testing.T) {
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
			t.Fatalf("alice removes her passkey from her passkey session: %v", err)
		}
		before := s.stored("alice")
		if before.Version == 0 || len(before.CredentialIDs) != 0 {
			t.Fatalf("precondition: after removing the last passkey, the record (version %d, %d credentials) stays, emptied",
				before.Version, len(before.CredentialIDs))
		}
		registerRevoked(t, s, hs, mfa, "alice")
		sr, err := s.store.GetPasskeys(context.Background(), "alice")
		if err != nil {
			t.Fatalf("the undo of a registration that did not create the record deleted it: %v", err)
		}
		if len(sr.CredentialIDs) != 0 || !bytes.Equal(sr.Handle, before.Handle) {
			t.Fatalf("after the undo: %d credentials, handle kept %v; want the emptied record as it was",
				len(sr.CredentialIDs), bytes.Equal(sr.Handle, before.Handle))
		}
		// No passkey now, no TOTP: the password alone may add one again
		// (there is no has-had-a-passkey rule).
		again := newBrowser()
		s.harness.login(again, "alice", false)
		if _, _, err := s.register(again, nil); err != nil {
			t.Fatalf("a password session adds a passkey to an account without one: %v", err)
		}
	})

	t.Run("record created by the registration", func(t *testing.T) {
		s, hs := newHookEnv(t)
		pw := newBrowser()
		s.harness.login(pw, "alice", false)
		registerRevoked(t, s, hs, pw, "alice")
		if sr, err := s.store.GetPasskeys(context.Background(), "alice"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the undo of the registration that created the record left it (%d credentials, version %d): %v",
				len(sr.CredentialIDs), sr.Version, err)
		}
		if has, err := s.m.Has(context.Background(), "alice"); err != nil || has {
			t.Fatalf("Has after the undo: %v, %v", has, err)
		}
	})
}

// containsID reports whether ids holds id.
func containsID(ids [][]byte, id []byte) bool {
	for _, x := range ids {
		if bytes.Equal(x, id) {
			return true
		}
	}
	return false
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
// passkey is then refused with ErrLoginFailed, for hours. Fixed: a
// pending login's step-ups are bounded by the login
// (MaxSecondFactorFailures) and not counted on Config.Lockout, so the
// owner signs in.
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
	if err != nil || res.UserID != "alice" || s.current(b).UserID != "alice" {
		t.Fatalf("after %d refused step-ups of password-only pending logins from other addresses, the owner's "+
			"right passkey sign-in: %v (%+v), want signed in", failures, err, res)
	}
}
