package kdf

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// pbkdf2Hash is a parsed "$pbkdf2-sha256$i=…,l=…[,keyid=…]$salt$hash" (or
// sha512). The l parameter repeats the hash length so that the string is
// self-describing for readers that size buffers first.
type pbkdf2Hash struct {
	alg        Algorithm
	iterations uint32
	keyID      string
	salt       []byte
	hash       []byte
}

func parsePBKDF2PHC(encoded string, lim Limits) (*pbkdf2Hash, error) {
	f, err := phcFields(encoded, lim)
	if err != nil {
		return nil, err
	}
	if len(f) != 4 {
		return nil, fmt.Errorf("%w: pbkdf2 hash needs 4 fields", ErrMalformedHash)
	}
	h := &pbkdf2Hash{alg: Algorithm(f[0])}
	if h.alg != PBKDF2SHA256 && h.alg != PBKDF2SHA512 {
		return nil, fmt.Errorf("%w: pbkdf2 digest is not sha256 or sha512", ErrUnsupportedAlgorithm)
	}
	kv, err := parsePHCParams(f[1], []string{"i", "l"}, []string{"keyid"})
	if err != nil {
		return nil, err
	}
	i, err := parseDecimal("i", kv["i"], 32)
	if err != nil {
		return nil, err
	}
	l, err := parseDecimal("l", kv["l"], 16)
	if err != nil {
		return nil, err
	}
	if err := lim.checkPBKDF2(i, pbkdf2PRF(h.alg)().Size(), int(l)); err != nil {
		return nil, err
	}
	h.iterations = uint32(i)
	if h.keyID, h.salt, h.hash, err = decodePHCTail(kv, f[2], f[3], lim); err != nil {
		return nil, err
	}
	if uint64(len(h.hash)) != l {
		return nil, fmt.Errorf("%w: the l parameter is not the hash's length", ErrMalformedHash)
	}
	return h, nil
}

func (h *pbkdf2Hash) String() string {
	params := fmt.Sprintf("i=%d,l=%d", h.iterations, len(h.hash))
	if h.keyID != "" {
		params += ",keyid=" + encodePepperID(h.keyID)
	}
	return fmt.Sprintf("$%s$%s$%s$%s", h.alg, params, b64.EncodeToString(h.salt), b64.EncodeToString(h.hash))
}

// pbkdf2Hash returns the hash constructor for a PBKDF2 algorithm.
func pbkdf2PRF(alg Algorithm) func() hash.Hash {
	if alg == PBKDF2SHA512 {
		return sha512.New
	}
	return sha256.New
}

// pbkdf2Key runs PBKDF2 with the algorithm's PRF. The key length is always
// within the limits checked by the caller, so the standard library's only
// error (a key longer than (2^32-1)·hLen) cannot occur; it is still
// reported as a mismatch rather than ignored.
func pbkdf2Key(alg Algorithm, input, salt []byte, iterations uint32, keyLen int) ([]byte, error) {
	return pbkdf2.Key(pbkdf2PRF(alg), string(input), salt, int(iterations), keyLen)
}

func (h *pbkdf2Hash) memoryKiB() uint64 { return smallRunKiB }

func (h *pbkdf2Hash) matches(input []byte) bool {
	got, err := pbkdf2Key(h.alg, input, h.salt, h.iterations, len(h.hash))
	return err == nil && subtle.ConstantTimeCompare(got, h.hash) == 1
}

func (h *pbkdf2Hash) hashesRawBytes() bool { return false }

func (h *pbkdf2Hash) run() kdfRun {
	return kdfRun{alg: string(h.alg), iterations: uint64(h.iterations), saltLen: len(h.salt), keyLen: len(h.hash)}
}

func (h *pbkdf2Hash) sameAs(p Params) bool {
	return p.Algorithm == h.alg && p.Iterations == h.iterations &&
		p.SaltLen == len(h.salt) && p.KeyLen == len(h.hash)
}

func (h *pbkdf2Hash) pepperID() string { return h.keyID }
