// Package storage defines the small interfaces through which keyhold's
// packages keep their state, and the contract every implementation keeps.
//
// For most use cases, use one of the adapters: [github.com/keyhold/keyhold/storage/memstore]
// (tests, single process), [github.com/keyhold/keyhold/storage/sqlstore]
// (SQLite embedded, or PostgreSQL; everything), or
// [github.com/keyhold/keyhold/storage/redisstore] (sessions, rate limits
// and lockouts for apps that run many instances; not vault records). To keep keyhold's state in a database
// of your own, implement the interfaces here and run
// [github.com/keyhold/keyhold/storage/storagetest.Run] against your
// adapter: it checks every clause of every contract below.
//
// # Contracts
//
// Every method takes a context first and honours its cancellation as far
// as its driver allows (a call already done returns the context's error
// before any effect). Absent
// (or expired) records are reported as [ErrNotFound]; optimistic-
// concurrency failures as [ErrConflict]; any other error is an
// infrastructure failure that callers treat as such (and never as "absent").
// Byte slices passed in are not retained, and byte slices returned are the
// caller's own: changing one never changes what the store holds.
//
// Records hold only what keyhold has already sealed or hashed: the store
// never sees a passphrase, a master key or a session token.
package storage

import (
	"context"
	"errors"
)

var (
	// ErrNotFound means the record does not exist (or has expired). It is
	// never used for an infrastructure failure.
	ErrNotFound = errors.New("storage: not found")

	// ErrConflict means a compare-and-swap write found another version
	// than the one expected: someone else wrote first.
	ErrConflict = errors.New("storage: conflict")

	// ErrDuplicate means a write would give a second user something that
	// must be one user's alone (a passkey's credential ID or user
	// handle). Nothing was stored.
	ErrDuplicate = errors.New("storage: duplicate")

	// ErrInvalid means an argument is outside the bounds below (an empty
	// or over-long user ID, an ID of the wrong length, over-long data), or
	// a write would move a record to another user. Nothing was stored.
	ErrInvalid = errors.New("storage: invalid argument")
)

// Size bounds that every adapter may rely on: keyhold's packages never
// pass larger values, and adapters may refuse them with an error wrapping
// ErrInvalid.
const (
	// MaxUserIDLen is the longest user ID, in bytes.
	MaxUserIDLen = 255
	// MaxVaultDataLen is the longest encoded vault record, in bytes.
	MaxVaultDataLen = 1 << 20
)

// A VaultRecord is one user's encoded vault (its key slots and key
// versions, sealed; the format is in FORMAT.md) with the version that
// compare-and-swap writes are checked against.
type VaultRecord struct {
	UserID string // the user whose vault this is
	// Version is 1 for the first record stored and grows by one with
	// every successful PutVault.
	Version uint64
	// Data is the encoded vault, opaque to the store.
	Data []byte
}

// VaultStore keeps one VaultRecord per user. User IDs are compared byte for
// byte: IDs that differ in case, trailing spaces or Unicode normal form are
// different users.
type VaultStore interface {
	// GetVault returns the user's record, or ErrNotFound if there is none.
	GetVault(ctx context.Context, userID string) (VaultRecord, error)

	// PutVault stores data as the user's record with version expect+1, if
	// and only if the stored record has version expect (expect 0: no
	// record may exist). Otherwise it stores nothing and returns
	// ErrConflict. Of concurrent calls with the same expect, exactly one
	// succeeds. The write is atomic: a crash leaves the old record or the
	// new one, never a mix.
	PutVault(ctx context.Context, userID string, data []byte, expect uint64) error

	// DeleteVault removes the user's record if its version is expect, and
	// returns ErrConflict if it has another version. Deleting a record
	// that does not exist returns nil whatever expect is (the delete is
	// idempotent), also when a concurrent delete removed it first. After
	// a delete, the next PutVault must expect 0 and stores version 1
	// again.
	//
	// Deleting a vault record is how an account's keys are destroyed
	// (vault.Vault.Delete): remove the data rather than hide it behind a
	// flag, and where the database can, have it overwrite what it frees.
	DeleteVault(ctx context.Context, userID string, expect uint64) error
}

// Store is every interface an adapter provides, for code that wants one
// value for all of keyhold's state. Packages take only the interface they
// need.
type Store interface {
	VaultStore
	SessionStore
	RefreshStore
	RateStore
	LockoutStore
	FactorStore
}
