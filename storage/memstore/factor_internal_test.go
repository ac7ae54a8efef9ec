package memstore

import (
	"bytes"
	"testing"
)

// A factor record (sealed TOTP secrets, recovery-code hashes) replaced or
// deleted is overwritten with zeros, so that it does not linger in the
// process's memory until the garbage collector reuses it.
func TestFactorRecordsWipedWhenReplacedOrDeleted(t *testing.T) {
	ctx := t.Context()
	s := New()
	if err := s.PutFactors(ctx, "alice", bytes.Repeat([]byte{0xa5}, 256), 0); err != nil {
		t.Fatal(err)
	}
	first := s.factors["alice"].data // the store's own bytes
	if err := s.PutFactors(ctx, "alice", bytes.Repeat([]byte{0x5a}, 256), 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, make([]byte, len(first))) {
		t.Error("the replaced record's bytes are still in memory")
	}
	second := s.factors["alice"].data
	if err := s.DeleteFactors(ctx, "alice", 2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(second, make([]byte, len(second))) {
		t.Error("the deleted record's bytes are still in memory")
	}
	if _, ok := s.factors["alice"]; ok {
		t.Error("the record is still in the map")
	}
}
