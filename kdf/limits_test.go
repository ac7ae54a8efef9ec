package kdf

import (
	"errors"
	"fmt"
	"testing"
)

// Hashes made with x/crypto/argon2 at the largest memory DefaultLimits
// allow, and at argon2-cffi's (before 21.2) and Django's m=100 MiB, p=8.
const (
	hashAtMaxMemory = "$argon2id$v=19$m=131072,t=1,p=1$a2V5aG9sZC1saW1pdHMtMQ$8UnptqR4DYQLBTIoRwlj8z3hqtaHDls5IiCZJG38bqk"
	hashDjangoM     = "$argon2id$v=19$m=102400,t=2,p=8$a2V5aG9sZC1saW1pdHMtMQ$l5Etg93RpcYO7TKRNY12F7iyk1W5kFurYU+dhlGyaUw"
)

// TestDefaultBudgetHoldsLargestRun is issue 10, item 11: the Gate's
// default memory budget holds the largest run DefaultLimits admit, on a
// host of any CPU count, so a hash at the documented maximum m verifies
// behind a Gate of one or two places (before the fix the budget was
// GOMAXPROCS × 64 MiB and such hashes were refused as out of bounds).
// A refusal by the Limits is a *ParamsError, never ErrMismatch.
func TestDefaultBudgetHoldsLargestRun(t *testing.T) {
	if DefaultLimits().MaxMemoryKiB != 131072 {
		t.Fatalf("hashAtMaxMemory is at m=131072; DefaultLimits().MaxMemoryKiB is %d", DefaultLimits().MaxMemoryKiB)
	}
	for _, places := range []int{1, 2} {
		t.Run(fmt.Sprintf("MaxConcurrent=%d", places), func(t *testing.T) {
			g := newTestGate(t, GateConfig{MaxConcurrent: places})
			if got, want := g.Config().MemoryBudgetKiB, uint64(DefaultLimits().MaxMemoryKiB); got < want {
				t.Fatalf("default budget %d KiB < DefaultLimits().MaxMemoryKiB %d", got, want)
			}
			h := newTestHasher(t, Config{Gate: g})
			if h.Limits() != DefaultLimits() {
				t.Fatalf("Limits %+v, want DefaultLimits %+v", h.Limits(), DefaultLimits())
			}
			for _, enc := range []string{hashAtMaxMemory, hashDjangoM} {
				rehash, err := h.Verify(bg, enc, []byte("max params"))
				if err != nil || !rehash {
					t.Fatalf("Verify(%.40s…) = %v, %v; want a match needing rehash", enc, rehash, err)
				}
			}
		})
	}
	// Past the Limits: a typed parameter refusal, never a mismatch.
	h := newTestHasher(t, Config{})
	for _, enc := range []string{
		"$argon2id$v=19$m=131073,t=1,p=1$a2V5aG9sZC1saW1pdHMtMQ$8UnptqR4DYQLBTIoRwlj8z3hqtaHDls5IiCZJG38bqk",
		"$argon2id$v=19$m=131072,t=7,p=1$a2V5aG9sZC1saW1pdHMtMQ$8UnptqR4DYQLBTIoRwlj8z3hqtaHDls5IiCZJG38bqk",
	} {
		_, err := h.Verify(bg, enc, []byte("max params"))
		var pe *ParamsError
		if !errors.As(err, &pe) || !errors.Is(err, ErrParamsOutOfBounds) || errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%.45s…) = %v, want a *ParamsError", enc, err)
		}
	}
}

// TestDefaultLimitsAdmitCommonDefaults is issue 10, item 13's other half:
// lowering the Limits to about a second of work keeps the defaults of the
// libraries applications migrate from importable, and refuses the
// costlier settings that were measured at 1.8 to 6.2 seconds.
func TestDefaultLimitsAdmitCommonDefaults(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	for _, c := range []struct {
		what    string
		m, t    uint32
		p       uint8
		allowed bool
	}{
		{"argon2-cffi >= 21.2 / RFC 9106 second choice", 65536, 3, 4, true},
		{"argon2-cffi < 21.2, Django", 102400, 2, 8, true},
		{"PHP password_hash", 65536, 4, 1, true},
		{"libsodium interactive", 65536, 2, 1, true},
		{"keyhold SensitiveParams", 65536, 3, 4, true},
		{"OWASP floor", 19456, 2, 1, true},
		{"OWASP t=5 row", 7168, 5, 1, true},
		{"measured at 1.8 s", 131072, 16, 16, false},
		{"libsodium moderate", 262144, 3, 1, false},
	} {
		if err := lim.checkArgon2(c.m, c.t, c.p); (err == nil) != c.allowed {
			t.Errorf("argon2id %s (m=%d,t=%d,p=%d): %v, want allowed=%v", c.what, c.m, c.t, c.p, err, c.allowed)
		}
	}
	for _, c := range []struct {
		what        string
		i           uint64
		digest, key int
		allowed     bool
	}{
		{"Django 6.0 pbkdf2_sha256", 1_200_000, 32, 32, true},
		{"Werkzeug 3.1 pbkdf2:sha256", 1_000_000, 32, 32, true},
		{"OWASP PBKDF2-SHA1", 1_300_000, 20, 20, true},
		{"OWASP PBKDF2-SHA512", 220_000, 64, 64, true},
		{"keyhold PBKDF2SHA256Params", 600_000, 32, 32, true},
		{"measured at 6.2 s", 10_000_000, 64, 64, false},
		{"SHA-256, 4 blocks of output", 1_500_000, 32, 128, false},
	} {
		if err := lim.checkPBKDF2(c.i, c.digest, c.key); (err == nil) != c.allowed {
			t.Errorf("pbkdf2 %s: %v, want allowed=%v", c.what, err, c.allowed)
		}
	}
	if lim.MaxBcryptCost < 12 || lim.MaxBcryptCost > 14 {
		t.Errorf("MaxBcryptCost %d, want 12 to 14", lim.MaxBcryptCost)
	}
	// scrypt: passlib's default (ln=16, r=8, p=1) and Werkzeug's
	// (N=2^15, r=8, p=1) fit.
	if n := lim.maxScryptN(8, 1); n < 1<<16 {
		t.Errorf("largest scrypt N at r=8, p=1 is %d, want at least 2^16", n)
	}
}
