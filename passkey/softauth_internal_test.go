package passkey

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
)

// This file is a WebAuthn client and authenticator in software, for tests
// that need answers a real browser would never give: every field of a
// registration or an assertion can be changed before it is encoded (and
// signed), and the answers are the WebAuthn Level 3 JSON
// (RegistrationResponseJSON, AuthenticationResponseJSON) that the
// Finish calls take. softEnv runs them against a Manager for RP ID
// example.com served at https://example.com.

// Soft authenticator defaults.
const (
	softRPID   = "example.com"
	softOrigin = "https://example.com"
	softHost   = "example.com"
)

func softJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// b64 is unpadded base64url, as WebAuthn's JSON encodes binary fields.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// softAuthenticator makes credentials and answers for one RP ID and
// origin (the defaults of every answer; an edit can change them).
type softAuthenticator struct {
	rpID   string
	origin string
	// BE and BS are the backup flags of the credentials it makes.
	BE, BS bool
}

func newSoftAuthenticator(rpID, origin string) *softAuthenticator {
	return &softAuthenticator{rpID: rpID, origin: origin}
}

// softCred is one credential of a softAuthenticator: its key pair, its
// PRF secret and its counter.
type softCred struct {
	ID     []byte
	Handle []byte // the user handle it was made for
	Alg    int64
	// SignCount is the counter of its last answer.
	SignCount uint32
	// BE and BS are the backup flags its assertions carry by default.
	BE, BS    bool
	ec        *ecdsa.PrivateKey
	rsa       *rsa.PrivateKey
	prfSecret []byte
}

// prf is the credential's PRF output for salt: HMAC-SHA256 of the salt
// under the credential's own random secret (deterministic per credential
// and salt, as the hmac-secret extension is).
func (c *softCred) prf(salt []byte) []byte {
	m := hmac.New(sha256.New, c.prfSecret)
	m.Write(salt)
	return m.Sum(nil)
}

// coseKey is the credential's public key as a COSE_Key.
func (c *softCred) coseKey(t testing.TB) []byte {
	t.Helper()
	var v any
	switch {
	case c.ec != nil:
		raw, err := c.ec.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
		if err != nil {
			t.Fatal(err)
		}
		x, y := raw[1:33], raw[33:65]
		v = webauthncose.EC2PublicKeyData{PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: c.Alg},
			Curve: 1, XCoord: x, YCoord: y}
	case c.rsa != nil:
		v = webauthncose.RSAPublicKeyData{PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.RSAKey), Algorithm: c.Alg},
			Modulus: c.rsa.N.Bytes(), Exponent: big.NewInt(int64(c.rsa.E)).Bytes()}
	}
	b, err := webauthncbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *softCred) spki(t testing.TB) []byte {
	t.Helper()
	var pub any
	if c.rsa != nil {
		pub = &c.rsa.PublicKey
	} else {
		pub = &c.ec.PublicKey
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// sign signs data with the credential's key (ES256: ASN.1 DER ECDSA;
// RS256: PKCS #1 v1.5).
func (c *softCred) sign(t testing.TB, data []byte) []byte {
	t.Helper()
	digest := sha256.Sum256(data)
	var sig []byte
	var err error
	if c.rsa != nil {
		sig, err = rsa.SignPKCS1v15(rand.Reader, c.rsa, crypto.SHA256, digest[:])
	} else {
		sig, err = ecdsa.SignASN1(rand.Reader, c.ec, digest[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// softClientData is the CollectedClientData of an answer.
type softClientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
	TopOrigin   string `json:"topOrigin,omitempty"`
}

// softAnswer is what one answer is made of. create and get fill it with
// a right answer's values, then the test's edit may change any of them,
// then it is encoded (and, for an assertion, signed).
type softAnswer struct {
	// ClientData becomes the clientDataJSON, unless RawClientData is set.
	ClientData    softClientData
	RawClientData []byte
	// RPIDHash, Flags and SignCount begin the authenticator data.
	RPIDHash  []byte
	Flags     protocol.AuthenticatorFlags
	SignCount uint32
	// CredID is the answer's id and rawId, and for a registration the
	// credential ID in the attested credential data (and the ID the
	// softCred keeps).
	CredID []byte
	// AAGUID and PublicKey (a COSE_Key) are the rest of a registration's
	// attested credential data.
	AAGUID    []byte
	PublicKey []byte
	// AuthDataExt, if set, is appended to the authenticator data (CBOR
	// extension outputs; set FlagHasExtensions too).
	AuthDataExt []byte
	// Format and AttStmt are a registration's attestation statement
	// ("none", {}).
	Format  string
	AttStmt map[string]any
	// Transports are a registration's transports.
	Transports []string
	// UserHandle is an assertion's user handle; nil omits it.
	UserHandle []byte
	// Extensions are the clientExtensionResults: {"prf": …} when the
	// options asked for a PRF evaluation the credential can answer.
	Extensions map[string]any
	// TamperAuthData, if set, changes an assertion's authenticator data
	// after it was signed.
	TamperAuthData func([]byte) []byte
	// Signature, if set, replaces an assertion's signature.
	Signature []byte
}

func (a *softAnswer) clientDataJSON(t testing.TB) []byte {
	t.Helper()
	if a.RawClientData != nil {
		return a.RawClientData
	}
	b, err := json.Marshal(a.ClientData)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// authData encodes the authenticator data; attested adds the attested
// credential data (a registration).
func (a *softAnswer) authData(attested bool) []byte {
	d := append([]byte(nil), a.RPIDHash...)
	d = append(d, byte(a.Flags))
	d = binary.BigEndian.AppendUint32(d, a.SignCount)
	if attested {
		aaguid := a.AAGUID
		if aaguid == nil {
			aaguid = make([]byte, 16)
		}
		d = append(d, aaguid...)
		d = binary.BigEndian.AppendUint16(d, uint16(len(a.CredID)))
		d = append(d, a.CredID...)
		d = append(d, a.PublicKey...)
	}
	return append(d, a.AuthDataExt...)
}

// softOptions are the parts of a Begin call's options (the JSON of a
// CredentialCreationOptions or CredentialRequestOptions) the soft
// client reads.
type softOptions struct {
	PublicKey struct {
		Challenge protocol.URLEncodedBase64 `json:"challenge"`
		RPID      string                    `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID protocol.URLEncodedBase64 `json:"id"`
		} `json:"user"`
		PubKeyCredParams []struct {
			Alg int64 `json:"alg"`
		} `json:"pubKeyCredParams"`
		AllowCredentials []struct {
			ID protocol.URLEncodedBase64 `json:"id"`
		} `json:"allowCredentials"`
		ExcludeCredentials []struct {
			ID protocol.URLEncodedBase64 `json:"id"`
		} `json:"excludeCredentials"`
		UserVerification string `json:"userVerification"`
		Extensions       struct {
			PRF *struct {
				Eval             *protocol.PRFValues           `json:"eval"`
				EvalByCredential map[string]protocol.PRFValues `json:"evalByCredential"`
			} `json:"prf"`
		} `json:"extensions"`
	} `json:"publicKey"`
}

func parseSoftOptions(t testing.TB, options []byte) softOptions {
	t.Helper()
	var o softOptions
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("options %s: %v", options, err)
	}
	if len(o.PublicKey.Challenge) == 0 {
		t.Fatalf("options without a challenge: %s", options)
	}
	return o
}

// create answers registration options with a new credential with a key
// of alg (0: ES256; -257: RS256), as navigator.credentials.create would,
// after edit (may be nil) changed the answer. It returns the credential
// and the RegistrationResponseJSON.
func (sa *softAuthenticator) create(t testing.TB, options []byte, alg int64, edit func(*softAnswer)) (*softCred, []byte) {
	t.Helper()
	o := parseSoftOptions(t, options)
	if alg == 0 {
		alg = algES256
	}
	c := &softCred{ID: make([]byte, 32), Handle: o.PublicKey.User.ID, Alg: alg, BE: sa.BE, BS: sa.BS, prfSecret: make([]byte, 32)}
	rand.Read(c.ID)
	rand.Read(c.prfSecret)
	var err error
	switch alg {
	case algES256:
		c.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case algRS256:
		c.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("soft authenticator: no key type for alg %d", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(sa.rpID))
	a := &softAnswer{
		ClientData: softClientData{Type: string(protocol.CreateCeremony), Challenge: b64(o.PublicKey.Challenge), Origin: sa.origin},
		RPIDHash:   rpHash[:],
		Flags:      protocol.FlagUserPresent | protocol.FlagUserVerified | protocol.FlagAttestedCredentialData,
		CredID:     c.ID, PublicKey: c.coseKey(t), Format: "none", AttStmt: map[string]any{},
		Transports: []string{"internal", "hybrid"},
		Extensions: map[string]any{},
	}
	if c.BE {
		a.Flags |= protocol.FlagBackupEligible
	}
	if c.BS {
		a.Flags |= protocol.FlagBackupState
	}
	if p := o.PublicKey.Extensions.PRF; p != nil {
		prf := map[string]any{"enabled": true}
		if p.Eval != nil && len(p.Eval.First) > 0 {
			prf["results"] = map[string]any{"first": b64(c.prf(p.Eval.First))}
		}
		a.Extensions["prf"] = prf
	}
	if edit != nil {
		edit(a)
	}
	c.ID, c.SignCount = a.CredID, a.SignCount
	c.BE, c.BS = a.Flags.HasBackupEligible(), a.Flags.HasBackupState()
	authData := a.authData(true)
	attObj, err := webauthncbor.Marshal(map[string]any{"fmt": a.Format, "attStmt": a.AttStmt, "authData": authData})
	if err != nil {
		t.Fatal(err)
	}
	resp := map[string]any{
		"id": b64(a.CredID), "rawId": b64(a.CredID), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64(a.clientDataJSON(t)), "attestationObject": b64(attObj),
			"authenticatorData": b64(authData), "publicKey": b64(c.spki(t)), "publicKeyAlgorithm": c.Alg,
			"transports": a.Transports,
		},
		"clientExtensionResults": a.Extensions,
	}
	return c, softJSON(t, resp)
}

// get answers request options with credential c, as
// navigator.credentials.get would, after edit (may be nil) changed the
// answer: the AuthenticationResponseJSON. The counter grows by one, the
// user handle is c's, and a PRF salt for c in the options (eval, or
// evalByCredential for c's ID) gets c's PRF output.
func (sa *softAuthenticator) get(t testing.TB, c *softCred, options []byte, edit func(*softAnswer)) []byte {
	t.Helper()
	o := parseSoftOptions(t, options)
	rpHash := sha256.Sum256([]byte(sa.rpID))
	a := &softAnswer{
		ClientData: softClientData{Type: string(protocol.AssertCeremony), Challenge: b64(o.PublicKey.Challenge), Origin: sa.origin},
		RPIDHash:   rpHash[:],
		Flags:      protocol.FlagUserPresent | protocol.FlagUserVerified,
		SignCount:  c.SignCount + 1,
		CredID:     c.ID,
		UserHandle: c.Handle,
		Extensions: map[string]any{},
	}
	if c.BE {
		a.Flags |= protocol.FlagBackupEligible
	}
	if c.BS {
		a.Flags |= protocol.FlagBackupState
	}
	if p := o.PublicKey.Extensions.PRF; p != nil {
		var salt []byte
		if v, ok := p.EvalByCredential[b64(c.ID)]; ok {
			salt = v.First
		} else if p.Eval != nil {
			salt = p.Eval.First
		}
		if len(salt) > 0 {
			a.Extensions["prf"] = map[string]any{"results": map[string]any{"first": b64(c.prf(salt))}}
		}
	}
	if edit != nil {
		edit(a)
	}
	c.SignCount = a.SignCount
	authData := a.authData(false)
	cdj := a.clientDataJSON(t)
	cdHash := sha256.Sum256(cdj)
	sig := c.sign(t, append(append([]byte(nil), authData...), cdHash[:]...))
	if a.Signature != nil {
		sig = a.Signature
	}
	if a.TamperAuthData != nil {
		authData = a.TamperAuthData(authData)
	}
	resp := map[string]any{"clientDataJSON": b64(cdj), "authenticatorData": b64(authData), "signature": b64(sig)}
	if a.UserHandle != nil {
		resp["userHandle"] = b64(a.UserHandle)
	}
	return softJSON(t, map[string]any{
		"id": b64(a.CredID), "rawId": b64(a.CredID), "type": "public-key", "authenticatorAttachment": "platform",
		"response": resp, "clientExtensionResults": a.Extensions,
	})
}

// softEnv is a harness (memstore, sessions, vault, lockout) whose Manager
// has RP ID example.com and the origin https://example.com, with a soft
// authenticator for them. Its requests come over TLS to example.com
// unless a test changes them (doWith).
type softEnv struct {
	*harness
	auth *softAuthenticator
}

// newSoftEnv makes a softEnv; edit (may be nil) changes the Config after
// the RP ID and origins are set.
func newSoftEnv(t *testing.T, edit func(*Config)) *softEnv {
	t.Helper()
	h := newHarness(t, func(c *Config) {
		c.RPID, c.Origins = softRPID, []string{softOrigin}
		if edit != nil {
			edit(c)
		}
	})
	h.host = softHost
	return &softEnv{harness: h, auth: newSoftAuthenticator(softRPID, softOrigin)}
}

// doTLS serves one request of b to https://example.com over TLS.
func (s *softEnv) doTLS(b *browser, fn func(w http.ResponseWriter, r *http.Request)) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.doWith(b, nil, fn)
}

// doWith serves one request of b through the session middleware, as
// harness.do does, but to https://example.com over TLS, after req (may be
// nil) changed the request (its Host, TLS, RemoteAddr, headers).
func (s *softEnv) doWith(b *browser, req func(r *http.Request), fn func(w http.ResponseWriter, r *http.Request)) *httptest.ResponseRecorder {
	s.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://"+softHost+"/", nil)
	r.Host = softHost
	r.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: softHost}
	r.RemoteAddr = "198.51.100.7:40000"
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	if req != nil {
		req(r)
	}
	w := httptest.NewRecorder()
	s.sessions.Handler(http.HandlerFunc(fn)).ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return w
}

// beginRegistration runs BeginRegistration for b's session (logged in)
// and returns the options.
func (s *softEnv) beginRegistration(b *browser) []byte {
	s.t.Helper()
	var opts []byte
	var err error
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) {
		opts, err = s.m.BeginRegistration(r, "alice@example.com")
	})
	if err != nil {
		s.t.Fatalf("BeginRegistration: %v", err)
	}
	return opts
}

func (s *softEnv) finishRegistration(b *browser, response []byte, name string) (Credential, error) {
	s.t.Helper()
	var cred Credential
	var err error
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { cred, err = s.m.FinishRegistration(r, response, name) })
	return cred, err
}

// register registers a new soft credential (ES256) for b's user: the
// whole ceremony, with edit (may be nil) changing the answer.
func (s *softEnv) register(b *browser, edit func(*softAnswer)) (*softCred, Credential, error) {
	s.t.Helper()
	return s.registerAlg(b, 0, edit)
}

func (s *softEnv) registerAlg(b *browser, alg int64, edit func(*softAnswer)) (*softCred, Credential, error) {
	s.t.Helper()
	c, resp := s.auth.create(s.t, s.beginRegistration(b), alg, edit)
	cred, err := s.finishRegistration(b, resp, "Soft key")
	return c, cred, err
}

// mustRegister registers a soft credential for b's user or fails the test.
func (s *softEnv) mustRegister(b *browser) *softCred {
	s.t.Helper()
	c, _, err := s.register(b, nil)
	if err != nil {
		s.t.Fatalf("FinishRegistration: %v\n%s", err, s.logs)
	}
	return c
}

// beginLogin runs BeginLogin for b (which gets the ceremony's cookie).
func (s *softEnv) beginLogin(b *browser) []byte {
	s.t.Helper()
	var opts []byte
	var err error
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { opts, err = s.m.BeginLogin(w, r) })
	if err != nil {
		s.t.Fatalf("BeginLogin: %v", err)
	}
	return opts
}

func (s *softEnv) finishLogin(b *browser, response []byte) (LoginResult, error) {
	s.t.Helper()
	var res LoginResult
	var err error
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) {
		res, err = s.m.FinishLogin(w, r, response, ratelimit.Source{}, LoginOptions{})
	})
	return res, err
}

// login runs a usernameless login of b with c, edit (may be nil)
// changing the answer.
func (s *softEnv) login(b *browser, c *softCred, edit func(*softAnswer)) (LoginResult, error) {
	s.t.Helper()
	return s.finishLogin(b, s.auth.get(s.t, c, s.beginLogin(b), edit))
}

// beginUnlock runs BeginUnlock for b's session.
func (s *softEnv) beginUnlock(b *browser) []byte {
	s.t.Helper()
	var opts []byte
	var err error
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { opts, err = s.m.BeginUnlock(r) })
	if err != nil {
		s.t.Fatalf("BeginUnlock: %v", err)
	}
	return opts
}

func (s *softEnv) finishUnlock(b *browser, response []byte) (UnlockResult, error) {
	s.t.Helper()
	var res UnlockResult
	var err error
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) {
		res, err = s.m.FinishUnlock(r, response, ratelimit.Source{})
	})
	return res, err
}

// unlock runs an unlock ceremony of b's session with c, edit (may be
// nil) changing the answer.
func (s *softEnv) unlock(b *browser, c *softCred, edit func(*softAnswer)) (UnlockResult, error) {
	s.t.Helper()
	return s.finishUnlock(b, s.auth.get(s.t, c, s.beginUnlock(b), edit))
}

// lock locks the vault of b's session.
func (s *softEnv) lock(b *browser) {
	s.t.Helper()
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) {
		if err := s.sessions.Lock(r.Context()); err != nil {
			s.t.Fatal(err)
		}
	})
}

// storedChallenge returns the challenge of the pending ceremony under id
// as the server stored it, and leaves the ceremony pending.
func (s *softEnv) storedChallenge(id []byte, want ceremonyState) []byte {
	s.t.Helper()
	st, sd, err := s.m.takeCeremony(context.Background(), id, want)
	if err != nil {
		s.t.Fatalf("no pending ceremony: %v", err)
	}
	if err := s.m.putCeremony(context.Background(), id, st, &sd); err != nil {
		s.t.Fatal(err)
	}
	c, err := base64.RawURLEncoding.DecodeString(sd.Challenge)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// stored is the user's passkey record as stored (zero if none).
func (s *softEnv) stored(userID string) storage.PasskeyRecord {
	s.t.Helper()
	sr, err := s.store.GetPasskeys(context.Background(), userID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.t.Fatal(err)
	}
	return sr
}

// TestSoftFlow runs the happy paths with the soft authenticator: a
// registration with the vault unlocked (its PRF output becomes the
// passkey's slot), a usernameless login from another browser, an unlock
// there, and the setup of a second passkey's slot through an unlock
// ceremony with the vault unlocked.
func TestSoftFlow(t *testing.T) {
	s := newSoftEnv(t, nil)
	alice := newBrowser()
	s.harness.login(alice, "alice", true)
	c, cred, err := s.register(alice, nil)
	if err != nil {
		t.Fatalf("FinishRegistration: %v\n%s", err, s.logs)
	}
	if !cred.PRF || !cred.CanUnlock || cred.Algorithm != algES256 || cred.AttestationFormat != "none" || cred.ID != b64(c.ID) {
		t.Fatalf("registered %+v", cred)
	}

	phone := newBrowser()
	res, err := s.login(phone, c, nil)
	if err != nil {
		t.Fatalf("FinishLogin: %v\n%s", err, s.logs)
	}
	info := s.current(phone)
	if res.UserID != "alice" || info.UserID != "alice" || !info.MultiFactor || info.Unlocked || res.Credential.SignCount != 1 {
		t.Fatalf("login %+v, session %+v", res, info)
	}
	un, err := s.unlock(phone, c, nil)
	if err != nil {
		t.Fatalf("FinishUnlock: %v\n%s", err, s.logs)
	}
	if un.SetUp || !s.current(phone).Unlocked || un.Credential.SignCount != 2 {
		t.Fatalf("unlock %+v, session %+v", un, s.current(phone))
	}

	// A second passkey registered with the vault locked gets no slot;
	// an unlock ceremony with the vault unlocked sets it up, and then it
	// unlocks.
	s.lock(phone)
	c2, cred2, err := s.register(phone, nil)
	if err != nil {
		t.Fatalf("second FinishRegistration: %v\n%s", err, s.logs)
	}
	if !cred2.PRF || cred2.CanUnlock {
		t.Fatalf("second passkey %+v", cred2)
	}
	if _, err := s.unlock(phone, c, nil); err != nil {
		t.Fatalf("FinishUnlock: %v\n%s", err, s.logs)
	}
	if un, err := s.unlock(phone, c2, nil); err != nil || !un.SetUp {
		t.Fatalf("setup unlock: %+v, %v", un, err)
	}
	s.lock(phone)
	if un, err := s.unlock(phone, c2, nil); err != nil || un.SetUp || !s.current(phone).Unlocked {
		t.Fatalf("unlock with the second passkey: %+v, %v", un, err)
	}
}
