package recoverycode

import (
	"bytes"
	"strings"
	"testing"
)

func TestRoundTripAndShape(t *testing.T) {
	text, secret := New()
	if len(secret) != Bytes {
		t.Fatalf("secret is %d bytes, want %d", len(secret), Bytes)
	}
	if got := strings.Count(text, "-"); got != Chars/4-1 {
		t.Fatalf("%d dashes in a code, want %d", got, Chars/4-1)
	}
	if got := len(strings.ReplaceAll(text, "-", "")); got != Chars {
		t.Fatalf("%d characters, want %d", got, Chars)
	}
	back, ok := Parse(text)
	if !ok || !bytes.Equal(back, secret) {
		t.Fatal("a fresh code does not parse back to its secret")
	}
}

func TestParseForgivesTypingButNothingElse(t *testing.T) {
	secret := bytes.Repeat([]byte{0x08, 0x42, 0x10, 0x84, 0x21}, 4) // 00001 00001 ... : every character "1"
	canonical := Format(secret)
	if canonical != strings.Repeat("1111-", 7)+"1111" {
		t.Fatalf("Format = %q", canonical)
	}
	same := []string{
		strings.Repeat("iiii ", 8),
		strings.Repeat("LLLL\u2013", 8),
		strings.Repeat("1", 32),
		strings.Repeat("l1I1\u00a0", 8),
	}
	for _, s := range same {
		got, ok := Parse(s)
		if !ok || !bytes.Equal(got, secret) {
			t.Errorf("Parse(%q) = %x, %v; want the same code", s, got, ok)
		}
	}
	refused := []string{
		"",
		strings.Repeat("1", 31),
		strings.Repeat("1", 33),
		strings.Repeat("U", 32),          // not in Crockford's alphabet
		strings.Repeat("\uff11", 32),     // full-width digit one
		strings.Repeat("1", 31) + "\xff", // not UTF-8
		strings.Repeat("-", MaxInputLen) + strings.Repeat("1", 32),
	}
	for _, s := range refused {
		if _, ok := Parse(s); ok {
			t.Errorf("Parse(%.40q) accepted", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Format(make([]byte, Bytes)))
	f.Add("abcd-efgh")
	f.Fuzz(func(t *testing.T, s string) {
		secret, ok := Parse(s)
		if !ok {
			return
		}
		if len(secret) != Bytes {
			t.Fatalf("accepted %q with a %d-byte secret", s, len(secret))
		}
		back, ok := Parse(Format(secret))
		if !ok || !bytes.Equal(back, secret) {
			t.Fatalf("%q: the canonical form does not parse back", s)
		}
	})
}
