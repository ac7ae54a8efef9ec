package vault

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage"
)

// Config configures a Vault. The zero value is valid.
type Config struct {
	// Hasher derives key-encryption keys from passphrases, behind its
	// Gate and within its Limits. Nil selects kdf.New(kdf.Config{}); share
	// the Hasher (or at least its Gate) with the login path.
	Hasher *kdf.Hasher
	// KDF are the parameters of new passphrase slots. Zero selects
	// kdf.SensitiveParams() (Argon2id, 64 MiB, t=3, p=4);
	// kdf.PBKDF2SHA256Params() suits clients that derive the key in a
	// browser with WebCrypto. Parameters below the kdf floors are refused.
	KDF kdf.Params
	// Notifier, if set, hears of every change to a user's ways in, once
	// each, after it is stored: keyhold.PassphraseChanged,
	// RecoveryKeyUsed, RecoveryKeysRegenerated, MasterKeyRotated,
	// VaultReset, KeySlotAdded and KeySlotRemoved (see keyhold.Notifier:
	// it must return quickly, and cannot fail the change).
	Notifier keyhold.Notifier
}

// Vault manages users' vault records in a storage.VaultStore: it creates
// them, unlocks them and changes their key slots. It holds no key of its
// own and is safe for concurrent use.
type Vault struct {
	store  storage.VaultStore
	hasher *kdf.Hasher
	params kdf.Params
	// derive is hasher.DeriveKey: every passphrase KDF run of the Vault,
	// real or dummy, goes through it, so tests can count the runs and
	// their parameters.
	derive func(ctx context.Context, passphrase, salt []byte, p kdf.Params) ([]byte, error)
	// dummyWrapped is a random wrapped key that no KEK opens: the dummy
	// unlock's AES-GCM open fails on it as a wrong passphrase's does.
	dummyWrapped []byte
	notifier     keyhold.Notifier
	// trySecret is trySecretSlot: every secret unlock attempt, real or
	// dummy, goes through it, so tests can count the attempts.
	trySecret func(userID string, id, secret []byte, s *slot) ([]byte, error)
}

// New returns a Vault over store.
func New(store storage.VaultStore, cfg Config) (*Vault, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidInput)
	}
	v := &Vault{store: store, hasher: cfg.Hasher, params: cfg.KDF, notifier: cfg.Notifier}
	if v.params == (kdf.Params{}) {
		v.params = kdf.SensitiveParams()
	}
	v.params.KeyLen = masterKeyLen
	if err := v.params.Validate(); err != nil {
		return nil, fmt.Errorf("vault: KDF parameters: %w", err)
	}
	if v.hasher == nil {
		var err error
		if v.hasher, err = kdf.New(kdf.Config{}); err != nil {
			return nil, err
		}
	}
	v.derive = v.hasher.DeriveKey
	v.trySecret = trySecretSlot
	v.dummyWrapped = make([]byte, wrappedKeyLen)
	rand.Read(v.dummyWrapped)
	return v, nil
}

// Config returns the resolved configuration.
func (v *Vault) Config() Config {
	if v == nil {
		return Config{}
	}
	return Config{Hasher: v.hasher, KDF: v.params, Notifier: v.notifier}
}

func checkUserID(userID string) error {
	if userID == "" || len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("%w: user ID must be 1 to %d bytes", ErrInvalidInput, storage.MaxUserIDLen)
	}
	return nil
}

// Create makes a new vault for userID: a fresh random 256-bit master key
// (independent of the passphrase) in one passphrase slot. It returns the
// vault unlocked, or ErrExists if the user has one already.
//
// Create does not check the passphrase against a policy; check it with a
// kdf.Policy first.
func (v *Vault) Create(ctx context.Context, userID string, passphrase []byte) (*Unlocked, error) {
	if v == nil {
		return nil, errNilVault
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	mk := make([]byte, masterKeyLen)
	rand.Read(mk)
	r := &record{keyVersion: 1}
	s, err := v.newPassphraseSlot(ctx, userID, r.keyVersion, mk, passphrase)
	if err != nil {
		clear(mk)
		return nil, err
	}
	r.slots = []slot{s}
	if err := v.store.PutVault(ctx, userID, r.encode(), 0); err != nil {
		clear(mk)
		if errors.Is(err, storage.ErrConflict) {
			return nil, ErrExists
		}
		return nil, fmt.Errorf("vault: storing: %w", err)
	}
	return newUnlocked(userID, r.keyVersion, mk, nil), nil
}

// unlocked opens r's retired keys with mk and returns the Unlocked value;
// it takes ownership of mk.
func unlocked(userID string, r *record, mk []byte) (*Unlocked, error) {
	retired, err := openRetired(userID, r, mk)
	if err != nil {
		clear(mk)
		return nil, err
	}
	return newUnlocked(userID, r.keyVersion, mk, retired), nil
}

// noVaultError is what an unlock path answers when the user has no vault,
// after the work a wrong passphrase costs: it matches both ErrUnlockFailed
// and ErrNoVault with errors.Is, and its text is ErrUnlockFailed's, so
// that neither the time, nor the error an application counts as a wrong
// passphrase, nor a logged or echoed message tells the two apart.
type noVaultError struct{}

func (noVaultError) Error() string { return ErrUnlockFailed.Error() }

// Is makes the error match ErrUnlockFailed and ErrNoVault.
func (noVaultError) Is(target error) bool { return target == ErrUnlockFailed || target == ErrNoVault }

// errNoVaultUnlock is the one noVaultError.
var errNoVaultUnlock error = noVaultError{}

// retiredKEK derives the key that seals retired master keys.
func retiredKEK(mk []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, mk, nil, labelRetiredKEK, 32)
}

func openRetired(userID string, r *record, mk []byte) (map[uint32][]byte, error) {
	if len(r.retired) == 0 {
		return nil, nil
	}
	kek, err := retiredKEK(mk)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	out := make(map[uint32][]byte, len(r.retired))
	for _, k := range r.retired {
		old, err := unwrapKey(kek, k.sealed, retiredAAD(userID, r.keyVersion, k.version))
		if err != nil {
			clearAll(out) // the keys opened before this one
			return nil, err
		}
		out[k.version] = old
	}
	return out, nil
}

// load reads and decodes the user's record.
func (v *Vault) load(ctx context.Context, userID string) (*record, uint64, error) {
	if err := checkUserID(userID); err != nil {
		return nil, 0, err
	}
	rec, err := v.store.GetVault(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, 0, ErrNoVault
	}
	if err != nil {
		return nil, 0, fmt.Errorf("vault: loading: %w", err)
	}
	r, err := decodeRecord(rec.Data)
	if err != nil {
		return nil, 0, err
	}
	return r, rec.Version, nil
}

// save stores r with compare-and-swap against version.
func (v *Vault) save(ctx context.Context, userID string, r *record, version uint64) error {
	// A record the decoder would refuse would lock the user out for good:
	// never store one.
	if len(r.slots) == 0 || len(r.slots) > maxSlots {
		return fmt.Errorf("%w: a vault holds 1 to %d slots, not %d", ErrInvalidInput, maxSlots, len(r.slots))
	}
	err := v.store.PutVault(ctx, userID, r.encode(), version)
	if errors.Is(err, storage.ErrConflict) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("vault: storing: %w", err)
	}
	return nil
}

func newSlotID() [slotIDLen]byte {
	var id [slotIDLen]byte
	rand.Read(id[:])
	return id
}

func (v *Vault) newPassphraseSlot(ctx context.Context, userID string, keyVersion uint32, mk, passphrase []byte) (slot, error) {
	salt := make([]byte, v.params.SaltLen)
	rand.Read(salt)
	s := slot{kind: SlotPassphrase, id: newSlotID(), keyVersion: keyVersion, params: encodePassphraseParams(v.params, salt)}
	kek, err := v.derive(ctx, passphrase, salt, v.params)
	if err != nil {
		return slot{}, deriveError(err)
	}
	defer clear(kek)
	if s.wrapped, err = wrapKey(kek, mk, slotAAD(userID, &s)); err != nil {
		return slot{}, err
	}
	return s, nil
}

// deriveError wraps an error of the KDF. It is never ErrUnlockFailed: a
// passphrase the KDF refuses before any work (kdf.ErrTooLong,
// kdf.ErrInvalidUTF8), a parameter refusal (kdf.ErrParamsOutOfBounds,
// *kdf.ParamsError: a stored slot beyond the Hasher's Limits or the Gate's
// budget), a gate refusal (kdf.ErrBusy) and the caller's context ending
// (context.Canceled, context.DeadlineExceeded) all pass through, typed, so
// that an application does not count them as a wrong passphrase.
func deriveError(err error) error {
	return fmt.Errorf("vault: deriving key: %w", err)
}

// dummyUnlock spends the work of a passphrase unlock that fails at the
// unwrap, where there is no slot to try: one KDF run through v.derive at
// the Vault's parameters for new slots (Config.KDF), with a fresh random
// salt of their length, and one AES-GCM open that fails. It returns the
// KDF's refusal as the real path would (deriveError), else fail.
func (v *Vault) dummyUnlock(ctx context.Context, userID string, passphrase []byte, fail error) error {
	salt := make([]byte, v.params.SaltLen)
	rand.Read(salt)
	s := slot{kind: SlotPassphrase, keyVersion: 1, params: encodePassphraseParams(v.params, salt)}
	if _, _, err := decodePassphraseParams(s.params); err != nil {
		return err
	}
	kek, err := v.derive(ctx, passphrase, salt, v.params)
	if err != nil {
		return deriveError(err)
	}
	defer clear(kek)
	if mk, err := unwrapKey(kek, v.dummyWrapped, slotAAD(userID, &s)); err == nil {
		clear(mk) // cannot happen: no KEK opens a random wrap
	}
	return fail
}

// UnlockDummy does the work of an Unlock with a wrong passphrase (one KDF
// run at the Vault's parameters for new slots, Config.KDF, and one failing
// AES-GCM open) and returns ErrUnlockFailed, or the KDF's typed refusal
// (kdf.ErrTooLong, kdf.ErrInvalidUTF8, kdf.ErrBusy, ctx's error) exactly as
// Unlock would pass it through for that passphrase. It reads nothing from
// the store.
//
// Call it where the application has decided to refuse without checking
// the passphrase (the account is locked by ratelimit.Lockout, say) and
// must answer after the same work as a wrong passphrase, so that the time
// does not tell a locked account from a wrong guess. Unlock itself already
// does this for a user without a vault.
//
// The work equals that of a slot made with the Vault's current
// parameters. A slot made under other parameters (an older Config.KDF, a
// browser's PBKDF2) costs what its own parameters cost, until a
// ChangePassphrase or RotateMasterKey re-makes it with the current ones.
func (v *Vault) UnlockDummy(ctx context.Context, passphrase []byte) error {
	if v == nil {
		return errNilVault
	}
	return v.dummyUnlock(ctx, "", passphrase, ErrUnlockFailed)
}

// openPassphrase loads the user's record and unwraps its master key with
// the passphrase slot at the record's key version, returning the record,
// its store version, the master key (the caller owns and wipes it) and the
// slot's index.
//
// Every failure other than an invalid user ID or the store's error costs
// the work of a wrong passphrase: a missing vault (errNoVaultUnlock), a
// malformed record or a record without a usable passphrase slot
// (ErrUnlockFailed) run a dummy KDF (dummyUnlock), so the time does not
// tell them from a wrong passphrase. The KDF's refusals pass through typed
// (deriveError), never as ErrUnlockFailed.
func (v *Vault) openPassphrase(ctx context.Context, userID string, passphrase []byte) (*record, uint64, []byte, int, error) {
	r, version, err := v.load(ctx, userID)
	switch {
	case errors.Is(err, ErrNoVault):
		return nil, 0, nil, -1, v.dummyUnlock(ctx, userID, passphrase, errNoVaultUnlock)
	case errors.Is(err, ErrUnlockFailed): // a malformed record
		return nil, 0, nil, -1, v.dummyUnlock(ctx, userID, passphrase, err)
	case err != nil:
		return nil, 0, nil, -1, err
	}
	for i := range r.slots {
		s := &r.slots[i]
		if s.kind != SlotPassphrase || s.keyVersion != r.keyVersion {
			continue
		}
		p, salt, err := decodePassphraseParams(s.params)
		if err != nil {
			return nil, 0, nil, -1, v.dummyUnlock(ctx, userID, passphrase, err)
		}
		kek, err := v.derive(ctx, passphrase, salt, p)
		if err != nil {
			return nil, 0, nil, -1, deriveError(err)
		}
		mk, err := unwrapKey(kek, s.wrapped, slotAAD(userID, s))
		clear(kek)
		if err != nil {
			return nil, 0, nil, -1, err
		}
		return r, version, mk, i, nil
	}
	return nil, 0, nil, -1, v.dummyUnlock(ctx, userID, passphrase, ErrUnlockFailed)
}

// Unlock opens the user's vault with the passphrase.
//
// Every answer that is not an unlocked vault costs the same work, one KDF
// run, so that the time does not reveal whether the user has a vault: a
// wrong passphrase, a tampered or malformed record and a user without a
// vault all return an error matching ErrUnlockFailed. For a user without a
// vault the error also matches ErrNoVault (its text is ErrUnlockFailed's):
// an application that must tell the two apart, for a user who is already
// authenticated, can ask errors.Is(err, ErrNoVault); one that answers
// every ErrUnlockFailed alike reveals nothing.
//
// Errors that are not about the passphrase pass through typed and never
// match ErrUnlockFailed, so an application does not count them as a wrong
// passphrase: a passphrase the KDF refuses before any work (kdf.ErrTooLong,
// kdf.ErrInvalidUTF8: answer these as a wrong passphrase), a slot whose
// stored KDF parameters exceed the Hasher's Limits or the Gate's budget
// (kdf.ErrParamsOutOfBounds, as a *kdf.ParamsError where kdf says which
// parameter), a busy KDF gate (kdf.ErrBusy), the context ending
// (context.Canceled, context.DeadlineExceeded), an invalid user ID
// (ErrInvalidInput) and the store's errors.
//
// Unlock does not count failures: call
// [github.com/keyhold/keyhold/ratelimit.Lockout.Begin] for the
// account before it, and Succeeded or Failed after, like every other way
// of checking the user's credentials. When the lockout refuses, call
// [Vault.UnlockDummy] so that the refusal costs the same.
func (v *Vault) Unlock(ctx context.Context, userID string, passphrase []byte) (*Unlocked, error) {
	if v == nil {
		return nil, errNilVault
	}
	r, _, mk, _, err := v.openPassphrase(ctx, userID, passphrase)
	if err != nil {
		return nil, err
	}
	return unlocked(userID, r, mk)
}

// ChangePassphrase re-wraps the master key under a key derived from the
// new passphrase, with a fresh salt and the Vault's current KDF
// parameters, and replaces the passphrase slot in one compare-and-swap
// write. No record is re-encrypted. It needs the current passphrase (a
// user who lost it but opened the vault another way, with a recovery key
// or a passkey: SetPassphrase); after it returns, the old one no longer
// unlocks (but see SECURITY.md: someone who copied the old vault record
// can still open it with the old passphrase; rotate the master key to
// revoke them).
//
// If the process dies, or the connection drops, during the write, the
// caller cannot know whether it committed (PostgreSQL may commit a write
// whose reply never arrives): keep the intended new passphrase until the
// call returns, and on restart try both.
//
// It answers a wrong old passphrase, or a user without a vault, like
// Unlock: after the same work, with an error matching ErrUnlockFailed (and
// ErrNoVault for a missing vault); the KDF's refusals pass through typed.
func (v *Vault) ChangePassphrase(ctx context.Context, userID string, oldPassphrase, newPassphrase []byte) error {
	if v == nil {
		return errNilVault
	}
	r, version, mk, i, err := v.openPassphrase(ctx, userID, oldPassphrase)
	if err != nil {
		return err
	}
	defer clear(mk)
	s, err := v.newPassphraseSlot(ctx, userID, r.keyVersion, mk, newPassphrase)
	if err != nil {
		return err
	}
	r.slots[i] = s
	if err := v.save(ctx, userID, r, version); err != nil {
		return err
	}
	v.notify(ctx, keyhold.PassphraseChanged, userID, "")
	return nil
}

// recoveryKEK derives the key-encryption key of a recovery slot.
func recoveryKEK(secret, salt []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, salt, labelRecoveryKEK, 32)
}

func newRecoverySlot(userID string, keyVersion uint32, mk []byte) (slot, RecoveryKey, error) {
	key, secret := newRecoveryKey()
	defer clear(secret)
	salt := make([]byte, recoverySaltLen)
	rand.Read(salt)
	s := slot{kind: SlotRecovery, id: newSlotID(), keyVersion: keyVersion, params: append([]byte{byte(len(salt))}, salt...)}
	kek, err := recoveryKEK(secret, salt)
	if err != nil {
		return slot{}, RecoveryKey{}, err
	}
	defer clear(kek)
	if s.wrapped, err = wrapKey(kek, mk, slotAAD(userID, &s)); err != nil {
		return slot{}, RecoveryKey{}, err
	}
	return s, key, nil
}

// recoverySaltLen is the salt length of every recovery slot.
const recoverySaltLen = 16

// MaxRecoveryKeys is the most recovery keys a vault holds.
const MaxRecoveryKeys = 16

// RegenerateRecoveryKeys replaces all of the user's recovery slots with n
// new ones and returns their keys, to be shown to the user once. u must be
// the user's unlocked vault at the current key version. Require a recent
// authentication before calling it, and notify the user.
func (v *Vault) RegenerateRecoveryKeys(ctx context.Context, u *Unlocked, n int) ([]RecoveryKey, error) {
	if v == nil {
		return nil, errNilVault
	}
	if u == nil {
		return nil, errNilUnlocked
	}
	if n < 1 || n > MaxRecoveryKeys {
		return nil, fmt.Errorf("%w: 1 to %d recovery keys", ErrInvalidInput, MaxRecoveryKeys)
	}
	mk, err := u.masterKey()
	if err != nil {
		return nil, err
	}
	defer clear(mk)
	r, version, err := v.load(ctx, u.userID)
	if err != nil {
		return nil, err
	}
	if r.keyVersion != u.version {
		return nil, ErrConflict
	}
	kept := r.slots[:0]
	for _, s := range r.slots {
		if s.kind != SlotRecovery {
			kept = append(kept, s)
		}
	}
	r.slots = kept
	if len(r.slots)+n > maxSlots {
		return nil, fmt.Errorf("%w: the vault has room for %d more slots, not %d recovery keys (remove a slot first)",
			ErrInvalidInput, maxSlots-len(r.slots), n)
	}
	keys := make([]RecoveryKey, n)
	for i := range keys {
		var s slot
		if s, keys[i], err = newRecoverySlot(u.userID, r.keyVersion, mk); err != nil {
			return nil, err
		}
		r.slots = append(r.slots, s)
	}
	if err := v.save(ctx, u.userID, r, version); err != nil {
		return nil, err
	}
	v.notify(ctx, keyhold.RecoveryKeysRegenerated, u.userID, "")
	return keys, nil
}

// UnlockWithRecoveryKey opens the vault with a recovery key and consumes
// it: its slot is replaced, in the same compare-and-swap write, by a new
// recovery slot whose key is returned (show it to the user; the number of
// recovery keys is unchanged). A second use of the same key fails. Every
// failure is ErrUnlockFailed (for a user without a vault, an error that
// matches both ErrUnlockFailed and ErrNoVault), or ErrConflict if another
// change won the race (nothing was consumed then), or the store's error.
// Notify the user of every recovery.
func (v *Vault) UnlockWithRecoveryKey(ctx context.Context, userID, key string) (*Unlocked, RecoveryKey, error) {
	if v == nil {
		return nil, RecoveryKey{}, errNilVault
	}
	secret, ok := parseRecoveryKey(key)
	if !ok {
		return nil, RecoveryKey{}, ErrUnlockFailed
	}
	defer clear(secret)
	r, version, err := v.load(ctx, userID)
	if errors.Is(err, ErrNoVault) {
		return nil, RecoveryKey{}, errNoVaultUnlock
	}
	if err != nil {
		return nil, RecoveryKey{}, err
	}
	for i := range r.slots {
		s := &r.slots[i]
		if s.kind != SlotRecovery || s.keyVersion != r.keyVersion || len(s.params) != 1+recoverySaltLen || s.params[0] != recoverySaltLen {
			continue
		}
		kek, err := recoveryKEK(secret, s.params[1:])
		if err != nil {
			continue
		}
		mk, err := unwrapKey(kek, s.wrapped, slotAAD(userID, s))
		clear(kek)
		if err != nil {
			continue
		}
		replacement, newKey, err := newRecoverySlot(userID, r.keyVersion, mk)
		if err != nil {
			clear(mk)
			return nil, RecoveryKey{}, err
		}
		r.slots[i] = replacement
		if err := v.save(ctx, userID, r, version); err != nil {
			clear(mk)
			return nil, RecoveryKey{}, err
		}
		v.notify(ctx, keyhold.RecoveryKeyUsed, userID, "")
		u, err := unlocked(userID, r, mk)
		return u, newKey, err
	}
	return nil, RecoveryKey{}, ErrUnlockFailed
}

// ResetDestroyingData replaces the user's vault with a new one under a
// fresh master key and the given passphrase. Every record sealed under the
// old master key becomes permanently unreadable: this is what "forgot my
// passphrase and have no recovery key" must mean when the server cannot
// open users' data. The new key version is the old one plus one, so old
// records fail to open rather than being mistaken for new ones. No
// passphrase chosen by an administrator can be set any other way.
func (v *Vault) ResetDestroyingData(ctx context.Context, userID string, newPassphrase []byte) (*Unlocked, error) {
	if v == nil {
		return nil, errNilVault
	}
	old, version, err := v.load(ctx, userID)
	if errors.Is(err, ErrNoVault) {
		return v.Create(ctx, userID, newPassphrase)
	}
	var keyVersion uint32 = 1
	if err == nil {
		keyVersion = old.keyVersion + 1
	} else if errors.Is(err, ErrUnlockFailed) {
		// An unreadable record is replaced too; its version is unknown.
		rec, gerr := v.store.GetVault(ctx, userID)
		if gerr != nil {
			return nil, fmt.Errorf("vault: loading: %w", gerr)
		}
		version, keyVersion = rec.Version, uint32(rec.Version)+1
	} else {
		return nil, err
	}
	mk := make([]byte, masterKeyLen)
	rand.Read(mk)
	r := &record{keyVersion: keyVersion}
	s, err := v.newPassphraseSlot(ctx, userID, keyVersion, mk, newPassphrase)
	if err != nil {
		clear(mk)
		return nil, err
	}
	r.slots = []slot{s}
	if err := v.save(ctx, userID, r, version); err != nil {
		clear(mk)
		return nil, err
	}
	v.notify(ctx, keyhold.VaultReset, userID, "")
	return newUnlocked(userID, keyVersion, mk, nil), nil
}
