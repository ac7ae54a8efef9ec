package vault

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold"
)

// A KeyWrapper protects a master key with a key the application holds
// elsewhere: a KMS, an OS keychain, an HSM. A wrapper slot lets the
// application (not the user) unlock the vault, for example for a
// background job; add one only where that is what you want.
//
// Wrap must be authenticated encryption that binds aad (AES-GCM with aad
// as associated data, a KMS Encrypt call with aad as encryption context),
// and Unwrap must fail when wrapped or aad differ: the vault relies on it
// to refuse a slot moved to another user or edited.
type KeyWrapper interface {
	// ID names the wrapper; it is stored in the slot (1 to 64 bytes) so
	// that UnlockWithWrapper finds the slot.
	ID() string
	// Wrap encrypts key with aad bound, returning at most 4096 bytes.
	Wrap(ctx context.Context, key, aad []byte) ([]byte, error)
	// Unwrap reverses Wrap.
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

const maxWrapperIDLen = 64

// SlotInfo describes a key slot without anything secret.
type SlotInfo struct {
	// ID identifies the slot (32 hex digits), for RemoveSlot. A secret
	// slot's ID is SecretSlotID of the ID it was added with.
	ID string
	// Kind says what unlocks it.
	Kind SlotKind
	// KeyVersion is the master-key version it wraps.
	KeyVersion uint32
	// WrapperID is the KeyWrapper's ID, for wrapper slots.
	WrapperID string
}

// Slots lists the user's key slots.
func (v *Vault) Slots(ctx context.Context, userID string) ([]SlotInfo, error) {
	if v == nil {
		return nil, errNilVault
	}
	r, _, err := v.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]SlotInfo, len(r.slots))
	for i, s := range r.slots {
		out[i] = SlotInfo{ID: hex.EncodeToString(s.id[:]), Kind: s.kind, KeyVersion: s.keyVersion}
		if s.kind == SlotWrapper {
			out[i].WrapperID = wrapperIDOf(&s)
		}
	}
	return out, nil
}

// wrapperIDOf returns the wrapper ID in a wrapper slot's params (u8 length
// ‖ ID), or "" if they are malformed.
func wrapperIDOf(s *slot) string {
	if len(s.params) < 2 || int(s.params[0]) != len(s.params)-1 {
		return ""
	}
	return string(s.params[1:])
}

func newWrapperSlot(ctx context.Context, userID string, keyVersion uint32, mk []byte, w KeyWrapper) (slot, error) {
	id := w.ID()
	if id == "" || len(id) > maxWrapperIDLen {
		return slot{}, fmt.Errorf("%w: wrapper ID must be 1 to %d bytes", ErrInvalidInput, maxWrapperIDLen)
	}
	s := slot{kind: SlotWrapper, id: newSlotID(), keyVersion: keyVersion, params: append([]byte{byte(len(id))}, id...)}
	wrapped, err := w.Wrap(ctx, mk, slotAAD(userID, &s))
	if err != nil {
		return slot{}, fmt.Errorf("vault: key wrapper %q: %w", id, err)
	}
	if len(wrapped) == 0 || len(wrapped) > maxWrapped {
		return slot{}, fmt.Errorf("%w: key wrapper returned %d bytes", ErrInvalidInput, len(wrapped))
	}
	s.wrapped = wrapped
	return s, nil
}

// AddWrapperSlot adds a slot that w unlocks, or replaces the slot of a
// wrapper with the same ID. u must be the user's unlocked vault at its
// current key version.
func (v *Vault) AddWrapperSlot(ctx context.Context, u *Unlocked, w KeyWrapper) error {
	if v == nil {
		return errNilVault
	}
	if u == nil {
		return errNilUnlocked
	}
	mk, err := u.masterKey()
	if err != nil {
		return err
	}
	defer clear(mk)
	r, version, err := v.load(ctx, u.userID)
	if err != nil {
		return err
	}
	if r.keyVersion != u.version {
		return ErrConflict
	}
	if len(r.slots) >= maxSlots {
		return fmt.Errorf("%w: the vault has %d slots", ErrInvalidInput, len(r.slots))
	}
	s, err := newWrapperSlot(ctx, u.userID, r.keyVersion, mk, w)
	if err != nil {
		return err
	}
	kept := r.slots[:0]
	for _, old := range r.slots {
		if old.kind != SlotWrapper || wrapperIDOf(&old) != w.ID() {
			kept = append(kept, old)
		}
	}
	r.slots = append(kept, s)
	if err := v.save(ctx, u.userID, r, version); err != nil {
		return err
	}
	v.notify(ctx, keyhold.KeySlotAdded, u.userID, w.ID())
	return nil
}

// UnlockWithWrapper opens the vault through the slot of w's ID. Every
// failure (no such slot, the wrapper refusing, a wrong key) is
// ErrUnlockFailed; for a user without a vault the error matches both
// ErrUnlockFailed and ErrNoVault. The context ending during the wrapper's
// call is not a failure to unlock: that error matches context.Canceled or
// context.DeadlineExceeded, never ErrUnlockFailed.
func (v *Vault) UnlockWithWrapper(ctx context.Context, userID string, w KeyWrapper) (*Unlocked, error) {
	if v == nil {
		return nil, errNilVault
	}
	r, _, err := v.load(ctx, userID)
	if errors.Is(err, ErrNoVault) {
		return nil, errNoVaultUnlock
	}
	if err != nil {
		return nil, err
	}
	for i := range r.slots {
		s := &r.slots[i]
		if s.kind != SlotWrapper || s.keyVersion != r.keyVersion || wrapperIDOf(s) != w.ID() {
			continue
		}
		mk, err := w.Unwrap(ctx, s.wrapped, slotAAD(userID, s))
		if err != nil || len(mk) != masterKeyLen {
			clear(mk)
			if cerr := ctx.Err(); cerr != nil {
				return nil, fmt.Errorf("vault: key wrapper %q: %w", w.ID(), cerr)
			}
			// The wrapper's own timeout: its sentinel only, not its text.
			for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
				if errors.Is(err, c) {
					return nil, fmt.Errorf("vault: key wrapper %q: %w", w.ID(), c)
				}
			}
			return nil, ErrUnlockFailed
		}
		return unlocked(userID, r, mk)
	}
	return nil, ErrUnlockFailed
}

// RemoveSlot removes a recovery, secret or wrapper slot by its ID (from
// Slots; for a secret slot, SecretSlotID of its ID), at once. The
// passphrase slot cannot be removed (change it with ChangePassphrase), so
// a vault always keeps a way in. u must be the user's unlocked vault:
// removing a way in needs the key.
func (v *Vault) RemoveSlot(ctx context.Context, u *Unlocked, slotID string) error {
	if v == nil {
		return errNilVault
	}
	if u == nil {
		return errNilUnlocked
	}
	if err := u.checkUnlocked(); err != nil {
		return err
	}
	r, version, err := v.load(ctx, u.userID)
	if err != nil {
		return err
	}
	if r.keyVersion != u.version {
		return ErrConflict
	}
	for i, s := range r.slots {
		if hex.EncodeToString(s.id[:]) != slotID {
			continue
		}
		if s.kind == SlotPassphrase {
			return fmt.Errorf("%w: the passphrase slot cannot be removed", ErrInvalidInput)
		}
		r.slots = append(r.slots[:i], r.slots[i+1:]...)
		if err := v.save(ctx, u.userID, r, version); err != nil {
			return err
		}
		v.notify(ctx, keyhold.KeySlotRemoved, u.userID, slotID)
		return nil
	}
	return fmt.Errorf("%w: no slot %q", ErrInvalidInput, slotID)
}
