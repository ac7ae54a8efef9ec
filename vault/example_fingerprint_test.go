package vault_test

import (
	"context"
	"fmt"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// Two devices that unlocked the same vault show the same fingerprint, for
// the user to compare side by side. A vault the server substituted, even
// one made with the same passphrase, shows another.
func ExampleUnlocked_Fingerprint() {
	ctx := context.Background()
	store := memstore.New()
	laptop, _ := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	u, _ := laptop.Create(ctx, "ada", []byte("ada's long passphrase"))
	onLaptop, _ := u.Fingerprint()

	phone, _ := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	p, _ := phone.Unlock(ctx, "ada", []byte("ada's long passphrase"))
	onPhone, _ := p.Fingerprint()
	fmt.Println("laptop and phone agree:", onLaptop == onPhone, len(onPhone) == len("XXXX-XXXX-XXXX-XXXX"))

	// The server puts its own vault for ada in the phone's way.
	forgedStore := memstore.New()
	forger, _ := vault.New(forgedStore, vault.Config{KDF: kdf.InteractiveParams()})
	_, _ = forger.Create(ctx, "ada", []byte("ada's long passphrase"))
	phoneOnForged, _ := vault.New(forgedStore, vault.Config{KDF: kdf.InteractiveParams()})
	f, _ := phoneOnForged.Unlock(ctx, "ada", []byte("ada's long passphrase"))
	onForged, _ := f.Fingerprint()
	fmt.Println("substituted vault agrees:", onLaptop == onForged)

	u.Lock()
	_, err := u.Fingerprint()
	fmt.Println("after Lock:", err)
	// Output:
	// laptop and phone agree: true true
	// substituted vault agrees: false
	// after Lock: vault: locked
}
