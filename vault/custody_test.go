package vault

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func newCustodyKey(t testing.TB) []byte {
	k := make([]byte, CustodyKeyLen)
	rand.Read(k)
	return k
}

// Keys handed to custody come back able to open what the vault sealed,
// under the current and the retired key versions alike.
func TestCustodyRoundTripKeepsRetiredKeys(t *testing.T) {
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "alice", "alice passphrase one")
	old, err := u.Seal([]byte("sealed before rotation"), []byte("notes/1"))
	if err != nil {
		t.Fatal(err)
	}
	u2, _, err := v.RotateMasterKey(bg, "alice", []byte("alice passphrase one"))
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := u2.Seal([]byte("sealed after rotation"), []byte("notes/2"))

	key, binding := newCustodyKey(t), []byte("session-id")
	blob, err := u2.SealForCustody(key, binding)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range [][]byte{u2.mk, u2.retired[1]} {
		if bytes.Contains(blob, secret) {
			t.Fatal("custody blob contains a key in the clear")
		}
	}
	back, err := OpenCustody("alice", blob, key, binding)
	if err != nil {
		t.Fatal(err)
	}
	if back.KeyVersion() != u2.KeyVersion() || len(back.RetiredVersions()) != 1 {
		t.Fatalf("version %d retired %v, want %d and one retired", back.KeyVersion(), back.RetiredVersions(), u2.KeyVersion())
	}
	for _, c := range []struct{ sealed, ctx, want string }{
		{string(old), "notes/1", "sealed before rotation"},
		{string(cur), "notes/2", "sealed after rotation"},
	} {
		pt, err := back.Open([]byte(c.sealed), []byte(c.ctx))
		if err != nil || string(pt) != c.want {
			t.Fatalf("Open after custody = %q, %v", pt, err)
		}
	}
}

// A blob opens only with its key, its user and its binding; every single
// bit flip and every truncation is the one error.
func TestCustodyRefusesAnythingElse(t *testing.T) {
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "alice", "alice passphrase one")
	key, binding := newCustodyKey(t), []byte("session-id")
	blob, err := u.SealForCustody(key, binding)
	if err != nil {
		t.Fatal(err)
	}
	try := func(name, user string, blob, key, binding []byte) {
		t.Helper()
		if _, err := OpenCustody(user, blob, key, binding); !errors.Is(err, ErrUnlockFailed) {
			t.Errorf("%s: err = %v, want ErrUnlockFailed", name, err)
		}
	}
	try("other key", "alice", blob, newCustodyKey(t), binding)
	try("other user", "bob", blob, key, binding)
	try("other binding", "alice", blob, key, []byte("session-iD"))
	try("no binding", "alice", blob, key, nil)
	try("short key", "alice", blob, key[:16], binding)
	for i := range len(blob) * 8 {
		flipped := bytes.Clone(blob)
		flipped[i/8] ^= 1 << (i % 8)
		try("bit flip", "alice", flipped, key, binding)
	}
	for n := range len(blob) {
		try("truncated", "alice", blob[:n], key, binding)
	}
	try("extended", "alice", append(bytes.Clone(blob), 0), key, binding)

	if _, err := u.SealForCustody(key[:31], binding); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("31-byte key: %v, want ErrInvalidInput", err)
	}
	if _, err := u.SealForCustody(key, make([]byte, 257)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("257-byte binding: %v, want ErrInvalidInput", err)
	}
	u.Lock()
	if _, err := u.SealForCustody(key, binding); !errors.Is(err, ErrLocked) {
		t.Errorf("after Lock: %v, want ErrLocked", err)
	}
}

func FuzzOpenCustody(f *testing.F) {
	v, _ := newTestVault(f)
	u := mustCreate(f, v, "alice", "alice passphrase one")
	key := bytes.Repeat([]byte{7}, CustodyKeyLen)
	blob, err := u.SealForCustody(key, []byte("b"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob, []byte("b"))
	f.Add([]byte("KHC\x01"), []byte{})
	f.Fuzz(func(t *testing.T, blob, binding []byte) {
		got, err := OpenCustody("alice", blob, key, binding)
		if err != nil {
			if !errors.Is(err, ErrUnlockFailed) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		// Only the blob sealed above, with its binding, can open.
		if string(binding) != "b" || got.KeyVersion() != u.KeyVersion() {
			t.Fatalf("opened a blob that was not sealed: binding %q", binding)
		}
	})
}
