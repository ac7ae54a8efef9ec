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
	// run describes the KDF computation one call to matches performs.
	run() kdfRun
}

// kdfRun describes one KDF computation by its algorithm and every
// parameter that sets its cost, so that tests can count and compare the
// work done on each path (Verify against VerifyDummy) instead of timing it.
type kdfRun struct {
	alg        string // "argon2id", "pbkdf2-sha256", "bcrypt", "scrypt", …
	m, t, p    uint64 // Argon2id memory (KiB), passes and lanes; scrypt p
	n, r       uint64 // scrypt N and r
	iterations uint64 // PBKDF2 iterations, bcrypt cost
	saltLen    int
	keyLen     int
}

// run describes a computation at p with a salt of p.SaltLen bytes.
func (p Params) run() kdfRun {
	return kdfRun{alg: string(p.Algorithm), m: uint64(p.MemoryKiB), t: uint64(p.Time), p: uint64(p.Threads),
		iterations: uint64(p.Iterations), saltLen: p.SaltLen, keyLen: p.KeyLen}
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
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedAlgorithm, describeUnknownFormat(encoded))
}

// knownUnsupported are identifiers of hash formats this package recognises
// by name but does not verify. An error may name one of them: it is a fixed
// string of this package, not bytes of the stored value.
var knownUnsupported = []struct{ prefix, name string }{
	{"$argon2i$", "argon2i"},
	{"$argon2d$", "argon2d"},
	{"argon2$argon2i$", "django argon2i"},
	{"argon2$argon2d$", "django argon2d"},
	{"$2x$", "bcrypt 2x"},
	{"$2$", "bcrypt 2"},
	{"$1$", "md5-crypt"},
	{"$5$", "sha256-crypt"},
	{"$6$", "sha512-crypt"},
	{"$7$", "scrypt (libsodium $7$)"},
	{"$y$", "yescrypt"},
	{"$gy$", "gost-yescrypt"},
	{"bcrypt$", "django bcrypt"},
	{"bcrypt_sha256$", "django bcrypt_sha256"},
	{"sha1$", "django sha1"},
	{"md5$", "django md5"},
	{"unsalted_md5$", "django unsalted_md5"},
	{"unsalted_sha1$", "django unsalted_sha1"},
	{"crypt$", "django crypt"},
	{"scrypt$", "django scrypt"},
	{"{SSHA}", "ldap ssha"},
	{"{SHA}", "ldap sha"},
}

// describeUnknownFormat names the format of an encoded hash that no parser
// accepted without quoting any of its bytes: the value may be a plaintext
// password or an unsalted digest left in a users table, and the error may
// be logged. Only identifiers from the fixed list above are named.
func describeUnknownFormat(encoded string) string {
	for _, k := range knownUnsupported {
		if strings.HasPrefix(encoded, k.prefix) {
			return "a " + k.name + " hash, which this package does not verify"
		}
	}
	return fmt.Sprintf("not a format this package verifies (%d bytes, contents not shown)", len(encoded))
}
