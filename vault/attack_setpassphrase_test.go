package vault

// Attack review of SetPassphrase (review 15b).

import (
	"errors"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
)

// A stale Unlocked after the vault was deleted and created again under
// the same user ID (both at key version 1): SetPassphrase cannot tell the
// two vaults apart (the record holds nothing the master key can be
// checked against), so it wraps the deleted vault's master key into the
// new vault's passphrase slot. The new passphrase then "unlocks" to the
// old key: the new vault's records no longer open with it, and the
// deleted vault's key, crypto-shredded, is back in the store under a
// passphrase the new owner knows. Delete's documentation forbids giving
// a deleted user's ID to anyone, and SetPassphrase's says so; this test
// pins the behaviour that makes the rule necessary, and must change
// (to ErrConflict) when the vault record gains a key check.
func TestR15bSetPassphraseStaleUnlockedAfterRecreate(t *testing.T) {
	t.Parallel()
	v, err := New(memstore.New(), Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	stale := mustCreate(t, v, "reused", "the first owner's passphrase")
	oldRecord, err := stale.Seal([]byte("the first owner's secret"), []byte("notes/1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Delete(bg, "reused"); err != nil {
		t.Fatal(err)
	}
	fresh := mustCreate(t, v, "reused", "the second owner's passphrase")
	newRecord, err := fresh.Seal([]byte("the second owner's secret"), []byte("notes/1"))
	if err != nil {
		t.Fatal(err)
	}
	if stale.KeyVersion() != fresh.KeyVersion() {
		t.Fatalf("key versions %d and %d: the case needs the same", stale.KeyVersion(), fresh.KeyVersion())
	}
	err = v.SetPassphrase(bg, stale, []byte("a passphrase set by the stale holder"))
	if errors.Is(err, ErrConflict) {
		t.Fatal("SetPassphrase now refuses a stale Unlocked: the vault can tell vaults apart; update this test and the documentation of Delete and SetPassphrase")
	}
	if err != nil {
		t.Fatal(err)
	}
	u, err := v.Unlock(bg, "reused", []byte("a passphrase set by the stale holder"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Lock()
	if _, err := u.Open(newRecord, []byte("notes/1")); err == nil {
		t.Fatal("the new vault's record opens: the stale key was not written")
	}
	if pt, err := u.Open(oldRecord, []byte("notes/1")); err != nil || string(pt) != "the first owner's secret" {
		t.Fatalf("the deleted vault's record: %q %v", pt, err)
	}
}

// Defenses that held: SetPassphrase with a locked Unlocked gives
// ErrLocked and writes nothing (the old passphrase still opens); one
// whose vault was deleted gives ErrNoVault and creates no vault.
func TestR15bSetPassphraseLockedAndDeleted(t *testing.T) {
	t.Parallel()
	v, err := New(memstore.New(), Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	u := mustCreate(t, v, "ada", "ada's first passphrase")
	u.Lock()
	if err := v.SetPassphrase(bg, u, []byte("ada's second passphrase")); !errors.Is(err, ErrLocked) {
		t.Fatalf("locked: %v, want ErrLocked", err)
	}
	w, err := v.Unlock(bg, "ada", []byte("ada's first passphrase"))
	if err != nil {
		t.Fatalf("the old passphrase after a refused SetPassphrase: %v", err)
	}
	w.Lock()

	b := mustCreate(t, v, "bob", "bob's first passphrase")
	defer b.Lock()
	if err := v.Delete(bg, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := v.SetPassphrase(bg, b, []byte("bob's second passphrase")); !errors.Is(err, ErrNoVault) {
		t.Fatalf("SetPassphrase on a deleted vault: %v, want ErrNoVault", err)
	}
	if _, err := v.Slots(bg, "bob"); !errors.Is(err, ErrNoVault) {
		t.Fatalf("a vault was created: %v", err)
	}
}
