// Package recoverycode is the one text format of keyhold's recovery
// secrets: vault recovery keys and the login recovery codes of package
// totp. A code carries 160 bits from crypto/rand, written as 32 characters
// of Crockford's base32 in eight groups of four ("7Q2M-…"), easy to read
// aloud and to type.
//
// Parse forgives what people get wrong when they copy a code by hand:
// case, spaces and dashes (also tabs, no-break spaces, and the Unicode
// hyphens, dashes and minus sign) are ignored, and the look-alike letters
// O, I and L read as 0, 1 and 1. Anything else is refused.
package recoverycode

import (
	"crypto/rand"
	"strings"
	"unicode/utf8"
)

const (
	// Bytes is the length of a code's secret: 160 bits.
	Bytes = 20
	// Chars is the number of base32 characters in a code, without dashes.
	Chars = 32
	// MaxInputLen bounds the text Parse reads, in bytes: a code with
	// generous separators fits, a megabyte pasted by mistake does not.
	MaxInputLen = 256

	alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// Alphabet returns the 32 characters a code is written in.
func Alphabet() string { return alphabet }

// New returns a fresh code's text and its secret bytes, from crypto/rand.
func New() (text string, secret []byte) {
	secret = make([]byte, Bytes)
	rand.Read(secret)
	return Format(secret), secret
}

// Format writes secret (Bytes long) as a grouped code.
func Format(secret []byte) string {
	var sb strings.Builder
	sb.Grow(Chars + Chars/4)
	var acc uint64
	bits, n := 0, 0
	for _, b := range secret {
		acc = acc<<8 | uint64(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			if n > 0 && n%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(alphabet[(acc>>bits)&31])
			n++
		}
	}
	return sb.String()
}

// Parse normalises text and returns the code's secret bytes, or false if
// it is not a well-formed code. Its running time depends on the input's
// length and form only, not on which code it is.
func Parse(text string) ([]byte, bool) {
	if len(text) > MaxInputLen || !utf8.ValidString(text) {
		return nil, false
	}
	var acc uint64
	bits, n := 0, 0
	out := make([]byte, 0, Bytes)
	for _, r := range text {
		if separator(r) {
			continue
		}
		v, ok := value(r)
		if !ok || n == Chars {
			return nil, false
		}
		n++
		acc = acc<<5 | uint64(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	if n != Chars || len(out) != Bytes {
		return nil, false
	}
	return out, true
}

func separator(r rune) bool {
	switch r {
	case '-', ' ', '\t', '\u00a0', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212':
		return true
	}
	return false
}

// value returns the base32 value of one character, after folding case and
// look-alikes.
func value(r rune) (byte, bool) {
	if 'a' <= r && r <= 'z' {
		r -= 'a' - 'A'
	}
	switch r {
	case 'O':
		r = '0'
	case 'I', 'L':
		r = '1'
	}
	if r >= 0x80 {
		return 0, false
	}
	i := strings.IndexByte(alphabet, byte(r))
	if i < 0 {
		return 0, false
	}
	return byte(i), true
}
