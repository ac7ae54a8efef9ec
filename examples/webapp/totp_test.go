package main

import (
	"bytes"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"image/png"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/keyhold/keyhold/kdf"
)

var (
	tokenField    = regexp.MustCompile(`name="token" value="([^"]+)"`)
	secretText    = regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`)
	qrSource      = regexp.MustCompile(`<img id="qr" src="([^"]+)"`)
	authenticator = regexp.MustCompile(`name="id" value="([0-9a-f]{32})"`)
	remaining     = regexp.MustCompile(`<strong id="remaining">(\d+)</strong>`)
	creds         = url.Values{"username": {"ada"}, "password": {password}}
)

// code is what the user's authenticator app shows now.
func (e *testEnv) code(secret string) string {
	e.t.Helper()
	code, err := pqtotp.GenerateCodeCustom(secret, e.clock.Now(), pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

// wrongCode is a well-formed code that is not code.
func wrongCode(code string) string {
	n, _ := strconv.Atoi(code)
	return strconv.Itoa(100000 + (n+1)%900000)
}

// enroll adds an authenticator from the enrollment page, as a user who
// scans the QR code would, and returns its secret and the recovery codes
// shown.
func (e *testEnv) enroll(c *http.Client, name string) (secret string, codes []string) {
	e.t.Helper()
	page := e.get(c, "/2fa/enroll")
	expect(e.t, "enrollment page", page, 200, "")
	token, sec, qr := tokenField.FindStringSubmatch(page.body), secretText.FindStringSubmatch(page.body), qrSource.FindStringSubmatch(page.body)
	if token == nil || sec == nil || qr == nil {
		e.t.Fatalf("enrollment page lacks the token, secret or QR code:\n%s", page.body)
	}
	secret = sec[1]
	// The QR code: a PNG from this origin (the CSP allows no data: URL).
	if !strings.HasPrefix(qr[1], "/2fa/qr?token=") {
		e.t.Fatalf("QR code source %q", qr[1])
	}
	resp, err := c.Get(e.srv.URL + strings.ReplaceAll(qr[1], "&amp;", "&"))
	if err != nil {
		e.t.Fatal(err)
	}
	img, err := png.Decode(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("Cache-Control") != "no-store" {
		e.t.Fatalf("QR code: %d %s %q: %v", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
		e.t.Fatalf("QR code is %v", b)
	}
	r := e.post(c, "/2fa/enroll", url.Values{"token": {token[1]}, "name": {name}, "code": {e.code(secret)}})
	if r.code == 303 && r.location == "/2fa" {
		return secret, nil // not the first authenticator: no new codes
	}
	expect(e.t, "confirm", r, 200, "")
	codes = recoveryKey.FindAllString(r.body, -1)
	if len(codes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 {
		e.t.Fatalf("confirmation shows recovery codes %q, want 10 different ones", codes)
	}
	// The QR code is not served again once the authenticator is in use.
	expect(e.t, "QR code after confirmation", e.get(c, qr[1]), 404, "")
	return secret, codes
}

// loginPending logs in with the password, a few minutes later (the
// per-address login limit), and expects the second-factor page.
func (e *testEnv) loginPending(c *http.Client) {
	e.t.Helper()
	e.clock.Advance(3 * time.Minute)
	expect(e.t, "login, password", e.post(c, "/login", creds), 303, "/login/2fa")
}

func remainingCodes(t *testing.T, page string) int {
	t.Helper()
	m := remaining.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no remaining count on the page:\n%s", page)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestTOTPLogin (issue 12): enroll with the QR code; a login then waits
// for a code, refuses everything else meanwhile, and leaves the vault
// locked until the password is entered again; a code works once; a
// recovery code works once, shows how many are left and warns at 3; new
// recovery codes end the old ones; without an authenticator the login is
// one step again. The database holds no secret.
func TestTOTPLogin(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	if p := e.get(c, "/2fa"); p.code != 200 || !strings.Contains(p.body, "Two-factor authentication is off") {
		t.Fatalf("two-factor page before enrolling: %d\n%s", p.code, p.body)
	}
	secret, codes := e.enroll(c, "Phone")
	p := e.get(c, "/2fa")
	if !strings.Contains(p.body, "<td>Phone</td>") || remainingCodes(t, p.body) != 10 || strings.Contains(p.body, "running low") {
		t.Fatalf("two-factor page after enrolling:\n%s", p.body)
	}
	e.assertNoTOTPSecret(secret)
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")

	// The password alone gives a login that waits for the code.
	e.clock.Advance(30 * time.Second)
	expect(t, "login, password", e.post(c, "/login", creds), 303, "/login/2fa")
	for _, path := range []string{"/", "/notes", "/devices", "/2fa", "/2fa/enroll", "/account", "/unlock", "/reauth", "/recovery-keys"} {
		expect(t, "GET "+path+" while the code is pending", e.get(c, path), 303, "/login/2fa")
	}
	for _, path := range []string{"/notes", "/lock", "/unlock", "/reauth", "/devices/revoke", "/2fa/enroll", "/2fa/remove", "/2fa/recovery-codes", "/account/delete"} {
		expect(t, "POST "+path+" while the code is pending", e.post(c, path, url.Values{"password": {password}, "title": {"t"}}), 303, "/login/2fa")
	}
	page := e.get(c, "/login/2fa")
	expect(t, "second-factor page", page, 200, "")
	if !strings.Contains(page.body, `action="/login/recovery"`) || strings.Contains(page.body, `href="/notes"`) {
		t.Fatalf("second-factor page:\n%s", page.body)
	}
	code := e.code(secret)
	r := e.post(c, "/login/2fa", url.Values{"code": {wrongCode(code)}})
	expect(t, "wrong code", r, 401, "")
	if !strings.Contains(r.body, errCode) {
		t.Fatalf("wrong code page:\n%s", r.body)
	}
	expect(t, "right code", e.post(c, "/login/2fa", url.Values{"code": {code}}), 303, "/unlock?after=2fa")
	// Logged in, but the vault waits for the password.
	expect(t, "notes, locked", e.get(c, "/notes"), 303, "/unlock")
	if p := e.get(c, "/unlock?after=2fa"); !strings.Contains(p.body, "Code accepted") {
		t.Fatalf("unlock page after the code:\n%s", p.body)
	}
	expect(t, "unlock", e.post(c, "/unlock", url.Values{"password": {password}}), 303, "/notes")
	expect(t, "notes", e.get(c, "/notes"), 200, "")

	// The same code, in another login within its 30 seconds, is refused.
	other := e.client()
	expect(t, "login, password", e.post(other, "/login", creds), 303, "/login/2fa")
	expect(t, "replayed code", e.post(other, "/login/2fa", url.Values{"code": {code}}), 401, "")
	if !strings.Contains(e.logs.String(), "msg=authn_mfa_replay ") {
		t.Error("no authn_mfa_replay event in the log")
	}

	// A recovery code instead: it works once, logs out the other devices,
	// and says how many are left.
	r = e.post(other, "/login/recovery", url.Values{"recovery_code": {codes[0]}})
	expect(t, "recovery code", r, 200, "")
	if remainingCodes(t, r.body) != 9 || strings.Contains(r.body, "running low") {
		t.Fatalf("after a recovery code:\n%s", r.body)
	}
	expect(t, "the other device", e.get(c, "/notes"), 303, "/login?ended=1")
	expect(t, "notes, locked", e.get(other, "/notes"), 303, "/unlock")
	expect(t, "the recovery form sent again", e.post(other, "/login/recovery", url.Values{"recovery_code": {codes[1]}}), 303, "/notes")
	third := e.client()
	e.loginPending(third)
	r = e.post(third, "/login/recovery", url.Values{"recovery_code": {codes[0]}})
	expect(t, "used recovery code", r, 401, "")
	// The refusal speaks of the recovery code, with its form open again.
	if !strings.Contains(r.body, errRecoveryCode) || !strings.Contains(r.body, "<details open>") {
		t.Fatalf("refused recovery code page:\n%s", r.body)
	}
	// Typed loosely: lower case, no dashes.
	r = e.post(third, "/login/recovery", url.Values{"recovery_code": {strings.ToLower(strings.ReplaceAll(codes[1], "-", " "))}})
	expect(t, "recovery code typed loosely", r, 200, "")
	if remainingCodes(t, r.body) != 8 {
		t.Fatalf("after a second recovery code:\n%s", r.body)
	}
	var last *http.Client
	for i, left := 2, 7; left >= 3; i, left = i+1, left-1 {
		last = e.client()
		e.loginPending(last)
		r := e.post(last, "/login/recovery", url.Values{"recovery_code": {codes[i]}})
		expect(t, "recovery code", r, 200, "")
		low := strings.Contains(r.body, "running low") && strings.Contains(r.body, `<a href="/2fa">`)
		if remainingCodes(t, r.body) != left || low != (left <= 3) {
			t.Fatalf("%d codes left, warning %v:\n%s", left, low, r.body)
		}
	}
	if p := e.get(last, "/2fa"); remainingCodes(t, p.body) != 3 || !strings.Contains(p.body, "running low") {
		t.Fatalf("two-factor page with 3 codes left:\n%s", p.body)
	}

	// New codes (the login was just now: fresh, and multi-factor by the
	// recovery code); the old ones stop working.
	r = e.post(last, "/2fa/recovery-codes", nil)
	expect(t, "new recovery codes", r, 200, "")
	fresh := recoveryKey.FindAllString(r.body, -1)
	if len(fresh) != 10 || slices.ContainsFunc(fresh, func(s string) bool { return slices.Contains(codes, s) }) {
		t.Fatalf("new recovery codes %q", fresh)
	}
	if p := e.get(last, "/2fa"); remainingCodes(t, p.body) != 10 {
		t.Fatalf("two-factor page after new codes:\n%s", p.body)
	}
	c = e.client()
	e.loginPending(c)
	expect(t, "an old recovery code", e.post(c, "/login/recovery", url.Values{"recovery_code": {codes[9]}}), 401, "")
	expect(t, "a new recovery code", e.post(c, "/login/recovery", url.Values{"recovery_code": {fresh[0]}}), 200, "")

	// A code after a few steps, then remove the authenticator: the
	// password alone logs in, and unlocks, again.
	d := e.client()
	e.loginPending(d)
	expect(t, "a later code", e.post(d, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/unlock?after=2fa")
	settings := e.get(d, "/2fa")
	if strings.Contains(settings.body, "<td>never</td>") {
		t.Errorf("the authenticator's last use is not shown:\n%s", settings.body)
	}
	id := authenticator.FindStringSubmatch(settings.body)
	if id == nil {
		t.Fatalf("no authenticator to remove:\n%s", settings.body)
	}
	expect(t, "remove", e.post(d, "/2fa/remove", url.Values{"id": {id[1]}}), 303, "/2fa")
	again := e.post(d, "/2fa/remove", url.Values{"id": {id[1]}})
	expect(t, "remove again", again, 404, "")
	if !strings.Contains(again.body, "not there any more") || !strings.Contains(again.body, "Two-factor authentication is off") {
		t.Fatalf("removing again:\n%s", again.body)
	}
	expect(t, "logout", e.post(d, "/logout", nil), 303, "/")
	e.clock.Advance(3 * time.Minute)
	e.login(d, "ada")
	expect(t, "notes", e.get(d, "/notes"), 200, "")

	logs := e.logs.String()
	// (A six-digit code could turn up in the log by chance: not checked.)
	for _, s := range append(append([]string{secret}, codes...), fresh...) {
		if strings.Contains(logs, s) {
			t.Fatalf("the log holds %q", s)
		}
	}
	for _, event := range []string{"authn_mfa_enabled", "authn_mfa_disabled", "authn_mfa_success", "authn_recovery_code_used",
		"authn_recovery_codes_created", "webapp.notify_user kind=second_factor_enabled", "webapp.notify_user kind=login_recovery_code_used"} {
		if !strings.Contains(logs, "msg="+event) {
			t.Errorf("no %q event in the log", event)
		}
	}
}

// assertNoTOTPSecret checks that neither the factor records nor any byte
// of the database's files hold the secret (as base32 or raw) or the key
// that seals it, and that the key file is private.
func (e *testEnv) assertNoTOTPSecret(secret string) {
	e.t.Helper()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(raw) < 20 {
		e.t.Fatalf("secret %q: %v", secret, err)
	}
	keyPath := e.dbPath + ".totp-key"
	keyFile, err := os.ReadFile(keyPath)
	if err != nil {
		e.t.Fatal(err)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		e.t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	var key []byte
	for line := range strings.Lines(string(keyFile)) {
		if _, b64, ok := strings.Cut(strings.TrimSpace(line), " "); ok && !strings.HasPrefix(line, "#") {
			key, _ = base64.StdEncoding.DecodeString(b64)
		}
	}
	if len(key) != 32 {
		e.t.Fatalf("key file:\n%s", keyFile)
	}
	forbidden := [][]byte{raw, []byte(secret), key, []byte(base64.StdEncoding.EncodeToString(key))}

	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT data FROM keyhold_factors")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			e.t.Fatal(err)
		}
		n++
		for _, f := range forbidden {
			if bytes.Contains(data, f) {
				e.t.Fatalf("a factor record holds %x", f)
			}
		}
	}
	if rows.Err() != nil || n != 1 {
		e.t.Fatalf("%d factor records: %v", n, rows.Err())
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, f := range forbidden {
			if bytes.Contains(b, f) {
				e.t.Fatalf("the database file%s holds %x", suffix, f)
			}
		}
	}
}

// TestTOTPWrongCodesEndTheLogin (TOT-13): the third wrong code ends the
// pending login, back to the password, and the user hears of it.
func TestTOTPWrongCodesEndTheLogin(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	secret, _ := e.enroll(c, "Phone")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	e.loginPending(c)
	wrong := wrongCode(e.code(secret))
	expect(t, "wrong code 1", e.post(c, "/login/2fa", url.Values{"code": {wrong}}), 401, "")
	expect(t, "malformed code 2", e.post(c, "/login/2fa", url.Values{"code": {"12345x"}}), 401, "")
	expect(t, "wrong code 3", e.post(c, "/login/2fa", url.Values{"code": {wrong}}), 303, "/login?mfa=failed")
	if p := e.get(c, "/login?mfa=failed"); !strings.Contains(p.body, "Too many wrong codes") {
		t.Fatalf("login page after three wrong codes:\n%s", p.body)
	}
	expect(t, "second-factor page after the login ended", e.get(c, "/login/2fa"), 303, "/login")
	expect(t, "a right code after the login ended", e.post(c, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/login")
	if logs := e.logs.String(); !strings.Contains(logs, "webapp.notify_user kind=partial_authentication") ||
		!strings.Contains(logs, "msg=authn_second_factor_fail_max") {
		t.Errorf("the ended login was not told:\n%s", logs)
	}
	// The password again, then the right code. The browser is remembered
	// as the owner's (a device cookie: failure counters of its own) only
	// once both factors are given.
	fresh := e.client()
	e.loginPending(fresh)
	u, _ := url.Parse(e.srv.URL)
	hasDevice := func() bool {
		return slices.ContainsFunc(fresh.Jar.Cookies(u), func(c *http.Cookie) bool { return c.Name == "__Host-keyhold-device" })
	}
	if hasDevice() {
		t.Fatal("the password alone made the browser a known device")
	}
	expect(t, "right code", e.post(fresh, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/unlock?after=2fa")
	if !hasDevice() {
		t.Fatal("the browser is not remembered after both factors")
	}
}

// TestTOTPChangesNeedStepUp: the two-factor changes need a password
// entered within 5 minutes, and return where they were asked from.
func TestTOTPChangesNeedStepUp(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	e.clock.Advance(6 * time.Minute)
	expect(t, "enroll, not fresh", e.get(c, "/2fa/enroll"), 303, "/reauth?next=%2F2fa%2Fenroll")
	p := e.get(c, "/reauth?next=%2F2fa%2Fenroll")
	if !strings.Contains(p.body, `name="next" value="/2fa/enroll"`) || strings.Contains(p.body, `name="code"`) {
		t.Fatalf("step-up page:\n%s", p.body)
	}
	expect(t, "step-up", e.post(c, "/reauth", url.Values{"password": {password}, "next": {"/2fa/enroll"}}), 303, "/2fa/enroll")
	// Only a path on this site.
	expect(t, "step-up to another site", e.post(c, "/reauth", url.Values{"password": {password}, "next": {"//evil.example/"}}), 303, "/devices")
	secret, _ := e.enroll(c, "Phone")

	e.clock.Advance(6 * time.Minute)
	for _, path := range []string{"/2fa/recovery-codes", "/2fa/remove"} {
		expect(t, "POST "+path+", not fresh", e.post(c, path, url.Values{"id": {strings.Repeat("0", 32)}}), 303, "/reauth?next=%2F2fa")
	}
	expect(t, "delete account, not fresh", e.post(c, "/account/delete", url.Values{"confirm": {"ada"}}), 303, "/reauth?next=%2Faccount")
	// The session is multi-factor since the confirming code: the password
	// refreshes it.
	expect(t, "step-up", e.post(c, "/reauth", url.Values{"password": {password}, "next": {"/2fa"}}), 303, "/2fa")
	expect(t, "new codes", e.post(c, "/2fa/recovery-codes", nil), 200, "")

	// A second authenticator gives no new recovery codes.
	second, codes := e.enroll(c, "Tablet")
	if codes != nil || second == secret {
		t.Fatalf("second authenticator: codes %q", codes)
	}
	if p := e.get(c, "/2fa"); len(authenticator.FindAllString(p.body, -1)) != 2 {
		t.Fatalf("two-factor page with two authenticators:\n%s", p.body)
	}
	// Codes of either work at login.
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	e.loginPending(c)
	expect(t, "the second authenticator's code", e.post(c, "/login/2fa", url.Values{"code": {e.code(second)}}), 303, "/unlock?after=2fa")
}

// TestTOTPEnrollmentWrongCode: a wrong code at enrollment shows the same
// QR code again and stores nothing; a setup token is the session user's
// only.
func TestTOTPEnrollmentWrongCode(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	page := e.get(c, "/2fa/enroll")
	token, secret := tokenField.FindStringSubmatch(page.body)[1], secretText.FindStringSubmatch(page.body)[1]
	r := e.post(c, "/2fa/enroll", url.Values{"token": {token}, "name": {"Phone"}, "code": {wrongCode(e.code(secret))}})
	expect(t, "wrong code", r, 401, "")
	if !strings.Contains(r.body, errCode) || secretText.FindStringSubmatch(r.body)[1] != secret || !strings.Contains(r.body, `value="Phone"`) {
		t.Fatalf("enrollment after a wrong code:\n%s", r.body)
	}
	if p := e.get(c, "/2fa"); !strings.Contains(p.body, "Two-factor authentication is off") {
		t.Fatal("a wrong code enrolled the authenticator")
	}
	// Another user's session cannot use the token, nor see its QR code.
	b := e.client()
	e.signup(b, "bob")
	expect(t, "another user's QR code", e.get(b, "/2fa/qr?token="+url.QueryEscape(token)), 404, "")
	expect(t, "another user's token", e.post(b, "/2fa/enroll", url.Values{"token": {token}, "code": {e.code(secret)}}), 400, "")
	// Expired after 10 minutes.
	e.clock.Advance(11 * time.Minute)
	expect(t, "step-up", e.post(c, "/reauth", url.Values{"password": {password}}), 303, "/devices")
	expect(t, "expired token", e.post(c, "/2fa/enroll", url.Values{"token": {token}, "code": {e.code(secret)}}), 400, "")
}

// TestTOTPPendingLoginBadInput: what a client can send to the
// second-factor forms gets a 401 or the end of the login (a 413 for a
// form over the size limit), never a 500.
func TestTOTPPendingLoginBadInput(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	e.enroll(c, "Phone")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	e.loginPending(c)
	for _, path := range []string{"/login/2fa", "/login/recovery"} {
		for _, v := range []string{"", "\x00", "\xff\xfe", strings.Repeat("9", 5000), strings.Repeat("x", 2<<20), "1 2 3 4 5 6"} {
			r := e.post(c, path, url.Values{"code": {v}, "recovery_code": {v}})
			switch {
			case r.code == 401:
			case r.code == 413 && len(v) > 1<<20: // over the request's size limit: the styled page (errorpages.go), no code checked
			case r.code == 303 && r.location == "/login?mfa=failed":
				e.loginPending(c)
			default:
				t.Errorf("POST %s with a %d-byte value: %d %q\n%.300s", path, len(v), r.code, r.location, r.body)
			}
		}
	}
	if strings.Contains(e.logs.String(), "webapp.error") {
		t.Errorf("a user's input was logged as a server error:\n%s", e.logs.String())
	}
}

// TestDeleteAccountRemovesFactors: account deletion removes the user's
// TOTP authenticators and recovery codes with the rest, and her private
// notes (the zero-knowledge vault record and sealed records, tombstones
// included), not another user's; a deletion cut short is finished when
// the app starts again.
func TestDeleteAccountRemovesFactors(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	e.enroll(c, "Phone")
	// Private notes: a vault record, a live record and a tombstone.
	zkWrites := func(c *http.Client, who string) {
		t.Helper()
		for _, w := range []struct {
			method, path string
			body         []byte
			expect       int
		}{{"PUT", "/vault", zkVaultRecord(), 0}, {"PUT", "/records/n-1", zkEnvelope(1), 0}, {"PUT", "/records/n-2", zkEnvelope(1), 0}, {"DELETE", "/records/n-2", nil, 1}} {
			if r := e.zk(c, w.method, w.path, w.body, w.expect); r.code != 200 {
				t.Fatalf("%s: %s %s: %d %s", who, w.method, w.path, r.code, r.body)
			}
		}
		if n := zkBlobs(t, e.dbPath, who); n != 3 {
			t.Fatalf("%s has %d blobs, want 3", who, n)
		}
	}
	zkWrites(c, "ada")
	other := e.client()
	e.signup(other, "cy")
	zkWrites(other, "cy")
	expect(t, "account page", e.get(c, "/account"), 200, "")
	expect(t, "delete, not confirmed", e.post(c, "/account/delete", url.Values{"confirm": {"bob"}}), 400, "")
	expect(t, "delete", e.post(c, "/account/delete", url.Values{"confirm": {"Ada "}}), 303, "/?deleted=1")
	if p := e.get(c, "/?deleted=1"); !strings.Contains(p.body, "has been deleted") {
		t.Fatalf("home page after deletion:\n%s", p.body)
	}
	expect(t, "notes after deletion", e.get(c, "/notes"), 303, "/login")

	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(table string) int {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// What is left is cy's: no factor, a vault, a user, three blobs.
	left := func(when string) {
		t.Helper()
		for table, want := range map[string]int{"keyhold_factors": 0, "keyhold_vaults": 1, "users": 1, "keyhold_blobs": 3} {
			if n := count(table); n != want {
				t.Errorf("%s, %d rows left in %s, want %d", when, n, table, want)
			}
		}
		if n := zkBlobs(t, e.dbPath, "cy"); n != 3 {
			t.Errorf("%s, cy has %d private-notes blobs", when, n)
		}
	}
	left("after the deletion")
	e.clock.Advance(3 * time.Minute)
	expect(t, "login after deletion", e.post(e.client(), "/login", creds), 401, "")

	// A deletion cut short after its mark: the next start finishes it.
	b := e.client()
	e.signup(b, "bob")
	e.enroll(b, "Phone")
	zkWrites(b, "bob")
	if _, err := db.Exec("UPDATE users SET password_hash = ? WHERE username = 'bob'", deletingMark); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(3 * time.Minute)
	expect(t, "login while being deleted", e.post(e.client(), "/login", url.Values{"username": {"bob"}, "password": {password}}), 401, "")
	_, cleanup, err := newApp(config{DBPath: e.dbPath, VaultKDF: kdf.InteractiveParams(), Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := cleanup(); err != nil {
		t.Fatal(err)
	}
	left("after the restart")
	if strings.Contains(e.logs.String(), "webapp.stored_credential_unusable") {
		t.Error("an account being deleted was logged as an unusable hash")
	}
}

// TestTOTPKeyFile: the key file is made once (mode 0600) and read again;
// a second key line opens what the first sealed (rotation); a file that
// others can read, or that holds no valid key, is refused without
// quoting it.
func TestTOTPKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/k"
	ring, err := loadTOTPKeyRing(path)
	if err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	again, err := loadTOTPKeyRing(path)
	if err != nil || again.CurrentKeyID() != ring.CurrentKeyID() {
		t.Fatalf("read again: %v, %q vs %q", err, again.CurrentKeyID(), ring.CurrentKeyID())
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, first) {
		t.Fatal("the key file was rewritten")
	}
	sealed, err := ring.Seal(t.Context(), "u", []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Rotation: a new current key first, the old one kept below it.
	key := bytes.Repeat([]byte{7}, 32)
	rotated := "new-key " + base64.StdEncoding.EncodeToString(key) + "\n" + string(first)
	if err := os.WriteFile(path, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	ring2, err := loadTOTPKeyRing(path)
	if err != nil || ring2.CurrentKeyID() != "new-key" {
		t.Fatalf("rotated ring: %v %q", err, ring2.CurrentKeyID())
	}
	if pt, err := ring2.Open(t.Context(), "u", sealed, nil); err != nil || string(pt) != "secret" || !ring2.Stale(sealed) {
		t.Fatalf("the old key does not open its secret: %v", err)
	}

	bad := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	for name, text := range map[string]string{
		"empty": "# nothing\n", "short key": "k " + bad + "\n", "no ID": base64.StdEncoding.EncodeToString(key) + "\n",
		"twice": "k " + base64.StdEncoding.EncodeToString(key) + "\nk " + base64.StdEncoding.EncodeToString(key) + "\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadTOTPKeyRing(path)
		if err == nil || strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(key)) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := os.WriteFile(path, first, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTOTPKeyRing(path); err == nil || !strings.Contains(err.Error(), "read by others") {
		t.Errorf("a key file others can read: %v", err)
	}
}

// TestTOTPCodesUnsavedUntilSaid: recovery codes are shown once, so until
// the user says they saved the set shown (the codes page's button, which
// names the set), the two-factor page asks for a new set: a codes page
// lost to a crash or a dropped connection is not silent. The row that
// tracks it is made before the codes are stored, so an enrollment cut
// short after the store still warns (killtest checks that with SIGKILL).
// A refused code or a second authenticator (which makes no codes) changes
// nothing; new codes warn again until said saved.
func TestTOTPCodesUnsavedUntilSaid(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	unsaved := func(what string, want bool) {
		t.Helper()
		if got := e.warnsUnsaved(c); got != want {
			t.Fatalf("%s: the two-factor page asks for new codes: %v, want %v", what, got, want)
		}
	}
	page := e.get(c, "/2fa/enroll")
	token, secret := tokenField.FindStringSubmatch(page.body)[1], secretText.FindStringSubmatch(page.body)[1]
	expect(t, "wrong code", e.post(c, "/2fa/enroll", url.Values{"token": {token}, "name": {"Phone"}, "code": {wrongCode(e.code(secret))}}), 401, "")
	unsaved("a refused code (no codes)", false)
	r := e.post(c, "/2fa/enroll", url.Values{"token": {token}, "name": {"Phone"}, "code": {e.code(secret)}})
	expect(t, "confirm", r, 200, "")
	if n := len(recoveryKey.FindAllString(r.body, -1)); n != 10 {
		t.Fatalf("%d codes shown", n)
	}
	unsaved("codes shown, not said saved", true)
	expect(t, "saved", e.post(c, "/2fa/codes-saved", savedFormOf(t, r.body)), 303, "/2fa")
	unsaved("codes said saved", false)
	e.clock.Advance(time.Minute)
	if _, more := e.enroll(c, "Tablet"); more != nil {
		t.Fatalf("a second authenticator made codes %q", more)
	}
	unsaved("a second authenticator (no codes)", false)
	r = e.post(c, "/2fa/recovery-codes", nil)
	expect(t, "new codes", r, 200, "")
	unsaved("new codes, not said saved", true)
	expect(t, "saved", e.post(c, "/2fa/codes-saved", savedFormOf(t, r.body)), 303, "/2fa")
	unsaved("new codes said saved", false)
	// Not logged in: refused, nothing touched.
	expect(t, "saved, logged out", e.post(e.client(), "/2fa/codes-saved", savedFormOf(t, r.body)), 303, "/login")
}
