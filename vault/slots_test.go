package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
)

// testKMS is a KeyWrapper over an in-memory AES-256-GCM key, standing in
// for a KMS.
type testKMS struct {
	id  string
	key []byte
}

func newTestKMS(id string) *testKMS {
	k := make([]byte, 32)
	rand.Read(k)
	return &testKMS{id: id, key: k}
}

func (k *testKMS) ID() string { return k.id }

func (k *testKMS) Wrap(_ context.Context, key, aad []byte) ([]byte, error) {
	return wrapKey(k.key, key, aad)
}

func (k *testKMS) Unwrap(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	return unwrapKey(k.key, wrapped, aad)
}

func TestWrapperSlots(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	u := mustCreate(t, v, "walt", "walt's passphrase")
	sealed, _ := u.Seal([]byte("for the batch job"), nil)
	kms := newTestKMS("kms-1")
	if err := v.AddWrapperSlot(bg, u, kms); err != nil {
		t.Fatal(err)
	}
	wu, err := v.UnlockWithWrapper(bg, "walt", kms)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := wu.Open(sealed, nil); err != nil || string(pt) != "for the batch job" {
		t.Fatalf("open through the wrapper: %v", err)
	}
	impostor := newTestKMS("kms-1") // same ID, other key
	if _, err := v.UnlockWithWrapper(bg, "walt", impostor); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("another key under the same ID: %v", err)
	}
	// The slot moved to another user's vault does not unlock it (AAD).
	mustCreate(t, v, "xena", "xena's passphrase")
	walt, _ := store.GetVault(bg, "walt")
	xena, _ := store.GetVault(bg, "xena")
	store.PutVault(bg, "xena", walt.Data, xena.Version)
	if _, err := v.UnlockWithWrapper(bg, "xena", kms); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("walt's wrapper slot under xena: %v", err)
	}

	keys, _ := v.RegenerateRecoveryKeys(bg, u, 1)
	slots, err := v.Slots(bg, "walt")
	if err != nil || len(slots) != 3 {
		t.Fatalf("Slots = %+v, %v", slots, err)
	}
	// Rotation needs the wrapper, then re-wraps its slot.
	if _, _, err := v.RotateMasterKey(bg, "walt", []byte("walt's passphrase")); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("rotation without the wrapper: %v", err)
	}
	ru, _, err := v.RotateMasterKey(bg, "walt", []byte("walt's passphrase"), kms)
	if err != nil {
		t.Fatal(err)
	}
	if wu2, err := v.UnlockWithWrapper(bg, "walt", kms); err != nil || wu2.KeyVersion() != 2 {
		t.Fatalf("wrapper after rotation: %v", err)
	}
	if _, _, err := v.UnlockWithRecoveryKey(bg, "walt", keys[0].Reveal()); !errors.Is(err, ErrUnlockFailed) {
		t.Fatal("a pre-rotation recovery key still works")
	}
	slots, _ = v.Slots(bg, "walt")
	for _, s := range slots {
		switch s.Kind {
		case SlotPassphrase:
			if err := v.RemoveSlot(bg, ru, s.ID); !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("removing the passphrase slot: %v", err)
			}
		case SlotWrapper:
			if s.WrapperID != "kms-1" {
				t.Fatalf("wrapper ID %q", s.WrapperID)
			}
			if err := v.RemoveSlot(bg, ru, s.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := v.UnlockWithWrapper(bg, "walt", kms); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("wrapper after its slot was removed: %v", err)
	}
	if err := v.RemoveSlot(bg, ru, "00"); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("unknown slot: %v", err)
	}
}
