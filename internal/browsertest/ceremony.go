package browsertest

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
)

// CeremonyPRFFile is the recorded passkey ceremonies with the PRF extension
// (one registration, then three discoverable logins: two with one PRF salt,
// one with another), captured from chromium's virtual authenticator by
// TestSmokePasskeyPRF -record; relative to this package's directory.
// testdata/SOURCE says how. Other packages' tests get it with
// [RecordedCeremonyPRF].
const CeremonyPRFFile = "testdata/ceremony-prf.json"

//go:embed testdata/ceremony-prf.json
var ceremonyPRF []byte

// RecordedCeremonyPRF returns a fresh copy of the recorded ceremonies of
// [CeremonyPRFFile] (embedded in the package at build time), for a test to
// use or tamper with.
func RecordedCeremonyPRF() (*Ceremony, error) {
	return parseCeremony(CeremonyPRFFile, ceremonyPRF)
}

// Ceremony is a recorded set of WebAuthn ceremonies: what the server sent
// (challenge, user, PRF salt) and what the browser answered, in the JSON
// shape of WebAuthn Level 3 (RegistrationResponseJSON and
// AuthenticationResponseJSON: binary fields as unpadded base64url, PRF
// outputs too), which WebAuthn server libraries parse.
type Ceremony struct {
	Source         string        `json:"source"`
	Browser        string        `json:"browser"`
	PlaywrightCore string        `json:"playwrightCore"`
	Authenticator  Authenticator `json:"authenticator"`
	Origin         string        `json:"origin"`
	RPID           string        `json:"rpId"`
	Registration   Registration  `json:"registration"`
	Assertions     []Assertion   `json:"assertions"`
}

// Registration is one navigator.credentials.create call: what the server
// asked and what the browser answered.
type Registration struct {
	Challenge Base64URL            `json:"challenge"`
	UserID    Base64URL            `json:"userId"`
	UserName  string               `json:"userName"`
	PRFSalt   Base64URL            `json:"prfSalt"`
	Response  RegistrationResponse `json:"response"`
}

// Assertion is one navigator.credentials.get call, discoverable (empty
// allowCredentials), with user verification required and a PRF salt.
type Assertion struct {
	Challenge Base64URL              `json:"challenge"`
	PRFSalt   Base64URL              `json:"prfSalt"`
	Response  AuthenticationResponse `json:"response"`
}

// RegistrationResponse is a PublicKeyCredential from create, as JSON.
type RegistrationResponse struct {
	ID                      string           `json:"id"`
	RawID                   Base64URL        `json:"rawId"`
	Type                    string           `json:"type"`
	AuthenticatorAttachment string           `json:"authenticatorAttachment"`
	Response                AttestationJSON  `json:"response"`
	ClientExtensionResults  ExtensionResults `json:"clientExtensionResults"`
}

// AttestationJSON is an AuthenticatorAttestationResponse as JSON.
type AttestationJSON struct {
	ClientDataJSON     Base64URL `json:"clientDataJSON"`
	AttestationObject  Base64URL `json:"attestationObject"`
	AuthenticatorData  Base64URL `json:"authenticatorData"`
	PublicKey          Base64URL `json:"publicKey"` // SubjectPublicKeyInfo, DER
	PublicKeyAlgorithm int       `json:"publicKeyAlgorithm"`
	Transports         []string  `json:"transports"`
}

// AuthenticationResponse is a PublicKeyCredential from get, as JSON.
type AuthenticationResponse struct {
	ID                      string           `json:"id"`
	RawID                   Base64URL        `json:"rawId"`
	Type                    string           `json:"type"`
	AuthenticatorAttachment string           `json:"authenticatorAttachment"`
	Response                AssertionJSON    `json:"response"`
	ClientExtensionResults  ExtensionResults `json:"clientExtensionResults"`
}

// AssertionJSON is an AuthenticatorAssertionResponse as JSON.
type AssertionJSON struct {
	ClientDataJSON    Base64URL `json:"clientDataJSON"`
	AuthenticatorData Base64URL `json:"authenticatorData"`
	Signature         Base64URL `json:"signature"` // ASN.1 DER ECDSA for ES256
	UserHandle        Base64URL `json:"userHandle"`
}

// ExtensionResults is getClientExtensionResults(), as JSON.
type ExtensionResults struct {
	PRF       *PRFOutput `json:"prf,omitempty"`
	CredProps *struct {
		RK bool `json:"rk"`
	} `json:"credProps,omitempty"`
}

// PRFOutput is the prf extension's client output.
type PRFOutput struct {
	Enabled *bool       `json:"enabled,omitempty"`
	Results *PRFResults `json:"results,omitempty"`
}

// PRFResults are the PRF outputs for the salts first and second.
type PRFResults struct {
	First  Base64URL `json:"first"`
	Second Base64URL `json:"second,omitempty"`
}

// Base64URL is bytes that JSON carries as unpadded base64url, as WebAuthn's
// JSON forms do.
type Base64URL []byte

// MarshalJSON encodes b as an unpadded base64url string.
func (b Base64URL) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.RawURLEncoding.EncodeToString(b))
}

// UnmarshalJSON decodes an unpadded base64url string (null gives nil).
func (b *Base64URL) UnmarshalJSON(data []byte) error {
	var s *string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s == nil {
		*b = nil
		return nil
	}
	v, err := base64.RawURLEncoding.DecodeString(*s)
	if err != nil {
		return fmt.Errorf("base64url: %w", err)
	}
	*b = v
	return nil
}

// LoadCeremony reads a recorded ceremony file such as [CeremonyPRFFile].
func LoadCeremony(path string) (*Ceremony, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCeremony(path, data)
}

func parseCeremony(path string, data []byte) (*Ceremony, error) {
	var c Ceremony
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("browsertest: %s: %w", path, err)
	}
	return &c, nil
}
