package main

// Second outside review of issue 13 (passkeys in the webapp). Each test
// here showed one finding failing on the code it was written against, and
// passes since its fix.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// ar2Authenticator is a software WebAuthn authenticator for the review: one
// ES256 discoverable credential with "none" attestation, whose client
// answers as a browser at the app's origin would.
type ar2Authenticator struct {
	t      *testing.T
	origin string
	id     []byte
	key    *ecdsa.PrivateKey
	handle []byte // the user handle it was made for
}

func newAR2Authenticator(t *testing.T, origin string) *ar2Authenticator {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &ar2Authenticator{t: t, origin: origin, id: id, key: key}
}

var arB64 = base64.RawURLEncoding

// create answers registration options; prfEnabled reports the PRF
// extension as supported (without an output, as when the browser does not
// evaluate it at creation).
func (k *ar2Authenticator) create(options string, prfEnabled bool) string {
	k.t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(options), &o); err != nil || o.PublicKey.Challenge == "" {
		k.t.Fatalf("registration options %s: %v", options, err)
	}
	var err error
	if k.handle, err = arB64.DecodeString(o.PublicKey.User.ID); err != nil {
		k.t.Fatal(err)
	}
	cd, _ := json.Marshal(map[string]any{"type": "webauthn.create", "challenge": o.PublicKey.Challenge, "origin": k.origin, "crossOrigin": false})
	pt, err := k.key.PublicKey.Bytes()
	if err != nil {
		k.t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pt[1:33], -3: pt[33:]})
	if err != nil {
		k.t.Fatal(err)
	}
	rp := sha256.Sum256([]byte(o.PublicKey.RP.ID))
	ad := append(rp[:], 0x01|0x04|0x40)
	ad = binary.BigEndian.AppendUint32(ad, 0)
	ad = append(ad, make([]byte, 16)...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(k.id)))
	ad = append(append(ad, k.id...), cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		k.t.Fatal(err)
	}
	ext := map[string]any{}
	if prfEnabled {
		ext["prf"] = map[string]any{"enabled": true}
	}
	out, _ := json.Marshal(map[string]any{
		"id": arB64.EncodeToString(k.id), "rawId": arB64.EncodeToString(k.id), "type": "public-key",
		"response":               map[string]any{"clientDataJSON": arB64.EncodeToString(cd), "attestationObject": arB64.EncodeToString(att), "transports": []string{"internal"}},
		"clientExtensionResults": ext,
	})
	return string(out)
}

// register adds k to the account of the session of c through the JSON
// endpoints, and returns the finish answer.
func (e *testEnv) ar2Register(c *http.Client, k *ar2Authenticator, name string, prf bool) apiResult {
	e.t.Helper()
	begin := e.api(c, "/passkey/register/begin", "", "")
	if begin.code != 200 {
		return begin
	}
	return e.api(c, "/passkey/register/finish?name="+name, k.create(begin.raw, prf), "")
}

// Finding W1 (high): the password alone adds a passkey to an account that
// has one, through TOTP enrollment. Package passkey asks a multi-factor
// session to add a passkey once the account has (or had) one (PKY-15, and
// the first review's remove-then-add fix), and the webapp's password login
// of a passkey user without TOTP is single-factor. But package totp does
// not know of passkeys: enrolling a first authenticator needs only a
// recent password, and Confirm re-issues the session multi-factor
// (password + TOTP). So whoever has the password enrolls their own
// authenticator, and then adds their own passkey: a way in that survives a
// password change, with nothing but the password.
func TestAttackPasswordAddsPasskeyThroughTOTPEnrollment(t *testing.T) {
	e := newEnv(t, false)
	victim := e.client()
	e.signup(victim, "ada")
	if r := e.ar2Register(victim, newAR2Authenticator(t, e.origin), "Laptop", false); r.code != 200 {
		t.Fatalf("ada adds her passkey: %d %s", r.code, r.raw)
	}

	attacker := e.client()
	e.clock.Advance(time.Minute)
	e.login(attacker, "ada") // the password only: a single-factor session
	mallory := newAR2Authenticator(t, e.origin)
	if r := e.api(attacker, "/passkey/register/begin", "", ""); r.code != 403 || !strings.Contains(r.ans.Next, "/reauth") {
		t.Fatalf("precondition: the password alone begins a registration: %d %s", r.code, r.raw)
	}
	// Enrolling an authenticator needs only the recent password...
	page := e.get(attacker, "/2fa/enroll")
	token, secret := tokenField.FindStringSubmatch(page.body), secretText.FindStringSubmatch(page.body)
	if page.code != 200 || token == nil || secret == nil {
		t.Logf("the enrollment page refuses the password-only session: %d %s (fixed)", page.code, page.location)
		return
	}
	conf := e.post(attacker, "/2fa/enroll", url.Values{"token": {token[1]}, "name": {"Mallory's phone"}, "code": {e.code(secret[1])}})
	if conf.code != 200 {
		t.Logf("the enrollment's confirmation refuses the password-only session: %d %s (fixed)", conf.code, conf.location)
		return
	}
	// ...and leaves the session multi-factor: the passkey step-up passes.
	r := e.ar2Register(attacker, mallory, "Mallory", false)
	if r.code != 200 {
		t.Logf("adding a passkey after enrolling TOTP with the password alone: %d %s (fixed)", r.code, r.raw)
		return
	}
	t.Errorf("a password-only attacker enrolled TOTP and then added their own passkey to ada's account "+
		"(which had one, so adding needs a multi-factor session): %d %s", r.code, r.raw)
}

// Finding W2 (low): ErrNotSetUp (and the other passkey errors
// passkeyFailed does not list) is a 500 with an ERROR log line. A user
// whose passkey has the PRF extension but no vault slot yet (registered
// with the vault locked, or its slot dropped by a master-key rotation)
// asks to unlock with it: BeginUnlock answers ErrNotSetUp, which says
// what to do, and the app answers "Something went wrong on our side".
func TestAttackUnlockNotSetUpIsAServerError(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	expect(t, "lock", e.post(c, "/lock", nil), 303, "/unlock")
	// Registered with the vault locked: PRF, no slot.
	if r := e.ar2Register(c, newAR2Authenticator(t, e.origin), "Laptop", true); r.code != 200 {
		t.Fatalf("register with the vault locked: %d %s", r.code, r.raw)
	}
	r := e.api(c, "/passkey/unlock/begin", "", "")
	if r.code >= 500 || strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("unlock begin with a passkey not set up to unlock: %d %s (want a 4xx that says to set it up); logs:\n%s",
			r.code, r.raw, ar2GrepLines(e.logs.String(), "level=ERROR"))
	}
}

func ar2GrepLines(s, sub string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

var ar2PasskeyID = regexp.MustCompile(`name="id" value="([A-Za-z0-9_-]+)"`)

// Finding W4 (low), fixed by the policy change it led to: a user without
// TOTP who removed their last passkey with the password could never add
// one again (the add page looped through the password step-up). Removing
// a passkey now needs a multi-factor session, as adding one does: the
// password alone is sent to the step-up, which offers the passkey.
func TestAttackRemovedLastPasskeyCannotAddAgain(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	if r := e.ar2Register(c, newAR2Authenticator(t, e.origin), "Laptop", false); r.code != 200 {
		t.Fatalf("register: %d %s", r.code, r.raw)
	}
	id := ar2PasskeyID.FindStringSubmatch(e.get(c, "/passkeys").body)
	if id == nil {
		t.Fatal("no passkey listed")
	}
	expect(t, "remove (fresh password session)", e.post(c, "/passkeys/remove", url.Values{"id": {id[1]}}), 303, "/reauth?next=%2Fpasskeys")
	if page := e.get(c, "/reauth?next=%2Fpasskeys"); page.code != 200 || !strings.Contains(page.body, "passkey-reauth") {
		t.Fatalf("the step-up page for a user with a passkey: %d, offers no passkey\n%s", page.code, page.body)
	}
	if page := e.get(c, "/passkeys"); !ar2PasskeyID.MatchString(page.body) {
		t.Fatal("the passkey is gone after a refused removal")
	}
}
