package sqlstore_test

import (
	"context"
	"testing"

	"github.com/keyhold/keyhold/storage/sqlstore"
)

// A blob removed by DeleteBlobs (account deletion) leaves no copy in the
// SQLite file once the log is checkpointed, as a deleted vault record
// does not (TestDeleteVaultLeavesNothingInFile).
func TestDeleteBlobsLeavesNothingInFile(t *testing.T) {
	deleteLeavesNothingInFile(t, "blob",
		func(st *sqlstore.Store, ctx context.Context, userID string, data []byte, expect uint64) error {
			return st.PutBlob(ctx, userID, "vault", data, expect)
		},
		func(st *sqlstore.Store, ctx context.Context, userID string, _ uint64) error {
			return st.DeleteBlobs(ctx, userID)
		},
		func(st *sqlstore.Store, ctx context.Context, userID string) error {
			_, err := st.GetBlob(ctx, userID, "vault")
			return err
		})
}

// A value replaced by a tombstone (a client deleting one of its blobs)
// leaves no copy in the SQLite file either: the UPDATE frees the old
// row's space, which secure_delete overwrites.
func TestTombstoneLeavesNothingInFile(t *testing.T) {
	deleteLeavesNothingInFile(t, "blob",
		func(st *sqlstore.Store, ctx context.Context, userID string, data []byte, expect uint64) error {
			return st.PutBlob(ctx, userID, "vault", data, expect)
		},
		func(st *sqlstore.Store, ctx context.Context, userID string, expect uint64) error {
			return st.PutBlob(ctx, userID, "vault", nil, expect)
		},
		func(st *sqlstore.Store, ctx context.Context, userID string) error {
			_, err := st.GetBlob(ctx, userID, "vault")
			return err
		})
}
