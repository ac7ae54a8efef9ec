package session

import (
	"net/http"
	"time"
)

// RequireLogin returns middleware that passes only requests with a
// session whose login is complete; others go to Config.DenyHandler with
// ErrNotLoggedIn, or ErrSecondFactorRequired for a session whose second
// factor is pending (LoginOptions.SecondFactorPending). It must run
// inside Handler.
func (m *Manager) RequireLogin(next http.Handler) http.Handler {
	if m == nil {
		return nilManagerHandler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := m.complete(w, r); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// complete returns the request's session if its login is complete;
// otherwise it answers through Config.DenyHandler (ErrNotLoggedIn, or
// ErrSecondFactorRequired for a pending login) and reports false.
func (m *Manager) complete(w http.ResponseWriter, r *http.Request) (Info, bool) {
	info, ok := m.Current(r.Context())
	switch {
	case !ok:
		m.cfg.DenyHandler(w, r, ErrNotLoggedIn)
	case info.SecondFactorPending:
		m.cfg.DenyHandler(w, r, ErrSecondFactorRequired)
	default:
		return info, true
	}
	return Info{}, false
}

// RequireFirstFactor returns middleware that passes every request with a
// session, including one whose second factor is pending: guard the
// second factor's own page with it (and check Info.SecondFactorPending
// there). Others go to Config.DenyHandler with ErrNotLoggedIn.
func (m *Manager) RequireFirstFactor(next http.Handler) http.Handler {
	if m == nil {
		return nilManagerHandler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := m.Current(r.Context()); !ok {
			m.cfg.DenyHandler(w, r, ErrNotLoggedIn)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireUnlocked returns middleware that passes only requests whose
// session holds the user's vault keys; others go to Config.DenyHandler
// with ErrNotLoggedIn, ErrSecondFactorRequired or ErrLocked. The handler
// gets the vault from Manager.Unlocked.
func (m *Manager) RequireUnlocked(next http.Handler) http.Handler {
	if m == nil {
		return nilManagerHandler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := m.Current(r.Context()); ok && info.SecondFactorPending {
			m.cfg.DenyHandler(w, r, ErrSecondFactorRequired)
			return
		}
		if _, err := m.Unlocked(r.Context()); err != nil {
			m.cfg.DenyHandler(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireFresh returns middleware that passes only requests whose session
// authenticated (logged in, or called Reauthenticated) within maxAge:
// guard with it the handlers that add a passkey, change a passphrase,
// turn MFA off, regenerate recovery codes or end other sessions. Others go
// to Config.DenyHandler with ErrNotLoggedIn, ErrSecondFactorRequired or a
// *NotFreshError (ask the user to authenticate again, then call
// Reauthenticated).
func (m *Manager) RequireFresh(maxAge time.Duration, next http.Handler) http.Handler {
	if m == nil {
		return nilManagerHandler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := m.complete(w, r)
		if !ok {
			return
		}
		if m.now().Sub(info.AuthTime) > maxAge {
			m.cfg.DenyHandler(w, r, &NotFreshError{AuthTime: info.AuthTime, MaxAge: maxAge})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireMultiFactor returns middleware that passes only requests whose
// session is complete and rated multi-factor (Info.MultiFactor: a login
// with a multi-factor LoginOptions.Factor, or SecondFactorVerified since):
// guard with it what a password alone must not reach. Others go to
// Config.DenyHandler with ErrNotLoggedIn, ErrSecondFactorRequired (a
// pending login), or ErrMultiFactorRequired (a complete session of one
// factor: ask for a second factor, then call SecondFactorVerified).
func (m *Manager) RequireMultiFactor(next http.Handler) http.Handler {
	if m == nil {
		return nilManagerHandler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := m.complete(w, r)
		switch {
		case !ok:
		case !info.MultiFactor:
			m.cfg.DenyHandler(w, r, ErrMultiFactorRequired)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
