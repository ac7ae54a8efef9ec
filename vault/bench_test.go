package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"

	"github.com/keyhold/keyhold/storage/memstore"
)

// BenchmarkSeal and BenchmarkOpen against raw AES-256-GCM with random
// nonces (cipher.NewGCMWithRandomNonce) on the same sizes, in one run:
// compare with benchstat, or read the ratio of ns/op.
func BenchmarkSeal(b *testing.B) {
	v, _ := newTestVault(b)
	u := mustCreate(b, v, "bench", "bench passphrase")
	ctx := []byte("table/record/field")
	for _, size := range []int{64, 1024, 64 * 1024} {
		pt := make([]byte, size)
		b.Run(fmt.Sprintf("keyhold/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := u.Seal(pt, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("raw-aes-gcm/%dB", size), func(b *testing.B) {
			aead := rawAEAD(b)
			b.SetBytes(int64(size))
			for b.Loop() {
				aead.Seal(nil, nil, pt, ctx)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	v, _ := newTestVault(b)
	u := mustCreate(b, v, "bench", "bench passphrase")
	ctx := []byte("table/record/field")
	for _, size := range []int{64, 1024, 64 * 1024} {
		pt := make([]byte, size)
		sealed, _ := u.Seal(pt, ctx)
		b.Run(fmt.Sprintf("keyhold/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := u.Open(sealed, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("raw-aes-gcm/%dB", size), func(b *testing.B) {
			aead := rawAEAD(b)
			raw := aead.Seal(nil, nil, pt, ctx)
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := aead.Open(nil, nil, raw, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rawAEAD is the reference: AES-256-GCM with a random nonce per Seal and
// nothing else (no header, no associated-data building).
func rawAEAD(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		b.Fatal(err)
	}
	return aead
}

// BenchmarkUnlock splits the cost of an unlock at the default slot
// parameters (Argon2id 64 MiB, t=3, p=4): the KDF alone and the whole
// Unlock (KDF + storage read + decode + unwrap + key schedule), and the
// part after the KDF on its own.
func BenchmarkUnlock(b *testing.B) {
	store := memstore.New()
	v, err := New(store, Config{Hasher: testHasher})
	if err != nil {
		b.Fatal(err)
	}
	mustCreate(b, v, "bench", "bench passphrase")
	rec, _ := store.GetVault(bg, "bench")
	r, _ := decodeRecord(rec.Data)
	p, salt, _ := decodePassphraseParams(r.slots[0].params)
	b.Run("kdf-only", func(b *testing.B) {
		for b.Loop() {
			if _, err := testHasher.DeriveKey(bg, []byte("bench passphrase"), salt, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("without-kdf", func(b *testing.B) {
		kek, err := testHasher.DeriveKey(bg, []byte("bench passphrase"), salt, p)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			rec, err := store.GetVault(bg, "bench")
			if err != nil {
				b.Fatal(err)
			}
			r, err := decodeRecord(rec.Data)
			if err != nil {
				b.Fatal(err)
			}
			mk, err := unwrapKey(kek, r.slots[0].wrapped, slotAAD("bench", &r.slots[0]))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := unlocked("bench", r, mk); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unlock", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Unlock(bg, "bench", []byte("bench passphrase")); err != nil {
				b.Fatal(err)
			}
		}
	})
}
