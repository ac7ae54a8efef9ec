package kdf

import (
	"crypto/subtle"
	"fmt"
	"strconv"

	"golang.org/x/crypto/argon2"
)

// argon2Version is the only Argon2 version this package reads and writes:
// 0x13 (19), the version of RFC 9106.
const argon2Version = argon2.Version

// argon2idHash is a parsed "$argon2id$v=19$m=…,t=…,p=…[,keyid=…]$salt$hash".
type argon2idHash struct {
	m, t  uint32
	p     uint8
	keyID string
	salt  []byte
	hash  []byte
}

func parseArgon2id(encoded string, lim Limits) (*argon2idHash, error) {
	f, err := phcFields(encoded, lim)
	if err != nil {
		return nil, err
	}
	// argon2id, v=19, params, salt, hash
	if len(f) != 5 || f[0] != "argon2id" {
		return nil, fmt.Errorf("%w: argon2id hash needs 5 fields", ErrMalformedHash)
	}
	if f[1] != "v="+strconv.Itoa(argon2Version) {
		return nil, fmt.Errorf("%w: argon2id version other than v=19", ErrUnsupportedAlgorithm)
	}
	kv, err := parsePHCParams(f[2], []string{"m", "t", "p"}, []string{"keyid"})
	if err != nil {
		return nil, err
	}
	m, err := parseDecimal("m", kv["m"], 32)
	if err != nil {
		return nil, err
	}
	t, err := parseDecimal("t", kv["t"], 32)
	if err != nil {
		return nil, err
	}
	p, err := parseDecimal("p", kv["p"], 8)
	if err != nil {
		return nil, err
	}
	h := &argon2idHash{m: uint32(m), t: uint32(t), p: uint8(p)}
	if err := lim.checkArgon2(h.m, h.t, h.p); err != nil {
		return nil, err
	}
	if h.keyID, h.salt, h.hash, err = decodePHCTail(kv, f[3], f[4], lim); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *argon2idHash) String() string {
	params := fmt.Sprintf("m=%d,t=%d,p=%d", h.m, h.t, h.p)
	if h.keyID != "" {
		params += ",keyid=" + encodePepperID(h.keyID)
	}
	return fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", argon2Version, params, b64.EncodeToString(h.salt), b64.EncodeToString(h.hash))
}

func (h *argon2idHash) memoryKiB() uint64 { return uint64(h.m) }

func (h *argon2idHash) matches(input []byte) bool {
	got := argon2.IDKey(input, h.salt, h.t, h.m, h.p, uint32(len(h.hash)))
	return subtle.ConstantTimeCompare(got, h.hash) == 1
}

func (h *argon2idHash) hashesRawBytes() bool { return false }

func (h *argon2idHash) run() kdfRun {
	return kdfRun{alg: string(Argon2id), m: uint64(h.m), t: uint64(h.t), p: uint64(h.p), saltLen: len(h.salt), keyLen: len(h.hash)}
}

func (h *argon2idHash) sameAs(p Params) bool {
	return p.Algorithm == Argon2id && p.Time == h.t && p.MemoryKiB == h.m && p.Threads == h.p &&
		p.SaltLen == len(h.salt) && p.KeyLen == len(h.hash)
}

func (h *argon2idHash) pepperID() string { return h.keyID }
