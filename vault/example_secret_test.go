package vault_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// A passkey's PRF output unlocks the vault through the secret slot of its
// credential ID; another secret is refused, and removing the slot (by
// SecretSlotID) ends it at once.
func ExampleVault_UnlockWithSecret() {
	ctx := context.Background()
	v, _ := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	u, _ := v.Create(ctx, "erin", []byte("erin's long passphrase"))
	sealed, _ := u.Seal([]byte("unlocked with a passkey"), nil)

	credentialID := []byte("credential ID from WebAuthn")
	prfOutput := make([]byte, 32) // from the authenticator: never log or store it
	copy(prfOutput, "the PRF output for this passkey")
	err := v.AddSecretSlot(ctx, u, credentialID, prfOutput)
	fmt.Println("added:", err)

	pu, err := v.UnlockWithSecret(ctx, "erin", credentialID, prfOutput)
	plain, _ := pu.Open(sealed, nil)
	fmt.Println("right secret:", err, string(plain))

	wrong := make([]byte, 32)
	copy(wrong, "the PRF output of another passkey")
	_, err = v.UnlockWithSecret(ctx, "erin", credentialID, wrong)
	fmt.Println("wrong secret:", errors.Is(err, vault.ErrUnlockFailed))

	slotID, _ := vault.SecretSlotID(credentialID)
	_ = v.RemoveSlot(ctx, u, slotID)
	_, err = v.UnlockWithSecret(ctx, "erin", credentialID, prfOutput)
	fmt.Println("after removal:", errors.Is(err, vault.ErrUnlockFailed))
	// Output:
	// added: <nil>
	// right secret: <nil> unlocked with a passkey
	// wrong secret: true
	// after removal: true
}
