package kdf

import "fmt"

// Algorithm names a password hashing or key derivation function. Its value
// is the identifier used in encoded hashes.
type Algorithm string

// The algorithms this package hashes with. Legacy formats (bcrypt, scrypt,
// PBKDF2-SHA1, Django, Werkzeug) are verified but never written; see
// [Hasher.Verify].
const (
	// Argon2id is the default: memory-hard, RFC 9106, written as a PHC
	// string "$argon2id$v=19$m=…,t=…,p=…$salt$hash".
	Argon2id Algorithm = "argon2id"
	// PBKDF2SHA256 is PBKDF2-HMAC-SHA256 (the FIPS-friendly choice), written
	// as "$pbkdf2-sha256$i=…,l=…$salt$hash".
	PBKDF2SHA256 Algorithm = "pbkdf2-sha256"
	// PBKDF2SHA512 is PBKDF2-HMAC-SHA512, written as
	// "$pbkdf2-sha512$i=…,l=…$salt$hash".
	PBKDF2SHA512 Algorithm = "pbkdf2-sha512"
)

// Params are the cost and size parameters of one algorithm. Fields that do
// not apply to the Algorithm must be zero: Time, MemoryKiB and Threads are
// Argon2id's; Iterations is PBKDF2's.
//
// Use a preset ([DefaultParams], [InteractiveParams], [ModerateParams],
// [SensitiveParams], [PBKDF2SHA256Params], [PBKDF2SHA512Params]) or
// [Calibrate] rather than writing numbers by hand.
type Params struct {
	Algorithm  Algorithm // Argon2id, PBKDF2SHA256 or PBKDF2SHA512
	Time       uint32    // Argon2id passes over memory (t)
	MemoryKiB  uint32    // Argon2id memory in KiB (m)
	Threads    uint8     // Argon2id lanes (p)
	Iterations uint32    // PBKDF2 iteration count
	SaltLen    int       // salt length in bytes for new hashes (at least 16)
	KeyLen     int       // output length in bytes (at least 16; 32 for KEKs)
}

// Floors below which New and Validate refuse parameters for new hashes
// (OWASP Password Storage Cheat Sheet and ASVS 5.0 appendix C).
const (
	// MinArgon2MemoryKiB is the OWASP/ASVS minimum memory for Argon2id at
	// t=2 (19 MiB). At t=1 the floor is 46 MiB ([MinArgon2MemoryKiBAtT1]).
	MinArgon2MemoryKiB = 19456
	// MinArgon2MemoryKiBAtT1 is the minimum memory for Argon2id at t=1.
	MinArgon2MemoryKiBAtT1 = 47104
	// MinArgon2MemoryKiBAtT3 is the minimum memory for Argon2id at t≥3.
	MinArgon2MemoryKiBAtT3 = 12288
	// MinPBKDF2SHA256Iterations is the minimum iteration count for
	// PBKDF2-HMAC-SHA256.
	MinPBKDF2SHA256Iterations = 600_000
	// MinPBKDF2SHA512Iterations is the minimum iteration count for
	// PBKDF2-HMAC-SHA512 (the higher of ASVS's 210,000 and OWASP's 220,000).
	MinPBKDF2SHA512Iterations = 220_000
	// MinSaltLen is the salt length, in bytes, of every new hash.
	MinSaltLen = 16
	// MinKeyLen is the minimum output length, in bytes.
	MinKeyLen = 16
	// MaxNewLen is the maximum salt or output length, in bytes, of a new hash.
	MaxNewLen = 64
)

// DefaultParams returns the parameters a [Hasher] uses when its Config
// leaves Params zero: [InteractiveParams].
func DefaultParams() Params { return InteractiveParams() }

// InteractiveParams returns Argon2id at the OWASP/ASVS floor row that
// favours latency: m=19 MiB, t=2, p=1, a 16-byte salt and a 32-byte hash.
// Raise memory first if the latency budget allows ([ModerateParams]).
func InteractiveParams() Params {
	return Params{Algorithm: Argon2id, Time: 2, MemoryKiB: MinArgon2MemoryKiB, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// ModerateParams returns Argon2id at m=64 MiB, t=2, p=1, a 16-byte salt
// and a 32-byte hash.
func ModerateParams() Params {
	return Params{Algorithm: Argon2id, Time: 2, MemoryKiB: 64 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// SensitiveParams returns Argon2id at m=64 MiB, t=3, p=4 (RFC 9106's
// second recommended option), a 16-byte salt and a 32-byte output: the
// default for vault key-encryption keys, which are derived rarely (at
// unlock) and protect data rather than a login.
func SensitiveParams() Params {
	return Params{Algorithm: Argon2id, Time: 3, MemoryKiB: 64 * 1024, Threads: 4, SaltLen: 16, KeyLen: 32}
}

// PBKDF2SHA256Params returns PBKDF2-HMAC-SHA256 at 600,000 iterations, a
// 16-byte salt and a 32-byte hash: the choice for deployments that must use
// FIPS-approved algorithms, and the one a browser can compute with
// WebCrypto.
func PBKDF2SHA256Params() Params {
	return Params{Algorithm: PBKDF2SHA256, Iterations: MinPBKDF2SHA256Iterations, SaltLen: 16, KeyLen: 32}
}

// PBKDF2SHA512Params returns PBKDF2-HMAC-SHA512 at 220,000 iterations, a
// 16-byte salt and a 64-byte hash.
func PBKDF2SHA512Params() Params {
	return Params{Algorithm: PBKDF2SHA512, Iterations: MinPBKDF2SHA512Iterations, SaltLen: 16, KeyLen: 64}
}

// Validate reports whether p is acceptable for new hashes and keys: a known
// algorithm, only its own fields set, and costs at or above the floors
// above. The error matches [ErrWeakParams] (for a *[ParamsError]) or
// [ErrUnsupportedAlgorithm].
func (p Params) Validate() error {
	if p.SaltLen < MinSaltLen {
		return tooWeak("salt length", uint64(max(p.SaltLen, 0)), MinSaltLen)
	}
	if p.KeyLen < MinKeyLen {
		return tooWeak("key length", uint64(max(p.KeyLen, 0)), MinKeyLen)
	}
	if p.SaltLen > MaxNewLen || p.KeyLen > MaxNewLen {
		return fmt.Errorf("%w: salt and key length must be at most %d bytes", ErrWeakParams, MaxNewLen)
	}
	switch p.Algorithm {
	case Argon2id:
		if p.Iterations != 0 {
			return fmt.Errorf("%w: Iterations is not an Argon2id parameter", ErrWeakParams)
		}
		if p.Threads == 0 {
			return tooWeak("p", 0, 1)
		}
		var floor uint32
		switch {
		case p.Time == 0:
			return tooWeak("t", 0, 1)
		case p.Time == 1:
			floor = MinArgon2MemoryKiBAtT1
		case p.Time == 2:
			floor = MinArgon2MemoryKiB
		default:
			floor = MinArgon2MemoryKiBAtT3
		}
		if p.MemoryKiB < floor {
			return tooWeak("m", uint64(p.MemoryKiB), uint64(floor))
		}
		if p.MemoryKiB < 8*uint32(p.Threads) {
			return tooWeak("m", uint64(p.MemoryKiB), 8*uint64(p.Threads))
		}
		return nil
	case PBKDF2SHA256, PBKDF2SHA512:
		if p.Time != 0 || p.MemoryKiB != 0 || p.Threads != 0 {
			return fmt.Errorf("%w: Time, MemoryKiB and Threads are not PBKDF2 parameters", ErrWeakParams)
		}
		floor := uint32(MinPBKDF2SHA256Iterations)
		if p.Algorithm == PBKDF2SHA512 {
			floor = MinPBKDF2SHA512Iterations
		}
		if p.Iterations < floor {
			return tooWeak("i", uint64(p.Iterations), uint64(floor))
		}
		return nil
	default:
		return fmt.Errorf("%w: Params.Algorithm is not %s, %s or %s", ErrUnsupportedAlgorithm, Argon2id, PBKDF2SHA256, PBKDF2SHA512)
	}
}

// memoryKiB is the memory one run at p needs, as charged at the Gate.
func (p Params) memoryKiB() uint64 {
	if p.Algorithm == Argon2id {
		return uint64(p.MemoryKiB)
	}
	return smallRunKiB
}

// smallRunKiB is what the Gate charges for a run whose memory is
// negligible (PBKDF2, bcrypt): it still takes one of the concurrent slots.
const smallRunKiB = 1

// Limits bound the parameters this package accepts from an encoded hash or
// a stored key-derivation record, which may have been written by an
// attacker who reached the database. Every bound is checked before any
// memory is allocated for the KDF. The zero value of a field selects the
// default shown in [DefaultLimits].
type Limits struct {
	MaxMemoryKiB uint32 // Argon2id m, and scrypt's 128·N·r·p and allocation, in KiB
	// MaxArgon2MemoryTime bounds Argon2id's work, m × t (KiB × passes):
	// the time of a run grows with it, whatever p.
	MaxArgon2MemoryTime uint64
	MaxTime             uint32 // Argon2id t
	MaxThreads          uint8  // Argon2id p, scrypt p
	// MaxIterations bounds PBKDF2 with HMAC-SHA-1 or HMAC-SHA-256:
	// iterations × output blocks (one block per 20 or 32 bytes of
	// output), which is what a run costs.
	MaxIterations uint32
	// MaxIterationsSHA512 is MaxIterations for PBKDF2-HMAC-SHA-512, whose
	// iterations cost about two and a half times those of SHA-256 (per
	// 64-byte block).
	MaxIterationsSHA512 uint32
	MaxBcryptCost       int // bcrypt cost (log2 rounds)
	MaxSaltLen          int // decoded salt bytes
	MaxHashLen          int // decoded hash bytes
	MaxEncodedLength    int // characters of the whole encoded hash
}

// DefaultLimits returns the bounds used when Config.Limits is zero:
//
//   - Argon2id: m up to 256 MiB, m × t up to 768 MiB × passes (256 MiB at
//     t=3, 128 MiB at t=6, 48 MiB at t=16), t up to 16, p up to 16;
//   - scrypt: 128·N·r·p and the allocation up to 256 MiB (N=2^17 at r=8,
//     p=2), r up to 32, p up to 16;
//   - PBKDF2: 4,000,000 iterations × blocks for HMAC-SHA-1 and -SHA-256,
//     2,000,000 for HMAC-SHA-512;
//   - bcrypt: cost 14;
//   - salts and hashes up to 128 bytes, encoded hashes up to 512
//     characters.
//
// They admit every preset of this package and the defaults of common
// libraries with room to grow: argon2-cffi (m=64 MiB, t=3, p=4, and
// m=100 MiB, t=2, p=8 before 21.2), Django's Argon2 (m=100 MiB, t=2, p=8)
// and PBKDF2 (1,200,000 iterations in Django 6.0), passlib, PHP's
// password_hash (m=64 MiB, t=4), libsodium's interactive and moderate
// limits (crypto_pwhash_str at MEMLIMIT_MODERATE, m=256 MiB, t=3),
// Werkzeug (PBKDF2-SHA256 1,000,000; scrypt N=2^15), OWASP's PBKDF2-SHA1
// 1,300,000 and bcrypt up to cost 14. Not admitted without raising them:
// libsodium's "sensitive" (1 GiB) Argon2id limits, bcrypt cost 15 and up.
//
// The bounds aim to keep the worst case each one allows to about a second
// of one core. What each worst case costs is measured by
// BenchmarkVerifyAtLimits, as a ratio to a verification at
// [DefaultParams] (Argon2id m=19 MiB, t=2) in the same process, which
// holds steadier than seconds on a shared machine: `bash bench/run.sh`
// runs it and writes the ratios, the seconds and the machine to
// BENCHMARKS.md ("Password hashing: the worst case each bound of
// kdf.DefaultLimits admits").
//
// A hash at such parameters verifies, is reported as needing a rehash,
// and costs what its parameters cost (a timing observer can tell it from
// [Hasher.VerifyDummy]'s work until the application stores the new hash);
// a hash beyond them is refused with a *ParamsError after the dummy work
// (see [Hasher.Verify]). The Gate's default memory budget always holds
// one run of MaxMemoryKiB (see [GateConfig]).
func DefaultLimits() Limits {
	return Limits{
		MaxMemoryKiB:        256 * 1024,
		MaxArgon2MemoryTime: 768 * 1024,
		MaxTime:             16,
		MaxThreads:          16,
		MaxIterations:       4_000_000,
		MaxIterationsSHA512: 2_000_000,
		MaxBcryptCost:       14,
		MaxSaltLen:          128,
		MaxHashLen:          128,
		MaxEncodedLength:    512,
	}
}

// largestRunKiB is the memory of the largest single run that l admits
// from a stored hash: Argon2id's m and scrypt's allocation are both bounded
// by MaxMemoryKiB; PBKDF2 and bcrypt need a few KiB.
func (l Limits) largestRunKiB() uint64 { return uint64(l.MaxMemoryKiB) }

// withDefaults returns l with every zero field set from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxMemoryKiB == 0 {
		l.MaxMemoryKiB = d.MaxMemoryKiB
	}
	if l.MaxTime == 0 {
		l.MaxTime = d.MaxTime
	}
	if l.MaxThreads == 0 {
		l.MaxThreads = d.MaxThreads
	}
	if l.MaxIterations == 0 {
		l.MaxIterations = d.MaxIterations
	}
	if l.MaxIterationsSHA512 == 0 {
		l.MaxIterationsSHA512 = d.MaxIterationsSHA512
	}
	if l.MaxArgon2MemoryTime == 0 {
		l.MaxArgon2MemoryTime = d.MaxArgon2MemoryTime
	}
	if l.MaxBcryptCost == 0 {
		l.MaxBcryptCost = d.MaxBcryptCost
	}
	if l.MaxSaltLen == 0 {
		l.MaxSaltLen = d.MaxSaltLen
	}
	if l.MaxHashLen == 0 {
		l.MaxHashLen = d.MaxHashLen
	}
	if l.MaxEncodedLength == 0 {
		l.MaxEncodedLength = d.MaxEncodedLength
	}
	return l
}

// Minimum sizes accepted when parsing stored hashes. They are lower than
// the floors for new hashes so that hashes made by other libraries verify
// (Django's salts are 12 to 22 characters), but high enough that a
// truncated hash cannot verify by chance.
const (
	minParsedSaltLen = 8
	minParsedHashLen = 16
)

// checkArgon2 bounds Argon2 parameters read from storage.
func (l Limits) checkArgon2(m, t uint32, p uint8) error {
	switch {
	case t == 0:
		return outOfBounds("t", 0, 1, false)
	case t > l.MaxTime:
		return outOfBounds("t", uint64(t), uint64(l.MaxTime), true)
	case p == 0:
		return outOfBounds("p", 0, 1, false)
	case p > l.MaxThreads:
		return outOfBounds("p", uint64(p), uint64(l.MaxThreads), true)
	case m < 8*uint32(p):
		return outOfBounds("m", uint64(m), 8*uint64(p), false)
	case m > l.MaxMemoryKiB:
		return outOfBounds("m", uint64(m), uint64(l.MaxMemoryKiB), true)
	case uint64(m)*uint64(t) > l.MaxArgon2MemoryTime:
		return outOfBounds("m×t", uint64(m)*uint64(t), l.MaxArgon2MemoryTime, true)
	}
	return nil
}

// checkPBKDF2 bounds a PBKDF2 iteration count read from storage, for a
// PRF whose digest is digestSize bytes and an output of keyLen bytes: the
// work is iterations × ceil(keyLen / digestSize) HMAC blocks.
func (l Limits) checkPBKDF2(i uint64, digestSize, keyLen int) error {
	bound := uint64(l.MaxIterations)
	if digestSize == 64 {
		bound = uint64(l.MaxIterationsSHA512)
	}
	blocks := uint64(max(1, (keyLen+digestSize-1)/digestSize))
	switch {
	case i == 0:
		return outOfBounds("i", 0, 1, false)
	case i > bound/blocks:
		return outOfBounds("i", i, bound/blocks, true)
	}
	return nil
}

// checkSaltHash bounds decoded salt and hash lengths read from storage.
func (l Limits) checkSaltHash(saltLen, hashLen int) error {
	switch {
	case saltLen < minParsedSaltLen:
		return outOfBounds("salt length", uint64(saltLen), minParsedSaltLen, false)
	case saltLen > l.MaxSaltLen:
		return outOfBounds("salt length", uint64(saltLen), uint64(l.MaxSaltLen), true)
	case hashLen < minParsedHashLen:
		return outOfBounds("hash length", uint64(hashLen), minParsedHashLen, false)
	case hashLen > l.MaxHashLen:
		return outOfBounds("hash length", uint64(hashLen), uint64(l.MaxHashLen), true)
	}
	return nil
}
