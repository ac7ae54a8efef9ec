package kdf_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"fmt"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/keyhold/keyhold/kdf"
)

// The benchmarks below come in pairs: the library's path (BenchmarkHash,
// BenchmarkVerify) and the bare primitive it wraps (BenchmarkArgon2id for
// golang.org/x/crypto/argon2.IDKey, BenchmarkPBKDF2SHA256 for crypto/pbkdf2),
// named by the same parameters so that one run gives both and their ratio
// is the library's overhead. bench/kdf.sh compares them with the reference
// C implementations (the argon2 CLI, openssl kdf).

var (
	benchPassword = []byte("password")
	benchSalt     = []byte("saltsaltsaltsalt")
)

// benchParams are the presets measured: Argon2id at the interactive
// (19 MiB) and moderate (64 MiB) presets, and PBKDF2-HMAC-SHA256 at the
// OWASP floor of 600,000 iterations.
func benchParams() []kdf.Params {
	return []kdf.Params{kdf.InteractiveParams(), kdf.ModerateParams(), kdf.PBKDF2SHA256Params()}
}

// benchName names a run by its algorithm and parameters, e.g.
// "argon2id/m=65536,t=2,p=1" or "pbkdf2-sha256/i=600000".
func benchName(p kdf.Params) string {
	if p.Algorithm == kdf.Argon2id {
		return fmt.Sprintf("%s/%s", p.Algorithm, argon2Name(p))
	}
	return fmt.Sprintf("%s/i=%d", p.Algorithm, p.Iterations)
}

func argon2Name(p kdf.Params) string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Time, p.Threads)
}

func benchHasher(b *testing.B, p kdf.Params) *kdf.Hasher {
	b.Helper()
	h, err := kdf.New(kdf.Config{Params: p})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkArgon2id is the reference for the Argon2id rows of
// BenchmarkHash and BenchmarkVerify: x/crypto's argon2.IDKey alone, with
// no normalisation, Gate or encoding.
func BenchmarkArgon2id(b *testing.B) {
	for _, p := range benchParams() {
		if p.Algorithm != kdf.Argon2id {
			continue
		}
		b.Run(argon2Name(p), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				argon2.IDKey(benchPassword, benchSalt, p.Time, p.MemoryKiB, p.Threads, uint32(p.KeyLen))
			}
		})
	}
}

// BenchmarkPBKDF2SHA256 is the reference for the PBKDF2 rows: the standard
// library's crypto/pbkdf2 with crypto/sha256 alone.
func BenchmarkPBKDF2SHA256(b *testing.B) {
	p := kdf.PBKDF2SHA256Params()
	b.Run(fmt.Sprintf("i=%d", p.Iterations), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pbkdf2.Key(sha256.New, string(benchPassword), benchSalt, int(p.Iterations), p.KeyLen); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHash measures Hasher.Hash: normalisation, a random salt, the
// Gate (including the collections it forces), the KDF and PHC encoding.
func BenchmarkHash(b *testing.B) {
	ctx := context.Background()
	for _, p := range benchParams() {
		b.Run(benchName(p), func(b *testing.B) {
			h := benchHasher(b, p)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Hash(ctx, benchPassword); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify measures Hasher.Verify of a matching password: parsing,
// bounds checks, the Gate and one KDF run.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for _, p := range benchParams() {
		b.Run(benchName(p), func(b *testing.B) {
			h := benchHasher(b, p)
			encoded, err := h.Hash(ctx, benchPassword)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.Verify(ctx, encoded, benchPassword); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
