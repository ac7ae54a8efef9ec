package main

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

// The credential changes end the user's other sessions before their write
// as well as after it, so that a crash between the write and the
// revocation after it (the process killed there) leaves no other device
// logged in past the change (examples/webapp/killtest).

// otherLoggedIn reports whether the other device's session still reaches
// a page that needs a login.
func (e *testEnv) otherLoggedIn(c *http.Client) bool {
	e.t.Helper()
	r := e.get(c, "/account")
	return r.code == 200
}

// A crash right after the password change wrote the login hash (the hook
// fails the request there): the other device is logged out already.
func TestCrash16PasswordChangeEndsOthersBeforeTheHash(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	other := e.client()
	e.login(other, "ada")
	if !e.otherLoggedIn(other) {
		t.Fatal("the other device is not logged in to start with")
	}
	crash := func(string) error { return errors.New("the process stops here") }
	hookCredentialStored.Store(&crash)
	r := e.post(c, "/account/password", url.Values{"current": {password}, "new": {newPassword}})
	hookCredentialStored.Store(nil)
	expect(t, "the change stopped after the hash's write", r, 500, "")
	expect(t, "the new password logs in", e.loginWith(e.client(), "ada", newPassword), 303, "/notes")
	if e.otherLoggedIn(other) {
		t.Fatal("the password changed, and the other device is still logged in")
	}
}

// Just before the TOTP confirmation writes the authenticator, the other
// device's password-only session has ended already.
func TestCrash16TOTPConfirmEndsOthersBeforeTheWrite(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	other := e.client()
	e.login(other, "ada")
	checked, alive := 0, false
	hook := func(string) { checked++; alive = e.otherLoggedIn(other) }
	hookFactorWrite.Store(&hook)
	e.enroll(c, "Phone")
	hookFactorWrite.Store(nil)
	if checked != 1 {
		t.Fatalf("the hook ran %d times, want 1", checked)
	}
	if alive {
		t.Fatal("the authenticator was about to be stored with the other device's password-only session still logged in")
	}
	if e.otherLoggedIn(other) {
		t.Fatal("the other device is still logged in after the confirmation")
	}
}

// Just before a passkey registration's answer is taken (and the passkey
// stored), the other device has been logged out: the registration's begin
// ended it.
func TestCrash16PasskeyRegistrationEndsOthersBeforeTheWrite(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	other := e.client()
	e.login(other, "ada")
	parseOptions(t, "register begin", e.api(c, "/passkey/register/begin", "", ""))
	checked, alive := 0, false
	hook := func(string) { checked++; alive = e.otherLoggedIn(other) }
	hookFactorWrite.Store(&hook)
	e.api(c, "/passkey/register/finish?name=Laptop", `{"id":1}`, "")
	hookFactorWrite.Store(nil)
	if checked != 1 {
		t.Fatalf("the hook ran %d times, want 1", checked)
	}
	if alive {
		t.Fatal("the passkey was about to be stored with the other device still logged in")
	}
	if !e.otherLoggedIn(c) {
		t.Fatal("the registering browser was logged out")
	}
}
