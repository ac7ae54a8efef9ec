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
	// Bearer reports an API access-token session.
	Bearer bool
	// Current reports the session of the request Devices was called in.
	Current bool
}

// Devices lists the user's sessions, most recently seen first. It reads
// only that user's sessions (through the store's per-user index).
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
	for _, s := range list {
		rec, err := decodeRecord(s.ID, s.Data)
		if err != nil || now >= rec.deadline || now >= rec.lastSeen+rec.idleMS {
			continue
		}
		out = append(out, Device{
			Ref:       ref(rec.ref),
			Created:   time.UnixMilli(rec.created),
			LastSeen:  time.UnixMilli(rec.lastSeen),
			IP:        rec.ip,
			UserAgent: rec.userAgent,
			Unlocked:  len(rec.custody) > 0,
			Bearer:    rec.kind == kindBearer,
			Current:   current != nil && subtle.ConstantTimeCompare(current, s.ID) == 1,
		})
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
// refresh) still ends it. An unknown Ref, one of a session that has
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
		for _, s := range list {
			rec, err := decodeRecord(s.ID, s.Data)
			if err != nil || subtle.ConstantTimeCompare([]byte(ref(rec.ref)), want) != 1 {
				continue
			}
			if rec.family != nil {
				if err := m.revokeFamily(ctx, rec.family); err != nil {
					return err
				}
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
			m.log.LogAttrs(ctx, slog.LevelInfo, "keyhold.session.revoked", slog.String("user", userID), slog.String("session", sessionRef), slog.String("reason", "one"))
			return nil
		}
		found = true
	}
	return fmt.Errorf("session: the session kept being re-issued while it was revoked: %w", storage.ErrConflict)
}

// refStringLen is the length of a Ref: refLen bytes in unpadded base64url.
const refStringLen = (refLen*8 + 5) / 6

// RevokeAll ends every session and refresh-token family of the user: for
// an account disabled or deleted, or an administrator's action. Sessions
// that are being created while it runs may survive it; call it again after
// the user can no longer log in.
func (m *Manager) RevokeAll(ctx context.Context, userID string) error {
	if m == nil {
		return errNilManager
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	// Families first: a rotation that has not stored its family yet then
	// fails and deletes its access session; one that has, stored that
	// session before the sessions are deleted.
	if err := m.store.DeleteUserRefreshFamilies(ctx, userID); err != nil {
		return err
	}
	if err := m.store.DeleteUserSessions(ctx, userID); err != nil {
		return err
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "keyhold.session.revoked", slog.String("user", userID), slog.String("reason", "all"))
	return nil
}

// RevokeOthers ends every session and refresh-token family of the
// request's user except the request's own session: call it after every
// security change (password or passphrase changed, recovery used, MFA
// enabled or disabled, passkey added or removed). Every refresh-token
// family of the user ends too, including the request's own when it is an
// API session (families cannot be told apart without their tokens): that
// client keeps its access token until it expires and must then log in.
func (m *Manager) RevokeOthers(ctx context.Context) error {
	if m == nil {
		return errNilManager
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return err
	}
	userID, current, currentRef := st.userID, st.id, st.rec.ref
	st.mu.Unlock()
	// Families first, as in RevokeAll.
	if err := m.store.DeleteUserRefreshFamilies(ctx, userID); err != nil {
		return err
	}
	list, err := m.store.ListUserSessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, s := range list {
		if subtle.ConstantTimeCompare(s.ID, current) == 1 {
			continue
		}
		if err := m.store.DeleteSession(ctx, s.ID); err != nil {
			return err
		}
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "keyhold.session.revoked", slog.String("user", userID), slog.String("session", ref(currentRef)), slog.String("reason", "others"))
	return nil
}
