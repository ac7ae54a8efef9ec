package main

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/passkey"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/totp"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/zk"
)

//go:embed templates static
var files embed.FS

// pages holds one template set per page: the layout plus the page's
// "content".
var pages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	names := []string{"home", "signup", "login", "recovery", "unlock", "notes", "devices", "reauth", "error",
		"twofactor", "recovered", "security", "enroll", "codes", "account", "passkeys", "addpasskey", "privatenotes"}
	for _, name := range append(names, settingsPages...) {
		m[name] = template.Must(template.New(name).Funcs(templateFuncs).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
	return m
}()

// config is what newApp needs: main fills it from its flags, the tests from
// a temporary directory.
type config struct {
	DBPath string
	// TOTPKeyPath is the file of the key that seals the users' TOTP
	// secrets (see loadTOTPKeyRing): kept out of the database. Zero
	// selects DBPath + ".totp-key".
	TOTPKeyPath string
	// InsecureCookies lets sessions work over plain HTTP. main sets it only
	// when it serves plain HTTP on a loopback address.
	InsecureCookies bool
	// VaultKDF are the parameters of new vault passphrase slots. Zero
	// selects the vault's default (kdf.SensitiveParams: Argon2id, 64 MiB);
	// the tests use kdf.InteractiveParams to run faster.
	VaultKDF kdf.Params
	// Logger receives the app's events and the Manager's audit events.
	// Zero selects slog.Default().
	Logger *slog.Logger
	// Now is the clock of sessions and rate limits; zero selects time.Now.
	Now func() time.Time
	// Origin is the origin browsers reach the app at
	// ("https://notes.example.com", or "http://localhost:8080" in
	// development): passkeys are bound to its host (the WebAuthn RP ID)
	// and work only there. Zero turns passkeys off.
	Origin string
	// KDFGate configures the gate every password-hash run waits at. Zero
	// selects kdf's defaults (as many runs at once as CPUs, a queue of four
	// times that); the tests make it small, to fill it.
	KDFGate kdf.GateConfig
	// Gate, when set, is the KDF gate itself, and KDFGate is ignored: a
	// process that runs other password hashing shares one gate with the
	// app; tests hold its places.
	Gate *kdf.Gate
	// PostgresDSN, when set, puts keyhold's SQL store and the app's tables
	// in this PostgreSQL database instead of the SQLite file at DBPath
	// (see storage.go).
	PostgresDSN string
	// RedisURL, when set, puts sessions, rate limits, lockouts and passkey
	// challenges in this Redis server, under RedisPrefix (zero:
	// DefaultRedisPrefix).
	RedisURL    string
	RedisPrefix string
	// TrustedProxies are the reverse proxies in front of the app: their
	// X-Forwarded-For says which client a request comes from (rate limits,
	// lockouts), and their X-Forwarded-Proto whether it came over HTTPS.
	// Zero: none; the connection's peer is the client.
	TrustedProxies []netip.Prefix
}

type app struct {
	db     *appDB // users and notes (storage.go)
	m      *session.Manager
	vault  *vault.Vault
	hasher *kdf.Hasher
	policy *kdf.Policy
	log    *slog.Logger

	// loginAdmission bounds and orders the logins that reach the store,
	// and loginPlaces bounds the places one client address holds there
	// (admission.go).
	loginAdmission *kdf.Gate
	loginPlaces    *addressPlaces

	// Brute-force protection (see package ratelimit's "Lockout without
	// denial of service"): logins per client address, sign-ups per
	// client address, failures per account on every path that checks the
	// password (login, vault unlock, step-up), and device cookies that
	// give the owner's browsers a failure counter of their own.
	clients     *ratelimit.ClientResolver
	loginPerIP  *ratelimit.Limiter
	signupPerIP *ratelimit.Limiter
	// The other ways that run the KDF for a logged-in user (vault unlock,
	// step-up) are limited per account and per address, whatever the
	// outcome: a user flooding them with their own right password spends
	// their own budget, not everyone's KDF capacity.
	kdfPerAccount *ratelimit.Limiter
	kdfPerIP      *ratelimit.Limiter
	lockout       *ratelimit.Lockout
	knownDevices  *ratelimit.Devices
	codeDevices   *ratelimit.Devices // browsers that gave a second factor (see setUpLimits)

	// The second factor: TOTP authenticators and login recovery codes
	// (twofactor.go), with a lockout of its own that counts wrong codes
	// per user, apart from wrong passwords.
	auth        *totp.Authenticator
	codeLockout *ratelimit.Lockout
	notifier    keyhold.Notifier

	// Passkeys (passkeys.go): nil when off (no origin configured), with
	// a lockout of their own per user ID, and a limit per client address
	// on the sign-ins begun.
	passkeys       *passkey.Manager
	passkeyLockout *ratelimit.Lockout
	passkeyBegin   *ratelimit.Limiter

	// Private notes (privatenotes.go): the zero-knowledge server, whose
	// blobs only the user's browser opens, and its limit per user ID.
	zk        *zk.Server
	zkPerUser *ratelimit.Limiter
}

// The app's own tables. Notes carry only sealed titles and bodies.
const schema = `
CREATE TABLE IF NOT EXISTS users (
    id            TEXT NOT NULL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS notes (
    id      TEXT    NOT NULL PRIMARY KEY,
    user_id TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created INTEGER NOT NULL,
    title   BLOB    NOT NULL,
    body    BLOB    NOT NULL,
    version INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS notes_user ON notes (user_id, created);
CREATE TABLE IF NOT EXISTS keys_to_show (
    user_id TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed  BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS totp_codes_saved (
    user_id   TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    generated INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE IF NOT EXISTS app_secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;`

// newApp opens the database and returns the app's handler, wrapped in
// security headers, cross-origin (CSRF) protection and the session
// middleware, and a function that closes the database.
func newApp(cfg config) (_ http.Handler, _ func() error, err error) {
	ctx := context.Background()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// keyhold's stores and the app's tables: one SQLite file, or
	// PostgreSQL and Redis (storage.go).
	store, db, cleanup, err := openStores(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	// One Hasher (and so one Gate) for logins and vault unlocks, so that a
	// flood of either waits in one bounded queue.
	gate := cfg.Gate
	if gate == nil {
		if gate, err = kdf.NewGate(cfg.KDFGate); err != nil {
			return nil, nil, err
		}
	}
	hasher, err := kdf.New(kdf.Config{Gate: gate})
	if err != nil {
		return nil, nil, err
	}
	v, err := vault.New(store, vault.Config{Hasher: hasher, KDF: cfg.VaultKDF})
	if err != nil {
		return nil, nil, err
	}
	policy, err := kdf.NewPolicy(kdf.SingleFactorPolicy())
	if err != nil {
		return nil, nil, err
	}
	loginAdmission, loginPlaces, err := newLoginAdmission(gate.Config())
	if err != nil {
		return nil, nil, err
	}
	a := &app{db: db, vault: v, hasher: hasher, policy: policy, log: cfg.Logger, notifier: logNotifier{cfg.Logger}, loginAdmission: loginAdmission, loginPlaces: loginPlaces}
	if err := a.setUpLimits(ctx, store, cfg); err != nil {
		return nil, nil, err
	}
	a.m, err = session.New(store, session.Config{
		AllowInsecureCookies: cfg.InsecureCookies,
		TrustedProxies:       cfg.TrustedProxies,
		DenyHandler:          a.deny,
		// Logout keeps other cookies: the device cookie (see setUpLimits)
		// must survive it. It keeps the browser's storage too: the private
		// notes' client keeps there the highest version it has seen of each
		// record (privatenotes.go), which is how it notices a server that
		// serves an older one; clearing it at each logout would forget
		// them. It holds versions only, no key and no text.
		ClearSiteData: `"cache"`,
		Logger:        cfg.Logger,
		Now:           cfg.Now,
		// A pending login ends after 3 wrong codes (the default), and the
		// user hears of it: their password is known to someone.
		Notifier: a.notifier,
	})
	if err != nil {
		return nil, nil, err
	}
	if err := a.setUpTOTP(store, cfg); err != nil {
		return nil, nil, err
	}
	if err := a.setUpPasskeys(store, cfg); err != nil {
		return nil, nil, err
	}
	if err := a.setUpZK(store, cfg); err != nil {
		return nil, nil, err
	}
	if err := a.resealTOTP(ctx); err != nil {
		return nil, nil, err
	}
	// Deletions that a crash or an error cut short are finished now.
	a.finishDeletions(ctx)
	// CrossOriginProtection refuses state-changing requests that browsers
	// mark as cross-site (Sec-Fetch-Site, or an Origin that is not ours):
	// the forms need no CSRF token. Every state change is a POST.
	inner := a.styledErrors(http.NewCrossOriginProtection().Handler(a.m.Handler(a.routes())))
	if cfg.InsecureCookies && !strings.HasPrefix(strings.ToLower(cfg.Origin), "https://") { // plain HTTP on loopback: only for this machine's own names
		inner = loopbackHostOnly(inner)
	}
	h := session.SecurityHeaders(session.Headers{TrustedProxies: cfg.TrustedProxies}, inner)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		h.ServeHTTP(w, r)
	}), cleanup, nil
}

// handler adapts a handler that returns its unexpected errors.
type handler func(w http.ResponseWriter, r *http.Request) error

func (a *app) routes() http.Handler {
	m := a.m
	mux := http.NewServeMux()
	handle := func(pattern string, h handler, guard func(http.Handler) http.Handler) {
		var hh http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				a.fail(w, r, err)
			}
		})
		if guard != nil {
			hh = guard(hh)
		}
		mux.Handle(pattern, hh)
	}
	// Ending sessions, changing the second factor and deleting the
	// account need a password entered in the last 5 minutes.
	fresh := func(h http.Handler) http.Handler { return m.RequireFresh(5*time.Minute, h) }

	mux.Handle("GET /static/", http.FileServerFS(files))
	handle("GET /{$}", a.home, nil)
	handle("GET /signup", a.page("signup"), nil)
	handle("POST /signup", a.signup, a.signupPerIP.Middleware(ratelimit.ByIP(a.clients), a.tooMany("signup")))
	handle("GET /login", a.loginPage, nil)
	handle("GET /recovery-keys", a.recoveryKeys, m.RequireUnlocked)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "static/favicon.svg")
	})
	loginPerIP := a.loginPerIP.Middleware(ratelimit.ByIP(a.clients), a.tooMany("login"))
	handle("POST /login", a.login, func(h http.Handler) http.Handler { return a.admitLogin(loginPerIP(h)) })
	handle("POST /logout", a.logout, nil) // GET /logout is 405: no state change on GET
	handle("POST /lock", a.lock, m.RequireLogin)
	handle("GET /unlock", a.unlockPage, m.RequireLogin)
	handle("POST /unlock", a.unlock, a.kdfLimited("unlock"))
	handle("POST /unlock/recovery-key", a.unlockWithRecoveryKey, a.kdfLimited("unlock"))
	handle("GET /notes", a.notes, m.RequireUnlocked)
	handle("POST /notes", a.addNote, m.RequireUnlocked)
	handle("POST /notes/{id}", a.editNote, m.RequireUnlocked)
	handle("POST /notes/{id}/delete", a.deleteNote, m.RequireUnlocked)
	// Devices (devices.go): the list, and logging one or all others out.
	a.deviceRoutes(handle, fresh)
	handle("GET /reauth", a.reauthPage, m.RequireLogin)
	handle("POST /reauth", a.reauth, a.kdfLimited("reauth"))

	// The second factor at login: the pages a login pending its second
	// factor may reach (RequireFirstFactor); every other guard sends it
	// here (deny).
	handle("GET /login/2fa", a.secondFactorPage, m.RequireFirstFactor)
	handle("POST /login/2fa", a.secondFactor, m.RequireFirstFactor)
	handle("POST /login/recovery", a.recoverLogin, m.RequireFirstFactor)
	// Two-factor settings: every change needs a recent authentication
	// (and package totp checks it again, multi-factor once the user has
	// an authenticator).
	handle("GET /2fa", a.security, m.RequireLogin)
	handle("GET /2fa/enroll", a.enrollPage, fresh)
	handle("GET /2fa/qr", a.qrCode, fresh) // the secret, as the enrollment page shows it: a recent password
	handle("POST /2fa/enroll", a.enroll, fresh)
	handle("POST /2fa/remove", a.removeAuthenticator, fresh)
	handle("POST /2fa/recovery-codes", a.regenerateCodes, fresh)
	handle("POST /2fa/codes-saved", a.codesSaved, m.RequireLogin)
	// Account deletion.
	handle("GET /account", a.accountPage, m.RequireLogin) // settings.go: sign-in status, password, key
	handle("POST /account/delete", a.deleteAccount, fresh)
	// Private notes (privatenotes.go): the page needs a login, not the
	// server-side vault unlocked; the zero-knowledge server answers its
	// own 401 (JSON) to a request without a complete session.
	handle("GET /private-notes", a.privateNotes, m.RequireLogin)
	mux.Handle("GET /static/keyhold-zk.js", zk.ScriptHandler())
	mux.Handle("/zk/", http.StripPrefix("/zk", a.zk))
	// Passkeys: the settings pages and the ceremonies' JSON endpoints.
	a.passkeyRoutes(mux, handle, fresh)
	// Account settings (settings.go): password change, master-key
	// rotation, the account's lockout status.
	a.settingsRoutes(mux, handle, fresh)
	// "Forgot your password?" (forgot.go): a vault recovery key sets a
	// new password; limited per address like login, and counted by the
	// account's lockout.
	a.forgotRoutes(handle)
	return mux
}

// setUpLimits builds the rate limits and the lockout on keyhold's store,
// and the device-cookie key, made on first run and kept in the app's
// database (which only the app can read: mode 0600), where every instance
// of the app finds it: the first to start stores its key, and any other
// starting at the same moment keeps the one stored (INSERT … ON CONFLICT
// DO NOTHING, then read back).
func (a *app) setUpLimits(ctx context.Context, store limitStores, cfg config) error {
	var err error
	// Behind a reverse proxy (-trusted-proxy), the client is the one its
	// X-Forwarded-For names; otherwise the connection's peer.
	if a.clients, err = ratelimit.NewClientResolver(ratelimit.ClientOptions{TrustedProxies: cfg.TrustedProxies}); err != nil {
		return err
	}
	opts := ratelimit.Options{Logger: cfg.Logger, Now: cfg.Now}
	if a.loginPerIP, err = ratelimit.New(store, ratelimit.LoginPerIP(), opts); err != nil {
		return err
	}
	if a.signupPerIP, err = ratelimit.New(store, ratelimit.SetupPerIP(), opts); err != nil {
		return err
	}
	if a.kdfPerAccount, err = ratelimit.New(store, kdfPerAccountRule, opts); err != nil {
		return err
	}
	if a.kdfPerIP, err = ratelimit.New(store, kdfPerIPRule, opts); err != nil {
		return err
	}
	if a.lockout, err = ratelimit.NewLockout(store, ratelimit.LockoutOptions{Logger: cfg.Logger, Now: cfg.Now}); err != nil {
		return err
	}
	key := make([]byte, ratelimit.DeviceKeyLen)
	rand.Read(key)
	if _, err := a.db.ExecContext(ctx, "INSERT INTO app_secrets (name, value) VALUES ('device_key', ?) ON CONFLICT (name) DO NOTHING", key); err != nil {
		return err
	}
	if err := a.db.QueryRowContext(ctx, "SELECT value FROM app_secrets WHERE name = 'device_key'").Scan(&key); err != nil {
		return err
	}
	devOpts := ratelimit.DeviceOptions{Now: cfg.Now}
	if cfg.InsecureCookies {
		devOpts.AllowInsecureCookies, devOpts.CookieName = true, "keyhold-device"
	}
	if a.knownDevices, err = ratelimit.NewDevices(key, devOpts); err != nil {
		return err
	}
	// Devices that have given a second factor, for the code lockout: a
	// cookie of their own (its own key, derived), set only after a right
	// code, so that a password alone, which may have collected
	// knownDevices cookies before the user enrolled, never earns a code
	// budget of its own outside the account's cap.
	codeKey, err := hkdf.Key(sha256.New, key, nil, "keyhold webapp: second-factor devices", ratelimit.DeviceKeyLen)
	if err != nil {
		return err
	}
	codeOpts := ratelimit.DeviceOptions{Now: cfg.Now, CookieName: "__Host-keyhold-2fa-device"}
	if cfg.InsecureCookies {
		codeOpts.AllowInsecureCookies, codeOpts.CookieName = true, "keyhold-2fa-device"
	}
	a.codeDevices, err = ratelimit.NewDevices(codeKey, codeOpts)
	return err
}

// The limits of vault unlock and step-up together, per account (the
// logged-in user's) and per client address: ratelimit's presets, generous
// for a person, tight for a script. Login is limited per address (5 per
// 15 minutes) but not per submitted name: anyone who knows a name could
// then keep its owner out. A flood of logins on one name from many
// addresses is bounded by the lockout (failures per name and source) and
// by the KDF gate's fair share per name (kdf.WithGateKey in login).
var (
	kdfPerAccountRule = ratelimit.KDFPerAccount()
	kdfPerIPRule      = ratelimit.KDFPerClient()
)

// kdfLimited guards a logged-in form that checks a password: login first,
// then the per-address and per-account limits, so that a refused request
// runs no KDF.
func (a *app) kdfLimited(page string) func(http.Handler) http.Handler {
	byUser := ratelimit.ByAccount(func(r *http.Request) (string, error) {
		info, _ := a.m.Current(r.Context()) // RequireLogin ran
		return info.UserID, nil
	})
	perIP := a.kdfPerIP.Middleware(ratelimit.ByIP(a.clients), a.tooMany(page))
	perAccount := a.kdfPerAccount.Middleware(byUser, a.tooMany(page))
	return func(h http.Handler) http.Handler {
		return a.m.RequireLogin(perIP(perAccount(h)))
	}
}

// tooMany answers requests over a per-address limit: the form again, with
// status 429 and Retry-After.
func (a *app) tooMany(page string) ratelimit.DenyFunc {
	return func(w http.ResponseWriter, r *http.Request, d ratelimit.Decision) {
		if d.Err != nil {
			a.fail(w, r, d.Err) // the store failed: refused (fail closed)
			return
		}
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d.RetryAfter+time.Second-1)/time.Second), 10))
		msg := fmt.Sprintf("Too many attempts. Try again in %s.", d.RetryAfter.Round(time.Second))
		if err := a.render(w, r, http.StatusTooManyRequests, page, pageData{Error: msg}); err != nil {
			a.fail(w, r, err)
		}
	}
}

// deny answers the requests that RequireLogin, RequireFirstFactor,
// RequireUnlocked and RequireFresh refuse by sending the browser where it
// can fix that.
func (a *app) deny(w http.ResponseWriter, r *http.Request, err error) {
	if isAPI(r) {
		a.apiDeny(w, r, err)
		return
	}
	switch {
	case errors.Is(err, session.ErrNotLoggedIn):
		redirect(w, r, a.loginURL(r))
	case errors.Is(err, session.ErrSecondFactorRequired): // a login waiting for its code
		redirect(w, r, "/login/2fa")
	case errors.Is(err, session.ErrLocked):
		redirect(w, r, "/unlock")
	case errors.Is(err, session.ErrNotFresh), errors.Is(err, session.ErrMultiFactorRequired):
		redirect(w, r, reauthURL(r))
	default:
		a.fail(w, r, err) // the session store failed
	}
}

// A userError is a request the app cannot serve because of what the user
// sent or did (a form out of bounds, a device already logged out): a page
// that says so, with a 4xx status, never a 500.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

// badInput returns a userError with status 400.
func badInput(msg string) error { return &userError{status: http.StatusBadRequest, msg: msg} }

// fail answers an error: a userError with its page, a full KDF queue with a
// 503 page, anything else with a 500 page that reveals nothing.
func (a *app) fail(w http.ResponseWriter, r *http.Request, err error) {
	if isAPI(r) {
		a.apiFail(w, r, err)
		return
	}
	switch {
	case errors.Is(err, session.ErrNotLoggedIn): // the session ended while the request ran (logout in another tab)
		redirect(w, r, "/login?ended=1")
		return
	case errors.Is(err, session.ErrLocked): // locked by another request meanwhile
		redirect(w, r, "/unlock")
		return
	}
	status, title := http.StatusInternalServerError, "Something went wrong on our side. Please try again."
	if ue, ok := errors.AsType[*userError](err); ok {
		status, title = ue.status, ue.msg
	} else if errors.Is(err, kdf.ErrBusy) { // the KDF gate's queue is full
		w.Header().Set("Retry-After", "5")
		status, title = http.StatusServiceUnavailable, "We are busy right now. Please try again in a few seconds."
	} else if storeUnavailable(err) { // a storage server is down or restarting (outage.go)
		a.log.ErrorContext(r.Context(), "webapp.error", "path", r.URL.Path, "unavailable", true, "error", err)
		w.Header().Set("Retry-After", "5")
		status, title = http.StatusServiceUnavailable, unavailableMessage
	} else {
		a.log.ErrorContext(r.Context(), "webapp.error", "path", r.URL.Path, "error", err)
	}
	// The error page is rendered without the user's name: the request may
	// have failed reading it.
	var buf bytes.Buffer
	if pages["error"].ExecuteTemplate(&buf, "layout", pageData{Title: title}) != nil {
		http.Error(w, title, status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// loginURL is where a request that is not logged in goes: the login page,
// saying that the session ended when the browser still sent a session
// cookie (it was logged out elsewhere, revoked, or timed out).
func (a *app) loginURL(r *http.Request) string {
	for _, name := range []string{session.DefaultCookieName, "keyhold"} {
		if _, err := r.Cookie(name); err == nil {
			return "/login?ended=1"
		}
	}
	return "/login"
}

// loginPage is the login form, with a word on why it is shown.
func (a *app) loginPage(w http.ResponseWriter, r *http.Request) error {
	var d pageData
	switch q := r.URL.Query(); {
	case q.Get("mfa") == "failed":
		d.Notice = "Too many wrong codes: that login has ended. Please log in again."
	case q.Get("ended") != "":
		d.Notice = "Your session ended: you were logged out on another device or in another tab, or it timed out. Please log in again."
	}
	return a.render(w, r, http.StatusOK, "login", d)
}

func redirect(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

type note struct {
	ID, Title, Body string
	Created         time.Time
	Version         uint64 // the version the row says the note is at
	Unreadable      bool
}

// pageData is what the templates see.
type pageData struct {
	User     string // the username, when logged in
	Pending  bool   // the login waits for its second factor
	Unlocked bool
	Error    string
	Notice   string   // a message that is not an error
	Username string   // the name typed into a form that failed, shown again
	Title    string   // the error page's message
	Keys     []string // recovery keys, shown once after sign-up
	Notes    []note
	Devices  []session.Device

	Next           string // where the step-up returns to
	AskCode        bool   // the step-up asks for a TOTP code too
	Authenticators []totp.AuthenticatorInfo
	Recovery       totp.RecoveryStatus
	Enrolled       bool
	Enroll         *enrollView
	Codes          []string // login recovery codes, shown once
	CodesSet       int64    // the codes' set (totp.RecoveryCode.Generated, Unix ms), for "I have saved them"
	CodesUnsaved   bool     // the two-factor page: the user's current recovery codes are not said saved

	PasskeysOn    bool // the app has passkeys (an origin is configured)
	Passkeys      []passkey.Credential
	PasskeySetUp  bool // a passkey could unlock once set up (PRF, no vault slot yet)
	PasskeyUnlock bool // the unlock page: a passkey of the user's unlocks the vault
	HasPasskeys   bool // the step-up and second-factor pages: the user has a passkey to confirm with
	RecoveryOpen  bool // the second-factor and unlock pages: a recovery code or key was refused, its form shown open
	NeedPasskey   bool // the step-up page: the password alone does not allow passkey changes
	PasskeyPRF    bool // the private-notes page: the user has a passkey with the PRF extension

	Settings *settingsView // the account settings pages (settings.go)
}

// render writes the page, or nothing if it returns an error.
func (a *app) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) error {
	d.PasskeysOn = a.passkeys != nil
	if info, ok := a.m.Current(r.Context()); ok {
		d.Unlocked, d.Pending = info.Unlocked, info.SecondFactorPending
		if err := a.db.QueryRowContext(r.Context(), "SELECT username FROM users WHERE id = ?", info.UserID).Scan(&d.User); err != nil {
			return err
		}
		if name == "unlock" && !info.SecondFactorPending { // offer the passkeys that unlock
			var err error
			if _, d.PasskeyUnlock, err = a.passkeyInfo(r.Context(), info.UserID); err != nil {
				return err
			}
		}
	}
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w) // an error here is the client gone: nothing left to answer
	return nil
}

func (a *app) page(name string) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		return a.render(w, r, http.StatusOK, name, pageData{})
	}
}

func (a *app) home(w http.ResponseWriter, r *http.Request) error {
	if info, ok := a.m.Current(r.Context()); ok {
		if info.SecondFactorPending {
			return redirect(w, r, "/login/2fa")
		}
		return redirect(w, r, "/notes")
	}
	var d pageData
	if r.URL.Query().Get("deleted") != "" {
		d.Notice = "Your account has been deleted."
	}
	return a.render(w, r, http.StatusOK, "home", d)
}

// reauthURL is the step-up page for a request that needs a fresher
// authentication, with where to return afterwards: the page itself for a
// GET, the form's page for a POST (the form is not sent again). The
// devices page is the step-up's default destination.
func reauthURL(r *http.Request) string {
	next := r.URL.Path
	if r.Method != http.MethodGet {
		switch {
		case strings.HasPrefix(next, "/2fa"):
			next = "/2fa"
		case strings.HasPrefix(next, "/account"):
			next = "/account"
		case strings.HasPrefix(next, "/passkeys"):
			next = "/passkeys"
		default:
			next = ""
		}
	}
	if next == "" || next == "/devices" {
		return "/reauth"
	}
	return "/reauth?next=" + url.QueryEscape(next)
}
