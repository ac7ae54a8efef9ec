package vault

import (
	"errors"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
)

// VLT-06: records sealed under one key never repeat a nonce (random 96-bit
// GCM nonces: 10^5 seals, 10^6 with KEYHOLD_LONG_TESTS=1), and an Unlocked
// whose seal counter reached the limit (maxSealsPerKey, below the 2^32 of
// NIST SP 800-38D §8.3) refuses to seal more with ErrRekeyRequired, on
// both Seal and SealVersion, while it still opens.
func TestRequirementNonceUniqueness(t *testing.T) {
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "alice", "alice's long passphrase")
	defer u.Lock()
	n := testenv.Size(t, 100_000, 1_000_000)
	seen := make(map[[gcmNonceLen]byte]struct{}, n)
	for i := range n {
		var sealed []byte
		var err error
		headerLen := envelopeHeaderLen
		if i%2 == 0 {
			sealed, err = u.Seal(nil, []byte("ctx"))
		} else {
			sealed, err = u.SealVersion(nil, []byte("ctx"), uint64(i))
			headerLen = versionedHeaderLen
		}
		if err != nil {
			t.Fatalf("seal %d: %v", i, err)
		}
		nonce := [gcmNonceLen]byte(sealed[headerLen : headerLen+gcmNonceLen])
		if _, dup := seen[nonce]; dup {
			t.Fatalf("seal %d repeats the nonce %x", i, nonce)
		}
		seen[nonce] = struct{}{}
	}
}

// VLT-06: the seal counter at its limit (see TestRequirementNonceUniqueness).
func TestRequirementRekeyAtLimit(t *testing.T) {
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "alice", "alice's long passphrase")
	defer u.Lock()
	u.sealed.Store(maxSealsPerKey - 1) // the counter of an Unlocked that sealed that many
	last, err := u.Seal([]byte("the last one"), []byte("ctx"))
	if err != nil {
		t.Fatalf("seal number maxSealsPerKey: %v", err)
	}
	if _, err := u.Seal([]byte("one too many"), []byte("ctx")); !errors.Is(err, ErrRekeyRequired) {
		t.Errorf("Seal past the limit: %v, want ErrRekeyRequired", err)
	}
	if _, err := u.SealVersion([]byte("one too many"), []byte("ctx"), 1); !errors.Is(err, ErrRekeyRequired) {
		t.Errorf("SealVersion past the limit: %v, want ErrRekeyRequired", err)
	}
	if pt, err := u.Open(last, []byte("ctx")); err != nil || string(pt) != "the last one" {
		t.Errorf("Open at the limit: %q, %v", pt, err)
	}
}

// VLT-16: the format versions and algorithm IDs in headers are checked:
// a record envelope with an unknown format or AEAD id, a vault record of
// an unknown format, and a passphrase slot with an unknown KDF id are all
// refused (ErrDecrypt, ErrUnlockFailed), never read some other way.
func TestRequirementUnknownAlgorithmsRefused(t *testing.T) {
	v, store := newTestVault(t)
	const pass = "alice's long passphrase"
	u := mustCreate(t, v, "alice", pass)
	defer u.Lock()
	for _, versioned := range []bool{false, true} {
		var sealed []byte
		var err error
		if versioned {
			sealed, err = u.SealVersion([]byte("note"), []byte("ctx"), 1)
		} else {
			sealed, err = u.Seal([]byte("note"), []byte("ctx"))
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			at  int
			val byte
		}{{0, 0}, {0, 3}, {0, 0xFF}, {1, 0}, {1, 2}, {1, 0xFF}} {
			bad := append([]byte(nil), sealed...)
			bad[tc.at] = tc.val
			if _, err := u.Open(bad, []byte("ctx")); !errors.Is(err, ErrDecrypt) {
				t.Errorf("versioned=%v, header byte %d = %#x: Open gave %v, want ErrDecrypt", versioned, tc.at, tc.val, err)
			}
		}
	}

	rec, err := store.GetVault(bg, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"vault record format 0xFF", func(b []byte) []byte { b[3] = 0xFF; return b }},
		{"vault record format 2", func(b []byte) []byte { b[3] = 2; return b }},
		{"passphrase slot KDF id 0xFF", func(b []byte) []byte { return editSlotAlg(t, b, 0xFF) }},
		{"passphrase slot KDF id 0", func(b []byte) []byte { return editSlotAlg(t, b, 0) }},
		{"passphrase slot KDF id 4", func(b []byte) []byte { return editSlotAlg(t, b, 4) }},
	} {
		cur, err := store.GetVault(bg, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutVault(bg, "alice", change.edit(append([]byte(nil), rec.Data...)), cur.Version); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Unlock(bg, "alice", []byte(pass)); !errors.Is(err, ErrUnlockFailed) {
			t.Errorf("%s: Unlock gave %v, want ErrUnlockFailed", change.name, err)
		}
	}
}

// editSlotAlg sets the KDF id (the first params byte) of the record's
// passphrase slot.
func editSlotAlg(t *testing.T, data []byte, alg byte) []byte {
	t.Helper()
	r, err := decodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.slots {
		if r.slots[i].kind == SlotPassphrase {
			r.slots[i].params = append([]byte(nil), r.slots[i].params...)
			r.slots[i].params[0] = alg
			return r.encode()
		}
	}
	t.Fatal("no passphrase slot")
	return nil
}
