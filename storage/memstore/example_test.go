package memstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// Two writers read version 1 of a vault and both try to replace it: the
// first write wins, the second gets ErrConflict instead of silently
// overwriting it, and retries from a fresh read.
func ExampleStore_PutVault() {
	ctx := context.Background()
	s := memstore.New()

	_ = s.PutVault(ctx, "alice", []byte("v1"), 0) // expect 0: create
	a, _ := s.GetVault(ctx, "alice")
	b, _ := s.GetVault(ctx, "alice")

	fmt.Println("A writes:", s.PutVault(ctx, "alice", []byte("v2 by A"), a.Version))
	err := s.PutVault(ctx, "alice", []byte("v2 by B"), b.Version)
	fmt.Println("B conflicts:", errors.Is(err, storage.ErrConflict))

	b, _ = s.GetVault(ctx, "alice") // B reads again, sees A's write
	fmt.Println("B retries:", s.PutVault(ctx, "alice", append(b.Data, " + B"...), b.Version))

	rec, _ := s.GetVault(ctx, "alice")
	fmt.Printf("version %d: %s\n", rec.Version, rec.Data)
	// Output:
	// A writes: <nil>
	// B conflicts: true
	// B retries: <nil>
	// version 3: v2 by A + B
}
