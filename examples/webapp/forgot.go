package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/totp"
	"github.com/keyhold/keyhold/vault"
)

// "Forgot your password?": a user who forgot the password (which is also
// the vault's passphrase here, see signup) and kept a vault recovery key
// (shown at sign-up) sets a new one. The key opens the vault
// (vault.UnlockWithRecoveryKey, which spends it and makes a replacement,
// shown once on the answer), the vault gets the new password as its
// passphrase (vault.SetPassphrase) and the login its new hash, every
// session of the user ends, and then:
//
//   - a user without a second factor is logged in and unlocked, as a
//     password login would have them;
//   - a user with a TOTP authenticator is not logged in either: the form
//     asked for their code (or a login recovery code), which was checked
//     before anything else, and they are sent to the normal login, which
//     asks for the new password and then the code.
//
// The recovery key is one factor. A user who turned on a second factor
// must give it too, and it is checked first (forgotSecondFactor): a code
// that is missing, wrong, replayed or locked out means that the key is
// not tried on the user's vault at all (it is tried on the dummy vault,
// for the same work), so a stolen key alone spends nothing, writes
// nothing and ends no session. A user whose only second factor is a
// passkey cannot give it here: the form refuses them, and they sign in
// with the passkey and set a new password on the Account page
// (settings.go). The form always has the optional code field, so asking
// for it tells nobody which accounts have two-factor on.
//
// The form is limited per address with the login's limit, and each
// attempt goes through the account's lockout like a password, its code
// through the code lockout like any code: an unknown user, a wrong key, a
// missing or wrong code and a locked account get one answer, after the
// same work (forgotDummy, forgotSecondFactor).

// forgotPages are this flow's templates, parsed like app.go's pages.
var forgotPages = []string{"forgot", "forgotdone"}

func init() {
	for _, name := range forgotPages {
		pages[name] = template.Must(template.New(name).Funcs(templateFuncs).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
}

// errForgot is the one answer to a failed recovery: an unknown user, a
// wrong or spent key and a locked account look the same.
const errForgot = "That username, recovery key and code do not match. Nothing was changed, and your recovery key was not used. " +
	"If you turned on two-factor, enter a code from your authenticator app or one of your login recovery codes. " +
	"If you sign in with a passkey, sign in with it instead and set a new password on your Account page."

// maxCodeInput bounds the code field: a TOTP code is 6 or 8 digits, a
// login recovery code 39 characters.
const maxCodeInput = 128

// maxRecoveryKeyInput bounds the key field: a key is 39 characters
// (eight groups of four, dashes between); anything much longer is wrong.
const maxRecoveryKeyInput = 128

// forgotDummyUser is the user ID of the dummy vault that unknown users'
// and locked accounts' attempts try their key against. No user ID of the
// app (rand.Text: A-Z and 2-7) can equal it.
const forgotDummyUser = "webapp:forgot-dummy"

// forgotDummyVault holds the dummy vault, in memory (never stored, so no
// table holds a row for it): a vault with two recovery slots like a new
// user's, whose keys nobody ever sees. Made once per process (one KDF
// run), at start.
var forgotDummyVault = sync.OnceValues(func() (*vault.Vault, error) {
	ctx := context.Background()
	v, err := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		return nil, err
	}
	pass := []byte(rand.Text())
	defer clear(pass)
	u, err := v.Create(ctx, forgotDummyUser, pass)
	if err != nil {
		return nil, err
	}
	defer u.Lock()
	if _, err := v.RegenerateRecoveryKeys(ctx, u, 2); err != nil { // the keys are dropped unseen
		return nil, err
	}
	return v, nil
})

// forgotFloor is the least time a refused attempt takes, from the request
// to its answer. The form runs no slow KDF before it answers (a recovery
// key is derived quickly), so the store operations of the paths are a
// large share of its time: a TOTP user's wrong code is counted by the
// code lockout (writes), a locked account's attempt counts nothing.
// Waiting until the floor makes those paths answer alike in time. It is
// a floor, not a ceiling: a path slower than it (a loaded store) shows.
const forgotFloor = 100 * time.Millisecond

// waitFloor waits until forgotFloor has passed since start, or ctx ends.
func waitFloor(ctx context.Context, start time.Time) {
	t := time.NewTimer(forgotFloor - time.Since(start))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// hookForgotTry, when set (by tests), hears the user ID of each vault a
// recovery key is tried on: the user's, or forgotDummyUser.
var hookForgotTry atomic.Pointer[func(vaultUserID string)]

// hookForgotWrites, when set (by tests), runs between forgot's two writes
// (the login hash's, then the vault's): a test stops the process there.
var hookForgotWrites atomic.Pointer[func(userID string)]

// forgotRoutes registers the flow's pages.
func (a *app) forgotRoutes(handle func(string, handler, func(http.Handler) http.Handler)) {
	if _, err := forgotDummyVault(); err != nil {
		a.log.Error("webapp.forgot.dummy_failed", "error", err) // the form then fails closed (500)
	}
	handle("GET /forgot", a.page("forgot"), nil)
	handle("POST /forgot", a.forgot, a.loginPerIP.Middleware(ratelimit.ByIP(a.clients), a.tooMany("forgot")))
}

// forgotDummy does the work of a wrong recovery key on a user's vault and
// answers as one (vault.ErrUnlockFailed): a read of the vault store (for
// an ID that has no vault) and, on the dummy vault, a key derivation and
// a failing open per recovery slot.
func (a *app) forgotDummy(ctx context.Context, key string) error {
	if _, err := a.vault.Slots(ctx, forgotDummyUser); err != nil && !errors.Is(err, vault.ErrNoVault) {
		return err
	}
	dv, err := forgotDummyVault()
	if err != nil {
		return err
	}
	if hook := hookForgotTry.Load(); hook != nil {
		(*hook)(forgotDummyUser)
	}
	u, _, err := dv.UnlockWithRecoveryKey(ctx, forgotDummyUser, key)
	if err == nil { // cannot happen: nobody has its keys
		u.Lock()
		return vault.ErrUnlockFailed
	}
	if errors.Is(err, vault.ErrUnlockFailed) || errors.Is(err, vault.ErrConflict) {
		return vault.ErrUnlockFailed
	}
	return err
}

// forgotSecondFactor checks the second factor of the user's account
// before the recovery key is tried, and reports whether the reset may go
// on: the user has none (no authenticator, no passkey), or code is a
// right TOTP code (totp.Authenticator.Verify) or login recovery code
// (UseRecoveryCode; told apart by length), checked for this user through
// the code lockout (counted, a replayed code refused, a locked account
// refused after the same work). A user whose only second factor is a
// passkey gets false: this form cannot check a passkey.
//
// userID "" is an unknown user, or a locked account (the password
// lockout's Dummy): the same reads are done for forgotDummyUser, which has
// no factor, and the answer is false. The code is then not checked on
// any real account (a locked account's code is not spent either).
func (a *app) forgotSecondFactor(ctx context.Context, r *http.Request, userID, code string) (bool, error) {
	id := userID
	if id == "" {
		id = forgotDummyUser
	}
	if len(code) > maxCodeInput {
		code = "" // a wrong code, checked and counted as any other
	}
	totpOn, err := a.auth.Enrolled(ctx, id)
	if err != nil {
		return false, err
	}
	// The code is checked whether or not the user has an authenticator
	// (without one it is ErrNotEnrolled after the same read), so that
	// every attempt makes the same calls.
	if compact := strings.NewReplacer(" ", "", "-", "").Replace(code); len(compact) > 8 {
		_, err = a.auth.UseRecoveryCode(ctx, id, code, a.codeSource(r, id))
	} else {
		err = a.auth.Verify(ctx, id, code, a.codeSource(r, id))
	}
	if err != nil && !errors.Is(err, ratelimit.ErrRejected) && !errors.Is(err, totp.ErrNotEnrolled) {
		return false, err // the store failed: refused (fail closed)
	}
	if errors.Is(err, totp.ErrNotEnrolled) {
		// No code was checked, so the code lockout was not asked: its
		// counters are read instead (as many store operations as a
		// counted code, and nothing counted), so that an account without
		// an authenticator, or none at all, takes as long as one with.
		if _, err := a.codeLockout.Status(ctx, id, a.codeSource(r, id)); err != nil {
			return false, err
		}
	}
	hasPasskey, _, perr := a.passkeyInfo(ctx, id)
	if perr != nil {
		return false, perr
	}
	switch {
	case userID == "":
		return false, nil
	case totpOn:
		// A right code, or not: a wrong, replayed, missing or locked-out
		// one, or ErrNotEnrolled for a kind the user has not (recovery
		// codes) or no longer has (removed meanwhile: refused all the
		// same; the next attempt sees the account as it is).
		if err != nil {
			a.log.InfoContext(ctx, "webapp.forgot.code_failed", "user", userID, "locked", errors.Is(err, ratelimit.ErrLocked))
		}
		return err == nil, nil
	case hasPasskey: // a passkey only: this form cannot check it
		a.log.InfoContext(ctx, "webapp.forgot.passkey_user", "user", userID)
		return false, nil
	}
	return true, nil
}

// forgot takes the username, a vault recovery key, the code of a second
// factor if the user has one, and the new password.
//
// The new password is checked against the policy first, so a weak one
// does not spend the key. Then, once the key has opened the vault (and is
// spent), the two writes come in this order: the login hash first, the
// vault's passphrase second. If the process stops between them, the user
// logs in with the new password (and their second factor), and only the
// vault still has the forgotten passphrase: it opens with their other
// recovery key (here, again: this form sets the same password on both),
// or a passkey. The other order would leave the login on the forgotten
// password and the vault on the new one, which only a login lets the user
// type: no way in at all without another key. When the second write
// fails with an answer, the page shows the key's replacement and asks for
// the form again with it; the first write repeats harmlessly.
func (a *app) forgot(w http.ResponseWriter, r *http.Request) error {
	start := time.Now() // real time, not the app's clock: the floor is for a stopwatch
	name := formUsername(r)
	key := strings.TrimSpace(r.PostFormValue("key"))
	code := strings.TrimSpace(r.PostFormValue("code"))
	next := []byte(r.PostFormValue("password"))
	defer clear(next)
	if len(key) > maxRecoveryKeyInput {
		key = "" // a wrong key, answered and counted as any other
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	refuse := func(status int, msg string) error {
		return a.render(w, r, status, "forgot", pageData{Username: name, Error: msg})
	}
	if err := a.policy.Check(ctx, next, kdf.PolicyContext{Username: name, ServiceName: "keyhold-webapp"}); err != nil {
		pe, ok := errors.AsType[*kdf.PolicyError](err)
		if !ok {
			return err
		}
		return refuse(http.StatusBadRequest, "Nothing was changed, and your recovery key was not used. "+policyMessage(pe))
	}
	if !validUsername.MatchString(name) { // no such user can exist
		if _, err := a.forgotSecondFactor(ctx, r, "", code); err != nil {
			return err
		}
		if err := a.forgotDummy(ctx, key); !errors.Is(err, vault.ErrUnlockFailed) {
			return err
		}
		waitFloor(ctx, start)
		return refuse(http.StatusUnauthorized, errForgot)
	}
	var userID, stored string
	var u *vault.Unlocked
	var replacement vault.RecoveryKey
	err := a.lockout.Check(ctx, name, a.source(r, name), ratelimit.Credential{
		Verify: func(ctx context.Context) error {
			err := a.db.QueryRowContext(ctx, "SELECT id, password_hash FROM users WHERE username = ?", name).Scan(&userID, &stored)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && stored == deletingMark) {
				userID = ""
			} else if err != nil {
				return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
			}
			// The second factor first: without it the key is tried on
			// the dummy vault only (the same work), and nothing of the
			// user's is spent or written.
			ok, err := a.forgotSecondFactor(ctx, r, userID, code)
			if err != nil {
				return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
			}
			if !ok {
				return a.forgotDummy(ctx, key)
			}
			if hook := hookForgotTry.Load(); hook != nil {
				(*hook)(userID)
			}
			u, replacement, err = a.vault.UnlockWithRecoveryKey(ctx, userID, key)
			if errors.Is(err, vault.ErrConflict) { // another change won: nothing was spent
				return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
			}
			return err
		},
		Dummy: func(ctx context.Context) error {
			// The user's row is read as Verify reads it: the work here is
			// small, so that read is a fair share of it.
			var id, hash string
			if err := a.db.QueryRowContext(ctx, "SELECT id, password_hash FROM users WHERE username = ?", name).Scan(&id, &hash); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
			}
			if _, err := a.forgotSecondFactor(ctx, r, "", code); err != nil {
				return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
			}
			return a.forgotDummy(ctx, key)
		},
		Wrong: badPassword,
	})
	if a.rejected(ctx, err, userID) {
		a.log.InfoContext(ctx, "webapp.forgot.failed", "locked", errors.Is(err, ratelimit.ErrLocked))
		waitFloor(ctx, start)
		return refuse(http.StatusUnauthorized, errForgot)
	}
	if errors.Is(err, vault.ErrConflict) {
		return refuse(http.StatusConflict, "Your account changed while we checked your key. Nothing was changed, and your recovery key was not used: please try again.")
	}
	if err != nil {
		return err // the store or the KDF gate failed: refused (fail closed)
	}
	defer u.Lock()
	// The key is spent: from here every answer shows its replacement, and
	// the change runs to its end even if the client goes away.
	ctx = context.WithoutCancel(ctx)
	d := pageData{Keys: []string{replacement.Reveal()}}
	a.log.InfoContext(ctx, "webapp.forgot.key_used", "user", userID)
	a.notify(ctx, r, keyhold.RecoveryKeyUsed, userID, "")
	unfinished := func(msg string, err error) error {
		a.log.ErrorContext(ctx, "webapp.forgot.incomplete", "user", userID, "error", err)
		d.Error = msg
		return a.renderForgotDone(w, r, http.StatusConflict, d)
	}
	hash, err := a.hasher.Hash(ctx, next)
	if err != nil {
		return unfinished("Your password was not changed. Try again with the new recovery key below.", err)
	}
	// 1. The login hash, over the one read with the user: a password
	// change or a deletion that started meanwhile wins.
	res, err := a.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?", hash, userID, stored)
	if err == nil {
		if n, rerr := res.RowsAffected(); rerr != nil {
			err = rerr
		} else if n == 0 {
			err = errors.New("webapp: the password hash changed during the recovery")
		}
	}
	if err != nil {
		return unfinished("Your account changed while we reset your password, and your password was not changed. Try again with the new recovery key below.", err)
	}
	if hook := hookForgotWrites.Load(); hook != nil {
		(*hook)(userID)
	}
	// 2. The vault.
	if err := a.vault.SetPassphrase(ctx, u, next); err != nil {
		return unfinished("Your new password logs you in, but your notes still need your recovery key: send the form again with the new recovery key below to finish.", err)
	}
	a.log.InfoContext(ctx, "webapp.password_reset", "user", userID)
	a.notify(ctx, r, keyhold.PasswordChanged, userID, "recovery key")
	if a.vault.Config().Notifier == nil { // else the vault sent it
		a.notify(ctx, r, keyhold.PassphraseChanged, userID, "")
	}
	// Every session of the user ends (whoever knew the old password may
	// have one, and sessions hold the vault's key); the account's failure
	// count starts again, as after a password change.
	if err := a.m.RevokeAll(ctx, userID); err != nil {
		return unfinished("Your password is changed, but we could not log your other devices out. Log in, then log them out on the Devices page.", err)
	}
	if err := a.lockout.Reset(ctx, name); err != nil {
		a.log.WarnContext(ctx, "webapp.forgot.lockout_reset_failed", "user", userID, "error", err)
	}
	if d.Enrolled, err = a.auth.Enrolled(ctx, userID); err != nil {
		return err
	}
	if d.Enrolled { // the second factor is asked by the normal login
		return a.renderForgotDone(w, r, http.StatusOK, d)
	}
	if err := a.m.Login(ctx, userID, session.LoginOptions{}); err != nil {
		return err
	}
	// An authenticator enrolled since the check above (its Confirm stores
	// it before revoking the other sessions): this session ends, as in
	// login, and the normal login asks for the code.
	if d.Enrolled, err = a.auth.Enrolled(ctx, userID); err != nil || d.Enrolled {
		if lerr := a.m.Logout(ctx); lerr != nil {
			return lerr
		}
		if err != nil {
			return err
		}
		return a.renderForgotDone(w, r, http.StatusOK, d)
	}
	if err := a.knownDevices.Remember(w, name); err != nil {
		return err
	}
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	return a.renderForgotDone(w, r, http.StatusOK, d)
}

// renderForgotDone shows the result, with the spent key's replacement:
// once, never cached.
func (a *app) renderForgotDone(w http.ResponseWriter, r *http.Request, status int, d pageData) error {
	w.Header().Set("Cache-Control", "no-store")
	return a.render(w, r, status, "forgotdone", d)
}
