package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/vault"
)

var validUsername = regexp.MustCompile(`^[a-z0-9._-]{1,32}$`)

func formUsername(r *http.Request) string {
	return strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
}

func (a *app) signup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name, password := formUsername(r), []byte(r.PostFormValue("password"))
	if !validUsername.MatchString(name) {
		return a.render(w, r, http.StatusBadRequest, "signup", pageData{Error: "A username is 1 to 32 letters, digits, dots, dashes or underscores."})
	}
	if err := a.policy.Check(ctx, password, kdf.PolicyContext{Username: name, ServiceName: "keyhold-webapp"}); err != nil {
		pe, ok := errors.AsType[*kdf.PolicyError](err)
		if !ok {
			return err
		}
		return a.render(w, r, http.StatusBadRequest, "signup", pageData{Error: policyMessage(pe)})
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
		return a.render(w, r, http.StatusConflict, "signup", pageData{Error: "That username is taken."})
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
	d := pageData{}
	for _, k := range keys {
		d.Keys = append(d.Keys, k.Reveal())
	}
	// Shown once; the response is Cache-Control: no-store (it sets a cookie).
	return a.render(w, r, http.StatusOK, "recovery", d)
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

// badPassword reports the errors that mean "wrong password" to a user.
// vault.Unlock passes kdf's input errors through rather than folding them
// into ErrUnlockFailed.
func badPassword(err error) bool {
	return errors.Is(err, kdf.ErrMismatch) || errors.Is(err, vault.ErrUnlockFailed) ||
		errors.Is(err, kdf.ErrTooLong) || errors.Is(err, kdf.ErrInvalidUTF8)
}

func (a *app) login(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name, password := formUsername(r), []byte(r.PostFormValue("password"))
	if !validUsername.MatchString(name) { // no such user can exist
		_ = a.hasher.VerifyDummy(ctx, password)
		return a.render(w, r, http.StatusUnauthorized, "login", pageData{Error: errLogin})
	}
	// Count the attempt on the submitted name before checking anything,
	// whether or not the user exists: unknown names lock like real ones.
	att, err := a.beginAttempt(r, name)
	if errors.Is(err, ratelimit.ErrLocked) {
		// The same answer as a wrong password, after the same work.
		_ = a.hasher.VerifyDummy(ctx, password)
		return a.render(w, r, http.StatusUnauthorized, "login", pageData{Error: errLogin})
	}
	if err != nil {
		return err // the store failed: refused (fail closed)
	}
	var userID, stored string
	err = a.db.QueryRowContext(ctx, "SELECT id, password_hash FROM users WHERE username = ?", name).Scan(&userID, &stored)
	reason := "wrong_password"
	switch {
	case errors.Is(err, sql.ErrNoRows):
		reason, err = "unknown_user", a.hasher.VerifyDummy(ctx, password)
	case err == nil:
		var rehash bool
		if rehash, err = a.hasher.Verify(ctx, stored, password); err == nil && rehash {
			a.rehash(ctx, userID, password)
		}
	}
	if badPassword(err) {
		att.Failed(ctx)
		a.log.InfoContext(ctx, "webapp.login.failed", "reason", reason)
		return a.render(w, r, http.StatusUnauthorized, "login", pageData{Error: errLogin})
	}
	if err != nil {
		return err
	}
	if err := a.succeeded(w, r, att, name); err != nil {
		return err
	}
	if err := a.m.Login(ctx, userID, session.LoginOptions{}); err != nil {
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

// beginAttempt counts one password check for the account name, on the
// counter of this browser if it has logged in to the account before.
func (a *app) beginAttempt(r *http.Request, name string) (*ratelimit.Attempt, error) {
	ip, _ := a.clients.Client(r)
	return a.lockout.Begin(r.Context(), name, ratelimit.Source{IP: ip, Device: a.knownDevices.Recognize(r, name)})
}

// succeeded resets the account's failure count and remembers the browser
// as one of the account's devices.
func (a *app) succeeded(w http.ResponseWriter, r *http.Request, att *ratelimit.Attempt, name string) error {
	// The reset must not be lost to a client that hangs up now.
	if err := att.Succeeded(context.WithoutCancel(r.Context())); err != nil {
		return err
	}
	return a.knownDevices.Remember(w, name)
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
	ctx := r.Context()
	info, _ := a.m.Current(ctx) // RequireLogin ran
	name, err := a.usernameOf(ctx, info.UserID)
	if err != nil {
		return err
	}
	att, err := a.beginAttempt(r, name)
	if errors.Is(err, ratelimit.ErrLocked) {
		return a.render(w, r, http.StatusUnauthorized, "unlock", pageData{Error: "Wrong password."})
	}
	if err != nil {
		return err
	}
	u, err := a.vault.Unlock(ctx, info.UserID, []byte(r.PostFormValue("password")))
	if badPassword(err) {
		att.Failed(ctx)
		a.log.InfoContext(ctx, "webapp.unlock.failed", "user", info.UserID)
		return a.render(w, r, http.StatusUnauthorized, "unlock", pageData{Error: "Wrong password."})
	}
	if err != nil {
		return err
	}
	defer u.Lock()
	if err := a.succeeded(w, r, att, name); err != nil {
		return err
	}
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	return redirect(w, r, "/notes")
}

func (a *app) devices(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	list, err := a.m.Devices(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	return a.render(w, r, http.StatusOK, "devices", pageData{Devices: list})
}

func (a *app) revoke(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	err := a.m.Revoke(r.Context(), info.UserID, r.PostFormValue("ref"))
	if errors.Is(err, session.ErrNoSuchSession) || errors.Is(err, session.ErrInvalidInput) {
		// Logged out already (or by another tab), or a reference that was
		// never ours: say so on the list as it is now.
		list, lerr := a.m.Devices(r.Context(), info.UserID)
		if lerr != nil {
			return lerr
		}
		return a.render(w, r, http.StatusNotFound, "devices", pageData{Devices: list, Error: "That device is not logged in any more."})
	}
	if err != nil {
		return err
	}
	return redirect(w, r, "/devices")
}

// reauth checks the password again (step-up) before sensitive actions.
func (a *app) reauth(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	var name, stored string
	if err := a.db.QueryRowContext(ctx, "SELECT username, password_hash FROM users WHERE id = ?", info.UserID).Scan(&name, &stored); err != nil {
		return err
	}
	att, err := a.beginAttempt(r, name)
	if errors.Is(err, ratelimit.ErrLocked) {
		return a.render(w, r, http.StatusUnauthorized, "reauth", pageData{Error: "Wrong password."})
	}
	if err != nil {
		return err
	}
	_, err = a.hasher.Verify(ctx, stored, []byte(r.PostFormValue("password")))
	if badPassword(err) {
		att.Failed(ctx)
		a.log.InfoContext(ctx, "webapp.reauth.failed", "user", info.UserID)
		return a.render(w, r, http.StatusUnauthorized, "reauth", pageData{Error: "Wrong password."})
	}
	if err != nil {
		return err
	}
	if err := a.succeeded(w, r, att, name); err != nil {
		return err
	}
	if err := a.m.Reauthenticated(ctx); err != nil {
		return err
	}
	return redirect(w, r, "/devices")
}
