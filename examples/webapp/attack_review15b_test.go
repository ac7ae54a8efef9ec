package main

// Attack review of issue 15's password change, master-key rotation,
// lockout status and "Forgot your password?" (review 15b). Each test is a
// finding's regression test or a defense that held.

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
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

// A note added by a request that held the old key (a session unlocked
// before the rotation, its request in flight while the rotation ran) and
// wrote after finish had destroyed the old key was stored under a key
// that no longer exists: the request answered "saved" (303), finish had
// already answered "done" (its second count ran before the write), and
// the note never opened again. Now a note written under a key older than
// the vault's is taken back and the request answers 409, so nothing the
// user was told was saved is lost.
func TestR15bNoteAddedAcrossRotationIsNotLostSilently(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"kept"}, "body": {noteText}}), 303, "/notes")
	b := e.client()
	e.login(b, "ada") // unlocked with the old key

	db := e.db()
	uid := e.userID(db, "ada")
	paused, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hold := func(userID string) {
		if userID == uid {
			once.Do(func() { close(paused); <-resume })
		}
	}
	hookNoteWrite.Store(&hold)
	t.Cleanup(func() { hookNoteWrite.Store(nil) })
	late := make(chan result, 1)
	go func() {
		late <- e.post(b, "/notes", url.Values{"title": {"written late"}, "body": {"under the old key"}})
	}()
	<-paused
	hookNoteWrite.Store(nil)

	expect(t, "rotate", e.post(c, "/account/rotate", url.Values{"password": {password}}), 303, "/account/rotate")
	if code, body := e.doCut(c, "/account/rotate/reseal", url.Values{}); code != 200 || !strings.Contains(body, "1 re-sealed") {
		t.Fatalf("reseal: %d\n%s", code, body)
	}
	expect(t, "finish", e.post(c, "/account/rotate/finish", nil), 303, "/account/rotate?done=1")
	close(resume)
	r := <-late

	versions := keyVersions(t, db, uid)
	notes := e.get(c, "/notes")
	switch {
	case r.code == 303 && !strings.Contains(notes.body, "written late"):
		t.Fatalf("the late note was answered as saved (303) but does not open (key versions %v)", versions)
	case r.code != 303 && r.code != 409:
		t.Fatalf("the late note: %d %q", r.code, r.location)
	case versions[1] != 0:
		t.Fatalf("notes left under the destroyed key: %v", versions)
	}
	mustContain(t, "the notes", notes, "kept")
}
