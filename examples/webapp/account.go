package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/totp"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/account"
)

var validUsername = regexp.MustCompile(`^[a-z0-9._-]{1,32}$`)

func formUsername(r *http.Request) string {
	return strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
}

func (a *app) signup(w http.ResponseWriter, r *http.Request) error {
	name, password := formUsername(r), []byte(r.PostFormValue("password"))
	ip, _ := a.clients.Client(r)
	ctx := kdf.WithGateKey(r.Context(), "ip:"+ip.String()) // sign-ups take their turn at the KDF gate per address
	if !validUsername.MatchString(name) {
		return a.render(w, r, http.StatusBadRequest, "signup", pageData{Username: name, Error: "A username is 1 to 32 letters, digits, dots, dashes or underscores."})
	}
	if err := a.policy.Check(ctx, password, kdf.PolicyContext{Username: name, ServiceName: "keyhold-webapp"}); err != nil {
		pe, ok := errors.AsType[*kdf.PolicyError](err)
		if !ok {
			return err
		}
		return a.render(w, r, http.StatusBadRequest, "signup", pageData{Username: name, Error: policyMessage(pe)})
	}
	hash, err := a.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	// The user ID is random, not the username: it names the user's vault
	// and sessions, and appears in the audit log.
	userID := rand.Text()
	res, err := a.db.ExecContext(ctx, "INSERT INTO users (id, username, password_hash) VALUES (?, ?, ?) ON CONFLICT (username) DO NOTHING", userID, name, hash)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Sign-up with usernames cannot hide which ones exist; the form is
		// limited per client address (3 per hour) to slow enumeration.
		return a.render(w, r, http.StatusConflict, "signup", pageData{Username: name, Error: "That username is taken."})
	}
	// The vault's passphrase is the login password, so that logging in
	// unlocks it. A real app may ask for a separate vault passphrase (the
	// server then never sees it at login); either way a password reset
	// cannot recover the notes, only a recovery key can.
	u, err := a.vault.Create(ctx, userID, password)
	if err != nil {
		// Undo the user row (the users table and the vault are not written
		// in one transaction), so that the name can be chosen again.
		_, _ = a.db.ExecContext(context.WithoutCancel(ctx), "DELETE FROM users WHERE id = ?", userID)
		return err
	}
	defer u.Lock()
	keys, err := a.vault.RegenerateRecoveryKeys(ctx, u, 2)
	if err != nil {
		return err
	}
	if err := a.m.Login(ctx, userID, session.LoginOptions{}); err != nil {
		return err
	}
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "webapp.signup", "user", userID)
	// The keys are shown once, on a page of their own (GET), so that
	// reloading it does not post the sign-up form again: until then they
	// wait sealed under the user's vault, bound to this purpose.
	var text []byte
	for _, k := range keys {
		text = append(append(text, k.Reveal()...), '\n')
	}
	sealed, err := u.Seal(text, recoveryKeysContext)
	clear(text)
	if err != nil {
		return err
	}
	if _, err := a.db.ExecContext(ctx, "INSERT INTO keys_to_show (user_id, sealed) VALUES (?, ?)", userID, sealed); err != nil {
		return err
	}
	return redirect(w, r, "/recovery-keys")
}

// recoveryKeysContext binds the sealed recovery keys waiting to be shown.
var recoveryKeysContext = []byte("webapp/recovery-keys-to-show")

// recoveryKeys shows the recovery keys made at sign-up, once: they are
// deleted as they are read.
func (a *app) recoveryKeys(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.m.Unlocked(ctx)
	if err != nil {
		return err
	}
	shownOnce := func() error {
		return a.render(w, r, http.StatusOK, "recovery", pageData{Error: "Your recovery keys were shown once, right after sign-up, and are not kept in a form we can show again."})
	}
	var sealed []byte
	err = a.db.QueryRowContext(ctx, "SELECT sealed FROM keys_to_show WHERE user_id = ?", u.UserID()).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return shownOnce()
	}
	if err != nil {
		return err
	}
	// Opened before it is deleted: keys sealed under a key this session
	// does not hold (a key rotation that stored them and stopped before
	// the session moved to the new key) stay until a session can open
	// them, rather than being lost to a failed open.
	text, err := u.Open(sealed, recoveryKeysContext)
	if err != nil {
		return a.render(w, r, http.StatusConflict, "recovery", pageData{Error: "Your recovery keys are waiting under a newer encryption key than this session holds. Lock your notes, unlock them again, and come back to this page; or make new recovery keys on the Account page."})
	}
	defer clear(text)
	// Shown once: deleted if still the row read (another tab may have
	// shown it meanwhile).
	res, err := a.db.ExecContext(ctx, "DELETE FROM keys_to_show WHERE user_id = ? AND sealed = ?", u.UserID(), sealed)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return shownOnce()
	}
	// Shown once; the response is Cache-Control: no-store (authenticated).
	return a.render(w, r, http.StatusOK, "recovery", pageData{Keys: strings.Fields(string(text))})
}

// policyMessage says what to change, never echoing the password.
func policyMessage(pe *kdf.PolicyError) string {
	var msgs []string
	for _, v := range pe.Violations {
		switch v.Reason {
		case kdf.ReasonTooShort:
			msgs = append(msgs, "Use at least 15 characters; a few unrelated words work well.")
		case kdf.ReasonBlocklisted:
			msgs = append(msgs, "That password is too common.")
		case kdf.ReasonContextWord:
			msgs = append(msgs, "Do not use your username or the site's name in it.")
		default:
			msgs = append(msgs, strings.TrimPrefix(v.Error(), "kdf: "))
		}
	}
	return strings.Join(msgs, " ")
}

// errLogin is the one answer to a failed login: an unknown user and a
// wrong password look the same, in the response and (thanks to
// VerifyDummy) in time.
const errLogin = "Wrong username or password."

// hookLoginCheck, when set (by tests), hears each password check that a
// login makes, just before it: "verify" against the user's stored hash,
// "dummy" for the same work without one (a name no user has or can have,
// an account being deleted, a locked name). Every login that reaches its
// handler makes exactly one.
var hookLoginCheck atomic.Pointer[func(kind string)]

func loginCheck(kind string) {
	if h := hookLoginCheck.Load(); h != nil {
		(*h)(kind)
	}
}

// badPassword reports the errors that mean "wrong password" to a user.
// vault.Unlock passes kdf's input errors through rather than folding them
// into ErrUnlockFailed.
func badPassword(err error) bool {
	return errors.Is(err, kdf.ErrMismatch) || errors.Is(err, vault.ErrUnlockFailed) ||
		errors.Is(err, kdf.ErrTooLong) || errors.Is(err, kdf.ErrInvalidUTF8)
}

func (a *app) login(w http.ResponseWriter, r *http.Request) error {
	name, password := formUsername(r), []byte(r.PostFormValue("password"))
	// Every KDF run for this name takes its turn at the KDF gate with the
	// other names': a flood on one account cannot fill the queue that
	// everyone's logins need. A browser the account recognises has places
	// of its own, as at the admission gate (admission.go).
	ctx := kdf.WithGateKey(r.Context(), admissionKey(a, r))
	if !validUsername.MatchString(name) { // no such user can exist
		loginCheck("dummy")
		_ = a.hasher.VerifyDummy(ctx, password)
		return a.render(w, r, http.StatusUnauthorized, "login", pageData{Username: name, Error: errLogin})
	}
	// The lockout counts the attempt on the submitted name before checking
	// anything, whether or not the user exists (unknown names lock like
	// real ones), and spends the same work when the name is locked.
	var userID string
	err := a.lockout.Check(ctx, name, a.source(r, name), ratelimit.Credential{
		Verify: func(ctx context.Context) error {
			var stored string
			err := a.db.QueryRowContext(ctx, "SELECT id, password_hash FROM users WHERE username = ?", name).Scan(&userID, &stored)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && stored == deletingMark) {
				loginCheck("dummy")
				return a.hasher.VerifyDummy(ctx, password) // kdf.ErrMismatch, after the same work
			}
			if err != nil {
				return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
			}
			loginCheck("verify")
			rehash, err := a.hasher.Verify(ctx, stored, password)
			if err == nil && rehash {
				a.rehash(ctx, userID, password)
			}
			return err
		},
		Dummy: func(ctx context.Context) error {
			loginCheck("dummy")
			return a.hasher.VerifyDummy(ctx, password)
		},
		Wrong: badPassword,
	})
	if a.rejected(ctx, err, userID) { // wrong password, unknown user or locked: one answer
		a.log.InfoContext(ctx, "webapp.login.failed", "locked", errors.Is(err, ratelimit.ErrLocked))
		return a.render(w, r, http.StatusUnauthorized, "login", pageData{Username: name, Error: errLogin})
	}
	if errors.Is(err, kdf.ErrPasswordChangeRequired) {
		// The right password, on a hash the operator marked compromised
		// (kdf.MarkCompromised). This example has no password-change page:
		// it says so rather than log the user in with that password.
		a.log.WarnContext(ctx, "webapp.password_change_required", "user", userID)
		return &userError{status: http.StatusForbidden, msg: "Your password must be changed before you can log in. Ask the site's operator to reset it."}
	}
	if err != nil {
		return err // the store or the KDF gate failed: refused (fail closed)
	}
	enrolled, err := a.auth.Enrolled(ctx, userID)
	if err != nil {
		return err
	}
	if enrolled {
		// The password was right; the login now waits for a code
		// (twofactor.go). The vault is not unlocked into a pending
		// session: it is unlocked after the code, with the password again.
		// Nor is the browser remembered as the owner's yet: a device
		// cookie gives its browser failure counters of its own, which
		// whoever has the password alone must not collect.
		if err := a.m.Login(ctx, userID, session.LoginOptions{SecondFactorPending: true}); err != nil {
			return err
		}
		return redirect(w, r, "/login/2fa")
	}
	if err := a.m.Login(ctx, userID, session.LoginOptions{}); err != nil {
		return err
	}
	// The user may have enrolled an authenticator between the check above
	// and the login (from a session of their own): its Confirm stores the
	// authenticator before it revokes the other sessions, so checking again
	// now catches it, and this password-only session ends.
	if enrolled, err := a.auth.Enrolled(ctx, userID); err != nil || enrolled {
		if lerr := a.m.Logout(ctx); lerr != nil {
			return lerr
		}
		if err != nil {
			return err
		}
		return a.render(w, r, http.StatusConflict, "login", pageData{Username: name, Error: "Your account's sign-in changed while you were logging in. Please log in again."})
	}
	if err := a.knownDevices.Remember(w, name); err != nil {
		return err
	}
	// The same password unlocks the vault (see signup).
	u, err := a.vault.Unlock(ctx, userID, password)
	if err != nil {
		a.log.WarnContext(ctx, "webapp.unlock_at_login_failed", "user", userID, "error", err)
		return redirect(w, r, "/unlock") // logged in, locked
	}
	defer u.Lock()
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	return redirect(w, r, "/notes")
}

// rejected reports whether Lockout.Check's err gets the wrong-credential
// answer: a wrong credential, a locked account, or a stored hash or vault
// slot kdf cannot use (parameters over its limits, a malformed or
// unsupported format). Check answers and counts those like a wrong
// password (ratelimit.ErrRejected), after the same work, so the page does
// not tell such an account from an unknown one; they are the operator's to
// fix (raise kdf.Limits, or reset the password), so they are also logged
// as errors.
func (a *app) rejected(ctx context.Context, err error, userID string) bool {
	for _, unusable := range []error{kdf.ErrParamsOutOfBounds, kdf.ErrMalformedHash, kdf.ErrUnsupportedAlgorithm, kdf.ErrUnknownPepper} {
		if errors.Is(err, unusable) {
			a.log.ErrorContext(ctx, "webapp.stored_credential_unusable", "user", userID, "error", err)
			break
		}
	}
	return errors.Is(err, ratelimit.ErrRejected)
}

// source is where an attempt on the account comes from: the client's
// address, and this browser if it has logged in to the account before
// (its own failure counter).
func (a *app) source(r *http.Request, name string) ratelimit.Source {
	ip, _ := a.clients.Client(r)
	return ratelimit.Source{IP: ip, Device: a.knownDevices.Recognize(r, name)}
}

// codeSource is the source of a second-factor code attempt: the client's
// address and, if this browser gave a right code for the user before, its
// second-factor device (never a knownDevices cookie, which a password
// alone may have earned).
func (a *app) codeSource(r *http.Request, userID string) ratelimit.Source {
	ip, _ := a.clients.Client(r)
	return ratelimit.Source{IP: ip, Device: a.codeDevices.Recognize(r, userID)}
}

// usernameOf returns the username of a logged-in user: the lockout counts
// failures by username on every path.
func (a *app) usernameOf(ctx context.Context, userID string) (string, error) {
	var name string
	err := a.db.QueryRowContext(ctx, "SELECT username FROM users WHERE id = ?", userID).Scan(&name)
	return name, err
}

// rehash stores a new hash of a password whose stored hash uses older
// parameters. Failing to do so does not fail the login.
func (a *app) rehash(ctx context.Context, userID string, password []byte) {
	hash, err := a.hasher.Hash(ctx, password)
	if err == nil {
		_, err = a.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", hash, userID)
	}
	if err != nil {
		a.log.WarnContext(ctx, "webapp.rehash_failed", "user", userID, "error", err)
	}
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) error {
	if err := a.m.Logout(r.Context()); err != nil {
		return err
	}
	return redirect(w, r, "/")
}

func (a *app) lock(w http.ResponseWriter, r *http.Request) error {
	if err := a.m.Lock(r.Context()); err != nil {
		return err
	}
	return redirect(w, r, "/unlock")
}

func (a *app) unlock(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context()) // RequireLogin ran
	name, err := a.usernameOf(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	password := []byte(r.PostFormValue("password"))
	var u *vault.Unlocked
	err = a.lockout.Check(ctx, name, a.source(r, name), ratelimit.Credential{
		Verify: func(ctx context.Context) (err error) {
			u, err = a.vault.Unlock(ctx, info.UserID, password)
			return err
		},
		Dummy: func(ctx context.Context) error { return a.vault.UnlockDummy(ctx, password) },
		Wrong: badPassword,
	})
	if a.rejected(ctx, err, info.UserID) {
		a.log.InfoContext(ctx, "webapp.unlock.failed", "user", info.UserID, "locked", errors.Is(err, ratelimit.ErrLocked))
		return a.render(w, r, http.StatusUnauthorized, "unlock", pageData{Error: "Wrong password."})
	}
	if err != nil {
		return err
	}
	defer u.Lock()
	if err := a.knownDevices.Remember(w, name); err != nil {
		return err
	}
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	return redirect(w, r, "/notes")
}

// reauthPage asks for the password again, and for a TOTP code too when
// the user has an authenticator but the session was never rated
// multi-factor (package totp's changes need both).
func (a *app) reauthPage(w http.ResponseWriter, r *http.Request) error {
	d, err := a.reauthData(r, r.URL.Query().Get("next"))
	if err != nil {
		return err
	}
	return a.render(w, r, http.StatusOK, "reauth", d)
}

func (a *app) reauthData(r *http.Request, next string) (pageData, error) {
	info, _ := a.m.Current(r.Context()) // RequireLogin ran
	d := pageData{Next: session.SafeRedirect(next, "/devices")}
	has, _, err := a.passkeyInfo(r.Context(), info.UserID)
	if err != nil {
		return pageData{}, err
	}
	d.HasPasskeys = has
	if !info.MultiFactor {
		enrolled, err := a.auth.Enrolled(r.Context(), info.UserID)
		if err != nil {
			return pageData{}, err
		}
		d.AskCode = enrolled
		// Adding or removing a passkey needs a multi-factor session: with
		// no authenticator app, only a passkey gives one.
		d.NeedPasskey = has && !enrolled && strings.HasPrefix(d.Next, "/passkeys")
	}
	return d, nil
}

// reauth checks the password again (step-up) before sensitive actions,
// and a TOTP code when reauthData asks for one. A session rated
// multi-factor at login stays so (session.Manager.Reauthenticated keeps
// the rating): the password alone refreshes it.
func (a *app) reauth(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	d, err := a.reauthData(r, r.PostFormValue("next"))
	if err != nil {
		return err
	}
	var name, stored string
	if err := a.db.QueryRowContext(r.Context(), "SELECT username, password_hash FROM users WHERE id = ?", info.UserID).Scan(&name, &stored); err != nil {
		return err
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	password := []byte(r.PostFormValue("password"))
	err = a.lockout.Check(ctx, name, a.source(r, name), ratelimit.Credential{
		Verify: func(ctx context.Context) error {
			_, err := a.hasher.Verify(ctx, stored, password)
			return err
		},
		Dummy: func(ctx context.Context) error { return a.hasher.VerifyDummy(ctx, password) },
		Wrong: badPassword,
	})
	if a.rejected(ctx, err, info.UserID) {
		a.log.InfoContext(ctx, "webapp.reauth.failed", "user", info.UserID, "locked", errors.Is(err, ratelimit.ErrLocked))
		d.Error = "Wrong password."
		return a.render(w, r, http.StatusUnauthorized, "reauth", d)
	}
	if err != nil {
		return err
	}
	if err := a.knownDevices.Remember(w, name); err != nil {
		return err
	}
	codeChecked := false
	if d.AskCode {
		err := a.auth.Verify(ctx, info.UserID, r.PostFormValue("code"), a.codeSource(r, info.UserID))
		switch {
		case errors.Is(err, ratelimit.ErrRejected):
			a.log.InfoContext(ctx, "webapp.reauth.code_failed", "user", info.UserID, "locked", errors.Is(err, ratelimit.ErrLocked))
			d.Error = errCode
			return a.render(w, r, http.StatusUnauthorized, "reauth", d)
		case errors.Is(err, totp.ErrNotEnrolled): // removed meanwhile: the password is all there is
		case err != nil:
			return err
		default:
			codeChecked = true
			if err := a.codeDevices.Remember(w, info.UserID); err != nil {
				return err
			}
		}
	}
	if err := a.m.Reauthenticated(ctx); err != nil {
		return err
	}
	if codeChecked {
		if err := a.m.SecondFactorVerified(ctx, session.FactorTOTP); err != nil {
			return err
		}
	}
	return redirect(w, r, d.Next)
}

// deletingMark replaces the password hash of an account being deleted: no
// password matches it (login answers as for an unknown user), and
// finishDeletions completes what a crash or an error cut short.
const deletingMark = "!deleting"

// deleteAccount deletes the user's account, after a recent password
// (RequireFresh) and the username typed again.
func (a *app) deleteAccount(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	name, err := a.usernameOf(ctx, info.UserID)
	if err != nil {
		return err
	}
	if strings.ToLower(strings.TrimSpace(r.PostFormValue("confirm"))) != name {
		return a.renderAccount(w, r, http.StatusBadRequest, pageData{Error: "Type your username to confirm."})
	}
	if err := a.removeAccount(ctx, info.UserID, name); err != nil {
		return err
	}
	// account.Delete ended every session of the user, this one too: the
	// browser's cookie goes with it.
	if err := a.m.Logout(ctx); err != nil {
		return err
	}
	return redirect(w, r, "/?deleted=1")
}

// removeAccount deletes everything the app keeps of a user, in the order
// package account asks for: the account is first made unable to log in,
// then keyhold's state goes (sessions, the vault, which crypto-shreds the
// notes, the second factors, the failure counters), then the app's rows.
// Each step can run again: a deletion cut short is finished by the next
// call (finishDeletions at start-up). It runs to the end even if the
// client goes away.
func (a *app) removeAccount(ctx context.Context, userID, name string) error {
	ctx = context.WithoutCancel(ctx)
	if _, err := a.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", deletingMark, userID); err != nil {
		return err
	}
	// Sessions, the vault, the TOTP authenticators' sealed secrets and the
	// recovery codes' hashes (with the code lockout's counters of the
	// user), the passkeys and their user handle (with the passkey
	// lockout's counters of the user), the private notes' vault record
	// and sealed records (zero-knowledge blobs), the login lockout's
	// counters of the name.
	err := account.Delete(ctx, userID, name, account.Parts{Sessions: a.m, Vault: a.vault,
		Lockouts: []*ratelimit.Lockout{a.lockout}, Factors: a.auth, Passkeys: a.passkeys, ZeroKnowledge: a.zk})
	if err != nil {
		return err
	}
	// The step-up and unlock limits, and the private notes' one, count
	// per user ID, not per name.
	if err := a.kdfPerAccount.Reset(ctx, userID); err != nil {
		return err
	}
	if err := a.zkPerUser.Reset(ctx, userID); err != nil {
		return err
	}
	if _, err := a.db.ExecContext(ctx, "DELETE FROM users WHERE id = ?", userID); err != nil { // notes and keys_to_show cascade
		return err
	}
	a.log.InfoContext(ctx, "webapp.account_deleted", "user", userID)
	return nil
}

// finishDeletions completes the deletions that were cut short. A failure
// is logged; the next start tries again.
func (a *app) finishDeletions(ctx context.Context) {
	rows, err := a.db.QueryContext(ctx, "SELECT id, username FROM users WHERE password_hash = ?", deletingMark)
	if err != nil {
		a.log.ErrorContext(ctx, "webapp.account_deletion_failed", "error", err)
		return
	}
	var users [][2]string
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			break
		}
		users = append(users, [2]string{id, name})
	}
	err = errors.Join(rows.Err(), rows.Close()) // before the deletions: the pool has one connection
	if err != nil {
		a.log.ErrorContext(ctx, "webapp.account_deletion_failed", "error", err)
	}
	for _, u := range users {
		if err := a.removeAccount(ctx, u[0], u[1]); err != nil {
			a.log.ErrorContext(ctx, "webapp.account_deletion_failed", "user", u[0], "error", err)
		}
	}
}
