package session

import (
	"cmp"
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// A Device is one of a user's sessions, as a "where you're logged in" page
// shows it.
type Device struct {
	// Ref identifies the session for Revoke. It is the same for the
	// session's whole life (see Info.Ref): a row read before the session
	// was unlocked, reauthenticated or renewed still revokes it.
	Ref string
	// Created is when the session logged in.
	Created time.Time
	// LastSeen is the session's last request, to within
	// Config.TouchInterval.
	LastSeen time.Time
	// IP is the client address last seen (from the connection, or from
	// a trusted proxy's header).
	IP string
	// UserAgent is the User-Agent header at login, cut to 256 bytes.
	UserAgent string
	// Unlocked reports whether the session holds the vault's keys.
	Unlocked bool
	// Bearer reports an API client: access tokens and the refresh-token
	// family they are issued from.
	Bearer bool
	// Current reports the session of the request Devices was called in.
	Current bool
	// SecondFactorPending reports a login that has proved the password
	// but not yet its second factor (LoginOptions.SecondFactorPending): if
	// the owner does not recognise it, someone else has their password.
	SecondFactorPending bool
}

// Devices lists the user's sessions, most recently seen first, one row per
// Ref. An API client (a refresh-token family) is listed for as long as its
// family lives, also while it holds no unexpired access token, with
// LastSeen at its last request or refresh. It reads only that user's
// sessions (through the store's per-user index).
func (m *Manager) Devices(ctx context.Context, userID string) ([]Device, error) {
	if m == nil {
		return nil, errNilManager
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	list, err := m.store.ListUserSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	var current []byte
	if st, err := m.state(ctx); err == nil {
		st.mu.Lock()
		current = st.id
		st.mu.Unlock()
	}
	now := m.now().UnixMilli()
	out := make([]Device, 0, len(list))
	// One row per reference: a session's records (a re-issue's new one
	// before the old is gone), or an API client's device record and
	// access sessions.
	row := make(map[string]int, len(list))
	for _, s := range list {
		rec, err := decodeRecord(s.ID, s.Data)
		if err != nil || now >= rec.deadline || now >= rec.lastSeen+rec.idleMS {
			continue
		}
		d := Device{
			Ref:       ref(rec.ref),
			Created:   time.UnixMilli(rec.created),
			LastSeen:  time.UnixMilli(rec.lastSeen),
			IP:        rec.ip,
			UserAgent: rec.userAgent,
			Unlocked:  len(rec.custody) > 0,
			Bearer:    rec.kind != kindCookie,
			Current:   current != nil && subtle.ConstantTimeCompare(current, s.ID) == 1,

			SecondFactorPending: rec.pending,
		}
		i, ok := row[d.Ref]
		if !ok {
			row[d.Ref] = len(out)
			out = append(out, d)
			continue
		}
		have := &out[i]
		if d.Created.Before(have.Created) {
			have.Created = d.Created
		}
		if d.LastSeen.After(have.LastSeen) {
			have.LastSeen = d.LastSeen
			if d.IP != "" || d.UserAgent != "" {
				have.IP, have.UserAgent = d.IP, d.UserAgent
			}
		}
		have.Unlocked = have.Unlocked || d.Unlocked
		have.Bearer = have.Bearer || d.Bearer
		have.Current = have.Current || d.Current
	}
	slices.SortFunc(out, func(a, b Device) int { return cmp.Compare(b.LastSeen.UnixMilli(), a.LastSeen.UnixMilli()) })
	return out, nil
}

func checkUserID(userID string) error {
	if userID == "" || len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("%w: user ID must be 1 to %d bytes", ErrInvalidInput, storage.MaxUserIDLen)
	}
	return nil
}

// Revoke ends the user's session with this Ref (from Devices or
// Info.Ref), with the vault keys it held and, for an API session, its
// refresh-token family and every access token issued from it. The Ref is
// stable for the session's whole life, so a device row read before the
// session's token was re-issued (unlock, Reauthenticated, Renew, a token
// refresh) still ends it, and an API client's Ref ends its family for as
// long as the family lives, also while the client holds no unexpired
// access token. An unknown Ref, one of a session that has
// already ended, or one of another user's session is ErrNoSuchSession:
// user input, for which the app shows a friendly page (the session is
// gone either way), never a server error. Guard the handler that calls it
// with RequireFresh: ending sessions needs a recent authentication.
func (m *Manager) Revoke(ctx context.Context, userID, sessionRef string) error {
	if m == nil {
		return errNilManager
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if len(sessionRef) != refStringLen {
		return ErrNoSuchSession
	}
	want := []byte(sessionRef)
	found := false
	// A session re-issued while this runs moves to a new ID under the same
	// reference: list again until no session has it.
	for range maxRevokeAttempts {
		list, err := m.store.ListUserSessions(ctx, userID)
		if err != nil {
			return err
		}
		ended := 0
		var revoked [][]byte // families revoked this round
		for _, s := range list {
			rec, err := decodeRecord(s.ID, s.Data)
			if err != nil || subtle.ConstantTimeCompare([]byte(ref(rec.ref)), want) != 1 {
				continue
			}
			if !found && ended == 0 {
				// Begun, the revocation runs to its end even if the
				// caller goes away.
				var cancel context.CancelFunc
				ctx, cancel = detach(ctx)
				defer cancel()
			}
			if rec.family != nil && !slices.ContainsFunc(revoked, func(f []byte) bool { return subtle.ConstantTimeCompare(f, rec.family) == 1 }) {
				if err := m.revokeFamily(ctx, userID, rec.family); err != nil {
					return err
				}
				revoked = append(revoked, rec.family)
			}
			if err := m.store.DeleteSession(ctx, s.ID); err != nil {
				return err
			}
			ended++
		}
		if ended == 0 {
			if !found {
				return ErrNoSuchSession
			}
			m.event(ctx, slog.LevelInfo, "session_expired", userID, sessionRef, slog.String("reason", "revoked"))
			return nil
		}
		found = true
	}
	return fmt.Errorf("session: the session kept being re-issued while it was revoked: %w", storage.ErrConflict)
}

// refStringLen is the length of a Ref: refLen bytes in unpadded base64url.
const refStringLen = (refLen*8 + 5) / 6

// RevokeAll ends every session and refresh-token family of the user: for
// an account disabled or deleted, or an administrator's action. It deletes
// and lists again until the user has no session left, so a session
// re-issued while it runs (unlock, step-up, Renew, a refresh: a new ID)
// ends too; if sessions keep appearing for maxRevokeAttempts rounds it
// returns an error wrapping storage.ErrConflict. A login that completes
// after it returns is not affected: call it again after the user can no
// longer log in.
func (m *Manager) RevokeAll(ctx context.Context, userID string) error {
	if m == nil {
		return errNilManager
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	for round := range maxRevokeAttempts {
		// Families first: a rotation that has not stored its family yet
		// then fails and deletes its access session; one that has, stored
		// that session before the sessions are deleted.
		if err := m.store.DeleteUserRefreshFamilies(ctx, userID); err != nil {
			return err
		}
		if err := m.store.DeleteUserSessions(ctx, userID); err != nil {
			return err
		}
		if round == 0 {
			// Begun, the revocation runs to its end even if the caller
			// goes away.
			var cancel context.CancelFunc
			ctx, cancel = detach(ctx)
			defer cancel()
		}
		list, err := m.store.ListUserSessions(ctx, userID)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			m.event(ctx, slog.LevelInfo, "session_expired", userID, "", slog.String("reason", "revoked_all"))
			return nil
		}
	}
	return fmt.Errorf("session: the user's sessions kept being re-issued while they were revoked: %w", storage.ErrConflict)
}

// RevokeOthers ends every session and refresh-token family of the
// request's user except the request's own session: call it after every
// security change (password or passphrase changed, recovery used, MFA
// enabled or disabled, passkey added or removed). Every refresh-token
// family of the user ends too, including the request's own when it is an
// API session (families cannot be told apart without their tokens): that
// client keeps its access token until it expires and must then log in.
//
// It deletes and lists again until no session but the request's own is
// left, so a device that re-issues its token while it runs (unlock,
// step-up, Renew: a new ID under the same Ref) ends too, and the
// request's own session is recognised by its Ref even if another request
// of the same cookie re-issued it meanwhile. If sessions keep appearing
// for maxRevokeAttempts rounds it returns an error wrapping
// storage.ErrConflict.
func (m *Manager) RevokeOthers(ctx context.Context) error {
	if m == nil {
		return errNilManager
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return err
	}
	// The session as stored now, not as the request found it: a session
	// revoked meanwhile (by the owner, from another device) must not end
	// the owner's sessions.
	if err := m.reload(ctx, st); err != nil {
		st.mu.Unlock()
		return err
	}
	if st.rec.pending { // a password alone must not end the owner's other sessions
		st.mu.Unlock()
		return ErrSecondFactorRequired
	}
	userID, current, currentRef, currentKind := st.userID, st.id, st.rec.ref, st.rec.kind
	st.mu.Unlock()
	own := func(id []byte, rec *record) bool {
		if subtle.ConstantTimeCompare(id, current) == 1 {
			return true
		}
		// A cookie session re-issued by another request keeps its Ref.
		// (A bearer session is never re-issued under a new ID, and its
		// family's other records end with the family.)
		return rec != nil && currentKind == kindCookie && rec.kind == kindCookie &&
			subtle.ConstantTimeCompare(rec.ref, currentRef) == 1
	}
	for round := range maxRevokeAttempts {
		// Families first, as in RevokeAll.
		if err := m.store.DeleteUserRefreshFamilies(ctx, userID); err != nil {
			return err
		}
		if round == 0 {
			var cancel context.CancelFunc
			ctx, cancel = detach(ctx)
			defer cancel()
		}
		list, err := m.store.ListUserSessions(ctx, userID)
		if err != nil {
			return err
		}
		ended := 0
		for _, s := range list {
			rec, err := decodeRecord(s.ID, s.Data)
			if err != nil {
				rec = nil
			}
			if own(s.ID, rec) {
				continue
			}
			if err := m.store.DeleteSession(ctx, s.ID); err != nil {
				return err
			}
			ended++
		}
		if ended == 0 {
			m.event(ctx, slog.LevelInfo, "session_expired", userID, ref(currentRef), slog.String("reason", "revoked_others"))
			return nil
		}
	}
	return fmt.Errorf("session: the user's sessions kept being re-issued while they were revoked: %w", storage.ErrConflict)
}

// cleanupTimeout bounds the store calls that detach lets outlive their
// request.
const cleanupTimeout = 15 * time.Second

// detach returns a context for the rest of a change that has begun (a
// revocation under way, the clean-up after a committed rotation): it
// keeps ctx's values but not its cancellation, so a client that hangs up
// cannot leave the change half done, and it is bounded by cleanupTimeout
// so that a store that hangs cannot hold it forever.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
