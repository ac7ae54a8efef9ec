package session

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Tokens and the labels that separate their uses (FORMAT.md §4).
const (
	tokenLen        = 32 // bytes of randomness in every token
	tokenStringLen  = 43 // base64url without padding
	familyIDLen     = 16
	refreshRawLen   = familyIDLen + tokenLen
	refreshStrLen   = 64
	labelCookieID   = "keyhold/v1/session/cookie-id\x00"
	labelBearerID   = "keyhold/v1/session/bearer-id\x00"
	labelFamilyID   = "keyhold/v1/session/refresh-family\x00"
	labelRefreshTok = "keyhold/v1/session/refresh-token\x00"
	labelFamilyDev  = "keyhold/v1/session/family-device\x00"
	labelCustodyKey = "keyhold/v1/session/custody-key"
)

var b64 = base64.RawURLEncoding

// newToken returns 32 random bytes.
func newToken() []byte {
	t := make([]byte, tokenLen)
	rand.Read(t)
	return t
}

// parseToken decodes a token string, refusing anything that is not exactly
// 43 characters of unpadded base64url in canonical form.
func parseToken(s string) ([]byte, bool) {
	if len(s) != tokenStringLen {
		return nil, false
	}
	t, err := b64.Strict().DecodeString(s)
	if err != nil || len(t) != tokenLen {
		return nil, false
	}
	return t, true
}

// labelledHash is SHA-256(label ‖ parts...).
func labelledHash(label string, parts ...[]byte) []byte {
	h := sha256.New()
	h.Write([]byte(label))
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// sessionID is the store key of a session: the store never sees the token.
func sessionID(kind kind, token []byte) []byte {
	if kind == kindBearer {
		return labelledHash(labelBearerID, token)
	}
	return labelledHash(labelCookieID, token)
}

// custodyKey is the key that seals the vault's keys in an unlocked session:
// HKDF-Expand with the token as the pseudorandom key. The token is 32
// uniformly random bytes, so HKDF's extract step adds nothing (RFC 5869
// §3.3) and is skipped: this runs on every unlocked request.
func custodyKey(token []byte) ([]byte, error) {
	return hkdf.Expand(sha256.New, token, labelCustodyKey, 32)
}

// parseRefreshToken splits a refresh token into family ID and secret.
func parseRefreshToken(s string) (family, secret []byte, ok bool) {
	if len(s) != refreshStrLen {
		return nil, nil, false
	}
	raw, err := b64.Strict().DecodeString(s)
	if err != nil || len(raw) != refreshRawLen {
		return nil, nil, false
	}
	return raw[:familyIDLen], raw[familyIDLen:], true
}

func familyStoreID(family []byte) []byte { return labelledHash(labelFamilyID, family) }

// familyDeviceID is the store key of a refresh family's device record: a
// hash of the family's store ID under its own label, so no token a client
// holds hashes to it as a session ID (and its record's kind is checked
// besides).
func familyDeviceID(famID []byte) []byte { return labelledHash(labelFamilyDev, famID) }

func refreshTokenHash(family, secret []byte) []byte {
	return labelledHash(labelRefreshTok, family, secret)
}
