package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/passkey"
)

// apiResult is an answer of a JSON endpoint.
type apiResult struct {
	code int
	ans  apiAnswer
	raw  string
	ct   string
}

// api POSTs body to one of the JSON endpoints, at the app's origin
// (Host: localhost:PORT) unless host says otherwise, as the passkey
// client's fetch does (same-origin: no Origin header is needed).
func (e *testEnv) api(c *http.Client, path, body, host string) apiResult {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if host == "" {
		u, _ := url.Parse(e.origin)
		host = u.Host
	}
	req.Host = host
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// The cookie jar keys cookies by the Host header: keep them under the
	// server's URL, as e.get and e.post do.
	srvURL, _ := url.Parse(e.srv.URL)
	for _, ck := range c.Jar.Cookies(srvURL) {
		req.AddCookie(ck)
	}
	noJar := *c
	noJar.Jar = nil
	resp, err := noJar.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	c.Jar.SetCookies(srvURL, resp.Cookies())
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := apiResult{code: resp.StatusCode, raw: string(b), ct: resp.Header.Get("Content-Type")}
	if r.ct == "application/json" {
		_ = json.Unmarshal(b, &r.ans)
	}
	return r
}

func expectAPI(t *testing.T, what string, got apiResult, code int, errText, next string) {
	t.Helper()
	if got.code != code || got.ct != "application/json" || !strings.Contains(got.ans.Error, errText) || got.ans.Next != next {
		t.Fatalf("%s: got %d %s %s, want %d error containing %q next %q", what, got.code, got.ct, got.raw, code, errText, next)
	}
}

// options are the parts of a Begin call's answer the tests look at.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			Name string `json:"name"`
		} `json:"user"`
		AuthenticatorSelection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		UserVerification string          `json:"userVerification"`
		AllowCredentials json.RawMessage `json:"allowCredentials"`
		Extensions       map[string]any  `json:"extensions"`
	} `json:"publicKey"`
}

func parseOptions(t *testing.T, what string, r apiResult) options {
	t.Helper()
	var o options
	if r.code != 200 || r.ct != "application/json" || json.Unmarshal([]byte(r.raw), &o) != nil || o.PublicKey.Challenge == "" {
		t.Fatalf("%s: %d %s %s", what, r.code, r.ct, r.raw)
	}
	return o
}

// fakeAssertion is a well-formed AuthenticationResponseJSON for this
// origin and the challenge given, with a user handle no user has and a
// signature that proves nothing.
func (e *testEnv) fakeAssertion(challenge string) string {
	b64 := base64.RawURLEncoding.EncodeToString
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	clientData, _ := json.Marshal(map[string]string{"type": "webauthn.get", "challenge": challenge, "origin": e.origin})
	rpHash := sha256.Sum256([]byte("localhost"))
	authData := append(rpHash[:], 0x05, 0, 0, 0, 1) // UP, UV, counter 1
	id := random(16)
	a, _ := json.Marshal(map[string]any{
		"id": b64(id), "rawId": b64(id), "type": "public-key",
		"response": map[string]string{
			"clientDataJSON": b64(clientData), "authenticatorData": b64(authData),
			"signature": b64(random(70)), "userHandle": b64(random(64)),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(a)
}

// TestPasskeyEndpoints (issue 13) drives what needs no authenticator: the
// pages, the step-up before adding, the options the Begin endpoints give
// (this origin's RP ID, user verification required, no account named at
// sign-in), and a 4xx JSON answer, never a 500 or a redirect, for every
// answer the server cannot use.
func TestPasskeyEndpoints(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()

	// Signed out: the login page offers a passkey; the endpoints that
	// need a session answer 401 in JSON (a fetch must not follow a
	// redirect to the login page).
	login := e.get(c, "/login")
	if !strings.Contains(login.body, `id="passkey-login"`) || !strings.Contains(login.body, `<script type="module" src="/static/passkeys.js">`) {
		t.Fatalf("login page offers no passkey sign-in:\n%s", login.body)
	}
	for _, path := range []string{"/passkey/register/begin", "/passkey/register/finish", "/passkey/unlock/begin", "/passkey/unlock/finish"} {
		expectAPI(t, path+" signed out", e.api(c, path, "{}", ""), 401, "log in", "/login")
	}
	expect(t, "passkeys page signed out", e.get(c, "/passkeys"), 303, "/login")
	for _, script := range []string{"/static/passkeys.js", "/static/keyhold-passkey.js"} {
		resp, err := c.Get(e.srv.URL + script)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Fatalf("%s: %d %s", script, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	// Sign-in options: this origin's RP ID, user verification required,
	// no credentials listed (they would name the account), and a
	// ceremony cookie.
	anon := e.client()
	o := parseOptions(t, "login begin", e.api(anon, "/passkey/login/begin", "", ""))
	if o.PublicKey.RPID != "localhost" || o.PublicKey.UserVerification != "required" || (len(o.PublicKey.AllowCredentials) != 0 && string(o.PublicKey.AllowCredentials) != "[]") {
		t.Fatalf("login options: %+v", o.PublicKey)
	}
	// At another host (127.0.0.1, not the configured origin): refused.
	expectAPI(t, "login begin at another host", e.api(anon, "/passkey/login/begin", "", e.srv.Listener.Addr().String()), 403, "address", "")
	// Finish: garbage, and an answer that parses but names no user, both
	// after a begin; then one without the ceremony cookie.
	expectAPI(t, "login finish, garbage", e.api(anon, "/passkey/login/finish", "{not json", ""), 400, "", "")
	expectAPI(t, "login finish, challenge used up", e.api(anon, "/passkey/login/finish", e.fakeAssertion(o.PublicKey.Challenge), ""), 400, "start again", "")
	o = parseOptions(t, "login begin", e.api(anon, "/passkey/login/begin", "", ""))
	expectAPI(t, "login finish, unknown user", e.api(anon, "/passkey/login/finish", e.fakeAssertion(o.PublicKey.Challenge), ""), 401, "sign-in failed", "")
	expectAPI(t, "login finish without the cookie", e.api(e.client(), "/passkey/login/finish", e.fakeAssertion(o.PublicKey.Challenge), ""), 400, "start again", "")

	e.signup(c, "ada")
	p := e.get(c, "/passkeys")
	expect(t, "passkeys page", p, 200, "")
	if !strings.Contains(p.body, "no passkeys yet") || !strings.Contains(p.body, `href="/passkeys/add"`) || !strings.Contains(p.body, `<a href="/passkeys">Passkeys</a>`) {
		t.Fatalf("passkeys page:\n%s", p.body)
	}
	expect(t, "add page, fresh", e.get(c, "/passkeys/add"), 200, "")

	// Registration options, within 5 minutes of the login.
	o = parseOptions(t, "register begin", e.api(c, "/passkey/register/begin", "", ""))
	sel := o.PublicKey.AuthenticatorSelection
	if o.PublicKey.RP.ID != "localhost" || sel.UserVerification != "required" || sel.ResidentKey != "required" || o.PublicKey.User.Name != "ada" || o.PublicKey.Extensions["prf"] == nil {
		t.Fatalf("registration options: %s", mustJSON(o))
	}
	expectAPI(t, "register finish, garbage", e.api(c, "/passkey/register/finish?name=Laptop", `{"id":1}`, ""), 400, "", "")
	expectAPI(t, "register finish again (challenge used up)", e.api(c, "/passkey/register/finish?name=Laptop", `{}`, ""), 400, "start again", "")
	expectAPI(t, "register finish, name too long", e.api(c, "/passkey/register/finish?name="+strings.Repeat("x", passkey.MaxNameLen+1), `{}`, ""), 400, "name", "")
	big := `{"x":"` + strings.Repeat("a", passkey.MaxResponseLen) + `"}`
	expectAPI(t, "register finish, too long", e.api(c, "/passkey/register/finish", big, ""), 413, "too long", "")
	expectAPI(t, "login finish, too long", e.api(e.client(), "/passkey/login/finish", big, ""), 413, "too long", "")

	// No passkey that can unlock: the unlock page offers none, and the
	// endpoint says so.
	expect(t, "lock", e.post(c, "/lock", nil), 303, "/unlock")
	if u := e.get(c, "/unlock"); u.code != 200 || strings.Contains(u.body, "passkey-unlock") {
		t.Fatalf("unlock page without passkeys: %d\n%s", u.code, u.body)
	}
	expectAPI(t, "unlock begin without passkeys", e.api(c, "/passkey/unlock/begin", "", ""), 409, "cannot unlock", "")
	expectAPI(t, "unlock finish without a begin", e.api(c, "/passkey/unlock/finish", "{}", ""), 400, "start again", "")
	expect(t, "unlock", e.post(c, "/unlock", url.Values{"password": {password}}), 303, "/notes")

	// Rename and remove what is not there: 404 pages.
	expect(t, "rename unknown", e.post(c, "/passkeys/rename", url.Values{"id": {"AAAA"}, "name": {"x"}}), 404, "")
	expect(t, "rename garbage id", e.post(c, "/passkeys/rename", url.Values{"id": {"%%%"}, "name": {"x"}}), 404, "")
	// Removing needs a multi-factor step-up before anything is read (no
	// oracle of other users' passkeys): a password session is sent to it.
	expect(t, "remove unknown", e.post(c, "/passkeys/remove", url.Values{"id": {"AAAA"}}), 303, "/reauth?next=%2Fpasskeys")
	expect(t, "remove no id", e.post(c, "/passkeys/remove", nil), 303, "/reauth?next=%2Fpasskeys")

	// The step-up: after 5 minutes, adding or removing asks for the
	// password first, and comes back.
	e.clock.Advance(6 * time.Minute)
	expect(t, "add page, not fresh", e.get(c, "/passkeys/add"), 303, "/reauth?next=%2Fpasskeys%2Fadd")
	expect(t, "remove, not fresh", e.post(c, "/passkeys/remove", url.Values{"id": {"AAAA"}}), 303, "/reauth?next=%2Fpasskeys")
	expectAPI(t, "register begin, not fresh", e.api(c, "/passkey/register/begin", "", ""), 403, "confirm", "/reauth?next=%2Fpasskeys%2Fadd")
	if r := e.get(c, "/reauth?next=/passkeys/add"); r.code != 200 || strings.Contains(r.body, "passkey-reauth") {
		t.Fatalf("step-up page of a user without passkeys offers one: %d\n%s", r.code, r.body)
	}
	expect(t, "reauth", e.post(c, "/reauth", url.Values{"password": {password}, "next": {"/passkeys/add"}}), 303, "/passkeys/add")
	expect(t, "add page after the step-up", e.get(c, "/passkeys/add"), 200, "")
	parseOptions(t, "register begin after the step-up", e.api(c, "/passkey/register/begin", "", ""))

	// Passkey endpoints are POST only, and refuse cross-site requests.
	if r := e.get(c, "/passkey/login/begin"); r.code != 405 {
		t.Fatalf("GET login begin: %d", r.code)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/passkey/register/begin", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("cross-site register begin: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Fatalf("an error was logged:\n%s", logs)
	}
}

// Finishing a passkey sign-in is a login attempt: the per-address login
// limit counts it with the password logins.
func TestPasskeyLoginRateLimited(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	for i := range 5 {
		r := e.api(c, "/passkey/login/finish", "{}", "")
		if r.code != 400 {
			t.Fatalf("attempt %d: %d %s", i, r.code, r.raw)
		}
	}
	r := e.api(c, "/passkey/login/finish", "{}", "")
	expectAPI(t, "sixth attempt", r, 429, "Too many attempts", "")
	expect(t, "password login after them", e.post(c, "/login", url.Values{"username": {"ada"}, "password": {password}}), 429, "")
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Without an origin (TLS and no -origin), passkeys are off: no page
// offers them, their routes are not there, and the rest works, account
// deletion included.
func TestPasskeysOff(t *testing.T) {
	e := &testEnv{t: t, dbPath: t.TempDir() + "/webapp.db", logs: &syncBuffer{}, clock: testkit.NewClock(time.Now())}
	h, cleanup, err := newApp(config{DBPath: e.dbPath, VaultKDF: kdf.InteractiveParams(), Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewTLSServer(h)
	t.Cleanup(func() {
		e.srv.Close()
		if err := cleanup(); err != nil {
			t.Error(err)
		}
	})
	c := e.client()
	if p := e.get(c, "/login"); p.code != 200 || strings.Contains(p.body, "passkey") {
		t.Fatalf("login page with passkeys off: %d\n%s", p.code, p.body)
	}
	e.signup(c, "ada")
	if p := e.get(c, "/notes"); strings.Contains(p.body, "/passkeys") {
		t.Fatalf("the menu offers passkeys:\n%s", p.body)
	}
	expect(t, "passkeys page", e.get(c, "/passkeys"), 404, "")
	if r := e.api(c, "/passkey/login/begin", "", e.srv.Listener.Addr().String()); r.code != 404 {
		t.Fatalf("login begin with passkeys off: %d %s", r.code, r.raw)
	}
	expect(t, "lock", e.post(c, "/lock", nil), 303, "/unlock")
	expect(t, "unlock page", e.get(c, "/unlock"), 200, "")
	expect(t, "delete", e.post(c, "/account/delete", url.Values{"confirm": {"ada"}}), 303, "/?deleted=1")
	if !strings.Contains(e.logs.String(), "msg=webapp.passkeys_off") {
		t.Error("no webapp.passkeys_off warning")
	}
}
