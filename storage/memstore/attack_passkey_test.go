package memstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// Outside review of memstore's PasskeyStore, defense that holds: a put
// refused part-way through its credential IDs (the second is another
// user's), or for a changed handle, changes nothing: the user's record,
// version and both indexes stay as they were, and the IDs listed before
// the refused one are not indexed. Slices handed out by GetPasskeys are
// the caller's: scribbling on them moves no index entry.
func TestAttackPasskeyRefusedPutChangesNothing(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	h := func(b byte) []byte { return bytes.Repeat([]byte{b}, storage.PasskeyHandleLen) }
	x, y, y2 := []byte("X"), []byte("Y"), []byte("Y2")
	if err := s.PutPasskeys(ctx, storage.PasskeyRecord{UserID: "mallory", Handle: h('m'), CredentialIDs: [][]byte{x}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPasskeys(ctx, storage.PasskeyRecord{UserID: "bob", Handle: h('b'), CredentialIDs: [][]byte{y}, Data: []byte("v1")}, 0); err != nil {
		t.Fatal(err)
	}
	err := s.PutPasskeys(ctx, storage.PasskeyRecord{UserID: "bob", Handle: h('b'), CredentialIDs: [][]byte{y2, x}, Data: []byte("v2")}, 1)
	if !errors.Is(err, storage.ErrDuplicate) {
		t.Fatalf("re-put with mallory's ID: %v, want ErrDuplicate", err)
	}
	err = s.PutPasskeys(ctx, storage.PasskeyRecord{UserID: "bob", Handle: h('c'), CredentialIDs: [][]byte{y2}, Data: []byte("v2")}, 1)
	if !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("re-put with another handle: %v, want ErrInvalid", err)
	}
	check := func() {
		t.Helper()
		r, err := s.GetPasskeys(ctx, "bob")
		if err != nil || r.Version != 1 || string(r.Data) != "v1" || len(r.CredentialIDs) != 1 || !bytes.Equal(r.CredentialIDs[0], y) || !bytes.Equal(r.Handle, h('b')) {
			t.Fatalf("bob's record: %+v, %v", r, err)
		}
		for id, want := range map[string]string{"X": "mallory", "Y": "bob"} {
			if u, err := s.UserByCredential(ctx, []byte(id)); err != nil || u != want {
				t.Fatalf("UserByCredential(%s) = %q, %v; want %s", id, u, err, want)
			}
		}
		if _, err := s.UserByCredential(ctx, y2); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Y2 indexed after refused puts: %v", err)
		}
		for _, c := range []struct {
			b    byte
			want string
		}{{'b', "bob"}, {'m', "mallory"}} {
			if u, err := s.UserByHandle(ctx, h(c.b)); err != nil || u != c.want {
				t.Fatalf("UserByHandle(%c) = %q, %v", c.b, u, err)
			}
		}
		if _, err := s.UserByHandle(ctx, h('c')); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused handle indexed: %v", err)
		}
	}
	check()
	r, _ := s.GetPasskeys(ctx, "bob")
	copy(r.Handle, h('m'))
	copy(r.CredentialIDs[0], "Z")
	check()
}
