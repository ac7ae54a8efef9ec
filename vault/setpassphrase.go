package vault

import (
	"context"
	"fmt"

	"github.com/keyhold/keyhold"
)

// SetPassphrase gives the vault that u holds open a new passphrase without
// the old one: it wraps u's master key under a key derived from
// newPassphrase, with a fresh salt and the Vault's current KDF parameters,
// and stores it as the vault's passphrase slot (replacing the one there,
// or adding one if there is none) in one compare-and-swap write. No record
// is re-encrypted; recovery, secret and wrapper slots are kept. The
// Notifier hears keyhold.PassphraseChanged, as for ChangePassphrase.
//
// It is for recovery after a lost passphrase: the user opened the vault
// another way (UnlockWithRecoveryKey, UnlockWithSecret with a passkey's
// PRF output) and chooses a new passphrase. Whoever holds an Unlocked
// value can set the passphrase with it, so call it only for a user the
// application has just authenticated strongly (the recovery key or
// passkey that opened the vault, and the second factor the account has),
// check newPassphrase against a kdf.Policy first (SetPassphrase checks
// only that it is 1 byte or more, valid UTF-8 and within the Hasher's
// length limit; the KDF runs over its NFKC form, as for Unlock), and tell
// the user. Where the user knows the current passphrase, ChangePassphrase
// is the call: it proves that knowledge.
//
// What it does not do: it does not count or check anything of the user's
// (put the way that opened the vault behind the account's lockout); it
// does not revoke someone who copied the vault record earlier, who can
// still open that copy with the old passphrase (RotateMasterKey does);
// it does not end the application's other sessions, which may hold the
// master key (end them); and it sets no login password.
//
// u must be unlocked and at the vault's current key version: a u whose
// version a rotation (or ResetDestroyingData) retired, or any change
// stored between SetPassphrase's own read of the vault and its write,
// gives ErrConflict and writes nothing (unlock again and retry). A change
// stored before that read, after u was unlocked (a ChangePassphrase, say),
// is not detected: the new passphrase replaces it. Nor does SetPassphrase
// check that u's master key is the stored vault's: a u of a vault since
// deleted and made again under the same user ID, at the same key version,
// writes a slot that opens the old key, not the vault's. Call it right
// after the unlock that proved the user, or where the application knows
// the vault has not changed since. A nil u is ErrInvalidInput, a locked one
// ErrLocked; an empty passphrase is ErrInvalidInput and one the KDF
// refuses (kdf.ErrTooLong, kdf.ErrInvalidUTF8, kdf.ErrBusy, ctx's error)
// passes through typed, all before any write. As with ChangePassphrase,
// a write whose reply is lost may or may not have committed: keep the new
// passphrase until the call returns, and on restart try both.
func (v *Vault) SetPassphrase(ctx context.Context, u *Unlocked, newPassphrase []byte) error {
	if v == nil {
		return errNilVault
	}
	if u == nil {
		return errNilUnlocked
	}
	if len(newPassphrase) == 0 {
		return fmt.Errorf("%w: empty passphrase", ErrInvalidInput)
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
	s, err := v.newPassphraseSlot(ctx, u.userID, r.keyVersion, mk, newPassphrase)
	if err != nil {
		return err
	}
	// Every passphrase slot goes, whatever its version (only the current
	// version's can unlock): the vault keeps exactly one, the new one,
	// first, where Create and RotateMasterKey put it.
	kept := []slot{s}
	for _, old := range r.slots {
		if old.kind != SlotPassphrase {
			kept = append(kept, old)
		}
	}
	r.slots = kept
	if err := v.save(ctx, u.userID, r, version); err != nil {
		return err
	}
	v.notify(ctx, keyhold.PassphraseChanged, u.userID, "")
	return nil
}
