package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyhold/keyhold/passkey"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
)

// Passkeys (package passkey): users add them on the passkeys page, behind
// the same fresh step-up as the two-factor pages; they sign in with one
// without typing a username, and unlock their vault with one whose
// authenticator has the PRF extension.
//
// The ceremonies run in the browser (static/passkeys.js, which imports
// the package's client, served at /static/keyhold-passkey.js) against the
// JSON endpoints under /passkey/. A passkey sign-in is multi-factor by
// itself (a user-verified passkey, session.FactorPasskey) and asks for no
// TOTP code; it leaves the vault locked, since a sign-in without a
// username cannot ask the passkey for its PRF output (the salts are per
// credential, and the browser sends them only to listed credentials), so
// the page then offers to unlock with a second prompt.
//
// A step-up with a passkey (the reauth page's "Confirm with a passkey")
// is the package's step-up ceremony (Manager.BeginStepUp, FinishStepUp),
// not a new sign-in: the passkey must be one of the session's own user's,
// the session becomes fresh and multi-factor (session.FactorPasskey, its
// token re-issued), and the vault stays as it was. The same endpoints
// complete a password login pending its second factor (a user with TOTP
// who also has a passkey: "Use a passkey instead" on the code page),
// counted like the codes: three refusals end that login.
//
// A password login stays what it was: a user with passkeys and no TOTP
// authenticator who logs in with their password has a single-factor
// session, and the password unlocks the vault at once. The passkey is not
// asked for as a second factor after a password: such a user has no
// login recovery codes, so a lost passkey would lock them out, while the
// passkey is a way in of its own, stronger than the password. Such a
// session confirms with a passkey (or an authenticator code) before it
// adds or removes a passkey, as package passkey requires (PKY-15).

// passkeyBeginPerIP limits the passkey sign-ins begun per client address:
// each stores a challenge until it is used or expires. Finishing one is
// limited with the password logins (loginPerIP).
var passkeyBeginPerIP = ratelimit.Rule{Name: "passkey-begin", Limit: 30, Period: 15 * time.Minute}

// setUpPasskeys builds the passkey Manager on keyhold's store (its
// PasskeyStore and ChallengeStore), the app's sessions, vault, TOTP
// authenticator (a user with TOTP needs a multi-factor session to add a
// first passkey) and notifier, with a lockout of its own (named
// "passkey") that counts failed passkey sign-ins and unlocks per user ID.
// The origin is where browsers reach the app; the RP ID is its host.
func (a *app) setUpPasskeys(store passkeyStores, cfg config) error {
	if cfg.Origin == "" {
		a.log.Warn("webapp.passkeys_off", "reason", "no -origin: give the https:// origin browsers reach the app at")
		return nil
	}
	u, err := url.Parse(cfg.Origin)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("-origin %q is not an origin such as https://notes.example.com", cfg.Origin)
	}
	opts := ratelimit.Options{Logger: cfg.Logger, Now: cfg.Now}
	if a.passkeyBegin, err = ratelimit.New(store, passkeyBeginPerIP, opts); err != nil {
		return err
	}
	if a.passkeyLockout, err = ratelimit.NewLockout(store, ratelimit.LockoutOptions{Name: "passkey", Logger: cfg.Logger, Now: cfg.Now}); err != nil {
		return err
	}
	a.passkeys, err = passkey.New(passkey.Config{
		RPID:           u.Hostname(),
		RPName:         "keyhold notes",
		Origins:        []string{cfg.Origin},
		TrustedProxies: cfg.TrustedProxies,
		Store:          store,
		Challenges:     store,
		Sessions:       a.m,
		Vault:          a.vault,
		Lockout:        a.passkeyLockout,
		SecondFactors:  a.auth,
		Notifier:       a.notifier,
		Logger:         cfg.Logger,
		Now:            cfg.Now,
	})
	if err != nil {
		return fmt.Errorf("passkeys (-origin %q): %w", cfg.Origin, err)
	}
	return nil
}

// passkeyRoutes adds the passkey pages and endpoints to mux.
func (a *app) passkeyRoutes(mux *http.ServeMux, handle func(string, handler, func(http.Handler) http.Handler), fresh func(http.Handler) http.Handler) {
	if a.passkeys == nil {
		return // off (no origin): the pages do not offer them
	}
	m := a.m
	mux.Handle("GET /static/keyhold-passkey.js", passkey.ScriptHandler())
	handle("GET /passkeys", a.passkeysPage, m.RequireLogin)
	handle("GET /passkeys/add", a.addPasskeyPage, fresh)
	handle("POST /passkeys/rename", a.renamePasskey, m.RequireLogin)
	handle("POST /passkeys/remove", a.removePasskey, fresh)

	// The ceremonies' JSON endpoints. deny and fail answer them in JSON
	// (isAPI).
	handle("POST /passkey/register/begin", a.registerBegin, m.RequireLogin)
	handle("POST /passkey/register/finish", a.registerFinish, m.RequireLogin)
	handle("POST /passkey/login/begin", a.loginBegin, a.passkeyBegin.Middleware(ratelimit.ByIP(a.clients), a.tooManyAPI))
	// Finishing a sign-in is a login attempt: the per-address login limit
	// counts it with the password logins.
	handle("POST /passkey/login/finish", a.loginFinish, a.loginPerIP.Middleware(ratelimit.ByIP(a.clients), a.tooManyAPI))
	handle("POST /passkey/unlock/begin", a.unlockBegin, m.RequireLogin)
	handle("POST /passkey/unlock/finish", a.unlockFinish, m.RequireLogin)
	// The private-notes page's passkey options (privatenotes.go): limited
	// per address as the ceremonies begun.
	handle("POST /passkey/prf-options", a.prfOptions, func(h http.Handler) http.Handler {
		return m.RequireLogin(a.passkeyBegin.Middleware(ratelimit.ByIP(a.clients), a.tooManyAPI)(h))
	})
	// The step-up: the only passkey endpoints a login pending its second
	// factor reaches (RequireFirstFactor, as /login/2fa). Begun ones are
	// limited per address as the sign-ins begun; finishing one checks a
	// credential, limited per address as the password step-up (kdfPerIP).
	handle("POST /passkey/stepup/begin", a.stepUpBegin, func(h http.Handler) http.Handler {
		return m.RequireFirstFactor(a.passkeyBegin.Middleware(ratelimit.ByIP(a.clients), a.tooManyAPI)(h))
	})
	handle("POST /passkey/stepup/finish", a.stepUpFinish, func(h http.Handler) http.Handler {
		return m.RequireFirstFactor(a.kdfPerIP.Middleware(ratelimit.ByIP(a.clients), a.tooManyAPI)(h))
	})
}

// isAPI reports a request to one of the JSON endpoints.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/passkey/") }

// apiAnswer is what the JSON endpoints answer: on success the page to go
// to; on failure a message for the user, and maybe a page that fixes it
// (the step-up, the login or the unlock page).
type apiAnswer struct {
	Next    string `json:"next,omitempty"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

// apiDeny answers a JSON request that a session guard refused: the page
// that fixes it, with status 401 or 403 (a fetch must not follow a
// redirect to an HTML page).
func (a *app) apiDeny(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, session.ErrNotLoggedIn):
		_ = writeJSON(w, http.StatusUnauthorized, apiAnswer{Error: "Please log in first.", Next: "/login"})
	case errors.Is(err, session.ErrSecondFactorRequired):
		_ = writeJSON(w, http.StatusUnauthorized, apiAnswer{Error: "Finish logging in first.", Next: "/login/2fa"})
	case errors.Is(err, session.ErrLocked):
		_ = writeJSON(w, http.StatusForbidden, apiAnswer{Error: "Unlock your notes first.", Next: "/unlock"})
	case errors.Is(err, session.ErrNotFresh), errors.Is(err, session.ErrMultiFactorRequired):
		_ = writeJSON(w, http.StatusForbidden, apiAnswer{Error: "Please confirm it's you first.", Next: "/reauth"})
	default:
		a.fail(w, r, err)
	}
}

// tooManyAPI answers a JSON request over a per-address limit.
func (a *app) tooManyAPI(w http.ResponseWriter, r *http.Request, d ratelimit.Decision) {
	if d.Err != nil {
		a.fail(w, r, d.Err)
		return
	}
	w.Header().Set("Retry-After", strconv.FormatInt(int64((d.RetryAfter+time.Second-1)/time.Second), 10))
	_ = writeJSON(w, http.StatusTooManyRequests, apiAnswer{Error: fmt.Sprintf("Too many attempts. Try again in %s.", d.RetryAfter.Round(time.Second))})
}

// readAnswer reads the browser's answer to a ceremony: at most
// passkey.MaxResponseLen bytes.
func readAnswer(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, passkey.MaxResponseLen+1))
	if err != nil {
		return nil, &userError{status: http.StatusBadRequest, msg: "The request could not be read."}
	}
	if len(b) > passkey.MaxResponseLen {
		return nil, &userError{status: http.StatusRequestEntityTooLarge, msg: "That answer is too long."}
	}
	return b, nil
}

// passkeyFailed answers an error of a ceremony with a 4xx JSON answer
// that says what to do, without detail on why a sign-in or an unlock was
// refused; anything else is the server's (fail: 500 without detail).
func (a *app) passkeyFailed(w http.ResponseWriter, r *http.Request, err error, stepUpNext string) error {
	var status int
	ans := apiAnswer{}
	switch {
	case errors.Is(err, passkey.ErrLoginFailed):
		status, ans.Error = http.StatusUnauthorized, "sign-in failed"
	case errors.Is(err, passkey.ErrUnlockFailed):
		status, ans.Error = http.StatusUnauthorized, "That passkey did not unlock your notes. Use your password, then set the passkey up to unlock on the Passkeys page."
	case errors.Is(err, passkey.ErrNotSetUp):
		status, ans.Error, ans.Next = http.StatusConflict, "This passkey is not set up to unlock your notes yet. Unlock with your password, then choose \"Set up unlocking\" on the Passkeys page.", "/unlock"
	case errors.Is(err, passkey.ErrPRFUnavailable):
		status, ans.Error = http.StatusConflict, "This passkey cannot unlock your notes here (the browser or the authenticator gave no PRF output). Use your password."
	case errors.Is(err, passkey.ErrChallenge):
		status, ans.Error = http.StatusBadRequest, "start again"
	case errors.Is(err, passkey.ErrInvalidResponse):
		status, ans.Error = http.StatusBadRequest, "The browser's answer was not understood. Start again."
	case errors.Is(err, passkey.ErrOrigin):
		status, ans.Error = http.StatusForbidden, "Passkeys work only at this site's own address."
	case errors.Is(err, passkey.ErrStepUpRequired):
		status, ans.Error, ans.Next = http.StatusForbidden, "Please confirm it's you first.", "/reauth?next="+url.QueryEscape(stepUpNext)
	case errors.Is(err, passkey.ErrRegistrationFailed):
		status, ans.Error = http.StatusBadRequest, "That passkey was refused: it must check your PIN or biometrics. Try another authenticator."
	case errors.Is(err, passkey.ErrCredentialInUse):
		status, ans.Error = http.StatusConflict, "That passkey is registered already."
	case errors.Is(err, passkey.ErrTooManyPasskeys):
		status, ans.Error = http.StatusConflict, "You have too many passkeys: remove one first."
	case errors.Is(err, passkey.ErrConflict):
		status, ans.Error = http.StatusConflict, "Your passkeys changed meanwhile. Try again."
	case errors.Is(err, passkey.ErrInvalidInput):
		status, ans.Error = http.StatusBadRequest, fmt.Sprintf("A passkey's name is 1 to %d characters, without control characters.", passkey.MaxNameLen)
	case errors.Is(err, session.ErrNotLoggedIn):
		status, ans.Error, ans.Next = http.StatusUnauthorized, "Please log in first.", "/login"
	default:
		if ue, ok := errors.AsType[*userError](err); ok {
			status, ans.Error = ue.status, ue.msg
			break
		}
		return err
	}
	return writeJSON(w, status, ans)
}

// registerBegin starts adding a passkey; the authenticator shows the
// username to tell accounts apart.
func (a *app) registerBegin(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	name, err := a.usernameOf(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	opts, err := a.passkeys.BeginRegistration(r, name)
	if err != nil {
		return a.passkeyFailed(w, r, err, "/passkeys/add")
	}
	// The other sessions end now, before the passkey can be stored
	// (FinishRegistration ends them again after its write): a crash
	// between that write and its revocation must not leave another
	// device logged in past the change. BeginRegistration checked the
	// step-up, so this ends nothing the session could not end from
	// /devices.
	if err := a.m.RevokeOthers(r.Context()); err != nil {
		return err
	}
	return writeOptions(w, opts)
}

func writeOptions(w http.ResponseWriter, opts []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(opts)
	return nil
}

// registerFinish stores the new passkey under the name the user typed
// (the finish URL's "name" parameter).
func (a *app) registerFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	label := strings.TrimSpace(r.URL.Query().Get("name"))
	if label == "" {
		label = "Passkey"
	}
	if len(label) > passkey.MaxNameLen {
		return a.passkeyFailed(w, r, passkey.ErrInvalidInput, "")
	}
	body, err := readAnswer(r)
	if err != nil {
		return a.passkeyFailed(w, r, err, "")
	}
	if hook := hookFactorWrite.Load(); hook != nil {
		(*hook)(info.UserID)
	}
	c, err := a.passkeys.FinishRegistration(r, body, label)
	if err != nil && c.ID == "" {
		return a.passkeyFailed(w, r, err, "/passkeys/add")
	}
	next := "/passkeys?added=1"
	if err != nil {
		// Stored, but the other sessions may not all have ended.
		a.log.ErrorContext(ctx, "webapp.passkey.after_change_failed", "user", info.UserID, "error", err)
		next = "/passkeys?added=partly"
	}
	a.log.InfoContext(ctx, "webapp.passkey.added", "user", info.UserID, "prf", c.PRF, "can_unlock", c.CanUnlock)
	return writeJSON(w, http.StatusOK, apiAnswer{Next: next})
}

func (a *app) loginBegin(w http.ResponseWriter, r *http.Request) error {
	opts, err := a.passkeys.BeginLogin(w, r)
	if err != nil {
		return a.passkeyFailed(w, r, err, "")
	}
	return writeOptions(w, opts)
}

// loginFinish signs the passkey's owner in, and sends them to the unlock
// page, which offers the second prompt that unlocks the vault.
func (a *app) loginFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	body, err := readAnswer(r)
	if err != nil {
		return a.passkeyFailed(w, r, err, "")
	}
	ip, _ := a.clients.Client(r)
	q := r.URL.Query()
	res, err := a.passkeys.FinishLogin(w, r, body, ratelimit.Source{IP: ip}, passkey.LoginOptions{Remember: q.Get("remember") == "1"})
	if err != nil {
		if errors.Is(err, passkey.ErrLoginFailed) {
			a.log.InfoContext(ctx, "webapp.passkey.login_failed", "possible_clone", errors.Is(err, passkey.ErrPossibleClone))
		}
		return a.passkeyFailed(w, r, err, "")
	}
	name, ok, err := a.passkeyAccount(w, r, res.UserID)
	if !ok {
		return err
	}
	if res.ClonedCounter {
		a.log.WarnContext(ctx, "webapp.passkey.clone_flagged", "user", res.UserID)
	}
	// A user-verified passkey is both factors: this browser is the owner's.
	if err := a.rememberBothFactors(w, name, res.UserID); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "webapp.login.passkey", "user", res.UserID)
	return writeJSON(w, http.StatusOK, apiAnswer{Next: "/unlock?after=passkey"})
}

// passkeyAccount returns the login name of the user a passkey just
// signed in or stepped up, or, when the account is being deleted (its
// passkeys go with it) or gone, ends the session and answers as a failed
// sign-in (ok false; err is what the handler returns).
func (a *app) passkeyAccount(w http.ResponseWriter, r *http.Request, userID string) (name string, ok bool, err error) {
	ctx := r.Context()
	var stored string
	err = a.db.QueryRowContext(ctx, "SELECT username, password_hash FROM users WHERE id = ?", userID).Scan(&name, &stored)
	if err == nil && stored != deletingMark {
		return name, true, nil
	}
	if lerr := a.m.Logout(ctx); lerr != nil {
		return "", false, lerr
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", false, err
	}
	return "", false, a.passkeyFailed(w, r, passkey.ErrLoginFailed, "")
}

// stepUpBegin starts a passkey step-up of the session's user, complete or
// pending its second factor.
func (a *app) stepUpBegin(w http.ResponseWriter, r *http.Request) error {
	opts, err := a.passkeys.BeginStepUp(r)
	if errors.Is(err, passkey.ErrNotFound) {
		return writeJSON(w, http.StatusConflict, apiAnswer{Error: "You have no passkey: use your password or a code."})
	}
	if err != nil {
		return a.passkeyFailed(w, r, err, "")
	}
	return writeOptions(w, opts)
}

// stepUpFinish checks the passkey of a step-up. A complete session is now
// fresh and multi-factor, its vault as it was, and goes on to next (the
// finish URL's parameter, checked as the reauth form's). A login pending
// its second factor is complete, and goes on as after a TOTP code: to the
// unlock page (the pending session held no vault key). A refusal is 401
// without detail; the refusal that ends a pending login (the third) sends
// the browser back to the login page.
func (a *app) stepUpFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx) // RequireFirstFactor ran
	body, err := readAnswer(r)
	if err != nil {
		return a.passkeyFailed(w, r, err, "")
	}
	_, err = a.passkeys.FinishStepUp(r, body, a.codeSource(r, info.UserID))
	switch {
	case errors.Is(err, session.ErrTooManySecondFactorFailures): // the login has ended, its cookie expired
		a.log.WarnContext(ctx, "webapp.login.second_factor_ended", "user", info.UserID, "factor", "passkey")
		return writeJSON(w, http.StatusUnauthorized, apiAnswer{Error: "That login has ended.", Next: "/login?mfa=failed"})
	case errors.Is(err, passkey.ErrLoginFailed):
		a.log.InfoContext(ctx, "webapp.passkey.stepup_failed", "user", info.UserID, "pending", info.SecondFactorPending,
			"possible_clone", errors.Is(err, passkey.ErrPossibleClone))
		return a.passkeyFailed(w, r, passkey.ErrLoginFailed, "")
	case err != nil:
		return a.passkeyFailed(w, r, err, "")
	}
	name, ok, err := a.passkeyAccount(w, r, info.UserID)
	if !ok {
		return err
	}
	// A user-verified passkey is both factors: this browser is the owner's.
	if err := a.rememberBothFactors(w, name, info.UserID); err != nil {
		return err
	}
	if info.SecondFactorPending {
		a.log.InfoContext(ctx, "webapp.login.second_factor", "user", info.UserID, "factor", "passkey")
		return writeJSON(w, http.StatusOK, apiAnswer{Next: "/unlock?after=passkey"})
	}
	a.log.InfoContext(ctx, "webapp.reauth.passkey", "user", info.UserID)
	return writeJSON(w, http.StatusOK, apiAnswer{Next: session.SafeRedirect(r.URL.Query().Get("next"), "/devices")})
}

func (a *app) unlockBegin(w http.ResponseWriter, r *http.Request) error {
	opts, err := a.passkeys.BeginUnlock(r)
	if err != nil {
		return a.passkeyFailed(w, r, err, "")
	}
	return writeOptions(w, opts)
}

// unlockFinish unlocks the vault with the passkey's PRF output, or, when
// it is unlocked already, sets the passkey up to unlock it.
func (a *app) unlockFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	body, err := readAnswer(r)
	if err != nil {
		return a.passkeyFailed(w, r, err, "")
	}
	res, err := a.passkeys.FinishUnlock(r, body, a.codeSource(r, info.UserID))
	if err != nil {
		if errors.Is(err, passkey.ErrUnlockFailed) {
			a.log.InfoContext(ctx, "webapp.passkey.unlock_failed", "user", info.UserID, "possible_clone", errors.Is(err, passkey.ErrPossibleClone))
		}
		return a.passkeyFailed(w, r, err, "")
	}
	if res.SetUp {
		a.log.InfoContext(ctx, "webapp.passkey.unlock_set_up", "user", info.UserID)
		return writeJSON(w, http.StatusOK, apiAnswer{Next: "/passkeys?setup=1"})
	}
	return writeJSON(w, http.StatusOK, apiAnswer{Next: "/notes"})
}

// passkeyInfo tells whether the user has passkeys, and one that can
// unlock the vault now.
func (a *app) passkeyInfo(ctx context.Context, userID string) (has, canUnlock bool, err error) {
	if a.passkeys == nil {
		return false, false, nil
	}
	list, err := a.passkeys.List(ctx, userID)
	if err != nil {
		return false, false, err
	}
	for _, c := range list {
		canUnlock = canUnlock || c.CanUnlock
	}
	return len(list) > 0, canUnlock, nil
}

// passkeysPage lists the user's passkeys.
func (a *app) passkeysPage(w http.ResponseWriter, r *http.Request) error {
	d, err := a.passkeysData(r)
	if err != nil {
		return err
	}
	switch r.URL.Query().Get("added") {
	case "1":
		d.Notice = "Your passkey is added. Your other devices were logged out."
	case "partly":
		d.Error = "Your passkey was added, but your other devices could not all be logged out: check the Devices page."
	}
	if r.URL.Query().Get("setup") != "" {
		d.Notice = "That passkey now unlocks your notes too."
	}
	return a.render(w, r, http.StatusOK, "passkeys", d)
}

func (a *app) passkeysData(r *http.Request) (pageData, error) {
	info, _ := a.m.Current(r.Context())
	list, err := a.passkeys.List(r.Context(), info.UserID)
	if err != nil {
		return pageData{}, err
	}
	d := pageData{Passkeys: list}
	for _, c := range list {
		d.PasskeySetUp = d.PasskeySetUp || (c.PRF && !c.CanUnlock)
	}
	return d, nil
}

// addPasskeyPage is the form that adds a passkey (the ceremony runs in
// the browser). It checks the step-up package passkey will ask for: a
// session rated multi-factor once the user has a passkey or an
// authenticator.
func (a *app) addPasskeyPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	if !info.MultiFactor {
		has, _, err := a.passkeyInfo(ctx, info.UserID)
		if err != nil {
			return err
		}
		totpOn, err := a.auth.Enrolled(ctx, info.UserID)
		if err != nil {
			return err
		}
		if has || totpOn {
			return stepUp(w, r, "/passkeys/add")
		}
	}
	return a.render(w, r, http.StatusOK, "addpasskey", pageData{})
}

func (a *app) renamePasskey(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context())
	label := strings.TrimSpace(r.PostFormValue("name"))
	err := a.passkeys.Rename(r, info.UserID, r.PostFormValue("id"), label)
	switch {
	case errors.Is(err, passkey.ErrNotFound):
		return a.passkeysError(w, r, http.StatusNotFound, "That passkey is not there any more.")
	case errors.Is(err, passkey.ErrInvalidInput):
		return a.passkeysError(w, r, http.StatusBadRequest, fmt.Sprintf("A passkey's name is 1 to %d characters, without control characters.", passkey.MaxNameLen))
	case errors.Is(err, passkey.ErrConflict):
		return a.passkeysError(w, r, http.StatusConflict, "Your passkeys changed meanwhile. Try again.")
	case err != nil:
		return err
	}
	return redirect(w, r, "/passkeys")
}

func (a *app) removePasskey(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx)
	err := a.passkeys.Remove(r, info.UserID, r.PostFormValue("id"))
	switch {
	case errors.Is(err, passkey.ErrStepUpRequired):
		return stepUp(w, r, "/passkeys")
	case errors.Is(err, passkey.ErrNotFound):
		return a.passkeysError(w, r, http.StatusNotFound, "That passkey is not there any more.")
	case errors.Is(err, passkey.ErrVaultLocked):
		return a.passkeysError(w, r, http.StatusConflict, "That passkey also unlocks your notes: unlock them first, then remove it.")
	case errors.Is(err, passkey.ErrConflict):
		return a.passkeysError(w, r, http.StatusConflict, "Your passkeys changed meanwhile. Try again.")
	case err != nil && !errors.Is(err, session.ErrNotLoggedIn):
		// Removed, but the other sessions may not all have ended (the
		// removal is stored before afterChange runs).
		if !a.listed(ctx, info.UserID, r.PostFormValue("id")) {
			a.log.ErrorContext(ctx, "webapp.passkey.after_change_failed", "user", info.UserID, "error", err)
			return a.passkeysError(w, r, http.StatusOK, "Your passkey was removed, but your other devices could not all be logged out: check the Devices page.")
		}
		return err
	case err != nil:
		return err
	}
	a.log.InfoContext(ctx, "webapp.passkey.removed", "user", info.UserID)
	return redirect(w, r, "/passkeys")
}

// listed reports whether the user still has the passkey id.
func (a *app) listed(ctx context.Context, userID, id string) bool {
	list, err := a.passkeys.List(ctx, userID)
	if err != nil {
		return true
	}
	for _, c := range list {
		if c.ID == id {
			return true
		}
	}
	return false
}

// passkeysError shows the passkeys page with an error.
func (a *app) passkeysError(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	d, err := a.passkeysData(r)
	if err != nil {
		return err
	}
	d.Error = msg
	return a.render(w, r, status, "passkeys", d)
}

// apiFail answers an error of a JSON endpoint as fail does a page's: a
// userError with its status and message, anything else with a 500 that
// reveals nothing (and a log line).
func (a *app) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, session.ErrNotLoggedIn) || errors.Is(err, session.ErrLocked) {
		a.apiDeny(w, r, err)
		return
	}
	status, msg := http.StatusInternalServerError, "Something went wrong on our side. Please try again."
	if ue, ok := errors.AsType[*userError](err); ok {
		status, msg = ue.status, ue.msg
	} else if storeUnavailable(err) { // a storage server is down or restarting (outage.go)
		a.log.ErrorContext(r.Context(), "webapp.error", "path", r.URL.Path, "unavailable", true, "error", err)
		w.Header().Set("Retry-After", "5")
		status, msg = http.StatusServiceUnavailable, unavailableMessage
	} else {
		a.log.ErrorContext(r.Context(), "webapp.error", "path", r.URL.Path, "error", err)
	}
	_ = writeJSON(w, status, apiAnswer{Error: msg})
}
