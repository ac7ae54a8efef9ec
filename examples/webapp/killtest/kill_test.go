package killtest

import (
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	otptotp "github.com/pquerna/otp/totp"

	"github.com/pquerna/otp"
	_ "modernc.org/sqlite"

	"github.com/keyhold/keyhold/kdf"
)

// The trials per scenario in the long campaign: 300 kills in all.
const (
	passwordTrials = 70
	rotationTrials = 50
	recoveryTrials = 60
	totpTrials     = 60
	passkeyTrials  = 60
)

const newPass = "a different horse battery staple 2"

// ---- Password change ----

// TestKillPasswordChange kills the app while it changes a password
// (POST /account/password: the vault's passphrase, then the login hash).
// After the restart, exactly one of the old and the new password logs in;
// the new one only if the vault opens with it; the old one with the vault
// on either (a change cut short between its two writes, which sending the
// form again finishes); an acknowledged change is never lost; the notes
// read back intact.
func TestKillPasswordChange(t *testing.T) {
	runScenario(t, scenario{
		name:    "password change",
		golden:  func(t *testing.T, dir string) *account { return makeGolden(t, dir, 5, nil) },
		prepare: func(tr *trial) {},
		op: func(tr *trial) error {
			r, err := tr.b.tryPost("/account/password", url.Values{"current": {tr.acc.pass}, "new": {newPass}})
			if err != nil {
				return err
			}
			expect(tr.t, "password change", r, 303, "/account?changed=password")
			tr.ack("changed")
			return nil
		},
		check: checkPassword,
	}, trials(t, passwordTrials))
}

func checkPassword(tr *trial) {
	t := tr.t
	// The browser that sent the change: its session answers, no 5xx.
	if r := tr.b.get("/notes"); r.code == 200 {
		checkNotes(tr, tr.b, "the changing browser's session")
	}
	nb := newBrowser(t, tr.tg)
	switch r := login(nb, tr.acc.user, newPass); {
	case r.code == 303 && r.loc == "/notes":
		tr.outcome = "changed"
		if otherSession(tr) {
			tr.outcome = "changed, the other device STILL logged in"
		}
		checkNotes(tr, nb, "login with the new password")
		if r := login(newBrowser(t, tr.tg), tr.acc.user, tr.acc.pass); r.code != 401 {
			t.Fatalf("trial %d: the new password logs in, and so does the old one: %s", tr.i, r)
		}
		return
	case r.code == 303 && r.loc == "/unlock":
		t.Fatalf("trial %d: the new password logs in but the vault does not open with it (the order the design forbids)", tr.i)
	case r.code != 401:
		t.Fatalf("trial %d: login with the new password: %s", tr.i, r)
	}
	if tr.acked["changed"] {
		t.Fatalf("trial %d: the change was acknowledged, and the new password does not log in", tr.i)
	}
	ob := newBrowser(t, tr.tg)
	switch r := login(ob, tr.acc.user, tr.acc.pass); {
	case r.code == 303 && r.loc == "/notes":
		tr.outcome = "unchanged"
		checkNotes(tr, ob, "login with the old password")
	case r.code == 303 && r.loc == "/unlock":
		// Cut short between the writes: the vault is on the new password.
		tr.outcome = "half (vault moved, login not): finished by sending the form again"
		expect(t, "unlock with the new password", ob.post("/unlock", url.Values{"password": {newPass}}), 303, "/notes")
		checkNotes(tr, ob, "unlocked with the new password")
		expect(t, "the change sent again", ob.post("/account/password", url.Values{"current": {tr.acc.pass}, "new": {newPass}}), 303, "/account?changed=password")
		expect(t, "login with the new password after it", login(newBrowser(t, tr.tg), tr.acc.user, newPass), 303, "/notes")
	case r.code == 401:
		t.Fatalf("trial %d: neither the old nor the new password logs in", tr.i)
	default:
		t.Fatalf("trial %d: login with the old password: %s", tr.i, r)
	}
}

// otherSession reports whether the other device's session (logged in
// with the password before the operation) is still logged in after the
// restart.
func otherSession(tr *trial) bool {
	tr.t.Helper()
	o := newBrowser(tr.t, tr.tg)
	o.jar.SetCookies(localhost, tr.acc.other)
	r := o.get("/account")
	switch {
	case r.code == 200:
		// The change ends the other sessions before its write as well as
		// after it: a kill anywhere must not leave this.
		tr.t.Fatalf("trial %d: the change stands, and the other device's session was not ended", tr.i)
		return true
	case r.code == 303 && strings.HasPrefix(r.loc, "/login"):
		return false
	}
	tr.t.Fatalf("trial %d: the other device's session: %s", tr.i, r)
	return false
}

// ---- Master-key rotation ----

var (
	reVersion = regexp.MustCompile(`\(version (\d+)\)`)
)

// rotationStep reads the rotate page and says what is next: "locked",
// "outdated", "reseal", "finish" or "done", with the key version shown.
func rotationStep(tr *trial, b *browser) (string, string) {
	tr.t.Helper()
	r := b.get("/account/rotate")
	if r.code != 200 {
		tr.t.Fatalf("trial %d: rotate page: %s", tr.i, r)
	}
	v, _ := find(reVersion, r.body)
	switch {
	case strings.Contains(r.body, "Your notes are locked."):
		return "locked", v
	case strings.Contains(r.body, "this session still holds the old one"):
		return "outdated", v
	case strings.Contains(r.body, `action="/account/rotate/reseal"`):
		return "reseal", v
	case strings.Contains(r.body, `action="/account/rotate/finish"`):
		return "finish", v
	case strings.Contains(r.body, "no older key is kept"):
		return "done", v
	}
	tr.t.Fatalf("trial %d: rotate page not understood:\n%s", tr.i, r.body)
	return "", ""
}

// TestKillRotation kills the app during a master-key rotation's steps
// (the rotation, the notes' re-encryption, the old key's destruction).
// After the restart the password still logs in and unlocks, every note
// reads, and the rotation's page leads, step by step, to its end, where
// every note still reads.
func TestKillRotation(t *testing.T) {
	runScenario(t, scenario{
		name:    "master-key rotation",
		golden:  func(t *testing.T, dir string) *account { return makeGolden(t, dir, 30, nil) },
		prepare: func(tr *trial) {},
		op: func(tr *trial) error {
			r, err := tr.b.tryPost("/account/rotate", url.Values{"password": {tr.acc.pass}})
			if err != nil {
				return err
			}
			expect(tr.t, "rotate", r, 303, "/account/rotate")
			tr.ack("rotate")
			if r, err = tr.b.try("GET", "/account/rotate", "", nil); err != nil {
				return err
			}
			expect(tr.t, "rotate page", r, 200, "")
			if r, err = tr.b.tryPost("/account/rotate/reseal", nil); err != nil {
				return err
			}
			if r.code != 200 || !strings.Contains(r.body, "Done: 30 notes checked, 30 sealed again") {
				tr.t.Fatalf("reseal: %s", r)
			}
			tr.ack("reseal")
			if r, err = tr.b.tryPost("/account/rotate/finish", nil); err != nil {
				return err
			}
			expect(tr.t, "finish", r, 303, "/account/rotate?done=1")
			tr.ack("finish")
			return nil
		},
		check: checkRotation,
	}, trials(t, rotationTrials))
}

func checkRotation(tr *trial) {
	t := tr.t
	// The rotating browser's session: whatever it holds, no 5xx, and the
	// notes it reads are intact.
	if r := tr.b.get("/notes"); r.code == 200 {
		checkNotes(tr, tr.b, "the rotating browser's session")
	}
	nb := newBrowser(t, tr.tg)
	expect(t, "login after the restart", login(nb, tr.acc.user, tr.acc.pass), 303, "/notes")
	checkNotes(tr, nb, "login after the restart")
	first, v0 := rotationStep(tr, nb)
	if tr.acked["finish"] && first != "done" {
		t.Fatalf("trial %d: the rotation was finished, and its page says %q", tr.i, first)
	}
	if tr.acked["rotate"] && v0 == "1" {
		t.Fatalf("trial %d: the rotation was acknowledged, and the key is still version 1", tr.i)
	}
	steps := []string{first}
	step := first
	for range 8 {
		switch step {
		case "done":
			tr.outcome = "found " + first
			if v0 == "1" && first == "done" {
				tr.outcome = "not started"
			}
			checkNotes(tr, nb, "after the rotation's end")
			return
		case "locked":
			expect(t, "unlock", nb.post("/unlock", url.Values{"password": {tr.acc.pass}}), 303, "/notes")
		case "outdated":
			expect(t, "lock", nb.post("/lock", nil), 303, "/unlock")
			expect(t, "unlock", nb.post("/unlock", url.Values{"password": {tr.acc.pass}}), 303, "/notes")
		case "reseal":
			r := nb.post("/account/rotate/reseal", nil)
			if r.code != 200 || !strings.Contains(r.body, "Done: 30 notes checked") {
				t.Fatalf("trial %d: reseal after the restart: %s", tr.i, r)
			}
		case "finish":
			expect(t, "finish after the restart", nb.post("/account/rotate/finish", nil), 303, "/account/rotate?done=1")
		}
		checkNotes(tr, nb, "during the rotation's resumption (after "+step+")")
		step, _ = rotationStep(tr, nb)
		steps = append(steps, step)
	}
	t.Fatalf("trial %d: the rotation did not reach its end: %v", tr.i, steps)
}

// ---- TOTP: recovery-code login, and enrollment ----

// enrollTOTP adds an authenticator to b's (fresh) session and returns its
// secret and the recovery codes.
func enrollTOTP(t *testing.T, b *browser) (string, []string) {
	t.Helper()
	r := b.get("/2fa/enroll")
	expect(t, "enroll page", r, 200, "")
	secret, err1 := find(reSecret, r.body)
	token, err2 := find(reToken, r.body)
	if err1 != nil || err2 != nil {
		t.Fatalf("enroll page not understood:\n%s", r.body)
	}
	secret = strings.ReplaceAll(secret, " ", "")
	r = b.post("/2fa/enroll", url.Values{"token": {token}, "code": {code(t, secret, 0)}, "name": {"Phone"}})
	expect(t, "enroll", r, 200, "")
	var codes []string
	for _, m := range reCode.FindAllStringSubmatch(r.body, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) == 0 {
		t.Fatalf("no recovery codes shown:\n%s", r.body)
	}
	return secret, codes
}

// code is the TOTP code of secret at now + steps periods.
func code(t *testing.T, secret string, steps int) string {
	t.Helper()
	c, err := otptotp.GenerateCodeCustom(secret, time.Now().Add(time.Duration(steps)*30*time.Second),
		otptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestKillRecoveryCodeLogin kills the app while a login is completed with
// a login recovery code. After the restart the code is spent with that
// login done, or still usable with the login pending; never usable again
// once the login was done (nor once acknowledged).
func TestKillRecoveryCodeLogin(t *testing.T) {
	runScenario(t, scenario{
		name: "recovery-code login",
		golden: func(t *testing.T, dir string) *account {
			return makeGolden(t, dir, 3, func(b *browser, acc *account) {
				acc.totpSecret, acc.codes = enrollTOTP(t, b)
				// The trials start from a login pending its second factor.
				p := newBrowser(t, b.tg)
				expect(t, "login", login(p, acc.user, acc.pass), 303, "/login/2fa")
				acc.cookies = p.jar.Cookies(localhost)
			})
		},
		prepare: func(tr *trial) {
			tr.vars["code"] = tr.acc.codes[tr.rng.IntN(len(tr.acc.codes))]
		},
		op: func(tr *trial) error {
			r, err := tr.b.tryPost("/login/recovery", url.Values{"recovery_code": {tr.vars["code"].(string)}})
			if err != nil {
				return err
			}
			expect(tr.t, "recovery-code login", r, 200, "")
			tr.ack("recovered")
			return nil
		},
		check: checkRecovery,
	}, trials(t, recoveryTrials))
}

func checkRecovery(tr *trial) {
	t := tr.t
	used := tr.vars["code"].(string)
	// Where the login that used the code stands.
	var done, gone bool
	switch r := tr.b.get("/notes"); {
	case r.code == 303 && r.loc == "/unlock":
		done = true
	case r.code == 303 && r.loc == "/login/2fa":
		done = false
	case r.code == 303 && strings.HasPrefix(r.loc, "/login"):
		// The browser's session is gone: the login was completed with a
		// re-issued session token (SecondFactorVerified) whose cookie
		// the kill kept from the browser.
		gone = true
	default:
		t.Fatalf("trial %d: the recovering browser's session after the restart: %s", tr.i, r)
	}
	if tr.acked["recovered"] && !done {
		t.Fatalf("trial %d: the recovery-code login was acknowledged, and its session is still pending", tr.i)
	}
	nb := newBrowser(t, tr.tg)
	expect(t, "login", login(nb, tr.acc.user, tr.acc.pass), 303, "/login/2fa")
	r := nb.post("/login/recovery", url.Values{"recovery_code": {used}})
	usable := r.code == 200
	if !usable && r.code != 401 {
		t.Fatalf("trial %d: the code again: %s", tr.i, r)
	}
	switch {
	case done && usable:
		t.Fatalf("trial %d: the recovery code logged in twice (the login before the kill was done, and the code still works)", tr.i)
	case done:
		tr.outcome = "spent, login done"
	case gone && usable:
		t.Fatalf("trial %d: the pending login's session is gone, and its code was not spent", tr.i)
	case usable:
		tr.outcome = "not spent, login pending"
		// Spent now: a third use is refused.
		nb2 := newBrowser(t, tr.tg)
		expect(t, "login", login(nb2, tr.acc.user, tr.acc.pass), 303, "/login/2fa")
		expect(t, "the code a third time", nb2.post("/login/recovery", url.Values{"recovery_code": {used}}), 401, "")
	default:
		// Spent without completing the login that sent it: the design
		// spends the code (UseRecoveryCode) and then marks the session
		// (SecondFactorVerified) in two writes.
		tr.outcome = "spent, login NOT done (code lost)"
		if gone {
			tr.outcome = "spent, login done but its new cookie never reached the browser (code lost)"
		}
		lostCode(tr)
		var other string
		for _, c := range tr.acc.codes {
			if c != used {
				other = c
				break
			}
		}
		expect(t, "another code", nb.post("/login/recovery", url.Values{"recovery_code": {other}}), 200, "")
		usable = true
	}
	b := tr.b
	if usable {
		b = nb
	}
	expect(t, "unlock", b.post("/unlock", url.Values{"password": {tr.acc.pass}}), 303, "/notes")
	checkNotes(tr, b, "after the recovery-code login")
}

// TestKillTOTPConfirm kills the app while it confirms a new authenticator
// (POST /2fa/enroll with its first code). After the restart the user has
// it, and its codes log in (enrolled with the secret confirmed), or has
// none, and logs in with the password alone and can enroll again; never
// an authenticator that login asks for and no code satisfies.
func TestKillTOTPConfirm(t *testing.T) {
	runScenario(t, scenario{
		name:   "TOTP confirmation",
		golden: func(t *testing.T, dir string) *account { return makeGolden(t, dir, 3, nil) },
		prepare: func(tr *trial) {
			r := tr.b.get("/2fa/enroll")
			expect(tr.t, "enroll page", r, 200, "")
			secret, err1 := find(reSecret, r.body)
			token, err2 := find(reToken, r.body)
			if err1 != nil || err2 != nil {
				tr.t.Fatalf("enroll page not understood:\n%s", r.body)
			}
			tr.vars["secret"], tr.vars["token"] = strings.ReplaceAll(secret, " ", ""), token
		},
		op: func(tr *trial) error {
			r, err := tr.b.tryPost("/2fa/enroll", url.Values{"token": {tr.vars["token"].(string)},
				"code": {code(tr.t, tr.vars["secret"].(string), 0)}, "name": {"Phone"}})
			if err != nil {
				return err
			}
			expect(tr.t, "confirm", r, 200, "")
			tr.ack("confirmed")
			return nil
		},
		check: checkTOTP,
	}, trials(t, totpTrials))
}

func checkTOTP(tr *trial) {
	t := tr.t
	secret := tr.vars["secret"].(string)
	nb := newBrowser(t, tr.tg)
	switch r := login(nb, tr.acc.user, tr.acc.pass); {
	case r.code == 303 && r.loc == "/login/2fa":
		tr.outcome = "enrolled"
		if !tr.acked["confirmed"] {
			tr.outcome += ", recovery codes never shown"
		}
		if otherSession(tr) {
			tr.outcome += ", the other device's password-only session STILL logged in"
		}
		// The next step's code: the confirmation spent this one's.
		if r := nb.post("/login/2fa", url.Values{"code": {code(t, secret, 1)}}); r.code != 303 || r.loc != "/unlock?after=2fa" {
			t.Fatalf("trial %d: enrolled, but the confirmed secret's code does not log in: %s", tr.i, r)
		}
		expect(t, "unlock", nb.post("/unlock", url.Values{"password": {tr.acc.pass}}), 303, "/notes")
		checkNotes(tr, nb, "after the TOTP login")
		page := nb.get("/2fa").body
		if n := strings.Count(page, `action="/2fa/remove"`); n != 1 {
			t.Fatalf("trial %d: %d authenticators listed, want 1", tr.i, n)
		}
		// The codes were never said saved (shown or not): the page asks
		// for a new set, so codes lost with the kill are not silent.
		if !strings.Contains(page, `id="codes-unsaved"`) {
			t.Fatalf("trial %d: enrolled (codes shown: %v), and the two-factor page does not ask for new recovery codes", tr.i, tr.acked["confirmed"])
		}
	case r.code == 303 && r.loc == "/notes":
		if tr.acked["confirmed"] {
			t.Fatalf("trial %d: the authenticator was confirmed (codes shown), and login asks for no code", tr.i)
		}
		tr.outcome = "not enrolled"
		checkNotes(tr, nb, "login without TOTP")
		if n := strings.Count(nb.get("/2fa").body, `action="/2fa/remove"`); n != 0 {
			t.Fatalf("trial %d: login asks for no code, and %d authenticators are listed", tr.i, n)
		}
		enrollTOTP(t, nb) // enrolling again works
	default:
		t.Fatalf("trial %d: login after the restart: %s", tr.i, r)
	}
}

// ---- Passkey registration ----

// TestKillPasskeyRegistration kills the app while it registers a passkey
// (with the PRF extension, on an unlocked session: the passkey record,
// then the vault's slot for it). After the restart the passkey signs in,
// is listed, and, if it is listed as able to unlock, unlocks the vault;
// or it is not there at all: it does not sign in, is not listed, and
// registering again works.
func TestKillPasskeyRegistration(t *testing.T) {
	runScenario(t, scenario{
		name:   "passkey registration",
		golden: func(t *testing.T, dir string) *account { return makeGolden(t, dir, 3, nil) },
		prepare: func(tr *trial) {
			r := tr.b.api("/passkey/register/begin", "")
			expect(tr.t, "register begin", r, 200, "")
			k := newSoftKey()
			body, err := k.create(r.body, tr.b.origin())
			if err != nil {
				tr.t.Fatal(err)
			}
			tr.vars["key"], tr.vars["body"] = k, body
		},
		op: func(tr *trial) error {
			r, err := tr.b.try("POST", "/passkey/register/finish?name=Laptop", "application/json", strings.NewReader(tr.vars["body"].(string)))
			if err != nil {
				return err
			}
			if r.code != 200 || !strings.Contains(r.body, `"next":"/passkeys?added=1"`) {
				tr.t.Fatalf("register finish: %s", r)
			}
			tr.ack("registered")
			return nil
		},
		check: checkPasskey,
	}, trials(t, passkeyTrials))
}

// passkeyLogin signs in with k; ok reports success.
func passkeyLogin(tr *trial, b *browser, k *softKey) bool {
	t := tr.t
	r := b.api("/passkey/login/begin", "")
	expect(t, "passkey login begin", r, 200, "")
	ans, err := k.get(r.body, b.origin())
	if err != nil {
		t.Fatal(err)
	}
	r = b.api("/passkey/login/finish", ans)
	switch {
	case r.code == 200 && strings.Contains(r.body, `"next":"/unlock?after=passkey"`):
		return true
	case r.code == 401 && strings.Contains(r.body, "sign-in failed"):
		return false
	}
	t.Fatalf("trial %d: passkey login finish: %s", tr.i, r)
	return false
}

func checkPasskey(tr *trial) {
	t := tr.t
	k := tr.vars["key"].(*softKey)
	nb := newBrowser(t, tr.tg)
	if passkeyLogin(tr, nb, k) {
		other := ""
		if otherSession(tr) {
			other = ", the other device STILL logged in"
		}
		defer func() { tr.outcome += other }()
		list := nb.get("/passkeys")
		if list.code != 200 || !strings.Contains(list.body, "Laptop") {
			t.Fatalf("trial %d: the passkey signs in but is not listed: %s", tr.i, list)
		}
		r := nb.api("/passkey/unlock/begin", "")
		switch {
		case r.code == 200:
			tr.outcome = "registered, unlocks"
			ans, err := k.get(r.body, nb.origin())
			if err != nil {
				t.Fatal(err)
			}
			r = nb.api("/passkey/unlock/finish", ans)
			if r.code != 200 || !strings.Contains(r.body, `"next":"/notes"`) {
				t.Fatalf("trial %d: the passkey is set up to unlock, and does not: %s", tr.i, r)
			}
		case r.code == 409:
			// Registered, its vault slot not written: the passkeys page
			// offers to set up unlocking (PasskeySetUp).
			tr.outcome = "registered, unlock not set up"
			if !strings.Contains(list.body, "unlock") {
				t.Fatalf("trial %d: registered without its vault slot, and the page does not offer to set it up:\n%s", tr.i, list.body)
			}
			expect(t, "unlock with the password", nb.post("/unlock", url.Values{"password": {tr.acc.pass}}), 303, "/notes")
		default:
			t.Fatalf("trial %d: passkey unlock begin: %s", tr.i, r)
		}
		checkNotes(tr, nb, "after the passkey sign-in")
		return
	}
	if tr.acked["registered"] {
		t.Fatalf("trial %d: the registration was acknowledged, and the passkey does not sign in", tr.i)
	}
	tr.outcome = "not registered"
	expect(t, "login", login(nb, tr.acc.user, tr.acc.pass), 303, "/notes")
	checkNotes(tr, nb, "login without the passkey")
	if list := nb.get("/passkeys"); list.code != 200 || strings.Contains(list.body, "Laptop") {
		t.Fatalf("trial %d: the passkey does not sign in but is listed: %s", tr.i, list)
	}
	// Registering it again works (another passkey: this one may have
	// left its credential ID behind).
	r := nb.api("/passkey/register/begin", "")
	expect(t, "register begin again", r, 200, "")
	k2 := newSoftKey()
	body, err := k2.create(r.body, nb.origin())
	if err != nil {
		t.Fatal(err)
	}
	if r := nb.api("/passkey/register/finish?name=Laptop", body); r.code != 200 {
		t.Fatalf("trial %d: registering again: %s", tr.i, r)
	}
	if !passkeyLogin(tr, newBrowser(t, tr.tg), k2) {
		t.Fatalf("trial %d: the passkey registered again does not sign in", tr.i)
	}
}

// ---- Breaking the database, to show the checks fail ----

// lostCode is called when a recovery code was spent by a login that the
// kill left pending: a known limitation, documented in SECURITY.md (the
// code is spent, then the session is marked, in two writes; the user
// keeps the other codes, so it is a code lost, not a way in). It is
// counted and reported; KEYHOLD_KILLTEST_STRICT=1 fails the test there.
func lostCode(tr *trial) {
	if strictEnv() {
		tr.t.Fatalf("trial %d: the recovery code was spent and its login left pending", tr.i)
	}
	tr.t.Logf("trial %d: known limitation (SECURITY.md): the recovery code was spent and its login left pending", tr.i)
}

// breakDB damages the trial's database after the kill (KEYHOLD_KILLTEST_BREAK):
//
//   - notes: flips a byte of one note's sealed body;
//   - password: sets the login hash to the new password's, leaving the
//     vault as it is (the order the password change must never leave);
//   - recovery: puts the golden database's TOTP record back (the code
//     used before the kill is usable again);
//   - passkey: deletes the user's passkeys.
func breakDB(tr *trial) {
	t := tr.t
	db, err := sql.Open("sqlite", "file:"+filepath.Join(tr.dir, dbFile)+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("break %s: %v", tr.breakMode, err)
		}
	}
	switch tr.breakMode {
	case "notes":
		var id string
		var body []byte
		if err := db.QueryRow("SELECT id, body FROM notes ORDER BY id LIMIT 1").Scan(&id, &body); err != nil {
			t.Fatal(err)
		}
		body[len(body)/2] ^= 1
		exec("UPDATE notes SET body = ? WHERE id = ?", body, id)
	case "password":
		h, err := kdf.New(kdf.Config{})
		if err != nil {
			t.Fatal(err)
		}
		hash, err := h.Hash(t.Context(), []byte(newPass))
		if err != nil {
			t.Fatal(err)
		}
		exec("UPDATE users SET password_hash = ?", hash)
	case "recovery":
		gold := filepath.Join(tr.gold, dbFile)
		exec("ATTACH DATABASE ? AS gold", "file:"+gold+"?mode=ro")
		exec("UPDATE keyhold_factors SET data = (SELECT data FROM gold.keyhold_factors g WHERE g.user_id = keyhold_factors.user_id)")
	case "passkey":
		exec("DELETE FROM keyhold_passkey_credentials")
		exec("DELETE FROM keyhold_passkeys")
	default:
		t.Fatalf("unknown %s=%q", breakEnv, tr.breakMode)
	}
}

// strictEnv reports KEYHOLD_KILLTEST_STRICT=1.
func strictEnv() bool { return os.Getenv("KEYHOLD_KILLTEST_STRICT") == "1" }
