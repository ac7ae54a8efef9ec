package kdf

import (
	"errors"
	"strings"
	"testing"
)

// Fuzz targets for the imported-format parsers, seeded from the fixtures
// made by the real libraries and from the bounds table. Property: parsing
// never panics; a string is either refused with one of the package's
// parse errors, or its parsed fields are within the Limits and it encodes
// back to exactly the input (each hash has one spelling).

// fuzzLegacyLimits are the Limits the fuzz targets parse under: the
// defaults, with a smaller memory bound so scrypt's is exercised.
func fuzzLegacyLimits() Limits {
	l := DefaultLimits()
	l.MaxMemoryKiB = 32 * 1024
	return l
}

// seedLegacyFuzz adds the fixtures of the formats starting with one of
// prefixes, and the bounds-table strings, failing f if no fixture matches.
func seedLegacyFuzz(f *testing.F, prefixes ...string) {
	f.Helper()
	n := 0
	for _, fx := range loadLegacyFixtures(f) {
		for _, p := range prefixes {
			if strings.HasPrefix(fx.Format, p) {
				f.Add(fx.Encoded)
				n++
				break
			}
		}
	}
	if n == 0 {
		f.Fatalf("no fixture seeds for %v", prefixes)
	}
	for _, c := range legacyHugeParams {
		f.Add(c.enc)
	}
}

// checkLegacyParse asserts the fuzz property for one parse result.
func checkLegacyParse(t *testing.T, encoded string, lim Limits, h storedHash, err error) {
	t.Helper()
	if err != nil {
		if h != nil {
			t.Fatalf("%q: both a hash and an error (%v)", encoded, err)
		}
		if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrParamsOutOfBounds) && !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Fatalf("%q: error %v matches none of the parse sentinels", encoded, err)
		}
		return
	}
	if h == nil {
		t.Fatalf("%q: no hash and no error", encoded)
	}
	if len(encoded) > lim.MaxEncodedLength {
		t.Fatalf("%q: accepted %d characters, limit %d", encoded, len(encoded), lim.MaxEncodedLength)
	}
	if !h.hashesRawBytes() || h.sameAs(DefaultParams()) || h.pepperID() != "" {
		t.Fatalf("%q: imported hash must hash raw bytes, always need a rehash and have no pepper", encoded)
	}
	if h.memoryKiB() > uint64(lim.MaxMemoryKiB) {
		t.Fatalf("%q: memoryKiB %d above the limit %d", encoded, h.memoryKiB(), lim.MaxMemoryKiB)
	}
	saltHash := func(salt, hash []byte) {
		if err := lim.checkSaltHash(len(salt), len(hash)); err != nil {
			t.Fatalf("%q: accepted salt/hash lengths %d/%d: %v", encoded, len(salt), len(hash), err)
		}
	}
	var s string
	switch x := h.(type) {
	case *bcryptHash:
		if x.cost < 4 || x.cost > lim.MaxBcryptCost || x.cost > 31 || len(x.encoded) != 60 {
			t.Fatalf("%q: accepted bcrypt cost %d", encoded, x.cost)
		}
		s = x.String()
	case *legacyPBKDF2Hash:
		if lim.checkPBKDF2(uint64(x.iterations), x.digest.size(), len(x.hash)) != nil {
			t.Fatalf("%q: accepted %d iterations", encoded, x.iterations)
		}
		if len(x.hash) != x.digest.size() {
			t.Fatalf("%q: hash of %d bytes for a %d-byte digest", encoded, len(x.hash), x.digest.size())
		}
		saltHash(x.salt, x.hash)
		s = x.String()
	case *scryptHash:
		r, p := uint64(x.r), uint64(x.p)
		if x.n < 2 || x.n&(x.n-1) != 0 || r == 0 || r > maxScryptR || p == 0 || p > uint64(lim.MaxThreads) {
			t.Fatalf("%q: accepted scrypt N=%d r=%d p=%d", encoded, x.n, r, p)
		}
		if 128*x.n*r*p > uint64(lim.MaxMemoryKiB)*1024 || scryptBytes(x.n, r, p) > uint64(lim.MaxMemoryKiB)*1024 {
			t.Fatalf("%q: accepted scrypt N=%d r=%d p=%d over %d KiB", encoded, x.n, r, p, lim.MaxMemoryKiB)
		}
		saltHash(x.salt, x.hash)
		s = x.String()
	case *djangoArgon2Hash:
		if lim.checkArgon2(x.inner.m, x.inner.t, x.inner.p) != nil || x.inner.keyID != "" {
			t.Fatalf("%q: accepted argon2 m=%d t=%d p=%d keyid %q", encoded, x.inner.m, x.inner.t, x.inner.p, x.inner.keyID)
		}
		saltHash(x.inner.salt, x.inner.hash)
		s = x.String()
	default:
		t.Fatalf("%q: unexpected type %T", encoded, h)
	}
	if s != encoded {
		t.Fatalf("%q: re-encodes as %q", encoded, s)
	}
}

// fuzzLegacyParser fuzzes one format's parser through parseLegacy (its
// only caller, which first bounds the length and checks that the string is
// printable ASCII), on inputs that carry one of the format's prefixes.
func fuzzLegacyParser(f *testing.F, prefixes ...string) {
	lim := fuzzLegacyLimits()
	f.Fuzz(func(t *testing.T, encoded string) {
		match := false
		for _, p := range prefixes {
			match = match || strings.HasPrefix(encoded, p)
		}
		if !match {
			return
		}
		h, ok, err := parseLegacy(encoded, lim)
		if !ok {
			t.Fatalf("%q: prefix not recognised by parseLegacy", encoded)
		}
		checkLegacyParse(t, encoded, lim, h, err)
	})
}

func FuzzParseBcrypt(f *testing.F) {
	seedLegacyFuzz(f, "bcrypt")
	fuzzLegacyParser(f, "$2a$", "$2b$", "$2y$")
}

func FuzzParsePasslibPBKDF2(f *testing.F) {
	seedLegacyFuzz(f, "passlib-pbkdf2")
	fuzzLegacyParser(f, "$pbkdf2$", "$pbkdf2-sha256$", "$pbkdf2-sha512$")
}

func FuzzParsePasslibScrypt(f *testing.F) {
	seedLegacyFuzz(f, "passlib-scrypt")
	fuzzLegacyParser(f, "$scrypt$")
}

func FuzzParseDjango(f *testing.F) {
	seedLegacyFuzz(f, "django")
	fuzzLegacyParser(f, "pbkdf2_sha256$", "pbkdf2_sha1$")
}

func FuzzParseDjangoArgon2(f *testing.F) {
	seedLegacyFuzz(f, "django-argon2")
	for _, s := range lineBreakVariants {
		f.Add(s)
	}
	fuzzLegacyParser(f, "argon2$argon2id$")
}

func FuzzParseWerkzeugPBKDF2(f *testing.F) {
	seedLegacyFuzz(f, "werkzeug-pbkdf2")
	fuzzLegacyParser(f, "pbkdf2:")
}

func FuzzParseWerkzeugScrypt(f *testing.F) {
	seedLegacyFuzz(f, "werkzeug-scrypt")
	fuzzLegacyParser(f, "scrypt:")
}

// FuzzParseLegacy fuzzes the dispatch over every format, and parseStored
// around it: any input is either not recognised (and then reported by
// parseStored as unsupported or malformed) or handled as above.
func FuzzParseLegacy(f *testing.F) {
	seedLegacyFuzz(f, "")
	lim := fuzzLegacyLimits()
	f.Fuzz(func(t *testing.T, encoded string) {
		h, ok, err := parseLegacy(encoded, lim)
		if !ok {
			if h != nil || err != nil {
				t.Fatalf("%q: not recognised, yet %v, %v", encoded, h, err)
			}
			return
		}
		checkLegacyParse(t, encoded, lim, h, err)
	})
}
