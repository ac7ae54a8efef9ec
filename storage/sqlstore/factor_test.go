package sqlstore_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// A deleted factor record (sealed TOTP secrets, recovery-code hashes)
// leaves no copy in the SQLite file, as a deleted vault record does not
// (TestDeleteVaultLeavesNothingInFile): after DeleteFactors and a
// checkpoint it is nowhere in the file or its -wal.
func TestDeleteFactorsLeavesNothingInFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyhold.db")
	st := openSQLite(t, path)
	raw := rawSQLite(t, path)
	secret := make([]byte, 3000)
	rand.Read(secret)
	if err := st.PutFactors(ctx, "bob", []byte("bob's factors"), 0); err != nil {
		t.Fatal(err)
	}
	if err := st.PutFactors(ctx, "alice", secret, 0); err != nil {
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
	if err := st.DeleteFactors(ctx, "alice", 1); err != nil {
		t.Fatal(err)
	}
	checkpoint()
	if n := found(); n != 0 {
		t.Errorf("%d pieces of the deleted record are still in the database file", n)
	}
	if _, err := st.GetFactors(ctx, "bob"); err != nil {
		t.Errorf("bob's factors: %v", err)
	}
}
