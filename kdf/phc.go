package kdf

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// b64 is the PHC string format's base64: the standard alphabet without
// padding, strict about unused trailing bits so that every hash has exactly
// one encoding.
var b64 = base64.RawStdEncoding.Strict()

// phcFields splits "$id$f1$f2…" into its fields after checking the length
// bound, so no parsing work is done on an oversized input.
func phcFields(encoded string, lim Limits) ([]string, error) {
	if len(encoded) > lim.MaxEncodedLength {
		return nil, outOfBounds("encoded length", uint64(len(encoded)), uint64(lim.MaxEncodedLength), true)
	}
	if !strings.HasPrefix(encoded, "$") {
		return nil, fmt.Errorf("%w: missing leading '$'", ErrMalformedHash)
	}
	return strings.Split(encoded[1:], "$"), nil
}

// parsePHCParams splits "a=1,b=2" and checks that the names are exactly
// want, in that order, optionally followed by the names in optional (each
// at most once, in order).
func parsePHCParams(s string, want []string, optional []string) (map[string]string, error) {
	parts := strings.Split(s, ",")
	out := make(map[string]string, len(parts))
	names := append(append([]string(nil), want...), optional...)
	next := 0
	for _, part := range parts {
		name, value, ok := strings.Cut(part, "=")
		if !ok || value == "" {
			return nil, fmt.Errorf("%w: a parameter is not name=value", ErrMalformedHash)
		}
		for next < len(names) && names[next] != name {
			if next < len(want) {
				return nil, fmt.Errorf("%w: expected parameter %q", ErrMalformedHash, names[next])
			}
			next++
		}
		if next == len(names) {
			return nil, fmt.Errorf("%w: unexpected or repeated parameter", ErrMalformedHash)
		}
		out[name] = value
		next++
	}
	if next < len(want) {
		return nil, fmt.Errorf("%w: missing parameter %q", ErrMalformedHash, want[next])
	}
	return out, nil
}

// parseDecimal parses a canonical unsigned decimal (no sign, no leading
// zeros) of at most bits bits.
func parseDecimal(name, s string, bits int) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: parameter %s is not a canonical decimal", ErrMalformedHash, name)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: parameter %s is not a canonical decimal", ErrMalformedHash, name)
		}
	}
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil { // all digits, so the only error is a value out of range
		return 0, outOfBounds(name, ^uint64(0), 1<<bits-1, true)
	}
	return v, nil
}

// The base64 alphabets of the formats this package reads.
const (
	stdAlphabet  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	ab64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./"
)

// inAlphabet reports whether every byte of s is one of alphabet's, with at
// most maxPad '=' at the end. Go's base64 decoders skip '\r' and '\n'
// anywhere, even in Strict mode, so without this check a field with a line
// break inside would decode to the same bytes as the field without it: a
// second encoding of one value. Every base64 field is checked with it
// before it is decoded.
func inAlphabet(s, alphabet string, maxPad int) bool {
	n := len(s)
	for pad := 0; pad < maxPad && n > 0 && s[n-1] == '='; pad++ {
		n--
	}
	for i := 0; i < n; i++ {
		if strings.IndexByte(alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// decodeB64 decodes a PHC base64 field after bounding its length, so a
// crafted field cannot make the decoder allocate more than maxLen bytes.
// Only the standard alphabet is accepted, without padding or line breaks.
func decodeB64(what, s string, maxLen int) ([]byte, error) {
	if b64.DecodedLen(len(s)) > maxLen {
		return nil, outOfBounds(what+" length", uint64(b64.DecodedLen(len(s))), uint64(maxLen), true)
	}
	if !inAlphabet(s, stdAlphabet, 0) {
		return nil, fmt.Errorf("%w: %s is not valid base64", ErrMalformedHash, what)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not valid base64", ErrMalformedHash, what)
	}
	return b, nil
}

// decodePHCTail decodes what this package's PHC strings end with: the
// optional keyid parameter, then the salt and hash fields, all bounded by
// lim.
func decodePHCTail(params map[string]string, saltField, hashField string, lim Limits) (keyID string, salt, hash []byte, err error) {
	if id, ok := params["keyid"]; ok {
		if keyID, err = decodePepperID(id); err != nil {
			return "", nil, nil, err
		}
	}
	if salt, err = decodeB64("salt", saltField, lim.MaxSaltLen); err != nil {
		return "", nil, nil, err
	}
	if hash, err = decodeB64("hash", hashField, lim.MaxHashLen); err != nil {
		return "", nil, nil, err
	}
	if err := lim.checkSaltHash(len(salt), len(hash)); err != nil {
		return "", nil, nil, err
	}
	return keyID, salt, hash, nil
}
