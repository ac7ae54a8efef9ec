package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// softPasskey is a passkey in software for the HTTP-level tests: an
// ES256 key pair on a user-verifying authenticator (attestation "none",
// no PRF), answering for the test app's origin (RP ID localhost).
type softPasskey struct {
	t      *testing.T
	e      *testEnv
	id     []byte
	handle []byte // the user handle it was made for
	key    *ecdsa.PrivateKey
	count  uint32
}

var b64u = base64.RawURLEncoding.EncodeToString

// addSoftPasskey registers a new passkey for c's user through the
// register endpoints.
func (e *testEnv) addSoftPasskey(c *http.Client, name string) *softPasskey {
	e.t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	r := e.api(c, "/passkey/register/begin", "", "")
	if r.code != 200 || json.Unmarshal([]byte(r.raw), &o) != nil {
		e.t.Fatalf("register begin: %d %s", r.code, r.raw)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	handle, err := base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	p := &softPasskey{t: e.t, e: e, id: make([]byte, 16), handle: handle, key: key}
	rand.Read(p.id)
	raw, err := key.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		e.t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         1, XCoord: raw[1:33], YCoord: raw[33:65]})
	if err != nil {
		e.t.Fatal(err)
	}
	authData := p.authData(0x45) // UP, UV, AT
	authData = append(authData, make([]byte, 16)...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(p.id)))
	authData = append(append(authData, p.id...), cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64u(p.id), "rawId": b64u(p.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64u(p.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64u(att), "transports": []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	r = e.api(c, "/passkey/register/finish?name="+url.QueryEscape(name), string(body), "")
	if r.code != 200 || r.ans.Next != "/passkeys?added=1" {
		e.t.Fatalf("register finish: %d %s", r.code, r.raw)
	}
	return p
}

func (p *softPasskey) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]string{"type": typ, "challenge": challenge, "origin": p.e.origin})
	return b
}

// authData is the RP ID hash, the flags and the next counter.
func (p *softPasskey) authData(flags byte) []byte {
	h := sha256.Sum256([]byte("localhost"))
	p.count++
	return binary.BigEndian.AppendUint32(append(h[:], flags), p.count)
}

// assert answers challenge, user-verified and signed (or with a
// signature over other data when badSig).
func (p *softPasskey) assert(challenge string, badSig bool) string {
	p.t.Helper()
	cd := p.clientData("webauthn.get", challenge)
	ad := p.authData(0x05) // UP, UV
	cdHash := sha256.Sum256(cd)
	signed := append(append([]byte(nil), ad...), cdHash[:]...)
	if badSig {
		signed = append(signed, 0)
	}
	digest := sha256.Sum256(signed)
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, digest[:])
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64u(p.id), "rawId": b64u(p.id), "type": "public-key",
		"response": map[string]string{
			"clientDataJSON": b64u(cd), "authenticatorData": b64u(ad),
			"signature": b64u(sig), "userHandle": b64u(p.handle),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}

// stepUpChallenge begins a step-up for c's session.
func (e *testEnv) stepUpChallenge(c *http.Client) options {
	e.t.Helper()
	o := parseOptions(e.t, "step-up begin", e.api(c, "/passkey/stepup/begin", "", ""))
	if o.PublicKey.UserVerification != "required" || len(o.PublicKey.AllowCredentials) < 3 {
		e.t.Fatalf("step-up options: %s", mustJSON(o))
	}
	return o
}

func sessionCookie(e *testEnv, c *http.Client) string {
	u, _ := url.Parse(e.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "keyhold" {
			return ck.Value
		}
	}
	return ""
}

// TestPasskeyStepUpEndpoints (issue 13): the step-up endpoints answer
// 4xx JSON, never a 500, to every request they cannot use, signed out,
// signed in and pending; the reauth page's step-up keeps the session's
// user and its unlocked vault, and refuses another account's passkey;
// on a login pending its second factor, the step-up endpoints (and no
// other passkey endpoint) are reachable, a passkey completes the login
// as a code does, and three refused passkeys end it.
func TestPasskeyStepUpEndpoints(t *testing.T) {
	e := newEnv(t, false)
	big := `{"x":"` + strings.Repeat("a", 70_000) + `"}`
	bodies := []string{"", "{}", "null", "[]", "{not json", `{"id":1}`, e.fakeAssertion("AAAA"), big}

	// Signed out: 401 JSON that sends to the login page, whatever the body.
	anon := e.client()
	for _, b := range bodies {
		expectAPI(t, "step-up begin signed out", e.api(anon, "/passkey/stepup/begin", b, ""), 401, "log in", "/login")
		expectAPI(t, "step-up finish signed out", e.api(anon, "/passkey/stepup/finish", b, ""), 401, "log in", "/login")
	}

	// Signed in, no passkey yet: begin says so (409), finish has no
	// challenge (400), an answer over the bound is 413.
	c := e.client()
	e.signup(c, "ada")
	expectAPI(t, "step-up begin without passkeys", e.api(c, "/passkey/stepup/begin", "", ""), 409, "no passkey", "")
	for _, b := range bodies[:len(bodies)-1] {
		expectAPI(t, "step-up finish without a begin", e.api(c, "/passkey/stepup/finish", b, ""), 400, "", "")
	}
	expectAPI(t, "step-up finish, too long", e.api(c, "/passkey/stepup/finish", big, ""), 413, "too long", "")

	ada := e.addSoftPasskey(c, "Laptop")
	other := e.client()
	e.clock.Advance(3 * time.Minute) // the per-address login limit
	e.signup(other, "bob")
	bob := e.addSoftPasskey(other, "Bob's")

	// Garbage after a begin: 400, and the challenge is used up.
	o := e.stepUpChallenge(c)
	expectAPI(t, "step-up finish, garbage", e.api(c, "/passkey/stepup/finish", "{not json", ""), 400, "", "")
	expectAPI(t, "step-up finish after garbage", e.api(c, "/passkey/stepup/finish", ada.assert(o.PublicKey.Challenge, false), ""), 400, "start again", "")

	// The reauth step-up, once the login is no longer fresh.
	e.clock.Advance(6 * time.Minute)
	expect(t, "add page, not fresh", e.get(c, "/passkeys/add"), 303, "/reauth?next=%2Fpasskeys%2Fadd")
	if r := e.get(c, "/reauth?next=/passkeys/add"); !strings.Contains(r.body, `id="passkey-reauth" data-next="/passkeys/add"`) {
		t.Fatalf("reauth page offers no passkey step-up:\n%s", r.body)
	}
	// Another account's passkey (a right signature, for bob) is refused,
	// without detail, and changes nothing.
	o = e.stepUpChallenge(c)
	expectAPI(t, "step-up with bob's passkey", e.api(c, "/passkey/stepup/finish?next=/passkeys/add", bob.assert(o.PublicKey.Challenge, false), ""), 401, "sign-in failed", "")
	expect(t, "add page after a refused step-up", e.get(c, "/passkeys/add"), 303, "/reauth?next=%2Fpasskeys%2Fadd")
	// A wrong signature: refused.
	o = e.stepUpChallenge(c)
	expectAPI(t, "step-up, wrong signature", e.api(c, "/passkey/stepup/finish", ada.assert(o.PublicKey.Challenge, true), ""), 401, "sign-in failed", "")
	// Ada's passkey: fresh and multi-factor, a new token, the same user,
	// the vault still unlocked; next is checked.
	before := sessionCookie(e, c)
	o = e.stepUpChallenge(c)
	r := e.api(c, "/passkey/stepup/finish?next="+url.QueryEscape("/passkeys/add"), ada.assert(o.PublicKey.Challenge, false), "")
	if r.code != 200 || r.ans.Next != "/passkeys/add" {
		t.Fatalf("step-up: %d %s", r.code, r.raw)
	}
	if after := sessionCookie(e, c); after == "" || after == before {
		t.Fatal("the step-up did not re-issue the session's token")
	}
	if p := e.get(c, "/passkeys/add"); p.code != 200 || !strings.Contains(p.body, "<span>ada</span>") {
		t.Fatalf("add page after the step-up: %d\n%s", p.code, p.body)
	}
	expect(t, "notes after the step-up (still unlocked)", e.get(c, "/notes"), 200, "")
	o = e.stepUpChallenge(c)
	r = e.api(c, "/passkey/stepup/finish?next="+url.QueryEscape("https://evil.example/"), ada.assert(o.PublicKey.Challenge, false), "")
	if r.code != 200 || r.ans.Next != "/devices" {
		t.Fatalf("step-up with an off-site next: %d %s", r.code, r.raw)
	}
	// bob's session is untouched by ada's step-ups.
	if p := e.get(other, "/notes"); p.code != 200 || !strings.Contains(p.body, "<span>bob</span>") {
		t.Fatalf("bob's notes: %d", p.code)
	}

	// An authenticator app: a password login now waits for a code, and
	// the page offers ada's passkey instead.
	secret, _ := e.enroll(c, "Phone")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	e.loginPending(c)
	if p := e.get(c, "/login/2fa"); !strings.Contains(p.body, `id="passkey-second-factor"`) || !strings.Contains(p.body, `src="/static/passkeys.js"`) {
		t.Fatalf("second-factor page offers no passkey:\n%s", p.body)
	}
	// Pending: the other passkey endpoints send to the second factor.
	for _, path := range []string{"/passkey/register/begin", "/passkey/register/finish", "/passkey/unlock/begin", "/passkey/unlock/finish"} {
		expectAPI(t, path+" pending", e.api(c, path, "{}", ""), 401, "Finish logging in", "/login/2fa")
	}
	// Garbage does not count as an attempt; three refused passkeys end
	// the login.
	for _, b := range bodies[:len(bodies)-1] {
		expectAPI(t, "pending step-up finish without a begin", e.api(c, "/passkey/stepup/finish", b, ""), 400, "", "")
	}
	o = e.stepUpChallenge(c)
	expectAPI(t, "pending step-up, garbage", e.api(c, "/passkey/stepup/finish", "{not json", ""), 400, "", "")
	for i := range 2 {
		o = e.stepUpChallenge(c)
		expectAPI(t, "pending step-up with bob's passkey "+string(rune('1'+i)), e.api(c, "/passkey/stepup/finish", bob.assert(o.PublicKey.Challenge, false), ""), 401, "sign-in failed", "")
	}
	o = e.stepUpChallenge(c)
	expectAPI(t, "third refused passkey", e.api(c, "/passkey/stepup/finish", ada.assert(o.PublicKey.Challenge, true), ""), 401, "ended", "/login?mfa=failed")
	expectAPI(t, "step-up after the login ended", e.api(c, "/passkey/stepup/begin", "", ""), 401, "log in", "/login")
	expect(t, "second-factor page after the login ended", e.get(c, "/login/2fa"), 303, "/login")

	// A new pending login: ada's passkey completes it, as a code does.
	e.loginPending(c)
	o = e.stepUpChallenge(c)
	r = e.api(c, "/passkey/stepup/finish?next=/devices", ada.assert(o.PublicKey.Challenge, false), "")
	if r.code != 200 || r.ans.Next != "/unlock?after=passkey" {
		t.Fatalf("pending step-up: %d %s", r.code, r.raw)
	}
	expect(t, "notes after the passkey second factor (locked)", e.get(c, "/notes"), 303, "/unlock")
	expect(t, "second-factor page after the passkey", e.get(c, "/login/2fa"), 303, "/notes")
	expect(t, "a code after the passkey spends nothing", e.post(c, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/notes")
	expect(t, "add page (multi-factor, fresh)", e.get(c, "/passkeys/add"), 200, "")
	expect(t, "unlock", e.post(c, "/unlock", url.Values{"password": {password}}), 303, "/notes")

	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "msg=webapp.login.second_factor_ended") {
		t.Fatalf("logs:\n%s", logs)
	}
}
