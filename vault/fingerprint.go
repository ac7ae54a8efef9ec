package vault

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/keyhold/keyhold/internal/recoverycode"
)

// labelFingerprint starts HKDF's info for a key fingerprint (FORMAT.md
// §3.7).
const labelFingerprint = "keyhold/v1/vault/fingerprint\x00"

// fingerprintLen is a fingerprint's length in bytes: 80 bits, 16
// characters of Crockford's base32.
const fingerprintLen = 10

// fingerprintInfo is HKDF's info for a key fingerprint:
// label ‖ 0x00 ‖ u16(len(user ID)) ‖ user ID ‖ u32 key version.
func fingerprintInfo(userID string, version uint32) []byte {
	b := make([]byte, 0, len(labelFingerprint)+2+len(userID)+4)
	b = append(b, labelFingerprint...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(userID)))
	b = append(b, userID...)
	return binary.BigEndian.AppendUint32(b, version)
}

// fingerprint derives the fingerprint of master key mk of userID at
// version and writes it as four dash-separated groups of four characters.
func fingerprint(mk []byte, userID string, version uint32) (string, error) {
	f, err := hkdf.Key(sha256.New, mk, nil, string(fingerprintInfo(userID, version)), fingerprintLen)
	if err != nil {
		return "", fmt.Errorf("vault: deriving fingerprint: %w", err)
	}
	return recoverycode.Format(f), nil
}

// Fingerprint returns a short fingerprint of this vault's current master
// key, such as "7Q2M-K4DX-0B9S-RT3A": 80 bits derived from the key with
// HKDF-SHA256, bound to the user ID and the key version (FORMAT.md §3.7).
// Two devices that unlocked the same vault show the same fingerprint; a
// vault the server substituted (another master key) shows another. It
// detects a substitution only when the user compares the two fingerprints
// over a channel the server does not control (side by side, read aloud,
// not through the application's own pages from the same server).
//
// The fingerprint changes after [Vault.RotateMasterKey]. It is derived
// from the key, not a hash of it, and reveals nothing usable about the
// key, but it is not a secret either: it tells anyone who sees it which
// vault and key version a device holds. It fails with ErrLocked once u is
// locked.
func (u *Unlocked) Fingerprint() (string, error) {
	if u == nil {
		return "", errNilUnlocked
	}
	mk, err := u.masterKey()
	if err != nil {
		return "", err
	}
	defer clear(mk)
	return fingerprint(mk, u.userID, u.version)
}
