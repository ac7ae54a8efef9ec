package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/vault"
)

// The account settings (the Account page and the key rotation page):
//
//   - a password change, which moves the login password and the vault
//     passphrase together (they are the same secret in this app, see
//     signup);
//   - a master-key rotation, then the re-encryption of every note under
//     the new key, with its progress, and the destruction of the old key;
//     every step can be interrupted and finished later;
//   - what the lockout knows about failed sign-ins on the account, in
//     plain words, for its owner only (login still answers a locked
//     account exactly like a wrong password).

// settingsPages are the templates of the account settings pages.
var settingsPages = []string{"rotate"}

// settingsView is what the account settings pages show.
type settingsView struct {
	// Lockout says what the lockouts know of failed sign-ins on the
	// account, one paragraph per way in that had any.
	Lockout []lockoutNote
	// KnownDevice: this browser has signed in to the account before, so
	// it has a failure count of its own (see setUpLimits).
	KnownDevice bool
	// Banner is lockoutBanner's one line, or "".
	Banner string
	// SetPassword: the session may set a new password without the
	// current one (setPassword): it is multi-factor. SetNeedsKey: it is
	// locked, so the form asks for a vault recovery key too.
	SetPassword, SetNeedsKey bool
	// Rotation is where the master key's rotation stands.
	Rotation rotationState
	// Reseal is the result of a re-encryption run (the streamed page).
	Reseal *resealResult
	// Keys are new recovery keys, shown once.
	Keys []string
	// NeedUnlock lists the passkeys that unlocked the vault before a
	// rotation and must be set up again.
	NeedUnlock []string
	// Done: the old key was destroyed by this request's redirect.
	Done bool
	// Mark is where the streamed page's progress lines go.
	Mark template.HTML
}

// A lockoutNote explains one way in's failure counts.
type lockoutNote struct {
	Way   string   // "Password", "Authenticator and recovery codes", "Passkeys"
	Lines []string // what happened, in plain words
	Todo  []string // what the user can do
}

// rotationState is where the master key's rotation stands for a user.
type rotationState struct {
	// KeyVersion is the vault's current master-key version.
	KeyVersion uint32
	// Locked: the session holds no vault key; nothing more is known.
	Locked bool
	// Outdated: the session holds an older key than the vault's (a
	// rotation was cut short before the session got the new one): lock
	// and unlock again to continue.
	Outdated bool
	// Retired: the session's vault still holds retired keys (the vault
	// had them when it was unlocked): the rotation is not finished.
	Retired bool
	// Notes counts the user's notes; Old those with a field still sealed
	// under an older key.
	Notes, Old int
}

// Unfinished reports a rotation that still has a step to do.
func (s rotationState) Unfinished() bool { return s.Outdated || s.Retired || s.Old > 0 }

// resealResult is what a re-encryption run did.
type resealResult struct {
	Seen, Resealed int
	Unreadable     int   // notes that open under no key of the vault: left as they are
	Left           int   // notes still under an older key that could be re-sealed (a run cut short)
	Err            error // why the run stopped early, shown without detail
}

// Test hooks: hookPasswordWrites runs between the two writes of a
// password change (the vault's, then the login hash's); hookRotated right
// after the rotation's write, before anything else; hookReseal before
// each note is written back under the new key. Tests set them
// to stop the process there, or to change the note meanwhile.
var (
	hookPasswordWrites atomic.Pointer[func(userID string)]
	hookRotated        atomic.Pointer[func(userID string)]
	hookReseal         atomic.Pointer[func(userID, noteID string)]
)

// settingsRoutes adds the account settings pages.
func (a *app) settingsRoutes(mux *http.ServeMux, handle func(string, handler, func(http.Handler) http.Handler), fresh func(http.Handler) http.Handler) {
	// Forms that check the password run the KDF: a recent authentication,
	// then the limits per address and per account that unlock and
	// step-up have, before any KDF run.
	limited := a.settingsLimited(fresh)
	handle("POST /account/password", a.changePassword, limited)
	handle("POST /account/password/set", a.setPassword, limited)
	handle("GET /account/rotate", a.rotatePage, a.m.RequireLogin)
	handle("POST /account/rotate", a.rotate, limited)
	handle("POST /account/rotate/reseal", a.reseal, fresh)
	handle("POST /account/rotate/finish", a.finishRotation, fresh)
	handle("POST /account/recovery-keys", a.newRecoveryKeys, fresh)
}

// settingsLimited is kdfLimited's guard for the account forms, behind
// fresh: a refusal shows the Account page with the reason.
func (a *app) settingsLimited(fresh func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	byUser := ratelimit.ByAccount(func(r *http.Request) (string, error) {
		info, _ := a.m.Current(r.Context()) // RequireFresh ran
		return info.UserID, nil
	})
	deny := func(w http.ResponseWriter, r *http.Request, d ratelimit.Decision) {
		if d.Err != nil {
			a.fail(w, r, d.Err) // the store failed: refused (fail closed)
			return
		}
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d.RetryAfter+time.Second-1)/time.Second), 10))
		msg := fmt.Sprintf("Too many attempts. Nothing was changed. Try again in %s.", d.RetryAfter.Round(time.Second))
		if err := a.renderAccount(w, r, http.StatusTooManyRequests, pageData{Error: msg}); err != nil {
			a.fail(w, r, err)
		}
	}
	perIP := a.kdfPerIP.Middleware(ratelimit.ByIP(a.clients), deny)
	perAccount := a.kdfPerAccount.Middleware(byUser, deny)
	return func(h http.Handler) http.Handler { return fresh(perIP(perAccount(h))) }
}

// accountPage is the Account page: sign-in status, password change,
// master-key rotation, account deletion.
func (a *app) accountPage(w http.ResponseWriter, r *http.Request) error {
	var d pageData
	switch r.URL.Query().Get("changed") {
	case "password":
		d.Notice = "Your password is changed. It now logs you in and unlocks your notes; your other devices were logged out."
	}
	return a.renderAccount(w, r, http.StatusOK, d)
}

// renderAccount renders the Account page with its settings.
func (a *app) renderAccount(w http.ResponseWriter, r *http.Request, status int, d pageData) error {
	view, err := a.settings(r)
	if err != nil {
		return err
	}
	d.Settings = view
	return a.render(w, r, status, "account", d)
}

// settings gathers what the Account page shows about the request's user.
func (a *app) settings(r *http.Request) (*settingsView, error) {
	ctx := r.Context()
	info, _ := a.m.Current(ctx) // RequireLogin ran
	name, err := a.usernameOf(ctx, info.UserID)
	if err != nil {
		return nil, err
	}
	v := &settingsView{SetPassword: info.MultiFactor, SetNeedsKey: info.MultiFactor && !info.Unlocked}
	if v.Lockout, v.KnownDevice, err = a.lockoutNotes(r, info.UserID, name); err != nil {
		return nil, err
	}
	if v.Banner, err = a.lockoutBanner(r, name); err != nil {
		return nil, err
	}
	if v.Rotation, err = a.rotationState(ctx, info.UserID); err != nil {
		return nil, err
	}
	return v, nil
}

// now is the app's clock (config.Now), which sessions and limits share.
func (a *app) now() time.Time {
	if now := a.m.Config().Now; now != nil {
		return now()
	}
	return time.Now()
}

// clockTime formats t for people: the time of day with its zone, and the day.
func clockTime(t time.Time) string { return t.UTC().Format("15:04 MST on 2 January 2006") }

// times says n of something, singular or plural.
func times(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// lockoutNotes reads the lockouts' counters of the user's account as this
// request's browser and address see them (ratelimit.Lockout.Status reads
// without counting), and says what they mean. Only the logged-in owner
// sees them: to anyone else a locked account answers like a wrong
// password.
func (a *app) lockoutNotes(r *http.Request, userID, name string) (notes []lockoutNote, known bool, err error) {
	ctx := r.Context()
	ip, _ := a.clients.Client(r)
	src := a.source(r, name)
	known = src.Device.Known()
	st, err := a.lockout.Status(ctx, name, src)
	if err != nil {
		return nil, false, err
	}
	where := "your current address (" + ip.String() + ")"
	if n, ok := describeLockout("Password", "wrong password", "wrong passwords", st, known, where); ok {
		switch {
		case known:
			n.Todo = append(n.Todo, "This browser has signed in to your account before, so it has a count of its own: a lock on your account or your address does not stop you signing in here.")
		case st.Account.Locked() || st.Source.Locked():
			n.Todo = append(n.Todo, "This browser is not yet known for your account: until the lock ends, sign in from a browser you have signed in with before.")
		}
		n.Todo = append(n.Todo, "If you mistyped your password, there is nothing to do. If these attempts were not yours, someone may be trying to guess your password: change it below. Changing it also clears the count on your account, so your other browsers can sign in again at once.")
		notes = append(notes, n)
	}
	enrolled, err := a.auth.Enrolled(ctx, userID)
	if err != nil {
		return nil, false, err
	}
	if enrolled {
		cst, err := a.codeLockout.Status(ctx, userID, a.codeSource(r, userID))
		if err != nil {
			return nil, false, err
		}
		if n, ok := describeLockout("Authenticator and recovery codes", "wrong code", "wrong codes", cst, false, where); ok {
			n.Todo = append(n.Todo, "Codes are asked for only after the right password: if these were not yours, someone knows your password. Change it below.")
			notes = append(notes, n)
		}
	}
	if a.passkeyLockout != nil {
		pst, err := a.passkeyLockout.Status(ctx, userID, ratelimit.Source{IP: ip})
		if err != nil {
			return nil, false, err
		}
		if n, ok := describeLockout("Passkeys", "failed passkey sign-in", "failed passkey sign-ins", pst, false, where); ok {
			n.Todo = append(n.Todo, "Your password still signs you in while passkey sign-ins are locked.")
			notes = append(notes, n)
		}
	}
	return notes, known, nil
}

// lockoutBanner is one line for the top of a page when a lock stands on
// the password sign-in of the account name (the account's lock, this
// address's or this browser's), or "". The Account page shows it; render
// may show it on every page of a logged-in user (one Status read, up to
// three store reads).
func (a *app) lockoutBanner(r *http.Request, name string) (string, error) {
	st, err := a.lockout.Status(r.Context(), name, a.source(r, name))
	if err != nil {
		return "", err
	}
	var where []string
	var until time.Time
	for _, c := range []struct {
		s    ratelimit.CounterStatus
		what string
	}{{st.Account, "from browsers that have not signed in to it before"}, {st.Source, "from your current address"}, {st.Device, "from this browser"}} {
		if c.s.Locked() {
			where = append(where, c.what)
			until = latest(until, c.s.LockedUntil)
		}
	}
	if len(where) == 0 {
		return "", nil
	}
	return fmt.Sprintf("Failed sign-ins have locked password sign-in to your account %s until %s. See your Account page.", strings.Join(where, " and "), clockTime(until)), nil
}

// describeLockout puts a lockout's counters in plain words; ok is false
// when they hold nothing.
func describeLockout(way, one, many string, st ratelimit.LockoutStatus, known bool, where string) (n lockoutNote, ok bool) {
	n.Way = way
	if acc := st.Account; acc.Failures > 0 {
		n.Lines = append(n.Lines, fmt.Sprintf("%s on your account from browsers that had not signed in to it before.", capitalize(times(acc.Failures, one, many))))
		if acc.Locked() {
			n.Lines = append(n.Lines, fmt.Sprintf("After %d in a row, your account is locked for every such browser until %s.", acc.MaxFailures, clockTime(acc.LockedUntil)))
		}
	}
	if s := st.Source; s.Locked() {
		n.Lines = append(n.Lines, fmt.Sprintf("After %s from %s, attempts from there are refused until %s.", times(s.MaxFailures, one, many), where, clockTime(s.LockedUntil)))
	} else if s.Failures > 0 {
		n.Lines = append(n.Lines, fmt.Sprintf("%d of them came from %s.", s.Failures, where))
	}
	if d := st.Device; d.Failures > 0 {
		line := fmt.Sprintf("This browser's own count has %s.", times(d.Failures, one, many))
		if d.Locked() {
			line += fmt.Sprintf(" It is locked until %s.", clockTime(d.LockedUntil))
		}
		n.Lines = append(n.Lines, line)
	}
	if len(n.Lines) == 0 {
		return n, false
	}
	if f := latest(st.Account.Forget, st.Source.Forget, st.Device.Forget); !f.IsZero() {
		n.Lines = append(n.Lines, fmt.Sprintf("Without more failures, these counts are cleared at %s.", clockTime(f)))
	}
	return n, true
}

func capitalize(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// ---- Password change ----

// errVaultMismatch: the current password is the login's but opens
// neither the vault nor does the new one (they have drifted apart).
var errVaultMismatch = errors.New("webapp: the vault opens with neither password")

// changePassword changes the login password and the vault passphrase,
// which are the same secret here.
//
// The order of the two writes: the vault's passphrase slot first, the
// login hash second. If the process stops between them, the user logs in
// with the old password (the hash) and unlocks with the new one (the
// vault), and sending the same form again finishes the change: the
// current password still matches the hash, and a vault that no longer
// opens with it but opens with the new one is taken as changed already.
// The other order would strand the user: logged in with the new
// password, the vault only opening with the old, and the form (which
// checks the current password against the hash) refusing the old one.
// A failed second write is not rolled back either: its outcome may be
// unknown (a commit whose reply was lost), and a rollback on top of a
// write that stood would give the other order's state.
func (a *app) changePassword(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	var name, stored string
	if err := a.db.QueryRowContext(r.Context(), "SELECT username, password_hash FROM users WHERE id = ?", info.UserID).Scan(&name, &stored); err != nil {
		return err
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	current, next := []byte(r.PostFormValue("current")), []byte(r.PostFormValue("new"))
	defer clear(current)
	defer clear(next)
	refuse := func(status int, msg string) error {
		return a.renderAccount(w, r, status, pageData{Error: msg})
	}
	if err := a.policy.Check(ctx, next, kdf.PolicyContext{Username: name, ServiceName: "keyhold-webapp"}); err != nil {
		pe, ok := errors.AsType[*kdf.PolicyError](err)
		if !ok {
			return err
		}
		return refuse(http.StatusBadRequest, "Your password was not changed. "+policyMessage(pe))
	}
	if subtle.ConstantTimeCompare(current, next) == 1 {
		return refuse(http.StatusBadRequest, "Your password was not changed: the new password is the one you have now.")
	}
	// The current password, counted by the lockout as every password
	// check is (login, unlock, step-up), and then, inside the same check,
	// step 1 below: the vault moved to the new password. A vault that
	// opens with neither password (the login on one, the vault on
	// another: a change cut short, then the vault moved on) is a failed
	// attempt too: else whoever knows the login password alone could send
	// guesses at the vault's passphrase as "new" passwords, each answered
	// and none counted (the right current password would reset the count
	// each time), where the unlock form counts them.
	mismatch := false
	err := a.lockout.Check(ctx, name, a.source(r, name), ratelimit.Credential{
		Verify: func(ctx context.Context) error {
			if _, err := a.hasher.Verify(ctx, stored, current); err != nil {
				return err
			}
			// 1. The vault (runs to its end even if the client goes).
			err := a.moveVaultPassphrase(context.WithoutCancel(ctx), info.UserID, current, next)
			if errors.Is(err, errVaultMismatch) {
				mismatch = true
				return vault.ErrUnlockFailed // counted as a wrong password
			}
			if err != nil {
				return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
			}
			return nil
		},
		Dummy: func(ctx context.Context) error { return a.hasher.VerifyDummy(ctx, current) },
		Wrong: badPassword,
	})
	if a.rejected(ctx, err, info.UserID) && mismatch {
		a.log.ErrorContext(ctx, "webapp.password_change.vault_mismatch", "user", info.UserID)
		return refuse(http.StatusConflict, "Your password was not changed: your current password logs you in but does not open your notes. Unlock them with a recovery key first.")
	}
	if a.rejected(ctx, err, info.UserID) {
		a.log.InfoContext(ctx, "webapp.password_change.failed", "user", info.UserID, "locked", errors.Is(err, ratelimit.ErrLocked))
		return refuse(http.StatusUnauthorized, "Your current password is wrong. Nothing was changed.")
	}
	if err != nil {
		return err
	}
	// From here on the change runs to its end even if the client goes.
	ctx = context.WithoutCancel(ctx)
	hash, err := a.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	if hook := hookPasswordWrites.Load(); hook != nil {
		(*hook)(info.UserID)
	}
	// Every other session ends before the login hash changes, and again
	// after it (below): a crash after the hash's write must not leave
	// another device logged in under the new password (cut short here,
	// the old password still logs in and the user is merely logged out
	// elsewhere); the second round ends a login with the old password
	// that came in between.
	if err := a.m.RevokeOthers(ctx); err != nil {
		return err
	}
	// 2. The login hash, over the one checked above.
	res, err := a.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?", hash, info.UserID, stored)
	if err == nil {
		if n, rerr := res.RowsAffected(); rerr != nil {
			err = rerr
		} else if n == 0 {
			err = errors.New("webapp: the password hash changed during the password change")
		}
	}
	if err != nil {
		a.log.ErrorContext(ctx, "webapp.password_change.incomplete", "user", info.UserID, "error", err)
		return &userError{status: http.StatusInternalServerError, msg: "Your password change did not finish: your notes now unlock with the new password, but you still log in with the old one. Send the same form again to finish."}
	}
	if hook := hookCredentialStored.Load(); hook != nil {
		if err := (*hook)(info.UserID); err != nil {
			return err // a test's crash right after the write
		}
	}
	a.log.InfoContext(ctx, "webapp.password_changed", "user", info.UserID)
	a.notify(ctx, r, keyhold.PasswordChanged, info.UserID, "")
	if a.vault.Config().Notifier == nil { // else the vault sent it
		a.notify(ctx, r, keyhold.PassphraseChanged, info.UserID, "")
	}
	// Every other session ends; this one stays, and this browser is the
	// owner's. The account's failure count (and that of attempts without
	// an address) starts again: they were guesses at the old password.
	// Other addresses' locks stay.
	if err := a.m.RevokeOthers(ctx); err != nil {
		return err
	}
	if err := a.lockout.Reset(ctx, name); err != nil {
		a.log.WarnContext(ctx, "webapp.password_change.lockout_reset_failed", "user", info.UserID, "error", err)
	}
	if err := a.knownDevices.Remember(w, name); err != nil {
		return err
	}
	return redirect(w, r, "/account?changed=password")
}

// hookCredentialStored, when set (by tests), runs right after
// changePassword wrote the login hash, before anything else; an error from
// it ends the request there, as a crash would. hookFactorWrite runs right
// before the TOTP confirmation's and the passkey registration's write (in
// enroll and registerFinish), after the other sessions were ended.
var (
	hookCredentialStored atomic.Pointer[func(userID string) error]
	hookFactorWrite      atomic.Pointer[func(userID string)]
)

// hookSetPasswordWrites, when set (by tests), runs between setPassword's
// two writes (the login hash's, then the vault's); hookSetPasswordRead
// after it read the login hash, before any write (a test changes the
// password there, as another request would).
var hookSetPasswordWrites, hookSetPasswordRead atomic.Pointer[func(userID string)]

// setPassword sets a new password without the current one, for a user
// who proved more than a password: the session is fresh (RequireFresh,
// through settingsLimited), multi-factor (a passkey, or the password and a
// TOTP code) and unlocked, so the vault's master key is at hand
// (a.m.Unlocked) and vault.SetPassphrase re-wraps it under the new
// password. It is how a user who signed in with a passkey, and forgot the
// password, sets a new one. A session that is locked (a passkey that
// cannot unlock the vault) gives a vault recovery key with the form: it
// opens the vault (vault.UnlockWithRecoveryKey, counted by the account's
// lockout, after the policy check so that a weak password spends
// nothing), is spent, and its replacement is shown once on the answer;
// the session is then unlocked with the vault.
//
// The order of the two writes: the login hash first, written only over
// the hash read at the start (a compare-and-swap), then the vault's
// passphrase. The hash's compare-and-swap is the check that no other
// change (a password change, a reset by recovery key, a deletion) came
// in meanwhile: done first, a change that lost that race writes nothing
// at all. If the process stops between the writes, or SetPassphrase
// refuses (ErrConflict: the vault changed since this session unlocked
// it), the login takes the new password and the vault still opens with
// the old one and with the passkey or recovery key the user has: this
// session (or, after lock and unlock, a new one) sends this form again,
// which needs no old password, and finishes. The other order would leave
// the vault on the new password with a login hash that the losing
// compare-and-swap left on another one.
func (a *app) setPassword(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context()) // RequireFresh ran
	// Once a recovery key is spent, d.Keys holds its replacement: every
	// answer from then on shows it.
	var d pageData
	refuse := func(status int, msg string) error {
		d.Error = msg
		if d.Keys != nil {
			w.Header().Set("Cache-Control", "no-store")
		}
		return a.renderAccount(w, r, status, d)
	}
	if !info.MultiFactor {
		a.log.InfoContext(r.Context(), "webapp.password_set.refused", "user", info.UserID, "reason", "single_factor")
		return refuse(http.StatusForbidden, "Your password was not changed. Setting a new password without your current one needs a sign-in with a passkey, or with your password and an authenticator code: change it with your current password instead.")
	}
	u, err := a.m.Unlocked(r.Context())
	key := strings.TrimSpace(r.PostFormValue("key"))
	locked := errors.Is(err, session.ErrLocked)
	if locked && key == "" {
		return refuse(http.StatusForbidden, "Your password was not changed. Unlock your notes first (with your passkey), or enter one of your recovery keys with the new password.")
	}
	if err != nil && !locked {
		return err
	}
	if len(key) > maxRecoveryKeyInput {
		key = "" // a wrong key, answered and counted as any other
	}
	var name, stored string
	if err := a.db.QueryRowContext(r.Context(), "SELECT username, password_hash FROM users WHERE id = ?", info.UserID).Scan(&name, &stored); err != nil {
		return err
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	next := []byte(r.PostFormValue("new"))
	defer clear(next)
	if err := a.policy.Check(ctx, next, kdf.PolicyContext{Username: name, ServiceName: "keyhold-webapp"}); err != nil {
		pe, ok := errors.AsType[*kdf.PolicyError](err)
		if !ok {
			return err
		}
		return refuse(http.StatusBadRequest, "Your password was not changed. "+policyMessage(pe))
	}
	if locked {
		// The recovery key, counted by the account's lockout as a
		// password is; a locked account's attempt does the same work on
		// the dummy vault, and spends nothing.
		var replacement vault.RecoveryKey
		var err error
		u, replacement, err = a.checkRecoveryKey(ctx, r, name, info.UserID, key)
		if a.rejected(ctx, err, info.UserID) {
			a.log.InfoContext(ctx, "webapp.password_set.key_failed", "user", info.UserID, "locked", errors.Is(err, ratelimit.ErrLocked))
			return refuse(http.StatusUnauthorized, "That recovery key did not work. Nothing was changed.")
		}
		if errors.Is(err, vault.ErrConflict) {
			return refuse(http.StatusConflict, "Your account changed while we checked your key. Nothing was changed, and your recovery key was not used: please try again.")
		}
		if err != nil {
			return err
		}
		defer u.Lock()
		d.Keys = []string{replacement.Reveal()}
		a.log.InfoContext(ctx, "webapp.password_set.key_used", "user", info.UserID)
		a.notify(ctx, r, keyhold.RecoveryKeyUsed, info.UserID, "")
	}
	const relock = "Your notes' key changed since you unlocked them. Lock your notes and unlock them again, then set your password again."
	// A session holding an older key than the vault's (a rotation cut
	// short) would get ErrConflict from SetPassphrase: refused before any
	// write.
	slots, err := a.vault.Slots(ctx, info.UserID)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		if sl.KeyVersion > u.KeyVersion() {
			return refuse(http.StatusConflict, "Your password was not changed. "+relock)
		}
	}
	hash, err := a.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	if hook := hookSetPasswordRead.Load(); hook != nil {
		(*hook)(info.UserID)
	}
	// From here on the change runs to its end even if the client goes.
	ctx = context.WithoutCancel(ctx)
	// 1. The login hash, over the one read above.
	res, err := a.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?", hash, info.UserID, stored)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		msg := "Your password was changed elsewhere while you set it here. Your password was not changed by this form: reload the page and try again."
		if locked {
			msg += " Your recovery key was used: the new one below replaces it."
		}
		return refuse(http.StatusConflict, msg)
	}
	if hook := hookSetPasswordWrites.Load(); hook != nil {
		(*hook)(info.UserID)
	}
	// 2. The vault.
	if err := a.vault.SetPassphrase(ctx, u, next); err != nil {
		a.log.ErrorContext(ctx, "webapp.password_set.incomplete", "user", info.UserID, "error", err)
		if errors.Is(err, vault.ErrConflict) {
			return refuse(http.StatusConflict, "Your new password logs you in, but your notes still open with the old one. "+relock)
		}
		return refuse(http.StatusInternalServerError, "Your new password logs you in, but your notes still open with the old one. Send the form again to finish.")
	}
	a.log.InfoContext(ctx, "webapp.password_set", "user", info.UserID)
	a.notify(ctx, r, keyhold.PasswordChanged, info.UserID, "set without the old password")
	if a.vault.Config().Notifier == nil { // else the vault sent it
		a.notify(ctx, r, keyhold.PassphraseChanged, info.UserID, "")
	}
	// As after a password change: every other session ends, this one
	// stays; the account's failure count starts again.
	if err := a.m.RevokeOthers(ctx); err != nil {
		return err
	}
	if err := a.lockout.Reset(ctx, name); err != nil {
		a.log.WarnContext(ctx, "webapp.password_set.lockout_reset_failed", "user", info.UserID, "error", err)
	}
	if err := a.knownDevices.Remember(w, name); err != nil {
		return err
	}
	if !locked {
		return redirect(w, r, "/account?changed=password")
	}
	// The vault opened with the key: the session holds it now, and the
	// key's replacement is shown once, on this answer.
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	d.Notice = "Your password is changed, and your notes are unlocked. Your other devices were logged out."
	w.Header().Set("Cache-Control", "no-store")
	return a.renderAccount(w, r, http.StatusOK, d)
}

// moveVaultPassphrase moves the vault from the current password to the
// next one; a vault that opens with next already (a change cut short
// after this step) counts as moved.
func (a *app) moveVaultPassphrase(ctx context.Context, userID string, current, next []byte) error {
	err := a.vault.ChangePassphrase(ctx, userID, current, next)
	if !errors.Is(err, vault.ErrUnlockFailed) || errors.Is(err, vault.ErrNoVault) {
		return err
	}
	u, uerr := a.vault.Unlock(ctx, userID, next)
	if errors.Is(uerr, vault.ErrUnlockFailed) {
		return errVaultMismatch
	}
	if uerr != nil {
		return uerr
	}
	u.Lock()
	a.log.WarnContext(ctx, "webapp.password_change.resumed", "user", userID)
	return nil
}

// notify tells the user of a change they made (logNotifier logs it).
func (a *app) notify(ctx context.Context, r *http.Request, kind keyhold.EventKind, userID, detail string) {
	ip, _ := a.clients.Client(r)
	a.notifier.Notify(ctx, keyhold.Event{Kind: kind, UserID: userID, Time: a.now(), IP: ip, Detail: detail})
}

// ---- Master-key rotation ----

// The rotation runs in steps, each a POST that can be cut short and sent
// again:
//
//  1. POST /account/rotate (password): vault.RotateMasterKey makes a new
//     master key and new recovery keys, keeping the old key decrypt-only;
//     the new recovery keys are stored sealed to be shown once, the
//     session gets the new key, other sessions end.
//  2. POST /account/rotate/reseal: every note still sealed under an older
//     key is opened and sealed again under the new one at its next
//     version, over the version it was read at; the page streams the
//     progress.
//  3. POST /account/rotate/finish: other sessions end (again: step 1 may
//     have been cut short before it ended them, and sessions unlocked
//     since hold the old key as a retired one); once no readable note is
//     under an older key, vault.DestroyRetiredKeys, and the session keeps
//     the new key alone.
//
// GET /account/rotate shows where it stands and offers the next step; the
// Account page links to it while a step is left. Notes sealed under an
// older key keep opening until step 3 (the session holds the retired
// key), so nothing is unreadable in between.
//
// Re-sealing at the next version fences edits: an edit made from a page
// read before its note was re-sealed names the old version and is refused
// (409, as for an edit made in another tab), never written over the
// re-sealed note, and a re-seal whose note was edited meanwhile reads it
// again. A note added by a request that began before step 1 and wrote
// after step 3's check would stay under the old key; finish checks again
// after destroying the key and reports such notes.

// noteKeyVersion returns the master-key version a sealed field is under
// (FORMAT.md §3.3: format, algorithm, then the key version, big-endian).
func noteKeyVersion(sealed []byte) (uint32, bool) {
	if len(sealed) < 6 {
		return 0, false
	}
	return binary.BigEndian.Uint32(sealed[2:6]), true
}

// underOlderKey reports whether a note has a field not sealed under the
// key version current.
func underOlderKey(title, body []byte, current uint32) bool {
	t, ok1 := noteKeyVersion(title)
	b, ok2 := noteKeyVersion(body)
	return !ok1 || !ok2 || t != current || b != current
}

// rotationState reads where the user's rotation stands: the vault's key
// version (from its slots, which a rotation moves together), the
// session's, and the notes'.
func (a *app) rotationState(ctx context.Context, userID string) (rotationState, error) {
	var s rotationState
	slots, err := a.vault.Slots(ctx, userID)
	if err != nil && !errors.Is(err, vault.ErrNoVault) {
		return s, err
	}
	for _, sl := range slots {
		s.KeyVersion = max(s.KeyVersion, sl.KeyVersion)
	}
	u, err := a.m.Unlocked(ctx)
	switch {
	case errors.Is(err, session.ErrLocked):
		s.Locked = true
	case err != nil:
		return s, err
	default:
		s.Outdated = u.KeyVersion() < s.KeyVersion
		s.Retired = len(u.RetiredVersions()) > 0
		s.KeyVersion = max(s.KeyVersion, u.KeyVersion())
	}
	rows, err := a.db.QueryContext(ctx, "SELECT title, body FROM notes WHERE user_id = ?", userID)
	if err != nil {
		return s, err
	}
	defer rows.Close()
	for rows.Next() {
		var title, body []byte
		if err := rows.Scan(&title, &body); err != nil {
			return s, err
		}
		s.Notes++
		if s.KeyVersion > 0 && underOlderKey(title, body, s.KeyVersion) {
			s.Old++
		}
	}
	return s, rows.Err()
}

// rotatePage shows where the rotation stands, the new recovery keys once,
// and the next step.
func (a *app) rotatePage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	st, err := a.rotationState(ctx, info.UserID)
	if err != nil {
		return err
	}
	v := &settingsView{Rotation: st, Done: r.URL.Query().Get("done") != ""}
	if v.NeedUnlock, err = a.passkeysToSetUp(ctx, info.UserID); err != nil {
		return err
	}
	if !st.Locked && !st.Outdated {
		if v.Keys, err = a.takeKeysToShow(ctx, st.KeyVersion); err != nil {
			return err
		}
	}
	var d pageData
	if lost, err := strconv.Atoi(r.URL.Query().Get("lost")); err == nil && lost > 0 {
		d.Error = fmt.Sprintf("%s written under the old key while it was being destroyed, and can no longer be opened.", capitalize(times(lost, "note was", "notes were")))
	}
	d.Settings = v
	return a.render(w, r, http.StatusOK, "rotate", d)
}

// passkeysToSetUp lists the user's passkeys that could unlock the vault
// (PRF) but have no slot for it: after a rotation, all of them.
func (a *app) passkeysToSetUp(ctx context.Context, userID string) ([]string, error) {
	if a.passkeys == nil {
		return nil, nil
	}
	list, err := a.passkeys.List(ctx, userID)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range list {
		if c.PRF && !c.CanUnlock {
			names = append(names, c.Name)
		}
	}
	return names, nil
}

// storeKeysToShow keeps new recovery keys sealed under u (the new key) to
// be shown once, replacing any waiting (older ones no longer work).
func (a *app) storeKeysToShow(ctx context.Context, u *vault.Unlocked, keys []vault.RecoveryKey) error {
	var text []byte
	for _, k := range keys {
		text = append(append(text, k.Reveal()...), '\n')
	}
	sealed, err := u.Seal(text, recoveryKeysContext)
	clear(text)
	if err != nil {
		return err
	}
	_, err = a.db.ExecContext(ctx, "INSERT INTO keys_to_show (user_id, sealed) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed", u.UserID(), sealed)
	return err
}

// takeKeysToShow returns the recovery keys waiting to be shown, once, if
// they are of the vault's key version current (older ones were replaced
// by the rotation and are not shown).
func (a *app) takeKeysToShow(ctx context.Context, current uint32) ([]string, error) {
	u, err := a.m.Unlocked(ctx)
	if err != nil {
		return nil, err
	}
	var sealed []byte
	err = a.db.QueryRowContext(ctx, "SELECT sealed FROM keys_to_show WHERE user_id = ?", u.UserID()).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if v, ok := noteKeyVersion(sealed); !ok || v != current {
		return nil, nil
	}
	text, err := u.Open(sealed, recoveryKeysContext)
	if err != nil {
		return nil, err
	}
	defer clear(text)
	// Shown once: deleted if still the one read.
	res, err := a.db.ExecContext(ctx, "DELETE FROM keys_to_show WHERE user_id = ? AND sealed = ?", u.UserID(), sealed)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return nil, err
	}
	return strings.Fields(string(text)), nil
}

// rotate is step 1.
func (a *app) rotate(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	name, err := a.usernameOf(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	st, err := a.rotationState(ctx, info.UserID)
	if err != nil {
		return err
	}
	if st.Unfinished() {
		return redirect(w, r, "/account/rotate")
	}
	password := []byte(r.PostFormValue("password"))
	defer clear(password)
	var (
		u    *vault.Unlocked
		keys []vault.RecoveryKey
	)
	err = a.lockout.Check(ctx, name, a.source(r, name), ratelimit.Credential{
		Verify: func(ctx context.Context) (err error) {
			u, keys, err = a.vault.RotateMasterKey(ctx, info.UserID, password)
			return err
		},
		Dummy: func(ctx context.Context) error { return a.vault.UnlockDummy(ctx, password) },
		Wrong: badPassword,
	})
	if a.rejected(ctx, err, info.UserID) {
		a.log.InfoContext(ctx, "webapp.rotate.failed", "user", info.UserID, "locked", errors.Is(err, ratelimit.ErrLocked))
		return a.renderAccount(w, r, http.StatusUnauthorized, pageData{Error: "Wrong password. Your key was not changed."})
	}
	if err != nil {
		return err
	}
	defer u.Lock()
	if hook := hookRotated.Load(); hook != nil {
		(*hook)(info.UserID)
	}
	ctx = context.WithoutCancel(ctx)
	a.log.InfoContext(ctx, "webapp.master_key_rotated", "user", info.UserID, "key_version", u.KeyVersion())
	if a.vault.Config().Notifier == nil { // else the vault sent it
		a.notify(ctx, r, keyhold.MasterKeyRotated, info.UserID, "")
	}
	// The new recovery keys first: once stored, a crash still shows them.
	if len(keys) > 0 {
		if err := a.storeKeysToShow(ctx, u, keys); err != nil {
			return err
		}
	}
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	// The old key may be known to someone: sessions holding it end.
	if err := a.m.RevokeOthers(ctx); err != nil {
		return err
	}
	return redirect(w, r, "/account/rotate")
}

// reseal is step 2: it streams its progress, one line per batch of
// notes. Sending it again continues where it stopped (notes already under
// the new key are skipped).
func (a *app) reseal(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	st, err := a.rotationState(ctx, info.UserID)
	if err != nil {
		return err
	}
	if st.Locked || st.Outdated {
		return redirect(w, r, "/account/rotate")
	}
	u, err := a.m.Unlocked(ctx)
	if err != nil {
		return err
	}
	res := &resealResult{}
	d := pageData{Settings: &settingsView{Rotation: st, Reseal: res, Mark: progressMark}}
	// The page up to the progress list, then a line per batch, then the
	// result (its template, "reseal-result") and the rest of the page.
	var page bytes.Buffer
	if err := a.renderTo(&page, r, "rotate", d); err != nil {
		return err
	}
	head, tail, ok := strings.Cut(page.String(), string(progressMark))
	if !ok {
		return errors.New("webapp: the rotate page has no progress mark")
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Minute)) // longer than the server's WriteTimeout: a long walk
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	line := func(s string) {
		fmt.Fprintf(w, "<li>%s</li>\n", s) // only numbers and our words
		_ = rc.Flush()
	}
	fmt.Fprint(w, head, `<ol class="progress">`)
	_ = rc.Flush()
	a.resealNotes(context.WithoutCancel(ctx), u, st.Notes, res, line)
	fmt.Fprint(w, "</ol>")
	if err := pages["rotate"].ExecuteTemplate(w, "reseal-result", d); err != nil {
		a.log.ErrorContext(ctx, "webapp.error", "path", r.URL.Path, "error", err)
	}
	fmt.Fprint(w, tail)
	return nil
}

// progressMark marks the place of the progress lines in the rendered
// page (html/template drops the template's own comments, not a value's).
const progressMark template.HTML = "<!--progress-->"

// renderTo renders a page into buf, with what render adds.
func (a *app) renderTo(buf *bytes.Buffer, r *http.Request, name string, d pageData) error {
	rec := &bufferWriter{header: http.Header{}, buf: buf}
	return a.render(rec, r, http.StatusOK, name, d)
}

// bufferWriter is an http.ResponseWriter into a buffer.
type bufferWriter struct {
	header http.Header
	buf    *bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }
func (b *bufferWriter) WriteHeader(int)             {}

// resealBatch is how many notes a run reads at a time.
const resealBatch = 25

// resealNotes re-seals the user's notes under u's current key, a batch
// at a time in ID order, reporting after each batch.
func (a *app) resealNotes(ctx context.Context, u *vault.Unlocked, total int, res *resealResult, line func(string)) {
	cursor := ""
	for {
		batch, err := a.noteBatch(ctx, u.UserID(), cursor)
		if err != nil {
			res.Err = err
			break
		}
		if len(batch) == 0 {
			break
		}
		for _, n := range batch {
			if hook := hookReseal.Load(); hook != nil {
				(*hook)(u.UserID(), n.id)
			}
			changed, unreadable, err := a.resealNote(ctx, u, n)
			if err != nil {
				res.Err = err
				break
			}
			res.Seen++
			if changed {
				res.Resealed++
			}
			if unreadable {
				res.Unreadable++
			}
		}
		if res.Err != nil {
			break
		}
		cursor = batch[len(batch)-1].id
		line(fmt.Sprintf("%d of %d notes checked, %d re-sealed under the new key.", res.Seen, max(total, res.Seen), res.Resealed))
	}
	if res.Err != nil {
		a.log.ErrorContext(ctx, "webapp.reseal_failed", "user", u.UserID(), "error", res.Err)
		line("Stopped: something went wrong on our side. Send the form again to continue.")
	}
	left, _, err := a.notesUnderOlderKey(ctx, u)
	if err != nil && res.Err == nil {
		res.Err = err
	}
	res.Left = left
}

type storedNote struct {
	id          string
	version     uint64
	title, body []byte
}

func (a *app) noteBatch(ctx context.Context, userID, cursor string) ([]storedNote, error) {
	rows, err := a.db.QueryContext(ctx, "SELECT id, version, title, body FROM notes WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?", userID, cursor, resealBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var batch []storedNote
	for rows.Next() {
		var n storedNote
		if err := rows.Scan(&n.id, &n.version, &n.title, &n.body); err != nil {
			return nil, err
		}
		batch = append(batch, n)
	}
	return batch, rows.Err()
}

// resealNote seals a note under u's key at its next version, over the
// version it was read at; if it changed meanwhile, it is read again (an
// edit under the new key needs nothing more). A note that does not open
// is left as it is (unreadable).
func (a *app) resealNote(ctx context.Context, u *vault.Unlocked, n storedNote) (changed, unreadable bool, err error) {
	for range 5 {
		if !underOlderKey(n.title, n.body, u.KeyVersion()) {
			return false, false, nil
		}
		title, _, err1 := u.OpenVersion(n.title, noteContext(n.id, "title"), n.version)
		body, _, err2 := u.OpenVersion(n.body, noteContext(n.id, "body"), n.version)
		if err := errors.Join(err1, err2); err != nil {
			clear(title)
			clear(body)
			a.log.WarnContext(ctx, "webapp.note_unreadable", "user", u.UserID(), "note", n.id, "rollback", errors.Is(err, vault.ErrRollback))
			return false, true, nil
		}
		st, err1 := u.SealVersion(title, noteContext(n.id, "title"), n.version+1)
		sb, err2 := u.SealVersion(body, noteContext(n.id, "body"), n.version+1)
		clear(title)
		clear(body)
		if err := errors.Join(err1, err2); err != nil {
			return false, false, err
		}
		res, err := a.db.ExecContext(ctx, "UPDATE notes SET title = ?, body = ?, version = ? WHERE id = ? AND user_id = ? AND version = ?",
			st, sb, n.version+1, n.id, u.UserID(), n.version)
		if err != nil {
			return false, false, err
		}
		if k, err := res.RowsAffected(); err != nil {
			return false, false, err
		} else if k == 1 {
			return true, false, nil
		}
		// Edited or deleted meanwhile: read it again.
		err = a.db.QueryRowContext(ctx, "SELECT version, title, body FROM notes WHERE id = ? AND user_id = ?", n.id, u.UserID()).Scan(&n.version, &n.title, &n.body)
		if errors.Is(err, sql.ErrNoRows) {
			return false, false, nil
		}
		if err != nil {
			return false, false, err
		}
	}
	return false, false, fmt.Errorf("webapp: note %s kept changing while it was re-sealed", n.id)
}

// notesUnderOlderKey counts the user's notes with a field under an older
// key than u's: those u opens (readable), and the others.
func (a *app) notesUnderOlderKey(ctx context.Context, u *vault.Unlocked) (readable, unreadable int, err error) {
	rows, err := a.db.QueryContext(ctx, "SELECT id, version, title, body FROM notes WHERE user_id = ?", u.UserID())
	if err != nil {
		return 0, 0, err
	}
	var old []storedNote
	for rows.Next() {
		var n storedNote
		if err := rows.Scan(&n.id, &n.version, &n.title, &n.body); err != nil {
			rows.Close()
			return 0, 0, err
		}
		if underOlderKey(n.title, n.body, u.KeyVersion()) {
			old = append(old, n)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, 0, err
	}
	for _, n := range old {
		t, _, err1 := u.OpenVersion(n.title, noteContext(n.id, "title"), n.version)
		b, _, err2 := u.OpenVersion(n.body, noteContext(n.id, "body"), n.version)
		clear(t)
		clear(b)
		if err1 == nil && err2 == nil {
			readable++
		} else {
			unreadable++
		}
	}
	return readable, unreadable, nil
}

// finishRotation is step 3: the retired keys are destroyed once no note
// that opens is under one.
func (a *app) finishRotation(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	st, err := a.rotationState(ctx, info.UserID)
	if err != nil {
		return err
	}
	if st.Locked || st.Outdated || !st.Retired {
		return redirect(w, r, "/account/rotate")
	}
	u, err := a.m.Unlocked(ctx)
	if err != nil {
		return err
	}
	// Every other session ends first: those that hold the old key (a
	// rotation cut short before it ended them) could still seal under it,
	// and those that unlocked since hold it as a retired key, which must
	// not outlive its destruction.
	if err := a.m.RevokeOthers(ctx); err != nil {
		return err
	}
	left, unreadable, err := a.notesUnderOlderKey(ctx, u)
	if err != nil {
		return err
	}
	if left > 0 {
		return &userError{status: http.StatusConflict, msg: fmt.Sprintf("%s still sealed under the old key: re-seal them before the old key is destroyed.", capitalize(times(left, "note is", "notes are")))}
	}
	ctx = context.WithoutCancel(ctx)
	if err := a.vault.DestroyRetiredKeys(ctx, u); err != nil {
		return err
	}
	// The session keeps the new key alone.
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "webapp.retired_keys_destroyed", "user", info.UserID, "key_version", u.KeyVersion())
	// A note written under the old key after the check above (a request
	// that began before the rotation) no longer opens: say so.
	_, after, err := a.notesUnderOlderKey(ctx, u)
	if err != nil {
		return err
	}
	if lost := after - unreadable; lost > 0 {
		a.log.ErrorContext(ctx, "webapp.notes_lost_in_rotation", "user", info.UserID, "notes", lost)
		return redirect(w, r, "/account/rotate?done=1&lost="+strconv.Itoa(lost))
	}
	return redirect(w, r, "/account/rotate?done=1")
}

// newRecoveryKeys replaces every recovery key of the vault (for a user
// who did not see the ones a rotation made, or lost theirs), and shows the
// new ones once.
func (a *app) newRecoveryKeys(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	st, err := a.rotationState(ctx, info.UserID)
	if err != nil {
		return err
	}
	if st.Locked || st.Outdated {
		return redirect(w, r, "/account/rotate")
	}
	u, err := a.m.Unlocked(ctx)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	keys, err := a.vault.RegenerateRecoveryKeys(ctx, u, 2)
	if err != nil {
		return err
	}
	if a.vault.Config().Notifier == nil {
		a.notify(ctx, r, keyhold.RecoveryKeysRegenerated, info.UserID, "")
	}
	if err := a.storeKeysToShow(ctx, u, keys); err != nil {
		return err
	}
	return redirect(w, r, "/account/rotate")
}
