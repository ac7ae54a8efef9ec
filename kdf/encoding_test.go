package kdf

import (
	"errors"
	"strings"
	"testing"
)

// lineBreakVariants are valid hashes of every base64-carrying format with a
// line break or other non-alphabet byte inside a salt, hash or keyid
// field. Go's base64 decoders skip '\r' and '\n' even in Strict mode, so
// before issue 10 (item 10) the PHC ones decoded to the same bytes as the
// hash without the break: two encodings of one value.
var lineBreakVariants = []string{
	// argon2id salt, hash and keyid.
	"$argon2id$v=19$m=19456,t=2,p=1$2rNGpoiYyF\r\nCDdXm7FgXGyQ$2uEnMcvO3u6djVXVmKY0aHqu1jRF+l9ooHaTmvSsTGQ",
	"$argon2id$v=19$m=19456,t=2,p=1$2rNGpoiYyFCDdXm7FgXGyQ$2uEnMcvO3u6djVXVmKY0aH\nqu1jRF+l9ooHaTmvSsTGQ",
	"$argon2id$v=19$m=19456,t=2,p=1$2rNGpoiYyFCDdXm7FgXGyQ$2uEnMcvO3u6djVXVmKY0aHqu1jRF+l9ooHaTmvSsTGQ\r",
	"$argon2id$v=19$m=19456,t=2,p=1,keyid=Mj\nAyNmE$2rNGpoiYyFCDdXm7FgXGyQ$2uEnMcvO3u6djVXVmKY0aHqu1jRF+l9ooHaTmvSsTGQ",
	// pbkdf2 PHC.
	"$pbkdf2-sha256$i=600000,l=32$\n2rNGpoiYyFCDdXm7FgXGyQ$2uEnMcvO3u6djVXVmKY0aHqu1jRF+l9ooHaTmvSsTGQ",
	"$pbkdf2-sha256$i=600000,l=32$2rNGpoiYyFCDdXm7FgXGyQ$2uEnMcvO3u6djVXVmKY0aHqu1jRF+l9ooHaTmvSsTGQ\r\n",
	// Django argon2.
	"argon2$argon2id$v=19$m=19456,t=2,p=1$2rNGpoiYyFCDdXm7F\ngXGyQ$2uEnMcvO3u6djVXVmKY0aHqu1jRF+l9ooHaTmvSsTGQ",
	// Imported formats (already refused by parseLegacy's printable-ASCII
	// rule; kept here so that both layers are covered).
	"$scrypt$ln=10,r=8,p=1$fG/NGaO0tta6\r\nFyLE+P+fsw$Ka3CE74ibCKG3pgw68uFTeW7Cr9Brwx0ovIpz+ty4Cw",
	"pbkdf2_sha256$1000$n6u6f6dTWWki1yiNRe8Usb$G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc=\n",
}

// TestBase64FieldsRefuseLineBreaks is issue 10, item 10: every base64
// field accepts exactly one encoding per value, so a field with a line
// break inside is malformed (it decoded before the fix), and the decoders
// of the imported formats refuse bytes outside their alphabet by
// themselves, not only because parseLegacy screens the whole string.
func TestBase64FieldsRefuseLineBreaks(t *testing.T) {
	lim := DefaultLimits()
	for _, enc := range lineBreakVariants {
		clean := strings.NewReplacer("\r", "", "\n", "").Replace(enc)
		if _, err := parseStored(clean, lim); err != nil {
			t.Fatalf("parseStored(%q) = %v; the clean form must parse", clean, err)
		}
		if _, err := parseStored(enc, lim); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("parseStored(%q) = %v, want ErrMalformedHash", enc, err)
		}
	}
	for _, c := range []struct {
		name string
		dec  func(string) ([]byte, error)
		ok   string
	}{
		{"phc", func(s string) ([]byte, error) { return decodeB64("salt", s, 64) }, "2rNGpoiYyFCDdXm7FgXGyQ"},
		{"ab64", func(s string) ([]byte, error) { return decodeWith(ab64, "salt", s) }, "o3Ru7X0vpXQuZWytNabUGg"},
		{"std", func(s string) ([]byte, error) { return decodeWith(b64, "salt", s) }, "fG/NGaO0tta6FyLE+P+fsw"},
		{"padded", func(s string) ([]byte, error) { return decodeWith(paddedB64, "hash", s) }, "G45yKkM0Uscd6IoRWb1zwdX1mTTEYkTI7RN4f81RHsc="},
	} {
		if _, err := c.dec(c.ok); err != nil {
			t.Fatalf("%s: %q: %v", c.name, c.ok, err)
		}
		for _, bad := range []string{"\n", "\r", "\r\n", " ", "\t", "\x00", "=", "é"} {
			for _, at := range []int{0, 4, len(c.ok)} {
				s := c.ok[:at] + bad + c.ok[at:]
				if _, err := c.dec(s); !errors.Is(err, ErrMalformedHash) {
					t.Errorf("%s: %q decoded (err %v), want ErrMalformedHash", c.name, s, err)
				}
			}
		}
	}
}

// storedLeakCases are stored values that are not hashes this package
// verifies, or are malformed ones: a plaintext password, unsalted digests,
// other crypt formats, garbage inside known formats. None of their bytes
// may reach an error string (issue 10, item 9).
var storedLeakCases = []string{
	"CorrectHorseBatteryStaple",
	"Tr0ub4dor&3-secret-plaintext",
	"$ecretPlaintext$withdollars$ign",
	"5f4dcc3b5aa765d61d8327deb882cf99",         // unsalted MD5
	"5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8", // unsalted SHA-1
	"md5$Zq3saltvalue$e1c0a6b1c0d3bd3c9ea1dc0d36e18df6",
	"sha1$Zq3saltvalue$a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
	"unsalted_md5$5f4dcc3b5aa765d61d8327deb882cf99",
	"$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
	"$6$rounds=5000$usesomesillystri$D4IrlXatmP7rx3P3InaxBeoomnAihCKRVQP22JZ6EY47Wc6BkroIuUUBOov1i.S5KPgErtP/EN5mcO.ChWQW21",
	"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
	"$argon2i$v=19$m=4096,t=3,p=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"$argon2id$v=16$m=4096,t=3,p=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"$argon2id$v=1x9$m=4096,t=3,p=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"$argon2id$v=19$mxyz=4096,t=3,p=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"$argon2id$v=19$m=4096,t=3,p=1,qwerty=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"$argon2id$v=19$m=4096,t=3,p=1,keyid=cXdlcnR5$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"$argon2id$v=19$m=4096,t=3,p=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlc!!",
	"$pbkdf2-sha256$i=1000,l=99$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"$pbkdf2-sha256$i=1000,l=16,zzzz=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"pbkdf2:md5secret:1000$saltsalt$0123456789abcdef0123456789abcdef",
	"pbkdf2:sha256$saltsalt$0123456789abcdef0123456789abcdef",
	"argon2$argon2i$v=19$m=4096,t=3,p=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"argon2$argon2id$v=19$m=4096,t=3,p=1,keyid=cXdlcnR5$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHZhbHVlcw",
	"bcrypt_sha256$$2b$12$Wl4d5B7vQ2Yf5J4vQ2Yf5.qXbH5bE6sJ3m7Y8sUeJf1m1T4Lr6a1u",
	"$2x$10$secretsecretsecretsecreO8vHk0s6fM3dJf2qYbq9hX7b1h2f3j4k",
}

// errorNamesAllowed are the identifiers an error may name even when the
// stored value contains them: fixed strings of this package.
var errorNamesAllowed = []string{
	"argon2id", "argon2i", "argon2d", "pbkdf2-sha256", "pbkdf2-sha512", "pbkdf2_sha256", "pbkdf2_sha1",
	"sha256", "sha512", "sha1", "bcrypt_sha256", "unsalted_md5", "md5-crypt", "sha512-crypt", "scrypt",
	"django", "werkzeug", "passlib", "v=19", "keyid", "pbkdf2:", "scrypt:",
}

// TestErrorsQuoteNoStoredBytes is issue 10, item 9: a stored value that
// is refused (plaintext, an unsalted digest, another crypt format, a
// malformed hash) appears in no substring of four bytes or more in the
// error, except for identifiers from the package's fixed list. Before the
// fix ErrUnsupportedAlgorithm quoted up to 32 bytes of the value.
func TestErrorsQuoteNoStoredBytes(t *testing.T) {
	h := newTestHasher(t, Config{})
	for _, stored := range storedLeakCases {
		_, err := h.Verify(bg, stored, []byte("password"))
		if err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%q) = %v, want a parse error", stored, err)
			continue
		}
		if leak := storedSubstringIn(stored, err.Error()); leak != "" {
			t.Errorf("Verify(%q): error %q quotes %q of the stored value", stored, err, leak)
		}
	}
}

// storedSubstringIn returns the longest substring of stored, four bytes or
// longer and not part of an allowed identifier, that msg contains.
func storedSubstringIn(stored, msg string) string {
	best := ""
	for i := range stored {
		for j := i + 4; j <= len(stored); j++ {
			sub := stored[i:j]
			if !strings.Contains(msg, sub) {
				break
			}
			allowed := false
			for _, name := range errorNamesAllowed {
				if strings.Contains(name, sub) {
					allowed = true
					break
				}
			}
			if !allowed && len(sub) > len(best) {
				best = sub
			}
		}
	}
	return best
}
