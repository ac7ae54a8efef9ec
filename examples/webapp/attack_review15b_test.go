package main

// Attack review of issue 15's password change, master-key rotation,
// lockout status and "Forgot your password?" (review 15b). Each test is a
// finding's regression test or a defense that held.

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The password change's resume path ("the same form again finishes a
// change cut short") tried the new password on the vault after the
// current password had passed the lockout as a success: with the login
// on one password and the vault on another (a change cut short between
// its writes), whoever knows the login password alone could send guesses
// at the vault's passphrase as "new" passwords, each answered "does not
// open your notes" (409) or a changed password, and none counted: the
// right current password reset the counters on every try. The unlock
// form counts the same guesses (10, then a lock of an hour, growing).
// Now a vault that opens with neither password is a failed attempt for
// the lockout, which locks the form like any other password check.
func TestR15bPasswordChangeResumeIsNoVaultOracle(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")
	// The owner changes the password (the old one leaked, say), and the
	// change is cut short between its writes: the login keeps the old
	// password, the vault has the new one.
	stop := func(string) { panic("the process stops here") }
	hookPasswordWrites.Store(&stop)
	r := e.post(c, "/account/password", url.Values{"current": {password}, "new": {newPassword}})
	hookPasswordWrites.Store(nil)
	expect(t, "the change stopped between its writes", r, 500, "")

	// Someone who knows only the old password logs in, and guesses at
	// the vault's passphrase through the password form.
	attacker := e.client()
	expect(t, "login with the old password", e.loginWith(attacker, "ada", password), 303, "/unlock")
	const guesses = 12 // more than the lockout's 10
	for i := range guesses {
		if i%8 == 7 {
			e.clock.Advance(time.Minute) // the per-account limit of KDF forms
		}
		guess := fmt.Sprintf("guess %02d at the vault passphrase", i)
		r := e.post(attacker, "/account/password", url.Values{"current": {password}, "new": {guess}})
		if r.code == 303 {
			t.Fatalf("guess %d changed the password", i)
		}
	}
	e.clock.Advance(time.Minute)
	r = e.post(attacker, "/account/password", url.Values{"current": {password}, "new": {newPassword}})
	if r.code == 303 || strings.Contains(r.body, "does not open your notes") {
		t.Fatalf("after %d wrong guesses at the vault's passphrase through the password form, the right one was still tried (%d %q): the resume path is an uncounted oracle", guesses, r.code, r.location)
	}
	// The owner's browser has its own count (a known device): the
	// attacker's lock does not stop the owner finishing the change.
	expect(t, "the owner finishes the change", e.post(c, "/account/password", url.Values{"current": {password}, "new": {newPassword}}), 303, "/account?changed=password")
	expect(t, "the attacker's session ended", e.get(attacker, "/account"), 303, "/login?ended=1")
}
