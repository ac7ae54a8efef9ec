package kdf

import (
	"errors"
	"fmt"
	"strings"
)

// ErrPasswordChangeRequired is what [Hasher.Verify] returns when the
// password matches a hash marked by [MarkCompromised]: the user proved the
// password, and must now choose a new one before doing anything else. It is
// not a wrong password (a lockout counts it as a success: ratelimit does),
// and it is the only way a password is ever made to expire: keyhold has no
// periodic expiry (NIST SP 800-63B §3.1.1.2 item 6; ASVS V6.2.10).
var ErrPasswordChangeRequired = errors.New("kdf: password matched but must be changed")

// compromisedMark prefixes a marked hash. No format this package reads,
// nor any other system's, starts with it. (Not "!": /etc/shadow and
// systems copied from it put "!" before a hash to disable the account, and
// such an imported entry must stay refused, not turn into "change your
// password" for whoever knows the old one.)
const compromisedMark = "$keyhold-compromised$"

// MarkCompromised returns encoded marked so that a later [Hasher.Verify]
// with the right password returns [ErrPasswordChangeRequired] instead of
// success, and a wrong one still [ErrMismatch] after the same work. Store
// the result in place of encoded (the same column: keyhold keeps no table
// of users); hashing the new password ([Hasher.Hash]) gives an unmarked
// hash, which clears the mark when stored. Use it when the password is
// known or suspected to be compromised (a breach, an administrator's
// decision), never on a schedule.
//
// Marking a marked hash returns it unchanged. An empty value, or one that
// is not a hash this package reads, is refused with an error matching
// ErrMalformedHash or ErrUnsupportedAlgorithm; a hash whose parameters are
// over [DefaultLimits] is marked all the same (the Hasher that verifies it
// decides). The error never quotes encoded.
func MarkCompromised(encoded string) (string, error) {
	if IsMarkedCompromised(encoded) {
		return encoded, nil
	}
	if encoded == "" {
		return "", fmt.Errorf("%w: empty hash", ErrMalformedHash)
	}
	if _, err := parseStored(encoded, DefaultLimits()); err != nil && !errors.Is(err, ErrParamsOutOfBounds) {
		return "", err
	}
	return compromisedMark + encoded, nil
}

// IsMarkedCompromised reports whether encoded was marked by
// [MarkCompromised] (a cheap string test, no KDF run): an application may
// use it to list the accounts that must change their password.
func IsMarkedCompromised(encoded string) bool {
	return strings.HasPrefix(encoded, compromisedMark)
}
