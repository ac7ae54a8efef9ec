package main

import (
	"bytes"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// This file holds a second outside review's attacks on the webapp's
// second factor (issue 12): what a login pending its code can reach, the
// pages that show secrets, the step-up's return address, and the TOTP key
// file.

// attack2Do sends a request and returns the response's status, Location,
// Cache-Control and body.
func (e *testEnv) attack2Do(c *http.Client, method, path string, form url.Values, header http.Header) (result, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header.Get("Location"), string(b)}, resp.Header.Get("Cache-Control")
}

// A login pending its code reaches neither the QR code of an enrollment
// under way (even with its token) nor anything but the code pages; the
// QR code is its user's only; the code forms refuse cross-site posts
// (CrossOriginProtection).
func TestAttack2PendingLoginAndTheQRCode(t *testing.T) {
	e := newEnv(t, true)
	owner := e.client()
	e.signup(owner, "ada")
	secret, _ := e.enroll(owner, "Phone")
	// The owner starts adding a second authenticator (fresh and
	// multi-factor since the first one's code): a setup token exists.
	page := e.get(owner, "/2fa/enroll")
	expect(t, "second enrollment", page, 200, "")
	qr := qrSource.FindStringSubmatch(page.body)
	if qr == nil {
		t.Fatalf("no QR code:\n%s", page.body)
	}
	qrPath := html.UnescapeString(qr[1])
	expect(t, "the owner's QR code", e.get(owner, qrPath), 200, "")
	expect(t, "a tampered token", e.get(owner, qrPath+"A"), 404, "")

	// Someone with the password (and the token, leaked from a log):
	// their login waits for the code.
	attacker := e.client()
	e.loginPending(attacker)
	expect(t, "QR code from a pending login", e.get(attacker, qrPath), 303, "/login/2fa")
	expect(t, "logout from a pending login", e.post(attacker, "/logout", nil), 303, "/")
	e.loginPending(attacker)
	for _, h := range []http.Header{{"Sec-Fetch-Site": {"cross-site"}}, {"Origin": {"https://evil.example"}}} {
		for _, path := range []string{"/login/2fa", "/login/recovery"} {
			r, _ := e.attack2Do(attacker, "POST", path, url.Values{"code": {e.code(secret)}, "recovery_code": {"x"}}, h)
			if r.code != http.StatusForbidden {
				t.Fatalf("cross-site POST %s (%v): %d %q", path, h, r.code, r.location)
			}
		}
	}
	// The cross-site posts spent nothing: the login still waits, and the
	// right code completes it.
	expect(t, "code page", e.get(attacker, "/login/2fa"), 200, "")
	expect(t, "right code", e.post(attacker, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/unlock?after=2fa")

	// Another user's complete session, with the owner's token.
	bob := e.client()
	e.clock.Advance(3 * time.Minute)
	e.signup(bob, "bob")
	expect(t, "another user's QR code", e.get(bob, qrPath), 404, "")
}

// The pages that show a TOTP secret or recovery codes are never cached
// (Cache-Control: no-store, set by the session middleware on every
// logged-in response), and sending the confirmation form again (refresh,
// back) shows no codes: the enrollment is done.
func TestAttack2SecretPagesNotCachedNorShownAgain(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	page, cc := e.attack2Do(c, "GET", "/2fa/enroll", nil, nil)
	if page.code != 200 || cc != "no-store" {
		t.Fatalf("enrollment page: %d, Cache-Control %q", page.code, cc)
	}
	token, secret := tokenField.FindStringSubmatch(page.body)[1], secretText.FindStringSubmatch(page.body)[1]
	form := url.Values{"token": {token}, "name": {"Phone"}, "code": {wrongCode(e.code(secret))}}
	if r, cc := e.attack2Do(c, "POST", "/2fa/enroll", form, nil); r.code != 401 || cc != "no-store" || !strings.Contains(r.body, secret) {
		t.Fatalf("enrollment after a wrong code (shows the secret again): %d, Cache-Control %q", r.code, cc)
	}
	form.Set("code", e.code(secret))
	r, cc := e.attack2Do(c, "POST", "/2fa/enroll", form, nil)
	codes := recoveryKey.FindAllString(r.body, -1)
	if r.code != 200 || cc != "no-store" || len(codes) != 10 {
		t.Fatalf("confirmation: %d, Cache-Control %q, %d codes", r.code, cc, len(codes))
	}
	again, _ := e.attack2Do(c, "POST", "/2fa/enroll", form, nil)
	expect(t, "confirmation sent again", again, 303, "/2fa")
	if recoveryKey.MatchString(again.body) {
		t.Fatal("the confirmation sent again shows recovery codes")
	}
	if p := e.get(c, "/2fa"); recoveryKey.MatchString(p.body) || strings.Contains(p.body, secret) {
		t.Fatal("the two-factor page shows a code or the secret")
	}
	if r, cc := e.attack2Do(c, "POST", "/2fa/recovery-codes", nil, nil); r.code != 200 || cc != "no-store" {
		t.Fatalf("new codes: %d, Cache-Control %q", r.code, cc)
	}
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	e.loginPending(c)
	if r, cc := e.attack2Do(c, "GET", "/login/2fa", nil, nil); r.code != 200 || cc != "no-store" {
		t.Fatalf("code page: %d, Cache-Control %q", r.code, cc)
	}
}

// The step-up's return address stays on this site, whatever next= says
// (SafeRedirect): the page's hidden field and the redirect after the
// password.
func TestAttack2ReauthNextStaysOnSite(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	hostile := []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "/%2F%2Fevil.example", "/%5Cevil.example",
		"/\t/evil.example", "javascript:alert(1)", "/..//evil.example", "/%2e%2e//evil.example", "http:/evil.example", " //evil.example",
		"/" + strings.Repeat("a", 3000)}
	for _, next := range hostile {
		p := e.get(c, "/reauth?next="+url.QueryEscape(next))
		if p.code != 200 || !strings.Contains(p.body, `name="next" value="/devices"`) {
			t.Errorf("step-up page for next=%q: %d, field not /devices", next, p.code)
		}
	}
	for _, next := range hostile[:3] {
		e.clock.Advance(time.Minute) // the step-up's limits
		expect(t, "step-up to "+next, e.post(c, "/reauth", url.Values{"password": {password}, "next": {next}}), 303, "/devices")
	}
}

// A hostile TOTP key file is refused, with an error that quotes no key:
// over 64 KiB, bad base64, a key of the wrong size, a tab for the space,
// a key ID that is not printable ASCII or too long, an ID twice, only
// comments, a file others can read or write (also through a symlink), a
// directory. A file that is right is read (the control).
func TestAttack2HostileKeyFiles(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{9}, 32)
	k64 := base64.StdEncoding.EncodeToString(key)
	good := "# header\nk1 " + k64 + "\n"
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if ring, err := loadTOTPKeyRing(write("good", good, 0o600)); err != nil || ring.CurrentKeyID() != "k1" {
		t.Fatalf("control: %v", err)
	}
	// Over 64 KiB, a right key first.
	if _, err := loadTOTPKeyRing(write("huge", good+"#"+strings.Repeat("x", maxTOTPKeyFile)+"\n", 0o600)); err == nil {
		t.Error("a key file over 64 KiB was read")
	}
	cases := map[string]string{
		"bad base64":          "k1 " + k64[:20] + "!!" + k64[22:] + "\n",
		"url base64":          "k1 " + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))) + "\n",
		"33 bytes":            "k1 " + base64.StdEncoding.EncodeToString(append(key, 1)) + "\n",
		"tab":                 "k1\t" + k64 + "\n",
		"non-ASCII ID":        "clé " + k64 + "\n",
		"long ID":             strings.Repeat("k", 300) + " " + k64 + "\n",
		"ID twice":            good + "k1 " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32)) + "\n",
		"comments only":       "# k1 " + k64 + "\n",
		"empty":               "",
		"trailing garbage":    "k1 " + k64 + " extra\n",
		"NUL in line":         "k1 " + k64 + "\x00\n",
		"key line after junk": "junk\nk1 " + k64 + "\n",
	}
	for name, text := range cases {
		_, err := loadTOTPKeyRing(write(strings.ReplaceAll(name, " ", "-"), text, 0o600))
		if err == nil {
			t.Errorf("%s: read", name)
		} else if strings.Contains(err.Error(), k64) || strings.Contains(err.Error(), k64[:20]) {
			t.Errorf("%s: the error quotes the key: %v", name, err)
		}
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o602, 0o620, 0o660, 0o666} {
		if _, err := loadTOTPKeyRing(write("mode", good, mode)); err == nil {
			t.Errorf("mode %v: read", mode)
		}
	}
	open := write("open", good, 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(open, link); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTOTPKeyRing(link); err == nil {
		t.Error("a symlink to a file others can read: read")
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTOTPKeyRing(sub); err == nil {
		t.Error("a directory: read")
	}
}
