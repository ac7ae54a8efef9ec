package session

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// TokenPair is what an API client receives at login and at every refresh.
// Both tokens are secrets: send them only over TLS, never log them.
type TokenPair struct {
	// AccessToken goes in "Authorization: Bearer …" on every request,
	// until AccessExpires.
	AccessToken string
	// AccessExpires is when the access token stops working.
	AccessExpires time.Time
	// RefreshToken is exchanged, once, for the next pair.
	RefreshToken string
	// RefreshExpires is when the refresh token stops working if unused.
	RefreshExpires time.Time
}

// String redacts the tokens.
func (p TokenPair) String() string { return "session.TokenPair{[redacted]}" }

// GoString redacts the tokens.
func (p TokenPair) GoString() string { return p.String() }

// family is what a refresh-token family keeps (FORMAT.md §4.4).
type family struct {
	tokenHash []byte // of the current refresh token
	prevHash  []byte // of the token it replaced (zeros for the first)
	created   int64
	deadline  int64 // absolute
	idleUntil int64 // the current token's expiry
	rotated   int64 // when the current token replaced the previous one
	access    []byte
	legacy    bool // format 1: no device record yet
}

const familyRecordLen = 1 + 32 + 32 + 4*8 + 32

func (f *family) encode() []byte {
	b := make([]byte, 0, familyRecordLen)
	b = append(b, familyRecordVersion)
	b = append(b, f.tokenHash...)
	b = append(b, f.prevHash...)
	for _, v := range []int64{f.created, f.deadline, f.idleUntil, f.rotated} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return append(b, f.access...)
}

func decodeFamily(b []byte) (*family, error) {
	if len(b) != familyRecordLen || (b[0] != familyRecordVersion && b[0] != familyRecordVersionV1) {
		return nil, errMalformed
	}
	f := &family{tokenHash: append([]byte(nil), b[1:33]...), prevHash: append([]byte(nil), b[33:65]...), legacy: b[0] == familyRecordVersionV1}
	p := b[65:]
	for _, v := range []*int64{&f.created, &f.deadline, &f.idleUntil, &f.rotated} {
		*v = int64(binary.BigEndian.Uint64(p))
		p = p[8:]
	}
	f.access = append([]byte(nil), p...)
	return f, nil
}

func (f *family) expiresAt() time.Time { return time.UnixMilli(min(f.deadline, f.idleUntil)) }

// IssueTokens starts an API session for userID, after the app has
// authenticated the user: a bearer access token and the first refresh
// token of a new family. The access token is checked by Handler like a
// cookie; the refresh token is exchanged by Refresh.
func (m *Manager) IssueTokens(ctx context.Context, userID string) (TokenPair, error) {
	if m == nil {
		return TokenPair{}, errNilManager
	}
	if err := checkUserID(userID); err != nil {
		return TokenPair{}, err
	}
	famRaw := newToken()[:familyIDLen]
	famID := familyStoreID(famRaw)
	now := m.now()
	f := &family{created: now.UnixMilli(), deadline: now.Add(m.cfg.RefreshLifetime).UnixMilli()}
	var st *requestState
	if s, err := m.state(ctx); err == nil {
		st = s
	}
	pair, err := m.rotate(ctx, userID, famRaw, famID, f, 0, now, st)
	if err != nil {
		return TokenPair{}, err
	}
	m.event(ctx, slog.LevelInfo, "authn_token_created", userID, "", slog.String("family", ref(famID)))
	return pair, nil
}

// rotate issues the next token pair of a family (the first, from
// IssueTokens, with expect 0). In order:
//
//  1. it reads the family's device record (kindFamily, FORMAT.md §4.3);
//     if the family has one no longer (Revoke, RevokeOthers or the
//     session limit deleted it), the refresh fails;
//  2. it stores the new access session (nobody has its token yet);
//  3. it writes the device record (last use, address) at the version it
//     read (expect 0 for a new family, or an old family's first rotation):
//     a revocation that deleted it meanwhile wins;
//  4. it stores the family with the new refresh token's hash and the new
//     access session's ID (compare-and-swap on expect);
//  5. it deletes the previous access session, on a detached context.
//
// If step 3 or 4 finds the record changed or gone, the new access session
// is deleted (and a device record step 3 created) and the answer is
// ErrInvalidToken: nothing issued from a revoked family outlives the
// revocation (revokeFamily deletes the access session the family names
// and every session of the user carrying the family's ID, device record
// included, then the family at the version it read, and starts over if
// that version changed).
func (m *Manager) rotate(ctx context.Context, userID string, famRaw, famID []byte, f *family, expect uint64, now time.Time, st *requestState) (TokenPair, error) {
	famRef := famID[:refLen]
	if err := m.makeRoom(ctx, userID, famRef, false); err != nil {
		return TokenPair{}, err
	}
	devID := familyDeviceID(famID)
	var dev *record
	var devVersion uint64
	if expect != 0 {
		s, err := m.store.GetSession(ctx, devID)
		switch {
		case err == nil:
			dev, err = decodeRecord(devID, s.Data)
			if err != nil || dev.kind != kindFamily || s.UserID != userID || subtle.ConstantTimeCompare(dev.family, famID) != 1 {
				return TokenPair{}, ErrInvalidToken
			}
			devVersion = s.Version
		case errors.Is(err, storage.ErrNotFound):
			if !f.legacy {
				return TokenPair{}, ErrInvalidToken // the device was revoked
			}
		default:
			return TokenPair{}, err
		}
	}
	secret := newToken()
	access := newToken()
	defer clear(secret)
	defer clear(access)
	accessID := sessionID(kindBearer, access)
	prevAccess := f.access
	next := *f
	next.prevHash = f.tokenHash
	if next.prevHash == nil {
		next.prevHash = make([]byte, 32)
	}
	next.rotated = now.UnixMilli()
	next.tokenHash = refreshTokenHash(famRaw, secret)
	next.idleUntil = min(now.Add(m.cfg.RefreshTokenTTL).UnixMilli(), f.deadline)
	next.access = accessID
	rec := m.newRecord(kindBearer, now, false, st)
	rec.family = famID
	// Every access session of a family, and its device record, has the
	// family's reference, so that a device row stays valid across
	// rotations and for as long as the family lives.
	rec.ref = append([]byte(nil), famRef...)
	if err := m.put(ctx, accessID, userID, rec, 0); err != nil {
		return TokenPair{}, err
	}
	// The device record expires with the family: its idle deadline is
	// the new refresh token's expiry.
	d := &record{kind: kindFamily, created: f.created, authTime: f.created, lastSeen: next.rotated,
		deadline: f.deadline, idleMS: max(next.idleUntil-next.rotated, 1), ref: rec.ref, family: famID,
		ip: rec.ip, userAgent: rec.userAgent}
	if dev != nil {
		d.created, d.authTime = dev.created, dev.authTime
		if st == nil || st.r == nil {
			d.ip, d.userAgent = dev.ip, dev.userAgent
		}
	}
	if err := m.put(ctx, devID, userID, d, devVersion); err != nil {
		m.cleanupSession(ctx, userID, accessID, rec.ref)
		if errors.Is(err, storage.ErrConflict) {
			return TokenPair{}, ErrInvalidToken // revoked, or a concurrent refresh won
		}
		return TokenPair{}, err
	}
	err := m.store.PutRefreshFamily(ctx, storage.RefreshFamily{ID: famID, UserID: userID, Expires: next.expiresAt(), Data: next.encode()}, expect)
	if err != nil {
		m.cleanupSession(ctx, userID, accessID, rec.ref)
		if devVersion == 0 {
			// The device record this rotation created, unless a
			// concurrent rotation has written it since.
			dctx, cancel := detach(ctx)
			_ = m.store.PutSession(dctx, storage.Session{ID: devID, UserID: userID, Expires: longPast}, 1)
			cancel()
		}
		if errors.Is(err, storage.ErrConflict) {
			return TokenPair{}, ErrInvalidToken // a concurrent refresh won, or the family was revoked
		}
		return TokenPair{}, err
	}
	// The rotation has committed: the previous access token ends even if
	// the client hangs up now (a detached context). Should the delete
	// fail, the session still carries the family's ID, so revoking the
	// family ends it, and it expires within AccessTokenTTL; the client
	// gets its new pair (failing now would strand it with a spent token).
	if prevAccess != nil {
		m.cleanupSession(ctx, userID, prevAccess, rec.ref)
	}
	raw := append(append(make([]byte, 0, refreshRawLen), famRaw...), secret...)
	return TokenPair{
		AccessToken:    b64.EncodeToString(access),
		AccessExpires:  time.UnixMilli(rec.deadline),
		RefreshToken:   b64.EncodeToString(raw),
		RefreshExpires: time.UnixMilli(next.idleUntil),
	}, nil
}

// Refresh exchanges a refresh token for a new token pair; the presented
// refresh token and the previous access token stop working. Presenting a
// refresh token that was already exchanged revokes its whole family,
// including the access token most recently issued from it, and returns
// ErrTokenReused (RFC 9700 §4.14.2). Any other failure is ErrInvalidToken.
//
// Of concurrent refreshes with the same token exactly one succeeds; the
// others get ErrInvalidToken. A token presented again within
// Config.RefreshRaceWindow (5 s) of its rotation is taken for such a race
// (or a client's retry) and refused without revoking the family; after
// that window it is a replay. The window never lets a spent token refresh.
func (m *Manager) Refresh(ctx context.Context, refreshToken string) (TokenPair, error) {
	if m == nil {
		return TokenPair{}, errNilManager
	}
	famRaw, secret, ok := parseRefreshToken(refreshToken)
	if !ok {
		return TokenPair{}, ErrInvalidToken
	}
	famID := familyStoreID(famRaw)
	stored, err := m.store.GetRefreshFamily(ctx, famID)
	if errors.Is(err, storage.ErrNotFound) {
		return TokenPair{}, ErrInvalidToken
	}
	if err != nil {
		return TokenPair{}, err
	}
	f, err := decodeFamily(stored.Data)
	if err != nil {
		return TokenPair{}, ErrInvalidToken
	}
	presented := refreshTokenHash(famRaw, secret)
	if subtle.ConstantTimeCompare(presented, f.tokenHash) != 1 {
		if subtle.ConstantTimeCompare(presented, f.prevHash) == 1 &&
			m.now().UnixMilli()-f.rotated < m.cfg.RefreshRaceWindow.Milliseconds() {
			// The token was rotated a moment ago: a concurrent refresh
			// (or a retry) lost the race. Refuse, without revoking.
			return TokenPair{}, ErrInvalidToken
		}
		// Someone holds a token of this family that is no longer its
		// current one: a rotated token replayed. Revoke the family, with
		// the access session it names now (which may be newer than the
		// one read here).
		if err := m.revokeFamily(ctx, stored.UserID, famID); err != nil {
			return TokenPair{}, err
		}
		m.event(ctx, slog.LevelWarn, "authn_token_reuse", stored.UserID, "", slog.String("family", ref(famID)))
		return TokenPair{}, ErrTokenReused
	}
	now := m.now()
	if now.UnixMilli() >= f.deadline || now.UnixMilli() >= f.idleUntil {
		return TokenPair{}, ErrInvalidToken
	}
	var st *requestState
	if s, err := m.state(ctx); err == nil {
		st = s
	}
	pair, err := m.rotate(ctx, stored.UserID, famRaw, famID, f, stored.Version, now, st)
	if err != nil {
		return TokenPair{}, err
	}
	m.event(ctx, slog.LevelInfo, "authn_token_rotated", stored.UserID, "", slog.String("family", ref(famID)))
	return pair, nil
}

// maxRevokeAttempts bounds the rounds of revokeFamily, Revoke, RevokeAll
// and RevokeOthers: each round that does not finish saw a rotation (or a
// re-issue) complete, so the bound holds unless someone rotates the family
// as fast as the store answers.
const maxRevokeAttempts = 8

// cleanupSession deletes a session that must not outlive a step that has
// committed or failed (a rotation's previous or abandoned access session),
// on a detached context so that a client hanging up cannot skip it; a
// failure is logged.
func (m *Manager) cleanupSession(ctx context.Context, userID string, id, sessionRef []byte) {
	dctx, cancel := detach(ctx)
	defer cancel()
	if err := m.store.DeleteSession(dctx, id); err != nil {
		m.event(ctx, slog.LevelWarn, "sys_store_fail", userID, ref(sessionRef), slog.String("op", "delete_session"), slog.String("error", err.Error()))
	}
}

// revokeFamily ends a refresh-token family of the user and every session
// issued from it: it reads the family, deletes the access session the
// family names and every session of the user that carries the family's
// ID (an access session a rotation failed to delete, the family's device
// record), then deletes the family if it still has the version read (a
// put at that version with an Expires long past); if a rotation changed it
// in between, it starts over with what the rotation stored. A rotation
// that lands after the family is gone fails its compare-and-swap and
// deletes the access session it had stored. Once begun it runs on a
// detached context: a client that hangs up (a replayed token's sender)
// cannot leave the revocation half done.
func (m *Manager) revokeFamily(ctx context.Context, userID string, famID []byte) error {
	ctx, cancel := detach(ctx)
	defer cancel()
	for range maxRevokeAttempts {
		stored, err := m.store.GetRefreshFamily(ctx, famID)
		found := err == nil
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if found {
			if f, err := decodeFamily(stored.Data); err == nil && len(f.access) == storage.SessionIDLen {
				if err := m.store.DeleteSession(ctx, f.access); err != nil {
					return err
				}
			}
		}
		if err := m.sweepFamily(ctx, userID, famID); err != nil {
			return err
		}
		if !found {
			return nil
		}
		err = m.store.PutRefreshFamily(ctx, storage.RefreshFamily{ID: famID, UserID: stored.UserID, Expires: longPast, Data: stored.Data}, stored.Version)
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("session: the refresh family kept rotating while it was revoked: %w", storage.ErrConflict)
}

// sweepFamily deletes every session of the user that carries the family's
// ID.
func (m *Manager) sweepFamily(ctx context.Context, userID string, famID []byte) error {
	list, err := m.store.ListUserSessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, s := range list {
		rec, err := decodeRecord(s.ID, s.Data)
		if err != nil || subtle.ConstantTimeCompare(rec.family, famID) != 1 {
			continue
		}
		if err := m.store.DeleteSession(ctx, s.ID); err != nil {
			return err
		}
	}
	return nil
}
