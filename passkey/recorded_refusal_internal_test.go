package passkey

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
)

// The refusals of issue 13 with recorded ceremonies: every answer here
// is bytes chromium's virtual authenticator made (testdata/ceremony-
// passkey.json, written by TestBrowserPasskey -record; testdata/SOURCE),
// replayed unchanged; nothing is signed here. The server side is a
// harness whose pending ceremony is given the recorded challenge (as
// harness.rewrite does), so that the recorded answer is right for it;
// each refusal then changes one thing on the server's side (where the
// ceremony began, its RP ID, which ceremony the answer meets) or picks a
// recorded answer that is wrong in one way (no user verification, an
// older counter), and shows the typed error and that nothing was stored:
// the passkey record's bytes unchanged, no session made, no vault
// unlocked, the session as it was. Each has its positive control: the
// same recorded bytes accepted when nothing is altered.

// recordedPasskeyFile is what TestBrowserPasskey -record writes.
const recordedPasskeyFile = "testdata/ceremony-passkey.json"

// recordedExchange is one recorded ceremony: the options the server's
// Begin returned and the body the page posted to Finish.
type recordedExchange struct {
	Options  json.RawMessage `json:"options"`
	Response json.RawMessage `json:"response"`
}

// recordedPasskey is testdata/ceremony-passkey.json: one passkey, its
// registration, then assertions with sign counts 3 (login), 4 (unlock),
// 5 (stepUp), 6 (loginNoUV) and 7 (stepUpNoUV); the last two without
// user verification.
type recordedPasskey struct {
	Browser      string            `json:"browser"`
	Origin       string            `json:"origin"`
	RPID         string            `json:"rpId"`
	Registration *recordedExchange `json:"registration"`
	Login        *recordedExchange `json:"login"`
	Unlock       *recordedExchange `json:"unlock"`
	StepUp       *recordedExchange `json:"stepUp"`
	LoginNoUV    *recordedExchange `json:"loginNoUV"`
	StepUpNoUV   *recordedExchange `json:"stepUpNoUV"`
}

func loadRecordedPasskey(t *testing.T) *recordedPasskey {
	t.Helper()
	data, err := os.ReadFile(recordedPasskeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var rec recordedPasskey
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("%s: %v", recordedPasskeyFile, err)
	}
	for name, e := range map[string]*recordedExchange{"registration": rec.Registration, "login": rec.Login, "unlock": rec.Unlock,
		"stepUp": rec.StepUp, "loginNoUV": rec.LoginNoUV, "stepUpNoUV": rec.StepUpNoUV} {
		if e == nil || e.Options == nil || e.Response == nil {
			t.Fatalf("%s has no %s (record it anew: go test ./passkey -run TestBrowserPasskey -args -record)", recordedPasskeyFile, name)
		}
	}
	if rec.RPID != "localhost" || !strings.HasPrefix(rec.Origin, "http://localhost:") {
		t.Fatalf("%s: origin %q, RP ID %q", recordedPasskeyFile, rec.Origin, rec.RPID)
	}
	return &rec
}

// recordedOptions are the fields of a Begin's options the replay needs.
type recordedOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
		Extensions struct {
			PRF struct {
				Eval struct {
					First string `json:"first"`
				} `json:"eval"`
			} `json:"prf"`
		} `json:"extensions"`
	} `json:"publicKey"`
}

// options decodes e's options: the challenge, and for a registration the
// user handle and the PRF salt.
func (e *recordedExchange) options(t *testing.T) (challenge, handle, salt []byte) {
	t.Helper()
	var o recordedOptions
	if err := json.Unmarshal(e.Options, &o); err != nil {
		t.Fatal(err)
	}
	dec := func(s string) []byte {
		if s == "" {
			return nil
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	challenge = dec(o.PublicKey.Challenge)
	if len(challenge) == 0 {
		t.Fatal("recorded options without a challenge")
	}
	return challenge, dec(o.PublicKey.User.ID), dec(o.PublicKey.Extensions.PRF.Eval.First)
}

// otherOrigin is a second origin on the RP ID "localhost" that the
// Manager of these tests also serves; no recorded answer names it.
const otherOrigin = "http://localhost:1"

// recordedEnv is a harness serving the recorded origin (and
// otherOrigin), and alice logged in there with a password, her vault
// unlocked.
type recordedEnv struct {
	*harness
	rec   *recordedPasskey
	alice *browser
}

func newRecordedEnv(t *testing.T) *recordedEnv {
	t.Helper()
	rec := loadRecordedPasskey(t)
	h := newHarness(t, func(c *Config) {
		c.RPID = rec.RPID
		c.Origins = []string{rec.Origin, otherOrigin}
	})
	u, err := url.Parse(rec.Origin)
	if err != nil {
		t.Fatal(err)
	}
	h.host = u.Host
	e := &recordedEnv{harness: h, rec: rec, alice: newBrowser()}
	h.login(e.alice, "alice", true)
	return e
}

// newRegisteredEnv is a recordedEnv where alice has registered the
// recorded passkey (its PRF output her vault slot).
func newRegisteredEnv(t *testing.T) *recordedEnv {
	t.Helper()
	e := newRecordedEnv(t)
	if _, err := e.register(e.alice, alteration{}); err != nil {
		t.Fatalf("the recorded registration: %v\n%s", err, e.logs)
	}
	return e
}

// alteration is what a test changes on the server's side of one
// ceremony before the recorded answer comes: the host the ceremony
// begins at (the recorded origin's when empty) and the stored WebAuthn
// session data.
type alteration struct {
	host string
	sd   func(*webauthn.SessionData)
}

// beginAt serves fn as a request of b to host (the recorded origin's
// host when empty).
func (e *recordedEnv) beginAt(b *browser, host string, fn func(w http.ResponseWriter, r *http.Request)) {
	e.t.Helper()
	if host != "" {
		recorded := e.host
		e.host = host
		defer func() { e.host = recorded }()
	}
	e.do(b, fn)
}

// give replaces the pending ceremony under id with the recorded
// challenge (and a registration's user handle and PRF salt), as if this
// server had issued it, then applies sd.
func (e *recordedEnv) give(id []byte, want ceremonyState, challenge, handle, salt []byte, sd func(*webauthn.SessionData)) {
	e.t.Helper()
	st, data, err := e.m.takeCeremony(context.Background(), id, want)
	if err != nil {
		e.t.Fatalf("no pending ceremony: %v", err)
	}
	data.Challenge = base64.RawURLEncoding.EncodeToString(challenge)
	if handle != nil {
		st.Handle, data.UserID = handle, handle
	}
	if salt != nil {
		st.Salt = salt
	}
	if sd != nil {
		sd(&data)
	}
	if err := e.m.putCeremony(context.Background(), id, st, &data); err != nil {
		e.t.Fatal(err)
	}
}

// register replays the recorded registration for b's user.
func (e *recordedEnv) register(b *browser, alt alteration) (Credential, error) {
	e.t.Helper()
	info := e.current(b)
	e.beginAt(b, alt.host, func(w http.ResponseWriter, r *http.Request) {
		if _, err := e.m.BeginRegistration(r, info.UserID+"@example.test"); err != nil {
			e.t.Fatalf("BeginRegistration: %v", err)
		}
	})
	challenge, handle, salt := e.rec.Registration.options(e.t)
	e.give(sessionChallengeID(ceremonyRegister, info.UserID, info.Ref),
		ceremonyState{Ceremony: ceremonyRegister, UserID: info.UserID, Ref: info.Ref}, challenge, handle, salt, alt.sd)
	var cred Credential
	var err error
	e.do(b, func(w http.ResponseWriter, r *http.Request) {
		cred, err = e.m.FinishRegistration(r, e.rec.Registration.Response, "Laptop")
	})
	return cred, err
}

// beginLogin begins a login of b whose ceremony is given ex's challenge,
// and returns b's ceremony cookie.
func (e *recordedEnv) beginLogin(b *browser, ex *recordedExchange, alt alteration) *http.Cookie {
	e.t.Helper()
	e.beginAt(b, alt.host, func(w http.ResponseWriter, r *http.Request) {
		if _, err := e.m.BeginLogin(w, r); err != nil {
			e.t.Fatalf("BeginLogin: %v", err)
		}
	})
	c := b.cookies[e.m.loginCookieName()]
	if c == nil {
		e.t.Fatal("BeginLogin set no cookie")
	}
	token, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		e.t.Fatal(err)
	}
	challenge, _, _ := ex.options(e.t)
	e.give(loginChallengeID(token), ceremonyState{Ceremony: ceremonyLogin}, challenge, nil, nil, alt.sd)
	cc := *c
	return &cc
}

// finishLogin posts ex's recorded answer to FinishLogin as b.
func (e *recordedEnv) finishLogin(b *browser, ex *recordedExchange) (LoginResult, error) {
	e.t.Helper()
	var res LoginResult
	var err error
	e.do(b, func(w http.ResponseWriter, r *http.Request) {
		res, err = e.m.FinishLogin(w, r, ex.Response, ratelimit.Source{}, LoginOptions{})
	})
	return res, err
}

// login replays ex as a usernameless login of b.
func (e *recordedEnv) login(b *browser, ex *recordedExchange, alt alteration) (LoginResult, error) {
	e.t.Helper()
	e.beginLogin(b, ex, alt)
	return e.finishLogin(b, ex)
}

// beginSession begins the unlock or step-up ceremony (ceremony) of b's
// session and gives it ex's challenge.
func (e *recordedEnv) beginSession(b *browser, ceremony byte, ex *recordedExchange, alt alteration) {
	e.t.Helper()
	info := e.current(b)
	e.beginAt(b, alt.host, func(w http.ResponseWriter, r *http.Request) {
		var err error
		if ceremony == ceremonyUnlock {
			_, err = e.m.BeginUnlock(r)
		} else {
			_, err = e.m.BeginStepUp(r)
		}
		if err != nil {
			e.t.Fatalf("Begin %c: %v", ceremony, err)
		}
	})
	challenge, _, _ := ex.options(e.t)
	e.give(sessionChallengeID(ceremony, info.UserID, info.Ref), ceremonyState{Ceremony: ceremony, UserID: info.UserID, Ref: info.Ref},
		challenge, nil, nil, alt.sd)
}

func (e *recordedEnv) finishUnlock(b *browser, ex *recordedExchange) (UnlockResult, error) {
	e.t.Helper()
	var res UnlockResult
	var err error
	e.do(b, func(w http.ResponseWriter, r *http.Request) {
		res, err = e.m.FinishUnlock(r, ex.Response, ratelimit.Source{})
	})
	return res, err
}

func (e *recordedEnv) finishStepUp(b *browser, ex *recordedExchange) (Credential, error) {
	e.t.Helper()
	var c Credential
	var err error
	e.do(b, func(w http.ResponseWriter, r *http.Request) {
		c, err = e.m.FinishStepUp(r, ex.Response, ratelimit.Source{})
	})
	return c, err
}

// unlock replays ex as the unlock ceremony of b's session.
func (e *recordedEnv) unlock(b *browser, ex *recordedExchange, alt alteration) (UnlockResult, error) {
	e.t.Helper()
	e.beginSession(b, ceremonyUnlock, ex, alt)
	return e.finishUnlock(b, ex)
}

// stepUp replays ex as the step-up ceremony of b's session.
func (e *recordedEnv) stepUp(b *browser, ex *recordedExchange, alt alteration) (Credential, error) {
	e.t.Helper()
	e.beginSession(b, ceremonyStepUp, ex, alt)
	return e.finishStepUp(b, ex)
}

func (e *recordedEnv) lock(b *browser) {
	e.t.Helper()
	e.do(b, func(w http.ResponseWriter, r *http.Request) {
		if err := e.sessions.Lock(r.Context()); err != nil {
			e.t.Fatal(err)
		}
	})
}

// stored is alice's passkey record as stored now (zero if none).
func (e *recordedEnv) stored() storage.PasskeyRecord {
	e.t.Helper()
	sr, err := e.store.GetPasskeys(context.Background(), "alice")
	if err != nil && !isNotFound(err) {
		e.t.Fatal(err)
	}
	return sr
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// unchanged fails unless alice's record is still before, byte for byte.
func (e *recordedEnv) unchanged(before storage.PasskeyRecord) {
	e.t.Helper()
	after := e.stored()
	if after.Version != before.Version || !bytes.Equal(after.Data, before.Data) || len(after.CredentialIDs) != len(before.CredentialIDs) {
		e.t.Fatalf("alice's passkey record changed: version %d -> %d, %d -> %d credentials",
			before.Version, after.Version, len(before.CredentialIDs), len(after.CredentialIDs))
	}
}

// sameSession fails unless b's session is still before (not re-issued,
// not unlocked or locked, no factor added).
func (e *recordedEnv) sameSession(b *browser, before session.Info) {
	e.t.Helper()
	after := e.current(b)
	if after.UserID != before.UserID || after.Ref != before.Ref || after.Unlocked != before.Unlocked ||
		after.Factors != before.Factors || after.MultiFactor != before.MultiFactor || !after.AuthTime.Equal(before.AuthTime) {
		e.t.Fatalf("the session changed: %+v -> %+v", before, after)
	}
}

// loggedOut fails if b has a session.
func (e *recordedEnv) loggedOut(b *browser) {
	e.t.Helper()
	if info := e.current(b); info.UserID != "" {
		e.t.Fatalf("a refused login left a session: %+v", info)
	}
}

// logged fails unless the audit log has an entry with all of parts (the
// reason of a refusal).
func (e *recordedEnv) logged(parts ...string) {
	e.t.Helper()
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return
		}
	}
	e.t.Fatalf("no log entry with %q:\n%s", parts, e.logs)
}

// refuseAndAccept runs ceremony ("registration", "login", "unlock" or
// "step-up") with its recorded answer twice in one environment: first
// with alt, which must refuse it with the typed error and store nothing,
// then unaltered (the positive control), which must accept the same
// bytes. reason is what the audit log must say of the refusal ("" for
// nothing).
func refuseAndAccept(t *testing.T, ceremony string, alt alteration, reason string) {
	switch ceremony {
	case "registration":
		e := newRecordedEnv(t)
		before := e.current(e.alice)
		_, err := e.register(e.alice, alt)
		wantErr(t, err, ErrRegistrationFailed)
		if sr := e.stored(); sr.Version != 0 || len(sr.Data) != 0 {
			t.Fatalf("a refused registration stored a record (version %d)", sr.Version)
		}
		if _, err := e.store.UserByCredential(context.Background(), e.credentialID()); !isNotFound(err) {
			t.Fatalf("a refused registration left its credential ID: %v", err)
		}
		e.sameSession(e.alice, before)
		if reason != "" {
			e.logged("authn_passkey_register_fail", reason)
		}
		if _, err := e.register(e.alice, alteration{}); err != nil {
			t.Fatalf("the same registration unaltered: %v\n%s", err, e.logs)
		}
	case "login":
		e := newRegisteredEnv(t)
		before := e.stored()
		b := newBrowser()
		_, err := e.login(b, e.rec.Login, alt)
		wantErr(t, err, ErrLoginFailed)
		e.unchanged(before)
		e.loggedOut(b)
		if reason != "" {
			e.logged("authn_passkey_assertion_fail", reason)
		}
		if res, err := e.login(b, e.rec.Login, alteration{}); err != nil || res.UserID != "alice" || e.current(b).UserID != "alice" {
			t.Fatalf("the same login unaltered: %+v, %v\n%s", res, err, e.logs)
		}
	case "unlock":
		e := newRegisteredEnv(t)
		e.lock(e.alice)
		before, info := e.stored(), e.current(e.alice)
		_, err := e.unlock(e.alice, e.rec.Unlock, alt)
		wantErr(t, err, ErrUnlockFailed)
		e.unchanged(before)
		e.sameSession(e.alice, info)
		if reason != "" {
			e.logged("authn_passkey_assertion_fail", reason)
		}
		if res, err := e.unlock(e.alice, e.rec.Unlock, alteration{}); err != nil || res.SetUp || !e.current(e.alice).Unlocked {
			t.Fatalf("the same unlock unaltered: %+v, %v\n%s", res, err, e.logs)
		}
	case "step-up":
		e := newRegisteredEnv(t)
		before, info := e.stored(), e.current(e.alice)
		_, err := e.stepUp(e.alice, e.rec.StepUp, alt)
		wantErr(t, err, ErrLoginFailed)
		e.unchanged(before)
		e.sameSession(e.alice, info)
		if reason != "" {
			e.logged("authn_passkey_assertion_fail", reason)
		}
		if _, err := e.stepUp(e.alice, e.rec.StepUp, alteration{}); err != nil || !e.current(e.alice).MultiFactor {
			t.Fatalf("the same step-up unaltered: %v\n%s", err, e.logs)
		}
	default:
		t.Fatalf("unknown ceremony %q", ceremony)
	}
}

// credentialID is the recorded passkey's credential ID.
func (e *recordedEnv) credentialID() []byte {
	e.t.Helper()
	var r struct {
		RawID string `json:"rawId"`
	}
	if err := json.Unmarshal(e.rec.Registration.Response, &r); err != nil {
		e.t.Fatal(err)
	}
	id, err := base64.RawURLEncoding.DecodeString(r.RawID)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

var recordedCeremonies = []string{"registration", "login", "unlock", "step-up"}

// TestRecordedWrongOrigin: the Manager serves the recorded origin and
// otherOrigin; a ceremony begun at otherOrigin refuses the browser's
// answer, which names the recorded origin (a listed one, but not the
// ceremony's), PKY-03.
func TestRecordedWrongOrigin(t *testing.T) {
	other, err := url.Parse(otherOrigin)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range recordedCeremonies {
		t.Run(c, func(t *testing.T) {
			refuseAndAccept(t, c, alteration{host: other.Host}, "Error validating origin")
		})
	}
}

// TestRecordedWrongRPID: a ceremony whose RP ID is another
// ("example.localhost") refuses the browser's answer, whose rpIdHash is
// that of "localhost", PKY-04.
func TestRecordedWrongRPID(t *testing.T) {
	other := func(sd *webauthn.SessionData) { sd.RelyingPartyID = "example.localhost" }
	for _, c := range recordedCeremonies {
		t.Run(c, func(t *testing.T) { refuseAndAccept(t, c, alteration{sd: other}, "") })
	}
}

// checkGenuineNoUV checks that ex's recorded answer is right in all but
// user verification: its signature verifies with the registered public
// key, over authenticator data with the rpIdHash of "localhost", UP set
// and UV clear, and client data of a webauthn.get at the recorded origin
// with ex's challenge. So its refusal is for UV alone.
func checkGenuineNoUV(t *testing.T, e *recordedEnv, ex *recordedExchange) {
	t.Helper()
	var reg struct {
		Response struct {
			PublicKey string `json:"publicKey"`
		} `json:"response"`
	}
	var a struct {
		Response struct {
			ClientDataJSON    string `json:"clientDataJSON"`
			AuthenticatorData string `json:"authenticatorData"`
			Signature         string `json:"signature"`
		} `json:"response"`
	}
	if json.Unmarshal(e.rec.Registration.Response, &reg) != nil || json.Unmarshal(ex.Response, &a) != nil {
		t.Fatal("recorded answers do not parse")
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	spki, cdj, ad, sig := dec(reg.Response.PublicKey), dec(a.Response.ClientDataJSON), dec(a.Response.AuthenticatorData), dec(a.Response.Signature)
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("the recorded passkey's key is a %T, want ECDSA", pub)
	}
	cdHash := sha256.Sum256(cdj)
	signed := sha256.Sum256(append(append([]byte(nil), ad...), cdHash[:]...))
	if !ecdsa.VerifyASN1(ec, signed[:], sig) {
		t.Fatal("the recorded answer's signature does not verify with the registered key")
	}
	rpHash := sha256.Sum256([]byte(e.rec.RPID))
	if len(ad) < 37 || !bytes.Equal(ad[:32], rpHash[:]) || ad[32]&0x01 == 0 || ad[32]&0x04 != 0 {
		t.Fatalf("the recorded authenticator data: rpIdHash %x, flags %#02x; want the RP ID's, UP set, UV clear", ad[:32], ad[32])
	}
	var cd struct{ Type, Challenge, Origin string }
	if err := json.Unmarshal(cdj, &cd); err != nil {
		t.Fatal(err)
	}
	challenge, _, _ := ex.options(t)
	if cd.Type != "webauthn.get" || cd.Origin != e.rec.Origin || cd.Challenge != base64.RawURLEncoding.EncodeToString(challenge) {
		t.Fatalf("the recorded client data %+v", cd)
	}
	t.Logf("recorded answer without UV: flags %#02x, sign count %d, signature good", ad[32], binary.BigEndian.Uint32(ad[33:37]))
}

// TestRecordedNoUV: chromium's answers without user verification (UV
// flag clear, the rest right: checkGenuineNoUV) to a login and a
// step-up are refused by the server's ceremonies, which require it,
// PKY-05; the recorded answers with UV to the same ceremonies are
// accepted. (The counters of the answers without UV are above the
// stored one: not what refuses them.)
func TestRecordedNoUV(t *testing.T) {
	t.Run("login", func(t *testing.T) {
		e := newRegisteredEnv(t)
		checkGenuineNoUV(t, e, e.rec.LoginNoUV)
		before := e.stored()
		b := newBrowser()
		_, err := e.login(b, e.rec.LoginNoUV, alteration{})
		wantErr(t, err, ErrLoginFailed)
		e.unchanged(before)
		e.loggedOut(b)
		if res, err := e.login(b, e.rec.Login, alteration{}); err != nil || res.UserID != "alice" {
			t.Fatalf("the recorded login with UV: %+v, %v\n%s", res, err, e.logs)
		}
	})
	t.Run("step-up", func(t *testing.T) {
		e := newRegisteredEnv(t)
		checkGenuineNoUV(t, e, e.rec.StepUpNoUV)
		before, info := e.stored(), e.current(e.alice)
		_, err := e.stepUp(e.alice, e.rec.StepUpNoUV, alteration{})
		wantErr(t, err, ErrLoginFailed)
		e.unchanged(before)
		e.sameSession(e.alice, info)
		if _, err := e.stepUp(e.alice, e.rec.StepUp, alteration{}); err != nil {
			t.Fatalf("the recorded step-up with UV: %v\n%s", err, e.logs)
		}
	})
}

// TestRecordedReplay: a recorded answer that was accepted is refused
// when it comes again for the same ceremony (its challenge used up),
// PKY-01: a login replayed with the ceremony cookie it came with, an
// unlock replayed in the session it unlocked.
func TestRecordedReplay(t *testing.T) {
	t.Run("login", func(t *testing.T) {
		e := newRegisteredEnv(t)
		b := newBrowser()
		cookie := e.beginLogin(b, e.rec.Login, alteration{})
		if res, err := e.finishLogin(b, e.rec.Login); err != nil || res.UserID != "alice" {
			t.Fatalf("the recorded login: %+v, %v\n%s", res, err, e.logs)
		}
		before := e.stored()
		// The same body with the same cookie, from another browser (one
		// that captured both), then from b (whose cookie was dropped).
		replayer := newBrowser()
		replayer.cookies[cookie.Name] = cookie
		_, err := e.finishLogin(replayer, e.rec.Login)
		wantErr(t, err, ErrChallenge)
		e.unchanged(before)
		e.loggedOut(replayer)
		info := e.current(b)
		_, err = e.finishLogin(b, e.rec.Login)
		wantErr(t, err, ErrChallenge)
		e.unchanged(before)
		e.sameSession(b, info)
	})
	t.Run("unlock", func(t *testing.T) {
		e := newRegisteredEnv(t)
		e.lock(e.alice)
		if res, err := e.unlock(e.alice, e.rec.Unlock, alteration{}); err != nil || res.SetUp {
			t.Fatalf("the recorded unlock: %+v, %v\n%s", res, err, e.logs)
		}
		e.lock(e.alice)
		before, info := e.stored(), e.current(e.alice)
		_, err := e.finishUnlock(e.alice, e.rec.Unlock)
		wantErr(t, err, ErrChallenge)
		e.unchanged(before)
		e.sameSession(e.alice, info)
	})
}

// TestRecordedForeignChallenge: a recorded answer to the ceremony of one
// browser or session is refused for another's, PKY-01: a login finished
// with another browser's ceremony (its own challenge, or no cookie); an
// unlock and a step-up finished in another session of the same user
// (with its own ceremony, or none) or of another user. The ceremony the
// answer belongs to then still accepts it.
func TestRecordedForeignChallenge(t *testing.T) {
	t.Run("login", func(t *testing.T) {
		e := newRegisteredEnv(t)
		before := e.stored()
		owner := newBrowser()
		e.beginLogin(owner, e.rec.Login, alteration{})
		// Another browser with a login ceremony of its own: the answer's
		// challenge is not its.
		other := newBrowser()
		e.do(other, func(w http.ResponseWriter, r *http.Request) {
			if _, err := e.m.BeginLogin(w, r); err != nil {
				t.Fatal(err)
			}
		})
		_, err := e.finishLogin(other, e.rec.Login)
		wantErr(t, err, ErrLoginFailed)
		e.logged("authn_passkey_assertion_fail", "Error validating challenge")
		e.unchanged(before)
		e.loggedOut(other)
		// A browser without a ceremony cookie.
		none := newBrowser()
		_, err = e.finishLogin(none, e.rec.Login)
		wantErr(t, err, ErrChallenge)
		e.unchanged(before)
		e.loggedOut(none)
		if res, err := e.finishLogin(owner, e.rec.Login); err != nil || res.UserID != "alice" {
			t.Fatalf("the owner's login: %+v, %v\n%s", res, err, e.logs)
		}
	})
	for _, c := range []struct {
		name     string
		ceremony byte
		ex       func(*recordedPasskey) *recordedExchange
		finish   func(e *recordedEnv, b *browser, ex *recordedExchange) error
		want     error
	}{
		{"unlock", ceremonyUnlock, func(r *recordedPasskey) *recordedExchange { return r.Unlock },
			func(e *recordedEnv, b *browser, ex *recordedExchange) error {
				_, err := e.finishUnlock(b, ex)
				return err
			}, ErrUnlockFailed},
		{"step-up", ceremonyStepUp, func(r *recordedPasskey) *recordedExchange { return r.StepUp },
			func(e *recordedEnv, b *browser, ex *recordedExchange) error {
				_, err := e.finishStepUp(b, ex)
				return err
			}, ErrLoginFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newRegisteredEnv(t)
			ex := c.ex(e.rec)
			e.lock(e.alice)
			e.beginSession(e.alice, c.ceremony, ex, alteration{})
			before := e.stored()
			// Another session of alice's, locked, with no ceremony.
			second := newBrowser()
			e.harness.login(second, "alice", false)
			info := e.current(second)
			wantErr(t, c.finish(e, second, ex), ErrChallenge)
			e.unchanged(before)
			e.sameSession(second, info)
			// The same, with a ceremony of its own.
			e.do(second, func(w http.ResponseWriter, r *http.Request) {
				var err error
				if c.ceremony == ceremonyUnlock {
					_, err = e.m.BeginUnlock(r)
				} else {
					_, err = e.m.BeginStepUp(r)
				}
				if err != nil {
					t.Fatal(err)
				}
			})
			wantErr(t, c.finish(e, second, ex), c.want)
			e.logged("authn_passkey_assertion_fail", "Error validating challenge")
			e.unchanged(before)
			e.sameSession(second, info)
			// Another user's session.
			bob := newBrowser()
			e.harness.login(bob, "bob", false)
			bobInfo := e.current(bob)
			wantErr(t, c.finish(e, bob, ex), ErrChallenge)
			e.unchanged(before)
			e.sameSession(bob, bobInfo)
			// The session the ceremony belongs to accepts it.
			if err := c.finish(e, e.alice, ex); err != nil {
				t.Fatalf("alice's own %s: %v\n%s", c.name, err, e.logs)
			}
		})
	}
}

// TestRecordedCounterRegression: the recorded answers carry sign counts
// 3 (login), 4 (unlock) and 5 (step-up). In that order each is accepted;
// an older one after a newer one is refused under the default policy
// (the passkey is not backup-eligible) with ErrPossibleClone, and
// nothing is stored, PKY-08.
func TestRecordedCounterRegression(t *testing.T) {
	count := func(t *testing.T, e *recordedEnv) uint32 {
		t.Helper()
		rec, err := e.m.load(context.Background(), "alice")
		if err != nil || len(rec.creds) != 1 {
			t.Fatalf("alice's record: %v", err)
		}
		return rec.creds[0].signCount
	}
	t.Run("in order", func(t *testing.T) {
		e := newRegisteredEnv(t)
		b := newBrowser()
		if _, err := e.login(b, e.rec.Login, alteration{}); err != nil {
			t.Fatalf("login: %v\n%s", err, e.logs)
		}
		if _, err := e.unlock(b, e.rec.Unlock, alteration{}); err != nil {
			t.Fatalf("unlock: %v\n%s", err, e.logs)
		}
		if _, err := e.stepUp(b, e.rec.StepUp, alteration{}); err != nil {
			t.Fatalf("step-up: %v\n%s", err, e.logs)
		}
		if n := count(t, e); n != 5 {
			t.Fatalf("stored sign count %d, want 5", n)
		}
	})
	t.Run("login after a newer unlock", func(t *testing.T) {
		e := newRegisteredEnv(t)
		e.lock(e.alice)
		if _, err := e.unlock(e.alice, e.rec.Unlock, alteration{}); err != nil {
			t.Fatalf("unlock: %v\n%s", err, e.logs)
		}
		before := e.stored()
		b := newBrowser()
		_, err := e.login(b, e.rec.Login, alteration{})
		wantErr(t, err, ErrLoginFailed, ErrPossibleClone)
		e.unchanged(before)
		e.loggedOut(b)
		if n := count(t, e); n != 4 {
			t.Fatalf("stored sign count %d, want 4", n)
		}
	})
	t.Run("unlock after a newer step-up", func(t *testing.T) {
		e := newRegisteredEnv(t)
		if _, err := e.stepUp(e.alice, e.rec.StepUp, alteration{}); err != nil {
			t.Fatalf("step-up: %v\n%s", err, e.logs)
		}
		e.lock(e.alice)
		before, info := e.stored(), e.current(e.alice)
		_, err := e.unlock(e.alice, e.rec.Unlock, alteration{})
		wantErr(t, err, ErrUnlockFailed, ErrPossibleClone)
		e.unchanged(before)
		e.sameSession(e.alice, info)
	})
}
