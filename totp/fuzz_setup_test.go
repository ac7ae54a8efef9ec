package totp

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeSetup: the plaintext of a setup token decodes without
// panicking, only with valid parameters and a secret of at least 20
// bytes, and re-encodes to the same bytes (truncated or extended
// plaintexts are refused).
func FuzzDecodeSetup(f *testing.F) {
	for _, s := range []*setup{
		{removals: 0, expires: 1767225600000, alg: algSHA1, digits: 6, period: 30, account: "alice@example.com", secret: bytes.Repeat([]byte{1}, 20)},
		{removals: 7, expires: -1, alg: algSHA256, digits: 8, period: 60, account: "", secret: bytes.Repeat([]byte{2}, 32)},
		{removals: 1 << 63, expires: 1, alg: algSHA512, digits: 6, period: 30, account: strings.Repeat("a", 255), secret: bytes.Repeat([]byte{3}, 64)},
		{alg: algSHA1, digits: 6, period: 30, secret: bytes.Repeat([]byte{4}, 19)},
		{alg: 9, digits: 7, period: 0, secret: bytes.Repeat([]byte{4}, 20)},
	} {
		s.id[0] = 0xab
		b := s.encode()
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(b, 0))
	}
	f.Add([]byte{setupFormat})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := decodeSetup(b)
		if !ok {
			if s != nil {
				t.Fatalf("decodeSetup(%x): a setup and false", b)
			}
			return
		}
		if !validParams(s.alg, s.digits, s.period) || len(s.secret) < 20 {
			t.Fatalf("decodeSetup(%x) accepted %+v", b, s)
		}
		if again := s.encode(); !bytes.Equal(again, b) {
			t.Fatalf("decodeSetup(%x) re-encodes to %x", b, again)
		}
	})
}

// FuzzKeyRingOpen: a KeyRing opens arbitrary sealed bytes without
// panicking, fails with ErrUnsealFailed only, and opens nothing but what
// it sealed for this user and associated data (the seeds: real sealed
// secrets under the current and an older key, cut, extended, under an
// unknown key ID and with a bit flipped). Stale agrees with the key ID
// the bytes name.
func FuzzKeyRingOpen(f *testing.F) {
	keys := map[string][]byte{"2025": bytes.Repeat([]byte{1}, KeyRingKeyLen), "2026": bytes.Repeat([]byte{2}, KeyRingKeyLen)}
	old, err := NewKeyRing("2025", keys)
	if err != nil {
		f.Fatal(err)
	}
	ring, err := NewKeyRing("2026", keys)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	plaintext := []byte("12345678901234567890")
	genuine := map[string]bool{}
	// Fixed nonces: the fuzzing workers, which run this setup again, must
	// know the same genuine values as the process that added the seeds.
	for i, r := range []*KeyRing{old, ring} {
		sealed := r.sealWithNonce("alice", plaintext, []byte("ad"), bytes.Repeat([]byte{byte(i)}, 12))
		genuine[string(sealed)] = true
		f.Add(sealed, []byte("ad"))
		f.Add(sealed[:len(sealed)-1], []byte("ad"))
		f.Add(append(sealed, 0), []byte("ad"))
		f.Add(sealed, []byte("other"))
		flipped := bytes.Clone(sealed)
		flipped[len(flipped)-1] ^= 1
		f.Add(flipped, []byte("ad"))
		other := bytes.Clone(sealed)
		other[2] = 'X'
		f.Add(other, []byte("ad"))
	}
	f.Add([]byte{keyRingFormat, 0}, []byte{})
	f.Add([]byte{keyRingFormat, 1}, []byte{})
	f.Add([]byte{keyRingFormat, 2, '2'}, []byte{})
	f.Add([]byte{keyRingFormat, 200, '2'}, []byte{})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		pt, err := ring.Open(ctx, "alice", sealed, ad)
		if err != nil {
			if !errors.Is(err, ErrUnsealFailed) || pt != nil {
				t.Fatalf("Open = %x, %v; want nil, ErrUnsealFailed", pt, err)
			}
		} else if !genuine[string(sealed)] || string(ad) != "ad" || !bytes.Equal(pt, plaintext) {
			t.Fatalf("Open(%x, %q) = %x: not what was sealed", sealed, ad, pt)
		}
		keyID, rest, ok := splitKeyRing(sealed)
		if ok && (keyID == "" || len(sealed) != 2+len(keyID)+len(rest) || !bytes.Equal(sealed[2:2+len(keyID)], []byte(keyID))) {
			t.Fatalf("splitKeyRing(%x) = %q, %x", sealed, keyID, rest)
		}
		if ring.Stale(sealed) != (ok && keyID != "2026") {
			t.Fatalf("Stale(%x) = %v with key ID %q (ok %v)", sealed, ring.Stale(sealed), keyID, ok)
		}
	})
}
