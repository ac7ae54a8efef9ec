package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/vault"
)

// maxRecoveryKeyLen bounds the recovery key a form may send: a key is 60
// or so characters as shown; anything far longer is not one.
const maxRecoveryKeyLen = 256

// unlockWithRecoveryKey unlocks a logged-in session's vault with one of
// the vault's recovery keys, for a user who has lost the password but is
// still logged in (or logged in with a passkey). The key is spent: the
// vault replaces it in the same write, and the replacement is shown once,
// in answer to this POST (Cache-Control: no-store), as the login recovery
// codes are. Every try is counted by the account's lockout, as a wrong
// password is; a locked account's try does the same work on a dummy vault
// and spends nothing.
func (a *app) unlockWithRecoveryKey(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context()) // RequireLogin ran
	name, err := a.usernameOf(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	key := r.PostFormValue("recovery_key")
	if len(key) > maxRecoveryKeyLen {
		key = "" // refused below like any wrong key, after the same work
	}
	u, replacement, err := a.checkRecoveryKey(ctx, r, name, info.UserID, key)
	if a.rejected(ctx, err, info.UserID) {
		a.log.InfoContext(ctx, "webapp.unlock.recovery_key_failed", "user", info.UserID, "locked", errors.Is(err, ratelimit.ErrLocked))
		return a.render(w, r, http.StatusUnauthorized, "unlock", pageData{Error: "That recovery key did not work.", RecoveryOpen: true})
	}
	if errors.Is(err, vault.ErrConflict) {
		return a.render(w, r, http.StatusConflict, "unlock", pageData{Error: "Your account changed while we checked your key, which was not used: please try again.", RecoveryOpen: true})
	}
	if err != nil {
		return err
	}
	defer u.Lock()
	a.log.InfoContext(ctx, "webapp.unlock.recovery_key_used", "user", info.UserID)
	a.notify(ctx, r, keyhold.RecoveryKeyUsed, info.UserID, "")
	if err := a.knownDevices.Remember(w, name); err != nil {
		return err
	}
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	return a.render(w, r, http.StatusOK, "recovery", pageData{
		Keys:   []string{replacement.Reveal()},
		Notice: "Your notes are unlocked. The recovery key you used no longer works: this one replaces it. Set a new password on the Account page if you have forgotten yours.",
	})
}

// checkRecoveryKey opens a logged-in user's vault with one of its recovery
// keys through the account's lockout, counted as a password is: the key is
// spent and its replacement returned. A locked account's attempt does the
// same work on the dummy vault and spends nothing; a change of the vault
// that won the race (vault.ErrConflict) spent nothing and is not counted.
func (a *app) checkRecoveryKey(ctx context.Context, r *http.Request, name, userID, key string) (u *vault.Unlocked, replacement vault.RecoveryKey, err error) {
	err = a.lockout.Check(ctx, name, a.source(r, name), ratelimit.Credential{
		Verify: func(ctx context.Context) (err error) {
			u, replacement, err = a.vault.UnlockWithRecoveryKey(ctx, userID, key)
			if errors.Is(err, vault.ErrConflict) {
				return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
			}
			return err
		},
		Dummy: func(ctx context.Context) error { return a.forgotDummy(ctx, key) },
		Wrong: badPassword,
	})
	return u, replacement, err
}
