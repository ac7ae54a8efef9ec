package session

import (
	"fmt"
	"strings"
)

// Factors is a set of authentication factors: the ones a session's
// authentication proved (Info.Factors). Its zero value is the empty set.
// Combine factors with |: FactorPassword | FactorTOTP.
type Factors uint8

// The authentication factors. Their values are the bits stored in a
// session record (FORMAT.md §4.3): they never change.
const (
	// FactorPassword is something the user knows: a password (or a
	// passphrase) checked by the application.
	FactorPassword Factors = 1 << 0
	// FactorTOTP is something the user has: a TOTP code from an enrolled
	// authenticator app.
	FactorTOTP Factors = 1 << 1
	// FactorRecoveryCode is something the user has: one of their login
	// recovery codes, standing in for the second factor.
	FactorRecoveryCode Factors = 1 << 2
	// FactorPasskey is a WebAuthn passkey whose authenticator verified
	// the user (the UV flag: a PIN or a biometric unlocked the key), as
	// package passkey requires: a multi-factor cryptographic
	// authenticator (NIST SP 800-63B §5.1.9), something the user has
	// unlocked by something they know or are. It is rated multi-factor
	// by itself. Record it only for an assertion whose UV flag was set.
	FactorPasskey Factors = 1 << 3

	// knownFactors is every factor this version knows.
	knownFactors = FactorPassword | FactorTOTP | FactorRecoveryCode | FactorPasskey
)

// factorNames are the names String uses, in the order of the bits.
var factorNames = [...]struct {
	f    Factors
	name string
}{
	{FactorPassword, "password"},
	{FactorTOTP, "totp"},
	{FactorRecoveryCode, "recovery_code"},
	{FactorPasskey, "passkey"},
}

// Has reports whether s holds every factor of f. Has(0) is false: no
// factor is never "had".
func (s Factors) Has(f Factors) bool {
	return f != 0 && s&f == f
}

// String names the factors of s joined by "+", in a fixed order
// ("password+totp"), or "none" for the empty set. Bits that name no
// factor this version knows are shown in hex ("password+0x40").
func (s Factors) String() string {
	if s == 0 {
		return "none"
	}
	var parts []string
	for _, n := range factorNames {
		if s&n.f != 0 {
			parts = append(parts, n.name)
		}
	}
	if rest := s &^ knownFactors; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#02x", uint8(rest)))
	}
	return strings.Join(parts, "+")
}

// MultiFactor reports whether s is a multi-factor authentication. The rule
// is kept simple: a user-verified passkey is multi-factor by itself (see
// FactorPasskey), and a password plus any other factor (TOTP, a recovery
// code) is, being something known and something possessed; anything else
// is not, such as two possession factors without a password (a TOTP code
// and a recovery code).
func (s Factors) MultiFactor() bool {
	return s.Has(FactorPasskey) || (s.Has(FactorPassword) && s&knownFactors&^FactorPassword != 0)
}

// valid reports whether s is a non-empty set of known factors.
func (s Factors) valid() bool {
	return s != 0 && s&^knownFactors == 0
}
