package session_test

import (
	"net/http"
	"testing"

	"github.com/keyhold/keyhold/session"
)

// This file holds an outside review's attacks on the session side of the
// second factor (issue 12).

// TestAttackRevokedSessionCannotRevokeOthers: RevokeOthers trusts the
// request's session as it was read when the request began; it does not
// check that the session still exists. So a request of a session that
// the owner has just ended ("log out other devices", or package totp's
// change that revokes the others) can still end every other session,
// the owner's included, when it reaches RevokeOthers after the owner's
// revocation: package totp calls it after Confirm, Remove and
// RegenerateRecoveryCodes (afterChange) and RecoverLogin, so an in-flight
// change from a revoked session logs the owner out (seen in
// totp.TestAttackConfirmStepUpRecheckedAtWrite: the dead session's
// afterChange ended the owner's new multi-factor session).
//
// Fix: RevokeOthers first re-reads the request's own record (reload, as
// Lock does) and returns ErrNotLoggedIn if it has ended, before deleting
// anything; the own-session check by Ref then only spares a live session.
func TestAttackRevokedSessionCannotRevokeOthers(t *testing.T) {
	a := newTestApp(t, session.Config{})
	owner := a.login("alice")
	attacker := a.login("alice")

	var revokeErr error
	h := a.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.m.Current(r.Context()); !ok {
			t.Error("the attacker's session is not loaded")
			return
		}
		// While this request runs, the owner logs out the other devices.
		if resp := a.do(request{method: "POST", target: "/others", cookie: owner}); resp.StatusCode != 200 {
			t.Errorf("owner's RevokeOthers: %d %s", resp.StatusCode, body(resp))
		}
		revokeErr = a.m.RevokeOthers(r.Context())
	}))
	serve(h, a.m.Config().CookieName, request{method: "POST", target: "/", cookie: attacker})

	if got := a.status("/me", owner); got != 200 {
		t.Errorf("a session ended by the owner still ended the owner's session (its RevokeOthers returned %v): owner's /me = %d", revokeErr, got)
	}
	if revokeErr == nil {
		t.Errorf("RevokeOthers from a session that had ended returned nil")
	}
}
