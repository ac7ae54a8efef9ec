package vault

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeRecord: the vault record decoder never panics, and is
// canonical: whatever decodes re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	// Seeds: the records of the vector files (passphrase, recovery and
	// secret slots), and one of them rotated by hand (no KDF run, to keep
	// the seed run fast): key version 3 with two retired keys.
	recs := fuzzVectorRecords(f)
	for _, r := range recs {
		f.Add(r)
	}
	for _, data := range recs {
		r, err := decodeRecord(data)
		if err != nil || len(r.slots) < 2 {
			continue
		}
		r.keyVersion = 3
		r.slots[1].keyVersion = 2
		r.retired = []retiredKey{{version: 1, sealed: bytes.Repeat([]byte{1}, 60)}, {version: 2, sealed: bytes.Repeat([]byte{2}, 60)}}
		rotated := r.encode()
		if _, err := decodeRecord(rotated); err != nil {
			f.Fatalf("the rotated seed does not decode: %v", err)
		}
		f.Add(rotated)
		f.Add(rotated[:len(rotated)-1])
		f.Add(append(rotated, 0))
		break
	}
	f.Add(recs[0][:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data)
		if err != nil {
			return
		}
		if got := r.encode(); !bytes.Equal(got, data) {
			t.Fatalf("decoded record re-encodes differently")
		}
		for i := range r.slots {
			if r.slots[i].kind == SlotPassphrase {
				decodePassphraseParams(r.slots[i].params)
			}
		}
	})
}

// FuzzOpen: opening arbitrary bytes never panics and never succeeds unless
// they are exactly a sealed record (the seeds are one of each format), and
// OpenVersion reports the version that was sealed.
func FuzzOpen(f *testing.F) {
	v, _ := newTestVault(f)
	u := mustCreate(f, v, "fuzz", "fuzz passphrase")
	sealed, err := u.Seal([]byte("plaintext"), []byte("ctx"))
	if err != nil {
		f.Fatal(err)
	}
	versioned, err := u.SealVersion([]byte("plaintext"), []byte("ctx"), 5)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, []byte("ctx"), uint64(0))
	f.Add(sealed[:10], []byte(""), uint64(1))
	f.Add(versioned, []byte("ctx"), uint64(5))
	f.Add(versioned, []byte("ctx"), uint64(6))
	f.Fuzz(func(t *testing.T, data, context []byte, minVersion uint64) {
		genuine := string(context) == "ctx" && (bytes.Equal(data, sealed) || bytes.Equal(data, versioned))
		pt, err := u.Open(data, context)
		if err == nil && (!genuine || string(pt) != "plaintext") {
			t.Fatalf("forged record opened")
		}
		pt, ver, err := u.OpenVersion(data, context, minVersion)
		switch {
		case err == nil && (!genuine || string(pt) != "plaintext" || ver < minVersion):
			t.Fatalf("forged record opened at version %d", ver)
		case err == nil && ver != map[bool]uint64{true: 5, false: 0}[bytes.Equal(data, versioned)]:
			t.Fatalf("version %d", ver)
		case errors.Is(err, ErrRollback) && (!genuine || pt != nil || ver >= minVersion):
			t.Fatalf("rollback reported for version %d, min %d", ver, minVersion)
		}
	})
}

// FuzzParseRecoveryKey: parsing never panics, and what parses formats back
// to the canonical grouping of the same bytes.
func FuzzParseRecoveryKey(f *testing.F) {
	k, _ := newRecoveryKey()
	f.Add(k.Reveal())
	f.Add("oooo-iiii-llll-0000-1111-2222-3333-4444")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		secret, ok := parseRecoveryKey(s)
		if !ok {
			return
		}
		back, ok := parseRecoveryKey(formatRecoveryKey(secret))
		if !ok || !bytes.Equal(back, secret) {
			t.Fatalf("%q does not round-trip", s)
		}
	})
}
