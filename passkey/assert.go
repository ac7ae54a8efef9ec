package passkey

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
)

// errRefused is what an assertion check returns for anything the user
// (or an attacker) could cause; it counts as a wrong credential.
var errRefused = fmt.Errorf("%w: assertion refused", ratelimit.ErrWrongCredential)

// assertion is one parsed browser answer to navigator.credentials.get.
type assertion struct {
	parsed *protocol.ParsedCredentialAssertionData
}

// parseAssertion bounds and parses a browser answer.
func parseAssertion(response []byte) (*assertion, error) {
	if len(response) == 0 || len(response) > MaxResponseLen {
		return nil, ErrInvalidResponse
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidResponse, reason(err))
	}
	return &assertion{parsed: parsed}, nil
}

// clearPRF wipes the PRF outputs the answer carried (key material), once
// the call that parsed it is done with them.
func (a *assertion) clearPRF() {
	if p := a.parsed.ClientExtensionResults.PRF; p != nil && p.Results != nil {
		clear(p.Results.First)
		clear(p.Results.Second)
	}
}

// sessionAssertion is the start of every Finish of a ceremony bound to
// the request's session (unlock, step-up): the session is the user's
// cookie session (complete, or pending its second factor if pendingOK),
// its ceremony is taken (used up: ErrChallenge if there is none), and the
// browser's answer is parsed. The caller wipes the answer's PRF outputs.
func (m *Manager) sessionAssertion(r *http.Request, ceremony byte, pendingOK bool, response []byte) (session.Info, *assertion, webauthn.SessionData, error) {
	if r == nil {
		return session.Info{}, nil, webauthn.SessionData{}, fmt.Errorf("%w: nil request", ErrInvalidInput)
	}
	ctx := r.Context()
	info, ok := m.cfg.Sessions.Current(ctx)
	if !ok || info.Bearer || (info.SecondFactorPending && !pendingOK) {
		return session.Info{}, nil, webauthn.SessionData{}, session.ErrNotLoggedIn
	}
	want := ceremonyState{Ceremony: ceremony, UserID: info.UserID, Ref: info.Ref}
	_, sd, err := m.takeCeremony(ctx, sessionChallengeID(ceremony, info.UserID, info.Ref), want)
	if err != nil {
		return session.Info{}, nil, webauthn.SessionData{}, err
	}
	a, err := parseAssertion(response)
	if err != nil {
		return session.Info{}, nil, webauthn.SessionData{}, err
	}
	return info, a, sd, nil
}

// waCredential is c as go-webauthn checks an assertion against it.
func (c *credential) waCredential() webauthn.Credential {
	flags := protocol.FlagUserPresent
	if c.has(flagUVInitialized) {
		flags |= protocol.FlagUserVerified
	}
	if c.has(flagBackupEligible) {
		flags |= protocol.FlagBackupEligible
	}
	if c.has(flagBackupState) {
		flags |= protocol.FlagBackupState
	}
	transports := make([]protocol.AuthenticatorTransport, len(c.transports))
	for i, t := range c.transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID: c.id, PublicKey: c.publicKey, AttestationType: c.attType, AttestationFormat: c.attFormat,
		Transport: transports, Flags: webauthn.NewCredentialFlags(flags),
		Authenticator: webauthn.Authenticator{AAGUID: c.aaguid, SignCount: c.signCount},
	}
}

// verified is the outcome of a right assertion: the record with the
// credential's counter, flags and last use updated, not yet stored.
type verified struct {
	rec   *record
	index int
	clone bool // the counter did not grow (and the policy let it through)
}

// checkAssertion verifies a against rec (read from the store) for the
// ceremony sd: the WebAuthn checks of §7.2 (type, challenge, origin, RP
// ID hash, UP and UV, BE and BS, the signature with the stored key), the
// credential being one of rec's (and, for sd with allowed credentials,
// one of them), then the sign-count policy. It changes rec's copy of the
// credential only when every check passes (PKY-09).
func (m *Manager) checkAssertion(ctx context.Context, r *http.Request, a *assertion, rec *record, sd webauthn.SessionData, discoverable bool) (verified, error) {
	p := a.parsed
	i := rec.find(p.RawID)
	if i < 0 {
		m.dummyVerify(a)
		return verified{}, errRefused
	}
	c := &rec.creds[i]
	// All of the user's credentials: go-webauthn refuses an allow list
	// (the unlock ceremony's) naming a credential the user does not own.
	creds := make([]webauthn.Credential, len(rec.creds))
	for j := range rec.creds {
		creds[j] = rec.creds[j].waCredential()
	}
	user := &waUser{handle: rec.handle, name: rec.userID, creds: creds}
	var wc *webauthn.Credential
	var err error
	if discoverable {
		_, wc, err = m.wa.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if !sameBytes(userHandle, rec.handle) {
				return nil, errors.New("user handle of another user")
			}
			return user, nil
		}, sd, p)
	} else {
		wc, err = m.wa.ValidateLogin(user, sd, p)
	}
	if err != nil {
		m.audit(ctx, slog.LevelWarn, "authn_passkey_assertion_fail", rec.userID, attrCredential(c.id), slog.String("reason", reason(err)))
		return verified{}, errRefused
	}
	flags := p.Response.AuthenticatorData.Flags
	if !flags.HasUserPresent() || !flags.HasUserVerified() {
		return verified{}, errRefused
	}
	newCount := p.Response.AuthenticatorData.Counter
	clone := wc.Authenticator.CloneWarning
	if clone {
		refuse := m.cfg.SignCountPolicy == RejectAlways || (m.cfg.SignCountPolicy == RejectUnlessSynced && !c.has(flagBackupEligible))
		m.audit(ctx, slog.LevelWarn, "authn_passkey_clone_warning", rec.userID, attrCredential(c.id),
			slog.Uint64("stored_count", uint64(c.signCount)), slog.Uint64("count", uint64(newCount)), slog.Bool("refused", refuse))
		detail := c.name + ": accepted and flagged"
		if refuse {
			detail = c.name + ": refused"
		}
		m.notify(ctx, r, keyhold.PasskeyCloneWarning, rec.userID, detail)
		if refuse {
			return verified{}, fmt.Errorf("%w: %w", errRefused, ErrPossibleClone)
		}
		c.set(flagCloneWarning, true)
	} else {
		c.signCount = newCount
	}
	c.set(flagBackupState, flags.HasBackupState())
	c.lastUsed = m.cfg.Now().UTC()
	return verified{rec: rec, index: i, clone: clone}, nil
}

// dummyVerify does the work of a signature check for an assertion that
// names no credential of the user (or no user): an ECDSA P-256
// verification against a key of no one, so that an unknown credential
// answers as late as a wrong signature.
func (m *Manager) dummyVerify(a *assertion) {
	if a == nil || a.parsed == nil {
		return
	}
	h := sha256.New()
	h.Write(a.parsed.Raw.AssertionResponse.AuthenticatorData)
	cd := sha256.Sum256(a.parsed.Raw.AssertionResponse.ClientDataJSON)
	h.Write(cd[:])
	ecdsa.VerifyASN1(m.dummyKey, h.Sum(nil), a.parsed.Response.Signature)
}

// check runs one assertion attempt for userID through the lockout (if
// any): verify does the real check, and a locked account gets the dummy
// work instead. It returns nil, or an error that matches
// ratelimit.ErrRejected (wrong or locked), ErrPossibleClone too when the
// counter was refused, or a server error.
func (m *Manager) check(ctx context.Context, userID string, src ratelimit.Source, a *assertion, verify func(context.Context) error) error {
	var verr error
	run := func(ctx context.Context) error {
		verr = verify(ctx)
		return verr
	}
	if m.cfg.Lockout == nil {
		if err := run(ctx); err != nil {
			if errors.Is(err, ratelimit.ErrWrongCredential) {
				return fmt.Errorf("%w: %w", ratelimit.ErrRejected, err)
			}
			return err
		}
		return nil
	}
	err := m.cfg.Lockout.Check(ctx, userID, src, ratelimit.Credential{
		Verify: run,
		Dummy: func(ctx context.Context) error {
			// The real path's read and decode of the record, then a
			// signature check against no one's key.
			if sr, err := m.cfg.Store.GetPasskeys(ctx, userID); err == nil {
				decodeRecord(sr)
			}
			m.dummyVerify(a)
			return nil
		},
	})
	if err != nil && errors.Is(verr, ErrPossibleClone) {
		return fmt.Errorf("%w: %w", err, ErrPossibleClone)
	}
	return err
}

// storeVerified stores the updated record over the version it was read
// at: ErrConflict if another assertion or change came first.
func (m *Manager) storeVerified(ctx context.Context, v verified) error {
	err := m.save(ctx, v.rec)
	if errors.Is(err, storage.ErrConflict) {
		return ErrConflict
	}
	return err
}
