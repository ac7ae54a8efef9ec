package kdf

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FuzzNormalize: password normalisation (NFKC, before every hash, key
// derivation and policy check) never panics, refuses invalid UTF-8 with
// ErrInvalidUTF8 only, and gives an NFKC string that normalises to itself
// (unchanged, so a password verifies the same way when it is typed again
// already normalised), reporting changed exactly when the bytes differ,
// and growing at most 18 times (Unicode's bound for NFKC).
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"correct horse", "e\u0301", "é", "０１２", "ﬁ", "\ufdfa", "Å", "\u1e9b\u0323", "\xff", "a\xc3", "", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, password []byte) {
		in := bytes.Clone(password)
		out, changed, err := normalizeChanged(password)
		if !bytes.Equal(in, password) {
			t.Fatalf("normalize modified its input %q to %q", in, password)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidUTF8) || out != nil || utf8.Valid(password) {
				t.Fatalf("normalize(%q) = %q, %v", password, out, err)
			}
			return
		}
		if !utf8.Valid(password) || !utf8.Valid(out) || !norm.NFKC.IsNormal(out) {
			t.Fatalf("normalize(%q) = %q: not NFKC", password, out)
		}
		if changed == bytes.Equal(out, password) {
			t.Fatalf("normalize(%q) = %q, changed %v", password, out, changed)
		}
		if len(out) > 18*len(password) {
			t.Fatalf("normalize(%q): %d bytes from %d", password, len(out), len(password))
		}
		again, changed2, err := normalizeChanged(out)
		if err != nil || changed2 || !bytes.Equal(again, out) {
			t.Fatalf("normalize(%q) = %q, which normalises again to %q (%v, %v)", password, out, again, changed2, err)
		}
	})
}
