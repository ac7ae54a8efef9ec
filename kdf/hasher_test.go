package kdf

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

var bg = context.Background()

func newTestHasher(t testing.TB, cfg Config) *Hasher {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// KDF-01: the default is Argon2id at or above the OWASP floor, and a Hasher
// below the floor cannot be built.
func TestDefaultsAndFloor(t *testing.T) {
	t.Parallel()
	for _, p := range []Params{
		{Algorithm: Argon2id, Time: 1, MemoryKiB: 8192, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Algorithm: Argon2id, Time: 2, MemoryKiB: 19455, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Algorithm: Argon2id, Time: 1, MemoryKiB: 47103, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Algorithm: Argon2id, Time: 2, MemoryKiB: 19456, Threads: 1, SaltLen: 8, KeyLen: 32},
		{Algorithm: Argon2id, Time: 2, MemoryKiB: 19456, Threads: 1, SaltLen: 16, KeyLen: 8},
		{Algorithm: PBKDF2SHA256, Iterations: 599_999, SaltLen: 16, KeyLen: 32},
		{Algorithm: PBKDF2SHA512, Iterations: 219_999, SaltLen: 16, KeyLen: 64},
	} {
		if _, err := New(Config{Params: p}); !errors.Is(err, ErrWeakParams) {
			t.Errorf("New(%+v) = %v, want ErrWeakParams", p, err)
		}
	}
	if _, err := New(Config{Params: Params{Algorithm: "sha1", SaltLen: 16, KeyLen: 32}}); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("unknown algorithm: %v", err)
	}
	h := newTestHasher(t, Config{})
	enc, err := h.Hash(bg, []byte("a passphrase of some length"))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parseArgon2id(enc, h.limits)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.m < MinArgon2MemoryKiB || parsed.t < 2 || parsed.p < 1 {
		t.Fatalf("default hash %s is below the floor", enc)
	}
	for _, p := range []Params{DefaultParams(), InteractiveParams(), ModerateParams(), SensitiveParams(), PBKDF2SHA256Params(), PBKDF2SHA512Params()} {
		if err := p.Validate(); err != nil {
			t.Errorf("preset %+v: %v", p, err)
		}
	}
}

// KDF-02: PBKDF2 defaults.
func TestPBKDF2Defaults(t *testing.T) {
	t.Parallel()
	if p := PBKDF2SHA256Params(); p.Iterations < 600_000 {
		t.Errorf("PBKDF2-SHA256 iterations %d", p.Iterations)
	}
	if p := PBKDF2SHA512Params(); p.Iterations < 220_000 {
		t.Errorf("PBKDF2-SHA512 iterations %d", p.Iterations)
	}
	h := newTestHasher(t, Config{Params: PBKDF2SHA256Params()})
	enc, err := h.Hash(bg, []byte("pbkdf2 passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$pbkdf2-sha256$i=600000,l=32$") {
		t.Fatalf("unexpected encoding %s", enc)
	}
	if rehash, err := h.Verify(bg, enc, []byte("pbkdf2 passphrase")); err != nil || rehash {
		t.Fatalf("Verify = %v, %v", rehash, err)
	}
}

// KDF-04: a fresh 16-byte salt per hash.
func TestFreshSalt(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{})
	a, err := h.Hash(bg, []byte("same password"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Hash(bg, []byte("same password"))
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := parseArgon2id(a, h.limits)
	pb, _ := parseArgon2id(b, h.limits)
	if len(pa.salt) != 16 || len(pb.salt) != 16 {
		t.Fatalf("salt lengths %d, %d", len(pa.salt), len(pb.salt))
	}
	if string(pa.salt) == string(pb.salt) || string(pa.hash) == string(pb.hash) {
		t.Fatal("two hashes of one password share a salt or a hash")
	}
}

// KDF-06: needs-rehash whenever algorithm, parameters or pepper differ.
func TestNeedsRehash(t *testing.T) {
	t.Parallel()
	pw := []byte("rehash me please")
	gate, _ := NewGate(GateConfig{MaxConcurrent: 2})
	pepper1, _ := NewPepper("p1", make([]byte, 32))
	pepper2, _ := NewPepper("p2", append(make([]byte, 31), 1))

	interactive := newTestHasher(t, Config{Gate: gate})
	moderate := newTestHasher(t, Config{Gate: gate, Params: ModerateParams()})
	pbkdf2 := newTestHasher(t, Config{Gate: gate, Params: PBKDF2SHA256Params()})
	peppered1 := newTestHasher(t, Config{Gate: gate, Pepper: pepper1})
	peppered2 := newTestHasher(t, Config{Gate: gate, Pepper: pepper2, OldPeppers: []Pepper{pepper1}})

	hash := func(h *Hasher) string {
		enc, err := h.Hash(bg, pw)
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	fromInteractive, fromModerate, fromPBKDF2, fromPepper1 := hash(interactive), hash(moderate), hash(pbkdf2), hash(peppered1)
	longerKey := newTestHasher(t, Config{Gate: gate, Params: Params{Algorithm: Argon2id, Time: 2, MemoryKiB: MinArgon2MemoryKiB, Threads: 1, SaltLen: 16, KeyLen: 64}})
	fromLongerKey := hash(longerKey)

	for _, tc := range []struct {
		name    string
		h       *Hasher
		enc     string
		rehash  bool
		wantErr error
	}{
		{"current", interactive, fromInteractive, false, nil},
		{"more memory than policy", interactive, fromModerate, true, nil},
		{"less memory than policy", moderate, fromInteractive, true, nil},
		{"other algorithm", interactive, fromPBKDF2, true, nil},
		{"argon2 under a pbkdf2 policy", pbkdf2, fromInteractive, true, nil},
		{"other key length", interactive, fromLongerKey, true, nil},
		{"unpeppered under a pepper policy", peppered1, fromInteractive, true, nil},
		{"current pepper", peppered1, fromPepper1, false, nil},
		{"old pepper", peppered2, fromPepper1, true, nil},
		{"unknown pepper", interactive, fromPepper1, false, ErrUnknownPepper},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rehash, err := tc.h.Verify(bg, tc.enc, pw)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if rehash != tc.rehash {
				t.Fatalf("needsRehash = %v, want %v", rehash, tc.rehash)
			}
		})
	}
}

// KDF-07: bounds are enforced before any memory is allocated for the
// stored hash's KDF. Parsing allocates a few KiB at most; Verify then does
// only the dummy work of a wrong password at the Hasher's own parameters
// (review finding F6: the refusal costs what an unknown account costs),
// counted through the run hook, never a run at the stored parameters.
//
// Not parallel, and the least of three tries counts, for the reason given
// at TestPasswordLengthCap.
func TestStoredParamsBoundedBeforeAllocation(t *testing.T) {
	h := newTestHasher(t, Config{Params: cheapTestParams()})
	rec := recordRuns(h)
	lim := h.Limits()
	for _, enc := range []string{
		"$argon2id$v=19$m=4194304,t=1000,p=255$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=65536,t=17,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=65536,t=2,p=17$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$" + strings.Repeat("A", 200),
		"$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$AAAA",
		"$pbkdf2-sha256$i=4000000000,l=32$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$pbkdf2-sha256$i=99999999999999999999999,l=32$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	} {
		least := uint64(math.MaxUint64)
		for range 3 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			parseStored(enc, lim)
			runtime.ReadMemStats(&after)
			least = min(least, after.TotalAlloc-before.TotalAlloc)
		}
		_, err := h.Verify(bg, enc, []byte("password"))
		if runs := rec.take(); !slices.Equal(runs, []kdfRun{cheapTestParams().run()}) {
			t.Errorf("%s: Verify made runs %+v, want only the dummy run", enc, runs)
		}
		if !errors.Is(err, ErrParamsOutOfBounds) {
			t.Errorf("%s: err = %v, want ErrParamsOutOfBounds", enc, err)
		}
		var pe *ParamsError
		if !errors.As(err, &pe) {
			t.Errorf("%s: err %v is not a *ParamsError", enc, err)
		}
		// A KDF run would add at least 19 MiB; 4 MiB separates the two.
		if least > 4<<20 {
			t.Errorf("%s: %d bytes allocated while parsing", enc, least)
		}
	}
	if _, err := h.Verify(bg, strings.Repeat("$", 10_000), []byte("x")); !errors.Is(err, ErrParamsOutOfBounds) {
		t.Errorf("oversized encoding: %v", err)
	}
}

// Malformed encodings are refused with ErrMalformedHash or
// ErrUnsupportedAlgorithm, never a panic.
func TestMalformedHashes(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{})
	good := "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	for _, tc := range []struct {
		enc  string
		want error
	}{
		{"", ErrUnsupportedAlgorithm},
		{"plaintext", ErrUnsupportedAlgorithm},
		{"$md5$abc", ErrUnsupportedAlgorithm},
		{"$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrUnsupportedAlgorithm},
		{"$argon2id$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrUnsupportedAlgorithm},
		{"$argon2id$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrMalformedHash},
		{"$argon2id$v=19$t=2,m=65536,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrMalformedHash},
		{"$argon2id$v=19$m=065536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrMalformedHash},
		{"$argon2id$v=19$m=65536,t=2,p=1,x=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrMalformedHash},
		{"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrMalformedHash},
		{"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHR$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrMalformedHash},
		{good + "$", ErrMalformedHash},
		{"$pbkdf2-sha256$i=1000,l=31$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrMalformedHash},
		{"$pbkdf2-sha256$i=1000$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrMalformedHash},
		{"$pbkdf2-md5$i=1000,l=32$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", ErrUnsupportedAlgorithm},
	} {
		if _, err := h.Verify(bg, tc.enc, []byte("password")); !errors.Is(err, tc.want) {
			t.Errorf("Verify(%q) = %v, want %v", tc.enc, err, tc.want)
		}
	}
}

// KDF-09: the length cap is checked before any hashing work; 64
// characters of any script are always accepted.
//
// Not parallel: the allocation check reads process-wide counters, which
// parallel tests would inflate (a top-level test without t.Parallel runs
// while every parallel test waits). It takes the least of three tries, so a
// stray background allocation cannot fail it, while a KDF run (19 MiB and
// more) would show in every try.
func TestPasswordLengthCap(t *testing.T) {
	h := newTestHasher(t, Config{})
	sixtyFour := []byte(strings.Repeat("😀", 64)) // 256 bytes
	enc, err := h.Hash(bg, sixtyFour)
	if err != nil {
		t.Fatalf("64 emoji: %v", err)
	}
	if _, err := h.Verify(bg, enc, sixtyFour); err != nil {
		t.Fatalf("64 emoji verify: %v", err)
	}
	huge := make([]byte, 1<<20)
	for name, call := range map[string]func() error{
		"Hash":        func() error { _, err := h.Hash(bg, huge); return err },
		"Verify":      func() error { _, err := h.Verify(bg, enc, huge); return err },
		"VerifyDummy": func() error { return h.VerifyDummy(bg, huge) },
		"DeriveKey":   func() error { _, err := h.DeriveKey(bg, huge, make([]byte, 16), SensitiveParams()); return err },
	} {
		least := uint64(math.MaxUint64)
		for range 3 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := call()
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLong) {
				t.Errorf("%s(1 MiB) = %v, want ErrTooLong", name, err)
			}
			least = min(least, after.TotalAlloc-before.TotalAlloc)
		}
		if least > 4<<20 {
			t.Errorf("%s(1 MiB) allocated %d bytes: a KDF ran", name, least)
		}
	}
	if _, err := New(Config{MaxPasswordBytes: 255}); err == nil {
		t.Error("a cap below 64 four-byte characters was accepted")
	}
}

// KDF-11: the pepper is a keyed HMAC referenced by id; the hash holds the
// id, never the key, and another key under the same id fails.
func TestPepper(t *testing.T) {
	t.Parallel()
	k1 := []byte("0123456789abcdef0123456789abcdef")
	k2 := []byte("fedcba9876543210fedcba9876543210")
	p1, err := NewPepper("2026a", k1)
	if err != nil {
		t.Fatal(err)
	}
	p1other, _ := NewPepper("2026a", k2)
	h1 := newTestHasher(t, Config{Pepper: p1})
	h2 := newTestHasher(t, Config{Pepper: p1other})
	enc, err := h1.Hash(bg, []byte("peppered password"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(enc, ",keyid="+encodePepperID("2026a")+"$") {
		t.Fatalf("hash %s does not reference the pepper id", enc)
	}
	if strings.Contains(enc, b64.EncodeToString(k1)) || strings.Contains(enc, string(k1)) {
		t.Fatal("hash contains the pepper key")
	}
	if _, err := h1.Verify(bg, enc, []byte("peppered password")); err != nil {
		t.Fatalf("same pepper: %v", err)
	}
	if _, err := h2.Verify(bg, enc, []byte("peppered password")); !errors.Is(err, ErrMismatch) {
		t.Fatalf("other key under the same id: %v, want ErrMismatch", err)
	}
	if s := p1.String() + p1.GoString(); strings.Contains(s, string(k1)) {
		t.Fatal("Pepper prints its key")
	}
	if _, err := p1.MarshalText(); err == nil {
		t.Fatal("a Pepper marshalled")
	}
	for _, bad := range []struct {
		id  string
		key []byte
	}{{"", k1}, {"toolongid", k1}, {"a$b", k1}, {"ok", k1[:31]}} {
		if _, err := NewPepper(bad.id, bad.key); err == nil {
			t.Errorf("NewPepper(%q, %d bytes) accepted", bad.id, len(bad.key))
		}
	}
	if _, err := New(Config{Pepper: p1, OldPeppers: []Pepper{p1other}}); err == nil {
		t.Error("two peppers with one id accepted")
	}
}

// KDF-16: one normalisation (NFKC) at set and verify; no trimming or case
// folding.
func TestNormalization(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{})
	nfc := []byte("caf\u00e9 au lait, s'il vous pla\u00eet")
	nfd := []byte("cafe\u0301 au lait, s'il vous pla\u0069\u0302t")
	enc, err := h.Hash(bg, nfc)
	if err != nil {
		t.Fatal(err)
	}
	for name, pw := range map[string][]byte{"NFC": nfc, "NFD": nfd} {
		if rehash, err := h.Verify(bg, enc, pw); err != nil || rehash {
			t.Errorf("%s: Verify = %v, %v", name, rehash, err)
		}
	}
	enc2, err := h.Hash(bg, []byte("Secret passphrase here"))
	if err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{"secret passphrase here", "Secret passphrase here ", " Secret passphrase here", "Secret passphrase her"} {
		if _, err := h.Verify(bg, enc2, []byte(wrong)); !errors.Is(err, ErrMismatch) {
			t.Errorf("%q verified: %v", wrong, err)
		}
	}
	// Full-width digits are compatibility characters: NFKC maps them.
	enc3, _ := h.Hash(bg, []byte("pin \uff11\uff12\uff13\uff14 and more words"))
	if _, err := h.Verify(bg, enc3, []byte("pin 1234 and more words")); err != nil {
		t.Errorf("full-width and ASCII digits differ after NFKC: %v", err)
	}
	if _, err := h.Hash(bg, []byte{0xff, 0xfe, 'a'}); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

// A hash made by another library over bytes that are not in NFKC form
// (here: NFD) still verifies with those bytes, and asks for a rehash.
func TestImportedNonNormalizedArgon2id(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{})
	nfd := []byte("re\u0301sume\u0301 passphrase")
	salt := []byte("0123456789abcdef")
	sum := argon2.IDKey(nfd, salt, 2, MinArgon2MemoryKiB, 1, 32)
	enc := (&argon2idHash{m: MinArgon2MemoryKiB, t: 2, p: 1, salt: salt, hash: sum}).String()
	rehash, err := h.Verify(bg, enc, nfd)
	if err != nil || !rehash {
		t.Fatalf("Verify = %v, %v; want match with rehash", rehash, err)
	}
	if _, err := h.Verify(bg, enc, []byte("r\u00e9sum\u00e9 passphrase")); !errors.Is(err, ErrMismatch) {
		t.Fatalf("NFC input against an NFD hash: %v", err)
	}
}

// The dummy verify does a full run at current parameters and always
// reports a mismatch.
func TestVerifyDummy(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{})
	if err := h.VerifyDummy(bg, []byte("anything")); !errors.Is(err, ErrMismatch) {
		t.Fatalf("VerifyDummy = %v", err)
	}
	if err := h.VerifyDummy(bg, []byte{0xff}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("VerifyDummy(invalid UTF-8) = %v", err)
	}
	// It passes through the gate like a real verify.
	gate, _ := NewGate(GateConfig{MaxConcurrent: 1, FailFast: true})
	hg := newTestHasher(t, Config{Gate: gate})
	release, err := gate.acquire(bg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := hg.VerifyDummy(bg, []byte("anything")); !errors.Is(err, ErrBusy) {
		t.Fatalf("VerifyDummy with the gate full = %v, want ErrBusy", err)
	}
}
