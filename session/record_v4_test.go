package session

import (
	"encoding/hex"
	"errors"
	"testing"
)

// The factors and second-factor failures of a session record (FORMAT.md
// §4.3): only a record that needs them is version 4 (two more bytes after
// the flags), so every other record stays readable by older instances;
// records of versions 1 to 3 decode with the factors FactorPassword (a
// version 3 multi-factor record keeps its rating); and a version 4 record
// that versions 2 or 3 could hold, or whose factors or failures break the
// rules, is malformed.
func TestRecordFactors(t *testing.T) {
	id := make([]byte, 32)
	base := record{kind: kindCookie, created: 1, authTime: 1, lastSeen: 1, deadline: 2, idleMS: 1, ref: make([]byte, refLen)}
	with := func(f func(r *record)) record {
		r := base
		f(&r)
		return r
	}
	for _, c := range []struct {
		name    string
		rec     record
		version byte
	}{
		{"zero factors", base, recordVersionV2},
		{"password", with(func(r *record) { r.factors = FactorPassword }), recordVersionV2},
		{"password pending", with(func(r *record) { r.factors, r.pending = FactorPassword, true }), recordVersionV3},
		{"password mfa", with(func(r *record) { r.factors, r.mfa = FactorPassword, true }), recordVersionV3},
		{"password+totp", with(func(r *record) { r.factors, r.mfa = FactorPassword|FactorTOTP, true }), recordVersion},
		{"passkey", with(func(r *record) { r.factors, r.mfa = FactorPasskey, true }), recordVersion},
		{"totp", with(func(r *record) { r.factors = FactorTOTP }), recordVersion},
		{"passkey+totp mfa", with(func(r *record) { r.factors, r.mfa = FactorPasskey|FactorTOTP, true }), recordVersion},
		{"pending failures", with(func(r *record) { r.factors, r.pending, r.failures = FactorPassword, true, 2 }), recordVersion},
	} {
		b := c.rec.encode()
		if b[0] != c.version {
			t.Errorf("%s: version %d, want %d", c.name, b[0], c.version)
			continue
		}
		got, err := decodeRecord(id, b)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got.sessionFactors() != c.rec.sessionFactors() || got.failures != c.rec.failures || got.mfa != c.rec.mfa || got.pending != c.rec.pending {
			t.Errorf("%s: decoded factors %s failures %d mfa %v pending %v", c.name, got.factors, got.failures, got.mfa, got.pending)
		}
	}

	// A version 3 multi-factor record, as written before factors were
	// recorded: FactorPassword, still rated multi-factor.
	v3, _ := hex.DecodeString("030104" + "0000000000000001" + "0000000000000001" + "0000000000000001" +
		"0000000000000002" + "0000000000000001" + "000000000000000000000000" + "00" + "00" + "0000" + "0000")
	got, err := decodeRecord(id, v3)
	if err != nil || got.sessionFactors() != FactorPassword || !got.mfa {
		t.Fatalf("version 3 mfa record: %+v, %v", got, err)
	}

	// The version 4 layout: the factors and failures bytes follow the
	// flags (FORMAT.md §4.3's example: a remembered password+TOTP session).
	ptRec := with(func(r *record) { r.factors, r.mfa, r.remember = FactorPassword|FactorTOTP, true, true })
	pt := ptRec.encode()
	if want := "040105" + "0300"; hex.EncodeToString(pt[:5]) != want {
		t.Fatalf("version 4 header %x, want %s", pt[:5], want)
	}
	if len(pt) != len(base.encode())+2 {
		t.Fatalf("version 4 is %d bytes, version 2 %d: want two more", len(pt), len(base.encode()))
	}

	for _, c := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"no factors", func(b []byte) []byte { b[3] = 0; return b }},
		{"unknown factor bit", func(b []byte) []byte { b[3] |= 0x10; return b }},
		{"password alone, no failures", func(b []byte) []byte { b[3] = byte(FactorPassword); return b }},
		{"multi-factor set not rated", func(b []byte) []byte { b[2] &^= flagMultiFactor; return b }},
		{"failures without pending", func(b []byte) []byte { b[4] = 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:recordFixedLen+1] }},
		{"as version 3", func(b []byte) []byte { b[0] = recordVersionV3; return b }},
	} {
		b := c.edit(append([]byte(nil), pt...))
		if _, err := decodeRecord(id, b); !errors.Is(err, errMalformed) {
			t.Errorf("%s: decoded (%v)", c.name, err)
		}
	}
	pfRec := with(func(r *record) { r.factors, r.pending, r.failures = FactorPassword, true, 1 })
	pf := pfRec.encode()
	pf[4] = maxStoredFailures + 1
	if _, err := decodeRecord(id, pf); !errors.Is(err, errMalformed) {
		t.Errorf("%d failures decoded", maxStoredFailures+1)
	}
	pf[4] = maxStoredFailures
	if _, err := decodeRecord(id, pf); err != nil {
		t.Errorf("%d failures: %v", maxStoredFailures, err)
	}
	pf[0] = 5
	if _, err := decodeRecord(id, pf); !errors.Is(err, errMalformed) {
		t.Error("a version 5 record decoded")
	}
}
