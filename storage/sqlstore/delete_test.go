package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyhold/keyhold/storage/sqlstore"
)

// STO-06: a deleted vault record leaves no copy in the SQLite file. The
// record (random bytes, like a vault's salts and wrapped keys) is in the
// file after a checkpoint; after DeleteVault and a checkpoint it is
// nowhere in the file or its -wal: the Store deletes with secure_delete,
// which overwrites the freed space (without it, the row stays in the
// page's free space).
func TestDeleteVaultLeavesNothingInFile(t *testing.T) {
	deleteLeavesNothingInFile(t, "vault",
		(*sqlstore.Store).PutVault, (*sqlstore.Store).DeleteVault,
		func(st *sqlstore.Store, ctx context.Context, userID string) error {
			_, err := st.GetVault(ctx, userID)
			return err
		})
}

// deleteLeavesNothingInFile stores bob's record and alice's (3000 random
// bytes) in a SQLite file with put, checks that alice's is in the file
// after a checkpoint, deletes it with del, and checks that after a
// checkpoint no 32-byte piece of it is in the file or its -wal, and that
// get still finds bob's.
func deleteLeavesNothingInFile(
	t *testing.T, noun string,
	put func(st *sqlstore.Store, ctx context.Context, userID string, data []byte, expect uint64) error,
	del func(st *sqlstore.Store, ctx context.Context, userID string, expect uint64) error,
	get func(st *sqlstore.Store, ctx context.Context, userID string) error,
) {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyhold.db")
	st := openSQLite(t, path)
	raw := rawSQLite(t, path)
	secret := make([]byte, 3000)
	rand.Read(secret)
	if err := put(st, ctx, "bob", []byte("bob's "+noun), 0); err != nil {
		t.Fatal(err)
	}
	if err := put(st, ctx, "alice", secret, 0); err != nil {
		t.Fatal(err)
	}
	checkpoint := func() {
		t.Helper()
		var busy, logPages, done int
		if err := raw.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil {
			t.Fatal(err)
		}
		if busy != 0 {
			t.Fatal("the checkpoint was blocked")
		}
	}
	found := func() int {
		t.Helper()
		n := 0
		for _, name := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(name)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for i := 0; i+32 <= len(secret); i += 32 {
				if bytes.Contains(b, secret[i:i+32]) {
					n++
				}
			}
		}
		return n
	}
	checkpoint()
	if found() == 0 {
		t.Fatal("control: the record is not in the file before the delete")
	}
	if err := del(st, ctx, "alice", 1); err != nil {
		t.Fatal(err)
	}
	checkpoint()
	if n := found(); n != 0 {
		t.Errorf("%d pieces of the deleted record are still in the database file", n)
	}
	if err := get(st, ctx, "bob"); err != nil {
		t.Errorf("bob's %s: %v", noun, err)
	}
}
