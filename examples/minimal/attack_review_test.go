package main

// An outsider's attacks on the minimal program, kept as regression tests
// of its defenses (each named for what it proves).

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func newTestServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(newServer().Handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

// A name typed with other capitals or with spaces around it is the same
// account, not a new empty vault next to it (the login signs up any name
// it does not know): "Alice" logs in to alice's vault and reads her secret,
// and a wrong passphrase for it is refused. A new name outside a-z, 0-9,
// '.', '_', '-' (look-alike letters from other scripts, spaces, control
// characters) is not signed up.
func TestAttackUsernameVariantsAreOneAccount(t *testing.T) {
	t.Parallel()
	base := newTestServer(t)
	alice := newClient(t, base)
	alice.want(http.StatusOK, "", "POST", "/login", login("alice", alicePass))
	alice.want(http.StatusOK, secret, "POST", "/secret", url.Values{"secret": {secret}})
	// Five logins per address: alice's and four with variants of her name.
	for i, variant := range []string{"Alice", " alice", "ALICE\t", "aLiCe "} {
		c := newClient(t, base)
		if i%2 == 0 {
			c.want(http.StatusForbidden, "", "POST", "/login", login(variant, bobPass))
			c.want(http.StatusUnauthorized, "", "GET", "/secret", nil)
		} else {
			c.want(http.StatusOK, "", "POST", "/login", login(variant, alicePass))
			c.want(http.StatusOK, secret, "GET", "/secret", nil)
		}
	}
	other := newTestServer(t)                                                                 // a fresh login allowance
	for _, name := range []string{"аlice", "al ice", "bob\x00", "carol\u200b", "dave/../x"} { // the first a is Cyrillic
		c := newClient(t, other)
		c.want(http.StatusForbidden, "", "POST", "/login", login(name, bobPass))
		c.want(http.StatusUnauthorized, "", "GET", "/secret", nil)
	}
}

// A known name with another passphrase, even one the policy would accept
// for a new account, is refused: a login never replaces a vault, and the
// secret stays readable with the first passphrase.
func TestAttackWrongPassphraseNeverReplacesVault(t *testing.T) {
	t.Parallel()
	base := newTestServer(t)
	alice, mallory := newClient(t, base), newClient(t, base)
	alice.want(http.StatusOK, "", "POST", "/login", login("alice", alicePass))
	alice.want(http.StatusOK, secret, "POST", "/secret", url.Values{"secret": {secret}})
	mallory.want(http.StatusForbidden, "", "POST", "/login", login("alice", bobPass))
	mallory.want(http.StatusUnauthorized, "", "GET", "/secret", nil)
	again := newClient(t, base)
	again.want(http.StatusOK, "", "POST", "/login", login("alice", alicePass))
	again.want(http.StatusOK, secret, "GET", "/secret", nil)
}

// A login, a secret's change and a logout sent from another site are
// refused, also from a sandboxed frame (Origin: null) and from another
// port of 127.0.0.1 (the same site, so the cookie's SameSite=Lax does
// not stop it; Sec-Fetch-Site says same-site); nothing changes.
func TestAttackCrossSitePostsRefused(t *testing.T) {
	t.Parallel()
	base := newTestServer(t)
	alice := newClient(t, base)
	alice.want(http.StatusOK, "", "POST", "/login", login("alice", alicePass))
	alice.want(http.StatusOK, secret, "POST", "/secret", url.Values{"secret": {secret}})
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "null"},
		{"Origin", "http://127.0.0.1:3000"},
	} {
		alice.want(http.StatusForbidden, "", "POST", "/secret", url.Values{"secret": {"evil"}}, h...)
		alice.want(http.StatusForbidden, "", "POST", "/logout", nil, h...)
		newClient(t, base).want(http.StatusForbidden, "", "POST", "/login", login("mallory", bobPass), h...)
	}
	alice.want(http.StatusOK, secret, "GET", "/secret", nil)
}

// The login limit counts by the connection's address, not by headers the
// client sets.
func TestAttackSpoofedForwardingHeadersDoNotResetLoginLimit(t *testing.T) {
	t.Parallel()
	c := newClient(t, newTestServer(t))
	for range 5 {
		c.want(http.StatusForbidden, "", "POST", "/login", login("nobody", "x"))
	}
	for _, h := range [][]string{{"X-Forwarded-For", "203.0.113.7"}, {"X-Real-IP", "203.0.113.8"}, {"Forwarded", "for=203.0.113.9"}} {
		c.want(http.StatusTooManyRequests, "", "POST", "/login", login("nobody", "x"), h...)
	}
}

// An unknown name and a known one with a wrong passphrase get the same
// answer, and the unknown one is not answered much faster (the vault's
// dummy unlock runs the KDF); the fastest of 2 of each, against a bound
// of a quarter.
func TestAttackUnknownNameCostsAWrongPassphrase(t *testing.T) {
	t.Parallel()
	base := newTestServer(t)
	newClient(t, base).want(http.StatusOK, "", "POST", "/login", login("alice", alicePass)) // login 1
	fastest := func(name string) (body string, d time.Duration) {
		for i := range 2 { // logins 2 to 5
			start := time.Now()
			status, b := newClient(t, base).do("POST", "/login", login(name, "wrong but weak"))
			di := time.Since(start)
			if status != http.StatusForbidden {
				t.Fatalf("%s: %d %q", name, status, b)
			}
			if i == 0 || di < d {
				d = di
			}
			body = b
		}
		return body, d
	}
	known, tKnown := fastest("alice")
	unknown, tUnknown := fastest("nobody")
	if known != unknown {
		t.Errorf("answers differ: %q / %q", known, unknown)
	}
	if tUnknown < tKnown/4 {
		t.Errorf("an unknown name: %v, a wrong passphrase: %v", tUnknown, tKnown)
	}
}

// Odd input never panics nor signs anyone up: no fields, an empty name,
// a name of 4,000 bytes, a body over 4 KiB, a JSON body, repeated fields.
func TestAttackOddLoginInputRefused(t *testing.T) {
	t.Parallel()
	base := newTestServer(t)
	c := newClient(t, base)
	c.want(http.StatusForbidden, "", "POST", "/login", url.Values{})
	c.want(http.StatusForbidden, "", "POST", "/login", login("", alicePass))
	c.want(http.StatusForbidden, "", "POST", "/login", login(strings.Repeat("a", 4000), alicePass))
	c.want(http.StatusForbidden, "", "POST", "/login", url.Values{"user": {"alice"}, "passphrase": {alicePass}, "pad": {strings.Repeat("p", 5000)}})
	c.want(http.StatusUnauthorized, "", "GET", "/secret", nil)
	d := newClient(t, newTestServer(t))
	d.want(http.StatusForbidden, "", "POST", "/login", nil, "Content-Type", "application/json")
	d.want(http.StatusOK, "", "POST", "/login", url.Values{"user": {"alice", "mallory"}, "passphrase": {alicePass, bobPass}})
	d.want(http.StatusUnauthorized, "", "GET", "/secret?x=1", nil, "Cookie", "keyhold=AAAA")
}

// Bodies of 1 and 10 MiB are cut at 4 KiB: the login is refused (its
// form unread), a secret is not stored, and the old one stays.
func TestAttackHugeBodiesRefused(t *testing.T) {
	t.Parallel()
	c := newClient(t, newTestServer(t))
	c.want(http.StatusOK, "", "POST", "/login", login("alice", alicePass))
	c.want(http.StatusOK, secret, "POST", "/secret", url.Values{"secret": {secret}})
	for _, n := range []int{1 << 20, 10 << 20} {
		c.want(http.StatusForbidden, "", "POST", "/login", url.Values{"user": {"mallory"}, "passphrase": {strings.Repeat("p", n)}})
		c.want(http.StatusBadRequest, "", "POST", "/secret", url.Values{"secret": {strings.Repeat("s", n)}})
	}
	c.want(http.StatusOK, secret, "GET", "/secret", nil)
}

// A session token planted before the login (another app on a localhost
// port can set cookies for 127.0.0.1) is replaced by the login, and the
// planted one does not reach the victim's secret.
func TestAttackPlantedSessionTokenReplaced(t *testing.T) {
	t.Parallel()
	base := newTestServer(t)
	mallory, victim := newClient(t, base), newClient(t, base)
	mallory.want(http.StatusOK, "", "POST", "/login", login("mallory", bobPass))
	u, _ := url.Parse(base)
	var planted string
	for _, ck := range mallory.hc.Jar.Cookies(u) {
		planted = ck.Value
	}
	if planted == "" {
		t.Fatal("no session cookie")
	}
	victim.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "keyhold", Value: planted, Path: "/"}})
	victim.want(http.StatusOK, "", "POST", "/login", login("alice", alicePass))
	victim.want(http.StatusOK, secret, "POST", "/secret", url.Values{"secret": {secret}})
	for _, ck := range victim.hc.Jar.Cookies(u) {
		if ck.Value == planted {
			t.Fatal("the login kept the planted token")
		}
	}
	mallory.want(http.StatusUnauthorized, "", "GET", "/secret", nil)
}

// DNS rebinding: a page on another name that it points at 127.0.0.1 is
// same-origin with itself (CrossOriginProtection lets its posts through)
// and its requests come from the loopback address like the user's own.
// The program answers only requests named to 127.0.0.1, so the page's
// guesses spend neither the user's login allowance nor sign anyone up.
func TestAttackDNSRebindingRefused(t *testing.T) {
	t.Parallel()
	base := newTestServer(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(base, "http://"), ":")
	for i := range 6 {
		req, err := http.NewRequest("POST", base+"/login", strings.NewReader(login("alice", fmt.Sprint("guess ", i)).Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "rebind.attacker.example:" + port
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("a rebound login: %d", resp.StatusCode)
		}
	}
	newClient(t, base).want(http.StatusOK, "", "POST", "/login", login("alice", alicePass))
}
