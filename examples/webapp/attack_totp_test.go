package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// This file holds an outside review's attacks on the webapp's second
// factor (issue 12).

// TestAttackDeviceCookiesFromBeforeEnrollment attacks TOT-05 ("failed
// TOTP attempts are throttled per account across sessions (≤100
// consecutive)") and login's own comment ("Nor is the browser remembered
// as the owner's yet: a device cookie gives its browser failure counters
// of its own, which whoever has the password alone must not collect").
//
// Someone who had the password before the owner turned on TOTP (the
// usual reason to turn it on) logged in as often as they liked, and each
// login minted a new device cookie (Devices.Remember, a fresh random ID
// each time). Enrolling revokes their sessions but not those cookies, and
// a.source hands the recognised device to the code lockout too: every
// such cookie is a counter of its own (10 failures per lock) that never
// touches the account-wide counter (100). Here 12 cookies carry 108
// consecutive wrong codes, and a 13th still has its code checked: the
// right code is accepted, where the account cap should have refused it.
// With N cookies the attacker guesses 10·N codes per lock period instead
// of 100, bounded only by the per-address login limit.
//
// Fix (the webapp): do not give the code lockout a device from the
// password-era cookie: pass ratelimit.Source{IP: ip} to
// VerifyLogin/RecoverLogin/Confirm/Verify, or keep a second Devices (its
// own key and cookie name) that is Remembered only after a second factor
// succeeded (secondFactor, recoverLogin, reauth with a code, enroll) and
// Recognized only for the code lockout. Forgetting devices at enrollment
// would need a per-user device generation in the MAC.
func TestAttackDeviceCookiesFromBeforeEnrollment(t *testing.T) {
	e := newEnv(t, true)
	owner := e.client()
	e.signup(owner, "ada")

	// Before the owner enrolls: the password alone logs in, and each
	// login leaves a device cookie in the attacker's jar.
	const devices = 13
	var attacker []*http.Client
	for range devices {
		c := e.client()
		e.clock.Advance(3 * time.Minute) // the per-address login limit
		expect(t, "attacker's login before enrollment", e.post(c, "/login", creds), 303, "/notes")
		attacker = append(attacker, c)
	}

	// The owner turns TOTP on: every other session ends.
	e.clock.Advance(3 * time.Minute)
	e.login(owner, "ada")
	secret, _ := e.enroll(owner, "phone")

	// 12 cookies × 3 pending logins × 3 wrong codes: 108 consecutive
	// failures on the account, 9 per device (under each device's 10).
	failures := 0
	for _, c := range attacker[:devices-1] {
		for range 3 {
			e.loginPending(c)
			for i := range 3 {
				r := e.post(c, "/login/2fa", url.Values{"code": {wrongCode(e.code(secret))}})
				if i < 2 {
					expect(t, "wrong code", r, 401, "")
				} else {
					expect(t, "third wrong code", r, 303, "/login?mfa=failed")
				}
				failures++
			}
		}
	}
	// A 13th cookie from before the enrollment, the right code.
	c := attacker[devices-1]
	e.loginPending(c)
	r := e.post(c, "/login/2fa", url.Values{"code": {e.code(secret)}})
	if r.code != 401 {
		t.Errorf("after %d consecutive wrong codes on the account, spread over device cookies minted before the second factor existed, "+
			"the code was still checked (right code: %d %q): the account-wide cap (100, TOT-05) does not apply to them", failures, r.code, r.location)
	}
}
