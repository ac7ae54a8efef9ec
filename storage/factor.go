package storage

import "context"

// MaxFactorDataLen is the longest encoded factor record, in bytes.
const MaxFactorDataLen = 64 << 10

// A FactorRecord is one user's second factors as package totp keeps them:
// the TOTP credentials (their secrets sealed, the last accepted time step)
// and the hashes of the user's recovery codes, encoded as FORMAT.md §6
// describes. Like a VaultRecord, it carries the version that
// compare-and-swap writes are checked against: accepting a TOTP code and
// consuming a recovery code are writes at the version read, so that of
// racing uses of one code exactly one succeeds.
type FactorRecord struct {
	UserID string // the user whose second factors these are
	// Version is 1 for the first record stored and grows by one with
	// every successful PutFactors.
	Version uint64
	// Data is the encoded record, opaque to the store (at most
	// MaxFactorDataLen bytes).
	Data []byte
}

// FactorStore keeps one FactorRecord per user, with the contract of
// VaultStore: compare-and-swap writes, idempotent conditional deletes,
// user IDs compared byte for byte, and arguments out of bounds (an empty
// or over-long user ID, over-long data) refused with an error wrapping
// ErrInvalid before anything is read or written.
type FactorStore interface {
	// GetFactors returns the user's record, or ErrNotFound if there is
	// none.
	GetFactors(ctx context.Context, userID string) (FactorRecord, error)

	// PutFactors stores data as the user's record with version
	// expect+1, if and only if the stored record has version expect
	// (expect 0: no record may exist). Otherwise it stores nothing and
	// returns ErrConflict. Of concurrent calls with the same expect,
	// exactly one succeeds. The write is atomic.
	PutFactors(ctx context.Context, userID string, data []byte, expect uint64) error

	// DeleteFactors removes the user's record if its version is expect,
	// and returns ErrConflict if it has another version. Deleting a
	// record that does not exist returns nil whatever expect is. After a
	// delete, the next PutFactors must expect 0 and stores version 1
	// again. Remove the data rather than hide it behind a flag.
	DeleteFactors(ctx context.Context, userID string, expect uint64) error
}
