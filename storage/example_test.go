package storage_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// Callers branch on the contract's sentinels, whatever the adapter: an
// absent record is ErrNotFound (not a failure), a stale version is
// ErrConflict (re-read and retry), and deleting what is already gone is
// not an error.
func Example() {
	ctx := context.Background()
	var s storage.Store = memstore.New() // or sqlstore, or your own adapter

	_, err := s.GetVault(ctx, "bob")
	fmt.Println("absent:", errors.Is(err, storage.ErrNotFound))

	_ = s.PutVault(ctx, "bob", []byte("record"), 0)
	err = s.PutVault(ctx, "bob", []byte("stale write"), 0)
	fmt.Println("stale write:", errors.Is(err, storage.ErrConflict))

	fmt.Println("delete:", s.DeleteVault(ctx, "bob", 1))
	fmt.Println("delete again:", s.DeleteVault(ctx, "bob", 1))
	// Output:
	// absent: true
	// stale write: true
	// delete: <nil>
	// delete again: <nil>
}
