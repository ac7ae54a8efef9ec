package sqlstore_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// Outside review of the shared record code (record.go) after the
// refactor, defense that holds on both dialects: the vault and factor
// tables stay apart. A user's vault record is not their factor record:
// GetFactors does not see it, a factor put expecting the vault's version
// conflicts, a factor delete at the vault's version leaves the vault, and
// each table has its own bound (factor data over MaxFactorDataLen is
// refused even though a vault takes it). Versions grow per table.
func TestAttackVaultAndFactorRecordsApart(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			st, _, _, _ := d.open(t)
			ctx := t.Context()
			vault := bytes.Repeat([]byte{'v'}, storage.MaxFactorDataLen+1)
			if err := st.PutVault(ctx, "alice", vault, 0); err != nil {
				t.Fatal(err)
			}
			if err := st.PutVault(ctx, "alice", vault, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := st.GetFactors(ctx, "alice"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("GetFactors sees the vault: %v", err)
			}
			if err := st.PutFactors(ctx, "alice", []byte("f"), 2); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("PutFactors at the vault's version: %v, want ErrConflict", err)
			}
			if err := st.PutFactors(ctx, "alice", vault, 0); !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("factor data of MaxFactorDataLen+1 bytes: %v, want ErrInvalid", err)
			}
			if err := st.PutFactors(ctx, "alice", []byte("f"), 0); err != nil {
				t.Fatal(err)
			}
			if err := st.DeleteFactors(ctx, "alice", 2); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("DeleteFactors at the vault's version: %v, want ErrConflict", err)
			}
			if err := st.DeleteVault(ctx, "alice", 1); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("DeleteVault at the factors' version: %v, want ErrConflict", err)
			}
			v, err := st.GetVault(ctx, "alice")
			if err != nil || v.Version != 2 || !bytes.Equal(v.Data, vault) {
				t.Fatalf("vault after factor writes: version %d, %d bytes, %v", v.Version, len(v.Data), err)
			}
			f, err := st.GetFactors(ctx, "alice")
			if err != nil || f.Version != 1 || string(f.Data) != "f" {
				t.Fatalf("factors: %+v, %v", f, err)
			}
			if err := st.DeleteFactors(ctx, "alice", 1); err != nil {
				t.Fatal(err)
			}
			if _, err := st.GetVault(ctx, "alice"); err != nil {
				t.Fatalf("vault gone with the factors: %v", err)
			}
		})
	}
}
