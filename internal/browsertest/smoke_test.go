package browsertest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var record = flag.Bool("record", false, "write "+CeremonyPRFFile+" from the ceremonies TestSmokePasskeyPRF runs")

// Authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// smokeServer serves testdata/smoke.html and keeps what the page posts.
type smokeServer struct {
	page   []byte
	mu     sync.Mutex
	posted map[string][]json.RawMessage
}

func (s *smokeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(s.page)
	case r.Method == http.MethodPost && (r.URL.Path == "/registration" || r.URL.Path == "/assertion"):
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil || !json.Valid(body) {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.posted[r.URL.Path] = append(s.posted[r.URL.Path], body)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/favicon.ico":
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

const smokeScript = `
await page.goto(arg.url);
const registration = await page.evaluate((o) => register(o), arg.registration);
const assertions = [];
for (const o of arg.assertions) assertions.push(await page.evaluate((o) => login(o), o));
const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
return { registration, assertions, residentCredentials: credentials.filter((c) => c.isResidentCredential).length };
`

// TestSmokePasskeyPRF proves the browser test environment end to end with
// no keyhold code: chromium with the virtual authenticator registers a
// discoverable ES256 credential with PRF on an http://localhost page, then
// logs in three times without a username (PRF salts A, A, B); the page
// posts each answer to the server. With -record it saves them as
// testdata/ceremony-prf.json.
func TestSmokePasskeyPRF(t *testing.T) {
	page, err := os.ReadFile("testdata/smoke.html")
	if err != nil {
		t.Fatal(err)
	}
	srv := &smokeServer{page: page, posted: map[string][]json.RawMessage{}}
	origin := ServeLocalhost(t, srv)
	s := Start(t, Options{})

	saltA, saltB := randomBytes(t, 32), randomBytes(t, 32)
	c := Ceremony{
		Browser:        "chromium " + s.BrowserVersion(),
		PlaywrightCore: s.PlaywrightVersion(),
		Authenticator:  Passkey(),
		Origin:         origin,
		RPID:           "localhost",
		Registration: Registration{
			Challenge: randomBytes(t, 32),
			UserID:    randomBytes(t, 64),
			UserName:  "smoke@example.test",
			PRFSalt:   saltA,
		},
		Assertions: []Assertion{
			{Challenge: randomBytes(t, 32), PRFSalt: saltA},
			{Challenge: randomBytes(t, 32), PRFSalt: saltA},
			{Challenge: randomBytes(t, 32), PRFSalt: saltB},
		},
	}
	b64 := base64.RawURLEncoding.EncodeToString
	type opts struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		UserID    string `json:"userId,omitempty"`
		UserName  string `json:"userName,omitempty"`
		Salt      string `json:"salt"`
	}
	arg := struct {
		URL          string `json:"url"`
		Registration opts   `json:"registration"`
		Assertions   []opts `json:"assertions"`
	}{URL: origin + "/", Registration: opts{
		Challenge: b64(c.Registration.Challenge), RPID: c.RPID,
		UserID: b64(c.Registration.UserID), UserName: c.Registration.UserName, Salt: b64(saltA),
	}}
	for _, a := range c.Assertions {
		arg.Assertions = append(arg.Assertions, opts{Challenge: b64(a.Challenge), RPID: c.RPID, Salt: b64(a.PRFSalt)})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.Eval(ctx, smokeScript, arg)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Registration        json.RawMessage   `json:"registration"`
		Assertions          []json.RawMessage `json:"assertions"`
		ResidentCredentials int               `json:"residentCredentials"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("script output %s: %v", out, err)
	}
	if got.ResidentCredentials != 1 {
		t.Errorf("the authenticator holds %d resident credentials, want 1", got.ResidentCredentials)
	}
	// What the script returned is what the page posted to the server.
	srv.mu.Lock()
	postedReg, postedAsserts := srv.posted["/registration"], srv.posted["/assertion"]
	srv.mu.Unlock()
	if len(postedReg) != 1 || len(postedAsserts) != len(c.Assertions) || len(got.Assertions) != len(c.Assertions) {
		t.Fatalf("posted %d registrations and %d assertions, returned %d assertions; want 1, %d, %d",
			len(postedReg), len(postedAsserts), len(got.Assertions), len(c.Assertions), len(c.Assertions))
	}
	decode := func(what string, returned, posted json.RawMessage, v any) {
		t.Helper()
		fresh := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := json.Unmarshal(returned, v); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := json.Unmarshal(posted, fresh); err != nil {
			t.Fatalf("%s posted: %v", what, err)
		}
		if !reflect.DeepEqual(v, fresh) {
			t.Errorf("%s: the page posted %s, the script returned %s", what, posted, returned)
		}
	}
	decode("registration", got.Registration, postedReg[0], &c.Registration.Response)
	for i := range c.Assertions {
		decode(fmt.Sprintf("assertion %d", i), got.Assertions[i], postedAsserts[i], &c.Assertions[i].Response)
	}

	for _, p := range ceremonyProblems(&c) {
		t.Error(p)
	}
	for _, m := range s.Console() {
		if m.Level == "error" || m.Level == "pageerror" || m.Level == "http" {
			t.Errorf("browser console: %s", m)
		}
	}
	if t.Failed() || !*record {
		return
	}
	c.Source = fmt.Sprintf("Recorded by `go test ./internal/browsertest -run TestSmokePasskeyPRF -record` "+
		"on %s: Debian's chromium %s (headless) driven by playwright-core %s, with a CDP virtual authenticator "+
		"(WebAuthn.addVirtualAuthenticator with the options under \"authenticator\"), on the page "+
		"internal/browsertest/testdata/smoke.html served at the origin below. One registration (ES256, "+
		"residentKey and userVerification required, prf with eval.first = registration.prfSalt), then three "+
		"logins with allowCredentials empty and userVerification required: PRF salts A, A, B. Random challenges, "+
		"user handle and salts; a test credential, no real secret.",
		time.Now().UTC().Format("2006-01-02"), s.BrowserVersion(), s.PlaywrightVersion())
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(CeremonyPRFFile, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", CeremonyPRFFile)
}

// TestRecordedCeremonyPRF checks the recorded ceremonies as the smoke test
// checks live ones (no browser needed): issue 13's unit tests build on them.
func TestRecordedCeremonyPRF(t *testing.T) {
	c, err := LoadCeremony(CeremonyPRFFile)
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := RecordedCeremonyPRF()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, embedded) {
		t.Error("RecordedCeremonyPRF differs from the file")
	}
	if c.Source == "" || c.Browser == "" {
		t.Error("recorded ceremony without its source")
	}
	for _, p := range ceremonyProblems(c) {
		t.Error(p)
	}
}

// TestCeremonyProblemsCatchesTampering shows that the checks of the two
// tests above can fail: each tampered copy of the recording is refused.
func TestCeremonyProblemsCatchesTampering(t *testing.T) {
	orig, err := LoadCeremony(CeremonyPRFFile)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b Base64URL, i int) Base64URL {
		b = append(Base64URL(nil), b...)
		b[i] ^= 1
		return b
	}
	cases := map[string]func(c *Ceremony){
		"wrong origin":              func(c *Ceremony) { c.Origin = "http://localhost:1" },
		"wrong RP ID":               func(c *Ceremony) { c.RPID = "example.com" },
		"other registration chal.":  func(c *Ceremony) { c.Registration.Challenge = flip(c.Registration.Challenge, 0) },
		"other assertion challenge": func(c *Ceremony) { c.Assertions[1].Challenge = flip(c.Assertions[1].Challenge, 3) },
		"no UV at registration": func(c *Ceremony) {
			ad := append(Base64URL(nil), c.Registration.Response.Response.AuthenticatorData...)
			ad[32] &^= flagUV
			c.Registration.Response.Response.AuthenticatorData = ad
		},
		"registration PRF output differs": func(c *Ceremony) {
			r := c.Registration.Response.ClientExtensionResults.PRF.Results
			r.First = flip(r.First, 0)
		},
		"no UV at login": func(c *Ceremony) {
			ad := append(Base64URL(nil), c.Assertions[0].Response.Response.AuthenticatorData...)
			ad[32] &^= flagUV
			c.Assertions[0].Response.Response.AuthenticatorData = ad
		},
		"bad signature": func(c *Ceremony) {
			c.Assertions[2].Response.Response.Signature = flip(c.Assertions[2].Response.Response.Signature, 20)
		},
		"other user handle": func(c *Ceremony) {
			c.Assertions[0].Response.Response.UserHandle = flip(c.Assertions[0].Response.Response.UserHandle, 0)
		},
		"short PRF output": func(c *Ceremony) {
			c.Assertions[0].Response.ClientExtensionResults.PRF.Results.First = make(Base64URL, 16)
		},
		"PRF not repeatable": func(c *Ceremony) {
			c.Assertions[1].Response.ClientExtensionResults.PRF.Results.First = flip(c.Assertions[1].Response.ClientExtensionResults.PRF.Results.First, 5)
		},
		"PRF ignores salt": func(c *Ceremony) {
			c.Assertions[2].Response.ClientExtensionResults.PRF.Results.First = c.Assertions[0].Response.ClientExtensionResults.PRF.Results.First
		},
		"PRF not enabled": func(c *Ceremony) { c.Registration.Response.ClientExtensionResults.PRF = nil },
	}
	if len(ceremonyProblems(orig)) != 0 {
		t.Fatal("the recording itself has problems (see TestRecordedCeremonyPRF)")
	}
	for name, tamper := range cases {
		c, err := RecordedCeremonyPRF()
		if err != nil {
			t.Fatal(err)
		}
		tamper(c)
		if len(ceremonyProblems(c)) == 0 {
			t.Errorf("%s: not noticed", name)
		}
	}
}

type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// ceremonyProblems checks a recorded or live ceremony against what the
// server asked for, as a relying party would (the signature included), and
// the PRF outputs against each other; it returns what is wrong.
func ceremonyProblems(c *Ceremony) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	rpIDHash := sha256.Sum256([]byte(c.RPID))
	if c.RPID != "localhost" || !strings.HasPrefix(c.Origin, "http://localhost:") {
		bad("origin %q, RP ID %q: want http://localhost:PORT and localhost", c.Origin, c.RPID)
	}
	checkClientData := func(what string, raw []byte, typ string, challenge []byte) {
		var cd clientData
		if err := json.Unmarshal(raw, &cd); err != nil {
			bad("%s: clientDataJSON: %v", what, err)
			return
		}
		if cd.Type != typ || cd.Challenge != base64.RawURLEncoding.EncodeToString(challenge) || cd.Origin != c.Origin || cd.CrossOrigin {
			bad("%s: clientDataJSON %s: want type %s, challenge %x, origin %s, not cross-origin", what, raw, typ, challenge, c.Origin)
		}
	}
	checkAuthData := func(what string, ad []byte, want byte) (flags byte, count uint32, rest []byte) {
		if len(ad) < 37 {
			bad("%s: authenticator data of %d bytes", what, len(ad))
			return 0, 0, nil
		}
		if !bytes.Equal(ad[:32], rpIDHash[:]) {
			bad("%s: RP ID hash %x, want SHA-256(%q)", what, ad[:32], c.RPID)
		}
		if ad[32]&want != want {
			bad("%s: flags %08b lack %08b (UP, UV, AT as due)", what, ad[32], want)
		}
		return ad[32], binary.BigEndian.Uint32(ad[33:37]), ad[37:]
	}

	reg := c.Registration.Response
	if reg.Type != "public-key" || reg.ID != base64.RawURLEncoding.EncodeToString(reg.RawID) || len(reg.RawID) == 0 {
		bad("registration: type %q, id %q, rawId %x", reg.Type, reg.ID, reg.RawID)
	}
	checkClientData("registration", reg.Response.ClientDataJSON, "webauthn.create", c.Registration.Challenge)
	_, regCount, attested := checkAuthData("registration", reg.Response.AuthenticatorData, flagUP|flagUV|flagAT)
	if len(attested) < 18 {
		bad("registration: no attested credential data")
	} else if n := int(binary.BigEndian.Uint16(attested[16:18])); len(attested) < 18+n || !bytes.Equal(attested[18:18+n], reg.RawID) {
		bad("registration: the attested credential ID is not rawId")
	}
	if !bytes.Contains(reg.Response.AttestationObject, reg.Response.AuthenticatorData) {
		bad("registration: the attestation object does not hold the authenticator data")
	}
	var pub *ecdsa.PublicKey
	if k, err := x509.ParsePKIXPublicKey(reg.Response.PublicKey); err != nil {
		bad("registration: public key: %v", err)
	} else if p, ok := k.(*ecdsa.PublicKey); !ok || p.Curve != elliptic.P256() || reg.Response.PublicKeyAlgorithm != -7 {
		bad("registration: public key %T, algorithm %d: want ES256 (-7)", k, reg.Response.PublicKeyAlgorithm)
	} else {
		pub = p
	}
	if prf := reg.ClientExtensionResults.PRF; prf == nil || prf.Enabled == nil || !*prf.Enabled {
		bad("registration: prf not enabled: %s", asJSON(prf))
	}

	prev := regCount
	outputs := make([][]byte, len(c.Assertions))
	for i, a := range c.Assertions {
		what := fmt.Sprintf("assertion %d", i)
		r := a.Response
		if r.ID != reg.ID || !bytes.Equal(r.RawID, reg.RawID) || r.Type != "public-key" {
			bad("%s: credential %q, want the registered %q", what, r.ID, reg.ID)
		}
		if !bytes.Equal(r.Response.UserHandle, c.Registration.UserID) {
			bad("%s: user handle %x, want %x", what, r.Response.UserHandle, c.Registration.UserID)
		}
		checkClientData(what, r.Response.ClientDataJSON, "webauthn.get", a.Challenge)
		flags, count, _ := checkAuthData(what, r.Response.AuthenticatorData, flagUP|flagUV)
		if flags&flagAT != 0 {
			bad("%s: AT flag set", what)
		}
		if count != 0 && count <= prev {
			bad("%s: sign count %d after %d", what, count, prev)
		}
		prev = count
		if pub != nil {
			cdHash := sha256.Sum256(r.Response.ClientDataJSON)
			signed := sha256.Sum256(append(append([]byte(nil), r.Response.AuthenticatorData...), cdHash[:]...))
			if !ecdsa.VerifyASN1(pub, signed[:], r.Response.Signature) {
				bad("%s: signature does not verify with the registered key", what)
			}
		}
		if prf := r.ClientExtensionResults.PRF; prf == nil || prf.Results == nil || len(prf.Results.First) != 32 {
			bad("%s: no 32-byte PRF output: %s", what, asJSON(prf))
		} else {
			outputs[i] = prf.Results.First
		}
	}
	if len(c.Assertions) != 3 {
		bad("%d assertions, want 3 (PRF salts A, A, B)", len(c.Assertions))
		return probs
	}
	saltA, saltB := c.Assertions[0].PRFSalt, c.Assertions[2].PRFSalt
	if !bytes.Equal(c.Assertions[1].PRFSalt, saltA) || bytes.Equal(saltA, saltB) || !bytes.Equal(c.Registration.PRFSalt, saltA) {
		bad("PRF salts are not A, A, B (registration A)")
	}
	if outputs[0] != nil && outputs[1] != nil && !bytes.Equal(outputs[0], outputs[1]) {
		bad("PRF: the same salt gave two outputs")
	}
	if outputs[0] != nil && outputs[2] != nil && bytes.Equal(outputs[0], outputs[2]) {
		bad("PRF: two salts gave one output")
	}
	// Chromium evaluates the PRF at registration too (hmac-secret-mc): the
	// same output as a login with the same salt.
	if prf := reg.ClientExtensionResults.PRF; prf != nil && prf.Results != nil && outputs[0] != nil && !bytes.Equal(prf.Results.First, outputs[0]) {
		bad("PRF: registration and login with one salt gave two outputs")
	}
	if outputs[0] != nil && bytes.Equal(outputs[0], saltA) {
		bad("PRF: the output is the salt")
	}
	return probs
}

// TestSessionErrors shows the helper's failures: a script that throws
// returns a *ScriptError with its message, the console is kept, and a
// script still running when its context ends kills the session, after
// which Eval returns ErrEnded.
func TestSessionErrors(t *testing.T) {
	s := Start(t, Options{NoAuthenticator: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s.AuthenticatorID() != "" {
		t.Errorf("NoAuthenticator: authenticator %q", s.AuthenticatorID())
	}
	v, err := s.Eval(ctx, `await page.setContent('<p>hi</p>'); await page.evaluate(() => console.error('boom from the page')); return {sum: arg.a + arg.b}`, map[string]int{"a": 2, "b": 3})
	if err != nil || string(v) != `{"sum":5}` {
		t.Fatalf("Eval = %s, %v; want {\"sum\":5}", v, err)
	}
	var scriptErr *ScriptError
	if _, err := s.Eval(ctx, `throw new Error('thrown on purpose')`, nil); !errors.As(err, &scriptErr) || !strings.Contains(scriptErr.Message, "thrown on purpose") {
		t.Errorf("a throwing script: %v, want a *ScriptError with its message", err)
	}
	found := false
	for _, m := range s.Console() {
		found = found || (m.Level == "error" && m.Text == "boom from the page")
	}
	if !found {
		t.Errorf("console %v lacks the page's error", s.Console())
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := s.Eval(short, `await new Promise(() => {})`, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a script past its context: %v, want context.DeadlineExceeded", err)
	}
	if _, err := s.Eval(ctx, `return 1`, nil); !errors.Is(err, ErrEnded) {
		t.Errorf("Eval after a kill: %v, want ErrEnded", err)
	}
}

func asJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
