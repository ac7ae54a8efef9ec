package passkey

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// waUser is a user as go-webauthn sees one: the random handle, never the
// app's user ID (PKY-12).
type waUser struct {
	handle []byte
	name   string
	creds  []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.name }
func (u *waUser) WebAuthnDisplayName() string                { return u.name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// BeginRegistration starts adding a passkey for the request's user and
// returns the options for the browser: the JSON of a
// CredentialCreationOptions ({"publicKey": …}), whose publicKey member
// PublicKeyCredential.parseCreationOptionsFromJSON takes. accountName is
// what the authenticator shows to tell accounts apart (the user's email
// or login name; 1 to 64 bytes).
//
// The request's session must be the user's, complete, recent
// (StepUpMaxAge) and multi-factor if the user has a passkey or another
// second factor (ErrStepUpRequired, PKY-15; Remove needs as much, so the
// password alone cannot bring an account down to its level); its origin must be
// listed (ErrOrigin). The passkey is discoverable, with user verification
// required, ES256 or EdDSA, "none" attestation ("direct" with
// Config.AttestationRoots), and the PRF extension
// evaluated with a new random salt for it. The challenge is kept
// server-side, bound to this session, for CeremonyTimeout; beginning
// again replaces it.
func (m *Manager) BeginRegistration(r *http.Request, accountName string) ([]byte, error) {
	if m == nil {
		return nil, errNilManager
	}
	origin, err := m.requestOrigin(r)
	if err != nil {
		return nil, err
	}
	if checkName(accountName) != nil {
		return nil, fmt.Errorf("%w: an account name is 1 to %d bytes of UTF-8", ErrInvalidInput, MaxNameLen)
	}
	ctx := r.Context()
	info, ok := m.cfg.Sessions.Current(ctx)
	if !ok {
		return nil, ErrStepUpRequired
	}
	rec, err := m.load(ctx, info.UserID)
	if err != nil {
		return nil, err
	}
	if err := m.requireStepUp(r, info.UserID, rec.passkeyLevel()); err != nil {
		return nil, err
	}
	if len(rec.creds) >= storage.MaxPasskeysPerUser {
		return nil, ErrTooManyPasskeys
	}
	exclude := make([]protocol.CredentialDescriptor, len(rec.creds))
	for i := range rec.creds {
		exclude[i] = protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: rec.creds[i].id}
	}
	salt := make([]byte, prfSaltLen)
	rand.Read(salt)
	opts, sd, err := m.wa.BeginRegistration(&waUser{handle: rec.handle, name: accountName},
		webauthn.WithCredentialParameters(m.algorithms()),
		webauthn.WithExclusions(exclude),
		webauthn.WithRegistrationOrigin(origin),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps(), webauthn.WithExtensionPRF(protocol.PRFValues{First: salt})),
	)
	if err != nil {
		return nil, fmt.Errorf("passkey: registration options: %w", err)
	}
	st := ceremonyState{Ceremony: ceremonyRegister, UserID: info.UserID, Ref: info.Ref, Origin: origin, Handle: rec.handle, Salt: salt}
	if err := m.putCeremony(ctx, sessionChallengeID(ceremonyRegister, info.UserID, info.Ref), st, sd); err != nil {
		return nil, err
	}
	return json.Marshal(opts)
}

// FinishRegistration completes BeginRegistration with the browser's
// answer (the JSON of the PublicKeyCredential, as toJSON gives it, at
// most MaxResponseLen bytes) and stores the passkey under name (what the
// user calls it; 1 to MaxNameLen bytes).
//
// The ceremony's challenge is used up whatever the outcome: another
// session's, a used or an expired one is ErrChallenge. The session is
// checked again as for BeginRegistration. The answer must be a
// webauthn.create for this origin and RP ID with the user present and
// verified, an allowed algorithm and a credential ID of at most 1023
// bytes that no user has (ErrRegistrationFailed, ErrCredentialInUse).
// With Config.AttestationRoots, its attestation statement must also carry
// a certificate chain to one of them, valid at Now (ErrRegistrationFailed,
// PKY-13).
//
// If the authenticator returned the PRF output and the session's vault is
// unlocked, the passkey gets a vault slot at once (Credential.CanUnlock);
// otherwise the first FinishUnlock with the vault unlocked adds it. Then
// the user's other sessions are revoked, this one is re-issued, and the
// Notifier hears keyhold.PasskeyAdded.
func (m *Manager) FinishRegistration(r *http.Request, response []byte, name string) (Credential, error) {
	if m == nil {
		return Credential{}, errNilManager
	}
	if r == nil {
		return Credential{}, fmt.Errorf("%w: nil request", ErrInvalidInput)
	}
	if err := checkName(name); err != nil {
		return Credential{}, err
	}
	ctx := r.Context()
	info, ok := m.cfg.Sessions.Current(ctx)
	if !ok {
		return Credential{}, ErrStepUpRequired
	}
	want := ceremonyState{Ceremony: ceremonyRegister, UserID: info.UserID, Ref: info.Ref}
	st, sd, err := m.takeCeremony(ctx, sessionChallengeID(ceremonyRegister, info.UserID, info.Ref), want)
	if err != nil {
		return Credential{}, err
	}
	if len(response) == 0 || len(response) > MaxResponseLen {
		return Credential{}, ErrInvalidResponse
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Credential{}, fmt.Errorf("%w: %v", ErrInvalidResponse, reason(err))
	}
	defer func() { // the PRF output is key material: wiped on every path
		if p := parsed.ClientExtensionResults.PRF; p != nil && p.Results != nil {
			clear(p.Results.First)
			clear(p.Results.Second)
		}
	}()
	rec, err := m.load(ctx, info.UserID)
	if err != nil {
		return Credential{}, err
	}
	if err := m.requireStepUp(r, info.UserID, rec.passkeyLevel()); err != nil {
		return Credential{}, err
	}
	if rec.version == 0 {
		rec.handle = st.Handle // the user's first passkey: the handle it was made for
	}
	if !sameBytes(rec.handle, st.Handle) {
		// The user's record was made by another registration since
		// this one began, with another handle.
		return Credential{}, ErrConflict
	}
	wc, err := m.wa.CreateCredential(&waUser{handle: st.Handle, name: info.UserID}, sd, parsed)
	if err != nil {
		m.audit(ctx, slog.LevelWarn, "authn_passkey_register_fail", info.UserID, slog.String("reason", reason(err)))
		return Credential{}, fmt.Errorf("%w: %s", ErrRegistrationFailed, reason(err))
	}
	if m.cfg.AttestationRoots != nil {
		if err := checkAttestation(&parsed.Response.AttestationObject, m.cfg.AttestationRoots, m.cfg.Now()); err != nil {
			m.audit(ctx, slog.LevelWarn, "authn_passkey_register_fail", info.UserID, slog.String("reason", err.Error()))
			return Credential{}, fmt.Errorf("%w: %v", ErrRegistrationFailed, err)
		}
	}
	flags := parsed.Response.AttestationObject.AuthData.Flags
	var key webauthncose.PublicKeyData
	switch {
	case len(wc.ID) == 0 || len(wc.ID) > storage.MaxCredentialIDLen:
		return Credential{}, fmt.Errorf("%w: credential ID of %d bytes", ErrRegistrationFailed, len(wc.ID))
	case !flags.HasUserPresent() || !flags.HasUserVerified():
		return Credential{}, fmt.Errorf("%w: user not present and verified", ErrRegistrationFailed)
	case !flags.HasBackupEligible() && flags.HasBackupState():
		return Credential{}, fmt.Errorf("%w: backed up but not backup eligible", ErrRegistrationFailed)
	case webauthncbor.Unmarshal(wc.PublicKey, &key) != nil || !m.algAllowed(key.Algorithm):
		return Credential{}, fmt.Errorf("%w: signature algorithm not allowed", ErrRegistrationFailed)
	case len(wc.PublicKey) > maxPublicKeyLen:
		return Credential{}, fmt.Errorf("%w: public key of %d bytes", ErrRegistrationFailed, len(wc.PublicKey))
	}
	var prfOutput []byte
	prfEnabled := false
	if p := parsed.ClientExtensionResults.PRF; p != nil {
		prfEnabled = p.Enabled != nil && *p.Enabled
		if p.Results != nil && len(p.Results.First) >= vault.MinSecretLen && len(p.Results.First) <= vault.MaxSecretLen {
			prfEnabled, prfOutput = true, p.Results.First
		}
	}
	defer clear(prfOutput)
	c := credential{
		id: wc.ID, publicKey: wc.PublicKey, alg: int32(key.Algorithm), signCount: wc.Authenticator.SignCount,
		attType: shortString(wc.AttestationType), attFormat: shortString(wc.AttestationFormat),
		created: m.cfg.Now().UTC(), name: name,
	}
	for _, t := range wc.Transport {
		if len(c.transports) < maxTransports && len(t) > 0 && len(t) <= maxShortField {
			c.transports = append(c.transports, string(t))
		}
	}
	if len(wc.Authenticator.AAGUID) == aaguidLen {
		c.aaguid = wc.Authenticator.AAGUID
	}
	c.set(flagUVInitialized, true)
	c.set(flagBackupEligible, flags.HasBackupEligible())
	c.set(flagBackupState, flags.HasBackupState())
	if prfEnabled {
		c.set(flagPRF, true)
		c.prfSalt = st.Salt
	}
	if rec.find(c.id) >= 0 {
		return Credential{}, ErrCredentialInUse
	}
	if len(rec.creds) >= storage.MaxPasskeysPerUser {
		return Credential{}, ErrTooManyPasskeys
	}
	rec.creds = append(rec.creds, c)
	created := rec.version == 0
	if err := m.save(ctx, rec); err != nil {
		if errors.Is(err, ErrCredentialInUse) {
			m.audit(ctx, slog.LevelWarn, "authn_passkey_register_fail", info.UserID, slog.String("reason", "credential_in_use"), attrCredential(c.id))
		}
		return Credential{}, err
	}
	// The session as stored now: one that ended since the check above (its
	// user's account deleted, or the user logged out everywhere) must not
	// leave a passkey behind, nor re-create a deleted user's record.
	if _, err := m.cfg.Sessions.Recheck(ctx); err != nil {
		if uerr := m.undoRegistration(ctx, info.UserID, c.id, created); uerr != nil {
			return Credential{}, uerr
		}
		if errors.Is(err, session.ErrNotLoggedIn) {
			return Credential{}, ErrStepUpRequired
		}
		return Credential{}, err
	}
	canUnlock := false
	if prfOutput != nil && m.cfg.Vault != nil {
		if u, err := m.cfg.Sessions.Unlocked(ctx); err == nil {
			if err := m.cfg.Vault.AddSecretSlot(ctx, u, c.id, prfOutput); err != nil {
				m.audit(ctx, slog.LevelWarn, "authn_passkey_unlock_setup_fail", info.UserID, attrCredential(c.id), slog.String("error", reason(err)))
			} else if canUnlock, err = m.keepSlot(ctx, u, info.UserID, c.id); err != nil {
				return Credential{}, err
			}
		} else if !errors.Is(err, session.ErrLocked) {
			return Credential{}, err
		}
	}
	m.audit(ctx, slog.LevelInfo, "authn_passkey_register", info.UserID, attrCredential(c.id),
		slog.Bool("prf", prfEnabled), slog.Bool("can_unlock", canUnlock), slog.Bool("backup_eligible", c.has(flagBackupEligible)))
	m.notify(ctx, r, keyhold.PasskeyAdded, info.UserID, name)
	return c.public(canUnlock), m.afterChange(ctx, info.UserID)
}

// undoRegistration takes back a credential just stored for a session
// that ended meanwhile, by compare-and-swap; and the record with it if
// this registration created it and it is empty again (a deleted account
// gets no record back; an existing record stays, emptied or not).
func (m *Manager) undoRegistration(ctx context.Context, userID string, id []byte, created bool) error {
	for range 8 {
		sr, err := m.cfg.Store.GetPasskeys(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := decodeRecord(sr)
		if err != nil {
			return err
		}
		i := rec.find(id)
		if i < 0 {
			return nil
		}
		rec.creds = append(rec.creds[:i], rec.creds[i+1:]...)
		if created && len(rec.creds) == 0 {
			err = m.cfg.Store.DeletePasskeys(ctx, userID, rec.version)
		} else {
			err = m.save(ctx, rec)
		}
		if !errors.Is(err, storage.ErrConflict) && !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return ErrConflict
}

// reason is a short, secret-free description of a WebAuthn check's
// failure for the logs: the library's error type and details, never the
// answer's bytes.
func reason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Type + ": " + pe.Details
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func shortString(s string) string {
	if len(s) > maxShortField {
		return s[:maxShortField]
	}
	return s
}
