package session

import "testing"

// SES-13's record format (FORMAT.md §4.3): the second-factor flags live
// only in version 3 records; a record without them stays version 2, so
// older instances keep reading it; a version 2 record with one, a
// version 3 record without one, a pending bearer session and a record
// both pending and multi-factor are malformed.
func TestRecordSecondFactorFlags(t *testing.T) {
	id := make([]byte, 32)
	base := record{kind: kindCookie, created: 1, authTime: 1, lastSeen: 1, deadline: 2, idleMS: 1, ref: make([]byte, refLen)}
	plain := base
	if b := plain.encode(); b[0] != recordVersionV2 {
		t.Fatalf("a record without second-factor flags is version %d, want 2", b[0])
	}
	for _, r := range []record{{pending: true}, {mfa: true}} {
		rec := base
		rec.pending, rec.mfa = r.pending, r.mfa
		b := rec.encode()
		if b[0] != recordVersionV3 {
			t.Fatalf("pending=%v mfa=%v: version %d, want 3", r.pending, r.mfa, b[0])
		}
		got, err := decodeRecord(id, b)
		if err != nil || got.pending != r.pending || got.mfa != r.mfa {
			t.Fatalf("pending=%v mfa=%v: decoded %+v, %v", r.pending, r.mfa, got, err)
		}
		b[0] = recordVersionV2
		if _, err := decodeRecord(id, b); err == nil {
			t.Fatalf("a version 2 record with flags %08b decoded", b[2])
		}
	}
	b := plain.encode()
	b[0] = recordVersionV3
	if _, err := decodeRecord(id, b); err == nil {
		t.Fatal("a version 3 record without second-factor flags decoded")
	}
	both := base
	both.pending, both.mfa = true, true
	if _, err := decodeRecord(id, both.encode()); err == nil {
		t.Fatal("a record both pending and multi-factor decoded")
	}
	bearer := base
	bearer.kind, bearer.family, bearer.pending = kindBearer, make([]byte, 32), true
	if _, err := decodeRecord(id, bearer.encode()); err == nil {
		t.Fatal("a pending bearer session decoded")
	}
}
