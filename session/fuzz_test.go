package session

import (
	"bytes"
	"testing"
)

func FuzzDecodeRecord(f *testing.F) {
	recs := []*record{
		{kind: kindCookie, created: 1, authTime: 1, lastSeen: 1, deadline: 2, idleMS: 1, ref: make([]byte, refLen)},
		{kind: kindCookie, remember: true, created: 1, authTime: 2, lastSeen: 3, deadline: 1 << 40, idleMS: 60000,
			ip: "2001:db8::1", userAgent: "Mozilla/5.0 ✓", custody: bytes.Repeat([]byte{9}, 69), ref: bytes.Repeat([]byte{7}, refLen)},
		{kind: kindBearer, created: 5, authTime: 5, lastSeen: 5, deadline: 6, idleMS: 1, family: bytes.Repeat([]byte{1}, 32), ref: bytes.Repeat([]byte{1}, refLen)},
		{kind: kindFamily, created: 5, authTime: 5, lastSeen: 7, deadline: 9, idleMS: 2, family: bytes.Repeat([]byte{2}, 32), ref: bytes.Repeat([]byte{2}, refLen), ip: "192.0.2.1"},
		{kind: kindCookie, pending: true, created: 1, authTime: 1, lastSeen: 1, deadline: 2, idleMS: 1, ref: make([]byte, refLen)},
		{kind: kindCookie, mfa: true, remember: true, created: 1, authTime: 1, lastSeen: 1, deadline: 2, idleMS: 1, ref: make([]byte, refLen)},
	}
	for _, r := range recs {
		f.Add(r.encode())
	}
	for _, r := range recs {
		// The same records in format version 1 (no reference).
		v1 := r.encode()
		v1 = append(append([]byte{recordVersionV1}, v1[1:recordFixedLenV1]...), v1[recordFixedLen:]...)
		f.Add(v1)
		// And in format version 2 (no second-factor flags).
		v2 := r.encode()
		v2[0] = recordVersionV2
		f.Add(v2)
	}
	// Version 4: factors other than the password alone, failures.
	for _, r := range []*record{
		{kind: kindCookie, mfa: true, factors: FactorPassword | FactorTOTP, created: 1, authTime: 1, lastSeen: 1, deadline: 2, idleMS: 1, ref: make([]byte, refLen)},
		{kind: kindCookie, factors: FactorPasskey, created: 1, authTime: 1, lastSeen: 1, deadline: 2, idleMS: 1, ref: make([]byte, refLen)},
		{kind: kindCookie, pending: true, factors: FactorPassword, failures: 2, created: 1, authTime: 1, lastSeen: 1, deadline: 2, idleMS: 1, ref: make([]byte, refLen)},
	} {
		f.Add(r.encode())
	}
	f.Add([]byte{1, 1, 0})
	id := bytes.Repeat([]byte{0xab}, 32)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(id, b)
		if err != nil {
			return
		}
		again := r.encode()
		if b[0] == recordVersionV1 || b[0] == recordVersionV2 {
			// A version 1 record is read with the reference derived from
			// its ID; versions 1 and 2 have no second-factor flag; both are
			// written as the current version.
			if b[0] == recordVersionV1 && !bytes.Equal(r.ref, id[:refLen]) {
				t.Fatalf("decode(%x): reference %x, want the ID's first %d bytes", b, r.ref, refLen)
			}
			if r.pending || r.mfa {
				t.Fatalf("decode(%x): a version %d record with second-factor flags", b, b[0])
			}
			r2, err := decodeRecord(id, again)
			if err != nil {
				t.Fatalf("decode(%x) re-encodes to %x, which does not decode: %v", b, again, err)
			}
			b, again = again, r2.encode()
		}
		// Non-malleable: what decodes re-encodes to the same bytes.
		if !bytes.Equal(again, b) {
			t.Fatalf("decode(%x) re-encodes to %x", b, again)
		}
	})
}

func FuzzDecodeFamily(f *testing.F) {
	fam := &family{tokenHash: make([]byte, 32), prevHash: make([]byte, 32), created: 1, deadline: 2, idleUntil: 2, rotated: 1, access: make([]byte, 32)}
	f.Add(fam.encode())
	// Format 1 (no device record yet): read as legacy, written as the
	// current format with the same fields.
	v1 := fam.encode()
	v1[0] = familyRecordVersionV1
	f.Add(v1)
	f.Fuzz(func(t *testing.T, b []byte) {
		fam, err := decodeFamily(b)
		if err != nil {
			return
		}
		want := b
		if fam.legacy != (b[0] == familyRecordVersionV1) {
			t.Fatalf("decode(%x): legacy %v", b, fam.legacy)
		}
		if fam.legacy {
			want = append([]byte{familyRecordVersion}, b[1:]...)
		}
		if again := fam.encode(); !bytes.Equal(again, want) {
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
