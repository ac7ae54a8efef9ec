package kdf

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// DefaultMaxPasswordBytes is the longest password, in bytes, that a Hasher
// accepts when Config.MaxPasswordBytes is zero. Longer input is refused
// with ErrTooLong before any hashing, so an attacker cannot make the server
// hash megabytes. 1024 bytes hold at least 256 code points of any script.
const DefaultMaxPasswordBytes = 1024

// MinMaxPasswordBytes is the smallest MaxPasswordBytes a Config may set:
// 64 characters of any script (4 bytes each in UTF-8) are always allowed.
const MinMaxPasswordBytes = 256

// Config configures a Hasher. The zero value is valid and selects the
// defaults named on each field.
type Config struct {
	// Params are the parameters of new hashes and of the rehash policy.
	// Zero selects DefaultParams. Params below the floors of
	// [Params.Validate] are refused.
	Params Params
	// Limits bound the parameters accepted from stored hashes. Zero fields
	// select DefaultLimits.
	Limits Limits
	// Gate bounds concurrent runs. Nil selects a Gate of its own with
	// NewGate(GateConfig{}); share one Gate between the Hashers of a process.
	Gate *Gate
	// MaxPasswordBytes caps password input, in bytes. Zero selects
	// DefaultMaxPasswordBytes; values below MinMaxPasswordBytes are refused.
	MaxPasswordBytes int
	// Pepper, if set, is mixed into every new hash ([Pepper]).
	Pepper Pepper
	// OldPeppers are earlier peppers, kept so hashes made with them still
	// verify (and report needs-rehash).
	OldPeppers []Pepper
}

// A Hasher hashes and verifies passwords and derives keys from them. It is
// immutable after New and safe for concurrent use.
//
// For most use cases: make one Hasher with New(Config{}), store
// [Hasher.Hash]'s output, call [Hasher.Verify] at login and store a new
// hash when it reports needsRehash, and call [Hasher.VerifyDummy] for
// unknown users so that responses take the same time.
type Hasher struct {
	params     Params
	limits     Limits
	gate       *Gate
	maxBytes   int
	pepper     Pepper
	peppers    map[string]Pepper
	dummySalt  []byte
	dummyInput []byte
}

// New returns a Hasher configured by cfg, or an error if cfg's Params are
// below the floors, exceed its own Limits or the Gate's budget, or its
// peppers are inconsistent.
func New(cfg Config) (*Hasher, error) {
	h := &Hasher{params: cfg.Params, limits: cfg.Limits.withDefaults(), gate: cfg.Gate, maxBytes: cfg.MaxPasswordBytes}
	if h.params == (Params{}) {
		h.params = DefaultParams()
	}
	if err := h.params.Validate(); err != nil {
		return nil, err
	}
	if h.maxBytes == 0 {
		h.maxBytes = DefaultMaxPasswordBytes
	}
	if h.maxBytes < MinMaxPasswordBytes {
		return nil, fmt.Errorf("kdf: MaxPasswordBytes %d is below %d", h.maxBytes, MinMaxPasswordBytes)
	}
	if h.gate == nil {
		var err error
		if h.gate, err = NewGate(GateConfig{}); err != nil {
			return nil, err
		}
	}
	if budget := h.gate.budgetKiB; uint64(h.limits.MaxMemoryKiB) > budget {
		h.limits.MaxMemoryKiB = uint32(budget)
	}
	if err := h.checkOwnParams(); err != nil {
		return nil, err
	}
	h.peppers = make(map[string]Pepper, 1+len(cfg.OldPeppers))
	for _, p := range append([]Pepper{cfg.Pepper}, cfg.OldPeppers...) {
		if p.id == "" {
			continue
		}
		if _, dup := h.peppers[p.id]; dup {
			return nil, fmt.Errorf("kdf: pepper id %q configured twice", p.id)
		}
		h.peppers[p.id] = p
	}
	if cfg.Pepper.id == "" && len(cfg.OldPeppers) > 0 {
		return nil, fmt.Errorf("kdf: OldPeppers set without a current Pepper")
	}
	h.pepper = cfg.Pepper
	h.dummySalt = make([]byte, h.params.SaltLen)
	rand.Read(h.dummySalt)
	h.dummyInput = make([]byte, 32)
	rand.Read(h.dummyInput)
	return h, nil
}

// checkOwnParams makes sure the Hasher can verify its own hashes.
func (h *Hasher) checkOwnParams() error {
	p, l := h.params, h.limits
	var err error
	switch p.Algorithm {
	case Argon2id:
		err = l.checkArgon2(p.MemoryKiB, p.Time, p.Threads)
	default:
		err = l.checkIterations(uint64(p.Iterations))
	}
	if err == nil {
		err = l.checkSaltHash(p.SaltLen, p.KeyLen)
	}
	if err != nil {
		return fmt.Errorf("kdf: Params exceed the Limits or the Gate's memory budget: %w", err)
	}
	return nil
}

// Params returns the parameters of the Hasher's new hashes.
func (h *Hasher) Params() Params { return h.params }

// Limits returns the resolved bounds on stored parameters (capped by the
// Gate's memory budget).
func (h *Hasher) Limits() Limits { return h.limits }

// Gate returns the Gate the Hasher runs behind.
func (h *Hasher) Gate() *Gate { return h.gate }

// Hash returns an encoded hash of password with a fresh random salt: a PHC
// string such as "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>". The
// password is hashed in NFKC form (see [Hasher.Verify]). It returns
// ErrTooLong or ErrInvalidUTF8 before doing any work, and ErrBusy if the
// Gate refuses.
func (h *Hasher) Hash(ctx context.Context, password []byte) (string, error) {
	input, err := h.prepare(password)
	if err != nil {
		return "", err
	}
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt)
	var encoded string
	err = h.gate.Run(ctx, h.params.memoryKiB(), func() {
		encoded, err = h.encodeNew(input, salt)
	})
	return encoded, err
}

// prepare checks the length, normalises and peppers a password for a new
// hash or key.
func (h *Hasher) prepare(password []byte) ([]byte, error) {
	if len(password) > h.maxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLong, h.maxBytes)
	}
	input, err := normalize(password)
	if err != nil {
		return nil, err
	}
	if h.pepper.id != "" {
		input = h.pepper.apply(input)
	}
	return input, nil
}

// encodeNew computes a new hash of input with salt at h.params.
func (h *Hasher) encodeNew(input, salt []byte) (string, error) {
	p := h.params
	switch p.Algorithm {
	case Argon2id:
		sum := argon2.IDKey(input, salt, p.Time, p.MemoryKiB, p.Threads, uint32(p.KeyLen))
		return (&argon2idHash{m: p.MemoryKiB, t: p.Time, p: p.Threads, keyID: h.pepper.id, salt: salt, hash: sum}).String(), nil
	default:
		sum, err := pbkdf2Key(p.Algorithm, input, salt, p.Iterations, p.KeyLen)
		if err != nil {
			return "", fmt.Errorf("kdf: %v", err)
		}
		return (&pbkdf2Hash{alg: p.Algorithm, iterations: p.Iterations, keyID: h.pepper.id, salt: salt, hash: sum}).String(), nil
	}
}

// Verify reports whether password matches encoded, a hash made by
// [Hasher.Hash] or imported from another library (bcrypt, scrypt,
// PBKDF2-SHA1/SHA256/SHA512 in passlib's format, Django's pbkdf2_sha256,
// Werkzeug's pbkdf2 and scrypt, Argon2id from any PHC-conformant library).
//
// It returns nil and needsRehash=true when the password matches but the
// hash was made with another algorithm, other parameters, an old pepper or
// by another library: store the result of [Hasher.Hash] in its place. A
// wrong password gives ErrMismatch. Malformed hashes give ErrMalformedHash,
// unknown algorithms ErrUnsupportedAlgorithm, and parameters outside the
// Limits a *ParamsError matching ErrParamsOutOfBounds, all before any
// memory is allocated for the KDF.
//
// Formats this package writes are verified over the NFKC form of the
// password. Imported formats are verified over the bytes received, as their
// libraries hashed them; an Argon2id or PBKDF2 hash made elsewhere from a
// password that is not in NFKC form still verifies (at the cost of a
// second run, for such passwords only) and reports needsRehash. Nothing is
// trimmed or case-folded.
func (h *Hasher) Verify(ctx context.Context, encoded string, password []byte) (needsRehash bool, err error) {
	if len(password) > h.maxBytes {
		return false, fmt.Errorf("%w: more than %d bytes", ErrTooLong, h.maxBytes)
	}
	stored, err := parseStored(encoded, h.limits)
	if err != nil {
		return false, err
	}
	inputs, err := h.verifyInputs(stored, password)
	if err != nil {
		return false, err
	}
	// Each run takes its own place at the Gate, so that the first run's
	// buffer is accounted for as garbage while the second runs.
	matched := -1
	for i, in := range inputs {
		err = h.gate.Run(ctx, stored.memoryKiB(), func() {
			if stored.matches(in) {
				matched = i
			}
		})
		if err != nil {
			return false, err
		}
		if matched >= 0 {
			break
		}
	}
	if matched < 0 {
		return false, ErrMismatch
	}
	rehash := matched > 0 || stored.hashesRawBytes() || !stored.sameAs(h.params) || stored.pepperID() != h.pepper.id
	return rehash, nil
}

// verifyInputs returns the byte strings to try against stored, in order:
// the NFKC form first for our own formats, then the bytes as received when
// they differ (a hash imported from a library that did not normalise).
func (h *Hasher) verifyInputs(stored storedHash, password []byte) ([][]byte, error) {
	if stored.hashesRawBytes() {
		return [][]byte{password}, nil
	}
	var pepper Pepper
	if id := stored.pepperID(); id != "" {
		var ok bool
		if pepper, ok = h.peppers[id]; !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownPepper, id)
		}
	}
	inputs := [][]byte{password}
	if normal, changed, err := normalizeChanged(password); err == nil && changed {
		inputs = [][]byte{normal, password}
	}
	if pepper.id != "" {
		for i := range inputs {
			inputs[i] = pepper.apply(inputs[i])
		}
	}
	return inputs, nil
}

// VerifyDummy does the work of a Verify at the Hasher's current Params
// against a hash that matches no password, and returns ErrMismatch (or the
// Gate's or length errors, as Verify would). Call it when the user is
// unknown, so that the response takes as long as for a wrong password and
// does not reveal which accounts exist.
func (h *Hasher) VerifyDummy(ctx context.Context, password []byte) error {
	input, err := h.prepare(password)
	if err != nil && !errors.Is(err, ErrInvalidUTF8) {
		return err
	}
	if input == nil {
		input = h.dummyInput
	}
	err = h.gate.Run(ctx, h.params.memoryKiB(), func() {
		_, err = h.encodeNew(input, h.dummySalt)
	})
	if err != nil {
		return err
	}
	return ErrMismatch
}
