package vault_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// RecordKeyVersion reads the key version of a well-formed record, before
// and after a rotation, and refuses anything the decoder refuses, with one
// typed error.
func TestRecordKeyVersion(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	u, err := v.Create(ctx, "ada", []byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	u.Lock()
	rec, _ := store.GetVault(ctx, "ada")
	if kv, err := vault.RecordKeyVersion(rec.Data); err != nil || kv != 1 {
		t.Fatalf("a new record: %d %v", kv, err)
	}
	u, _, err = v.RotateMasterKey(ctx, "ada", []byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	u.Lock()
	rotated, _ := store.GetVault(ctx, "ada")
	if kv, err := vault.RecordKeyVersion(rotated.Data); err != nil || kv != 2 {
		t.Fatalf("a rotated record (with its retired key): %d %v", kv, err)
	}
	for name, data := range map[string][]byte{
		"empty":         nil,
		"garbage":       []byte("not a vault record"),
		"truncated":     rotated.Data[:len(rotated.Data)-1],
		"trailing byte": append(append([]byte{}, rec.Data...), 0),
		"magic":         append([]byte("KHX\x01"), rec.Data[4:]...),
		"key version 0": append(append([]byte{}, rec.Data[:4]...), append([]byte{0, 0, 0, 0}, rec.Data[8:]...)...),
	} {
		if kv, err := vault.RecordKeyVersion(data); !errors.Is(err, vault.ErrInvalidRecord) || kv != 0 {
			t.Errorf("%s: %d %v, want ErrInvalidRecord", name, kv, err)
		}
	}
}
