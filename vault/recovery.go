package vault

import (
	"crypto/rand"
	"strings"
)

// A recovery key unlocks a vault when the passphrase is lost. It carries
// 160 bits from crypto/rand, written as 32 characters of Crockford's
// base32 in eight groups of four ("7Q2M-…"), easy to read aloud and to type.
// Input is normalised: case, spaces and dashes are ignored, and the
// letters O, I and L read as 0, 1 and 1.
//
// Show it to the user once; the vault stores only a slot wrapped under a
// key derived from it. Using it consumes it (see
// [Vault.UnlockWithRecoveryKey]).
type RecoveryKey struct{ code string }

const (
	recoveryKeyBytes = 20
	recoveryKeyChars = 32
	crockford        = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// Reveal returns the key's text, grouped for display. It is the only way
// to read it: String and Format redact it.
func (k RecoveryKey) Reveal() string { return k.code }

// String returns "[redacted]".
func (k RecoveryKey) String() string { return "[redacted]" }

// GoString returns "[redacted]".
func (k RecoveryKey) GoString() string { return "[redacted]" }

// MarshalText fails, so a recovery key is not logged or stored by accident.
func (k RecoveryKey) MarshalText() ([]byte, error) {
	return nil, ErrInvalidInput
}

// newRecoveryKey returns a fresh key and its 20 secret bytes.
func newRecoveryKey() (RecoveryKey, []byte) {
	secret := make([]byte, recoveryKeyBytes)
	rand.Read(secret)
	return RecoveryKey{code: formatRecoveryKey(secret)}, secret
}

func formatRecoveryKey(secret []byte) string {
	var sb strings.Builder
	var acc uint64
	bits := 0
	n := 0
	for _, b := range secret {
		acc = acc<<8 | uint64(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			if n > 0 && n%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(crockford[(acc>>bits)&31])
			n++
		}
	}
	return sb.String()
}

// parseRecoveryKey normalises text and returns the key's secret bytes, or
// false if it is not a well-formed recovery key.
func parseRecoveryKey(text string) ([]byte, bool) {
	if len(text) > 4*recoveryKeyChars {
		return nil, false
	}
	var acc uint64
	bits, n := 0, 0
	out := make([]byte, 0, recoveryKeyBytes)
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		v := strings.IndexByte(crockford, c)
		if v < 0 {
			return nil, false
		}
		n++
		acc = acc<<5 | uint64(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	if n != recoveryKeyChars || len(out) != recoveryKeyBytes {
		return nil, false
	}
	return out, true
}
