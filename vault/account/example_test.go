package account_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/account"
)

// An account is deleted with one call, after the application has stopped
// the account from logging in. Its vault is crypto-shredded: whatever
// the application sealed under it opens under nothing, now or later.
func ExampleDelete() {
	ctx := context.Background()
	store := memstore.New()
	quiet := slog.New(slog.DiscardHandler)
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		panic(err)
	}
	m, err := session.New(store, session.Config{Logger: quiet})
	if err != nil {
		panic(err)
	}
	lockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Logger: quiet})
	if err != nil {
		panic(err)
	}

	u, err := v.Create(ctx, "user-42", []byte("correct horse battery staple"))
	if err != nil {
		panic(err)
	}
	// The application keeps what it seals with u in its own tables.
	u.Lock()

	// ... the application marks user-42 as being deleted, so that it can
	// no longer log in; then, until Delete returns nil:
	err = account.Delete(ctx, "user-42", "alice@example.org", account.Parts{
		Sessions: m,
		Vault:    v,
		Lockouts: []*ratelimit.Lockout{lockout},
	})
	fmt.Println("deleted:", err)

	_, err = v.Unlock(ctx, "user-42", []byte("correct horse battery staple"))
	fmt.Println("unlock after delete, no vault:", errors.Is(err, vault.ErrNoVault))
	fmt.Println("delete again:", account.Delete(ctx, "user-42", "alice@example.org", account.Parts{Sessions: m, Vault: v}))
	// Output:
	// deleted: <nil>
	// unlock after delete, no vault: true
	// delete again: <nil>
}
