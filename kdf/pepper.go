package kdf

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// A Pepper is a server-side secret key mixed into password hashes, kept
// outside the database that holds them (in a secrets manager or the
// process environment), so that a stolen hash table alone cannot be
// attacked offline. Each hash records the pepper's id (never the key) in
// its keyid parameter, so peppers can be rotated: hash with the new one,
// keep the old ones for verification, and [Hasher.Verify] reports
// needs-rehash for hashes made with an old pepper.
//
// The password is replaced by HMAC-SHA256(key, NFKC(password)) before
// hashing. A Pepper prints as its id only; its key never reaches a log.
type Pepper struct {
	id  string
	key []byte
}

// MinPepperKeyLen is the minimum pepper key length in bytes.
const MinPepperKeyLen = 32

// maxPepperIDLen is the PHC string format's limit for keyid (8 bytes).
const maxPepperIDLen = 8

// NewPepper returns a Pepper with the given id (1 to 8 ASCII letters,
// digits, '-' or '_') and key (at least 32 bytes from a CSPRNG). The key is
// copied.
func NewPepper(id string, key []byte) (Pepper, error) {
	if err := checkPepperID(id); err != nil {
		return Pepper{}, err
	}
	if len(key) < MinPepperKeyLen {
		return Pepper{}, fmt.Errorf("kdf: pepper %q key is %d bytes, need at least %d", id, len(key), MinPepperKeyLen)
	}
	return Pepper{id: id, key: append([]byte(nil), key...)}, nil
}

// ID returns the pepper's id, as recorded in hashes made with it.
func (p Pepper) ID() string { return p.id }

// String returns a redacted description that names only the id.
func (p Pepper) String() string { return "kdf.Pepper{id: " + p.id + ", key: [redacted]}" }

// GoString returns the same redacted description as String.
func (p Pepper) GoString() string { return p.String() }

// MarshalText fails, so a Pepper cannot be serialised by accident.
func (p Pepper) MarshalText() ([]byte, error) {
	return nil, fmt.Errorf("kdf: a Pepper cannot be marshalled")
}

// apply returns HMAC-SHA256(key, input).
func (p Pepper) apply(input []byte) []byte {
	mac := hmac.New(sha256.New, p.key)
	mac.Write(input)
	return mac.Sum(nil)
}

func checkPepperID(id string) error {
	if id == "" || len(id) > maxPepperIDLen {
		return fmt.Errorf("kdf: pepper id must be 1 to %d characters", maxPepperIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("kdf: pepper id may hold only ASCII letters, digits, '-' and '_'")
		}
	}
	return nil
}

// encodePepperID encodes an id for the keyid PHC parameter (base64 of its
// bytes, as the PHC format specifies for Argon2's keyid).
func encodePepperID(id string) string { return b64.EncodeToString([]byte(id)) }

func decodePepperID(s string) (string, error) {
	raw, err := decodeB64("keyid", s, maxPepperIDLen)
	if err != nil {
		return "", err
	}
	if err := checkPepperID(string(raw)); err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return string(raw), nil
}
