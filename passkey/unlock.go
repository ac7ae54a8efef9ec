package passkey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/vault"
)

// unlockCredentialIDs are the IDs of rec's credentials that can be asked
// for a PRF output: those with the PRF extension and a salt.
func unlockCredentialIDs(rec *record) [][]byte {
	var ids [][]byte
	for i := range rec.creds {
		if c := &rec.creds[i]; c.has(flagPRF) && len(c.prfSalt) == prfSaltLen {
			ids = append(ids, c.id)
		}
	}
	return ids
}

// prfCredentials returns the complete session of ctx, its user's passkey
// record and the IDs of the credentials that can be asked for a PRF
// output: session.ErrNotLoggedIn, or ErrPRFUnavailable when there are
// none.
func (m *Manager) prfCredentials(ctx context.Context) (session.Info, *record, [][]byte, error) {
	info, ok := m.cfg.Sessions.Current(ctx)
	if !ok || info.SecondFactorPending {
		return session.Info{}, nil, nil, session.ErrNotLoggedIn
	}
	rec, err := m.load(ctx, info.UserID)
	if err != nil {
		return session.Info{}, nil, nil, err
	}
	ids := unlockCredentialIDs(rec)
	if len(ids) == 0 {
		return session.Info{}, nil, nil, ErrPRFUnavailable
	}
	return info, rec, ids, nil
}

// BeginUnlock starts a passkey ceremony that unlocks the vault of the
// request's session, or, when the session's vault is already unlocked,
// sets a passkey up to unlock it (adds its vault slot). It returns the
// options for the browser (the JSON of a CredentialRequestOptions) that
// list the user's passkeys with the PRF extension, each with its own
// salt (prf.evalByCredential; WebAuthn lets per-credential salts go only
// to listed credentials, which is why a usernameless login cannot also
// unlock: the app runs this ceremony after it). The session must be the
// user's and complete; ErrPRFUnavailable if no passkey of the user has
// the PRF extension, ErrNoVault without Config.Vault.
func (m *Manager) BeginUnlock(r *http.Request) ([]byte, error) {
	if m == nil {
		return nil, errNilManager
	}
	if m.cfg.Vault == nil {
		return nil, ErrNoVault
	}
	origin, err := m.requestOrigin(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	info, rec, ids, err := m.prfCredentials(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := m.cfg.Sessions.Unlocked(ctx); errors.Is(err, session.ErrLocked) {
		// To unlock, only the passkeys that have a slot now are asked.
		slots, err := m.unlockSlots(ctx, info.UserID)
		if err != nil {
			return nil, err
		}
		ids = slices.DeleteFunc(ids, func(id []byte) bool { return !m.canUnlock(slots, &rec.creds[rec.find(id)]) })
		if len(ids) == 0 {
			return nil, ErrNotSetUp
		}
	}
	return m.beginSessionAssertion(r, ceremonyUnlock, origin, info, rec, ids,
		webauthn.WithAssertionExtensions(webauthn.WithExtensionPRFByCredential(prfSalts(rec, ids), nil)))
}

// UnlockResult describes a passkey unlock that succeeded.
type UnlockResult struct {
	// Credential is the passkey used.
	Credential Credential
	// SetUp reports that the session's vault was already unlocked and
	// the passkey was set up to unlock it (its vault slot added or
	// renewed) rather than used to unlock.
	SetUp bool
}

// FinishUnlock completes BeginUnlock with the browser's answer. The
// assertion is checked as FinishLogin checks one (the challenge bound to
// this session and used up, the WebAuthn checks, the credential among
// the listed ones, the lockout for the user, the counter policy); then
// its PRF output (prf.results.first, never stored, logged or put in an
// error) either opens the passkey's vault slot, and the session is
// unlocked (session.Manager.Unlock), or, if the session's vault is
// unlocked already, becomes the passkey's slot (UnlockResult.SetUp).
//
// ErrPRFUnavailable: the answer has no PRF output (the browser or
// authenticator did not evaluate it; unlock with the passphrase).
// ErrNotSetUp: the assertion is right but the passkey has no vault slot
// (it was registered while the vault was locked, or its slot went with a
// master-key rotation): not counted by the lockout; unlock otherwise,
// then run this ceremony again to set it up. ErrUnlockFailed: the
// assertion was refused or the account is locked, or the output opens
// no slot (a PRF output that is not the passkey's). A refused counter
// matches ErrPossibleClone too.
func (m *Manager) FinishUnlock(r *http.Request, response []byte, src ratelimit.Source) (UnlockResult, error) {
	if m == nil {
		return UnlockResult{}, errNilManager
	}
	if m.cfg.Vault == nil {
		return UnlockResult{}, ErrNoVault
	}
	info, a, sd, err := m.sessionAssertion(r, ceremonyUnlock, false, response)
	if err != nil {
		return UnlockResult{}, err
	}
	defer a.clearPRF()
	ctx := r.Context()
	prf := a.parsed.ClientExtensionResults.PRF
	if prf == nil || prf.Results == nil || len(prf.Results.First) < vault.MinSecretLen || len(prf.Results.First) > vault.MaxSecretLen {
		return UnlockResult{}, ErrPRFUnavailable
	}
	secret := []byte(prf.Results.First)
	defer clear(secret)
	unlocked, err := m.cfg.Sessions.Unlocked(ctx)
	setUp := err == nil
	if err != nil && !errors.Is(err, session.ErrLocked) {
		return UnlockResult{}, err
	}
	var v verified
	var u *vault.Unlocked
	err = m.check(ctx, info.UserID, src, a, func(ctx context.Context) error {
		var err error
		if v, err = m.verifyAndStore(ctx, r, info.UserID, a, sd, ceremonyUnlock); err != nil {
			return err
		}
		if setUp {
			return nil
		}
		// A right assertion with a passkey that has no slot (registered
		// with the vault locked, or its slot dropped by a rotation) is no
		// wrong guess: it is not counted, and the user is told to set it up.
		slots, err := m.unlockSlots(ctx, info.UserID)
		if err != nil {
			return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
		}
		if !m.canUnlock(slots, &v.rec.creds[v.index]) {
			return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, ErrNotSetUp)
		}
		u, err = m.cfg.Vault.UnlockWithSecret(ctx, info.UserID, v.rec.creds[v.index].id, secret)
		if errors.Is(err, vault.ErrUnlockFailed) {
			return errRefused
		}
		return err
	})
	if errors.Is(err, ErrNotSetUp) {
		m.audit(ctx, slog.LevelInfo, "authn_passkey_unlock_fail", info.UserID, slog.Bool("locked", false),
			slog.Bool("possible_clone", false), slog.Bool("not_set_up", true))
		return UnlockResult{}, ErrNotSetUp
	}
	if err != nil {
		if errors.Is(err, ratelimit.ErrRejected) {
			m.audit(ctx, slog.LevelInfo, "authn_passkey_unlock_fail", info.UserID, slog.Bool("locked", errors.Is(err, ratelimit.ErrLocked)),
				slog.Bool("possible_clone", errors.Is(err, ErrPossibleClone)))
			if errors.Is(err, ErrPossibleClone) {
				return UnlockResult{}, fmt.Errorf("%w: %w", ErrUnlockFailed, ErrPossibleClone)
			}
			return UnlockResult{}, ErrUnlockFailed
		}
		return UnlockResult{}, err
	}
	c := &v.rec.creds[v.index]
	if setUp {
		if err := m.cfg.Vault.AddSecretSlot(ctx, unlocked, c.id, secret); err != nil {
			return UnlockResult{}, err
		}
		if ok, err := m.keepSlot(ctx, unlocked, info.UserID, c.id); !ok {
			if err != nil {
				return UnlockResult{}, err
			}
			return UnlockResult{}, ErrUnlockFailed // removed meanwhile
		}
		m.audit(ctx, slog.LevelInfo, "authn_passkey_unlock_setup", info.UserID, attrCredential(c.id))
		return UnlockResult{Credential: c.public(true), SetUp: true}, nil
	}
	if err := m.cfg.Sessions.Unlock(ctx, u); err != nil {
		u.Lock()
		return UnlockResult{}, err
	}
	m.audit(ctx, slog.LevelInfo, "authn_passkey_unlock_success", info.UserID, attrCredential(c.id))
	return UnlockResult{Credential: c.public(true)}, nil
}
