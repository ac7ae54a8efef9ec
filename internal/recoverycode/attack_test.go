package recoverycode

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// Outside review of the recovery-code format: defenses that hold.

// Every rune outside ASCII, other than the listed separators, is refused
// in place of one character of a valid code, including the ones Unicode's
// case tables fold into ASCII letters (ı U+0131 and İ U+0130 to I/i, ſ
// U+017F to S, the Kelvin sign U+212A to K, the Angstrom sign U+212B),
// full-width forms, invisible characters (U+200B, U+FEFF), other spaces
// (U+2009, U+3000) and combining marks: value folds ASCII only.
func TestAttackNonASCIIRunesRefused(t *testing.T) {
	valid := Format(bytes.Repeat([]byte{0x5a}, Bytes)) // no 'I', 'L' or 'O' in it
	plain := strings.ReplaceAll(valid, "-", "")
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		if separator(r) {
			// A separator in place of a character leaves 31: refused.
			if _, ok := Parse(string(r) + plain[1:]); ok {
				t.Fatalf("separator %U in place of a character accepted", r)
			}
			continue
		}
		for _, s := range []string{string(r) + plain[1:], plain[:16] + string(r) + plain[17:], plain + string(r)} {
			if _, ok := Parse(s); ok {
				t.Fatalf("Parse accepted %U (folds to %q/%q) in %q", r, unicode.ToUpper(r), unicode.ToLower(r), s)
			}
		}
	}
	// The runes whose case folds reach ASCII, by name, and that their
	// folds would have been accepted (so the refusals above are not
	// vacuous).
	for _, r := range []rune{'\u0131', '\u0130', '\u017f', '\u212a', '\u212b'} {
		folded := false
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < 0x80 {
				folded = true
			}
		}
		if !folded && unicode.ToUpper(r) >= 0x80 && unicode.ToLower(r) >= 0x80 {
			continue
		}
		if _, ok := Parse(string(r) + plain[1:]); ok {
			t.Errorf("%U accepted", r)
		}
	}
}

// Exactly the ASCII bytes of the alphabet, their lower case, the
// look-alikes o/O, i/I, l/L and the ASCII separators are read; every
// other ASCII byte is refused.
func TestAttackASCIIAcceptance(t *testing.T) {
	valid := Format(bytes.Repeat([]byte{0x5a}, Bytes))
	plain := strings.ReplaceAll(valid, "-", "")
	for b := 0; b < 0x80; b++ {
		c := byte(b)
		up := c
		if 'a' <= c && c <= 'z' {
			up = c - ('a' - 'A')
		}
		want := strings.IndexByte(alphabet, up) >= 0 || up == 'O' || up == 'I' || up == 'L'
		_, ok := Parse(string(rune(c)) + plain[1:])
		if ok != want {
			t.Errorf("byte %#x (%q) in place of a character: accepted %v, want %v", c, c, ok, want)
		}
	}
}

// The length bounds: MaxInputLen bytes of input are read (a code padded
// with separators to exactly that length parses), one more byte is
// refused before anything else, and a 33rd character is refused even
// when only separators follow.
func TestAttackLengthBounds(t *testing.T) {
	_, secret := New()
	code := Format(secret)
	pad := strings.Repeat(" ", MaxInputLen-len(code))
	got, ok := Parse(pad + code)
	if !ok || !bytes.Equal(got, secret) {
		t.Fatalf("a code padded to MaxInputLen (%d bytes) is refused", MaxInputLen)
	}
	if _, ok := Parse(" " + pad + code); ok {
		t.Fatalf("input of MaxInputLen+1 bytes accepted")
	}
	if _, ok := Parse(code + "1" + strings.Repeat("-", 10)); ok {
		t.Fatal("a 33rd character accepted")
	}
	// Multi-byte separators count in bytes: 43 en dashes (3 bytes each)
	// and a code exceed MaxInputLen.
	if _, ok := Parse(strings.Repeat("\u2013", (MaxInputLen-len(code))/3+1) + code); ok {
		t.Fatal("input over MaxInputLen bytes (multi-byte separators) accepted")
	}
}

// Every text Parse accepts is one code's canonical form up to the
// documented forgiveness: stripping separators, upper-casing ASCII and
// mapping O→0, I/L→1 gives Format's output without dashes. So no two
// distinct normalised texts name one secret, and no unexpected character
// slips through.
func FuzzAttackParseAcceptsOnlyNormalisedCodes(f *testing.F) {
	f.Add(Format(bytes.Repeat([]byte{0xa5}, Bytes)))
	f.Add("ıııı-ſſſſ-KKKK-" + strings.Repeat("1", 20))
	f.Fuzz(func(t *testing.T, s string) {
		secret, ok := Parse(s)
		if !ok {
			return
		}
		var norm strings.Builder
		for _, r := range s {
			if separator(r) {
				continue
			}
			if r >= 0x80 {
				t.Fatalf("accepted %q with the non-ASCII %U", s, r)
			}
			c := byte(unicode.ToUpper(r))
			switch c {
			case 'O':
				c = '0'
			case 'I', 'L':
				c = '1'
			}
			norm.WriteByte(c)
		}
		if want := strings.ReplaceAll(Format(secret), "-", ""); norm.String() != want {
			t.Fatalf("Parse(%q) = %x, whose code is %s, not %s", s, secret, want, norm.String())
		}
	})
}
