package vault

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/keyhold/keyhold"
)

// RotateMasterKey gives the user a new master key (version + 1), on
// suspicion that the old one, or an old copy of the vault record, is
// known to someone else. In one compare-and-swap write it:
//
//   - makes a new random master key;
//   - wraps it in a new passphrase slot (fresh salt, the Vault's current
//     KDF parameters) from passphrase, which must be the current one;
//   - replaces every recovery slot with a new one and returns the new
//     recovery keys (the old ones stop working: show the new ones to the
//     user);
//   - keeps the old master keys decrypt-only, sealed under the new one,
//     so every existing record still opens.
//
// Then re-seal the application's records with [Unlocked.ReencryptAll] (or
// [Unlocked.Reseal] record by record) and, once every record is at the
// new version, call [Vault.DestroyRetiredKeys]. An interruption at any
// point loses nothing: before the write the old record stands, after it
// both versions open, and each re-sealed record is replaced whole.
//
// Someone holding an old copy of the vault record and the old passphrase
// can open only records still sealed under the old key: after the walk and
// DestroyRetiredKeys, none are.
//
// Wrapper slots are re-wrapped through the KeyWrapper of the same ID in
// wrappers; rotation refuses to start if one is missing, rather than drop
// a way in silently.
//
// Secret slots (AddSecretSlot: a passkey's PRF output) cannot be
// re-wrapped, since their secrets are not at hand, and are dropped: the
// passkey no longer unlocks the vault until the application adds its
// slot again (AddSecretSlot with the new Unlocked value, the next time
// the user presents the passkey). Each dropped slot is reported to the
// Notifier as keyhold.KeySlotRemoved with its slot ID, after
// keyhold.MasterKeyRotated; list the slots before rotating to know which.
func (v *Vault) RotateMasterKey(ctx context.Context, userID string, passphrase []byte, wrappers ...KeyWrapper) (_ *Unlocked, _ []RecoveryKey, err error) {
	if v == nil {
		return nil, nil, errNilVault
	}
	r, version, oldMK, _, err := v.openPassphrase(ctx, userID, passphrase)
	if err != nil {
		return nil, nil, err
	}
	defer clear(oldMK)
	retired, err := openRetired(userID, r, oldMK)
	if err != nil {
		return nil, nil, err
	}
	mk := make([]byte, masterKeyLen)
	rand.Read(mk)
	// On every error path, wipe the new master key and the old ones
	// (opened from the record, and the copy of oldMK made below); on
	// success the Unlocked value owns them.
	defer func() {
		if err != nil {
			clear(mk)
			clearAll(retired)
		}
		if hookRotateKeys != nil {
			hookRotateKeys(mk, retired)
		}
	}()
	if retired == nil {
		retired = make(map[uint32][]byte, 1)
	}
	if len(retired)+1 > maxRetired {
		return nil, nil, fmt.Errorf("%w: %d retired keys still held; destroy them before rotating again", ErrInvalidInput, len(retired))
	}
	retired[r.keyVersion] = append([]byte(nil), oldMK...)

	next := &record{keyVersion: r.keyVersion + 1}
	ps, err := v.newPassphraseSlot(ctx, userID, next.keyVersion, mk, passphrase)
	if err != nil {
		return nil, nil, err
	}
	next.slots = []slot{ps}
	byID := make(map[string]KeyWrapper, len(wrappers))
	for _, w := range wrappers {
		byID[w.ID()] = w
	}
	var keys []RecoveryKey
	var dropped []string
	for _, s := range r.slots {
		switch s.kind {
		case SlotSecret:
			dropped = append(dropped, hex.EncodeToString(s.id[:]))
		case SlotRecovery:
			rs, key, err := newRecoverySlot(userID, next.keyVersion, mk)
			if err != nil {
				return nil, nil, err
			}
			next.slots = append(next.slots, rs)
			keys = append(keys, key)
		case SlotWrapper:
			w, ok := byID[wrapperIDOf(&s)]
			if !ok {
				return nil, nil, fmt.Errorf("%w: pass the KeyWrapper %q to re-wrap its slot", ErrInvalidInput, wrapperIDOf(&s))
			}
			ws, err := newWrapperSlot(ctx, userID, next.keyVersion, mk, w)
			if err != nil {
				return nil, nil, err
			}
			next.slots = append(next.slots, ws)
		}
	}
	if next.retired, err = sealRetired(userID, next.keyVersion, mk, retired); err != nil {
		return nil, nil, err
	}
	if err := v.save(ctx, userID, next, version); err != nil {
		return nil, nil, err
	}
	v.notify(ctx, keyhold.MasterKeyRotated, userID, "")
	for _, id := range dropped {
		v.notify(ctx, keyhold.KeySlotRemoved, userID, id)
	}
	return newUnlocked(userID, next.keyVersion, mk, retired), keys, nil
}

// hookRotateKeys, when a test sets it, sees the keys RotateMasterKey made
// or opened (the new master key and the retired ones) as it returns.
var hookRotateKeys func(mk []byte, retired map[uint32][]byte)

// sealRetired seals each retired key under the current master key, in
// version order.
func sealRetired(userID string, current uint32, mk []byte, retired map[uint32][]byte) ([]retiredKey, error) {
	kek, err := retiredKEK(mk)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	versions := make([]uint32, 0, len(retired))
	for v := range retired {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	out := make([]retiredKey, 0, len(versions))
	for _, ver := range versions {
		sealed, err := wrapKey(kek, retired[ver], retiredAAD(userID, current, ver))
		if err != nil {
			return nil, err
		}
		out = append(out, retiredKey{version: ver, sealed: sealed})
	}
	return out, nil
}

// DestroyRetiredKeys removes every retired master key from the user's
// vault, for good: records still sealed under them can never be opened
// again. Call it after [Unlocked.ReencryptAll] reported every record at
// the current version. u must be the user's vault at its current version;
// it stops opening records of the destroyed versions at once.
func (v *Vault) DestroyRetiredKeys(ctx context.Context, u *Unlocked) error {
	if v == nil {
		return errNilVault
	}
	if u == nil {
		return errNilUnlocked
	}
	r, version, err := v.load(ctx, u.userID)
	if err != nil {
		return err
	}
	if r.keyVersion != u.version {
		return ErrConflict
	}
	if err := u.checkUnlocked(); err != nil {
		return err
	}
	if len(r.retired) == 0 {
		return nil
	}
	r.retired = nil
	if err := v.save(ctx, u.userID, r, version); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mk == nil {
		return ErrLocked
	}
	for ver, k := range u.retired {
		clear(k)
		delete(u.retired, ver)
	}
	if keys := u.recordKeys.Load(); keys != nil {
		u.recordKeys.Store(&recordKeys{current: keys.current, byVersion: map[uint32]cipher.AEAD{u.version: keys.current}})
	}
	return nil
}

// Reseal returns sealed re-encrypted under the current master key, and
// changed=true, if it was sealed under a retired one; a record already at
// the current version comes back unchanged with changed=false. It keeps
// the record's format and record version: a record made by SealVersion
// is re-sealed with the same version, so OpenVersion still refuses an
// older one after a rotation. It fails with ErrDecrypt like Open. The
// plaintext it handles is wiped before it returns.
func (u *Unlocked) Reseal(sealed, context []byte) (out []byte, changed bool, err error) {
	if u == nil {
		return nil, false, errNilUnlocked
	}
	pt, versioned, version, err := u.open(sealed, context)
	if err != nil {
		return nil, false, err
	}
	defer clear(pt)
	if hookResealPlaintext != nil {
		hookResealPlaintext(pt)
	}
	if binary.BigEndian.Uint32(sealed[2:]) == u.version {
		return sealed, false, nil
	}
	out, err = u.seal(pt, context, versioned, version)
	return out, err == nil, err
}

// hookResealPlaintext, when a test sets it, sees the plaintext Reseal
// decrypted, to check that it is wiped.
var hookResealPlaintext func(pt []byte)

// A StoredRecord is one of the application's sealed records, as a
// [RecordSource] hands it to [Unlocked.ReencryptAll].
type StoredRecord struct {
	// Key identifies the record to the application (a primary key).
	Key string
	// Context is the context it was sealed with.
	Context []byte
	// Sealed is the record as stored.
	Sealed []byte
}

// A RecordSource lets ReencryptAll walk the application's records of one
// user, in a stable order, in batches.
type RecordSource interface {
	// Next returns the records after cursor ("" for the start) and the
	// cursor to continue from; an empty batch means the walk is done.
	Next(ctx context.Context, cursor string) (batch []StoredRecord, next string, err error)
	// Replace stores resealed in place of r, atomically for that record
	// (for example UPDATE … WHERE key = r.Key AND sealed = r.Sealed, so
	// that a concurrent change is not overwritten).
	Replace(ctx context.Context, r StoredRecord, resealed []byte) error
}

// ReencryptProgress reports how far a walk has come.
type ReencryptProgress struct {
	// Seen counts the records read, Resealed those re-encrypted.
	Seen, Resealed int
	// Cursor is where to resume: pass it to ReencryptAll after an
	// interruption. The walk is also idempotent: records already at the
	// current version are skipped, so restarting from "" is safe.
	Cursor string
}

// ReencryptAll walks src from cursor, re-sealing every record still under
// a retired key version, and calls progress (if not nil) after each batch.
// It stops at the first error, returning the progress so far; nothing is
// lost on an interruption, since each record is replaced whole. When it
// returns nil, every record src listed is at the current version.
func (u *Unlocked) ReencryptAll(ctx context.Context, src RecordSource, cursor string, progress func(ReencryptProgress)) (ReencryptProgress, error) {
	if u == nil {
		return ReencryptProgress{}, errNilUnlocked
	}
	p := ReencryptProgress{Cursor: cursor}
	for {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		batch, next, err := src.Next(ctx, p.Cursor)
		if err != nil {
			return p, fmt.Errorf("vault: reading records: %w", err)
		}
		if len(batch) == 0 {
			return p, nil
		}
		for _, r := range batch {
			out, changed, err := u.Reseal(r.Sealed, r.Context)
			if err != nil {
				return p, fmt.Errorf("vault: record %q: %w", r.Key, err)
			}
			if changed {
				if err := src.Replace(ctx, r, out); err != nil {
					return p, fmt.Errorf("vault: replacing record %q: %w", r.Key, err)
				}
				p.Resealed++
			}
			p.Seen++
		}
		p.Cursor = next
		if progress != nil {
			progress(p)
		}
	}
}
