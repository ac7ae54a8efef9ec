package kdf_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

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

// limitCase is a stored hash at the most costly parameters DefaultLimits
// admit for one bound, made with the bare primitive.
type limitCase struct {
	name string
	make func() string
}

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// limitCases are the worst case of each bound of DefaultLimits: the work a
// stored hash (written by whoever reached the database) can ask of one
// verification. Argon2id at p=1 is the most time on one core for its m×t.
func limitCases() []limitCase {
	lim := kdf.DefaultLimits()
	pw, salt := benchPassword, benchSalt
	argon := func(m, t uint32, p uint8) limitCase {
		return limitCase{fmt.Sprintf("argon2id/m=%d,t=%d,p=%d", m, t, p), func() string {
			sum := argon2.IDKey(pw, salt, t, m, p, 32)
			return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p, b64(salt), b64(sum))
		}}
	}
	maxM := lim.MaxMemoryKiB
	maxT := uint32(lim.MaxArgon2MemoryTime / uint64(maxM))
	return []limitCase{
		argon(maxM, maxT, 1),
		argon(uint32(lim.MaxArgon2MemoryTime/uint64(lim.MaxTime)), lim.MaxTime, 1),
		{fmt.Sprintf("pbkdf2-sha256/i=%d", lim.MaxIterations), func() string {
			sum, _ := pbkdf2.Key(sha256.New, string(pw), salt, int(lim.MaxIterations), 32)
			return fmt.Sprintf("$pbkdf2-sha256$i=%d,l=32$%s$%s", lim.MaxIterations, b64(salt), b64(sum))
		}},
		{fmt.Sprintf("pbkdf2-sha1/i=%d", lim.MaxIterations), func() string {
			sum, _ := pbkdf2.Key(sha1.New, string(pw), salt, int(lim.MaxIterations), 20)
			ab := strings.ReplaceAll(b64(salt), "+", ".")
			return fmt.Sprintf("$pbkdf2$%d$%s$%s", lim.MaxIterations, ab, strings.ReplaceAll(b64(sum), "+", "."))
		}},
		{fmt.Sprintf("pbkdf2-sha512/i=%d", lim.MaxIterationsSHA512), func() string {
			sum, _ := pbkdf2.Key(sha512.New, string(pw), salt, int(lim.MaxIterationsSHA512), 64)
			return fmt.Sprintf("$pbkdf2-sha512$i=%d,l=64$%s$%s", lim.MaxIterationsSHA512, b64(salt), b64(sum))
		}},
		{fmt.Sprintf("bcrypt/cost=%d", lim.MaxBcryptCost), func() string {
			h, _ := bcrypt.GenerateFromPassword(pw, lim.MaxBcryptCost)
			return string(h)
		}},
		{"scrypt/ln=17,r=8,p=2", func() string { // 128·N·r·p = 256 MiB, the bound
			sum, _ := scrypt.Key(pw, salt, 1<<17, 8, 2, 32)
			return fmt.Sprintf("$scrypt$ln=17,r=8,p=2$%s$%s", b64(salt), b64(sum))
		}},
	}
}

// BenchmarkVerifyAtLimits measures Hasher.Verify (matching password) of a
// hash at DefaultParams and then at the worst case each bound of
// DefaultLimits admits, and reports each as a ratio to the DefaultParams
// run of the same process ("x-default"), which is steadier on a shared
// machine than the seconds. `bash bench/run.sh` runs it and writes the
// ratios to BENCHMARKS.md. By hand, run it with a small -benchtime (3x):
// each worst case is one costly verification.
func BenchmarkVerifyAtLimits(b *testing.B) {
	ctx := context.Background()
	gate, err := kdf.NewGate(kdf.GateConfig{MaxConcurrent: 1})
	if err != nil {
		b.Fatal(err)
	}
	h, err := kdf.New(kdf.Config{Gate: gate})
	if err != nil {
		b.Fatal(err)
	}
	var base float64 // ns per DefaultParams verification
	verify := func(b *testing.B, encoded string) float64 {
		for b.Loop() {
			if _, err := h.Verify(ctx, encoded, benchPassword); err != nil {
				b.Fatal(err)
			}
		}
		return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
	b.Run("default/"+benchName(kdf.DefaultParams()), func(b *testing.B) {
		encoded, err := h.Hash(ctx, benchPassword)
		if err != nil {
			b.Fatal(err)
		}
		base = verify(b, encoded)
		b.ReportMetric(1, "x-default")
	})
	for _, c := range limitCases() {
		b.Run("limit/"+c.name, func(b *testing.B) {
			encoded := c.make()
			ns := verify(b, encoded)
			if base > 0 {
				b.ReportMetric(ns/base, "x-default")
			}
		})
	}
}
