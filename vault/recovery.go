package vault

import (
	"fmt"

	"github.com/keyhold/keyhold/internal/recoverycode"
)

// A recovery key unlocks a vault when the passphrase is lost. It carries
// 160 bits from crypto/rand, written as 32 characters of Crockford's
// base32 in eight groups of four ("7Q2M-…"), easy to read aloud and to type.
// Input is normalised: case, spaces and dashes are ignored, and the
// letters O, I and L read as 0, 1 and 1. Login recovery codes (package
// totp) are written in the same format.
//
// Show it to the user once; the vault stores only a slot wrapped under a
// key derived from it. Using it consumes it (see
// [Vault.UnlockWithRecoveryKey]).
type RecoveryKey struct{ code string }

// Reveal returns the key's text, grouped for display. It is the only way
// to read it: String and Format redact it.
func (k RecoveryKey) Reveal() string { return k.code }

// String returns "[redacted]".
func (k RecoveryKey) String() string { return "[redacted]" }

// GoString returns "[redacted]".
func (k RecoveryKey) GoString() string { return "[redacted]" }

// Format prints "[redacted]" for every verb.
func (k RecoveryKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, "[redacted]") }

// MarshalText fails, so a recovery key is not logged or stored by accident.
func (k RecoveryKey) MarshalText() ([]byte, error) {
	return nil, ErrInvalidInput
}

// newRecoveryKey returns a fresh key and its 20 secret bytes.
func newRecoveryKey() (RecoveryKey, []byte) {
	code, secret := recoverycode.New()
	return RecoveryKey{code: code}, secret
}

// parseRecoveryKey normalises text and returns the key's secret bytes, or
// false if it is not a well-formed recovery key.
func parseRecoveryKey(text string) ([]byte, bool) { return recoverycode.Parse(text) }

// formatRecoveryKey writes a key's secret as its text.
func formatRecoveryKey(secret []byte) string { return recoverycode.Format(secret) }
