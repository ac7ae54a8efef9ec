package kdf

import (
	"context"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// keySaltLabel is prepended to the caller's salt when deriving a key, so
// that the KDF's input differs from that of every login hash (whose salt is
// the random salt alone): a password hash never equals, and cannot be
// turned into, a key derived from the same password, even with the same
// salt bytes and parameters.
const keySaltLabel = "keyhold/v1/kdf/key\x00"

// DeriveKey derives a raw key of p.KeyLen bytes from password and salt with
// p's algorithm (Argon2id or PBKDF2): the key-encryption key of a vault
// passphrase slot, for example. The KDF runs over the NFKC form of the
// password and the salt "keyhold/v1/kdf/key" ‖ 0x00 ‖ salt; no pepper is
// applied, so a client holding only the passphrase (a browser with
// WebCrypto's PBKDF2) can derive the same key.
//
// p is typically read back from storage, so it is checked against the
// Hasher's Limits rather than the floors for new parameters: keys made
// under an older policy still derive. Use [Params.Validate] when choosing
// Params for a new key. salt must be 16 to 64 bytes. The run waits at the
// Hasher's Gate like a hash. The caller owns the returned key and should
// wipe it when done; the NFKC copy of the password that DeriveKey makes,
// if any, is cleared before it returns (password itself is not touched).
func (h *Hasher) DeriveKey(ctx context.Context, password, salt []byte, p Params) ([]byte, error) {
	if h == nil {
		return nil, errNilHasher
	}
	if len(password) > h.maxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLong, h.maxBytes)
	}
	if len(salt) < MinSaltLen || len(salt) > MaxNewLen {
		return nil, fmt.Errorf("%w: salt must be %d to %d bytes", ErrParamsOutOfBounds, MinSaltLen, MaxNewLen)
	}
	if p.KeyLen < MinKeyLen || p.KeyLen > MaxNewLen {
		return nil, fmt.Errorf("%w: key length must be %d to %d bytes", ErrParamsOutOfBounds, MinKeyLen, MaxNewLen)
	}
	switch p.Algorithm {
	case Argon2id:
		if err := h.limits.checkArgon2(p.MemoryKiB, p.Time, p.Threads); err != nil {
			return nil, err
		}
	case PBKDF2SHA256, PBKDF2SHA512:
		if err := h.limits.checkPBKDF2(uint64(p.Iterations), pbkdf2PRF(p.Algorithm)().Size(), p.KeyLen); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: Params.Algorithm is not %s, %s or %s", ErrUnsupportedAlgorithm, Argon2id, PBKDF2SHA256, PBKDF2SHA512)
	}
	input, changed, err := normalizeChanged(password)
	if err != nil {
		return nil, err
	}
	if changed { // a copy of ours: cleared once the run is done
		defer clear(input)
	}
	labelled := append([]byte(keySaltLabel), salt...)
	var key []byte
	err = h.gate.Run(ctx, p.memoryKiB(), func() {
		h.observe(kdfRun{alg: string(p.Algorithm), m: uint64(p.MemoryKiB), t: uint64(p.Time), p: uint64(p.Threads),
			iterations: uint64(p.Iterations), saltLen: len(labelled), keyLen: p.KeyLen})
		if p.Algorithm == Argon2id {
			key = argon2.IDKey(input, labelled, p.Time, p.MemoryKiB, p.Threads, uint32(p.KeyLen))
			return
		}
		key, err = pbkdf2Key(p.Algorithm, input, labelled, p.Iterations, p.KeyLen)
	})
	if err != nil {
		return nil, err
	}
	return key, nil
}
