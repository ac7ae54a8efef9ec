package session

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

var (
	// ErrNotLoggedIn means the request has no valid session: no cookie or
	// bearer token, or one that is unknown, expired or revoked.
	ErrNotLoggedIn = errors.New("session: not logged in")

	// ErrLocked means the session is logged in but holds no vault key:
	// never unlocked, locked, or auto-locked after inactivity.
	ErrLocked = errors.New("session: vault locked")

	// ErrNotFresh means the session's last authentication is older than
	// a handler demands (RequireFresh); the error is a *NotFreshError.
	ErrNotFresh = errors.New("session: authentication not recent enough")

	// ErrSecondFactorRequired means the session was started with
	// LoginOptions.SecondFactorPending and its second factor is not
	// proved yet (SES-13): send the user to the second factor's page
	// (guarded by RequireFirstFactor), then call SecondFactorVerified.
	ErrSecondFactorRequired = errors.New("session: second factor required")

	// ErrMultiFactorRequired means a handler behind RequireMultiFactor
	// was reached by a session that is not rated multi-factor
	// (Info.MultiFactor false): ask the user for a second factor, then
	// call SecondFactorVerified.
	ErrMultiFactorRequired = errors.New("session: multi-factor authentication required")

	// ErrTooManySecondFactorFailures means SecondFactorFailed counted the
	// failure that reached Config.MaxSecondFactorFailures: the pending
	// login has ended (deleted, its cookie expired), and the user starts
	// again from the password.
	ErrTooManySecondFactorFailures = errors.New("session: too many failed second-factor attempts; the login has ended")

	// ErrNoMiddleware means a method that needs the request's session
	// state was called with a context that did not pass through
	// Manager.Handler (a programming error in the app's routing).
	ErrNoMiddleware = errors.New("session: request did not pass through Manager.Handler")

	// ErrInsecureTransport means a session cookie would have to be sent
	// over plain HTTP. Serve over TLS, configure the TLS-terminating
	// proxy in Config.TrustedProxies, or, for local development only,
	// set Config.AllowInsecureCookies.
	ErrInsecureTransport = errors.New("session: refusing to issue a session cookie over plain HTTP")

	// ErrHeadersWritten means the response's headers were already sent,
	// so a new cookie can no longer be set: call Login, Unlock, Logout
	// and the like before writing the response.
	ErrHeadersWritten = errors.New("session: response headers already written")

	// ErrInvalidToken means a refresh token is malformed, unknown,
	// expired, revoked, or lost a race with a concurrent refresh.
	ErrInvalidToken = errors.New("session: invalid token")

	// ErrTokenReused means a refresh token that had already been rotated
	// was presented again: the whole family has been revoked (RFC 9700
	// §4.14.2). It wraps ErrInvalidToken.
	ErrTokenReused = fmt.Errorf("%w: refresh token reused; its family is revoked", ErrInvalidToken)

	// ErrUserMismatch means an Unlocked vault of another user was handed
	// to a session.
	ErrUserMismatch = errors.New("session: vault belongs to another user")

	// ErrInvalidInput means an argument is out of bounds (an empty or
	// over-long user ID, a nil vault), or a method was called on a nil
	// *Manager (what a failed New returns). Methods without an error
	// result return zero values on a nil *Manager, and its middleware
	// answers every request with a 500; none panics.
	ErrInvalidInput = errors.New("session: invalid input")

	// ErrNoSuchSession means Revoke found no session of the user with
	// that reference: it has ended already, or never existed.
	ErrNoSuchSession = errors.New("session: no such session")
)

// NotFreshError is returned by RequireFresh's check: the session's last
// authentication happened at AuthTime, longer ago than MaxAge.
type NotFreshError struct {
	AuthTime time.Time     // the session's last authentication
	MaxAge   time.Duration // how recent RequireFresh asked it to be
}

// Error says when the session last authenticated.
func (e *NotFreshError) Error() string {
	return fmt.Sprintf("session: last authenticated at %s, more than %s ago", e.AuthTime.UTC().Format(time.RFC3339), e.MaxAge)
}

// Unwrap makes errors.Is(err, ErrNotFresh) true.
func (e *NotFreshError) Unwrap() error { return ErrNotFresh }

// errNilManager is what a nil *Manager's methods return.
var errNilManager = fmt.Errorf("%w: nil *Manager", ErrInvalidInput)

// nilManagerHandler is what a nil *Manager's middleware returns: a
// handler that answers 500 and lets nothing through.
var nilManagerHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
})
