package sqlstore_test

import (
	"context"
	"testing"

	"github.com/keyhold/keyhold/storage/sqlstore"
)

// A deleted factor record (sealed TOTP secrets, recovery-code hashes)
// leaves no copy in the SQLite file, as a deleted vault record does not
// (TestDeleteVaultLeavesNothingInFile): after DeleteFactors and a
// checkpoint it is nowhere in the file or its -wal.
func TestDeleteFactorsLeavesNothingInFile(t *testing.T) {
	deleteLeavesNothingInFile(t, "factors",
		(*sqlstore.Store).PutFactors, (*sqlstore.Store).DeleteFactors,
		func(st *sqlstore.Store, ctx context.Context, userID string) error {
			_, err := st.GetFactors(ctx, userID)
			return err
		})
}
