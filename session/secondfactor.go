package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/notify"
	"github.com/keyhold/keyhold/storage"
)

// SecondFactorFailed counts one failed second-factor attempt (a wrong TOTP
// code, recovery code or passkey assertion) of the request's pending login
// (LoginOptions.SecondFactorPending), and returns how many it has had.
// Call it after the factor's own check (and the lockout) refused the
// attempt. The count is kept in the session record, written only over the
// version this request read (a concurrent write makes it read again and
// count on what it finds), so concurrent failures are each counted once.
//
// The failure that reaches Config.MaxSecondFactorFailures ends the login as
// Logout does (the session is deleted, its cookie expired): the password
// was right but the second factor was not (TOT-13). Config.Notifier hears
// of it once (keyhold.PartialAuthentication), and the audit event
// authn_second_factor_fail_max is logged; the answer is
// ErrTooManySecondFactorFailures. Of concurrent calls that race for the
// last failure, exactly one ends the login and notifies; the others find
// it gone (ErrNotLoggedIn).
//
// It returns ErrNotLoggedIn without a session (also once the login has
// ended), and ErrInvalidInput for a session that is not pending (a
// failed step-up of a complete session is the lockout's business only).
//
// After SecondFactorAttempt counted this request's attempt, it does not
// count it again: it only ends the login if the attempts have reached the
// limit.
func (m *Manager) SecondFactorFailed(ctx context.Context) (failures int, err error) {
	return m.countSecondFactor(ctx, "SecondFactorFailed", false)
}

// SecondFactorAttempt counts an attempt at the request's pending login's
// second factor before the factor is checked, so that requests racing
// with codes cannot have more than Config.MaxSecondFactorFailures of them
// checked (package totp's VerifyLogin and RecoverLogin call it). Call it
// first; then SecondFactorVerified if the factor was right, or
// SecondFactorFailed if it was wrong, which ends the login once the
// attempts have reached the limit (and does not count the attempt twice).
// An attempt beyond the limit is not to be checked: the login ends as by
// SecondFactorFailed, with its notice, and the answer is
// ErrTooManySecondFactorFailures. Errors as for SecondFactorFailed.
func (m *Manager) SecondFactorAttempt(ctx context.Context) (attempts int, err error) {
	return m.countSecondFactor(ctx, "SecondFactorAttempt", true)
}

// countSecondFactor is SecondFactorFailed (attempt false) and
// SecondFactorAttempt (attempt true).
func (m *Manager) countSecondFactor(ctx context.Context, name string, attempt bool) (failures int, err error) {
	if m == nil {
		return 0, errNilManager
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return 0, err
	}
	defer st.mu.Unlock()
	for range maxLoadAttempts {
		if !st.rec.pending {
			return 0, fmt.Errorf("%w: %s needs a login pending its second factor", ErrInvalidInput, name)
		}
		rec := *st.rec
		counted := !attempt && st.attempted // this failure was counted as an attempt
		if !counted {
			rec.failures = min(rec.failures, maxStoredFailures-1) + 1
		}
		n := int(rec.failures)
		if over := n > m.cfg.MaxSecondFactorFailures; over || (!attempt && n >= m.cfg.MaxSecondFactorFailures) {
			// End the login, only if it is still the one this request
			// read: of racing last failures, one ends it and notifies.
			end := storage.Session{ID: st.id, UserID: st.userID, Expires: longPast}
			err = m.store.PutSession(ctx, end, st.version)
			if err == nil {
				m.secondFactorFailedMax(ctx, st, n)
				return n, ErrTooManySecondFactorFailures
			}
		} else if counted {
			return n, nil
		} else {
			err = m.put(ctx, st.id, st.userID, &rec, st.version)
			if err == nil {
				st.rec, st.version = &rec, st.version+1
				st.attempted = st.attempted || attempt
				return n, nil
			}
		}
		if !errors.Is(err, storage.ErrConflict) {
			return 0, err
		}
		if err := m.reload(ctx, st); err != nil {
			return 0, err
		}
	}
	return 0, errBusy
}

// secondFactorFailedMax reports a pending login that SecondFactorFailed
// has just ended (the record is gone), and forgets it as Logout does. The
// caller holds st.mu.
func (m *Manager) secondFactorFailedMax(ctx context.Context, st *requestState, failures int) {
	m.audit(ctx, slog.LevelWarn, "authn_second_factor_fail_max", st,
		slog.Int("failures", failures), slog.Int("max_failures", m.cfg.MaxSecondFactorFailures))
	m.audit(ctx, slog.LevelInfo, "session_expired", st, slog.String("reason", "second_factor_failures"))
	var ip netip.Addr
	if st.r != nil {
		if a, ok := m.proxies.Client(st.r); ok {
			ip = a
		}
	}
	m.notifyPartial(ctx, st.userID, ref(st.rec.ref), ip)
	st.dropLocked()
	if !st.written {
		st.setClearCookie()
		st.clear = m.cfg.ClearSiteData
	}
}

// notifyPartial tells Config.Notifier of a pending login that ended with
// failed second-factor attempts (TOT-13).
func (m *Manager) notifyPartial(ctx context.Context, userID, sessionRef string, ip netip.Addr) {
	e := keyhold.Event{Kind: keyhold.PartialAuthentication, UserID: userID, Time: m.now(), IP: ip, Detail: sessionRef}
	if p := notify.Send(ctx, m.cfg.Notifier, e); p != "" {
		m.event(ctx, slog.LevelError, "sys_notify_fail", userID, sessionRef,
			slog.String("event", string(keyhold.PartialAuthentication)), slog.String("panic", p))
	}
}

// replacedPendingLogin reports a pending login that keyhold deleted with
// failed second-factor attempts on it (Login replacing the request's old
// session, or makeRoom ending the oldest pending login for a new one):
// starting the login again must not hide failed attempts from the owner.
func (m *Manager) replacedPendingLogin(ctx context.Context, userID string, rec *record) {
	if rec == nil || !rec.pending || rec.failures == 0 {
		return
	}
	sessionRef := ref(rec.ref)
	m.event(ctx, slog.LevelWarn, "authn_second_factor_fail_abandoned", userID, sessionRef,
		slog.Int("failures", int(rec.failures)))
	var ip netip.Addr
	if a, err := netip.ParseAddr(rec.ip); err == nil {
		ip = a
	}
	m.notifyPartial(ctx, userID, sessionRef, ip)
}
