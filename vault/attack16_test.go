package vault

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/keyhold/keyhold/kdf"
)

// Issue 16: someone who can write the database moves what one user's
// vault holds into another user's row (a slot, a whole vault record, a
// sealed record), puts back an older copy of a vault record or of a
// sealed record, or uses one recovery key twice at once. What must hold:
// a moved slot or record never opens for the other user (the user ID is
// in every associated data); a rollback is caught where SECURITY.md
// ("Someone who can write the database, against vault data") says it is,
// and where it is not, the test pins what goes through, so that the docs
// must change with the code.

// attack16Pass, attack16CredID and attack16PRF are what alice and carol
// (user IDs of one length, so that only their bytes differ) both use, so
// that only the associated data can tell their slots apart: the same
// passphrase, the same credential ID and secret for a secret slot (and
// the same KMS).
const attack16Pass = "a passphrase alice and carol share"

var (
	attack16CredID = []byte("a credential ID both registered")
	attack16PRF    = prf("one secret for both")
)

// attack16Vaults makes alice's and carol's vaults, each with a passphrase,
// a recovery key, a secret slot and a wrapper slot, all from the same
// secrets, and returns their recovery keys.
func attack16Vaults(t *testing.T) (v *Vault, kms *testKMS, keys map[string]RecoveryKey, put func(user string, data []byte), get func(user string) *record) {
	t.Helper()
	v, store := newTestVault(t)
	kms = newTestKMS("kms-shared")
	keys = map[string]RecoveryKey{}
	for _, user := range []string{"alice", "carol"} {
		u := mustCreate(t, v, user, attack16Pass)
		k, err := v.RegenerateRecoveryKeys(bg, u, 1)
		if err != nil {
			t.Fatal(err)
		}
		keys[user] = k[0]
		if err := v.AddSecretSlot(bg, u, attack16CredID, attack16PRF); err != nil {
			t.Fatal(err)
		}
		if err := v.AddWrapperSlot(bg, u, kms); err != nil {
			t.Fatal(err)
		}
	}
	put = func(user string, data []byte) {
		t.Helper()
		rec, err := store.GetVault(bg, user)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutVault(bg, user, data, rec.Version); err != nil {
			t.Fatal(err)
		}
	}
	get = func(user string) *record {
		t.Helper()
		rec, err := store.GetVault(bg, user)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeRecord(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return v, kms, keys, put, get
}

// TestAttack16SlotSwapBetweenUsers: each of alice's slots (passphrase,
// recovery key, secret, KMS wrapper) put in place of carol's slot of the
// same kind, in carol's row, at carol's key version; and alice's whole vault
// record in carol's row. None opens as carol, with any of the secrets (which
// are alice's and carol's alike): the slot's wrap binds the user ID.
func TestAttack16SlotSwapBetweenUsers(t *testing.T) {
	t.Parallel()
	v, kms, keys, put, get := attack16Vaults(t)
	unlocks := map[SlotKind]func() error{
		SlotPassphrase: func() error { _, err := v.Unlock(bg, "carol", []byte(attack16Pass)); return err },
		SlotRecovery: func() error {
			_, _, err := v.UnlockWithRecoveryKey(bg, "carol", keys["alice"].Reveal())
			return err
		},
		SlotSecret:  func() error { _, err := v.UnlockWithSecret(bg, "carol", attack16CredID, attack16PRF); return err },
		SlotWrapper: func() error { _, err := v.UnlockWithWrapper(bg, "carol", kms); return err },
	}
	alice, carol := get("alice"), get("carol")
	if alice.keyVersion != carol.keyVersion {
		t.Fatalf("key versions %d and %d: the swap must be at carol's own version", alice.keyVersion, carol.keyVersion)
	}
	for kind, unlock := range unlocks {
		i := slices16Index(alice, kind)
		j := slices16Index(carol, kind)
		if i < 0 || j < 0 {
			t.Fatalf("no %v slot to swap", kind)
		}
		spliced := *carol
		spliced.slots = append([]slot(nil), carol.slots...)
		spliced.slots[j] = alice.slots[i]
		put("carol", spliced.encode())
		if err := unlock(); !errors.Is(err, ErrUnlockFailed) {
			t.Errorf("alice's %v slot in carol's row: %v, want ErrUnlockFailed", kind, err)
		}
	}
	put("carol", alice.encode())
	for kind, unlock := range unlocks {
		if err := unlock(); !errors.Is(err, ErrUnlockFailed) {
			t.Errorf("alice's whole vault record in carol's row, by %v: %v, want ErrUnlockFailed", kind, err)
		}
	}
	// And with carol's own record back, every way in works again (the
	// refusals above were the swaps', not the fixture's).
	put("carol", carol.encode())
	for kind, unlock := range unlocks {
		if kind == SlotRecovery {
			if _, _, err := v.UnlockWithRecoveryKey(bg, "carol", keys["carol"].Reveal()); err != nil {
				t.Errorf("carol's own recovery key: %v", err)
			}
			continue
		}
		if err := unlock(); err != nil {
			t.Errorf("carol's own %v slot: %v", kind, err)
		}
	}
}

func slices16Index(r *record, kind SlotKind) int {
	for i := range r.slots {
		if r.slots[i].kind == kind && r.slots[i].keyVersion == r.keyVersion {
			return i
		}
	}
	return -1
}

// TestAttack16CiphertextSwapBetweenUsers: a record alice sealed (with and
// without a record version) does not open as carol's under the same context,
// not even for an Unlocked that holds alice's very master key under carol's
// user ID: the user ID alone refuses it.
func TestAttack16CiphertextSwapBetweenUsers(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	alice := mustCreate(t, v, "alice", attack16Pass)
	carol := mustCreate(t, v, "carol", attack16Pass)
	ctx := []byte("notes/1/body")
	plain, err := alice.Seal([]byte("alice's note"), ctx)
	if err != nil {
		t.Fatal(err)
	}
	versioned, err := alice.SealVersion([]byte("alice's note, v3"), ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := alice.masterKey()
	if err != nil {
		t.Fatal(err)
	}
	asBob := newUnlocked("carol", alice.KeyVersion(), mk, nil) // alice's key, carol's name
	defer asBob.Lock()
	for name, u := range map[string]*Unlocked{"carol": carol, "alice's key under carol's ID": asBob} {
		if _, err := u.Open(plain, ctx); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s opens alice's record: %v, want ErrDecrypt", name, err)
		}
		if _, _, err := u.OpenVersion(versioned, ctx, 0); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s opens alice's versioned record: %v, want ErrDecrypt", name, err)
		}
	}
	if pt, err := alice.Open(plain, ctx); err != nil || string(pt) != "alice's note" {
		t.Fatalf("alice's own record: %v", err)
	}
}

// TestAttack16VaultRecordRollback puts back older copies of alice's vault
// record and of her sealed records, and pins what is caught and what is
// not (SECURITY.md, "Record rollback" and "Not protected"):
//
//   - caught: a sealed record older than the version the application
//     expects (OpenVersion, ErrRollback); records sealed after a master-key
//     rotation, under a vault record rolled back to before it (ErrDecrypt);
//     the fingerprint of a vault rolled back across a rotation differs;
//   - not caught: the vault record rolled back across a passphrase change
//     (the old passphrase opens it again, the fingerprint is the same);
//     a sealed record opened with Open (no version); a sealed record rolled
//     back together with the expected version the application keeps beside
//     it.
func TestAttack16VaultRecordRollback(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	u := mustCreate(t, v, "alice", "alice's old passphrase")
	before, err := store.GetVault(bg, "alice")
	if err != nil {
		t.Fatal(err)
	}
	putBack := func(data []byte) {
		t.Helper()
		cur, err := store.GetVault(bg, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutVault(bg, "alice", data, cur.Version); err != nil {
			t.Fatal(err)
		}
	}
	fp1, err := u.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}

	// Across a passphrase change: not caught.
	if err := v.ChangePassphrase(bg, "alice", []byte("alice's old passphrase"), []byte("alice's new passphrase")); err != nil {
		t.Fatal(err)
	}
	putBack(before.Data)
	back, err := v.Unlock(bg, "alice", []byte("alice's old passphrase"))
	if err != nil {
		t.Fatalf("NOT CAUGHT by design (SECURITY.md): the rolled-back vault record should open with the old passphrase: %v; if keyhold now catches this, update SECURITY.md and this test", err)
	}
	if fp, _ := back.Fingerprint(); fp != fp1 {
		t.Errorf("the same master key shows another fingerprint: %s, %s", fp, fp1)
	}

	// Across a rotation: records sealed since, and the fingerprint, catch it.
	rotated, _, err := v.RotateMasterKey(bg, "alice", []byte("alice's old passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	sealedAfter, err := rotated.Seal([]byte("written after the rotation"), []byte("notes/2/body"))
	if err != nil {
		t.Fatal(err)
	}
	putBack(before.Data)
	old, err := v.Unlock(bg, "alice", []byte("alice's old passphrase"))
	if err != nil {
		t.Fatalf("the rolled-back record: %v", err)
	}
	if _, err := old.Open(sealedAfter, []byte("notes/2/body")); !errors.Is(err, ErrDecrypt) {
		t.Errorf("a record sealed after the rotation opens under the rolled-back vault: %v, want ErrDecrypt", err)
	}
	fpRotated, _ := rotated.Fingerprint()
	if fpOld, _ := old.Fingerprint(); fpOld == fpRotated {
		t.Error("the vault rolled back across a rotation shows the rotated vault's fingerprint")
	}

	// Sealed records.
	rc := []byte("notes/7/body")
	v1, _ := rotated.SealVersion([]byte("first draft"), rc, 1)
	v2, _ := rotated.SealVersion([]byte("second draft"), rc, 2)
	if _, _, err := rotated.OpenVersion(v1, rc, 2); !errors.Is(err, ErrRollback) {
		t.Errorf("an older record where version 2 is expected: %v, want ErrRollback", err)
	}
	if pt, err := rotated.Open(v1, rc); err != nil || !bytes.Equal(pt, []byte("first draft")) {
		t.Errorf("NOT CAUGHT by design: Open (no version) reads the older record: %q, %v", pt, err)
	}
	if pt, _, err := rotated.OpenVersion(v1, rc, 1); err != nil || !bytes.Equal(pt, []byte("first draft")) {
		t.Errorf("NOT CAUGHT by design: with the expected version rolled back too (kept in the same database), the older record reads: %q, %v", pt, err)
	}
	if _, _, err := rotated.OpenVersion(v2, rc, 2); err != nil {
		t.Errorf("the current record: %v", err)
	}
}

// TestAttack16RecoveryKeyDoubleSpendForced: two unlocks with one vault
// recovery key, both having read the vault record before either writes
// (the store holds the reads until both have arrived): exactly one
// succeeds; the other gets ErrConflict and nothing, and the key is spent
// afterwards.
func TestAttack16RecoveryKeyDoubleSpendForced(t *testing.T) {
	t.Parallel()
	store := newPausingStore()
	v, err := New(store, Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	u := mustCreate(t, v, "alice", attack16Pass)
	keys, err := v.RegenerateRecoveryKeys(bg, u, 2)
	if err != nil {
		t.Fatal(err)
	}
	key := keys[0].Reveal()
	store.arm(2)
	var wg sync.WaitGroup
	var results [2]*Unlocked
	var errs [2]error
	for i := range 2 {
		wg.Go(func() { results[i], _, errs[i] = v.UnlockWithRecoveryKey(bg, "alice", key) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two unlocks with one recovery key: %v, %v; want exactly one to succeed", errs[0], errs[1])
	}
	for i, err := range errs {
		if err != nil && (!errors.Is(err, ErrConflict) || results[i] != nil) {
			t.Errorf("the loser: %v, %v; want ErrConflict and no Unlocked", results[i], err)
		}
	}
	if _, _, err := v.UnlockWithRecoveryKey(bg, "alice", key); !errors.Is(err, ErrUnlockFailed) {
		t.Errorf("the key after the race: %v, want ErrUnlockFailed (spent)", err)
	}
	if _, _, err := v.UnlockWithRecoveryKey(bg, "alice", keys[1].Reveal()); err != nil {
		t.Errorf("the other key: %v", err)
	}
}
