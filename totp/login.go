package totp

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
)

// errNoSessions is the error of the session-bound methods on an
// Authenticator without Config.Sessions.
var errNoSessions = fmt.Errorf("%w: this method needs Config.Sessions", ErrInvalidInput)

// VerifyLogin completes a login pending its second factor (or steps a
// session up to two factors) with a TOTP code: the code is checked for
// the request's session's user, never for a user the client names
// (TOT-09), as Verify checks it; if it is right, the session is marked
// verified with session.FactorTOTP and re-issued. A wrong code is counted
// by the Lockout across sessions (TOT-05) and by the pending session (the
// attempt before the check, session.Manager.SecondFactorAttempt, so that
// requests in flight together get no more checks; then
// session.Manager.SecondFactorFailed), which ends after
// session.Config.MaxSecondFactorFailures and notifies the user of a
// partial authentication (TOT-13); the error then also matches
// session.ErrTooManySecondFactorFailures: send the user back to the
// login page.
//
// It needs Config.Sessions and a request through its Handler
// (session.ErrNotLoggedIn without a session).
func (a *Authenticator) VerifyLogin(ctx context.Context, code string, src ratelimit.Source) error {
	if a == nil {
		return errNilAuthenticator
	}
	if a.sessions == nil {
		return errNoSessions
	}
	info, ok := a.sessions.Current(ctx)
	if !ok {
		return session.ErrNotLoggedIn
	}
	if err := a.countAttempt(ctx, info); err != nil {
		return err
	}
	err := a.Verify(ctx, info.UserID, code, src)
	if err == nil {
		return a.sessions.SecondFactorVerified(ctx, session.FactorTOTP)
	}
	return a.failedLogin(ctx, info, err)
}

// countAttempt counts the attempt against a pending login before its code
// is checked (session.Manager.SecondFactorAttempt), so that requests in
// flight together cannot have more codes checked than the login allows.
func (a *Authenticator) countAttempt(ctx context.Context, info session.Info) error {
	if !info.SecondFactorPending {
		return nil
	}
	_, err := a.sessions.SecondFactorAttempt(ctx)
	return err
}

// failedLogin counts a rejected code against a pending session.
func (a *Authenticator) failedLogin(ctx context.Context, info session.Info, err error) error {
	if !errors.Is(err, ratelimit.ErrRejected) || !info.SecondFactorPending {
		return err
	}
	if _, ferr := a.sessions.SecondFactorFailed(ctx); ferr != nil {
		return errors.Join(err, ferr)
	}
	return err
}

// RecoverLogin completes a login pending its second factor with a
// recovery code, as UseRecoveryCode checks and uses it up, for the
// request's session's user: the session is marked verified with
// session.FactorRecoveryCode and re-issued, and the user's other sessions
// are revoked (whoever holds the lost authenticator may be logged in).
// Show the returned status: how many codes are left, and whether they
// run low. Wrong codes count as in VerifyLogin.
func (a *Authenticator) RecoverLogin(ctx context.Context, code string, src ratelimit.Source) (RecoveryStatus, error) {
	if a == nil {
		return RecoveryStatus{}, errNilAuthenticator
	}
	if a.sessions == nil {
		return RecoveryStatus{}, errNoSessions
	}
	info, ok := a.sessions.Current(ctx)
	if !ok {
		return RecoveryStatus{}, session.ErrNotLoggedIn
	}
	if err := a.countAttempt(ctx, info); err != nil {
		return RecoveryStatus{}, err
	}
	st, err := a.UseRecoveryCode(ctx, info.UserID, code, src)
	if err != nil {
		return RecoveryStatus{}, a.failedLogin(ctx, info, err)
	}
	if err := a.sessions.SecondFactorVerified(ctx, session.FactorRecoveryCode); err != nil {
		return st, err
	}
	if err := a.sessions.RevokeOthers(ctx); err != nil {
		return st, fmt.Errorf("totp: the recovery code is used, but revoking the other sessions failed: %w", err)
	}
	return st, nil
}

// Reseal re-seals the user's secrets that the Sealer reports as stale
// (a KeyRing's old keys), under its current key, in one compare-and-swap
// write, and reports whether anything changed. Run it over every user
// after making a new KeyRing key current; once it has run for all, the
// old key can be dropped. With VaultSealer it changes nothing.
func (a *Authenticator) Reseal(ctx context.Context, userID string) (changed bool, err error) {
	if a == nil {
		return false, errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return false, err
	}
	err = a.update(ctx, userID, func(rec *factorRecord) error {
		changed = false
		for i := range rec.creds {
			c := &rec.creds[i]
			if !a.cfg.Sealer.Stale(c.sealed) {
				continue
			}
			ad := secretAD(userID, c.id)
			secret, err := a.cfg.Sealer.Open(ctx, userID, c.sealed, ad)
			if err != nil {
				return err
			}
			c.sealed, err = a.cfg.Sealer.Seal(ctx, userID, secret, ad)
			clear(secret)
			if err != nil {
				return err
			}
			changed = true
		}
		if !changed {
			return errStop
		}
		return nil
	})
	return changed, err
}

// ResealAll runs Reseal for every user ID that users yields, in order, and
// returns how many users' records changed. It stops at the first error,
// returning the count so far and the user ID that failed in the error: run
// it again from there (Reseal is idempotent). This is the walk that
// retires a KeyRing key: make the new key current on every instance, run
// ResealAll over all users (from the app's user table), then drop the old
// key from the ring.
func (a *Authenticator) ResealAll(ctx context.Context, users iter.Seq[string]) (changed int, err error) {
	if a == nil {
		return 0, errNilAuthenticator
	}
	for userID := range users {
		if err := ctx.Err(); err != nil {
			return changed, err
		}
		c, err := a.Reseal(ctx, userID)
		if err != nil {
			return changed, fmt.Errorf("totp: resealing user %q: %w", userID, err)
		}
		if c {
			changed++
		}
	}
	return changed, nil
}
