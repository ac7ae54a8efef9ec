package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// BeginLogin starts a usernameless passkey login and returns the options
// for the browser: the JSON of a CredentialRequestOptions ({"publicKey":
// …}) with an empty allowCredentials (the browser offers the user's
// discoverable passkeys for this RP ID: nothing here depends on who
// asks, so the options reveal no account, PKY-16) and user verification
// required. The challenge is kept server-side for CeremonyTimeout, bound
// to a random token in a cookie it sets on w (HttpOnly, SameSite=Strict,
// "__Host-" unless the sessions run over plain HTTP): FinishLogin from
// another browser finds no challenge.
//
// Anyone can call it, and each call stores a challenge (up to
// storage.MaxChallengeDataLen bytes) for CeremonyTimeout: put a
// per-address rate limit on the handler (ratelimit.Limiter's middleware),
// as on a password login.
func (m *Manager) BeginLogin(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if m == nil {
		return nil, errNilManager
	}
	if w == nil {
		return nil, fmt.Errorf("%w: nil ResponseWriter", ErrInvalidInput)
	}
	origin, err := m.requestOrigin(r)
	if err != nil {
		return nil, err
	}
	opts, sd, err := m.wa.BeginDiscoverableLogin(
		webauthn.WithUserVerification(protocol.VerificationRequired),
		webauthn.WithLoginOrigin(origin),
	)
	if err != nil {
		return nil, fmt.Errorf("passkey: login options: %w", err)
	}
	token := m.setLoginCookie(w)
	if err := m.putCeremony(r.Context(), loginChallengeID(token), ceremonyState{Ceremony: ceremonyLogin, Origin: origin}, sd); err != nil {
		return nil, err
	}
	return json.Marshal(opts)
}

// LoginOptions vary one passkey login.
type LoginOptions struct {
	// Remember asks for a remembered session (session.LoginOptions.Remember).
	Remember bool
}

// LoginResult describes a passkey login that succeeded.
type LoginResult struct {
	// UserID is the user now logged in.
	UserID string
	// Credential is the passkey used.
	Credential Credential
	// ClonedCounter reports an assertion whose counter did not grow
	// that the SignCountPolicy let through (flagged).
	ClonedCounter bool
}

// FinishLogin completes BeginLogin with the browser's answer (the JSON
// of the PublicKeyCredential, at most MaxResponseLen bytes) and, when the
// passkey checks out, logs its user in: session.Manager.Login with
// session.FactorPasskey, a complete multi-factor session (a user-verified
// passkey is phishing-resistant and needs no TOTP on top), its vault
// locked (FinishUnlock, or the passphrase, unlocks it). r must have
// passed through the session middleware; src is where the attempt comes
// from, for the lockout.
//
// The ceremony's challenge, found by the browser's cookie, is used up
// whatever the outcome (ErrChallenge if there is none). The user is the
// owner of the answer's user handle, and the credential must be theirs;
// the WebAuthn checks of §7.2 all apply, user verification included, and
// the attempt goes through Config.Lockout for that user. Every refusal
// the client could cause (an unknown handle or credential, a removed
// passkey, a bad signature, a locked account, a refused counter) is
// ErrLoginFailed after the same work; a refused counter also matches
// ErrPossibleClone. The credential's counter, backup state and last use
// are stored only after every check passed.
func (m *Manager) FinishLogin(w http.ResponseWriter, r *http.Request, response []byte, src ratelimit.Source, opts LoginOptions) (LoginResult, error) {
	if m == nil {
		return LoginResult{}, errNilManager
	}
	if w == nil || r == nil {
		return LoginResult{}, fmt.Errorf("%w: nil ResponseWriter or Request", ErrInvalidInput)
	}
	ctx := r.Context()
	token, ok := m.loginToken(w, r)
	if !ok {
		return LoginResult{}, ErrChallenge
	}
	_, sd, err := m.takeCeremony(ctx, loginChallengeID(token), ceremonyState{Ceremony: ceremonyLogin})
	if err != nil {
		return LoginResult{}, err
	}
	a, err := parseAssertion(response)
	if err != nil {
		return LoginResult{}, err
	}
	handle := a.parsed.Response.UserHandle
	userID := ""
	if len(handle) == storage.PasskeyHandleLen {
		userID, err = m.cfg.Store.UserByHandle(ctx, handle)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return LoginResult{}, err
		}
	}
	if userID == "" {
		// No such user (or no user handle, which a discoverable login
		// requires): the same work as a wrong signature.
		m.dummyVerify(a)
		m.audit(ctx, slog.LevelInfo, "authn_passkey_login_fail", "", slog.String("reason", "unknown_user_handle"))
		return LoginResult{}, ErrLoginFailed
	}
	var v verified
	err = m.check(ctx, userID, src, a, func(ctx context.Context) error {
		var err error
		v, err = m.verifyAndStore(ctx, r, userID, a, sd, ceremonyLogin)
		return err
	})
	if err != nil {
		if errors.Is(err, ratelimit.ErrRejected) {
			m.audit(ctx, slog.LevelInfo, "authn_passkey_login_fail", userID, slog.Bool("locked", errors.Is(err, ratelimit.ErrLocked)),
				slog.Bool("possible_clone", errors.Is(err, ErrPossibleClone)))
			if errors.Is(err, ErrPossibleClone) {
				return LoginResult{}, fmt.Errorf("%w: %w", ErrLoginFailed, ErrPossibleClone)
			}
			return LoginResult{}, ErrLoginFailed
		}
		return LoginResult{}, err
	}
	if err := m.cfg.Sessions.Login(ctx, userID, session.LoginOptions{Remember: opts.Remember, Factor: session.FactorPasskey}); err != nil {
		return LoginResult{}, err
	}
	c := &v.rec.creds[v.index]
	if ok, err := m.stillRegistered(ctx, userID, c.id); !ok {
		// Removed after the check, before the session existed: Remove's
		// revocation of the other sessions missed this one.
		if lerr := m.cfg.Sessions.Logout(ctx); lerr != nil {
			return LoginResult{}, lerr
		}
		if err != nil {
			return LoginResult{}, err
		}
		m.audit(ctx, slog.LevelInfo, "authn_passkey_login_fail", userID, attrCredential(c.id), slog.String("reason", "removed_during_login"))
		return LoginResult{}, ErrLoginFailed
	}
	slots, _ := m.unlockSlots(ctx, userID)
	m.audit(ctx, slog.LevelInfo, "authn_passkey_login_success", userID, attrCredential(c.id), slog.Bool("clone_flagged", v.clone))
	return LoginResult{UserID: userID, Credential: c.public(m.canUnlock(slots, c)), ClonedCounter: v.clone}, nil
}

// stillRegistered reports whether the credential id is still userID's,
// as stored now. A login's session is checked again with it once made: a
// Remove that came in between, after the assertion's check and before
// the session existed (so its revocation of the other sessions missed
// it), must not be outlived by it.
func (m *Manager) stillRegistered(ctx context.Context, userID string, id []byte) (bool, error) {
	owner, err := m.cfg.Store.UserByCredential(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil && owner == userID, err
}

// keepSlot checks, after a vault slot was added for the credential id,
// that the credential is still userID's, and removes the slot if not (a
// slot without its passkey could be neither listed nor removed). The
// check writes the record back (a new version): a Remove that read the
// record before it, and looked for the slot before it existed, then
// fails to write, reads again and finds the slot.
func (m *Manager) keepSlot(ctx context.Context, u *vault.Unlocked, userID string, id []byte) (bool, error) {
	err := m.update(ctx, userID, func(rec *record) error {
		if rec.find(id) < 0 {
			return ErrNotFound
		}
		return nil
	})
	if err == nil || !errors.Is(err, ErrNotFound) {
		return err == nil, err
	}
	sid, err := vault.SecretSlotID(id)
	if err != nil {
		return false, err
	}
	return false, m.cfg.Vault.RemoveSlot(ctx, u, sid)
}

// verifyAndStore checks the assertion against the user's stored record
// and stores the credential's update by compare-and-swap, reading and
// checking again if another change came first.
func (m *Manager) verifyAndStore(ctx context.Context, r *http.Request, userID string, a *assertion, sd webauthn.SessionData, ceremony byte) (verified, error) {
	discoverable := ceremony == ceremonyLogin
	for range 4 {
		sr, err := m.cfg.Store.GetPasskeys(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			m.dummyVerify(a)
			return verified{}, errRefused
		}
		if err != nil {
			return verified{}, fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
		}
		rec, err := decodeRecord(sr)
		if err != nil {
			return verified{}, fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
		}
		switch ceremony { // the credentials the ceremony listed, as stored now
		case ceremonyUnlock:
			sd.AllowedCredentialIDs = unlockCredentialIDs(rec)
		case ceremonyStepUp:
			sd.AllowedCredentialIDs = rec.credentialIDs()
		}
		v, err := m.checkAssertion(ctx, r, a, rec, sd, discoverable)
		if err != nil {
			return verified{}, err
		}
		switch err := m.storeVerified(ctx, v); {
		case err == nil:
			return v, nil
		case !errors.Is(err, ErrConflict):
			return verified{}, fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
		}
	}
	return verified{}, fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, ErrConflict)
}
