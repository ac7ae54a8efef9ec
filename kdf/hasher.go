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
	// select DefaultLimits. New refuses Limits whose MaxMemoryKiB, set
	// explicitly, admits a run larger than the Gate's memory budget (such
	// hashes would pass the Limits and then be refused at the Gate on
	// every verification). When MaxMemoryKiB is left zero and the Gate was
	// given an explicit budget smaller than DefaultLimits().MaxMemoryKiB,
	// the budget becomes the bound ([Hasher.Limits] reports it); with the
	// Gate's default budget that never happens, on any host.
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
	params   Params
	limits   Limits
	gate     *Gate
	maxBytes int
	pepper   Pepper
	peppers  map[string]Pepper
	dummy    *dummyHash
	runHook  func(kdfRun) // tests only: called at the start of every KDF run
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
	if budget := h.gate.budgetKiB; h.limits.largestRunKiB() > budget {
		if cfg.Limits.MaxMemoryKiB != 0 {
			return nil, fmt.Errorf("kdf: Limits.MaxMemoryKiB %d admits a run larger than the Gate's memory budget of %d KiB: such a hash would be refused at every verification; raise GateConfig.MemoryBudgetKiB or lower the Limits: %w",
				h.limits.MaxMemoryKiB, budget, outOfBounds("m", uint64(h.limits.MaxMemoryKiB), budget, true))
		}
		// Limits left at the default, with a Gate whose explicit budget is
		// smaller (the default budget always holds DefaultLimits' largest
		// run): the budget is the bound, as Hasher.Limits reports.
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
	h.dummy = &dummyHash{params: h.params, pepper: h.pepper.id, salt: make([]byte, h.params.SaltLen)}
	rand.Read(h.dummy.salt)
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
		err = l.checkPBKDF2(uint64(p.Iterations), pbkdf2PRF(p.Algorithm)().Size(), p.KeyLen)
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
func (h *Hasher) Params() Params {
	if h == nil {
		return Params{}
	}
	return h.params
}

// Limits returns the resolved bounds on stored parameters (MaxMemoryKiB
// capped by an explicit Gate budget when Config.Limits left it zero).
func (h *Hasher) Limits() Limits {
	if h == nil {
		return Limits{}
	}
	return h.limits
}

// Gate returns the Gate the Hasher runs behind.
func (h *Hasher) Gate() *Gate {
	if h == nil {
		return nil
	}
	return h.gate
}

// Hash returns an encoded hash of password with a fresh random salt: a PHC
// string such as "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>". The
// password is hashed in NFKC form (see [Hasher.Verify]). It returns
// ErrTooLong or ErrInvalidUTF8 before doing any work, and ErrBusy if the
// Gate refuses. The copies of the password that Hash makes (its NFKC form,
// its peppered form) are cleared before it returns; password itself is
// left as it is.
func (h *Hasher) Hash(ctx context.Context, password []byte) (string, error) {
	if h == nil {
		return "", errNilHasher
	}
	input, owned, err := h.prepare(password)
	if err != nil {
		return "", err
	}
	if owned {
		defer clear(input)
	}
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt)
	var encoded string
	err = h.gate.Run(ctx, h.params.memoryKiB(), func() {
		h.observe(h.params.run())
		encoded, err = h.encodeNew(input, salt)
	})
	return encoded, err
}

// prepare checks the length, normalises and peppers a password for a new
// hash. owned reports whether input is a copy that the caller must clear
// when done (false when input is password itself).
func (h *Hasher) prepare(password []byte) (input []byte, owned bool, err error) {
	if len(password) > h.maxBytes {
		return nil, false, fmt.Errorf("%w: more than %d bytes", ErrTooLong, h.maxBytes)
	}
	normal, changed, err := normalizeChanged(password)
	if err != nil {
		return nil, false, err
	}
	if h.pepper.id == "" {
		return normal, changed, nil
	}
	input = h.pepper.apply(normal)
	if changed {
		clear(normal)
	}
	return input, true, nil
}

// observe reports a KDF run to the test hook, if one is set.
func (h *Hasher) observe(r kdfRun) {
	if h.runHook != nil {
		h.runHook(r)
	}
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
// PBKDF2-SHA1/SHA256/SHA512 in passlib's format, Django's pbkdf2_sha256
// and argon2, Werkzeug's pbkdf2 and scrypt, Argon2id from any
// PHC-conformant library).
//
// It returns nil and needsRehash=true when the password matches but the
// hash was made with another algorithm, other parameters, an old pepper or
// by another library: store the result of [Hasher.Hash] in its place. A
// wrong password gives ErrMismatch. Malformed hashes give ErrMalformedHash,
// unknown algorithms ErrUnsupportedAlgorithm, and parameters outside the
// Limits a *ParamsError matching ErrParamsOutOfBounds, all before any
// memory is allocated for that hash's KDF. No error quotes the stored value.
// Each of these is returned only after the work of a wrong password
// ([Hasher.VerifyDummy]'s runs for the same password), so that refusing an
// existing account's unusable hash takes as long as an unknown account; if
// the Gate refuses that work, the Gate's error is returned instead, as
// VerifyDummy would. (ratelimit.Lockout.Check counts them as failures,
// like a wrong password, so such an account also locks like any other.)
//
// Formats this package writes are verified over the NFKC form of the
// password. Imported formats are verified over the bytes received, as their
// libraries hashed them. An unpeppered Argon2id or PBKDF2 PHC string may
// have been made elsewhere from a password that is not in NFKC form, so
// for such a password Verify tries the bytes as received too (a second
// run, reporting needsRehash when it matches); a peppered hash can only
// have been made by this package, so it gets one run. Nothing is trimmed
// or case-folded.
//
// Work and account enumeration: for a hash at the Hasher's current Params
// and pepper, Verify with a wrong password performs exactly the KDF runs,
// at exactly the parameters, that [Hasher.VerifyDummy] performs for the
// same password (two runs when normalisation changes an unpeppered
// password, otherwise one; none for one that is too long). A hash at other
// parameters or of another format costs what its parameters cost, which a
// timing observer can tell from the dummy; that is why Verify reports
// needsRehash for it, and the application should store the new hash at the
// first successful login.
//
// A hash marked by [MarkCompromised] is verified as the hash it marks, at
// the same cost; a match returns [ErrPasswordChangeRequired] (and
// needsRehash true) instead of nil.
//
// ErrBusy and context errors are returned only when no KDF run has
// completed: they mean the password was not checked, and a lockout may give
// the attempt back (ratelimit does). Once a run has started, Verify does
// every run it needs on the same place at the Gate without queueing again
// or looking at ctx, and answers a match or ErrMismatch.
func (h *Hasher) Verify(ctx context.Context, encoded string, password []byte) (needsRehash bool, err error) {
	if h == nil {
		return false, errNilHasher
	}
	if len(password) > h.maxBytes {
		return false, fmt.Errorf("%w: more than %d bytes", ErrTooLong, h.maxBytes)
	}
	marked := IsMarkedCompromised(encoded)
	if marked {
		encoded = encoded[len(compromisedMark):]
	}
	stored, err := parseStored(encoded, h.limits)
	if err != nil {
		// Equal work: a stored value that cannot be used (parameters over
		// the Limits, a malformed or unsupported hash) costs the dummy runs
		// of a wrong password before its refusal (unless the Gate refused
		// that work too), so its speed does not tell an existing account.
		if _, derr := h.verifyStored(ctx, h.dummy, password); !errors.Is(derr, ErrMismatch) {
			return false, derr
		}
		return false, err
	}
	needsRehash, err = h.verifyStored(ctx, stored, password)
	if err == nil && marked {
		return true, ErrPasswordChangeRequired
	}
	return needsRehash, err
}

// verifyStored runs the KDF of stored over each input verifyInputs
// returns, in order, until one matches. It is the one path of both Verify
// and VerifyDummy, so that they cannot drift apart.
func (h *Hasher) verifyStored(ctx context.Context, stored storedHash, password []byte) (needsRehash bool, err error) {
	inputs, owned, err := h.verifyInputs(stored, password)
	if err != nil {
		return false, err
	}
	defer func() {
		for i, in := range inputs {
			if owned[i] {
				clear(in)
			}
		}
	}()
	// One place at the Gate holds every run. Once the first run has
	// checked the password, the answer must be a match or ErrMismatch:
	// ErrBusy or a context error would mean "not checked", and a lockout
	// would give back an attempt that was checked. So the runs after the
	// first are not queued again and do not look at ctx; between runs the
	// Gate counts the previous buffer as garbage (reuse), so memory stays
	// accounted for as if each run had taken its own place.
	kib := stored.memoryKiB()
	release, err := h.gate.acquire(ctx, kib)
	if err != nil {
		return false, err // no run has started: not checked
	}
	defer release()
	matched := -1
	for i, in := range inputs {
		if i > 0 {
			h.gate.reuse(kib)
		}
		h.observe(stored.run())
		if stored.matches(in) {
			matched = i
			break
		}
	}
	if matched < 0 {
		return false, ErrMismatch
	}
	rehash := matched > 0 || stored.hashesRawBytes() || !stored.sameAs(h.params) || stored.pepperID() != h.pepper.id
	return rehash, nil
}

// verifyInputs returns the byte strings to try against stored, in order,
// and which of them are copies that the caller must clear when done:
//
//   - formats whose library hashed the bytes as received: password alone;
//   - this package's formats: the NFKC form (password itself when it is
//     already normal or not valid UTF-8), peppered if the hash is; then,
//     for an unpeppered hash only and when normalisation changed the
//     password, the bytes as received (a hash imported from a library that
//     did not normalise). A peppered hash was made by this package, over
//     the NFKC form, so a second try could never match.
func (h *Hasher) verifyInputs(stored storedHash, password []byte) (inputs [][]byte, owned []bool, err error) {
	if stored.hashesRawBytes() {
		return [][]byte{password}, []bool{false}, nil
	}
	var pepper Pepper
	if id := stored.pepperID(); id != "" {
		var ok bool
		if pepper, ok = h.peppers[id]; !ok {
			return nil, nil, fmt.Errorf("%w: the hash names a pepper this Hasher was not configured with", ErrUnknownPepper)
		}
	}
	normal, changed, err := normalizeChanged(password)
	if err != nil { // not UTF-8: only an imported hash could match its bytes
		normal, changed = password, false
	}
	if pepper.id != "" {
		peppered := pepper.apply(normal)
		if changed {
			clear(normal)
		}
		return [][]byte{peppered}, []bool{true}, nil
	}
	if changed {
		return [][]byte{normal, password}, []bool{true, false}, nil
	}
	return [][]byte{normal}, []bool{false}, nil
}

// VerifyDummy does the work of a Verify with a wrong password against a
// hash at the Hasher's current Params and pepper, and returns ErrMismatch
// (or the Gate's or length errors, as Verify would). Call it when the user
// is unknown, so that the response takes as long as for a wrong password
// and does not reveal which accounts exist.
//
// It runs through the same code as Verify, against a hash that matches no
// password, so the number of KDF runs and their parameters are those of
// Verify for the same password in every case: one run, or two when
// normalisation changes the password and the Hasher has no pepper (see
// [Hasher.Verify]), none for a password over the length limit. Like Verify,
// it returns ErrBusy or a context error only when no run has completed.
func (h *Hasher) VerifyDummy(ctx context.Context, password []byte) error {
	if h == nil {
		return errNilHasher
	}
	if len(password) > h.maxBytes {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLong, h.maxBytes)
	}
	if _, err := h.verifyStored(ctx, h.dummy, password); err != nil {
		return err
	}
	return ErrMismatch // unreachable: the dummy matches no password
}

// dummyHash is VerifyDummy's stored hash: one of this package's own, at
// the Hasher's current Params and pepper, with a random salt, that no
// password matches. matches does the full KDF run and discards the result.
type dummyHash struct {
	params Params
	pepper string
	salt   []byte
}

func (d *dummyHash) memoryKiB() uint64 { return d.params.memoryKiB() }

func (d *dummyHash) matches(input []byte) bool {
	p := d.params
	var sum []byte
	if p.Algorithm == Argon2id {
		sum = argon2.IDKey(input, d.salt, p.Time, p.MemoryKiB, p.Threads, uint32(p.KeyLen))
	} else {
		sum, _ = pbkdf2Key(p.Algorithm, input, d.salt, p.Iterations, p.KeyLen)
	}
	clear(sum)
	return false
}

func (d *dummyHash) hashesRawBytes() bool { return false }
func (d *dummyHash) sameAs(Params) bool   { return true }
func (d *dummyHash) pepperID() string     { return d.pepper }
func (d *dummyHash) run() kdfRun          { return d.params.run() }
