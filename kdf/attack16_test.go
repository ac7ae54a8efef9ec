package kdf

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/keyhold/keyhold/internal/testenv"
)

// Issue 16: crafted PHC strings. Someone who can write the users table
// (or a migration that imports hashes) stores an encoded hash made to cost
// the server: parameters at and beyond kdf.DefaultLimits, numbers too
// large for their field, leading zeros, repeated parameters, an unknown
// algorithm, an overlong string. Each must be refused with a typed error
// (errors.Is, and *ParamsError for a bound, naming the parameter and the
// bound) BEFORE any work at the stored parameters: the only KDF runs are
// the dummy runs of a wrong password at the Hasher's own parameters,
// counted through the run hook (no timing). A hash exactly at a limit is
// accepted.

// attack16Salt and attack16Hash are the salt and hash fields of the
// crafted strings: 16 and 32 bytes, within every bound.
var (
	attack16Salt = b64.EncodeToString([]byte("keyhold-attack16"))
	attack16Hash = b64.EncodeToString([]byte("keyhold-attack16-hash-32-bytes!!"))
)

func attack16Argon(params string) string {
	return "$argon2id$v=19$" + params + "$" + attack16Salt + "$" + attack16Hash
}

func attack16B64(n int) string { return b64.EncodeToString([]byte(strings.Repeat("s", n))) }

// TestAttack16CraftedPHCRefusedBeforeWork refuses every crafted string
// over DefaultLimits with its typed error, after only the dummy runs that
// VerifyDummy makes for the same password, and never a run at the
// crafted parameters. Every string goes through the parser; Verify (a KDF
// run each) takes every string in long mode (KEYHOLD_LONG_TESTS=1), and
// one of each kind of refusal otherwise.
func TestAttack16CraftedPHCRefusedBeforeWork(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{Params: cheapTestParams()})
	if h.Limits() != DefaultLimits() {
		t.Fatalf("the test Hasher's limits are %+v, want DefaultLimits", h.Limits())
	}
	rec := recordRuns(h)
	pw := []byte("a guess")
	if err := h.VerifyDummy(bg, pw); !errors.Is(err, ErrMismatch) {
		t.Fatal(err)
	}
	dummy := rec.take()
	if len(dummy) == 0 {
		t.Fatal("VerifyDummy made no run: the counter counts nothing")
	}

	// bound is a refusal for a parameter over (or under) a bound: the
	// *ParamsError names the parameter and the bound.
	type bound struct {
		param string
		value uint64
		limit uint64
	}
	over := func(param string, value, limit uint64) *bound { return &bound{param, value, limit} }
	verified := map[string]bool{} // the kinds of refusal Verify has taken
	for _, tc := range []struct {
		name string
		enc  string
		want error
		b    *bound
	}{
		// Argon2id, one past each bound of DefaultLimits.
		{"m over", attack16Argon("m=262145,t=1,p=1"), ErrParamsOutOfBounds, over("m", 262145, 262144)},
		{"m×t over", attack16Argon("m=262144,t=4,p=1"), ErrParamsOutOfBounds, over("m×t", 262144*4, 786432)},
		{"t over", attack16Argon("m=8192,t=17,p=1"), ErrParamsOutOfBounds, over("t", 17, 16)},
		{"p over", attack16Argon("m=65536,t=1,p=17"), ErrParamsOutOfBounds, over("p", 17, 16)},
		{"t zero", attack16Argon("m=65536,t=0,p=1"), ErrParamsOutOfBounds, over("t", 0, 1)},
		{"p zero", attack16Argon("m=65536,t=1,p=0"), ErrParamsOutOfBounds, over("p", 0, 1)},
		{"m under 8p", attack16Argon("m=127,t=1,p=16"), ErrParamsOutOfBounds, over("m", 127, 128)},
		// Numbers that do not fit their field (m and t are 32 bits, p 8).
		{"m 2^32", attack16Argon("m=4294967296,t=1,p=1"), ErrParamsOutOfBounds, over("m", ^uint64(0), 1<<32-1)},
		{"m 30 digits", attack16Argon("m=" + strings.Repeat("9", 30) + ",t=1,p=1"), ErrParamsOutOfBounds, over("m", ^uint64(0), 1<<32-1)},
		{"t huge", attack16Argon("m=65536,t=99999999999999999999,p=1"), ErrParamsOutOfBounds, over("t", ^uint64(0), 1<<32-1)},
		{"p 256", attack16Argon("m=65536,t=1,p=256"), ErrParamsOutOfBounds, over("p", ^uint64(0), 255)},
		// Salt and hash one byte past 128, and under the minimum.
		{"salt 129", "$argon2id$v=19$m=8192,t=1,p=1$" + attack16B64(129) + "$" + attack16Hash, ErrParamsOutOfBounds, over("salt length", 129, 128)},
		{"hash 129", "$argon2id$v=19$m=8192,t=1,p=1$" + attack16Salt + "$" + attack16B64(129), ErrParamsOutOfBounds, over("hash length", 129, 128)},
		{"salt 7", "$argon2id$v=19$m=8192,t=1,p=1$" + attack16B64(7) + "$" + attack16Hash, ErrParamsOutOfBounds, over("salt length", 7, 8)},
		{"hash 15", "$argon2id$v=19$m=8192,t=1,p=1$" + attack16Salt + "$" + attack16B64(15), ErrParamsOutOfBounds, over("hash length", 15, 16)},
		{"salt 1 MiB", "$argon2id$v=19$m=8192,t=1,p=1$" + attack16B64(1<<20) + "$" + attack16Hash, ErrParamsOutOfBounds, nil},
		// PBKDF2 one past its bounds.
		{"pbkdf2-sha256 i over", "$pbkdf2-sha256$i=4000001,l=32$" + attack16Salt + "$" + attack16Hash, ErrParamsOutOfBounds, over("i", 4000001, 4000000)},
		{"pbkdf2-sha256 i over for 2 blocks", "$pbkdf2-sha256$i=2000001,l=64$" + attack16Salt + "$" + attack16B64(64), ErrParamsOutOfBounds, over("i", 2000001, 2000000)},
		{"pbkdf2-sha512 i over", "$pbkdf2-sha512$i=2000001,l=64$" + attack16Salt + "$" + attack16B64(64), ErrParamsOutOfBounds, over("i", 2000001, 2000000)},
		{"pbkdf2 i zero", "$pbkdf2-sha256$i=0,l=32$" + attack16Salt + "$" + attack16Hash, ErrParamsOutOfBounds, over("i", 0, 1)},
		{"pbkdf2 i huge", "$pbkdf2-sha256$i=18446744073709551616,l=32$" + attack16Salt + "$" + attack16Hash, ErrParamsOutOfBounds, over("i", ^uint64(0), 1<<32-1)},
		// Overlong strings: refused by their length before any parsing.
		{"513 characters", "$argon2id$" + strings.Repeat("A", 503), ErrParamsOutOfBounds, over("encoded length", 513, 512)},
		{"1 MiB", "$argon2id$v=19$m=8192,t=1,p=1$" + strings.Repeat("A", 1<<20), ErrParamsOutOfBounds, over("encoded length", uint64(len("$argon2id$v=19$m=8192,t=1,p=1$")+1<<20), 512)},
		// Leading zeros, repeats, signs, spaces: not canonical.
		{"m leading zero", attack16Argon("m=065536,t=1,p=1"), ErrMalformedHash, nil},
		{"t leading zeros", attack16Argon("m=65536,t=001,p=1"), ErrMalformedHash, nil},
		{"p 00", attack16Argon("m=65536,t=1,p=00"), ErrMalformedHash, nil},
		{"m plus sign", attack16Argon("m=+65536,t=1,p=1"), ErrMalformedHash, nil},
		{"m negative", attack16Argon("m=-1,t=1,p=1"), ErrMalformedHash, nil},
		{"m hex", attack16Argon("m=0x10000,t=1,p=1"), ErrMalformedHash, nil},
		{"m with a space", attack16Argon("m= 65536,t=1,p=1"), ErrMalformedHash, nil},
		{"i leading zero", "$pbkdf2-sha256$i=0600000,l=32$" + attack16Salt + "$" + attack16Hash, ErrMalformedHash, nil},
		{"m twice", attack16Argon("m=8192,m=262145,t=1,p=1"), ErrMalformedHash, nil},
		{"m repeated last", attack16Argon("m=8192,t=1,p=1,m=262145"), ErrMalformedHash, nil},
		{"t twice", attack16Argon("m=8192,t=1,t=1000,p=1"), ErrMalformedHash, nil},
		{"keyid twice", attack16Argon("m=8192,t=1,p=1,keyid=YQ,keyid=Yg"), ErrMalformedHash, nil},
		{"i twice", "$pbkdf2-sha256$i=1000,i=4000001,l=32$" + attack16Salt + "$" + attack16Hash, ErrMalformedHash, nil},
		{"unknown parameter", attack16Argon("m=8192,t=1,p=1,x=1"), ErrMalformedHash, nil},
		{"order changed", attack16Argon("t=1,m=8192,p=1"), ErrMalformedHash, nil},
		{"parameter missing", attack16Argon("m=8192,t=1"), ErrMalformedHash, nil},
		{"empty value", attack16Argon("m=,t=1,p=1"), ErrMalformedHash, nil},
		{"extra field", attack16Argon("m=8192,t=1,p=1") + "$", ErrMalformedHash, nil},
		{"salt with a line break", "$argon2id$v=19$m=8192,t=1,p=1$" + attack16Salt[:4] + "\n" + attack16Salt[4:] + "$" + attack16Hash, ErrMalformedHash, nil},
		// Unknown algorithms and versions.
		{"argon2x", "$argon2x$v=19$m=8192,t=1,p=1$" + attack16Salt + "$" + attack16Hash, ErrUnsupportedAlgorithm, nil},
		{"argon2i", "$argon2i$v=19$m=8192,t=1,p=1$" + attack16Salt + "$" + attack16Hash, ErrUnsupportedAlgorithm, nil},
		{"argon2id v=16", "$argon2id$v=16$m=8192,t=1,p=1$" + attack16Salt + "$" + attack16Hash, ErrUnsupportedAlgorithm, nil},
		{"pbkdf2-md5", "$pbkdf2-md5$i=1000,l=32$" + attack16Salt + "$" + attack16Hash, ErrUnsupportedAlgorithm, nil},
		{"no dollar", "argon2id$v=19$m=8192,t=1,p=1$" + attack16Salt + "$" + attack16Hash, ErrUnsupportedAlgorithm, nil},
		{"empty", "", ErrUnsupportedAlgorithm, nil},
		{"NUL", "$argon2id\x00$v=19$m=8192,t=1,p=1$" + attack16Salt + "$" + attack16Hash, ErrUnsupportedAlgorithm, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The parser alone: a typed refusal and nothing to run.
			if _, perr := parseStored(tc.enc, DefaultLimits()); !errors.Is(perr, tc.want) {
				t.Errorf("parseStored: %v, want %v", perr, tc.want)
			}
			// Verify: the same typed refusal, after exactly the dummy
			// runs, none of them at the crafted parameters.
			kind := tc.want.Error()
			if tc.b != nil {
				kind += " " + tc.b.param
			}
			if verified[kind] && !testenv.Long() {
				return
			}
			verified[kind] = true
			_, err := h.Verify(bg, tc.enc, pw)
			runs := rec.take()
			if !errors.Is(err, tc.want) || errors.Is(err, ErrMismatch) {
				t.Errorf("Verify = %v, want %v (and not a mismatch)", err, tc.want)
			}
			if !slices.Equal(runs, dummy) {
				t.Errorf("Verify made the runs %+v, want only the dummy runs %+v", runs, dummy)
			}
			if strings.Contains(err.Error(), attack16Salt) || strings.Contains(err.Error(), attack16Hash) {
				t.Errorf("the error quotes the stored value: %v", err)
			}
			if tc.b == nil {
				return
			}
			var pe *ParamsError
			if !errors.As(err, &pe) {
				t.Fatalf("Verify = %v, want a *ParamsError", err)
			}
			if pe.Param != tc.b.param || pe.Value != tc.b.value || pe.Bound != tc.b.limit {
				t.Errorf("*ParamsError %s=%d bound %d, want %s=%d bound %d", pe.Param, pe.Value, pe.Bound, tc.b.param, tc.b.value, tc.b.limit)
			}
		})
	}
}

// TestAttack16PHCAtDefaultLimitsAccepted parses strings exactly at each
// bound of DefaultLimits: accepted, with the parameters read as written
// (not run: the largest would take 256 MiB and about a second).
func TestAttack16PHCAtDefaultLimitsAccepted(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	for _, tc := range []struct {
		name string
		enc  string
		want kdfRun
	}{
		{"m and m×t at the limit", attack16Argon("m=262144,t=3,p=1"), kdfRun{alg: "argon2id", m: 262144, t: 3, p: 1, saltLen: 16, keyLen: 32}},
		{"t at the limit", attack16Argon("m=49152,t=16,p=1"), kdfRun{alg: "argon2id", m: 49152, t: 16, p: 1, saltLen: 16, keyLen: 32}},
		{"p at the limit", attack16Argon("m=65536,t=1,p=16"), kdfRun{alg: "argon2id", m: 65536, t: 1, p: 16, saltLen: 16, keyLen: 32}},
		{"m at 8p", attack16Argon("m=128,t=1,p=16"), kdfRun{alg: "argon2id", m: 128, t: 1, p: 16, saltLen: 16, keyLen: 32}},
		{"salt and hash at 128", "$argon2id$v=19$m=8192,t=1,p=1$" + attack16B64(128) + "$" + attack16B64(128), kdfRun{alg: "argon2id", m: 8192, t: 1, p: 1, saltLen: 128, keyLen: 128}},
		{"salt 8, hash 16", "$argon2id$v=19$m=8192,t=1,p=1$" + attack16B64(8) + "$" + attack16B64(16), kdfRun{alg: "argon2id", m: 8192, t: 1, p: 1, saltLen: 8, keyLen: 16}},
		{"pbkdf2-sha256 i at the limit", "$pbkdf2-sha256$i=4000000,l=32$" + attack16Salt + "$" + attack16Hash, kdfRun{alg: "pbkdf2-sha256", iterations: 4000000, saltLen: 16, keyLen: 32}},
		{"pbkdf2-sha512 i at the limit", "$pbkdf2-sha512$i=2000000,l=64$" + attack16Salt + "$" + attack16B64(64), kdfRun{alg: "pbkdf2-sha512", iterations: 2000000, saltLen: 16, keyLen: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parsed, err := parseStored(tc.enc, lim)
			if err != nil {
				t.Fatalf("parseStored: %v, want accepted at the limit", err)
			}
			if got := parsed.run(); got != tc.want {
				t.Errorf("parsed as %+v, want %+v", got, tc.want)
			}
		})
	}
	// The longest string: exactly MaxEncodedLength characters (a salt
	// padded out to reach it is over MaxSaltLen, so the string is refused
	// for its salt, not for its length: the length check let it through).
	head := "$argon2id$v=19$m=8192,t=1,p=1$"
	salt := strings.Repeat("A", lim.MaxEncodedLength-len(head)-1-len(attack16Hash))
	enc := head + salt + "$" + attack16Hash
	if len(enc) != lim.MaxEncodedLength {
		t.Fatalf("built %d characters, want %d", len(enc), lim.MaxEncodedLength)
	}
	var pe *ParamsError
	if _, err := parseStored(enc, lim); !errors.As(err, &pe) || pe.Param != "salt length" {
		t.Errorf("%d characters: %v, want the salt's length refused (not the string's)", len(enc), err)
	}
	if _, err := parseStored(enc+"A", lim); !errors.As(err, &pe) || pe.Param != "encoded length" {
		t.Errorf("%d characters: %v, want the string's length refused", len(enc)+1, err)
	}
}

// TestAttack16PHCAtCustomLimitsVerifies runs real verifications of hashes
// exactly at a Hasher's Limits (small ones, so the runs are cheap): the
// right password matches after one run at the stored parameters, and one
// step past any bound (m, t, p, m×t (by t+1, the least step at t=4), salt, hash, string length) is
// refused after the dummy runs only.
func TestAttack16PHCAtCustomLimitsVerifies(t *testing.T) {
	t.Parallel()
	const (
		m, tt, p      = 12288, 3, 2
		saltN, hashN  = 24, 40
		password      = "the right password"
		head          = "$argon2id$v=19$"
		paramsAtLimit = "m=12288,t=3,p=2"
	)
	salt := []byte(strings.Repeat("s", saltN))
	hash := argon2.IDKey([]byte(password), salt, tt, m, p, hashN)
	atLimit := head + paramsAtLimit + "$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(hash)
	// MaxTime is one more than the hash's t, so that m×t can be passed
	// with m and t each within their bounds.
	lim := Limits{MaxMemoryKiB: m, MaxArgon2MemoryTime: m * tt, MaxTime: tt + 1, MaxThreads: p,
		MaxSaltLen: saltN, MaxHashLen: hashN, MaxEncodedLength: len(atLimit)}
	h := newTestHasher(t, Config{Params: cheapTestParams(), Limits: lim})
	rec := recordRuns(h)
	if err := h.VerifyDummy(bg, []byte(password)); !errors.Is(err, ErrMismatch) {
		t.Fatal(err)
	}
	dummy := rec.take()

	if _, err := h.Verify(bg, atLimit, []byte(password)); err != nil {
		t.Fatalf("a hash exactly at every limit: %v, want a match", err)
	}
	want := kdfRun{alg: "argon2id", m: m, t: tt, p: p, saltLen: saltN, keyLen: hashN}
	if runs := rec.take(); !slices.Equal(runs, []kdfRun{want}) {
		t.Fatalf("runs %+v, want one at the stored parameters %+v", runs, want)
	}
	if _, err := h.Verify(bg, atLimit, []byte("a wrong password")); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password at the limit: %v", err)
	}
	rec.take()

	b := func(n int) string { return b64.EncodeToString([]byte(strings.Repeat("x", n))) }
	over := map[string]string{
		"m+1":           head + fmt.Sprintf("m=%d,t=%d,p=%d", m+1, 2, 1) + "$" + b(saltN) + "$" + b(hashN),
		"t+1":           head + fmt.Sprintf("m=%d,t=%d,p=%d", 4096, tt+2, 1) + "$" + b(saltN) + "$" + b(hashN),
		"p+1":           head + fmt.Sprintf("m=%d,t=%d,p=%d", m, 1, p+1) + "$" + b(saltN) + "$" + b(hashN),
		"m×t+4":         head + fmt.Sprintf("m=%d,t=%d,p=%d", m*tt/(tt+1)+1, tt+1, 1) + "$" + b(saltN) + "$" + b(hashN),
		"salt+1":        head + paramsAtLimit + "$" + b(saltN+1) + "$" + b(hashN),
		"hash+1":        head + paramsAtLimit + "$" + b(saltN) + "$" + b(hashN+1),
		"one character": atLimit + "A",
	}
	for name, enc := range over {
		if _, err := parseStored(enc, lim); err == nil {
			t.Errorf("%s: parsed", name)
		}
		if !testenv.Long() && name != "m+1" && name != "salt+1" && name != "one character" {
			continue // a KDF run each: all in long mode
		}
		_, err := h.Verify(bg, enc, []byte(password))
		var pe *ParamsError
		if !errors.As(err, &pe) || !errors.Is(err, ErrParamsOutOfBounds) {
			t.Errorf("%s: %v, want a *ParamsError", name, err)
		}
		if runs := rec.take(); !slices.Equal(runs, dummy) {
			t.Errorf("%s: runs %+v, want only the dummy runs %+v", name, runs, dummy)
		}
	}
}

// TestAttack16HugeAndOddPasswords: 1 MiB and 10 MiB passwords are refused
// with ErrTooLong by Hash, Verify, VerifyDummy and DeriveKey before any KDF
// run (counted: none); a password with NUL bytes, or not UTF-8, against a
// real hash costs exactly the runs VerifyDummy makes for it, and is a
// mismatch, never a panic; the NUL password itself hashes and verifies
// (NUL is a character like another: nothing truncates at it).
func TestAttack16HugeAndOddPasswords(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{Params: cheapTestParams()})
	rec := recordRuns(h)
	stored, err := h.Hash(bg, []byte("the account's password"))
	if err != nil {
		t.Fatal(err)
	}
	rec.take()
	for _, n := range []int{1 << 20, 10 << 20} {
		huge := make([]byte, n)
		for name, call := range map[string]func() error{
			"Hash":        func() error { _, err := h.Hash(bg, huge); return err },
			"Verify":      func() error { _, err := h.Verify(bg, stored, huge); return err },
			"VerifyDummy": func() error { return h.VerifyDummy(bg, huge) },
			"DeriveKey":   func() error { _, err := h.DeriveKey(bg, huge, make([]byte, 16), cheapTestParams()); return err },
		} {
			if err := call(); !errors.Is(err, ErrTooLong) {
				t.Errorf("%s(%d MiB) = %v, want ErrTooLong", name, n>>20, err)
			}
			if runs := rec.take(); len(runs) != 0 {
				t.Errorf("%s(%d MiB) made %d KDF runs, want none", name, n>>20, len(runs))
			}
		}
	}
	odd := map[string][]byte{
		"NUL":       []byte("the account's\x00password"),
		"not UTF-8": []byte("the account's \xff\xfe password"),
	}
	if testenv.Long() {
		odd["only NULs"], odd["a lone NUL"], odd["truncated rune"] = make([]byte, 64), []byte{0}, []byte("the account's password\xe2\x82")
	}
	for name, pw := range odd {
		_, err := h.Verify(bg, stored, pw)
		runs := rec.take()
		derr := h.VerifyDummy(bg, pw)
		dummy := rec.take()
		if !errors.Is(err, ErrMismatch) || !errors.Is(derr, ErrMismatch) {
			t.Errorf("%s: Verify %v, VerifyDummy %v, want mismatches", name, err, derr)
		}
		if len(runs) == 0 || !slices.Equal(runs, dummy) {
			t.Errorf("%s: Verify made %+v, VerifyDummy %+v", name, runs, dummy)
		}
	}
	withNUL := []byte("the account's\x00password")
	enc, err := h.Hash(bg, withNUL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Verify(bg, enc, withNUL); err != nil {
		t.Errorf("a password with a NUL: %v", err)
	}
	if _, err := h.Verify(bg, enc, []byte("the account's")); !errors.Is(err, ErrMismatch) {
		t.Errorf("the part before the NUL matches: %v", err)
	}
}
