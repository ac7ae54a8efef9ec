package storage

import "context"

// Bounds of the blobs of a BlobStore.
const (
	// MaxBlobNameLen is the longest blob name, in bytes.
	MaxBlobNameLen = 128
	// MaxBlobDataLen is the longest blob, in bytes (as long as a vault
	// record may be, since a zero-knowledge client keeps its vault record
	// as a blob).
	MaxBlobDataLen = MaxVaultDataLen
)

// A Blob is one opaque value that a user's client sealed before sending
// it (package zk: the zero-knowledge mode, where the server never holds a
// key that opens it), with the version that compare-and-swap writes are
// checked against.
//
// A blob whose Data is empty is a tombstone: the value was deleted, and
// the version is kept so that versions never go back (a client that saw
// version 7 can tell a deleted record, at version 8, from a record put
// back at version 1).
type Blob struct {
	// UserID is the user the blob belongs to (1 to MaxUserIDLen bytes).
	UserID string
	// Name is the blob's name among the user's blobs (1 to
	// MaxBlobNameLen bytes, compared byte for byte).
	Name string
	// Version is 1 for the first value stored under the name and grows by
	// one with every successful PutBlob, tombstones included.
	Version uint64
	// Data is the value, opaque to the store (at most MaxBlobDataLen
	// bytes); empty for a tombstone.
	Data []byte
}

// A BlobInfo describes one of a user's blobs without its data.
type BlobInfo struct {
	// Name is the blob's name.
	Name string
	// Version is the blob's version.
	Version uint64
	// Size is the length of the blob's data; 0 for a tombstone.
	Size int
}

// BlobStore keeps named, versioned blobs per user for package zk. It has
// the contract of VaultStore (compare-and-swap writes, user IDs and names
// compared byte for byte, arguments out of bounds refused with an error
// wrapping ErrInvalid before anything is read or written: an empty or
// over-long user ID or name, data over MaxBlobDataLen, a ListBlobs limit
// below 1 or after longer than MaxBlobNameLen), with one
// difference: a value is deleted by storing a tombstone (empty data) at
// the next version, never by removing its version, so that a name's
// versions only grow. Only DeleteBlobs, for account deletion, removes a
// user's blobs and their versions.
type BlobStore interface {
	// GetBlob returns the user's blob of this name (a tombstone
	// included), or ErrNotFound if none was ever stored.
	GetBlob(ctx context.Context, userID, name string) (Blob, error)

	// PutBlob stores data (empty: a tombstone) as the user's blob of this
	// name with version expect+1, if and only if the stored blob has
	// version expect (expect 0: no blob of this name may exist).
	// Otherwise it stores nothing and returns ErrConflict. Of concurrent
	// calls with the same expect, exactly one succeeds. The write is
	// atomic. The value replaced is overwritten where the database can.
	PutBlob(ctx context.Context, userID, name string, data []byte, expect uint64) error

	// ListBlobs returns the user's blobs, tombstones included, in
	// increasing byte order of their names, at most limit of them (limit
	// ≥ 1) after the name after ("" from the first). An empty list is not
	// an error.
	ListBlobs(ctx context.Context, userID, after string, limit int) ([]BlobInfo, error)

	// DeleteBlobs removes every blob of the user, tombstones and versions
	// included (account deletion: the next PutBlob of a name must expect
	// 0 again). It removes the data rather than hide it behind a flag,
	// and returns nil when the user has none.
	DeleteBlobs(ctx context.Context, userID string) error
}
