package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// Info describes the request's session. It is a snapshot: it does not
// change when the session does.
type Info struct {
	// UserID is the logged-in user.
	UserID string
	// Ref is a short reference to the session, safe to log and show: 96
	// random bits chosen at login, unrelated to the token, and the same
	// for the session's whole life (unlock, Reauthenticated and Renew
	// re-issue the token, not the reference). Devices lists it, and
	// Revoke takes it.
	Ref string
	// Created is when the user logged in.
	Created time.Time
	// AuthTime is the session's last authentication: the login, or the
	// last Reauthenticated.
	AuthTime time.Time
	// Expires is the session's absolute deadline.
	Expires time.Time
	// Unlocked reports whether the session holds the user's vault keys.
	Unlocked bool
	// Remembered reports a login with LoginOptions.Remember.
	Remembered bool
	// Bearer reports a session authenticated by an API access token
	// rather than a cookie.
	Bearer bool
	// SecondFactorPending reports a login with
	// LoginOptions.SecondFactorPending whose second factor is not proved
	// yet: the session is rated no higher than its one factor, and
	// RequireLogin, RequireUnlocked and RequireFresh refuse it (SES-13).
	SecondFactorPending bool
	// MultiFactor reports that the session is rated multi-factor: its
	// login proved a multi-factor set (LoginOptions.Factor, see
	// Factors.MultiFactor), or SecondFactorVerified added a factor that
	// makes its set multi-factor (a user-verified passkey, or a password
	// and a TOTP code, NIST SP 800-63B AAL2).
	// RequireMultiFactor checks it. A session stored before factors were
	// recorded (record versions 1 to 3) keeps its rating while its
	// Factors reads FactorPassword alone.
	MultiFactor bool
	// Factors are the factors the session's authentication proved: the
	// login's (LoginOptions.Factor, FactorPassword by default) and every
	// one SecondFactorVerified added since. They carry over every
	// re-issue (Unlock, Reauthenticated, Renew). API clients' sessions
	// (IssueTokens, Refresh) have FactorPassword, as do sessions stored
	// before factors were recorded.
	Factors Factors
}

// Current returns the request's session, or ok=false when the request has
// none (or did not pass through Handler). It never panics.
func (m *Manager) Current(ctx context.Context) (Info, bool) {
	if m == nil {
		return Info{}, false
	}
	st, err := m.state(ctx)
	if err != nil {
		return Info{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rec == nil {
		return Info{}, false
	}
	return st.info(), true
}

func (st *requestState) info() Info {
	return Info{
		UserID:     st.userID,
		Ref:        ref(st.rec.ref),
		Created:    time.UnixMilli(st.rec.created),
		AuthTime:   time.UnixMilli(st.rec.authTime),
		Expires:    time.UnixMilli(st.rec.deadline),
		Unlocked:   len(st.rec.custody) > 0,
		Remembered: st.rec.remember,
		Bearer:     st.rec.kind == kindBearer,

		SecondFactorPending: st.rec.pending,
		MultiFactor:         st.rec.mfa,
		Factors:             st.rec.sessionFactors(),
	}
}

// ref formats a session's reference (record.ref, refLen bytes), or the
// first 96 bits of a store ID, as the string Info, Device, Revoke and the
// audit events use.
func ref(b []byte) string {
	if len(b) < refLen {
		return ""
	}
	return b64.EncodeToString(b[:refLen])
}

// newRef returns a new random session reference.
func newRef() []byte {
	r := make([]byte, refLen)
	rand.Read(r)
	return r
}

// LoginOptions vary one login.
type LoginOptions struct {
	// Remember gives the session Config.RememberLifetime and
	// RememberIdleTimeout, and a persistent cookie, instead of the
	// defaults. The vault is never remembered unlocked.
	Remember bool
	// SecondFactorPending starts the session waiting for a second
	// factor: set it when the user proved one factor (a password) and is
	// enrolled in another (TOTP, a passkey). Until SecondFactorVerified,
	// RequireLogin, RequireUnlocked and RequireFresh refuse the session
	// with ErrSecondFactorRequired, and Unlock and Reauthenticated return
	// it; RequireFirstFactor lets the second factor's own page through.
	// The session lasts PendingLifetime at most, idle or not; call
	// SecondFactorFailed after each wrong second factor, which ends it
	// at Config.MaxSecondFactorFailures.
	SecondFactorPending bool
	// Factor is the factor, or the set of factors, the login proved,
	// recorded in the session (Info.Factors). Zero means FactorPassword.
	// A multi-factor set (FactorPassword|FactorTOTP, checked in one step)
	// rates the session multi-factor at once, and cannot be
	// SecondFactorPending (ErrInvalidInput); bits that name no factor are
	// ErrInvalidInput too.
	Factor Factors
}

// Login starts a new session for userID, after the app has authenticated
// the user. It always issues a new token (the request's old session, if
// any, ends: no fixation), stores the session, and sets the cookie on the
// response. If the user is over Config.MaxSessionsPerUser, their least
// recently used sessions end.
func (m *Manager) Login(ctx context.Context, userID string, opts LoginOptions) error {
	if m == nil {
		return errNilManager
	}
	if userID == "" || len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("%w: user ID must be 1 to %d bytes", ErrInvalidInput, storage.MaxUserIDLen)
	}
	factors := opts.Factor
	if factors == 0 {
		factors = FactorPassword
	}
	if !factors.valid() {
		return fmt.Errorf("%w: LoginOptions.Factor holds unknown factor bits", ErrInvalidInput)
	}
	if opts.SecondFactorPending && factors.MultiFactor() {
		return fmt.Errorf("%w: a multi-factor login (%s) is not pending a second factor", ErrInvalidInput, factors)
	}
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.canSetCookie(); err != nil {
		return err
	}
	if st.bearer {
		return fmt.Errorf("%w: Login needs a cookie request; API clients use IssueTokens", ErrInvalidInput)
	}
	if st.rec != nil {
		if err := m.store.DeleteSession(ctx, st.id); err != nil {
			return err
		}
		m.replacedPendingLogin(ctx, st.userID, st.rec)
		st.dropLocked()
	}
	now := m.now()
	rec := m.newRecord(kindCookie, now, opts.Remember, st)
	rec.factors, rec.mfa = factors, factors.MultiFactor()
	if opts.SecondFactorPending {
		// A login with the password alone lives only as long as it takes
		// to give the second factor, and competes only with other such
		// logins for room: it never ends one of the owner's sessions.
		rec.pending = true
		rec.deadline = min(rec.deadline, now.Add(PendingLifetime).UnixMilli())
		rec.idleMS = min(rec.idleMS, PendingLifetime.Milliseconds())
	}
	if err := m.makeRoom(ctx, userID, rec.ref, rec.pending); err != nil {
		return err
	}
	token := newToken()
	id := sessionID(kindCookie, token)
	if err := m.put(ctx, id, userID, rec, 0); err != nil {
		return err
	}
	st.token, st.id, st.userID, st.rec, st.version = token, id, userID, rec, 1
	st.setCookie(token, rec)
	m.audit(ctx, slog.LevelInfo, "session_created", st, slog.Bool("remember", opts.Remember),
		slog.Bool("second_factor_pending", opts.SecondFactorPending), slog.String("factors", factors.String()))
	return nil
}

// SecondFactorVerified records that the user of the request's session
// has just proved the second factor f (FactorTOTP, FactorRecoveryCode or
// FactorPasskey, or a set of them: the caller checks it, through the
// lockout): f is added to the session's factors (Info.Factors), the
// session is no longer pending (Info.SecondFactorPending false), is rated
// multi-factor (Info.MultiFactor) if its factors now are (Factors.MultiFactor:
// a user-verified passkey, or a password and another; a TOTP code
// stepping up with a recovery code is not), its authentication time is reset as by
// Reauthenticated, and its token is re-issued (a privilege change: no
// fixation). It works on a session that was not pending too (a step-up
// to two factors). It returns ErrInvalidInput for an f that is zero,
// holds FactorPassword (the first factor, given to Login) or unknown
// bits, and for an API client's session (IssueTokens is called after
// every factor); ErrNotLoggedIn without a session.
func (m *Manager) SecondFactorVerified(ctx context.Context, f Factors) error {
	if m == nil {
		return errNilManager
	}
	if !f.valid() || f.Has(FactorPassword) {
		return fmt.Errorf("%w: SecondFactorVerified takes the second factor proved (TOTP, recovery code, passkey), not %s", ErrInvalidInput, f)
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if st.bearer {
		return fmt.Errorf("%w: SecondFactorVerified needs a cookie session", ErrInvalidInput)
	}
	if err := st.canSetCookie(); err != nil {
		return err
	}
	// The session now counts against MaxSessionsPerUser.
	if st.rec.pending {
		if err := m.makeRoom(ctx, st.userID, st.rec.ref, false); err != nil {
			return err
		}
	}
	now := m.now()
	full := m.newRecord(kindCookie, now, st.rec.remember, nil)
	verified := func(rec *record) {
		if rec.pending { // the lifetime of a complete login, from now
			rec.deadline, rec.idleMS = full.deadline, full.idleMS
		}
		rec.pending, rec.failures = false, 0
		rec.factors = rec.sessionFactors() | f
		// Rated by what the session has proved, as Factors.MultiFactor
		// rates it: two possession factors without a password (a TOTP
		// code and a recovery code) are not multi-factor.
		rec.mfa = rec.factors.MultiFactor()
		rec.authTime, rec.lastSeen = now.UnixMilli(), now.UnixMilli()
	}
	if err := m.reissue(ctx, st, nil, verified); err != nil {
		return err
	}
	m.audit(ctx, slog.LevelInfo, "session_renewed", st, slog.String("reason", "second_factor"),
		slog.String("factors", st.rec.sessionFactors().String()))
	return nil
}

func (m *Manager) newRecord(k kind, now time.Time, remember bool, st *requestState) *record {
	lifetime, idle := m.cfg.Lifetime, m.cfg.IdleTimeout
	if remember {
		lifetime, idle = m.cfg.RememberLifetime, m.cfg.RememberIdleTimeout
	}
	if k == kindBearer {
		lifetime, idle = m.cfg.AccessTokenTTL, m.cfg.AccessTokenTTL
	}
	ms := now.UnixMilli()
	rec := &record{kind: k, remember: remember, factors: FactorPassword, created: ms, authTime: ms, lastSeen: ms,
		deadline: ms + lifetime.Milliseconds(), idleMS: idle.Milliseconds(), ref: newRef()}
	if st != nil && st.r != nil {
		if ip, ok := m.proxies.Client(st.r); ok {
			rec.ip = ip.String()
		}
		rec.userAgent = truncateUTF8(st.r.UserAgent(), maxUserAgentLen)
	}
	return rec
}

// makeRoom ends the user's least recently used devices so that the
// device with reference newRef fits under MaxSessionsPerUser. A device is
// what Devices lists as one row: the records with one reference (a cookie
// session, and the record a re-issue is replacing; an API client's device
// record and access sessions). The device newRef is never ended; if it
// is already listed, it needs no room. Ending an API client revokes its
// refresh family.
func (m *Manager) makeRoom(ctx context.Context, userID string, newRef []byte, pending bool) error {
	list, err := m.store.ListUserSessions(ctx, userID)
	if err != nil {
		return err
	}
	limit := m.cfg.MaxSessionsPerUser
	if pending {
		limit = MaxPendingPerUser
	}
	type device struct {
		ids      [][]byte
		ref      []byte
		family   []byte
		lastSeen int64
		pending  *record // a pending login's record, reported if it had failures
	}
	byRef := make(map[string]*device, len(list))
	for _, s := range list {
		d := &device{ref: s.ID}
		if rec, err := decodeRecord(s.ID, s.Data); err == nil {
			if rec.pending != pending {
				continue // pending logins and complete sessions have room of their own
			}
			d.ref, d.family, d.lastSeen = rec.ref, rec.family, rec.lastSeen
			if rec.pending {
				d.pending = rec
			}
		} else if pending {
			continue
		}
		key := string(d.ref[:min(refLen, len(d.ref))])
		if have, ok := byRef[key]; ok {
			have.ids = append(have.ids, s.ID)
			have.lastSeen = max(have.lastSeen, d.lastSeen)
			if have.family == nil {
				have.family = d.family
			}
			continue
		}
		d.ids = [][]byte{s.ID}
		byRef[key] = d
	}
	need := 1
	if _, ok := byRef[string(newRef)]; ok {
		need = 0
	}
	excess := len(byRef) + need - limit
	if excess <= 0 {
		return nil
	}
	devices := make([]*device, 0, len(byRef))
	for key, d := range byRef {
		if key != string(newRef) {
			devices = append(devices, d)
		}
	}
	slices.SortFunc(devices, func(a, b *device) int { return cmp.Compare(a.lastSeen, b.lastSeen) })
	for _, d := range devices[:min(excess, len(devices))] {
		if d.family != nil {
			if err := m.revokeFamily(ctx, userID, d.family); err != nil {
				return err
			}
		}
		for _, id := range d.ids {
			if err := m.store.DeleteSession(ctx, id); err != nil {
				return err
			}
		}
		m.event(ctx, slog.LevelInfo, "session_expired", userID, ref(d.ref), slog.String("reason", "session_limit"))
		m.replacedPendingLogin(ctx, userID, d.pending)
	}
	return nil
}

// Logout ends the request's session: it deletes it from the store, wipes
// the vault keys it held, expires the cookie and asks the browser to clear
// the site's data (Clear-Site-Data). Logging out without a session only
// clears the cookie.
func (m *Manager) Logout(ctx context.Context) error {
	if m == nil {
		return errNilManager
	}
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rec != nil {
		if err := m.store.DeleteSession(ctx, st.id); err != nil {
			return err
		}
		if st.rec.family != nil {
			if err := m.revokeFamily(ctx, st.userID, st.rec.family); err != nil {
				return err
			}
		}
		m.audit(ctx, slog.LevelInfo, "session_expired", st, slog.String("reason", "logout"))
		st.dropLocked()
	}
	if !st.bearer && !st.written {
		st.setClearCookie()
		st.clear = m.cfg.ClearSiteData
	}
	return nil
}

// dropLocked forgets the session (the caller holds st.mu).
func (st *requestState) dropLocked() {
	if st.unlocked != nil {
		st.unlocked.Lock()
		st.unlocked = nil
	}
	clear(st.token)
	st.token, st.id, st.userID, st.rec, st.version = nil, nil, "", nil, 0
}

func (st *requestState) canSetCookie() error {
	if st.written {
		return ErrHeadersWritten
	}
	if !st.bearer && !st.https && !st.plainOK {
		return ErrInsecureTransport
	}
	return nil
}

// Unlock keeps u, the user's unlocked vault, with the session until it is
// locked, logged out, revoked or expires: the vault's keys are sealed under
// a key derived from a new session token (re-issued now) and the sealed
// keys are stored with the session, so that neither the store nor an old
// cookie alone opens them. Later requests get the vault from Unlocked.
// u stays usable by the caller, who should Lock it when done with it.
func (m *Manager) Unlock(ctx context.Context, u *vault.Unlocked) error {
	if m == nil {
		return errNilManager
	}
	if u == nil {
		return fmt.Errorf("%w: nil *vault.Unlocked", ErrInvalidInput)
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if u == nil {
		return fmt.Errorf("%w: nil vault", ErrInvalidInput)
	}
	if u.UserID() != st.userID {
		return ErrUserMismatch
	}
	if st.rec.pending {
		return ErrSecondFactorRequired
	}
	if err := st.canSetCookie(); err != nil {
		return err
	}
	if err := m.reissue(ctx, st, u, nil); err != nil {
		return err
	}
	m.audit(ctx, slog.LevelInfo, "crypt_vault_unlocked", st)
	return nil
}

// Unlocked returns the user's vault, unlocked, for this request: ErrLocked
// if the session holds no vault keys, ErrNotLoggedIn if there is no
// session. The vault is locked (its keys wiped) when the request ends; do
// not keep it.
func (m *Manager) Unlocked(ctx context.Context) (*vault.Unlocked, error) {
	if m == nil {
		return nil, errNilManager
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	return st.openVault()
}

func (st *requestState) openVault() (*vault.Unlocked, error) {
	if st.unlocked != nil {
		return st.unlocked, nil
	}
	if len(st.rec.custody) == 0 {
		return nil, ErrLocked
	}
	key, err := custodyKey(st.token)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	u, err := vault.OpenCustody(st.userID, st.rec.custody, key, st.id)
	if err != nil {
		// Not this token's blob: treat as locked, never as an error
		// that tells more.
		return nil, ErrLocked
	}
	st.unlocked = u
	return u, nil
}

// Lock wipes the vault keys the session holds; the session stays logged
// in. Locking a locked session does nothing. The write is conditional on
// the version of the session this request read: if the session changed
// meanwhile, Lock reads it again and locks what it finds; if it has ended,
// Lock returns ErrNotLoggedIn.
func (m *Manager) Lock(ctx context.Context) error {
	if m == nil {
		return errNilManager
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if st.unlocked != nil {
		st.unlocked.Lock()
		st.unlocked = nil
	}
	for range maxLoadAttempts {
		if len(st.rec.custody) == 0 {
			return nil
		}
		rec := *st.rec
		rec.custody = nil
		err := m.put(ctx, st.id, st.userID, &rec, st.version)
		if err == nil {
			st.rec, st.version = &rec, st.version+1
			m.audit(ctx, slog.LevelInfo, "crypt_vault_locked", st, slog.String("reason", "user"))
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
		if err := m.reload(ctx, st); err != nil {
			return err
		}
	}
	return errBusy
}

// reload reads the request's session again after a write of it conflicted
// (the caller holds st.mu). If it has ended, the request loses it and
// reload returns ErrNotLoggedIn. If it no longer holds vault keys, the
// vault opened for this request is locked too.
func (m *Manager) reload(ctx context.Context, st *requestState) error {
	s, err := m.store.GetSession(ctx, st.id)
	var rec *record
	if err == nil {
		rec, err = decodeRecord(st.id, s.Data)
		if err == nil && (rec.kind != st.rec.kind || s.UserID != st.userID) {
			err = errMalformed
		}
	}
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, errMalformed) {
		st.dropLocked()
		if !st.bearer && !st.written {
			st.setClearCookie()
		}
		return ErrNotLoggedIn
	}
	if err != nil {
		return err
	}
	if len(rec.custody) == 0 && st.unlocked != nil {
		st.unlocked.Lock()
		st.unlocked = nil
	}
	st.rec, st.version = rec, s.Version
	return nil
}

// Recheck reads the request's session again from the store and returns
// it as it is now: ErrNotLoggedIn if it has ended since the request began
// (revoked, logged out, expired, its account deleted), with the cookie
// cleared as for any ended session. Current answers from what the request
// read when it began; call Recheck before a write that must not outlive
// the session, such as a change to the user's factors (package totp does).
func (m *Manager) Recheck(ctx context.Context) (Info, error) {
	if m == nil {
		return Info{}, errNilManager
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return Info{}, err
	}
	defer st.mu.Unlock()
	if err := m.reload(ctx, st); err != nil {
		return Info{}, err
	}
	return st.info(), nil
}

// Reauthenticated records that the user has just proven a factor again
// (step-up): it resets the session's authentication time, which
// RequireFresh checks, restarts its absolute lifetime, and re-issues its
// token.
func (m *Manager) Reauthenticated(ctx context.Context) error {
	if m == nil {
		return errNilManager
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if st.rec.pending {
		return ErrSecondFactorRequired
	}
	if err := st.canSetCookie(); err != nil {
		return err
	}
	now := m.now().UnixMilli()
	lifetime := m.cfg.Lifetime
	if st.rec.remember {
		lifetime = m.cfg.RememberLifetime
	}
	if st.rec.kind == kindBearer {
		lifetime = m.cfg.AccessTokenTTL
	}
	fresh := func(rec *record) {
		rec.authTime, rec.lastSeen, rec.deadline = now, now, now+lifetime.Milliseconds()
	}
	if err := m.reissue(ctx, st, nil, fresh); err != nil {
		return err
	}
	m.audit(ctx, slog.LevelInfo, "session_renewed", st, slog.String("reason", "reauthenticated"))
	return nil
}

// Renew re-issues the session's token, keeping everything else: call it on
// every change of the session's privileges (a role granted, an MFA step
// completed).
func (m *Manager) Renew(ctx context.Context) error {
	if m == nil {
		return errNilManager
	}
	st, err := m.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if err := st.canSetCookie(); err != nil {
		return err
	}
	if err := m.reissue(ctx, st, nil, nil); err != nil {
		return err
	}
	m.audit(ctx, slog.LevelInfo, "session_renewed", st, slog.String("reason", "renew"))
	return nil
}

// loggedIn returns the request's state, locked, or ErrNotLoggedIn.
func (m *Manager) loggedIn(ctx context.Context) (*requestState, error) {
	st, err := m.state(ctx)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	if st.rec == nil {
		st.mu.Unlock()
		return nil, ErrNotLoggedIn
	}
	return st, nil
}

// reissue moves the session to a new token: the new record is stored
// (expect 0: a new ID), then the old one ended by a put at the version this
// request read with an Expires long past (a conditional delete). With u,
// the new record holds u's keys; otherwise it carries over the keys the old
// one held (re-sealed under the new token). mutate, if not nil, changes the
// new record. The reference, and everything else, carries over.
//
// If the old record changed since this request read it (a touch, a lock,
// a revocation), the new one is deleted and reissue reads the session
// again: if it has ended, the request loses it (ErrNotLoggedIn) and nothing
// of it comes back under the new token; otherwise reissue starts over from
// what it read. A bearer session keeps its token, and its record is
// replaced at the version read. The caller holds st.mu.
func (m *Manager) reissue(ctx context.Context, st *requestState, u *vault.Unlocked, mutate func(*record)) error {
	for range maxLoadAttempts {
		err := m.reissueOnce(ctx, st, u, mutate)
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
		if err := m.reload(ctx, st); err != nil {
			return err
		}
	}
	return errBusy
}

func (m *Manager) reissueOnce(ctx context.Context, st *requestState, u *vault.Unlocked, mutate func(*record)) error {
	if u == nil && len(st.rec.custody) > 0 {
		var err error
		if u, err = st.openVault(); errors.Is(err, ErrLocked) {
			u = nil
		} else if err != nil {
			return err
		}
	}
	// An access token is only ever handed out by IssueTokens and Refresh:
	// a bearer session keeps its token.
	token := st.token
	if !st.bearer {
		token = newToken()
	}
	fail := func(err error) error {
		if !st.bearer {
			clear(token)
		}
		return err
	}
	id := sessionID(st.rec.kind, token)
	rec := *st.rec
	if mutate != nil {
		mutate(&rec)
	}
	rec.custody = nil
	if u != nil {
		key, err := custodyKey(token)
		if err != nil {
			return fail(err)
		}
		rec.custody, err = u.SealForCustody(key, id)
		clear(key)
		if err != nil {
			return fail(err)
		}
	}
	rec.lastSeen = m.now().UnixMilli()
	if st.bearer {
		if err := m.put(ctx, id, st.userID, &rec, st.version); err != nil {
			return err
		}
		st.rec, st.version = &rec, st.version+1
		return nil
	}
	if err := m.put(ctx, id, st.userID, &rec, 0); err != nil {
		return fail(err)
	}
	// End the old record, only if it is still the one this request read.
	old := storage.Session{ID: st.id, UserID: st.userID, Expires: longPast}
	if err := m.store.PutSession(ctx, old, st.version); err != nil {
		// The old token must not outlive this call, nor the new one
		// outlive a revocation of the old: undo and fail (or retry).
		_ = m.store.DeleteSession(context.WithoutCancel(ctx), id)
		return fail(err)
	}
	clear(st.token)
	st.token, st.id, st.rec, st.version = token, id, &rec, 1
	st.setCookie(token, &rec)
	return nil
}

// longPast is the Expires of a put that is a conditional delete: a put
// whose Expires has passed, once its expected version matched, leaves the
// record absent (storage.SessionStore, storage.RefreshStore).
var longPast = time.Unix(1, 0)

// audit logs an event about the request's session.
func (m *Manager) audit(ctx context.Context, level slog.Level, event string, st *requestState, attrs ...slog.Attr) {
	var sessionRef string
	if st.rec != nil {
		sessionRef = ref(st.rec.ref)
	}
	m.log.LogAttrs(ctx, level, event, m.baseAttrs(st, st.userID, sessionRef, attrs)...)
}

// event logs an event about userID's session sessionRef (none if empty),
// with the client's address when ctx is a request's behind Handler.
func (m *Manager) event(ctx context.Context, level slog.Level, name, userID, sessionRef string, attrs ...slog.Attr) {
	st, _ := ctx.Value(m.key).(*requestState)
	m.log.LogAttrs(ctx, level, name, m.baseAttrs(st, userID, sessionRef, attrs)...)
}

// baseAttrs returns the base fields of an audit event (SECURITY.md, "Audit
// events"), then attrs: "user", "session" (the session's Ref, if
// sessionRef is not empty) and "ip" (the client's address, if st is a
// request's and the address is known).
func (m *Manager) baseAttrs(st *requestState, userID, sessionRef string, attrs []slog.Attr) []slog.Attr {
	base := make([]slog.Attr, 0, 3+len(attrs))
	base = append(base, slog.String("user", userID))
	if sessionRef != "" {
		base = append(base, slog.String("session", sessionRef))
	}
	if st != nil && st.r != nil {
		if ip, ok := m.proxies.Client(st.r); ok {
			base = append(base, slog.String("ip", ip.String()))
		}
	}
	return append(base, attrs...)
}
