package keyhold_test

import (
	"context"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/account"
	"github.com/keyhold/keyhold/vault/zk"
)

// STO-06 in the zero-knowledge mode: account.Delete with
// Parts.ZeroKnowledge removes the user's zero-knowledge vault record and
// sealed records, versions included (a new write must expect 0 again),
// and leaves another user's.
func TestRequirementDeleteAccountZeroKnowledge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memstore.New()
	m, err := session.New(store, session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := ratelimit.New(store, zk.DefaultRule(), ratelimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	private, err := zk.New(zk.Config{Sessions: m, Store: store, Limiter: limiter})
	if err != nil {
		t.Fatal(err)
	}
	// The blobs as the browser client leaves them (their bytes are opaque
	// to the store): a vault record and a record written twice.
	for _, user := range []string{"alice", "bob"} {
		for _, w := range []struct {
			name   string
			expect uint64
		}{{"/vault", 0}, {"diary", 0}, {"diary", 1}} {
			if err := store.PutBlob(ctx, user, w.name, []byte(user+"'s sealed "+w.name), w.expect); err != nil {
				t.Fatal(err)
			}
		}
	}

	if err := account.Delete(ctx, "alice", "", account.Parts{Sessions: m, Vault: v, ZeroKnowledge: private}); err != nil {
		t.Fatal(err)
	}
	if blobs, err := store.ListBlobs(ctx, "alice", "", 10); err != nil || len(blobs) != 0 {
		t.Fatalf("Alice's blobs after the deletion: %v (%v), want none", blobs, err)
	}
	if err := store.PutBlob(ctx, "alice", "diary", []byte("new"), 0); err != nil {
		t.Fatalf("a new account's first write (expect 0) after the deletion: %v; the old versions are still there", err)
	}
	if blobs, err := store.ListBlobs(ctx, "bob", "", 10); err != nil || len(blobs) != 2 {
		t.Fatalf("Bob's blobs after Alice's deletion: %v (%v), want his two", blobs, err)
	}
}
