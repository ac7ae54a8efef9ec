package vault

import (
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// STO-06: Delete crypto-shreds the vault. A vault with every kind of way
// in (passphrase slot, recovery keys, a key wrapper) and two master-key
// versions (one retired by a rotation), with records sealed under both, is
// deleted: the store holds no record for the user, no passphrase,
// recovery key or wrapper opens anything (the unlock answers as for a user
// who never had a vault, after exactly the KDF work of a wrong
// passphrase), a second Delete is nil, and a vault created again under
// the same ID has a new master key that opens none of the old records.
func TestRequirementDeleteShredsVault(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	v, err := New(store, Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
	must.NoError(t, err)
	const pass = "alice's long passphrase"
	u1 := mustCreate(t, v, "alice", pass)
	old1, err := u1.Seal([]byte("sealed under key version 1"), []byte("notes/1"))
	must.NoError(t, err)
	kms := newTestKMS("kms-1")
	must.NoError(t, v.AddWrapperSlot(bg, u1, kms))
	u1.Lock()
	u2, _, err := v.RotateMasterKey(bg, "alice", []byte(pass), kms)
	must.NoError(t, err)
	keys, err := v.RegenerateRecoveryKeys(bg, u2, 2)
	must.NoError(t, err)
	old2, err := u2.Seal([]byte("sealed under key version 2"), []byte("notes/2"))
	must.NoError(t, err)
	u2.Lock()
	// Bob's vault is not touched.
	bob := mustCreate(t, v, "bob", "bob's long passphrase")
	bob.Lock()

	must.NoError(t, v.Delete(bg, "alice"))

	_, err = store.GetVault(bg, "alice")
	must.ErrorIs(t, err, storage.ErrNotFound, "the vault record must be gone from the store")
	_, err = store.GetVault(bg, "bob")
	must.NoError(t, err, "another user's vault must stay")

	// The passphrase: no vault, after the work of a wrong passphrase.
	c := countKDF(v)
	_, err = v.Unlock(bg, "alice", []byte("a wrong passphrase"))
	must.ErrorIs(t, err, ErrNoVault, "control: a wrong passphrase")
	wrong := c.take()
	_, err = v.Unlock(bg, "alice", []byte(pass))
	must.ErrorIs(t, err, ErrNoVault)
	must.ErrorIs(t, err, ErrUnlockFailed)
	runs := c.take()
	must.Len(t, runs, 1, "an unlock after Delete must cost one KDF run")
	must.Len(t, wrong, 1)
	must.Equal(t, wrong[0].String(), runs[0].String(), "the KDF run after Delete must be a wrong passphrase's")
	must.NoError(t, runs[0].err)
	for _, k := range keys {
		_, _, err = v.UnlockWithRecoveryKey(bg, "alice", k.Reveal())
		must.ErrorIs(t, err, ErrNoVault, "a recovery key after Delete")
	}
	_, err = v.UnlockWithWrapper(bg, "alice", kms)
	must.ErrorIs(t, err, ErrNoVault, "the key wrapper after Delete")
	_, _, err = v.RotateMasterKey(bg, "alice", []byte(pass), kms)
	must.ErrorIs(t, err, ErrNoVault)
	must.ErrorIs(t, v.ChangePassphrase(bg, "alice", []byte(pass), []byte("another long passphrase")), ErrNoVault)

	// Idempotent.
	must.NoError(t, v.Delete(bg, "alice"), "a second Delete")
	must.NoError(t, v.Delete(bg, "never-had-one"), "Delete of a user without a vault")

	// A new vault under the same ID is a new master key: the old records
	// stay unreadable, whatever their key version.
	u3 := mustCreate(t, v, "alice", pass)
	defer u3.Lock()
	for _, sealed := range [][]byte{old1, old2} {
		_, err := u3.Open(sealed, []byte("notes/1"))
		must.ErrorIs(t, err, ErrDecrypt)
		_, err = u3.Open(sealed, []byte("notes/2"))
		must.ErrorIs(t, err, ErrDecrypt)
	}
}

// STO-06: a change that read the vault before Delete cannot store it back
// after (forced: the passphrase change's second KDF run, between its read
// and its write, deletes the vault).
func TestDeleteRefusesChangeThatReadBefore(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	const pass = "alice's long passphrase"
	mustCreate(t, v, "alice", pass).Lock()
	c := countKDF(v)
	runs := 0
	c.before = func(ctx context.Context) {
		runs++
		if runs == 2 { // the new slot's KDF: the old record is read and opened
			must.NoError(t, v.Delete(ctx, "alice"))
		}
	}
	err := v.ChangePassphrase(bg, "alice", []byte(pass), []byte("another long passphrase"))
	must.ErrorIs(t, err, ErrConflict, "the change that read the vault before Delete")
	must.Equal(t, 2, runs, "the forced interleaving did not happen")
	_, err = store.GetVault(bg, "alice")
	must.ErrorIs(t, err, storage.ErrNotFound, "the deleted vault must not come back")
}

// raceDeleteStore changes the vault (one PutVault) just before each of the
// first n DeleteVault calls: a change that lands between Delete's read
// and its delete.
type raceDeleteStore struct {
	storage.VaultStore
	n       int
	deletes int
	failGet error
}

func (s *raceDeleteStore) GetVault(ctx context.Context, userID string) (storage.VaultRecord, error) {
	if s.failGet != nil {
		return storage.VaultRecord{}, s.failGet
	}
	return s.VaultStore.GetVault(ctx, userID)
}

func (s *raceDeleteStore) DeleteVault(ctx context.Context, userID string, expect uint64) error {
	s.deletes++
	if s.deletes <= s.n {
		rec, err := s.VaultStore.GetVault(ctx, userID)
		if err != nil {
			return err
		}
		if err := s.VaultStore.PutVault(ctx, userID, rec.Data, rec.Version); err != nil {
			return err
		}
	}
	return s.VaultStore.DeleteVault(ctx, userID, expect)
}

// Delete reads again after a change stored between its read and its
// delete, and still deletes; a vault that keeps changing ends in
// ErrConflict with the record in place (nothing half done); a store
// failure is an error, never success.
func TestDeleteAfterConcurrentChange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		changes int
		wantErr error
	}{
		{"one change", 1, nil},
		{"keeps changing", maxDeleteAttempts, ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := memstore.New()
			racing := &raceDeleteStore{VaultStore: mem, n: tc.changes}
			v, err := New(racing, Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
			must.NoError(t, err)
			mustCreate(t, v, "alice", "alice's long passphrase").Lock()
			err = v.Delete(bg, "alice")
			if tc.wantErr == nil {
				must.NoError(t, err)
				_, err = mem.GetVault(bg, "alice")
				must.ErrorIs(t, err, storage.ErrNotFound)
				return
			}
			must.ErrorIs(t, err, tc.wantErr)
			must.Equal(t, maxDeleteAttempts, racing.deletes)
			_, err = mem.GetVault(bg, "alice")
			must.NoError(t, err, "a refused Delete leaves the vault whole")
		})
	}

	t.Run("store fails", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("store down")
		v, err := New(&raceDeleteStore{VaultStore: memstore.New(), failGet: boom}, Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
		must.NoError(t, err)
		must.ErrorIs(t, v.Delete(bg, "alice"), boom)
	})

	t.Run("invalid input", func(t *testing.T) {
		t.Parallel()
		v, _ := newTestVault(t)
		must.ErrorIs(t, v.Delete(bg, ""), ErrInvalidInput)
		var nilVault *Vault
		must.ErrorIs(t, nilVault.Delete(bg, "alice"), ErrInvalidInput)
	})
}
