package kdf

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// legacyFixtureFile is made by testdata/legacy/make_fixtures.py with the
// real libraries.
const legacyFixtureFile = "testdata/legacy/fixtures.json"

// legacyFixture is one hash made by a real library and what Verify must
// make of it.
type legacyFixture struct {
	Format    string   `json:"format"`  // e.g. "bcrypt-2b", "django-pbkdf2-sha256", "argon2id"
	Library   string   `json:"library"` // library and version that made it
	Hashed    string   `json:"hashed"`  // what the library was given
	Password  string   `json:"password"`
	AlsoMatch []string `json:"also_match"`
	Wrong     []string `json:"wrong"`
	Encoded   string   `json:"encoded"`
	Note      string   `json:"note"`
}

// loadLegacyFixtures reads the fixture file, failing t if it is missing or
// holds no fixture, or a fixture has no password or encoded hash.
func loadLegacyFixtures(t testing.TB) []legacyFixture {
	t.Helper()
	data, err := os.ReadFile(filepath.FromSlash(legacyFixtureFile))
	if err != nil {
		t.Fatalf("legacy fixtures: %v", err)
	}
	var file struct {
		Fixtures []legacyFixture `json:"fixtures"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("legacy fixtures: %v", err)
	}
	if len(file.Fixtures) == 0 {
		t.Fatalf("legacy fixtures: %s holds no fixture", legacyFixtureFile)
	}
	for i, f := range file.Fixtures {
		if f.Format == "" || f.Encoded == "" || f.Password == "" || len(f.Wrong) == 0 {
			t.Fatalf("legacy fixtures: fixture %d is incomplete: %+v", i, f)
		}
	}
	return file.Fixtures
}

// newLegacyTestHasher returns a Hasher with the default Params and Limits.
func newLegacyTestHasher(t testing.TB) *Hasher {
	t.Helper()
	h, err := New(Config{Params: InteractiveParams(), Limits: DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLegacyFixtures verifies every hash made by a real library: the
// password verifies and needs a rehash, the wrong ones give ErrMismatch.
func TestLegacyFixtures(t *testing.T) {
	h := newLegacyTestHasher(t)
	formats := map[string]int{}
	for _, f := range loadLegacyFixtures(t) {
		formats[f.Format]++
		t.Run(f.Format+"/"+f.Encoded[:min(len(f.Encoded), 24)], func(t *testing.T) {
			t.Parallel()
			if f.Format != "argon2id" {
				stored, ok, err := parseLegacy(f.Encoded, h.Limits())
				if !ok || err != nil {
					t.Fatalf("parseLegacy(%q) = ok %v, %v", f.Encoded, ok, err)
				}
				if s := stored.(interface{ String() string }).String(); s != f.Encoded {
					t.Errorf("re-encoded as %q, want %q", s, f.Encoded)
				}
			}
			for _, pw := range append([]string{f.Password}, f.AlsoMatch...) {
				rehash, err := h.Verify(bg, f.Encoded, []byte(pw))
				if err != nil {
					t.Fatalf("Verify(%q, %+q) (%s; %s): %v", f.Encoded, pw, f.Library, f.Note, err)
				}
				if !rehash {
					t.Errorf("Verify(%q, %+q): needsRehash = false, want true for an imported hash", f.Encoded, pw)
				}
			}
			for _, pw := range f.Wrong {
				if _, err := h.Verify(bg, f.Encoded, []byte(pw)); !errors.Is(err, ErrMismatch) {
					t.Errorf("Verify(%q, wrong %+q) = %v, want ErrMismatch", f.Encoded, pw, err)
				}
			}
		})
	}
	for _, want := range []string{
		"bcrypt-2a", "bcrypt-2b", "bcrypt-2y",
		"passlib-pbkdf2-sha1", "passlib-pbkdf2-sha256", "passlib-pbkdf2-sha512", "passlib-scrypt",
		"django-pbkdf2-sha1", "django-pbkdf2-sha256",
		"werkzeug-pbkdf2-sha1", "werkzeug-pbkdf2-sha256", "werkzeug-pbkdf2-sha512", "werkzeug-scrypt",
		"argon2id", "django-argon2",
	} {
		if formats[want] == 0 {
			t.Errorf("no fixture of format %s", want)
		}
	}
}

// TestLegacyPBKDF2SHA1NeedsRehash is KDF-02's check: a PBKDF2-HMAC-SHA1
// hash verifies only to be replaced, and a Hasher never writes SHA-1.
func TestLegacyPBKDF2SHA1NeedsRehash(t *testing.T) {
	h := newLegacyTestHasher(t)
	n := 0
	for _, f := range loadLegacyFixtures(t) {
		if !strings.HasSuffix(f.Format, "-sha1") {
			continue
		}
		n++
		rehash, err := h.Verify(bg, f.Encoded, []byte(f.Password))
		if err != nil || !rehash {
			t.Errorf("Verify(%q) = %v, %v; want needsRehash, nil", f.Encoded, rehash, err)
		}
	}
	if n == 0 {
		t.Fatal("no SHA-1 fixture")
	}
	if err := (Params{Algorithm: "pbkdf2-sha1", Iterations: 1_000_000, SaltLen: 16, KeyLen: 20}).Validate(); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("Validate(pbkdf2-sha1) = %v, want ErrUnsupportedAlgorithm", err)
	}
}

// TestBcrypt72ByteLimit is KDF-03's check: no input over 72 bytes
// verifies against a bcrypt hash, so nothing after byte 72 is ignored.
// Verify reports such input as ErrMismatch.
func TestBcrypt72ByteLimit(t *testing.T) {
	h := newLegacyTestHasher(t)
	a72 := strings.Repeat("a", 72)
	var hashes []string
	truncating := false
	for _, f := range loadLegacyFixtures(t) {
		if strings.HasPrefix(f.Format, "bcrypt") && f.Password == a72 {
			hashes = append(hashes, f.Encoded)
			truncating = truncating || f.Hashed != a72
		}
	}
	if len(hashes) == 0 {
		t.Fatal("no bcrypt fixture of 72×'a'")
	}
	if !truncating {
		t.Log("no fixture from a truncating bcrypt (bcrypt >= 5 refuses 73 bytes); testing the 72-byte one")
	}
	ours, err := bcrypt.GenerateFromPassword([]byte(a72), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hashes = append(hashes, string(ours))
	for _, enc := range hashes {
		if _, err := h.Verify(bg, enc, []byte(a72)); err != nil {
			t.Errorf("Verify(%q, 72×a) = %v, want nil", enc, err)
		}
		for _, in := range []string{a72 + "b", a72 + "c", a72 + "a", a72 + strings.Repeat("x", 100)} {
			if _, err := h.Verify(bg, enc, []byte(in)); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify(%q, %d bytes) = %v, want ErrMismatch", enc, len(in), err)
			}
		}
	}
	// bcrypt implementations in C stop at a NUL: "secret\x00tail" would
	// check as "secret". Input holding a NUL never matches.
	prefix, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Verify(bg, string(prefix), []byte("secret\x00tail")); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(hash of \"secret\", \"secret\\x00tail\") = %v, want ErrMismatch", err)
	}
}

// TestLegacyMalformed checks that each recognised format refuses strings
// that break its rules with the right error, and that parseLegacy leaves
// other formats alone.
func TestLegacyMalformed(t *testing.T) {
	lim := DefaultLimits()
	const (
		bcryptOK   = "$2b$04$KiH4lMyjL3rKAqrjCfIzmeopXQ/aOOHk7l8MUYWQP1Cx6u31E7.pa"
		passlibOK  = "$pbkdf2-sha256$1000$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE"
		scryptOK   = "$scrypt$ln=10,r=8,p=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw"
		djangoOK   = "pbkdf2_sha256$1000$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc="
		werkzeugOK = "pbkdf2:sha1:2000$VCYjIXm9zWCTvyqa$c63ce24cddfb7327b33bb00521ace18a28a6386f"
		wscryptOK  = "scrypt:512:4:2$Yld1AyPP4N9K1eFp$878acf7d266084dd3c5018bf00ef54d89a03ee39cf3cb141ed5271492f364c7cca17a042f54ed29448151bba545408ed02e962720d2c4afd62c9bd02a63190fd"
	)
	for _, ok := range []string{bcryptOK, passlibOK, scryptOK, djangoOK, werkzeugOK, wscryptOK} {
		if _, recognised, err := parseLegacy(ok, lim); !recognised || err != nil {
			t.Fatalf("parseLegacy(%q) = %v, %v; the table's base strings must parse", ok, recognised, err)
		}
	}
	malformed := []string{
		// bcrypt
		bcryptOK[:59], bcryptOK + "a", "$2b$4$" + bcryptOK[7:] + "a", "$2b$04x" + bcryptOK[7:],
		"$2b$04$" + strings.Repeat("*", 53), "$2b$-4$" + bcryptOK[7:], "$2b$04$" + bcryptOK[7:59] + "\n",
		// passlib pbkdf2
		"$pbkdf2-sha256$1000$o3Ru7X0vpXQuZWytNabUGg", passlibOK + "$", "$pbkdf2-sha256$01000$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE",
		"$pbkdf2-sha256$+1000$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE",
		"$pbkdf2-sha256$1000$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MV",    // short hash
		"$pbkdf2-sha256$1000$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVF",   // stray bits
		"$pbkdf2-sha256$1000$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MV+",   // '+' is not ab64
		"$pbkdf2-sha256$1000$o3Ru7X0vpXQuZWytNabUGg==$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE", // padding
		"$pbkdf2-sha256$1000$o3Ru7X0vpXQu\nZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE", // newline
		"$pbkdf2-sha256$$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE",
		"$pbkdf2-sha256$i=1000$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE",
		// passlib scrypt
		"$scrypt$ln=10,r=8$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw",
		"$scrypt$r=8,ln=10,p=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw",
		"$scrypt$ln=10,r=8,p=1,x=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw",
		"$scrypt$ln=010,r=8,p=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw",
		"$scrypt$ln=10,r=8,p=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw=",
		"$scrypt$ln=10,r=8,p=1$fG/NGaO0tta6FyLE.P.fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw",
		"$scrypt$ln=10,r=8,p=1$fG/NGaO0tta6FyLE+P+fsw",
		// Django
		"pbkdf2_sha256$1000$$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc=",
		"pbkdf2_sha256$1000$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc",
		"pbkdf2_sha256$1000$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsd=",
		"pbkdf2_sha256$1000$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc=$",
		"pbkdf2_sha256$1e3$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc=",
		"pbkdf2_sha256$1000$n6u6f6d WWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc=",
		"pbkdf2_sha256$1000$n6u6f6dTWWki1yiNRe8Usb$k+BHgAox1nCYe2Rxgovx24NIJWk=",                 // SHA-1 sized
		"pbkdf2_sha256$1000$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHscA", // 33 bytes, unpadded (found by fuzzing)
		// Werkzeug
		"pbkdf2:sha1$VCYjIXm9zWCTvyqa$c63ce24cddfb7327b33bb00521ace18a28a6386f",
		"pbkdf2:sha1:2000:1$VCYjIXm9zWCTvyqa$c63ce24cddfb7327b33bb00521ace18a28a6386f",
		"pbkdf2:sha1:2000$VCYjIXm9zWCTvyqa$C63CE24CDDFB7327B33BB00521ACE18A28A6386F",
		"pbkdf2:sha1:2000$VCYjIXm9zWCTvyqa$c63ce24cddfb7327b33bb00521ace18a28a6386",
		"pbkdf2:sha1:2000$VCYjIXm9zWCTvyqa$c63ce24cddfb7327b33bb00521ace18a28a6386f$",
		"pbkdf2:sha1:2000$$c63ce24cddfb7327b33bb00521ace18a28a6386f",
		"pbkdf2:sha1:2000VCYjIXm9zWCTvyqa$c63ce24cddfb7327b33bb00521ace18a28a6386f",
		"scrypt:512:4$A4DjzTbjWJVo2WdU$" + wscryptOK[len(wscryptOK)-128:],
		"scrypt:500:4:2$A4DjzTbjWJVo2WdU$" + wscryptOK[len(wscryptOK)-128:],
		"scrypt:1:4:2$A4DjzTbjWJVo2WdU$" + wscryptOK[len(wscryptOK)-128:],
		"scrypt:512:4:2$A4DjzTbjWJVo2WdU$" + wscryptOK[len(wscryptOK)-126:],
	}
	for _, enc := range malformed {
		_, recognised, err := parseLegacy(enc, lim)
		if !recognised || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("parseLegacy(%q) = %v, %v; want recognised, ErrMalformedHash", enc, recognised, err)
		}
	}

	unsupported := []string{
		"pbkdf2:md5:1000$VCYjIXm9zWCTvyqa$c63ce24cddfb7327b33bb00521ace18a",
		"pbkdf2:SHA256:1000$VCYjIXm9zWCTvyqa$c63ce24cddfb7327b33bb00521ace18a28a6386fc63ce24cddfb7327b33b",
	}
	for _, enc := range unsupported {
		if _, recognised, err := parseLegacy(enc, lim); !recognised || !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("parseLegacy(%q) = %v, %v; want recognised, ErrUnsupportedAlgorithm", enc, recognised, err)
		}
	}

	// Not legacy formats: parseLegacy says so, and parseStored reports
	// them as unsupported.
	for _, enc := range []string{
		"", "$", "$2x$04$" + bcryptOK[7:], "$2$04$" + bcryptOK[7:], "$argon2i$v=19$m=1024,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"sha1$abc$def", "md5$$abc", "$7$C6..../....SodiumChloride$kBGj9fHznVYFQMEn/qDCfrDevf9YDtcDdKvEqHJLV8D",
		"bcrypt$$2b$04$" + bcryptOK[7:], "{PBKDF2}1000$abc$def", "scrypt$abc$def",
	} {
		if h, recognised, err := parseLegacy(enc, lim); recognised || h != nil || err != nil {
			t.Errorf("parseLegacy(%q) = %v, %v, %v; want not recognised", enc, h, recognised, err)
		}
		if _, err := parseStored(enc, lim); enc != "" && !errors.Is(err, ErrUnsupportedAlgorithm) && !errors.Is(err, ErrMalformedHash) {
			t.Errorf("parseStored(%q) = %v, want ErrUnsupportedAlgorithm or ErrMalformedHash", enc, err)
		}
	}
}

// legacyHugeParams are imported hashes whose parameters exceed
// DefaultLimits, one per bound.
var legacyHugeParams = []struct{ enc, param string }{
	{"$2b$31$KiH4lMyjL3rKAqrjCfIzmeopXQ/aOOHk7l8MUYWQP1Cx6u31E7.pa", "cost"},
	{"$2b$17$KiH4lMyjL3rKAqrjCfIzmeopXQ/aOOHk7l8MUYWQP1Cx6u31E7.pa", "cost"},
	{"$2b$99$KiH4lMyjL3rKAqrjCfIzmeopXQ/aOOHk7l8MUYWQP1Cx6u31E7.pa", "cost"},
	{"$2a$03$KiH4lMyjL3rKAqrjCfIzmeopXQ/aOOHk7l8MUYWQP1Cx6u31E7.pa", "cost"},
	{"$scrypt$ln=30,r=8,p=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "N"},
	{"$scrypt$ln=255,r=8,p=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "ln"},
	{"$scrypt$ln=256,r=8,p=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "ln"},
	{"$scrypt$ln=0,r=8,p=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "ln"},
	{"$scrypt$ln=10,r=4294967295,p=1$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "r"},
	{"$scrypt$ln=10,r=8,p=1073741824$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "p"},
	{"$scrypt$ln=18,r=8,p=16$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "N"},
	{"$scrypt$ln=10,r=8,p=0$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "p"},
	{"$scrypt$ln=10,r=8,p=1$AAECAwQFBg$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "salt length"},
	{"$scrypt$ln=10,r=8,p=1$fG/NGaO0tta6FyLE+P+fsw$ZGVmZ2hpamtsbW5vcHFy", "hash length"},
	{"$scrypt$ln=10,r=8,p=1$" + strings.Repeat("A", 200) + "$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "salt length"},
	{"scrypt:1073741824:8:1$A4DjzTbjWJVo2WdU$" + strings.Repeat("ab", 64), "N"},
	{"scrypt:9223372036854775808:8:1$A4DjzTbjWJVo2WdU$" + strings.Repeat("ab", 64), "N"},
	{"scrypt:99999999999999999999:8:1$A4DjzTbjWJVo2WdU$" + strings.Repeat("ab", 64), "N"},
	{"scrypt:1024:33:1$A4DjzTbjWJVo2WdU$" + strings.Repeat("ab", 64), "r"},
	{"scrypt:1024:8:17$A4DjzTbjWJVo2WdU$" + strings.Repeat("ab", 64), "p"},
	{"scrypt:1024:8:1$A4Djz$" + strings.Repeat("ab", 64), "salt length"},
	{"pbkdf2_sha256$4000000000$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc=", "i"},
	{"pbkdf2_sha256$40000000000$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc=", "i"},
	{"pbkdf2_sha256$0$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc=", "i"},
	{"pbkdf2_sha1$1000$short$k+BHgAox1nCYe2Rxgovx24NIJWk=", "salt length"},
	{"pbkdf2_sha256$1000$" + strings.Repeat("s", 129) + "$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc=", "salt length"},
	{"$pbkdf2-sha256$4000000000$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE", "i"},
	{"$pbkdf2$10000001$DmFMCWHMeQ.BUGoN4TxnTA$ukSg3Hn9RtP8k6l1ST/xPTaBgdI", "i"},
	{"$pbkdf2-sha256$1000$" + strings.Repeat("A", 300) + "$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE", "salt length"},
	{"$pbkdf2-sha256$1000$o3Ru7X0$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE", "salt length"},
	{"pbkdf2:sha256:4000000000$VCYjIXm9zWCTvyqa$" + strings.Repeat("ab", 32), "i"},
	{"pbkdf2:sha512:1000$" + strings.Repeat("s", 300) + "$" + strings.Repeat("ab", 64), "salt length"},
	{"$pbkdf2-sha512$1000$" + strings.Repeat("A", 600) + "$x", "encoded length"},
}

// TestLegacyParamsOutOfBoundsBeforeWork is KDF-07's check for imported
// formats: a hash with huge (or too small) parameters gives a *ParamsError
// matching ErrParamsOutOfBounds, parsing it allocates no more than a few
// KiB, and Verify never runs its KDF: the only work it does is the dummy
// work of a wrong password at the Hasher's own parameters (review finding
// F6, so the refusal takes as long as an unknown account), counted
// through the run hook.
func TestLegacyParamsOutOfBoundsBeforeWork(t *testing.T) {
	h := newTestHasher(t, Config{Params: cheapTestParams()})
	rec := recordRuns(h)
	lim := h.Limits()
	for _, c := range legacyHugeParams {
		_, recognised, err := parseLegacy(c.enc, lim)
		var pe *ParamsError
		if !recognised || !errors.Is(err, ErrParamsOutOfBounds) || !errors.As(err, &pe) {
			t.Errorf("parseLegacy(%.60q) = %v, %v; want a *ParamsError matching ErrParamsOutOfBounds", c.enc, recognised, err)
			continue
		}
		if pe.Param != c.param {
			t.Errorf("parseLegacy(%.60q): ParamsError about %q, want %q (%v)", c.enc, pe.Param, c.param, err)
		}
		if _, err := h.Verify(bg, c.enc, []byte("password")); !errors.Is(err, ErrParamsOutOfBounds) {
			t.Errorf("Verify(%.60q) = %v, want ErrParamsOutOfBounds", c.enc, err)
		}
		if runs := rec.take(); !slices.Equal(runs, []kdfRun{cheapTestParams().run()}) {
			t.Errorf("Verify(%.60q) made runs %+v, want only the dummy run at the Hasher's params", c.enc, runs)
		}

		const runs = 200
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range runs {
			parseLegacy(c.enc, lim)
		}
		runtime.ReadMemStats(&after)
		perRun := (after.TotalAlloc - before.TotalAlloc) / runs
		if perRun > 64<<10 {
			t.Errorf("parseLegacy(%.60q) allocated %d bytes per run, want < 64 KiB", c.enc, perRun)
		}
		if allocs := testing.AllocsPerRun(runs, func() { parseLegacy(c.enc, lim) }); allocs > 16 {
			t.Errorf("parseLegacy(%.60q) made %v allocations, want at most 16", c.enc, allocs)
		}
	}
}

// TestScryptMemoryLimit checks that scrypt's bound follows
// Limits.MaxMemoryKiB (including the memory x/crypto/scrypt allocates
// beyond 128·N·r) and that memoryKiB, charged at the Gate, covers that
// allocation.
func TestScryptMemoryLimit(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxMemoryKiB = 16 * 1024 // 16 MiB: ln=14,r=8,p=1 is exactly 16 MiB of V
	for _, c := range []struct {
		params string
		ok     bool
	}{
		{"ln=13,r=8,p=1", true},
		{"ln=13,r=8,p=2", true},    // 128·N·r·p = 16 MiB
		{"ln=13,r=8,p=3", false},   // 24 MiB of work
		{"ln=14,r=8,p=1", false},   // V alone fills the budget; B and XY do not fit
		{"ln=12,r=16,p=2", true},   // 16 MiB of work
		{"ln=15,r=1,p=4", true},    // 16 MiB of work, 4 MiB of V
		{"ln=16,r=1,p=1", true},    // 8 MiB
		{"ln=20,r=1,p=1", false},   // 128 MiB
		{"ln=10,r=32,p=4", true},   // 16 MiB of work
		{"ln=10,r=32,p=16", false}, // 64 MiB of work
	} {
		enc := "$scrypt$" + c.params + "$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw"
		h, _, err := parseLegacy(enc, lim)
		if c.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", c.params, err, c.ok)
			continue
		}
		if err == nil {
			s := h.(*scryptHash)
			allocated := 128 * uint64(s.r) * (s.n + uint64(s.p) + 2)
			if h.memoryKiB()*1024 < allocated || h.memoryKiB() > uint64(lim.MaxMemoryKiB) {
				t.Errorf("%s: memoryKiB = %d, allocation %d bytes, limit %d KiB", c.params, h.memoryKiB(), allocated, lim.MaxMemoryKiB)
			}
		} else if !errors.Is(err, ErrParamsOutOfBounds) {
			t.Errorf("%s: err = %v, want ErrParamsOutOfBounds", c.params, err)
		}
	}
}

// TestLegacyLimitsAreConfigurable checks that the bounds come from the
// Limits passed in, not from constants.
func TestLegacyLimitsAreConfigurable(t *testing.T) {
	tight := DefaultLimits()
	tight.MaxBcryptCost = 4
	tight.MaxIterations = 999
	tight.MaxSaltLen = 15
	tight.MaxHashLen = 31
	tight.MaxThreads = 1
	for _, c := range []struct{ enc, param string }{
		{"$2b$05$KiH4lMyjL3rKAqrjCfIzmeopXQ/aOOHk7l8MUYWQP1Cx6u31E7.pa", "cost"},
		{"$pbkdf2-sha256$1000$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE", "i"},
		{"$pbkdf2-sha256$999$o3Ru7X0vpXQuZWytNabUGg$mqguxtkGQlTwIq1tbNO2XT9LFqlxzMr5g8xhkTC7MVE", "salt length"},
		{"pbkdf2:sha256:999$VCYjIXm9zWCTvyq$" + strings.Repeat("ab", 32), "hash length"},
		{"$scrypt$ln=10,r=8,p=2$fG/NGaO0tta6FyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw", "p"},
	} {
		_, _, err := parseLegacy(c.enc, tight)
		var pe *ParamsError
		if !errors.As(err, &pe) || pe.Param != c.param || !errors.Is(err, ErrParamsOutOfBounds) {
			t.Errorf("parseLegacy(%.50q) = %v, want a ParamsError about %q", c.enc, err, c.param)
		}
	}
}

// TestDjangoArgon2 is issue 10, item 12: Django's "argon2$argon2id$…"
// hashes (refused as unsupported before) verify, over the bytes as
// received, always with needsRehash; they are bounded by the same Limits
// as Argon2id, and a keyid (this package's pepper reference) is refused.
func TestDjangoArgon2(t *testing.T) {
	t.Parallel()
	h := newLegacyTestHasher(t)
	n := 0
	for _, f := range loadLegacyFixtures(t) {
		if f.Format != "django-argon2" {
			continue
		}
		n++
		if !strings.HasPrefix(f.Encoded, "argon2$argon2id$v=19$") {
			t.Fatalf("fixture %q is not in Django's format", f.Encoded)
		}
		stored, err := parseStored(f.Encoded, h.Limits())
		if err != nil {
			t.Fatal(err)
		}
		if !stored.hashesRawBytes() || stored.sameAs(h.Params()) {
			t.Errorf("%q: parsed as one of this package's own hashes", f.Encoded)
		}
	}
	if n == 0 {
		t.Fatal("no django-argon2 fixture")
	}
	lim := h.Limits()
	for _, c := range []struct {
		enc  string
		want error
	}{
		{"argon2$argon2id$v=19$m=262145,t=2,p=8$Z0JqSXZkdWRlN0xkRm4ydWFzTFk0WQ$YRtRvvqm34Dwec57cncEZw", ErrParamsOutOfBounds},
		{"argon2$argon2id$v=19$m=262144,t=4,p=8$Z0JqSXZkdWRlN0xkRm4ydWFzTFk0WQ$YRtRvvqm34Dwec57cncEZw", ErrParamsOutOfBounds},
		{"argon2$argon2id$v=19$m=1024,t=2,p=1,keyid=cDE$Z0JqSXZkdWRlN0xkRm4ydWFzTFk0WQ$YRtRvvqm34Dwec57cncEZw", ErrMalformedHash},
		{"argon2$argon2id$v=19$m=1024,t=2,p=1$Z0JqSXZkdWRlN0xkRm4ydWFzTFk0WQ", ErrMalformedHash},
		{"argon2$argon2id$v=19$m=1024,t=2,p=1$Z0JqSXZkdWRlN0xk Rm4ydWFzTFk0WQ$YRtRvvqm34Dwec57cncEZw", ErrMalformedHash},
		{"argon2$argon2i$v=19$m=1024,t=2,p=1$Z0JqSXZkdWRlN0xkRm4ydWFzTFk0WQ$YRtRvvqm34Dwec57cncEZw", ErrUnsupportedAlgorithm},
	} {
		if _, err := parseStored(c.enc, lim); !errors.Is(err, c.want) {
			t.Errorf("parseStored(%.50q) = %v, want %v", c.enc, err, c.want)
		}
	}
}
