package kdf

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Imported (verify-only) formats
//
// parseLegacy recognises the password hash formats that applications
// migrate from. Each is verified exactly as its original library computes
// it, over the password's bytes as received (no NFKC, nothing trimmed),
// and always reports needs-rehash: the caller replaces it with a hash of
// its own on the first successful login. Nothing here ever writes these
// formats.
//
// Common rules. The whole string must be printable ASCII without spaces
// (0x21 to 0x7e): this rejects newlines, which Go's base64 decoders would
// otherwise skip, so that every accepted string has exactly one spelling.
// Decimal numbers are canonical (no sign, no leading zero). Base64 and hex
// fields are decoded strictly (no padding where the library writes none,
// no stray bits). Every parameter is checked against [Limits] before any
// field is decoded and before any KDF work or allocation, and each field's
// length is checked before it is decoded.
//
//   - bcrypt, "$2a$", "$2b$" or "$2y$" + 2-digit cost + "$" + 53 characters
//     of bcrypt's base64 alphabet: exactly 60 characters. The cost must be
//     4 to min(Limits.MaxBcryptCost, 31). "$2x$" (crypt_blowfish's buggy
//     variant) and "$2$" are not accepted. Verified with
//     golang.org/x/crypto/bcrypt. A password over 72 bytes, or one that
//     contains a NUL byte, never matches: Verify reports ErrMismatch, after
//     the same bcrypt work as for any other wrong password, instead of
//     comparing only the first 72 bytes (which is what a truncating bcrypt
//     does, and which would let "prefix+anything" log in). A user whose
//     over-long password was stored by a truncating library must reset it.
//   - passlib PBKDF2, "$pbkdf2-sha256$<rounds>$<salt>$<hash>",
//     "$pbkdf2-sha512$…" and "$pbkdf2$…" (HMAC-SHA-1, verified only to be
//     upgraded). Salt and hash are passlib's "ab64" (standard base64 with
//     '.' for '+', unpadded); the hash is exactly the digest size (20, 32
//     or 64 bytes). This package's own "$pbkdf2-sha256$i=…,l=…$" PHC
//     strings are parsed before parseLegacy is reached.
//   - passlib scrypt, "$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>", salt
//     and hash unpadded standard base64, hash 16 bytes or more (passlib
//     writes 32).
//   - Django, "pbkdf2_sha256$<iterations>$<salt>$<hash>" and
//     "pbkdf2_sha1$…": the salt is a string whose UTF-8 bytes are the salt,
//     the hash padded standard base64 of exactly the digest size.
//   - Django's Argon2PasswordHasher, "argon2$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>":
//     "argon2" followed by argon2-cffi's PHC string, parsed and bounded
//     exactly as this package's own Argon2id strings (the same Limits)
//     except that a keyid parameter is refused. Django hashes the UTF-8
//     bytes as received. Django's older argon2i hashes are not supported.
//   - Werkzeug, "pbkdf2:<digest>:<iterations>$<salt>$<hex>" with digest
//     sha1, sha256 or sha512, and "scrypt:<N>:<r>:<p>$<salt>$<hex>" (64-byte
//     hash): the salt is a string, the hash lowercase hex. The iteration
//     count must be written out: Werkzeug's "pbkdf2:sha256$…" meant the
//     default of the Werkzeug version that checks it, which has changed
//     over time, so such a string is refused as malformed.
//
// Salts must be 8 to Limits.MaxSaltLen bytes and hashes 16 to
// Limits.MaxHashLen bytes; PBKDF2 iterations at most Limits.MaxIterations
// (Limits.MaxIterationsSHA512 for HMAC-SHA-512);
// for scrypt, N a power of two from 2, r at most maxScryptR, p at most
// Limits.MaxThreads, and both 128·N·r·p bytes (the work) and the memory
// the computation allocates at most Limits.MaxMemoryKiB.
//
// In FIPS 140-only mode the standard library's PBKDF2 refuses SHA-1 and
// salts under 16 bytes, so such imported hashes then never match.

// maxScryptR bounds scrypt's block size r read from a stored hash. Real
// deployments use 8 (passlib, Werkzeug, most libraries) or 16.
const maxScryptR = 32

// bcryptMaxInput is the most bytes bcrypt uses of a password.
const bcryptMaxInput = 72

// Encodings of the imported formats.
var (
	// ab64 is passlib's "adapted base64": the standard alphabet with '.'
	// in place of '+', without padding.
	ab64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./").
		WithPadding(base64.NoPadding).Strict()
	// paddedB64 is Django's base64.b64encode: standard, with padding.
	paddedB64 = base64.StdEncoding.Strict()
)

// parseLegacy parses the verify-only formats (bcrypt, scrypt, passlib,
// Django, Werkzeug) described above. ok is false only when encoded is none
// of them; once a format's prefix is recognised, ok is true and err tells
// why the string was refused: ErrMalformedHash, ErrUnsupportedAlgorithm
// or a *ParamsError matching ErrParamsOutOfBounds.
func parseLegacy(encoded string, lim Limits) (h storedHash, ok bool, err error) {
	var parse func(string, Limits) (storedHash, error)
	switch {
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		parse = parseBcrypt
	case strings.HasPrefix(encoded, "$pbkdf2$"), strings.HasPrefix(encoded, "$pbkdf2-sha256$"), strings.HasPrefix(encoded, "$pbkdf2-sha512$"):
		parse = parsePasslibPBKDF2
	case strings.HasPrefix(encoded, "$scrypt$"):
		parse = parsePasslibScrypt
	case strings.HasPrefix(encoded, "pbkdf2_sha256$"), strings.HasPrefix(encoded, "pbkdf2_sha1$"):
		parse = parseDjango
	case strings.HasPrefix(encoded, "pbkdf2:"):
		parse = parseWerkzeugPBKDF2
	case strings.HasPrefix(encoded, "scrypt:"):
		parse = parseWerkzeugScrypt
	case strings.HasPrefix(encoded, "argon2$argon2id$"):
		parse = parseDjangoArgon2
	default:
		return nil, false, nil
	}
	if len(encoded) > lim.MaxEncodedLength {
		return nil, true, outOfBounds("encoded length", uint64(len(encoded)), uint64(lim.MaxEncodedLength), true)
	}
	for i := 0; i < len(encoded); i++ {
		if c := encoded[i]; c < 0x21 || c > 0x7e {
			return nil, true, fmt.Errorf("%w: byte %d is not printable ASCII", ErrMalformedHash, i)
		}
	}
	h, err = parse(encoded, lim)
	if err != nil {
		return nil, true, err
	}
	return h, true, nil
}

// legacyHash supplies the storedHash methods that every imported format
// shares: the bytes as received are hashed, and a rehash is always due.
type legacyHash struct{}

func (legacyHash) hashesRawBytes() bool { return true }
func (legacyHash) sameAs(Params) bool   { return false }
func (legacyHash) pepperID() string     { return "" }

var (
	_ storedHash = (*djangoArgon2Hash)(nil)
	_ storedHash = (*bcryptHash)(nil)
	_ storedHash = (*legacyPBKDF2Hash)(nil)
	_ storedHash = (*scryptHash)(nil)
)

// ---- Django Argon2 ------------------------------------------------------------

// djangoArgon2Prefix is what Django writes before argon2-cffi's PHC string
// (whose own leading '$' then separates it).
const djangoArgon2Prefix = "argon2"

// djangoArgon2Hash is a parsed "argon2$argon2id$v=19$…" hash from Django's
// Argon2PasswordHasher: an Argon2id hash of the password's bytes as
// received, verified only to be replaced.
type djangoArgon2Hash struct {
	inner *argon2idHash
}

func parseDjangoArgon2(encoded string, lim Limits) (storedHash, error) {
	inner, err := parseArgon2id(strings.TrimPrefix(encoded, djangoArgon2Prefix), lim)
	if err != nil {
		return nil, err
	}
	if inner.keyID != "" {
		return nil, fmt.Errorf("%w: django argon2 hash with a keyid parameter", ErrMalformedHash)
	}
	return &djangoArgon2Hash{inner: inner}, nil
}

func (h *djangoArgon2Hash) String() string        { return djangoArgon2Prefix + h.inner.String() }
func (h *djangoArgon2Hash) memoryKiB() uint64     { return h.inner.memoryKiB() }
func (h *djangoArgon2Hash) matches(b []byte) bool { return h.inner.matches(b) }
func (h *djangoArgon2Hash) run() kdfRun           { return h.inner.run() }
func (h *djangoArgon2Hash) hashesRawBytes() bool  { return true }
func (h *djangoArgon2Hash) sameAs(Params) bool    { return false }
func (h *djangoArgon2Hash) pepperID() string      { return "" }

// ---- bcrypt ----------------------------------------------------------------

// bcryptHash is a parsed 60-character "$2a$", "$2b$" or "$2y$" hash.
type bcryptHash struct {
	legacyHash
	encoded []byte // the whole string, as x/crypto/bcrypt compares it
	cost    int
}

// bcryptAlphabet is bcrypt's base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func parseBcrypt(encoded string, lim Limits) (storedHash, error) {
	// "$2b$" cost "$" salt(22) hash(31)
	const n = 4 + 2 + 1 + 22 + 31
	if len(encoded) != n {
		return nil, fmt.Errorf("%w: bcrypt hash must be %d characters", ErrMalformedHash, n)
	}
	d1, d2 := encoded[4], encoded[5]
	if d1 < '0' || d1 > '9' || d2 < '0' || d2 > '9' || encoded[6] != '$' {
		return nil, fmt.Errorf("%w: bcrypt cost must be two digits followed by '$'", ErrMalformedHash)
	}
	for i := 7; i < n; i++ {
		if strings.IndexByte(bcryptAlphabet, encoded[i]) < 0 {
			return nil, fmt.Errorf("%w: bcrypt salt and hash must be bcrypt base64", ErrMalformedHash)
		}
	}
	cost := int(d1-'0')*10 + int(d2-'0')
	if cost < bcrypt.MinCost {
		return nil, outOfBounds("cost", uint64(cost), uint64(bcrypt.MinCost), false)
	}
	if maxCost := min(lim.MaxBcryptCost, bcrypt.MaxCost); cost > maxCost {
		return nil, outOfBounds("cost", uint64(cost), uint64(max(maxCost, 0)), true)
	}
	return &bcryptHash{encoded: []byte(encoded), cost: cost}, nil
}

func (h *bcryptHash) String() string { return string(h.encoded) }

func (h *bcryptHash) run() kdfRun {
	return kdfRun{alg: "bcrypt", iterations: uint64(h.cost), saltLen: 16, keyLen: 23}
}

// memoryKiB: bcrypt's state is about 4 KiB, which the Gate counts as a
// small run.
func (h *bcryptHash) memoryKiB() uint64 { return smallRunKiB }

// matches runs bcrypt, which compares the result with subtle's constant-time
// comparison. Input over 72 bytes or holding a NUL never matches, but costs
// the same bcrypt run (over the empty password) as a wrong password does,
// so its timing does not tell which hash format an account has.
func (h *bcryptHash) matches(input []byte) bool {
	acceptable := len(input) <= bcryptMaxInput && bytes.IndexByte(input, 0) < 0
	if !acceptable {
		input = nil
	}
	err := bcrypt.CompareHashAndPassword(h.encoded, input)
	return acceptable && err == nil
}

// ---- PBKDF2 (passlib, Django, Werkzeug) --------------------------------------

// legacyDigest is the HMAC hash of an imported PBKDF2 format.
type legacyDigest uint8

const (
	digestSHA1 legacyDigest = iota + 1
	digestSHA256
	digestSHA512
)

// newHash returns the digest's constructor.
func (d legacyDigest) newHash() hash.Hash {
	switch d {
	case digestSHA1:
		return sha1.New()
	case digestSHA512:
		return sha512.New()
	default:
		return sha256.New()
	}
}

// size is the digest's output size, the hash length of every imported
// PBKDF2 format.
func (d legacyDigest) size() int {
	switch d {
	case digestSHA1:
		return sha1.Size
	case digestSHA512:
		return sha512.Size
	default:
		return sha256.Size
	}
}

// name is the digest's name as Werkzeug writes it.
func (d legacyDigest) name() string {
	switch d {
	case digestSHA1:
		return "sha1"
	case digestSHA512:
		return "sha512"
	default:
		return "sha256"
	}
}

// legacyFormat names the library whose encoding a parsed hash uses, so it
// can be written back exactly (for tests) and named in errors.
type legacyFormat uint8

const (
	formatPasslib legacyFormat = iota + 1
	formatDjango
	formatWerkzeug
)

// legacyPBKDF2Hash is a parsed passlib, Django or Werkzeug PBKDF2 hash.
type legacyPBKDF2Hash struct {
	legacyHash
	format     legacyFormat
	digest     legacyDigest
	iterations uint32
	salt       []byte
	hash       []byte
}

// parsePasslibPBKDF2 parses "$pbkdf2[-sha256|-sha512]$rounds$salt$hash".
func parsePasslibPBKDF2(encoded string, lim Limits) (storedHash, error) {
	f := strings.SplitN(encoded[1:], "$", 5)
	if len(f) != 4 {
		return nil, fmt.Errorf("%w: passlib pbkdf2 hash needs 4 fields", ErrMalformedHash)
	}
	h := &legacyPBKDF2Hash{format: formatPasslib}
	switch f[0] {
	case "pbkdf2":
		h.digest = digestSHA1
	case "pbkdf2-sha256":
		h.digest = digestSHA256
	case "pbkdf2-sha512":
		h.digest = digestSHA512
	default:
		return nil, fmt.Errorf("%w: passlib pbkdf2 digest", ErrUnsupportedAlgorithm)
	}
	if err := h.setIterations(f[1], lim); err != nil {
		return nil, err
	}
	if err := checkEncodedSizes(ab64, f[2], ab64.EncodedLen(h.digest.size()), f[3], lim); err != nil {
		return nil, err
	}
	var err error
	if h.salt, err = decodeWith(ab64, "salt", f[2]); err != nil {
		return nil, err
	}
	if h.hash, err = decodeWith(ab64, "hash", f[3]); err != nil {
		return nil, err
	}
	if err := lim.checkSaltHash(len(h.salt), len(h.hash)); err != nil {
		return nil, err
	}
	return h, nil
}

// parseDjango parses "pbkdf2_sha256$iterations$salt$hash" (or pbkdf2_sha1).
func parseDjango(encoded string, lim Limits) (storedHash, error) {
	f := strings.SplitN(encoded, "$", 5)
	if len(f) != 4 {
		return nil, fmt.Errorf("%w: django pbkdf2 hash needs 4 fields", ErrMalformedHash)
	}
	h := &legacyPBKDF2Hash{format: formatDjango}
	switch f[0] {
	case "pbkdf2_sha1":
		h.digest = digestSHA1
	case "pbkdf2_sha256":
		h.digest = digestSHA256
	default:
		return nil, fmt.Errorf("%w: django pbkdf2 digest", ErrUnsupportedAlgorithm)
	}
	if err := h.setIterations(f[1], lim); err != nil {
		return nil, err
	}
	if err := checkStringSalt(f[2], lim); err != nil {
		return nil, err
	}
	if len(f[3]) != paddedB64.EncodedLen(h.digest.size()) {
		return nil, fmt.Errorf("%w: django %s hash must be %d base64 characters", ErrMalformedHash, h.digest.name(), paddedB64.EncodedLen(h.digest.size()))
	}
	if err := lim.checkSaltHash(len(f[2]), h.digest.size()); err != nil {
		return nil, err
	}
	var err error
	if h.hash, err = decodeWith(paddedB64, "hash", f[3]); err != nil {
		return nil, err
	}
	if len(h.hash) != h.digest.size() {
		// 44 characters without padding decode to 33 bytes.
		return nil, fmt.Errorf("%w: django %s hash must be %d bytes", ErrMalformedHash, h.digest.name(), h.digest.size())
	}
	h.salt = []byte(f[2])
	return h, nil
}

// parseWerkzeugPBKDF2 parses "pbkdf2:digest:iterations$salt$hex".
func parseWerkzeugPBKDF2(encoded string, lim Limits) (storedHash, error) {
	method, salt, hexHash, err := splitWerkzeug(encoded)
	if err != nil {
		return nil, err
	}
	args := strings.SplitN(method, ":", 4)
	if len(args) != 3 {
		return nil, fmt.Errorf("%w: werkzeug pbkdf2 method must be pbkdf2:<digest>:<iterations>", ErrMalformedHash)
	}
	h := &legacyPBKDF2Hash{format: formatWerkzeug}
	switch args[1] {
	case "sha1":
		h.digest = digestSHA1
	case "sha256":
		h.digest = digestSHA256
	case "sha512":
		h.digest = digestSHA512
	default:
		return nil, fmt.Errorf("%w: werkzeug pbkdf2 digest is not sha1, sha256 or sha512", ErrUnsupportedAlgorithm)
	}
	if err := h.setIterations(args[2], lim); err != nil {
		return nil, err
	}
	if h.hash, err = checkWerkzeugFields(salt, hexHash, h.digest.size(), lim); err != nil {
		return nil, err
	}
	h.salt = []byte(salt)
	return h, nil
}

// setIterations parses and bounds an iteration count.
func (h *legacyPBKDF2Hash) setIterations(s string, lim Limits) error {
	i, err := parseDecimal("i", s, 32)
	if err != nil {
		return err
	}
	if err := lim.checkPBKDF2(i, h.digest.size(), h.digest.size()); err != nil {
		return err
	}
	h.iterations = uint32(i)
	return nil
}

func (h *legacyPBKDF2Hash) String() string {
	i := strconv.FormatUint(uint64(h.iterations), 10)
	switch h.format {
	case formatPasslib:
		id := "pbkdf2"
		if h.digest != digestSHA1 {
			id += "-" + h.digest.name()
		}
		return "$" + id + "$" + i + "$" + ab64.EncodeToString(h.salt) + "$" + ab64.EncodeToString(h.hash)
	case formatDjango:
		return "pbkdf2_" + h.digest.name() + "$" + i + "$" + string(h.salt) + "$" + paddedB64.EncodeToString(h.hash)
	default:
		return "pbkdf2:" + h.digest.name() + ":" + i + "$" + string(h.salt) + "$" + hex.EncodeToString(h.hash)
	}
}

func (h *legacyPBKDF2Hash) memoryKiB() uint64 { return smallRunKiB }

func (h *legacyPBKDF2Hash) run() kdfRun {
	return kdfRun{alg: "pbkdf2-" + h.digest.name(), iterations: uint64(h.iterations), saltLen: len(h.salt), keyLen: len(h.hash)}
}

func (h *legacyPBKDF2Hash) matches(input []byte) bool {
	got, err := pbkdf2.Key(h.digest.newHash, string(input), h.salt, int(h.iterations), len(h.hash))
	return err == nil && subtle.ConstantTimeCompare(got, h.hash) == 1
}

// ---- scrypt (passlib, Werkzeug) --------------------------------------------

// scryptHash is a parsed passlib or Werkzeug scrypt hash.
type scryptHash struct {
	legacyHash
	format legacyFormat // formatPasslib or formatWerkzeug
	n      uint64       // a power of two
	r, p   uint32
	salt   []byte
	hash   []byte
}

// parsePasslibScrypt parses "$scrypt$ln=…,r=…,p=…$salt$hash".
func parsePasslibScrypt(encoded string, lim Limits) (storedHash, error) {
	f := strings.SplitN(encoded[1:], "$", 5)
	if len(f) != 4 {
		return nil, fmt.Errorf("%w: passlib scrypt hash needs 4 fields", ErrMalformedHash)
	}
	kv, err := parsePHCParams(f[1], []string{"ln", "r", "p"}, nil)
	if err != nil {
		return nil, err
	}
	ln, err := parseDecimal("ln", kv["ln"], 8)
	if err != nil {
		return nil, err
	}
	if ln == 0 {
		return nil, outOfBounds("ln", 0, 1, false)
	}
	if ln > 62 {
		return nil, outOfBounds("ln", ln, 62, true)
	}
	h := &scryptHash{format: formatPasslib, n: 1 << ln}
	if err := h.setRP(kv["r"], kv["p"], lim); err != nil {
		return nil, err
	}
	if err := checkEncodedSizes(b64, f[2], -1, f[3], lim); err != nil {
		return nil, err
	}
	if h.salt, err = decodeWith(b64, "salt", f[2]); err != nil {
		return nil, err
	}
	if h.hash, err = decodeWith(b64, "hash", f[3]); err != nil {
		return nil, err
	}
	if err := lim.checkSaltHash(len(h.salt), len(h.hash)); err != nil {
		return nil, err
	}
	return h, nil
}

// werkzeugScryptLen is the length of Werkzeug's scrypt hash (hashlib's
// default dklen).
const werkzeugScryptLen = 64

// parseWerkzeugScrypt parses "scrypt:N:r:p$salt$hex".
func parseWerkzeugScrypt(encoded string, lim Limits) (storedHash, error) {
	method, salt, hexHash, err := splitWerkzeug(encoded)
	if err != nil {
		return nil, err
	}
	args := strings.SplitN(method, ":", 5)
	if len(args) != 4 {
		return nil, fmt.Errorf("%w: werkzeug scrypt method must be scrypt:<N>:<r>:<p>", ErrMalformedHash)
	}
	n, err := parseDecimal("N", args[1], 64)
	if err != nil {
		return nil, err
	}
	if n < 2 || n&(n-1) != 0 {
		return nil, fmt.Errorf("%w: scrypt N must be a power of two greater than 1", ErrMalformedHash)
	}
	h := &scryptHash{format: formatWerkzeug, n: n}
	if err := h.setRP(args[2], args[3], lim); err != nil {
		return nil, err
	}
	if h.hash, err = checkWerkzeugFields(salt, hexHash, werkzeugScryptLen, lim); err != nil {
		return nil, err
	}
	h.salt = []byte(salt)
	return h, nil
}

// setRP parses r and p and bounds them, and the memory and work of h.n
// with them, against lim.
func (h *scryptHash) setRP(rs, ps string, lim Limits) error {
	r, err := parseDecimal("r", rs, 32)
	if err != nil {
		return err
	}
	p, err := parseDecimal("p", ps, 32)
	if err != nil {
		return err
	}
	switch {
	case r == 0:
		return outOfBounds("r", 0, 1, false)
	case r > maxScryptR:
		return outOfBounds("r", r, maxScryptR, true)
	case p == 0:
		return outOfBounds("p", 0, 1, false)
	case p > uint64(lim.MaxThreads):
		return outOfBounds("p", p, uint64(lim.MaxThreads), true)
	}
	h.r, h.p = uint32(r), uint32(p)
	if maxN := lim.maxScryptN(r, p); h.n > maxN {
		return outOfBounds("N", h.n, maxN, true)
	}
	return nil
}

// maxScryptN returns the largest power of two N (or 0 if there is none)
// for which both scrypt's work, 128·N·r·p bytes of memory traffic, and the
// memory that x/crypto/scrypt allocates, 128·r·(N+p+2) bytes, stay within
// l.MaxMemoryKiB. r and p must already be bounded (r ≤ maxScryptR, p ≤ 255).
func (l Limits) maxScryptN(r, p uint64) uint64 {
	budget := uint64(l.MaxMemoryKiB) * 1024
	var maxN uint64
	for n := uint64(2); n <= budget/(128*r); n <<= 1 {
		if 128*r*n*p > budget || scryptBytes(n, r, p) > budget {
			break
		}
		maxN = n
	}
	return maxN
}

// scryptBytes is the memory x/crypto/scrypt allocates: V (128·r·N bytes),
// B (128·r·p) and XY (256·r).
func scryptBytes(n, r, p uint64) uint64 { return 128 * r * (n + p + 2) }

func (h *scryptHash) String() string {
	if h.format == formatPasslib {
		ln := 0
		for n := h.n; n > 1; n >>= 1 {
			ln++
		}
		return fmt.Sprintf("$scrypt$ln=%d,r=%d,p=%d$%s$%s", ln, h.r, h.p, b64.EncodeToString(h.salt), b64.EncodeToString(h.hash))
	}
	return fmt.Sprintf("scrypt:%d:%d:%d$%s$%s", h.n, h.r, h.p, h.salt, hex.EncodeToString(h.hash))
}

func (h *scryptHash) memoryKiB() uint64 {
	return (scryptBytes(h.n, uint64(h.r), uint64(h.p)) + 1023) / 1024
}

func (h *scryptHash) run() kdfRun {
	return kdfRun{alg: "scrypt", n: h.n, r: uint64(h.r), p: uint64(h.p), saltLen: len(h.salt), keyLen: len(h.hash)}
}

func (h *scryptHash) matches(input []byte) bool {
	got, err := scrypt.Key(input, h.salt, int(h.n), int(h.r), int(h.p), len(h.hash))
	return err == nil && subtle.ConstantTimeCompare(got, h.hash) == 1
}

// ---- shared field checks -------------------------------------------------

// checkEncodedSizes bounds a base64 salt and hash by their encoded length
// before they are decoded: the hash must be exactly wantHash characters
// (if wantHash ≥ 0), and both must decode to no more than the Limits allow.
func checkEncodedSizes(enc *base64.Encoding, salt string, wantHash int, hash string, lim Limits) error {
	if wantHash >= 0 && len(hash) != wantHash {
		return fmt.Errorf("%w: hash must be %d base64 characters", ErrMalformedHash, wantHash)
	}
	if n := enc.DecodedLen(len(salt)); n > lim.MaxSaltLen {
		return outOfBounds("salt length", uint64(n), uint64(lim.MaxSaltLen), true)
	}
	if n := enc.DecodedLen(len(hash)); n > lim.MaxHashLen {
		return outOfBounds("hash length", uint64(n), uint64(lim.MaxHashLen), true)
	}
	return nil
}

// decodeWith decodes a base64 field whose length the caller has bounded,
// refusing first any byte outside the encoding's alphabet (see inAlphabet).
func decodeWith(enc *base64.Encoding, what, s string) ([]byte, error) {
	alphabet, maxPad := stdAlphabet, 0
	switch enc {
	case ab64:
		alphabet = ab64Alphabet
	case paddedB64:
		maxPad = 2
	}
	if !inAlphabet(s, alphabet, maxPad) {
		return nil, fmt.Errorf("%w: %s is not valid base64", ErrMalformedHash, what)
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not valid base64", ErrMalformedHash, what)
	}
	return b, nil
}

// checkStringSalt checks a salt that Django or Werkzeug store as a string
// (its UTF-8 bytes are the salt): non-empty, and within the Limits.
func checkStringSalt(salt string, lim Limits) error {
	if salt == "" {
		return fmt.Errorf("%w: empty salt", ErrMalformedHash)
	}
	if len(salt) > lim.MaxSaltLen {
		return outOfBounds("salt length", uint64(len(salt)), uint64(lim.MaxSaltLen), true)
	}
	return nil
}

// splitWerkzeug splits Werkzeug's "method$salt$hash". Werkzeug splits at
// the first two '$'; a '$' in the hash could never compare equal to hex,
// so it is refused here.
func splitWerkzeug(encoded string) (method, salt, hash string, err error) {
	f := strings.SplitN(encoded, "$", 4)
	if len(f) != 3 {
		return "", "", "", fmt.Errorf("%w: werkzeug hash needs 3 '$'-separated fields", ErrMalformedHash)
	}
	return f[0], f[1], f[2], nil
}

// checkWerkzeugFields bounds a Werkzeug salt and hex hash, then decodes
// the hash, which must be size bytes written as lowercase hex (as
// Werkzeug's hexdigest writes and compares it).
func checkWerkzeugFields(salt, hexHash string, size int, lim Limits) ([]byte, error) {
	if err := checkStringSalt(salt, lim); err != nil {
		return nil, err
	}
	if len(hexHash) != 2*size {
		return nil, fmt.Errorf("%w: werkzeug hash must be %d hex digits", ErrMalformedHash, 2*size)
	}
	if err := lim.checkSaltHash(len(salt), size); err != nil {
		return nil, err
	}
	for i := 0; i < len(hexHash); i++ {
		if c := hexHash[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, fmt.Errorf("%w: werkzeug hash must be lowercase hex", ErrMalformedHash)
		}
	}
	b, err := hex.DecodeString(hexHash)
	if err != nil {
		return nil, fmt.Errorf("%w: werkzeug hash must be lowercase hex", ErrMalformedHash)
	}
	return b, nil
}
