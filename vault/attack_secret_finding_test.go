package vault

import (
	"errors"
	"fmt"
	"testing"
)

// Outside review of secret slots (kind 3): a finding, failing until fixed.

// attackCred is the credential ID of the attacker's i-th passkey.
func attackCred(i int) []byte { return []byte(fmt.Sprintf("credential-%03d", i)) }

// Found by review, fixed: AddSecretSlot lets a vault fill up to maxSlots (64) slots, and
// RegenerateRecoveryKeys then adds its n recovery slots without checking
// the total: it stores a record of more than 64 slots, which decodeRecord
// refuses (n > maxSlots). From then on every way in (Unlock, the
// recovery keys it just returned, the secret slots) fails with
// ErrUnlockFailed: the vault and everything sealed under it are lost; only
// ResetDestroyingData is left. The same holds for wrapper slots, but a
// passkey per slot makes it reachable: a user (or someone holding their
// session) registering passkeys. RegenerateRecoveryKeys must refuse
// (ErrInvalidInput) when the slots kept plus n exceed maxSlots, and save
// should refuse to encode a record decodeRecord would refuse.
func TestAttackSecretSlotsThenRegenerateBricksVault(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "vic", "vic's passphrase")
	for i := range maxSlots - 1 { // the passphrase slot and 63 secret slots
		if err := v.AddSecretSlot(bg, u, attackCred(i), prf(fmt.Sprint(i))); err != nil {
			t.Fatalf("AddSecretSlot %d: %v", i, err)
		}
	}
	// The 65th slot is refused by AddSecretSlot itself.
	if err := v.AddSecretSlot(bg, u, attackCred(maxSlots), prf("one too many")); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("AddSecretSlot past maxSlots: %v, want ErrInvalidInput", err)
	}
	keys, regenErr := v.RegenerateRecoveryKeys(bg, u, 1)
	// Whatever RegenerateRecoveryKeys answers, the vault must still open.
	if _, err := v.Unlock(bg, "vic", []byte("vic's passphrase")); err != nil {
		t.Errorf("after RegenerateRecoveryKeys (err %v): Unlock with the right passphrase: %v (the stored record has more than %d slots and no longer decodes)", regenErr, err, maxSlots)
	}
	if _, err := v.UnlockWithSecret(bg, "vic", attackCred(0), prf("0")); err != nil {
		t.Errorf("UnlockWithSecret with a right secret: %v", err)
	}
	if regenErr == nil {
		if _, _, err := v.UnlockWithRecoveryKey(bg, "vic", keys[0].Reveal()); err != nil {
			t.Errorf("the recovery key just returned does not open the vault: %v", err)
		}
	} else if !errors.Is(regenErr, ErrInvalidInput) {
		t.Errorf("RegenerateRecoveryKeys on a full vault: %v, want ErrInvalidInput", regenErr)
	}
}
