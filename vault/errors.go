package vault

import (
	"errors"
	"fmt"
)

var (
	// ErrDecrypt is the one error for every record that cannot be opened:
	// wrong key, wrong user, wrong context, tampering, truncation or an
	// unknown key version all look alike (by design: telling them apart
	// would help an attacker).
	ErrDecrypt = errors.New("vault: message authentication failed")

	// ErrUnlockFailed is the one error for every failed unlock: wrong
	// passphrase, wrong or used recovery key, tampered or truncated slot or
	// vault record. Tampering is indistinguishable from a wrong passphrase
	// by design.
	ErrUnlockFailed = errors.New("vault: unlock failed")

	// ErrRollback means Unlocked.OpenVersion found an authentic record
	// whose record version is below the one the application expects: an
	// older ciphertext of the same record was put back.
	ErrRollback = errors.New("vault: record version older than expected (rollback)")

	// ErrInvalidRecord means bytes offered to RecordKeyVersion as an
	// encoded vault record do not parse as one (FORMAT.md §3.1: every
	// length within its bound and within the input, known slot kinds,
	// key versions of 1 or more, retired keys in order, nothing after the
	// end).
	ErrInvalidRecord = errors.New("vault: invalid vault record")

	// ErrNoVault means the user has no vault yet. The unlock paths
	// (Unlock, ChangePassphrase, RotateMasterKey, UnlockWithRecoveryKey,
	// UnlockWithWrapper, UnlockWithSecret) answer a missing vault with an
	// error that matches both ErrNoVault and ErrUnlockFailed, after the
	// work of a wrong passphrase (or, for UnlockWithSecret, of a wrong
	// secret).
	ErrNoVault = errors.New("vault: no vault for this user")

	// ErrExists means Create found a vault already there.
	ErrExists = errors.New("vault: a vault already exists for this user")

	// ErrLocked means the Unlocked value was locked (its key wiped).
	ErrLocked = errors.New("vault: locked")

	// ErrConflict means another change to the same vault was stored first;
	// nothing was written. Unlock again and retry.
	ErrConflict = errors.New("vault: concurrent change")

	// ErrRekeyRequired means one Unlocked value has sealed so many records
	// under its key version that random nonces would risk repeating;
	// rotate the master key.
	ErrRekeyRequired = errors.New("vault: key version used too often, rotate the master key")

	// ErrInvalidInput means an argument is out of bounds (an empty user
	// ID, an oversized context or plaintext), or a method was called on a
	// nil *Vault or *Unlocked (what a failed New, Create or Unlock returns)
	// or given a nil *Unlocked. Methods without an error result return
	// zero values on a nil receiver; none panics.
	ErrInvalidInput = errors.New("vault: invalid input")
)

var (
	errNilVault    = fmt.Errorf("%w: nil *Vault", ErrInvalidInput)
	errNilUnlocked = fmt.Errorf("%w: nil *Unlocked (the result of a failed call)", ErrInvalidInput)
)
