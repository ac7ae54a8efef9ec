package session

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/clientip"
	"github.com/keyhold/keyhold/storage"
)

// Store is what a Manager keeps its state in: sessions and refresh-token
// families. storage/memstore, storage/sqlstore and storage/redisstore
// provide it.
type Store interface {
	storage.SessionStore
	storage.RefreshStore
}

// Defaults of Config's zero values.
const (
	DefaultIdleTimeout        = 30 * time.Minute
	DefaultLifetime           = 24 * time.Hour
	DefaultRememberLifetime   = 30 * 24 * time.Hour
	DefaultLockAfter          = 15 * time.Minute
	DefaultTouchInterval      = time.Minute
	DefaultMaxSessionsPerUser = 10
	DefaultAccessTokenTTL     = 15 * time.Minute
	DefaultRefreshTokenTTL    = 7 * 24 * time.Hour
	DefaultRefreshLifetime    = 30 * 24 * time.Hour
	DefaultRefreshRaceWindow  = 5 * time.Second
	DefaultCookieName         = "__Host-keyhold"
	// DefaultMaxSecondFactorFailures is Config.MaxSecondFactorFailures'
	// default.
	DefaultMaxSecondFactorFailures = 3
	// maxSecondFactorFailures bounds Config.MaxSecondFactorFailures.
	maxSecondFactorFailures = 100
	insecureCookieName      = "keyhold"
	maxCookieNameLen        = 64
	// maxSessionsPerUser bounds Config.MaxSessionsPerUser so that every
	// record of the user's devices fits in what ListUserSessions returns.
	maxSessionsPerUser = storage.MaxSessionsPerUser / 4
)

// Logins waiting for their second factor (LoginOptions.SecondFactorPending)
// are bounded apart from complete sessions, so that someone who has only
// the password can never end one of the owner's sessions to make room.
const (
	// PendingLifetime is the most a login waits for its second factor,
	// idle or not; then it ends and the user logs in again. Five minutes
	// (TOT-09: a pending login lives at most 5 minutes).
	PendingLifetime = 5 * time.Minute
	// MaxPendingPerUser is how many such logins a user may have at once;
	// a new one ends the least recently used of them (never a complete
	// session). They do not count against Config.MaxSessionsPerUser until
	// SecondFactorVerified.
	MaxPendingPerUser = 3
)

// Config configures a Manager. Every zero value selects the safe default
// named beside it.
type Config struct {
	// IdleTimeout ends a session after this long without a request
	// (sliding). Zero: 30 minutes.
	IdleTimeout time.Duration
	// Lifetime ends a session this long after its login, or its last
	// reauthentication, whatever its activity. Zero: 24 hours.
	Lifetime time.Duration
	// RememberLifetime replaces Lifetime for logins with Remember set.
	// Zero: 30 days. A remembered session is never remembered unlocked:
	// LockAfter applies to it as to any other.
	RememberLifetime time.Duration
	// RememberIdleTimeout replaces IdleTimeout for logins with Remember
	// set. Zero: RememberLifetime (no idle limit within the lifetime).
	RememberIdleTimeout time.Duration
	// LockAfter locks an unlocked session (wipes its sealed vault keys)
	// after this long without a request; it must not exceed the idle
	// timeout. Zero: 15 minutes.
	LockAfter time.Duration
	// TouchInterval is how stale the stored last-seen time may get before
	// a request writes it again. Sliding renewal writes at most once per
	// interval per session, so idle deadlines and auto-lock may fall up
	// to this much early. Zero: 1 minute.
	TouchInterval time.Duration
	// MaxSessionsPerUser bounds a user's devices, as Devices lists them:
	// cookie sessions and API clients (refresh-token families, for as
	// long as they live). A login or IssueTokens beyond it ends the
	// user's least recently used device (an API client's family is
	// revoked). Zero: 10; at most 250 (each device takes up to four of
	// the store's storage.MaxSessionsPerUser records while it is
	// re-issued or rotated).
	MaxSessionsPerUser int

	// AccessTokenTTL is the lifetime of a bearer access token. Zero: 15
	// minutes.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is how long a refresh token stays valid unused
	// (its family dies if none is used for this long). Zero: 7 days.
	RefreshTokenTTL time.Duration
	// RefreshLifetime is the absolute lifetime of a refresh-token family,
	// however often it is used. Zero: 30 days.
	RefreshLifetime time.Duration
	// RefreshRaceWindow is how long after a rotation the token it
	// replaced is refused without revoking the family, so that a client's
	// concurrent refreshes or retries do not log it out. Presented later,
	// the old token is a replay and revokes the family. The window never
	// lets a spent token refresh. Zero: 5 seconds; at most 1 minute.
	RefreshRaceWindow time.Duration

	// CookieName is the session cookie's name. Zero: "__Host-keyhold".
	// A name must start with "__Host-" unless AllowInsecureCookies is set.
	CookieName string
	// SameSiteStrict sends the cookie with SameSite=Strict instead of the
	// default Lax.
	SameSiteStrict bool
	// AllowInsecureCookies lets sessions work over plain HTTP, for
	// development on localhost only: the cookie loses Secure and the
	// "__Host-" prefix (default name "keyhold"), and plain-HTTP cookies
	// and bearer tokens are accepted, but only on connections from a
	// loopback address (requests from elsewhere still need HTTPS). Never
	// set it in production, nor behind a proxy on the same machine.
	AllowInsecureCookies bool
	// TrustedProxies are the TLS-terminating proxies whose
	// X-Forwarded-Proto/Forwarded and X-Forwarded-For headers are
	// believed. Zero: none; only the connection itself counts.
	TrustedProxies []netip.Prefix

	// DenyHandler answers requests that RequireLogin, RequireFirstFactor,
	// RequireUnlocked, RequireFresh or RequireMultiFactor refuse, and
	// requests whose session could not be loaded because the store
	// failed; it receives the reason (ErrNotLoggedIn,
	// ErrSecondFactorRequired, ErrLocked, a *NotFreshError,
	// ErrMultiFactorRequired, or the store's error): redirect
	// ErrSecondFactorRequired to the second factor's page, and
	// ErrMultiFactorRequired to a step-up with a second factor. Zero: a
	// plain-text 401 (not logged in, second factor pending, not fresh,
	// not multi-factor), 403 (locked) or 500 (store failure) that reveals
	// nothing more.
	DenyHandler func(w http.ResponseWriter, r *http.Request, err error)
	// ClearSiteData is the Clear-Site-Data value that Logout sends (the
	// session cookie itself is always expired). Zero:
	// `"cache", "cookies", "storage"`. An app that keeps other cookies
	// across logins, such as package ratelimit's device cookie, sends
	// `"cache", "storage"` instead: "cookies" would clear them too.
	ClearSiteData string
	// Logger receives the audit events (slog records named session_…,
	// crypt_vault_…, authn_token_… and sys_…: SECURITY.md, "Audit
	// events"). Zero: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Zero: time.Now.
	Now func() time.Time

	// Notifier, if set, hears of every pending login that
	// SecondFactorFailed ended (keyhold.PartialAuthentication: the
	// password was right, the second factor failed MaxSecondFactorFailures
	// times; TOT-13), once per login. See keyhold.Notifier: it must
	// return quickly. Zero: nobody is told (the audit event is still
	// logged).
	Notifier keyhold.Notifier
	// MaxSecondFactorFailures is how many failed second-factor attempts
	// (SecondFactorFailed) a pending login survives: the one that reaches
	// it ends the login. It counts per login, not per account: the
	// application's lockout (package ratelimit) bounds guesses across
	// logins. Zero: 3; 1 to 100.
	MaxSecondFactorFailures int
}

// A Manager runs sessions for an app: the middleware that loads them, and
// the calls that log users in and out, unlock and lock their vaults, issue
// API tokens and revoke sessions. It is immutable after New and safe for
// concurrent use; several Managers (other cookie names) can coexist.
type Manager struct {
	cfg     Config
	store   Store
	proxies clientip.Resolver
	log     *slog.Logger
	key     *contextKey // unique per Manager
}

type contextKey struct{ name string }

// New returns a Manager keeping its state in store. It validates and
// copies cfg.
func New(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidInput)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.Lifetime, DefaultLifetime)
	def(&cfg.RememberLifetime, DefaultRememberLifetime)
	def(&cfg.RememberIdleTimeout, cfg.RememberLifetime)
	def(&cfg.LockAfter, min(DefaultLockAfter, cfg.IdleTimeout))
	def(&cfg.TouchInterval, min(DefaultTouchInterval, cfg.IdleTimeout/4))
	def(&cfg.AccessTokenTTL, DefaultAccessTokenTTL)
	def(&cfg.RefreshTokenTTL, DefaultRefreshTokenTTL)
	def(&cfg.RefreshLifetime, DefaultRefreshLifetime)
	def(&cfg.RefreshRaceWindow, DefaultRefreshRaceWindow)
	if cfg.MaxSessionsPerUser == 0 {
		cfg.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if cfg.MaxSecondFactorFailures == 0 {
		cfg.MaxSecondFactorFailures = DefaultMaxSecondFactorFailures
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
		if cfg.AllowInsecureCookies {
			cfg.CookieName = insecureCookieName
		}
	}
	for _, d := range []time.Duration{cfg.IdleTimeout, cfg.Lifetime, cfg.RememberLifetime, cfg.RememberIdleTimeout,
		cfg.LockAfter, cfg.TouchInterval, cfg.AccessTokenTTL, cfg.RefreshTokenTTL, cfg.RefreshLifetime, cfg.RefreshRaceWindow} {
		if d < time.Second {
			return nil, fmt.Errorf("%w: every duration must be at least a second", ErrInvalidInput)
		}
	}
	switch {
	case cfg.LockAfter > cfg.IdleTimeout:
		return nil, fmt.Errorf("%w: LockAfter exceeds IdleTimeout", ErrInvalidInput)
	case cfg.TouchInterval >= cfg.IdleTimeout || cfg.TouchInterval >= cfg.LockAfter:
		return nil, fmt.Errorf("%w: TouchInterval must be shorter than IdleTimeout and LockAfter", ErrInvalidInput)
	case cfg.IdleTimeout > cfg.Lifetime || cfg.RememberIdleTimeout > cfg.RememberLifetime:
		return nil, fmt.Errorf("%w: an idle timeout exceeds its lifetime", ErrInvalidInput)
	case cfg.RefreshRaceWindow > time.Minute:
		return nil, fmt.Errorf("%w: RefreshRaceWindow is at most a minute", ErrInvalidInput)
	case cfg.RefreshTokenTTL > cfg.RefreshLifetime:
		return nil, fmt.Errorf("%w: RefreshTokenTTL exceeds RefreshLifetime", ErrInvalidInput)
	case cfg.MaxSessionsPerUser < 1 || cfg.MaxSessionsPerUser > maxSessionsPerUser:
		return nil, fmt.Errorf("%w: MaxSessionsPerUser must be 1 to %d", ErrInvalidInput, maxSessionsPerUser)
	case cfg.MaxSecondFactorFailures < 1 || cfg.MaxSecondFactorFailures > maxSecondFactorFailures:
		return nil, fmt.Errorf("%w: MaxSecondFactorFailures must be 1 to %d", ErrInvalidInput, maxSecondFactorFailures)
	case len(cfg.CookieName) > maxCookieNameLen || !validCookieName(cfg.CookieName):
		return nil, fmt.Errorf("%w: cookie name must be 1 to %d token characters", ErrInvalidInput, maxCookieNameLen)
	case !cfg.AllowInsecureCookies && !strings.HasPrefix(cfg.CookieName, "__Host-"):
		return nil, fmt.Errorf("%w: cookie name must start with __Host- (or set AllowInsecureCookies for local development)", ErrInvalidInput)
	case cfg.AllowInsecureCookies && (strings.HasPrefix(cfg.CookieName, "__Host-") || strings.HasPrefix(cfg.CookieName, "__Secure-")):
		return nil, fmt.Errorf("%w: browsers drop __Host-/__Secure- cookies without Secure; choose another name with AllowInsecureCookies", ErrInvalidInput)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DenyHandler == nil {
		cfg.DenyHandler = defaultDeny
	}
	if cfg.ClearSiteData == "" {
		cfg.ClearSiteData = `"cache", "cookies", "storage"`
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cfg.TrustedProxies = append([]netip.Prefix(nil), cfg.TrustedProxies...)
	return &Manager{
		cfg:     cfg,
		store:   store,
		proxies: clientip.New(cfg.TrustedProxies),
		log:     logger,
		key:     &contextKey{name: cfg.CookieName},
	}, nil
}

// Config returns the Manager's configuration with every default resolved.
func (m *Manager) Config() Config {
	if m == nil {
		return Config{}
	}
	c := m.cfg
	c.TrustedProxies = append([]netip.Prefix(nil), c.TrustedProxies...)
	return c
}

func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func defaultDeny(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case isAny(err, ErrNotLoggedIn, ErrNotFresh, ErrSecondFactorRequired, ErrMultiFactorRequired):
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "401 unauthorized", http.StatusUnauthorized)
	case isAny(err, ErrLocked):
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "403 forbidden: vault locked", http.StatusForbidden)
	default:
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
	}
}

func (m *Manager) now() time.Time { return m.cfg.Now() }

// state returns the request's session state, put there by Handler.
func (m *Manager) state(ctx context.Context) (*requestState, error) {
	st, ok := ctx.Value(m.key).(*requestState)
	if !ok {
		return nil, ErrNoMiddleware
	}
	return st, nil
}
