package kdf

import (
	"fmt"
	"strings"
)

// storedHash is a parsed, bounds-checked encoded hash of any format this
// package verifies. Parsing allocates only the decoded salt and hash; the
// expensive work happens in matches, behind the Gate.
type storedHash interface {
	// memoryKiB is the memory one call to matches needs, charged at the Gate.
	memoryKiB() uint64
	// matches recomputes the hash of input with the stored parameters and
	// compares it with the stored one in constant time.
	matches(input []byte) bool
	// hashesRawBytes reports whether the format's original library hashed
	// the password's bytes as received, rather than their NFKC form.
	hashesRawBytes() bool
	// sameAs reports whether the hash was made with exactly p (and so needs
	// no rehash apart from its pepper).
	sameAs(p Params) bool
	// pepperID returns the id of the pepper the hash was made with, or "".
	pepperID() string
}

// parseStored parses any supported encoded hash, enforcing lim before
// anything is allocated for the KDF itself.
func parseStored(encoded string, lim Limits) (storedHash, error) {
	if len(encoded) > lim.MaxEncodedLength {
		return nil, outOfBounds("encoded length", uint64(len(encoded)), uint64(lim.MaxEncodedLength), true)
	}
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		return parseArgon2id(encoded, lim)
	case strings.HasPrefix(encoded, "$pbkdf2-sha256$i="), strings.HasPrefix(encoded, "$pbkdf2-sha512$i="):
		return parsePBKDF2PHC(encoded, lim)
	}
	if h, ok, err := parseLegacy(encoded, lim); ok {
		return h, err
	}
	id := encoded
	if strings.HasPrefix(id, "$") {
		id, _, _ = strings.Cut(id[1:], "$")
	} else {
		id, _, _ = strings.Cut(id, "$")
	}
	if len(id) > 32 {
		id = id[:32]
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, id)
}
