package vault_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/internal/niltest"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// Issue 11: no exported method panics on a nil receiver, the value a
// failed Create, Unlock or New leaves behind: each returns an error
// matching ErrInvalidInput (or zero values, when it has no error result).
func TestNilReceivers(t *testing.T) {
	niltest.Methods(t, (*vault.Unlocked)(nil), vault.ErrInvalidInput)
	niltest.Methods(t, (*vault.Vault)(nil), vault.ErrInvalidInput)
}

// A nil *Unlocked given to a Vault's methods (the result of a failed
// Create, as the README's first vault snippet once passed on) is refused
// with ErrInvalidInput, not a panic.
func TestNilUnlockedArgument(t *testing.T) {
	v, err := vault.New(memstore.New(), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.RegenerateRecoveryKeys(ctx, nil, 2); !errors.Is(err, vault.ErrInvalidInput) {
		t.Errorf("RegenerateRecoveryKeys: %v", err)
	}
	if err := v.AddWrapperSlot(ctx, nil, nil); !errors.Is(err, vault.ErrInvalidInput) {
		t.Errorf("AddWrapperSlot: %v", err)
	}
	if err := v.DestroyRetiredKeys(ctx, nil); !errors.Is(err, vault.ErrInvalidInput) {
		t.Errorf("DestroyRetiredKeys: %v", err)
	}
	if err := v.RemoveSlot(ctx, nil, "x"); !errors.Is(err, vault.ErrInvalidInput) {
		t.Errorf("RemoveSlot: %v", err)
	}
}
