package vault_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// A record sealed for one user and context opens only for that user and
// that context.
func ExampleUnlocked_Seal() {
	ctx := context.Background()
	v, _ := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})

	alice, _ := v.Create(ctx, "alice", []byte("alice's long passphrase"))
	sealed, _ := alice.Seal([]byte("my bank PIN is 1234"), []byte("notes/1/body"))

	again, _ := v.Unlock(ctx, "alice", []byte("alice's long passphrase"))
	plain, err := again.Open(sealed, []byte("notes/1/body"))
	fmt.Printf("%s %v\n", plain, err)

	_, err = again.Open(sealed, []byte("notes/2/body"))
	fmt.Println("other record:", errors.Is(err, vault.ErrDecrypt))

	bob, _ := v.Create(ctx, "bob", []byte("bob's long passphrase"))
	_, err = bob.Open(sealed, []byte("notes/1/body"))
	fmt.Println("other user:", errors.Is(err, vault.ErrDecrypt))
	// Output:
	// my bank PIN is 1234 <nil>
	// other record: true
	// other user: true
}

// Changing the passphrase re-wraps the master key: the old passphrase stops
// working and existing records still open.
func ExampleVault_ChangePassphrase() {
	ctx := context.Background()
	v, _ := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	u, _ := v.Create(ctx, "carol", []byte("first passphrase"))
	sealed, _ := u.Seal([]byte("kept across the change"), nil)

	_ = v.ChangePassphrase(ctx, "carol", []byte("first passphrase"), []byte("second passphrase"))

	_, err := v.Unlock(ctx, "carol", []byte("first passphrase"))
	fmt.Println("old passphrase:", errors.Is(err, vault.ErrUnlockFailed))
	u2, _ := v.Unlock(ctx, "carol", []byte("second passphrase"))
	plain, _ := u2.Open(sealed, nil)
	fmt.Println(string(plain))
	// Output:
	// old passphrase: true
	// kept across the change
}

// A recovery key unlocks once, and is replaced by a new one.
func ExampleVault_UnlockWithRecoveryKey() {
	ctx := context.Background()
	v, _ := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	u, _ := v.Create(ctx, "dana", []byte("a passphrase she will forget"))
	keys, _ := v.RegenerateRecoveryKeys(ctx, u, 1)
	code := keys[0].Reveal() // show it to the user once
	fmt.Println("printed:", keys[0])

	_, replacement, err := v.UnlockWithRecoveryKey(ctx, "dana", code)
	fmt.Println("first use:", err, "replacement issued:", replacement.Reveal() != code)
	_, _, err = v.UnlockWithRecoveryKey(ctx, "dana", code)
	fmt.Println("second use:", errors.Is(err, vault.ErrUnlockFailed))
	// Output:
	// printed: [redacted]
	// first use: <nil> replacement issued: true
	// second use: true
}
