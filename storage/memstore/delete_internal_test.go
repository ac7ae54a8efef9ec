package memstore

import (
	"bytes"
	"testing"
)

// STO-06: DeleteVault overwrites the deleted record's bytes: the memory
// that held the user's slots and wrapped keys holds zeros, not the record,
// while the Go heap keeps it until reuse.
func TestDeleteVaultWipesRecord(t *testing.T) {
	ctx := t.Context()
	s := New()
	data := bytes.Repeat([]byte{0xa5}, 256)
	if err := s.PutVault(ctx, "alice", data, 0); err != nil {
		t.Fatal(err)
	}
	held := s.vaults["alice"].data // the store's own bytes
	if err := s.DeleteVault(ctx, "alice", 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(held, make([]byte, len(held))) {
		t.Error("the deleted record's bytes are still in memory")
	}
	if _, ok := s.vaults["alice"]; ok {
		t.Error("the record is still in the map")
	}
}
