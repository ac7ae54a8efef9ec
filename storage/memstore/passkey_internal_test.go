package memstore

import (
	"bytes"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// A passkey record (sealed PRF salts, public keys) replaced or deleted is
// overwritten with zeros, as a factor record is; a deleted record's handle
// too, and its index entries are gone.
func TestPasskeyRecordsWipedWhenReplacedOrDeleted(t *testing.T) {
	ctx := t.Context()
	s := New()
	r := storage.PasskeyRecord{
		UserID:        "alice",
		Handle:        bytes.Repeat([]byte{0x11}, storage.PasskeyHandleLen),
		CredentialIDs: [][]byte{[]byte("credential")},
		Data:          bytes.Repeat([]byte{0xa5}, 256),
	}
	if err := s.PutPasskeys(ctx, r, 0); err != nil {
		t.Fatal(err)
	}
	first := s.passkeys.records["alice"].data // the store's own bytes
	r.Data = bytes.Repeat([]byte{0x5a}, 256)
	if err := s.PutPasskeys(ctx, r, 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, make([]byte, len(first))) {
		t.Error("the replaced record's data is still in memory")
	}
	second := s.passkeys.records["alice"]
	if err := s.DeletePasskeys(ctx, "alice", 2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(second.data, make([]byte, len(second.data))) {
		t.Error("the deleted record's data is still in memory")
	}
	if !bytes.Equal(second.handle, make([]byte, len(second.handle))) {
		t.Error("the deleted record's handle is still in memory")
	}
	if len(s.passkeys.records)+len(s.passkeys.byHandle)+len(s.passkeys.byCredIDs) != 0 {
		t.Errorf("after the delete the store holds %d records, %d handles and %d credential IDs, want none",
			len(s.passkeys.records), len(s.passkeys.byHandle), len(s.passkeys.byCredIDs))
	}
}
