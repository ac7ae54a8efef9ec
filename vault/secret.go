package vault

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold"
)

// Labels of secret slots (FORMAT.md §3.2, kind 3).
const (
	labelSecretKEK    = "keyhold/v1/vault/secret-kek\x00"
	labelSecretSlotID = "keyhold/v1/vault/secret-slot-id\x00"
)

// Bounds of a secret slot's inputs.
const (
	// MinSecretLen is the shortest secret AddSecretSlot and
	// UnlockWithSecret take: 32 bytes, a passkey's PRF output.
	MinSecretLen = 32
	// MaxSecretLen is the longest secret they take.
	MaxSecretLen = 1024
	// MaxSecretIDLen is the longest ID of a secret slot: 1023 bytes, the
	// longest WebAuthn credential ID.
	MaxSecretIDLen = 1023
)

// secretSaltLen is the salt length of every secret slot.
const secretSaltLen = 16

// SecretSlotID returns the ID under which Slots lists, and RemoveSlot
// removes, the secret slot of id (AddSecretSlot's id, such as a WebAuthn
// credential ID): 32 hex digits, the first 16 bytes of
// SHA-256("keyhold/v1/vault/secret-slot-id" ‖ 0x00 ‖ id) (FORMAT.md §3.2).
// It fails with ErrInvalidInput when id is empty or longer than
// MaxSecretIDLen.
func SecretSlotID(id []byte) (string, error) {
	if err := checkSecretID(id); err != nil {
		return "", err
	}
	sid := secretSlotID(id)
	return hex.EncodeToString(sid[:]), nil
}

func checkSecretID(id []byte) error {
	if len(id) == 0 || len(id) > MaxSecretIDLen {
		return fmt.Errorf("%w: a secret slot's ID must be 1 to %d bytes", ErrInvalidInput, MaxSecretIDLen)
	}
	return nil
}

// checkSecret bounds a secret's length; the error says nothing of the
// secret but that its length is out of bounds.
func checkSecret(secret []byte) error {
	if len(secret) < MinSecretLen || len(secret) > MaxSecretLen {
		return fmt.Errorf("%w: a secret must be %d to %d bytes", ErrInvalidInput, MinSecretLen, MaxSecretLen)
	}
	return nil
}

// secretSlotID is the slot ID of a secret slot: the application's ID
// hashed, so that the slot stays 16 bytes whatever the ID's length.
func secretSlotID(id []byte) [slotIDLen]byte {
	h := sha256.New()
	h.Write([]byte(labelSecretSlotID))
	h.Write(id)
	var sid [slotIDLen]byte
	copy(sid[:], h.Sum(nil))
	return sid
}

// secretKEKInfo is HKDF's info for a secret slot's KEK:
// label ‖ 0x00 ‖ u16(len(user ID)) ‖ user ID ‖ id.
func secretKEKInfo(userID string, id []byte) []byte {
	b := make([]byte, 0, len(labelSecretKEK)+2+len(userID)+len(id))
	b = append(b, labelSecretKEK...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(userID)))
	b = append(b, userID...)
	return append(b, id...)
}

// secretKEK derives the key-encryption key of the secret slot of id.
func secretKEK(secret, salt []byte, userID string, id []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, salt, string(secretKEKInfo(userID, id)), 32)
}

// secretParams returns the slot's salt, or false if its params are not
// exactly u8 16 ‖ salt (16 bytes).
func secretParams(s *slot) ([]byte, bool) {
	if len(s.params) != 1+secretSaltLen || s.params[0] != secretSaltLen {
		return nil, false
	}
	return s.params[1:], true
}

// trySecretSlot is the work of one secret unlock attempt, real or dummy:
// one HKDF and one AES-GCM open of s.wrapped. The caller owns and wipes
// the master key it returns.
func trySecretSlot(userID string, id, secret []byte, s *slot) ([]byte, error) {
	salt, ok := secretParams(s)
	if !ok {
		return nil, ErrUnlockFailed
	}
	kek, err := secretKEK(secret, salt, userID, id)
	if err != nil {
		return nil, ErrUnlockFailed
	}
	defer clear(kek)
	return unwrapKey(kek, s.wrapped, slotAAD(userID, s))
}

func newSecretSlot(userID string, keyVersion uint32, mk, id, secret []byte) (slot, error) {
	salt := make([]byte, secretSaltLen)
	rand.Read(salt)
	s := slot{kind: SlotSecret, id: secretSlotID(id), keyVersion: keyVersion, params: append([]byte{secretSaltLen}, salt...)}
	kek, err := secretKEK(secret, salt, userID, id)
	if err != nil {
		return slot{}, fmt.Errorf("vault: deriving a secret slot's key: %w", ErrInvalidInput)
	}
	defer clear(kek)
	if s.wrapped, err = wrapKey(kek, mk, slotAAD(userID, &s)); err != nil {
		return slot{}, err
	}
	return s, nil
}

// AddSecretSlot adds a slot that secret unlocks, or replaces the secret
// slot of the same id. It is made for a passkey's PRF output: id is the
// WebAuthn credential ID (1 to MaxSecretIDLen bytes) and secret the PRF
// output for that credential (MinSecretLen to MaxSecretLen bytes, refused
// with ErrInvalidInput otherwise). The secret must be high-entropy key
// material, never a passphrase: it goes through HKDF, not a slow KDF.
//
// The key-encryption key is HKDF-SHA256 of the secret with a random salt
// of the slot and an info that binds the user and id, so one credential's
// secret opens no other credential's slot, and no other user's (FORMAT.md
// §3.2, kind 3). The vault keeps neither id nor secret: the slot's ID is
// SecretSlotID(id), which is what Slots lists, RemoveSlot takes and the
// Notifier's keyhold.KeySlotAdded event carries as Detail.
//
// u must be the user's unlocked vault at its current key version. The
// slot survives ChangePassphrase and RegenerateRecoveryKeys;
// RotateMasterKey drops it (the secret is not at hand then: add it again
// the next time the user presents the passkey), and ResetDestroyingData
// and Delete remove it with everything else.
func (v *Vault) AddSecretSlot(ctx context.Context, u *Unlocked, id, secret []byte) error {
	if v == nil {
		return errNilVault
	}
	if u == nil {
		return errNilUnlocked
	}
	if err := checkSecretID(id); err != nil {
		return err
	}
	if err := checkSecret(secret); err != nil {
		return err
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
	s, err := newSecretSlot(u.userID, r.keyVersion, mk, id, secret)
	if err != nil {
		return err
	}
	kept := r.slots[:0]
	for _, old := range r.slots {
		if old.kind != SlotSecret || old.id != s.id {
			kept = append(kept, old)
		}
	}
	if len(kept) >= maxSlots {
		return fmt.Errorf("%w: the vault has %d slots", ErrInvalidInput, len(kept))
	}
	r.slots = append(kept, s)
	if err := v.save(ctx, u.userID, r, version); err != nil {
		return err
	}
	v.notify(ctx, keyhold.KeySlotAdded, u.userID, hex.EncodeToString(s.id[:]))
	return nil
}

// UnlockWithSecret opens the user's vault through the secret slot of id
// (see AddSecretSlot). A wrong secret, an id without a slot, a slot of
// another user or another id, a tampered or malformed record and a user
// without a vault all return an error matching ErrUnlockFailed (for a user
// without a vault it also matches ErrNoVault; its text is the same), after
// the same work: one HKDF and one failing AES-GCM open, against a dummy
// slot where there is none. An id or secret out of bounds is
// ErrInvalidInput, before any work; the store's errors pass through.
//
// Like Unlock it counts nothing: put it behind the account's
// ratelimit.Lockout like every other way in.
func (v *Vault) UnlockWithSecret(ctx context.Context, userID string, id, secret []byte) (*Unlocked, error) {
	if v == nil {
		return nil, errNilVault
	}
	if err := checkSecretID(id); err != nil {
		return nil, err
	}
	if err := checkSecret(secret); err != nil {
		return nil, err
	}
	r, _, err := v.load(ctx, userID)
	fail := ErrUnlockFailed
	switch {
	case errors.Is(err, ErrNoVault):
		r, fail = nil, errNoVaultUnlock
	case errors.Is(err, ErrUnlockFailed): // a malformed record
		r = nil
	case err != nil:
		return nil, err
	}
	sid := secretSlotID(id)
	if r != nil {
		for i := range r.slots {
			s := &r.slots[i]
			if s.kind != SlotSecret || s.keyVersion != r.keyVersion || s.id != sid {
				continue
			}
			if _, ok := secretParams(s); !ok {
				break // malformed: the dummy's work below
			}
			mk, err := v.trySecret(userID, id, secret, s)
			if err != nil {
				return nil, ErrUnlockFailed
			}
			return unlocked(userID, r, mk)
		}
	}
	// No usable slot: the same work against a dummy slot of the same
	// shape, which no key opens.
	var keyVersion uint32 = 1
	if r != nil {
		keyVersion = r.keyVersion
	}
	salt := make([]byte, secretSaltLen)
	rand.Read(salt)
	dummy := slot{kind: SlotSecret, id: sid, keyVersion: keyVersion, params: append([]byte{secretSaltLen}, salt...), wrapped: v.dummyWrapped}
	if mk, err := v.trySecret(userID, id, secret, &dummy); err == nil {
		clear(mk) // cannot happen: no KEK opens a random wrap
	}
	return nil, fail
}
