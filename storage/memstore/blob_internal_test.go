package memstore

import (
	"bytes"
	"testing"
)

// A blob replaced (by a value or a tombstone) or deleted with its user's
// blobs is overwritten with zeros, so that it does not linger in the
// process's memory until the garbage collector reuses it; another user's
// blob is left alone.
func TestBlobsWipedWhenReplacedOrDeleted(t *testing.T) {
	ctx := t.Context()
	s := New()
	if err := s.PutBlob(ctx, "alice", "vault", bytes.Repeat([]byte{0xa5}, 256), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, "bob", "vault", bytes.Repeat([]byte{0xb0}, 64), 0); err != nil {
		t.Fatal(err)
	}
	first := s.blobs["alice"]["vault"].data // the store's own bytes
	if err := s.PutBlob(ctx, "alice", "vault", bytes.Repeat([]byte{0x5a}, 256), 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, make([]byte, len(first))) {
		t.Error("the replaced blob's bytes are still in memory")
	}
	second := s.blobs["alice"]["vault"].data
	if err := s.PutBlob(ctx, "alice", "vault", nil, 2); err != nil { // tombstone
		t.Fatal(err)
	}
	if !bytes.Equal(second, make([]byte, len(second))) {
		t.Error("the blob replaced by a tombstone is still in memory")
	}
	if err := s.PutBlob(ctx, "alice", "notes", bytes.Repeat([]byte{0x77}, 32), 0); err != nil {
		t.Fatal(err)
	}
	third := s.blobs["alice"]["notes"].data
	bobs := s.blobs["bob"]["vault"].data
	if err := s.DeleteBlobs(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(third, make([]byte, len(third))) {
		t.Error("the deleted blob's bytes are still in memory")
	}
	if _, ok := s.blobs["alice"]; ok {
		t.Error("the user's blobs are still in the map")
	}
	if !bytes.Equal(bobs, bytes.Repeat([]byte{0xb0}, 64)) {
		t.Error("another user's blob was overwritten")
	}
}
