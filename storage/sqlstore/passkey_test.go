package sqlstore_test

import (
	"context"
	"testing"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
)

// A deleted passkey record leaves no copy in the SQLite file, as a deleted
// vault record does not (TestDeleteVaultLeavesNothingInFile): neither its
// data, nor its user handle (in the row and in the handle's unique index),
// nor its credential IDs (in keyhold_passkey_credentials and its index by
// user), all of which are cut from the random bytes the check looks for.
// After DeletePasskeys and a checkpoint none is in the file or its -wal.
func TestDeletePasskeysLeavesNothingInFile(t *testing.T) {
	deleteLeavesNothingInFile(t, "passkeys",
		func(st *sqlstore.Store, ctx context.Context, userID string, data []byte, expect uint64) error {
			return st.PutPasskeys(ctx, passkeyRecordOf(userID, data), expect)
		},
		(*sqlstore.Store).DeletePasskeys,
		func(st *sqlstore.Store, ctx context.Context, userID string) error {
			_, err := st.GetPasskeys(ctx, userID)
			return err
		})
}

// passkeyRecordOf returns userID's record with data as its data, and, for
// data long enough, its first storage.PasskeyHandleLen bytes as the handle
// and the next 4 pieces of 256 bytes as credential IDs; for short data, a
// handle and a credential ID made of the user ID.
func passkeyRecordOf(userID string, data []byte) storage.PasskeyRecord {
	r := storage.PasskeyRecord{UserID: userID, Data: data}
	const idLen = 256
	if len(data) < storage.PasskeyHandleLen+4*idLen {
		r.Handle = make([]byte, storage.PasskeyHandleLen)
		copy(r.Handle, userID)
		r.CredentialIDs = [][]byte{[]byte("credential of " + userID)}
		return r
	}
	r.Handle = data[:storage.PasskeyHandleLen]
	for i := range 4 {
		off := storage.PasskeyHandleLen + i*idLen
		r.CredentialIDs = append(r.CredentialIDs, data[off:off+idLen])
	}
	return r
}
