package session

import (
	"bytes"
	"testing"
)

func FuzzDecodeRecord(f *testing.F) {
	recs := []*record{
		{kind: kindCookie, created: 1, authTime: 1, lastSeen: 1, deadline: 2, idleMS: 1},
		{kind: kindCookie, remember: true, created: 1, authTime: 2, lastSeen: 3, deadline: 1 << 40, idleMS: 60000,
			ip: "2001:db8::1", userAgent: "Mozilla/5.0 ✓", custody: bytes.Repeat([]byte{9}, 69)},
		{kind: kindBearer, created: 5, authTime: 5, lastSeen: 5, deadline: 6, idleMS: 1, family: bytes.Repeat([]byte{1}, 32)},
	}
	for _, r := range recs {
		f.Add(r.encode())
	}
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		// Non-malleable: what decodes re-encodes to the same bytes.
		if again := r.encode(); !bytes.Equal(again, b) {
			t.Fatalf("decode(%x) re-encodes to %x", b, again)
		}
	})
}

func FuzzDecodeFamily(f *testing.F) {
	fam := &family{tokenHash: make([]byte, 32), prevHash: make([]byte, 32), created: 1, deadline: 2, idleUntil: 2, rotated: 1, access: make([]byte, 32)}
	f.Add(fam.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		fam, err := decodeFamily(b)
		if err != nil {
			return
		}
		if again := fam.encode(); !bytes.Equal(again, b) {
			t.Fatalf("decode(%x) re-encodes to %x", b, again)
		}
	})
}

func FuzzParseTokens(f *testing.F) {
	f.Add(b64.EncodeToString(make([]byte, 32)))
	f.Add(b64.EncodeToString(make([]byte, 48)))
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB")
	f.Fuzz(func(t *testing.T, s string) {
		if tok, ok := parseToken(s); ok {
			if len(tok) != tokenLen || b64.EncodeToString(tok) != s {
				t.Fatalf("parseToken(%q) accepted a non-canonical token", s)
			}
		}
		if fam, secret, ok := parseRefreshToken(s); ok {
			if b64.EncodeToString(append(append([]byte(nil), fam...), secret...)) != s {
				t.Fatalf("parseRefreshToken(%q) accepted a non-canonical token", s)
			}
		}
	})
}
