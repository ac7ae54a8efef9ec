package passkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// These tests cover the attestation policy (PKY-13): with
// Config.AttestationRoots set, registration asks for "direct" attestation
// and takes only a statement whose x5c chains to a configured root.

// testCA is a certificate authority of the tests: a root, or an
// intermediate under one.
type testCA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newTestKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newTestCA makes a CA named cn, self-signed when parent is nil, valid
// for a day either side of the real time.
func newTestCA(t testing.TB, cn string, parent *testCA) *testCA {
	t.Helper()
	key := newTestKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: testSerial(t), Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"Keyhold Test"}, CommonName: cn},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, der: der, key: key}
}

// pool is a CertPool of the CA alone.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// testAttestationCert is an attestation certificate as WebAuthn §8.2.1
// wants it for packed: version 3, subject C, O, OU "Authenticator
// Attestation" and CN, not a CA; signed by ca, valid from notBefore to
// notAfter.
func testAttestationCert(t testing.TB, ca *testCA, notBefore, notAfter time.Time) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := newTestKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: testSerial(t),
		Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"Keyhold Test Authenticators"},
			OrganizationalUnit: []string{"Authenticator Attestation"}, CommonName: "Keyhold Test Key"},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: false,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// packed returns an edit of a registration answer that gives it a packed
// attestation statement (alg ES256) signed by key over authData ‖
// SHA-256(clientDataJSON), with x5c (nil: self attestation, signed by a
// new credential key that replaces the answer's).
func packed(t testing.TB, key *ecdsa.PrivateKey, x5c ...[]byte) func(*softAnswer) {
	return func(a *softAnswer) {
		t.Helper()
		if x5c == nil {
			self := &softCred{Alg: algES256, ec: newTestKey(t)}
			a.PublicKey, key = self.coseKey(t), self.ec
		}
		cdHash := sha256.Sum256(a.clientDataJSON(t))
		signer := &softCred{Alg: algES256, ec: key}
		a.Format = "packed"
		a.AttStmt = map[string]any{"alg": int64(algES256), "sig": signer.sign(t, append(a.authData(true), cdHash[:]...))}
		if x5c != nil {
			chain := make([]any, len(x5c))
			for i, c := range x5c {
				chain[i] = c
			}
			a.AttStmt["x5c"] = chain
		}
	}
}

// optionsAttestation is the attestation conveyance registration options
// ask for.
func optionsAttestation(t testing.TB, options []byte) string {
	t.Helper()
	var o struct {
		PublicKey struct {
			Attestation string `json:"attestation"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatal(err)
	}
	return o.PublicKey.Attestation
}

// attestationEnv is a softEnv whose Manager trusts root's attestations
// (none: AttestationRoots nil), with alice logged in.
func attestationEnv(t *testing.T, root *testCA) (*softEnv, *browser) {
	t.Helper()
	s := newSoftEnv(t, func(c *Config) {
		if root != nil {
			c.AttestationRoots = root.pool()
		}
	})
	alice := newBrowser()
	s.harness.login(alice, "alice", true)
	return s, alice
}

// untrusted is the reason of a chain to no configured root.
const untrusted = "does not verify to a configured root"

// registerRefused runs a registration with edit and wants it
// ErrRegistrationFailed for the reason why (so that go-webauthn's own
// checks, which come first, did not refuse it) with nothing stored.
func registerRefused(t *testing.T, s *softEnv, b *browser, why string, edit func(*softAnswer)) {
	t.Helper()
	_, cred, err := s.register(b, edit)
	if !errors.Is(err, ErrRegistrationFailed) || !strings.Contains(err.Error(), why) {
		t.Fatalf("registration: %+v, %v; want ErrRegistrationFailed: …%s…\n%s", cred, err, why, s.logs)
	}
	if sr := s.stored("alice"); sr.Version != 0 || len(sr.CredentialIDs) != 0 {
		t.Fatalf("a refused registration stored %+v", sr)
	}
}

// With AttestationRoots set, registration asks for "direct" attestation
// and accepts a packed statement chaining to the configured root, directly
// or through an intermediate the statement carries.
func TestAttestationRootsAccepted(t *testing.T) {
	root := newTestCA(t, "Keyhold Test Root", nil)
	inter := newTestCA(t, "Keyhold Test Intermediate", root)
	now := time.Now()

	s, alice := attestationEnv(t, root)
	if got := optionsAttestation(t, s.beginRegistration(alice)); got != "direct" {
		t.Fatalf("options ask for attestation %q, want \"direct\"", got)
	}
	leaf, key := testAttestationCert(t, root, now.Add(-time.Hour), now.Add(time.Hour))
	_, cred, err := s.register(alice, packed(t, key, leaf))
	if err != nil {
		t.Fatalf("packed attestation by the root: %v\n%s", err, s.logs)
	}
	if cred.AttestationFormat != "packed" {
		t.Fatalf("stored attestation format %q, want packed", cred.AttestationFormat)
	}

	// Another user (alice's next passkey would need a multi-factor
	// session).
	bob := newBrowser()
	s.harness.login(bob, "bob", true)
	leaf, key = testAttestationCert(t, inter, now.Add(-time.Hour), now.Add(time.Hour))
	_, cred, err = s.register(bob, packed(t, key, leaf, inter.der))
	if err != nil {
		t.Fatalf("packed attestation through an intermediate: %v\n%s", err, s.logs)
	}
	if cred.AttestationFormat != "packed" || len(s.stored("bob").CredentialIDs) != 1 {
		t.Fatalf("stored attestation format %q, record %+v", cred.AttestationFormat, s.stored("bob"))
	}
}

// PKY-13: with policy=direct, an attestation chaining to an untrusted root
// fails, and stores nothing; so does one whose intermediate the statement
// leaves out, and one that brings the untrusted root along.
func TestAttestationUntrustedRootRefused(t *testing.T) {
	root := newTestCA(t, "Keyhold Test Root", nil)
	other := newTestCA(t, "Keyhold Test Root", nil) // same name, another key
	inter := newTestCA(t, "Keyhold Test Intermediate", root)
	now := time.Now()
	s, alice := attestationEnv(t, root)

	leaf, key := testAttestationCert(t, other, now.Add(-time.Hour), now.Add(time.Hour))
	registerRefused(t, s, alice, untrusted, packed(t, key, leaf))
	registerRefused(t, s, alice, untrusted, packed(t, key, leaf, other.der))

	leaf, key = testAttestationCert(t, inter, now.Add(-time.Hour), now.Add(time.Hour))
	registerRefused(t, s, alice, untrusted, packed(t, key, leaf))
}

// With AttestationRoots set, "none" attestation and self attestation
// (packed without x5c, signed by the credential's own key) are refused.
func TestAttestationRootsRefuseNoneAndSelf(t *testing.T) {
	root := newTestCA(t, "Keyhold Test Root", nil)
	s, alice := attestationEnv(t, root)
	registerRefused(t, s, alice, `"none" of type "none" is not chained`, nil) // the soft authenticator's "none"
	registerRefused(t, s, alice, `"packed" of type "basic_surrogate" is not chained`, packed(t, nil))
}

// The chain is checked at Config.Now: an attestation certificate valid at
// the real time (go-webauthn's own check passes) but expired by the
// Manager's clock is refused.
func TestAttestationExpiredByConfigNow(t *testing.T) {
	root := newTestCA(t, "Keyhold Test Root", nil)
	now := time.Now()
	s := newSoftEnv(t, func(c *Config) { c.AttestationRoots = root.pool() })
	s.clock.Advance(30 * time.Minute) // the challenge store bounds how far ahead of the real time
	alice := newBrowser()
	s.harness.login(alice, "alice", true)

	leaf, key := testAttestationCert(t, root, now.Add(-time.Hour), now.Add(10*time.Minute))
	registerRefused(t, s, alice, "expired", packed(t, key, leaf))
	// The same kind of certificate, still valid at the Manager's clock,
	// passes: only the time refused the first.
	leaf, key = testAttestationCert(t, root, now.Add(-time.Hour), now.Add(2*time.Hour))
	if _, _, err := s.register(alice, packed(t, key, leaf)); err != nil {
		t.Fatalf("attestation valid at Config.Now: %v\n%s", err, s.logs)
	}
}

// Without AttestationRoots (the default), registration asks for "none"
// and keeps a verified packed statement whatever its root.
func TestAttestationDefaultNone(t *testing.T) {
	other := newTestCA(t, "Keyhold Test Root", nil)
	now := time.Now()
	s, alice := attestationEnv(t, nil)
	if got := optionsAttestation(t, s.beginRegistration(alice)); got != "none" {
		t.Fatalf("options ask for attestation %q, want \"none\"", got)
	}
	leaf, key := testAttestationCert(t, other, now.Add(-time.Hour), now.Add(time.Hour))
	_, cred, err := s.register(alice, packed(t, key, leaf))
	if err != nil {
		t.Fatalf("packed attestation without AttestationRoots: %v\n%s", err, s.logs)
	}
	if cred.AttestationFormat != "packed" {
		t.Fatalf("stored attestation format %q, want packed", cred.AttestationFormat)
	}
	bob := newBrowser()
	s.harness.login(bob, "bob", true)
	if _, cred, err = s.register(bob, packed(t, nil)); err != nil || cred.AttestationFormat != "packed" {
		t.Fatalf("self attestation without AttestationRoots: %+v, %v", cred, err)
	}
}
