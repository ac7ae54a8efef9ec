package sqlstore

import (
	"context"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// Factor arguments outside the bounds of package storage are refused
// before any query runs: on a closed Store the error is the bounds error,
// not the pool's "database is closed".
func TestFactorBoundsCheckedBeforeTheDatabase(t *testing.T) {
	boundsCheckedBeforeTheDatabase(t, "Factors", storage.MaxFactorDataLen,
		func(st *Store, ctx context.Context, userID string) error {
			_, err := st.GetFactors(ctx, userID)
			return err
		},
		(*Store).PutFactors, (*Store).DeleteFactors)
}
