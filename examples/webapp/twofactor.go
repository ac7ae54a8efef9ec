package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/totp"
)

// The second factor: users may add TOTP authenticators (an app on their
// phone) on the two-factor page; a login of such a user then asks for a
// code after the password, or for one of the login recovery codes made
// with the first authenticator.
//
// The vault stays locked until the second factor is given: the password
// that unlocks it is not kept while the login is pending (a pending
// session holds no vault key at all), so after the code the user enters
// the password once more on the unlock page. Users without an
// authenticator log in and unlock in one step, as before.

// setUpTOTP builds the Authenticator: the factor records in keyhold's
// store, their secrets sealed under the key file's key, every code
// counted by a lockout of its own (named "totp": wrong codes and wrong
// passwords are counted apart, per user), tied to the app's sessions.
func (a *app) setUpTOTP(store totpStores, cfg config) error {
	keyPath := cfg.TOTPKeyPath
	if keyPath == "" {
		keyPath = cfg.DBPath + ".totp-key"
	}
	ring, err := loadTOTPKeyRing(keyPath)
	if err != nil {
		return err
	}
	a.codeLockout, err = ratelimit.NewLockout(store, ratelimit.LockoutOptions{Name: "totp", Logger: cfg.Logger, Now: cfg.Now})
	if err != nil {
		return err
	}
	a.auth, err = totp.New(totp.Config{
		Store:    store,
		Sealer:   ring,
		Lockout:  a.codeLockout,
		Issuer:   "keyhold webapp",
		Sessions: a.m,
		// A user with a passkey needs a multi-factor session to enroll an
		// authenticator app too (the passkeys are set up after this).
		OtherFactors: func(ctx context.Context, userID string) (bool, error) {
			if a.passkeys == nil {
				return false, nil
			}
			return a.passkeys.Enrolled(ctx, userID)
		},
		Notifier: a.notifier,
		Logger:   cfg.Logger,
		Now:      cfg.Now,
	})
	return err
}

// resealTOTP re-seals every user's TOTP secrets that are not under the
// key file's first key (totp.Authenticator.ResealAll over the users
// table), so that a rotated-out key can be dropped from the file after
// one start-up. Users whose secrets are current cost one read each.
func (a *app) resealTOTP(ctx context.Context) error {
	rows, err := a.db.QueryContext(ctx, "SELECT id FROM users")
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	changed, err := a.auth.ResealAll(ctx, slices.Values(ids))
	if err != nil {
		return err
	}
	a.log.InfoContext(ctx, "webapp.totp.resealed", "users", len(ids), "changed", changed)
	return nil
}

// The TOTP key file. The secrets of the users' authenticators must be
// readable whenever a user logs in (the server computes the codes), so
// they cannot be sealed under the user's password the way notes are;
// they are sealed (AES-256-GCM, totp.KeyRing) under an application key
// instead. That key lives in a file of its own, not in the database: a
// copy of the database (a backup, a dump) then holds only sealed secrets,
// and is not enough to make a user's codes. By default the file sits next
// to the database, which does not help against a copy of the whole
// volume: put it elsewhere with -totp-key (another volume, a secrets
// manager's mount) for that. The file must be backed up too, and kept apart from the
// database's backups (in a secrets manager, say): lose it and every
// authenticator stops working (users log in with a recovery code and
// enroll again); keep it next to the database backups and it protects
// nothing.
//
// Format: lines "<key ID> <base64 of 32 bytes>"; the first is the current
// key (new secrets are sealed under it), the others are older keys kept
// to open what was sealed under them. To rotate, put a new line first and
// restart: at start-up the app re-seals every user's secrets under the
// first key (resealTOTP); once it has logged webapp.totp.resealed, the old
// line can go. Lines starting with '#' are comments.
const (
	totpKeyFileHeader = "# keyhold webapp: the key that seals the users' TOTP secrets.\n" +
		"# Keep it private (mode 0600) and back it up apart from the database.\n"
	maxTOTPKeyFile = 64 << 10
)

// loadTOTPKeyRing reads the key file, creating it with a new random key
// (mode 0600, never overwriting one that exists) when it is absent.
func loadTOTPKeyRing(path string) (*totp.KeyRing, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		key := make([]byte, totp.KeyRingKeyLen)
		rand.Read(key)
		id := time.Now().UTC().Format("2006-01-02") + "-" + rand.Text()[:8] // the date it was made, and a random tag
		_, werr := fmt.Fprintf(f, "%s%s %s\n", totpKeyFileHeader, id, base64.StdEncoding.EncodeToString(key))
		clear(key)
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("writing the TOTP key file %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("creating the TOTP key file: %w", err)
	}
	f, err = os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the TOTP key file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the TOTP key file %s can be read by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	text, err := io.ReadAll(io.LimitReader(f, maxTOTPKeyFile+1))
	if err != nil {
		return nil, err
	}
	defer clear(text)
	if len(text) > maxTOTPKeyFile {
		return nil, fmt.Errorf("the TOTP key file %s is over %d bytes", path, maxTOTPKeyFile)
	}
	keys := map[string][]byte{}
	var current string
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, " ")
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if !ok || err != nil || len(key) != totp.KeyRingKeyLen {
			// The line is not quoted: it holds a key.
			return nil, fmt.Errorf("the TOTP key file %s, line %d: want \"<key ID> <base64 of %d bytes>\"", path, n, totp.KeyRingKeyLen)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("the TOTP key file %s, line %d: key ID used twice", path, n)
		}
		if current == "" {
			current = id
		}
		keys[id] = key
	}
	if current == "" {
		return nil, fmt.Errorf("the TOTP key file %s holds no key", path)
	}
	ring, err := totp.NewKeyRing(current, keys)
	for _, k := range keys {
		clear(k)
	}
	if err != nil {
		return nil, fmt.Errorf("the TOTP key file %s: %w", path, err)
	}
	return ring, nil
}

// logNotifier stands in for telling users of security events (a real app
// e-mails them: a new authenticator, a recovery code used, a login that
// failed at the second factor). It logs the event; every field is safe to
// log (user IDs, not account names that may be mistyped passwords).
type logNotifier struct{ log *slog.Logger }

func (n logNotifier) Notify(ctx context.Context, e keyhold.Event) {
	n.log.InfoContext(ctx, "webapp.notify_user", "kind", string(e.Kind), "user", e.UserID, "detail", e.Detail)
}

// errCode is the one answer to a code that did not work: wrong, used
// before, malformed, or the account's codes locked.
const errCode = "That code did not work. Check your authenticator app and try again."

// errRecoveryCode answers a login recovery code that was refused.
const errRecoveryCode = "That recovery code did not work. Check it and try again: each code works once."

// pending returns the request's session if its login waits for the
// second factor.
func (a *app) pending(r *http.Request) (session.Info, bool) {
	info, ok := a.m.Current(r.Context()) // RequireFirstFactor ran
	return info, ok && info.SecondFactorPending
}

func (a *app) secondFactorPage(w http.ResponseWriter, r *http.Request) error {
	if _, ok := a.pending(r); !ok {
		return redirect(w, r, "/notes") // done already
	}
	return a.twoFactorPage(w, r, http.StatusOK, "", false)
}

// twoFactorPage shows the code form of a pending login, with an error,
// and offers a passkey instead if the user has one (passkeys.go: the
// step-up endpoints complete a pending login).
// With recoveryCode, the recovery-code form is shown open (a refused
// recovery code is typed again there).
func (a *app) twoFactorPage(w http.ResponseWriter, r *http.Request, status int, msg string, recoveryCode bool) error {
	info, _ := a.m.Current(r.Context())
	has, _, err := a.passkeyInfo(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	return a.render(w, r, status, "twofactor", pageData{Error: msg, HasPasskeys: has, RecoveryOpen: recoveryCode})
}

// secondFactor checks a TOTP code for the pending login: for the
// session's user, never one the form names.
func (a *app) secondFactor(w http.ResponseWriter, r *http.Request) error {
	info, ok := a.pending(r)
	if !ok {
		return redirect(w, r, "/notes") // a form sent twice: no code is spent
	}
	name, err := a.usernameOf(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	if err := a.auth.VerifyLogin(r.Context(), r.PostFormValue("code"), a.codeSource(r, info.UserID)); err != nil {
		return a.secondFactorFailed(w, r, info.UserID, err, false)
	}
	// Both factors given: this browser is the owner's (see login).
	if err := a.rememberBothFactors(w, name, info.UserID); err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "webapp.login.second_factor", "user", info.UserID, "factor", "totp")
	// The vault stays locked (see above): one more password to unlock it.
	return redirect(w, r, "/unlock?after=2fa")
}

// recoverLogin completes a pending login with a login recovery code.
func (a *app) recoverLogin(w http.ResponseWriter, r *http.Request) error {
	info, ok := a.pending(r)
	if !ok {
		return redirect(w, r, "/notes")
	}
	name, err := a.usernameOf(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	st, err := a.auth.RecoverLogin(r.Context(), r.PostFormValue("recovery_code"), a.codeSource(r, info.UserID))
	if err != nil {
		return a.secondFactorFailed(w, r, info.UserID, err, true)
	}
	if err := a.rememberBothFactors(w, name, info.UserID); err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "webapp.login.second_factor", "user", info.UserID, "factor", "recovery_code", "remaining", st.Remaining)
	// Shown in answer to the POST: sending the form again finds the login
	// complete and spends no other code.
	return a.render(w, r, http.StatusOK, "recovered", pageData{Recovery: st})
}

// rememberBothFactors marks this browser as one that gave both factors:
// a known device for the login lockout (by name) and for the code lockout
// (by user ID).
func (a *app) rememberBothFactors(w http.ResponseWriter, name, userID string) error {
	if err := a.knownDevices.Remember(w, name); err != nil {
		return err
	}
	return a.codeDevices.Remember(w, userID)
}

// secondFactorFailed answers a code that was refused: an authenticator's
// code, or a login recovery code with recoveryCode.
func (a *app) secondFactorFailed(w http.ResponseWriter, r *http.Request, userID string, err error, recoveryCode bool) error {
	ctx := r.Context()
	switch {
	case errors.Is(err, session.ErrTooManySecondFactorFailures): // the login has ended, its cookie expired
		a.log.WarnContext(ctx, "webapp.login.second_factor_ended", "user", userID)
		return redirect(w, r, "/login?mfa=failed")
	case errors.Is(err, session.ErrNotLoggedIn):
		return err // ended meanwhile (fail redirects)
	case errors.Is(err, ratelimit.ErrRejected): // wrong, used or locked: one answer
		a.log.InfoContext(ctx, "webapp.login.second_factor_failed", "user", userID, "locked", errors.Is(err, ratelimit.ErrLocked))
		if recoveryCode {
			return a.twoFactorPage(w, r, http.StatusUnauthorized, errRecoveryCode, true)
		}
		return a.twoFactorPage(w, r, http.StatusUnauthorized, errCode, false)
	case errors.Is(err, totp.ErrNotEnrolled):
		// The authenticators (or recovery codes) were removed after the
		// password was checked: the login starts again, and then needs no
		// code.
		if err := a.m.Logout(ctx); err != nil {
			return err
		}
		return redirect(w, r, "/login?ended=1")
	}
	return err
}

// unlockPage is the unlock form; after a second factor, it says why the
// password is asked again.
func (a *app) unlockPage(w http.ResponseWriter, r *http.Request) error {
	var d pageData
	switch r.URL.Query().Get("after") {
	case "2fa":
		d.Notice = "Code accepted. Your notes are sealed with your password: enter it once more to unlock them."
	case "passkey":
		d.Notice = "Signed in with your passkey. Your notes are still sealed: unlock them below."
	}
	return a.render(w, r, http.StatusOK, "unlock", d)
}

// security is the two-factor settings page.
func (a *app) security(w http.ResponseWriter, r *http.Request) error {
	d, err := a.securityData(r)
	if err != nil {
		return err
	}
	return a.render(w, r, http.StatusOK, "security", d)
}

func (a *app) securityData(r *http.Request) (pageData, error) {
	info, _ := a.m.Current(r.Context())
	list, err := a.auth.Authenticators(r.Context(), info.UserID)
	if err != nil {
		return pageData{}, err
	}
	st, err := a.auth.RecoveryCodes(r.Context(), info.UserID)
	if err != nil {
		return pageData{}, err
	}
	unsaved, err := a.codesUnsaved(r.Context(), info.UserID, st)
	if err != nil {
		return pageData{}, err
	}
	return pageData{Authenticators: list, Enrolled: len(list) > 0, Recovery: st, CodesUnsaved: unsaved}, nil
}

// Recovery codes are shown once, on the page that answers their making.
// If that page never reaches the user (the process dies after the codes
// are stored, the connection drops, a double click shows the first
// request's error while the second made the codes), they hold codes they
// never saw. So the user says they saved them ("I have saved them" on
// the codes page posts the set it showed, by its totp.RecoveryCode
// Generated time, which names a user's set), the app records that set in
// totp_codes_saved, and the two-factor page asks for a new set while the
// user's current set is another. The row is made (with no set saved)
// before any codes are made, so a set that is never said saved is never
// taken for a saved one; a user with no row (codes made before the app
// tracked them) is not asked.

// trackCodes makes the user's totp_codes_saved row, with no set saved,
// if there is none: called before codes may be made.
func (a *app) trackCodes(ctx context.Context, userID string) error {
	_, err := a.db.ExecContext(ctx, "INSERT INTO totp_codes_saved (user_id, generated) VALUES (?, 0) ON CONFLICT (user_id) DO NOTHING", userID)
	return err
}

// codesUnsaved reports whether the user has a current set of recovery
// codes (st) that they have not said they saved.
func (a *app) codesUnsaved(ctx context.Context, userID string, st totp.RecoveryStatus) (bool, error) {
	if st.Generated.IsZero() {
		return false, nil
	}
	var saved int64
	switch err := a.db.QueryRowContext(ctx, "SELECT generated FROM totp_codes_saved WHERE user_id = ?", userID).Scan(&saved); {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil // codes made before the app tracked them
	case err != nil:
		return false, err
	}
	return saved != st.Generated.UnixMilli(), nil
}

// codesSaved records that the user saved the set the codes page showed
// (its "set" field), if that set is still the user's current one;
// otherwise (a page of an older set) nothing changes, and the two-factor
// page still asks for a new set. The write only moves the saved set
// forward (sets are named by strictly later times), so a save that read
// an older current set just before a newer one was made and saved in
// another tab cannot undo that newer save.
func (a *app) codesSaved(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	set, err := strconv.ParseInt(r.PostFormValue("set"), 10, 64)
	if err != nil || set <= 0 {
		return badInput("That form is not one the app showed.")
	}
	st, err := a.auth.RecoveryCodes(ctx, info.UserID)
	if err != nil {
		return err
	}
	if !st.Generated.IsZero() && st.Generated.UnixMilli() == set {
		if _, err := a.db.ExecContext(ctx, "INSERT INTO totp_codes_saved (user_id, generated) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET generated = excluded.generated WHERE totp_codes_saved.generated < excluded.generated", info.UserID, set); err != nil {
			return err
		}
	}
	return redirect(w, r, "/2fa")
}

// stepUp sends the user to authenticate again (package totp refused a
// change: ErrStepUpRequired), then back to next.
func stepUp(w http.ResponseWriter, r *http.Request, next string) error {
	return redirect(w, r, "/reauth?next="+url.QueryEscape(next))
}

// enrollView is what the enrollment page shows: the QR code (an image
// served by GET /2fa/qr from the setup token, since the Content-Security-
// Policy allows images from this origin only, not data: URLs), the secret
// for typing, and the token for the form.
type enrollView struct {
	Token, Secret string
	QR            template.URL
	Name          string
	Expires       time.Time
}

func newEnrollView(e *totp.Enrollment, name string) *enrollView {
	return &enrollView{Token: e.Token, Secret: e.Secret(), QR: template.URL("/2fa/qr?token=" + url.QueryEscape(e.Token)),
		Name: name, Expires: e.Expires}
}

// enrollPage starts adding an authenticator. Nothing is stored until the
// first code confirms it.
func (a *app) enrollPage(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	name, err := a.usernameOf(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	e, err := a.auth.Begin(r.Context(), info.UserID, name)
	if err != nil {
		return err
	}
	return a.render(w, r, http.StatusOK, "enroll", pageData{Enroll: newEnrollView(e, "")})
}

// qrCode serves a pending enrollment's QR code, re-derived from its setup
// token (bound to the session's user; refused once confirmed).
func (a *app) qrCode(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	e, err := a.auth.Pending(r.Context(), info.UserID, r.URL.Query().Get("token"))
	if isSetupGone(err) {
		http.Error(w, "404 not found", http.StatusNotFound)
		return nil
	}
	if err != nil {
		return err
	}
	png, err := e.QRCode(256)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store") // it carries the secret
	_, _ = w.Write(png)
	return nil
}

// isSetupGone reports the errors of a setup token that cannot be used:
// expired, not this user's, tampered, too long, or confirmed already.
func isSetupGone(err error) bool {
	return errors.Is(err, totp.ErrSetupExpired) || errors.Is(err, totp.ErrSetupInvalid) ||
		errors.Is(err, totp.ErrInvalidInput) || errors.Is(err, totp.ErrAlreadyConfirmed)
}

var errSetupGone = &userError{status: http.StatusBadRequest,
	msg: "That setup has expired or was already used. Start again from the two-factor page."}

// enroll confirms a new authenticator with its first code.
func (a *app) enroll(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	token, label := r.PostFormValue("token"), strings.TrimSpace(r.PostFormValue("name"))
	if len(label) > totp.MaxNameLen {
		return badInput(fmt.Sprintf("A name is at most %d bytes.", totp.MaxNameLen))
	}
	if label == "" {
		label = "Authenticator"
	}
	// The other sessions end before the authenticator is stored (Confirm
	// ends them again after): a crash between Confirm's write and its
	// revocation must not leave another device's password-only session
	// logged in on an account that now asks for a code. Only for a setup
	// that can still be confirmed; the route is fresh, as /devices'
	// "log out everywhere else" is, so this ends nothing that session
	// could not end anyway.
	if _, perr := a.auth.Pending(ctx, info.UserID, token); perr == nil {
		if err := a.m.RevokeOthers(ctx); err != nil {
			return err
		}
		// The first authenticator comes with recovery codes: tracked
		// before they are made (see trackCodes).
		if err := a.trackCodes(ctx, info.UserID); err != nil {
			return err
		}
	}
	if hook := hookFactorWrite.Load(); hook != nil {
		(*hook)(info.UserID)
	}
	conf, err := a.auth.Confirm(ctx, info.UserID, token, r.PostFormValue("code"), a.codeSource(r, info.UserID), totp.ConfirmOptions{Name: label})
	switch {
	case errors.Is(err, totp.ErrStepUpRequired):
		return stepUp(w, r, "/2fa/enroll")
	case errors.Is(err, totp.ErrAlreadyConfirmed): // the form sent twice
		return redirect(w, r, "/2fa")
	case errors.Is(err, ratelimit.ErrRejected):
		a.log.InfoContext(ctx, "webapp.totp.confirm_failed", "user", info.UserID, "locked", errors.Is(err, ratelimit.ErrLocked))
		e, perr := a.auth.Pending(ctx, info.UserID, token) // the same QR code again
		if isSetupGone(perr) {
			return errSetupGone
		}
		if perr != nil {
			return perr
		}
		return a.render(w, r, http.StatusUnauthorized, "enroll", pageData{Enroll: newEnrollView(e, label), Error: errCode})
	case isSetupGone(err):
		return errSetupGone
	case errors.Is(err, totp.ErrTooManyAuthenticators):
		return &userError{status: http.StatusConflict, msg: fmt.Sprintf("You have %d authenticators already: remove one first.", totp.MaxAuthenticators)}
	case err != nil && conf.Authenticator.ID == "":
		return err
	}
	var d pageData
	if err != nil {
		// Stored, but the other sessions may not have been logged out.
		a.log.ErrorContext(ctx, "webapp.totp.after_change_failed", "user", info.UserID, "error", err)
		d.Error = "Your authenticator was added, but your other devices could not all be logged out: check the Devices page."
	}
	// Confirm re-issued the session marked with the new authenticator's
	// factor: it is multi-factor now, as the next change to the factors
	// requires. This browser has given a right code.
	if err := a.codeDevices.Remember(w, info.UserID); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "webapp.totp.enrolled", "user", info.UserID, "authenticator", conf.Authenticator.ID)
	if len(conf.RecoveryCodes) == 0 {
		return redirect(w, r, "/2fa")
	}
	d.Codes, d.CodesSet = reveal(conf.RecoveryCodes), codeSet(conf.RecoveryCodes)
	d.Notice = "Your authenticator is set up. From now on, logging in asks for a code from it."
	return a.render(w, r, http.StatusOK, "codes", d)
}

// codeSet names the set of codes (0: none): its generation time in Unix
// milliseconds, which the codes page's "I have saved them" posts.
func codeSet(codes []totp.RecoveryCode) int64 {
	if len(codes) == 0 {
		return 0
	}
	return codes[0].Generated().UnixMilli()
}

func reveal(codes []totp.RecoveryCode) []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = c.Reveal()
	}
	return out
}

func (a *app) removeAuthenticator(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	err := a.auth.Remove(ctx, info.UserID, r.PostFormValue("id"))
	switch {
	case errors.Is(err, totp.ErrStepUpRequired):
		return stepUp(w, r, "/2fa")
	case errors.Is(err, totp.ErrNotEnrolled), errors.Is(err, totp.ErrInvalidInput):
		d, derr := a.securityData(r)
		if derr != nil {
			return derr
		}
		d.Error = "That authenticator is not there any more."
		return a.render(w, r, http.StatusNotFound, "security", d)
	case err != nil:
		return err
	}
	a.log.InfoContext(ctx, "webapp.totp.removed", "user", info.UserID)
	return redirect(w, r, "/2fa")
}

// regenerateCodes replaces the login recovery codes, shown once.
func (a *app) regenerateCodes(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	if err := a.trackCodes(ctx, info.UserID); err != nil {
		return err
	}
	codes, err := a.auth.RegenerateRecoveryCodes(ctx, info.UserID)
	switch {
	case errors.Is(err, totp.ErrStepUpRequired):
		return stepUp(w, r, "/2fa")
	case err != nil && codes == nil:
		return err
	}
	var d pageData
	if err != nil {
		a.log.ErrorContext(ctx, "webapp.totp.after_change_failed", "user", info.UserID, "error", err)
		d.Error = "Your new codes are made, but your other devices could not all be logged out: check the Devices page."
	}
	d.Codes, d.CodesSet = reveal(codes), codeSet(codes)
	d.Notice = "Your old recovery codes no longer work."
	return a.render(w, r, http.StatusOK, "codes", d)
}
