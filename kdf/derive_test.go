package kdf

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/crypto/argon2"
)

// VLT-02 (the kdf half): a key derived from a password never equals the
// login hash of that password, even with the same salt and parameters.
func TestDeriveKeyDomainSeparation(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{})
	pw := []byte("one passphrase for login and vault")
	salt := []byte("0123456789abcdef")
	p := InteractiveParams()
	key, err := h.DeriveKey(bg, pw, salt, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 {
		t.Fatalf("key length %d", len(key))
	}
	verifier := argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, uint32(p.KeyLen))
	if bytes.Equal(key, verifier) {
		t.Fatal("derived key equals the login hash")
	}
	want := argon2.IDKey(pw, append([]byte(keySaltLabel), salt...), p.Time, p.MemoryKiB, p.Threads, 32)
	if !bytes.Equal(key, want) {
		t.Fatal("derived key does not follow the documented construction")
	}
	again, _ := h.DeriveKey(bg, pw, salt, p)
	if !bytes.Equal(key, again) {
		t.Fatal("DeriveKey is not deterministic")
	}
	other, _ := h.DeriveKey(bg, pw, []byte("fedcba9876543210"), p)
	if bytes.Equal(key, other) {
		t.Fatal("different salts gave one key")
	}
	nfd, _ := h.DeriveKey(bg, []byte("cafe\u0301 passphrase"), salt, p)
	nfc, _ := h.DeriveKey(bg, []byte("caf\u00e9 passphrase"), salt, p)
	if !bytes.Equal(nfd, nfc) {
		t.Fatal("NFC and NFD forms derive different keys")
	}
}

func TestDeriveKeyBounds(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{})
	salt := make([]byte, 16)
	for name, tc := range map[string]struct {
		salt []byte
		p    Params
		want error
	}{
		"short salt":      {make([]byte, 15), InteractiveParams(), ErrParamsOutOfBounds},
		"long salt":       {make([]byte, 65), InteractiveParams(), ErrParamsOutOfBounds},
		"short key":       {salt, Params{Algorithm: Argon2id, Time: 2, MemoryKiB: MinArgon2MemoryKiB, Threads: 1, KeyLen: 8}, ErrParamsOutOfBounds},
		"huge memory":     {salt, Params{Algorithm: Argon2id, Time: 2, MemoryKiB: 1 << 30, Threads: 1, KeyLen: 32}, ErrParamsOutOfBounds},
		"huge iterations": {salt, Params{Algorithm: PBKDF2SHA256, Iterations: 1 << 31, KeyLen: 32}, ErrParamsOutOfBounds},
		"unknown":         {salt, Params{Algorithm: "md5", KeyLen: 32}, ErrUnsupportedAlgorithm},
	} {
		if _, err := h.DeriveKey(bg, []byte("pw"), tc.salt, tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if _, err := h.DeriveKey(bg, []byte{0xff}, salt, InteractiveParams()); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	// A stored record made under an older, weaker policy still derives.
	old := Params{Algorithm: PBKDF2SHA256, Iterations: 1000, SaltLen: 16, KeyLen: 32}
	if _, err := h.DeriveKey(bg, []byte("pw"), salt, old); err != nil {
		t.Errorf("old params: %v", err)
	}
}
