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

// A versioned record: the application increases the version at each write
// and remembers the highest it has seen where the database's attacker
// cannot roll it back; an older ciphertext put back then refuses to open.
func ExampleUnlocked_OpenVersion() {
	ctx := context.Background()
	v, _ := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	u, _ := v.Create(ctx, "erin", []byte("erin's long passphrase"))

	first, _ := u.SealVersion([]byte("pay Bob 10"), []byte("notes/3/body"), 1)
	second, _ := u.SealVersion([]byte("pay Bob 1000"), []byte("notes/3/body"), 2)
	expected := uint64(2) // kept out of the attacker's reach

	plain, version, err := u.OpenVersion(second, []byte("notes/3/body"), expected)
	fmt.Printf("%s (version %d) %v\n", plain, version, err)
	_, version, err = u.OpenVersion(first, []byte("notes/3/body"), expected)
	fmt.Println("older copy put back:", version, errors.Is(err, vault.ErrRollback))
	// Output:
	// pay Bob 1000 (version 2) <nil>
	// older copy put back: 1 true
}

// Unlock answers a user without a vault like a wrong passphrase, after the
// same work; UnlockDummy spends that work where the application refuses
// without checking (a locked account).
func ExampleVault_UnlockDummy() {
	ctx := context.Background()
	v, _ := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	_, _ = v.Create(ctx, "frank", []byte("frank's long passphrase"))

	_, wrong := v.Unlock(ctx, "frank", []byte("a guess"))
	_, missing := v.Unlock(ctx, "nobody", []byte("a guess"))
	fmt.Println(wrong, "|", missing)
	fmt.Println("no vault, if the app must know:", errors.Is(wrong, vault.ErrNoVault), errors.Is(missing, vault.ErrNoVault))

	locked := true // ratelimit.Lockout refused the attempt
	if locked {
		err := v.UnlockDummy(ctx, []byte("a guess"))
		fmt.Println("locked:", errors.Is(err, vault.ErrUnlockFailed))
	}
	// Output:
	// vault: unlock failed | vault: unlock failed
	// no vault, if the app must know: false true
	// locked: true
}
