package storage

import "context"

// Size bounds for passkey records.
const (
	// PasskeyHandleLen is the length of every WebAuthn user handle: 64
	// random bytes per user (WebAuthn §14.6.1), never the app's user ID.
	PasskeyHandleLen = 64
	// MaxCredentialIDLen is the longest WebAuthn credential ID, in bytes
	// (WebAuthn §7.1 refuses longer ones).
	MaxCredentialIDLen = 1023
	// MaxPasskeysPerUser bounds the credentials of one record.
	MaxPasskeysPerUser = 32
	// MaxPasskeyDataLen is the longest encoded passkey record, in bytes.
	MaxPasskeyDataLen = 256 << 10
)

// A PasskeyRecord is one user's passkeys as package passkey keeps them:
// the user's WebAuthn user handle, the IDs of the user's credentials (which
// the store indexes), and the encoded credentials (public keys, sign
// counts, flags, PRF salts), opaque to the store.
type PasskeyRecord struct {
	UserID string // the user whose passkeys these are
	// Handle is the user's WebAuthn user handle (PasskeyHandleLen bytes).
	// It never changes for a record, and no two users' records have the
	// same.
	Handle []byte
	// CredentialIDs are the IDs of the user's credentials (each 1 to
	// MaxCredentialIDLen bytes, at most MaxPasskeysPerUser, no two
	// equal). No credential ID belongs to two users. They are a set:
	// GetPasskeys may return them in another order than they were put.
	CredentialIDs [][]byte
	// Version is 1 for the first record stored and grows by one with
	// every successful PutPasskeys.
	Version uint64
	// Data is the encoded record (at most MaxPasskeyDataLen bytes).
	Data []byte
}

// PasskeyStore keeps one PasskeyRecord per user, with VaultStore's
// contract (compare-and-swap puts, idempotent conditional deletes, user
// IDs compared byte for byte, ErrInvalid for arguments out of bounds
// before anything is read or written), and two indexes that usernameless
// login and registration need: from a user handle, and from a credential
// ID, to the user.
type PasskeyStore interface {
	// GetPasskeys returns the user's record, or ErrNotFound.
	GetPasskeys(ctx context.Context, userID string) (PasskeyRecord, error)

	// PutPasskeys stores r as r.UserID's record with version expect+1,
	// with its handle and credential IDs indexed, in one atomic step, if
	// and only if the stored record has version expect (expect 0: none
	// may exist); otherwise it stores nothing and returns ErrConflict.
	// Of concurrent calls with the same expect, exactly one succeeds.
	// r.Version is ignored. The handle of an existing record cannot
	// change (ErrInvalid). A handle or a credential ID that another
	// user's record holds is refused with ErrDuplicate, and nothing is
	// stored: of two users registering one credential ID concurrently,
	// at most one succeeds.
	PutPasskeys(ctx context.Context, r PasskeyRecord, expect uint64) error

	// DeletePasskeys removes the user's record and its index entries if
	// its version is expect (ErrConflict otherwise); deleting a record
	// that does not exist returns nil whatever expect is. The next put
	// expects 0.
	DeletePasskeys(ctx context.Context, userID string, expect uint64) error

	// UserByHandle returns the user whose record has this handle, or
	// ErrNotFound.
	UserByHandle(ctx context.Context, handle []byte) (string, error)

	// UserByCredential returns the user whose record lists this
	// credential ID, or ErrNotFound.
	UserByCredential(ctx context.Context, credentialID []byte) (string, error)
}
