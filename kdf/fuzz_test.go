package kdf

import (
	"errors"
	"testing"
)

// phcSeeds returns the encoded hashes of the vector files plus a few
// hand-made edge cases, and fails if the vectors loaded nothing.
func phcSeeds(t testing.TB) []string {
	f := loadArgon2idVectors(t)
	var seeds []string
	for _, v := range f.PHCReference.Vectors {
		seeds = append(seeds, v.Encoded)
	}
	seeds = append(seeds,
		"$argon2id$v=19$m=19456,t=2,p=1,keyid=MjAyNmE$2rNGpoiYyFCDdXm7FgXGyQ$2uEnMcvO3u6djVXVmKY0aHqu1jRF+l9ooHaTmvSsTGQ",
		"$pbkdf2-sha256$i=600000,l=32$2rNGpoiYyFCDdXm7FgXGyQ$2uEnMcvO3u6djVXVmKY0aHqu1jRF+l9ooHaTmvSsTGQ",
		"$pbkdf2-sha512$i=220000,l=16,keyid=cDE$2rNGpoiYyFCDdXm7FgXGyQ$2uEnMcvO3u6djVXVmKY0aA",
	)
	// Line breaks inside base64 fields, which Go's decoders skip (issue 10,
	// item 10): each must be refused, not decode to a second spelling.
	seeds = append(seeds, lineBreakVariants...)
	if len(seeds) < 8 {
		t.Fatalf("only %d seeds", len(seeds))
	}
	return seeds
}

// FuzzParseArgon2id: the parser never panics, accepts only what the Limits
// allow, and is canonical (non-malleable): what parses re-encodes to the
// same string.
func FuzzParseArgon2id(f *testing.F) {
	for _, s := range phcSeeds(f) {
		f.Add(s)
	}
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseArgon2id(s, lim)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrParamsOutOfBounds) && !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if lim.checkArgon2(h.m, h.t, h.p) != nil || lim.checkSaltHash(len(h.salt), len(h.hash)) != nil {
			t.Fatalf("accepted out-of-bounds %q", s)
		}
		if got := h.String(); got != s {
			t.Fatalf("%q re-encodes as %q", s, got)
		}
	})
}

// FuzzParsePBKDF2PHC: as FuzzParseArgon2id, for "$pbkdf2-sha…$i=…".
func FuzzParsePBKDF2PHC(f *testing.F) {
	for _, s := range phcSeeds(f) {
		f.Add(s)
	}
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePBKDF2PHC(s, lim)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrParamsOutOfBounds) && !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if lim.checkPBKDF2(uint64(h.iterations), pbkdf2PRF(h.alg)().Size(), len(h.hash)) != nil || lim.checkSaltHash(len(h.salt), len(h.hash)) != nil {
			t.Fatalf("accepted out-of-bounds %q", s)
		}
		if got := h.String(); got != s {
			t.Fatalf("%q re-encodes as %q", s, got)
		}
	})
}

// FuzzParseStored: the dispatcher over every format never panics and
// returns only typed errors.
func FuzzParseStored(f *testing.F) {
	for _, s := range phcSeeds(f) {
		f.Add(s)
	}
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseStored(s, lim)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrParamsOutOfBounds) && !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if h.memoryKiB() > uint64(lim.MaxMemoryKiB) {
			t.Fatalf("accepted %d KiB", h.memoryKiB())
		}
	})
}
