package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault"
)

// The session settings of the system this example follows: a vault left
// idle for 30 minutes locks (its keys are wiped from the session) while
// the login stays, up to 12 hours idle or 24 hours in all.
const (
	idleLock    = 30 * time.Minute
	idleLogout  = 12 * time.Hour
	maxLifetime = 24 * time.Hour
)

// Bounds of the requests' bodies. Over them the answer is 413.
const (
	maxBody       = 16 << 10                             // every JSON body but an import's
	maxImportBody = vault.MaxFernetCredentialsLen + 4096 // the file plus the passphrase and the site
)

// config is what newApp needs: main fills it from its flags, the tests
// from a temporary directory.
type config struct {
	// DBPath is the SQLite file of keyhold's state and the app's tables.
	DBPath string
	// VaultKDF are the parameters of new vault passphrase slots. Zero
	// selects the vault's default (Argon2id, 64 MiB, t=3, p=4); the tests
	// use kdf.InteractiveParams to run faster.
	VaultKDF kdf.Params
	// Logger receives the app's events and keyhold's audit events. Zero
	// selects slog.Default().
	Logger *slog.Logger
	// Now is the clock of sessions and rate limits; zero selects time.Now.
	Now func() time.Time
	// InsecureCookies lets sessions work over plain HTTP from a loopback
	// address (session.Config.AllowInsecureCookies). main sets it only
	// when it listens on one.
	InsecureCookies bool
}

type app struct {
	db      *sql.DB // users and credentials
	store   *sqlstore.Store
	m       *session.Manager
	vault   *vault.Vault
	hasher  *kdf.Hasher
	login   *kdf.Policy // account passwords: NIST SP 800-63B, 15+ characters
	vaultPP *kdf.Policy // vault passphrases: 12+ characters of four classes
	log     *slog.Logger
	now     func() time.Time

	clients     *ratelimit.ClientResolver
	loginPerIP  *ratelimit.Limiter
	signupPerIP *ratelimit.Limiter
	kdfGuard    ratelimit.Guard // vault passphrase, unlock, import: per address and per account
	lockout     *ratelimit.Lockout
}

// The app's own tables. A credential row holds only the sealed record.
const schema = `
CREATE TABLE IF NOT EXISTS users (
    id            TEXT NOT NULL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS credentials (
    id      TEXT    NOT NULL PRIMARY KEY,
    user_id TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    sealed  BLOB    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS credentials_user ON credentials (user_id, created);`

// newApp opens the database and returns the app, whose handler is wrapped
// in the body bound, security headers, cross-origin protection, the JSON
// content-type rule and the session middleware.
func newApp(cfg config) (_ *app, err error) {
	ctx := context.Background()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// keyhold's vaults, sessions and limits: OpenSQLite creates the file
	// with mode 0600 (and refuses one that others can read).
	store, err := sqlstore.OpenSQLite(ctx, cfg.DBPath, sqlstore.Config{})
	if err != nil {
		return nil, err
	}
	a := &app{store: store, log: cfg.Logger, now: cfg.Now}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.db, err = openAppDB(ctx, cfg.DBPath); err != nil {
		return nil, err
	}
	// One Hasher, so one KDF gate, for logins, unlocks and imports.
	if a.hasher, err = kdf.New(kdf.Config{}); err != nil {
		return nil, err
	}
	if a.vault, err = vault.New(store, vault.Config{Hasher: a.hasher, KDF: cfg.VaultKDF}); err != nil {
		return nil, err
	}
	if a.login, err = kdf.NewPolicy(kdf.SingleFactorPolicy()); err != nil {
		return nil, err
	}
	// The passphrase rule of the system users come from, kept so that
	// their passphrases carry over: 12 or more characters with a
	// lowercase and an uppercase letter, a digit and a symbol (plus
	// keyhold's blocklist and context words).
	if a.vaultPP, err = kdf.NewPolicy(kdf.LegacyCompositionPolicy()); err != nil {
		return nil, err
	}
	if err := a.setUpLimits(store, cfg); err != nil {
		return nil, err
	}
	a.m, err = session.New(store, session.Config{
		AllowInsecureCookies: cfg.InsecureCookies,
		LockAfter:            idleLock,
		IdleTimeout:          idleLogout,
		Lifetime:             maxLifetime,
		DenyHandler:          a.deny,
		Logger:               cfg.Logger,
		Now:                  cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Close closes the databases.
func (a *app) Close() error {
	var errs []error
	if a.db != nil {
		errs = append(errs, a.db.Close())
	}
	return errors.Join(append(errs, a.store.Close())...)
}

// Handler is the app with its middleware, outermost first: the body
// bound, security headers, the loopback host rule (see loopbackOnly),
// cross-origin protection (refuses state changes a browser marks
// cross-site), the JSON content-type rule (see jsonOnly), and the
// session.
func (a *app) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusForbidden, "cross_origin", "Cross-origin requests that change state are refused."})
	}))
	h := session.SecurityHeaders(session.Headers{ContentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'"},
		loopbackOnly(cop.Handler(jsonOnly(a.m.Handler(a.routes())))))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := int64(maxBody)
		if r.URL.Path == "/api/import" {
			limit = maxImportBody
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h.ServeHTTP(w, r)
	})
}

// openAppDB opens the same SQLite file through a pool of the app's own
// (sqlstore owns its connections), with sqlstore's settings, and creates
// the app's tables. mode=rw: OpenSQLite has created the file, 0600.
func openAppDB(ctx context.Context, path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // file:///C:/… on Windows
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: p}).EscapedPath()+
		"?mode=rw&_busy_timeout=5000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (a *app) routes() http.Handler {
	m := a.m
	mux := http.NewServeMux()
	handle := func(pattern string, h handler, guards ...func(http.Handler) http.Handler) {
		var hh http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				a.fail(w, r, err)
			}
		})
		for i := len(guards) - 1; i >= 0; i-- {
			hh = guards[i](hh)
		}
		mux.Handle(pattern, hh)
	}
	byIP := ratelimit.ByIP(a.clients)
	handle("POST /api/signup", a.signup, a.signupPerIP.Middleware(byIP, a.tooMany))
	handle("POST /api/login", a.loginHandler, a.loginPerIP.Middleware(byIP, a.tooMany))
	handle("POST /api/logout", a.logout)
	handle("POST /api/passphrase", a.setPassphrase, m.RequireLogin)
	handle("POST /api/unlock", a.unlock, m.RequireLogin)
	handle("POST /api/lock", a.lock, m.RequireLogin)
	handle("POST /api/recovery-key", a.recoveryKey, m.RequireLogin)
	handle("POST /api/import", a.importFile, m.RequireLogin)
	handle("GET /api/security/status", a.status, m.RequireLogin)
	handle("GET /api/credentials", a.listCredentials, m.RequireUnlocked)
	handle("POST /api/credentials", a.addCredential, m.RequireUnlocked)
	handle("GET /api/credentials/{id}", a.getCredential, m.RequireUnlocked)
	handle("PUT /api/credentials/{id}", a.putCredential, m.RequireUnlocked)
	handle("DELETE /api/credentials/{id}", a.deleteCredential, m.RequireUnlocked)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusNotFound, "not_found", "No such endpoint; see the package documentation."})
	})
	return mux
}

// setUpLimits builds the rate limits and the lockout on keyhold's store.
func (a *app) setUpLimits(store *sqlstore.Store, cfg config) error {
	var err error
	// No trusted proxies: the app serves clients directly.
	if a.clients, err = ratelimit.NewClientResolver(ratelimit.ClientOptions{}); err != nil {
		return err
	}
	opts := ratelimit.Options{Logger: cfg.Logger, Now: cfg.Now}
	if a.loginPerIP, err = ratelimit.New(store, ratelimit.LoginPerIP(), opts); err != nil { // 5 per 15 minutes
		return err
	}
	if a.signupPerIP, err = ratelimit.New(store, ratelimit.SetupPerIP(), opts); err != nil { // 3 per hour
		return err
	}
	if a.kdfGuard.PerClient, err = ratelimit.New(store, ratelimit.KDFPerClient(), opts); err != nil { // 20 per minute
		return err
	}
	if a.kdfGuard.PerAccount, err = ratelimit.New(store, ratelimit.KDFPerAccount(), opts); err != nil { // 10 per minute
		return err
	}
	// Wrong passwords and wrong passphrases count together, per username
	// and client address: 10 lock that address out of the account.
	a.lockout, err = ratelimit.NewLockout(store, ratelimit.LockoutOptions{Logger: cfg.Logger, Now: cfg.Now})
	return err
}

// handler adapts a handler that returns its errors: an *apiError is the
// client's, anything else a 500 that reveals nothing.
type handler func(w http.ResponseWriter, r *http.Request) error

// An apiError is an answer to a request that cannot be served as sent:
// its status (4xx, or 503 for a busy server), a stable code for programs
// and a message for people. It never holds a secret.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// policyError is an apiError that lists the policy's reasons.
type policyError struct {
	apiError
	Reasons []string `json:"reasons"`
}

// The answers shared by several endpoints.
var (
	errNotLoggedIn   = &apiError{http.StatusUnauthorized, "not_logged_in", "Log in first (POST /api/login)."}
	errVaultLocked   = &apiError{http.StatusLocked, "vault_locked", "The vault is locked: unlock it (POST /api/unlock)."}
	errWrongLogin    = &apiError{http.StatusUnauthorized, "wrong_credentials", "Wrong username or password."}
	errWrongPass     = &apiError{http.StatusUnauthorized, "wrong_passphrase", "Wrong passphrase."}
	errNoVault       = &apiError{http.StatusConflict, "no_vault", "Set a passphrase (POST /api/passphrase) or import a credentials file (POST /api/import) first."}
	errVaultExists   = &apiError{http.StatusConflict, "vault_exists", "The vault exists already; unlock it with its passphrase."}
	errNotFound      = &apiError{http.StatusNotFound, "not_found", "No such credential."}
	errBusy          = &apiError{http.StatusServiceUnavailable, "busy", "The server is busy; try again in a few seconds."}
	errTooLarge      = &apiError{http.StatusRequestEntityTooLarge, "body_too_large", "The request body is too large."}
	errBadJSON       = &apiError{http.StatusBadRequest, "invalid_json", "The body is not one JSON object of the expected fields and types."}
	errUnreadable    = &apiError{http.StatusUnprocessableEntity, "credential_unreadable", "This credential does not open under your vault (it was altered or moved in the database); delete it and add it again."}
	errMediaType     = &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "Send Content-Type: application/json."}
	errTooManyCreds  = &apiError{http.StatusConflict, "too_many_credentials", fmt.Sprintf("A vault holds at most %d credentials.", maxCredentials)}
	errMisdirected   = &apiError{http.StatusMisdirectedRequest, "misdirected_request", "This server answers requests to 127.0.0.1, ::1 or localhost only."}
	errPasswordReset = &apiError{http.StatusForbidden, "password_change_required", "This account's password must be reset by the operator before it can log in."}
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"Something went wrong on our side."}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, e error) {
	status := http.StatusInternalServerError
	switch e := e.(type) {
	case *apiError:
		status = e.Status
	case *policyError:
		status = e.Status
	}
	writeJSON(w, status, map[string]any{"error": e})
}

// fail answers a handler's error: an *apiError as it is, a full KDF gate
// with 503, a session that ended or locked meanwhile as the guards would,
// a body over its bound with 413, anything else with a 500 that reveals
// nothing (and is logged).
func (a *app) fail(w http.ResponseWriter, r *http.Request, err error) {
	var maxErr *http.MaxBytesError
	var ae *apiError
	var pe *policyError
	switch {
	case errors.Is(err, errAnswered):
	case errors.As(err, &pe):
		writeError(w, pe)
	case errors.As(err, &ae):
		writeError(w, ae)
	case errors.As(err, &maxErr):
		writeError(w, errTooLarge)
	case errors.Is(err, kdf.ErrBusy):
		w.Header().Set("Retry-After", "5")
		writeError(w, errBusy)
	case errors.Is(err, session.ErrNotLoggedIn):
		writeError(w, errNotLoggedIn)
	case errors.Is(err, session.ErrLocked), errors.Is(err, vault.ErrLocked):
		writeError(w, errVaultLocked)
	default:
		a.log.ErrorContext(r.Context(), "credvault.error", "path", r.URL.Path, "error", err)
		writeError(w, &apiError{http.StatusInternalServerError, "internal", "Something went wrong on our side."})
	}
}

// deny answers what the session guards refuse: 401 without a login, 423
// (Locked) while the vault is locked, 500 if the session store failed.
func (a *app) deny(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, session.ErrNotLoggedIn), errors.Is(err, session.ErrSecondFactorRequired):
		writeError(w, errNotLoggedIn)
	case errors.Is(err, session.ErrLocked):
		// A user who has no vault yet is told how to make one.
		if info, ok := a.m.Current(r.Context()); ok {
			if state, err := a.vaultState(r.Context(), info.UserID); err == nil && state == "none" {
				writeError(w, errNoVault)
				return
			}
		}
		writeError(w, errVaultLocked)
	default:
		a.fail(w, r, err)
	}
}

// tooMany answers a request over a rate limit: 429 with Retry-After.
func (a *app) tooMany(w http.ResponseWriter, r *http.Request, d ratelimit.Decision) {
	if d.Err != nil {
		a.fail(w, r, d.Err) // the store failed: refused (fail closed)
		return
	}
	retry := int64((d.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
	writeError(w, &apiError{http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("Too many attempts; try again in %d seconds.", retry)})
}

// jsonOnly is the CSRF rule of this JSON API: every request that can
// change state (anything but GET, HEAD and OPTIONS) must say
// Content-Type: application/json, or it is refused with 415 before the
// session is even loaded. A web page on another site can make a browser
// send a cross-site POST with the user's cookie only as a "simple"
// request, whose Content-Type is one of text/plain,
// application/x-www-form-urlencoded and multipart/form-data; for
// application/json the browser must first ask this server with a CORS
// preflight, which this server never grants (it sends no
// Access-Control-Allow-* header), so the request is never sent. The
// session cookie is SameSite=Lax besides, and CrossOriginProtection
// refuses what browsers mark cross-site (Sec-Fetch-Site, Origin).
func jsonOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeError(w, errMediaType)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackOnly answers 421 to a request whose Host is not a loopback
// one (127.0.0.0/8, ::1 or localhost, any port): the app serves plain
// HTTP on a loopback address only, and a request that names another host
// comes from a page that pointed its own name at 127.0.0.1 (DNS
// rebinding). Such a page is same-origin with itself, so neither
// CrossOriginProtection nor the JSON rule stops its script, and its
// requests come from the loopback address like the user's own: without
// this rule it could guess at the user's password, spending the user's
// login limit and locking the user's own login out. Serving under a real
// name (behind TLS) would list that name here instead.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeError(w, errMisdirected)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether host (a Host header: a name or address,
// with or without a port) names the loopback interface.
func loopbackHost(host string) bool {
	if h, port, err := net.SplitHostPort(host); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return false
		}
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.IsLoopback()
}

// decode reads the request's body as exactly one JSON object into v,
// refusing unknown fields and trailing data. An empty body is an empty
// object. A body over its bound is errTooLarge.
func decode(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return errTooLarge
	}
	if err != nil {
		return errBadJSON
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return errBadJSON
	}
	return nil
}

// checkLen refuses a field longer than max bytes, naming it.
func checkLen(field, value string, max int) error {
	if len(value) > max {
		return &apiError{http.StatusBadRequest, "field_too_long", fmt.Sprintf("%s is over %d bytes.", field, max)}
	}
	return nil
}
