package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/kdf"
)

// Issue 16: attacks on the web app, each a test. The timing and the
// message of a failed login: attack16_timing_test.go; hostile input at
// every route: attack16_input_test.go.

// cookieOf returns the value of c's cookie name for the test server, or "".
func cookieOf(e *testEnv, c *http.Client, name string) string {
	u, _ := url.Parse(e.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// withCookie returns a new browser holding only the cookie name=value.
func withCookie(e *testEnv, name, value string) *http.Client {
	c := e.client()
	u, _ := url.Parse(e.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true}})
	return c
}

// TestAttack16SessionFixation: no page sets a session cookie before
// login; a cookie planted in the victim's browser (a made-up token, or
// the attacker's own live session, under the strict name or tossed under
// the plain name) never becomes the victim's session: login issues a new
// token and ends the planted one, so the attacker's copy opens nothing of
// the victim's; a login waiting for its code gets a new token again with
// the code, and the waiting one then opens nothing.
func TestAttack16SessionFixation(t *testing.T) {
	e := newEnv(t, true)
	const name = "__Host-keyhold"
	owner := e.client()
	e.signup(owner, "ada")
	expect(t, "note", e.post(owner, "/notes", url.Values{"title": {"ada's plans"}, "body": {"x"}}), 303, "/notes")
	expect(t, "logout", e.post(owner, "/logout", nil), 303, "/")
	mallory := e.client()
	e.clock.Advance(time.Hour) // the sign-up limit (3 per hour per address)
	e.signup(mallory, "mallory")
	malloryToken := cookieOf(e, mallory, name)

	// Nothing before login sets a session cookie.
	fresh := e.client()
	for _, path := range []string{"/", "/login", "/signup", "/forgot", "/notes"} {
		e.get(fresh, path)
	}
	if v := cookieOf(e, fresh, name); v != "" {
		t.Fatalf("a page before login set a session cookie")
	}

	b := make([]byte, 32)
	rand.Read(b)
	planted := map[string]string{
		"made-up token":           base64.RawURLEncoding.EncodeToString(b),
		"the attacker's live one": malloryToken,
	}
	for what, token := range planted {
		e.clock.Advance(3 * time.Minute) // the login limit
		victim := withCookie(e, name, token)
		e.login(victim, "ada")
		got := cookieOf(e, victim, name)
		if got == "" || got == token {
			t.Fatalf("%s: login kept the planted cookie", what)
		}
		// The attacker's copy opens nothing of ada's.
		r := e.get(withCookie(e, name, token), "/notes")
		if r.code == 200 || strings.Contains(r.body, "ada&#39;s plans") {
			t.Fatalf("%s: the planted token after the victim's login: %d\n%.300s", what, r.code, r.body)
		}
		expect(t, what+": the victim's session", e.get(victim, "/notes"), 200, "")
	}
	// Mallory's live session, tossed under the plain name (which a
	// sibling host can set, unlike a __Host- cookie), is not read over
	// TLS: the victim is not logged in to mallory's account.
	mallory = e.client()
	e.clock.Advance(3 * time.Minute)
	e.login(mallory, "mallory")
	tossed := withCookie(e, "keyhold", cookieOf(e, mallory, name))
	if r := e.get(tossed, "/notes"); r.code != 303 || !strings.HasPrefix(r.location, "/login") {
		t.Fatalf("tossed plain-name cookie: %d %q", r.code, r.location)
	}

	// A login waiting for its second factor: the code re-issues the token.
	e.clock.Advance(3 * time.Minute)
	e.login(owner, "ada")
	secret, _ := e.enroll(owner, "Phone")
	expect(t, "logout", e.post(owner, "/logout", nil), 303, "/")
	e.clock.Advance(3 * time.Minute)
	e.loginPending(owner)
	pending := cookieOf(e, owner, name)
	expect(t, "right code", e.post(owner, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/unlock?after=2fa")
	if now := cookieOf(e, owner, name); now == "" || now == pending {
		t.Fatal("the second factor kept the pending login's token")
	}
	for _, path := range []string{"/notes", "/login/2fa", "/unlock"} {
		if r := e.get(withCookie(e, name, pending), path); r.code == 200 {
			t.Errorf("the pending login's old token opens %s", path)
		}
	}
}

// TestAttack16ForgedForwardingHeaders: from a peer that is not a trusted
// proxy, X-Forwarded-For, Forwarded, X-Real-IP, True-Client-IP and
// CF-Connecting-IP, rotated at every request, change nothing: the login
// limit counts the peer (the sixth login in 15 minutes is refused), the
// lockout counts the peer (ten failures lock it whatever the headers
// said), and the audit log and the devices page show the peer, never a
// forged address. Behind a trusted proxy (-trusted-proxy 127.0.0.1),
// only the hop the proxy added counts: the client's own left-hand hops
// and X-Real-IP, rotated, do not escape the limit, and the log names the
// proxy's hop.
func TestAttack16ForgedForwardingHeaders(t *testing.T) {
	forged := func(i int) http.Header {
		a := fmt.Sprintf("203.0.113.%d", 10+i)
		return http.Header{"X-Forwarded-For": {a}, "Forwarded": {"for=" + a}, "X-Real-Ip": {a},
			"True-Client-Ip": {a}, "Cf-Connecting-Ip": {a}}
	}
	wrong := url.Values{"username": {"ada"}, "password": {"not the password at all"}}

	t.Run("untrusted peer", func(t *testing.T) {
		e := newEnv(t, true)
		c := e.client()
		e.signup(c, "ada")
		expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
		e.login(c, "ada") // the device cookie
		expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
		e.clock.Advance(15 * time.Minute)
		for i := range 5 {
			expect(t, fmt.Sprint("wrong login ", i), e.do(e.client(), "POST", "/login", wrong, forged(i)), 401, "")
		}
		expect(t, "sixth login, forged headers", e.do(e.client(), "POST", "/login", wrong, forged(5)), 429, "")
		// Five more failures (10 in all) with new forged addresses lock
		// the peer, not the addresses claimed.
		e.clock.Advance(15 * time.Minute)
		for i := range 5 {
			expect(t, fmt.Sprint("wrong login ", 5+i), e.do(e.client(), "POST", "/login", wrong, forged(10+i)), 401, "")
		}
		e.clock.Advance(15 * time.Minute)
		locked := e.do(e.client(), "POST", "/login", url.Values{"username": {"ada"}, "password": {password}}, forged(20))
		expect(t, "right password from the locked peer, another forged address", locked, 401, "")
		// The devices page of a login made with forged headers (from a
		// recognised device: its own counter) shows the peer.
		r := e.do(c, "POST", "/login", url.Values{"username": {"ada"}, "password": {password}}, forged(30))
		expect(t, "owner's device", r, 303, "/notes")
		if p := e.get(c, "/devices").body; !strings.Contains(p, "127.0.0.1") || strings.Contains(p, "203.0.113.") {
			t.Errorf("the devices page does not show the peer, or shows a forged address:\n%s", p)
		}
		logs := e.logs.String()
		if strings.Contains(logs, "203.0.113.") || !strings.Contains(logs, "ip=127.0.0.1") {
			t.Errorf("the audit log took a forged address, or lacks the peer's")
		}
	})

	t.Run("trusted proxy", func(t *testing.T) {
		e := newEnvWith(t, true, config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		// The client 192.0.2.7 sends forged headers; the proxy appends
		// the address it saw to X-Forwarded-For (and to Forwarded, when it
		// writes that one) and passes X-Real-IP as it came.
		via := func(i int, useForwarded bool) http.Header {
			h := forged(i)
			if useForwarded {
				h.Set("Forwarded", h.Get("Forwarded")+", for=192.0.2.7")
				h.Del("X-Forwarded-For")
			} else {
				h.Set("X-Forwarded-For", h.Get("X-Forwarded-For")+", 192.0.2.7")
				h.Del("Forwarded")
			}
			return h
		}
		for i := range 5 {
			expect(t, fmt.Sprint("wrong login ", i), e.do(e.client(), "POST", "/login", wrong, via(i, i%2 == 1)), 401, "")
		}
		expect(t, "sixth login from 192.0.2.7", e.do(e.client(), "POST", "/login", wrong, via(5, false)), 429, "")
		expect(t, "sixth login from 192.0.2.7 (Forwarded)", e.do(e.client(), "POST", "/login", wrong, via(6, true)), 429, "")
		expect(t, "another client", e.do(e.client(), "POST", "/login", wrong, http.Header{"X-Forwarded-For": {"192.0.2.8"}}), 401, "")
		logs := e.logs.String()
		if strings.Contains(logs, "203.0.113.") || !strings.Contains(logs, "ip=192.0.2.7") {
			t.Errorf("the audit log took a forged address, or lacks the proxy's hop")
		}
	})
}

// TestAttack16LockoutDoS (ratelimit's "Lockout without denial of
// service", as README and SECURITY.md describe it): an attacker's ten
// wrong passwords on ada's name lock only the attacker's address; ada
// logs in from another address on a new device, and on her recognised
// device from the attacker's own address; her open session is untouched.
// The attacker cannot escape the lock with a made-up device cookie, nor
// with a device cookie earned on an account of their own. The lock ends
// by itself (an hour). In long mode, ten addresses' hundred failures lock
// the account for new devices (the documented cost) but not for her
// recognised device.
func TestAttack16LockoutDoS(t *testing.T) {
	e := newEnv(t, true)
	owner := e.client()
	e.signup(owner, "ada")
	var n atomic.Int64
	direct := func(addr, name, pw string, cookies []*http.Cookie) *httptest.ResponseRecorder {
		if n.Add(1)%5 == 0 {
			e.clock.Advance(3 * time.Minute) // the per-address login limit
		}
		r, _ := e.direct("POST", "/login", addr, url.Values{"username": {name}, "password": {pw}}, cookies)
		return r
	}
	// ada's recognised device: a login's device cookie.
	r := direct("10.1.1.1", "ada", password, nil)
	if r.Code != http.StatusSeeOther {
		t.Fatalf("ada's login: %d", r.Code)
	}
	var device []*http.Cookie
	for _, ck := range r.Result().Cookies() {
		if strings.Contains(ck.Name, "device") {
			device = append(device, ck)
		}
	}
	if len(device) != 1 {
		t.Fatalf("ada's login set device cookies %v", r.Result().Cookies())
	}
	// mallory has an account of her own, and its device cookie.
	e.clock.Advance(time.Hour)
	e.signup(e.client(), "mallory")
	var malloryDevice []*http.Cookie
	for _, ck := range direct("10.66.0.1", "mallory", password, nil).Result().Cookies() {
		if strings.Contains(ck.Name, "device") {
			malloryDevice = append(malloryDevice, ck)
		}
	}

	const attacker = "10.66.0.1"
	e.clock.Advance(3 * time.Minute)
	e.login(owner, "ada") // ada's open session
	expect(t, "ada's open session", e.get(owner, "/notes"), 200, "")
	for range 10 {
		e.clock.Advance(3 * time.Minute)
		e.get(owner, "/notes") // ada is active meanwhile (sessions end when idle)
		if r := direct(attacker, "ada", "a wrong guess, again", nil); r.Code != 401 {
			t.Fatalf("wrong guess: %d", r.Code)
		}
	}
	e.clock.Advance(15 * time.Minute)
	if r := direct(attacker, "ada", password, nil); r.Code != 401 {
		t.Fatalf("the attacker's address is not locked: %d", r.Code)
	}
	b := make([]byte, 48)
	rand.Read(b)
	made := []*http.Cookie{{Name: device[0].Name, Value: base64.RawURLEncoding.EncodeToString(b)}}
	for what, cookies := range map[string][]*http.Cookie{"a made-up device cookie": made, "mallory's own device cookie": renamed(malloryDevice, device[0].Name)} {
		if r := direct(attacker, "ada", password, cookies); r.Code != 401 {
			t.Errorf("%s escapes the lock: %d", what, r.Code)
		}
	}
	if r := direct("10.2.2.2", "ada", password, nil); r.Code != http.StatusSeeOther {
		t.Errorf("ada on a new device, another address: %d", r.Code)
	}
	if r := direct(attacker, "ada", password, device); r.Code != http.StatusSeeOther {
		t.Errorf("ada on her recognised device, from the attacker's address: %d", r.Code)
	}
	if r := e.get(owner, "/notes"); r.code != 200 && r.location != "/unlock" { // the vault locks itself after a while; the session stays
		t.Errorf("ada's open session after the attack: %d %q", r.code, r.location)
	}
	e.clock.Advance(61 * time.Minute)
	if r := direct(attacker, "ada", password, nil); r.Code != http.StatusSeeOther {
		t.Errorf("the lock did not end by itself: %d", r.Code)
	}

	if !testenv.Long() {
		return
	}
	// Distributed: 10 more addresses, 10 failures each, 3 minutes apart
	// (the per-address login limit, 5 per 15 minutes, would answer 429 to
	// closer ones, which no lockout counts).
	e.clock.Advance(25 * time.Hour)
	for a := range 10 {
		for range 10 {
			e.clock.Advance(3 * time.Minute)
			direct(fmt.Sprintf("10.70.0.%d", a+1), "ada", "a wrong guess, again", nil)
		}
	}
	if r := direct("10.3.3.3", "ada", password, nil); r.Code != 401 {
		t.Errorf("after 100 failures from 10 addresses, a new device logs in: %d (the documented account-wide lock)", r.Code)
	}
	if r := direct("10.3.3.3", "ada", password, device); r.Code != http.StatusSeeOther {
		t.Errorf("ada's recognised device during the account-wide lock: %d", r.Code)
	}
}

// renamed returns copies of cookies under the name given.
func renamed(cookies []*http.Cookie, name string) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range cookies {
		out = append(out, &http.Cookie{Name: name, Value: c.Value})
	}
	return out
}

// TestAttack16OtherFlowsAlike (user enumeration by message, beyond
// login): "Forgot your password?" answers an unknown user and a known
// user's wrong key with the same status, headers and page, cookies none;
// a passkey sign-in names no account when it begins, and answers an
// unknown passkey and a known user's passkey with a bad signature alike;
// sign-up, which must say that a name is taken (README), is limited to 3
// per hour per address, forged X-Forwarded-For or not, and the refusal
// says nothing of the name.
func TestAttack16OtherFlowsAlike(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	keys := e.signup(c, "ada")
	pk := e.addSoftPasskey(c, "Key")
	otherKeys := e.signup(e.client(), "bob")

	unknown, _ := e.direct("POST", "/forgot", "10.5.0.1", forgotForm("nobody", keys[0], newPassword), nil)
	wrongKey, _ := e.direct("POST", "/forgot", "10.5.0.2", forgotForm("ada", otherKeys[0], newPassword), nil)
	sameAnswerAs(t, "forgot: unknown user vs wrong key", unknown, "nobody", wrongKey, "ada")

	anon := e.client()
	o := parseOptions(t, "login begin", e.api(anon, "/passkey/login/begin", "", ""))
	if s := string(o.PublicKey.AllowCredentials); s != "" && s != "null" && s != "[]" {
		t.Errorf("passkey sign-in begins with credentials listed: %s", s)
	}
	unknownPK := e.api(anon, "/passkey/login/finish", e.fakeAssertion(o.PublicKey.Challenge), "")
	o = parseOptions(t, "login begin", e.api(anon, "/passkey/login/begin", "", ""))
	badSig := e.api(anon, "/passkey/login/finish", pk.assert(o.PublicKey.Challenge, true), "")
	if unknownPK.code != badSig.code || unknownPK.raw != badSig.raw || unknownPK.ct != badSig.ct || badSig.code != 401 {
		t.Errorf("passkey sign-in: unknown passkey %d %s, known passkey with a bad signature %d %s", unknownPK.code, unknownPK.raw, badSig.code, badSig.raw)
	}

	// Sign-up: the address already spent 2 of its 3 per hour (ada, bob).
	e.clock.Advance(time.Hour)
	xff := func(i int) http.Header { return http.Header{"X-Forwarded-For": {fmt.Sprintf("203.0.113.%d", i)}} }
	for i := range 3 {
		r := e.do(e.client(), "POST", "/signup", url.Values{"username": {"ada"}, "password": {password}}, xff(i))
		expect(t, "taken name", r, 409, "")
	}
	r := e.do(e.client(), "POST", "/signup", url.Values{"username": {"ada"}, "password": {password}}, xff(9))
	expect(t, "fourth sign-up in the hour", r, 429, "")
	if strings.Contains(r.body, "taken") {
		t.Errorf("the refused sign-up tells the name is taken")
	}
}

// TestAttack16LoginFloodOneNameFairShare (one account flooding the KDF):
// with one KDF run at a time and a queue of four, held by the test, six
// concurrent logins on ada's name (from six addresses) hold a bounded
// share of the places (kdf.WithGateKey "account:"+name: a quarter of the
// queue per name; the others are refused at once, 503), and the other
// user bob's login, sent while the flood waits, is not refused: it waits
// and succeeds once the gate moves. Without the per-name key, the flood
// takes all four places and bob is refused at once.
func TestAttack16LoginFloodOneNameFairShare(t *testing.T) {
	gate, err := kdf.NewGate(kdf.GateConfig{MaxConcurrent: 1, MaxWaiting: 4})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, true, config{Gate: gate})
	e.signup(e.client(), "ada")
	e.signup(e.client(), "bob")
	checks := loginChecks(t)

	held, release := make(chan struct{}), make(chan struct{})
	go gate.Run(t.Context(), 1024, func() { close(held); <-release })
	<-held
	const flood = 6
	codes := make(chan int, flood)
	for i := range flood {
		go func() {
			r, _ := e.direct("POST", "/login", fmt.Sprintf("10.9.0.%d", i+1), url.Values{"username": {"ada"}, "password": {"a wrong guess " + fmt.Sprint(i)}}, nil)
			codes <- r.Code
		}()
	}
	// The flood settles: its logins reach their check and wait at the
	// held gate, or are refused at once (503), or wait before the store
	// for a login of the same name to end.
	waitChecks(t, checks, 1)
	time.Sleep(200 * time.Millisecond)
	busy := 0
	for len(codes) > 0 {
		if code := <-codes; code != http.StatusServiceUnavailable {
			t.Fatalf("a flooding login answered %d while the gate was held", code)
		}
		busy++
	}
	bob := make(chan int, 1)
	go func() {
		r, _ := e.direct("POST", "/login", "10.9.1.1", url.Values{"username": {"bob"}, "password": {password}}, nil)
		bob <- r.Code
	}()
	time.Sleep(200 * time.Millisecond) // to the gate: waiting, or refused at once
	select {
	case code := <-bob:
		t.Fatalf("bob's login during the flood answered %d before the gate moved (%d of %d flooding logins queued)", code, flood-busy, flood)
	default:
	}
	close(release)
	if code := <-bob; code != http.StatusSeeOther {
		t.Errorf("bob's login after the flood: %d", code)
	}
	t.Logf("of %d flooding logins on one name, %d were refused at once while the gate was held", flood, busy)
	for range flood - busy {
		if code := <-codes; code != http.StatusUnauthorized && code != http.StatusServiceUnavailable {
			t.Errorf("a flooding login: %d", code)
		}
	}
}

// waitChecks waits until n more password checks have begun.
func waitChecks(t *testing.T, checks func() []string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for seen := 0; seen < n; seen += len(checks()) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d password checks began", seen, n)
		}
		time.Sleep(time.Millisecond)
	}
}
