package vault_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// A user who forgot the passphrase opens the vault with a recovery key,
// then sets a new passphrase without the old one. The records stay as they
// were, the forgotten passphrase no longer opens anything, and the other
// slots (here the replacement recovery key) still work.
func ExampleVault_SetPassphrase() {
	ctx := context.Background()
	v, _ := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	u, _ := v.Create(ctx, "erin", []byte("a passphrase she forgot"))
	sealed, _ := u.Seal([]byte("kept through the recovery"), []byte("notes/1/body"))
	keys, _ := v.RegenerateRecoveryKeys(ctx, u, 1)
	u.Lock()

	// Check the new passphrase against a kdf.Policy, and the account's
	// second factor, before this point: the key alone is one factor.
	opened, replacement, err := v.UnlockWithRecoveryKey(ctx, "erin", keys[0].Reveal())
	if err != nil {
		fmt.Println(err)
		return
	}
	err = v.SetPassphrase(ctx, opened, []byte("a new passphrase she keeps"))
	opened.Lock()
	fmt.Println("set:", err)

	_, err = v.Unlock(ctx, "erin", []byte("a passphrase she forgot"))
	fmt.Println("forgotten passphrase:", errors.Is(err, vault.ErrUnlockFailed))
	again, _ := v.Unlock(ctx, "erin", []byte("a new passphrase she keeps"))
	plain, _ := again.Open(sealed, []byte("notes/1/body"))
	fmt.Println("new passphrase opens:", string(plain))
	_, _, err = v.UnlockWithRecoveryKey(ctx, "erin", replacement.Reveal())
	fmt.Println("replacement recovery key:", err)
	// Output:
	// set: <nil>
	// forgotten passphrase: true
	// new passphrase opens: kept through the recovery
	// replacement recovery key: <nil>
}
