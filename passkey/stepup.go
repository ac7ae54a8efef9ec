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
)

// BeginStepUp starts a passkey re-authentication of the request's user,
// for a step-up before a sensitive change or as the second factor of a
// login pending one (the password was right): options for the browser
// (the JSON of a CredentialRequestOptions) that list the user's passkeys,
// with user verification required. The session must be the user's,
// complete or pending its second factor (session.ErrNotLoggedIn
// otherwise); ErrNotFound if the user has no passkey. The challenge is
// bound to this session.
func (m *Manager) BeginStepUp(r *http.Request) ([]byte, error) {
	if m == nil {
		return nil, errNilManager
	}
	origin, err := m.requestOrigin(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	info, ok := m.cfg.Sessions.Current(ctx)
	if !ok || info.Bearer {
		return nil, session.ErrNotLoggedIn
	}
	rec, err := m.load(ctx, info.UserID)
	if err != nil {
		return nil, err
	}
	if len(rec.creds) == 0 {
		return nil, ErrNotFound
	}
	return m.beginSessionAssertion(r, ceremonyStepUp, origin, info, rec, rec.credentialIDs())
}

// beginSessionAssertion starts an assertion ceremony bound to the
// request's session (unlock, step-up): options that list the credentials
// ids of rec, with user verification required, bound to origin, plus the
// ceremony's own options; its state kept under the session's challenge ID.
func (m *Manager) beginSessionAssertion(r *http.Request, ceremony byte, origin string, info session.Info, rec *record, ids [][]byte, opts ...webauthn.LoginOption) ([]byte, error) {
	allow, creds := assertionCredentials(rec, ids)
	opts = append([]webauthn.LoginOption{
		webauthn.WithAllowedCredentials(allow),
		webauthn.WithUserVerification(protocol.VerificationRequired),
		webauthn.WithLoginOrigin(origin),
	}, opts...)
	options, sd, err := m.wa.BeginLogin(&waUser{handle: rec.handle, name: info.UserID, creds: creds}, opts...)
	if err != nil {
		return nil, fmt.Errorf("passkey: assertion options: %w", err)
	}
	st := ceremonyState{Ceremony: ceremony, UserID: info.UserID, Ref: info.Ref, Origin: origin}
	if err := m.putCeremony(r.Context(), sessionChallengeID(ceremony, info.UserID, info.Ref), st, sd); err != nil {
		return nil, err
	}
	return json.Marshal(options)
}

// assertionCredentials returns the credentials of rec whose IDs are ids,
// as an allow list and as go-webauthn credentials.
func assertionCredentials(rec *record, ids [][]byte) ([]protocol.CredentialDescriptor, []webauthn.Credential) {
	allow := make([]protocol.CredentialDescriptor, len(ids))
	creds := make([]webauthn.Credential, len(ids))
	for i, id := range ids {
		creds[i] = rec.creds[rec.find(id)].waCredential()
		allow[i] = protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: creds[i].ID, Transport: creds[i].Transport}
	}
	return allow, creds
}

// FinishStepUp completes BeginStepUp with the browser's answer. The
// assertion is checked as FinishLogin checks one (the challenge bound to
// this session and used up, the WebAuthn checks with user verification,
// the credential one of the user's, the lockout for the user, the
// counter policy); then session.Manager.SecondFactorVerified records
// session.FactorPasskey: the session's authentication time is now, it is
// rated multi-factor, and its token is re-issued. The user stays who they
// were and the vault stays as it was (locked or unlocked): unlike a new
// passkey sign-in, a step-up cannot switch the session to the account of
// whoever's passkey answers.
//
// A session pending its second factor counts the attempt first
// (session.Manager.SecondFactorAttempt), not on Config.Lockout (the
// password's lockout bounds the logins, and whoever has the password
// must not be able to lock the owner's passkey sign-in), and each
// refusal after
// (SecondFactorFailed, which ends the login after
// session.Config.MaxSecondFactorFailures; the error then also matches
// session.ErrTooManySecondFactorFailures). Refusals the client could
// cause are ErrLoginFailed (with ErrPossibleClone for a refused counter).
func (m *Manager) FinishStepUp(r *http.Request, response []byte, src ratelimit.Source) (Credential, error) {
	if m == nil {
		return Credential{}, errNilManager
	}
	info, a, sd, err := m.sessionAssertion(r, ceremonyStepUp, true, response)
	if err != nil {
		return Credential{}, err
	}
	defer a.clearPRF()
	ctx := r.Context()
	if info.SecondFactorPending {
		if _, err := m.cfg.Sessions.SecondFactorAttempt(ctx); err != nil {
			return Credential{}, err
		}
	}
	var v verified
	verify := func(ctx context.Context) error {
		var err error
		v, err = m.verifyAndStore(ctx, r, info.UserID, a, sd, ceremonyStepUp)
		return err
	}
	if info.SecondFactorPending {
		// A pending login's passkey answers are bounded by the login
		// (SecondFactorAttempt, MaxSecondFactorFailures) and each login by
		// the password's lockout; a signature cannot be guessed. Counting
		// them on Config.Lockout would let whoever has the password lock
		// the owner's passkey sign-in.
		if err = verify(ctx); errors.Is(err, ratelimit.ErrWrongCredential) {
			err = fmt.Errorf("%w: %w", ratelimit.ErrRejected, err)
		}
	} else {
		err = m.check(ctx, info.UserID, src, a, verify)
	}
	if err != nil {
		if !errors.Is(err, ratelimit.ErrRejected) {
			return Credential{}, err
		}
		m.audit(ctx, slog.LevelInfo, "authn_passkey_stepup_fail", info.UserID, slog.Bool("locked", errors.Is(err, ratelimit.ErrLocked)),
			slog.Bool("possible_clone", errors.Is(err, ErrPossibleClone)), slog.Bool("second_factor_pending", info.SecondFactorPending))
		out := ErrLoginFailed
		if errors.Is(err, ErrPossibleClone) {
			out = fmt.Errorf("%w: %w", ErrLoginFailed, ErrPossibleClone)
		}
		if info.SecondFactorPending {
			if _, ferr := m.cfg.Sessions.SecondFactorFailed(ctx); ferr != nil {
				return Credential{}, errors.Join(out, ferr)
			}
		}
		return Credential{}, out
	}
	c := &v.rec.creds[v.index]
	if err := m.cfg.Sessions.SecondFactorVerified(ctx, session.FactorPasskey); err != nil {
		return Credential{}, err
	}
	// A Remove that came between the check and the re-issue revoked the
	// other sessions, not this one: undo the step-up's effect by logging out.
	if ok, err := m.stillRegistered(ctx, info.UserID, c.id); !ok {
		if lerr := m.cfg.Sessions.Logout(ctx); lerr != nil {
			return Credential{}, lerr
		}
		if err != nil {
			return Credential{}, err
		}
		return Credential{}, ErrLoginFailed
	}
	m.audit(ctx, slog.LevelInfo, "authn_passkey_stepup_success", info.UserID, attrCredential(c.id),
		slog.Bool("second_factor_pending", info.SecondFactorPending))
	slots, _ := m.unlockSlots(ctx, info.UserID)
	return c.public(m.canUnlock(slots, c)), nil
}
