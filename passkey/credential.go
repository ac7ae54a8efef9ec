package passkey

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// A Credential describes one of a user's passkeys, without anything
// secret.
type Credential struct {
	// ID is the WebAuthn credential ID, unpadded base64url: what Rename
	// and Remove take.
	ID string
	// Name is the name the user gave it.
	Name string
	// Created is when it was registered; LastUsed when it last logged in
	// or unlocked (zero: never).
	Created, LastUsed time.Time
	// BackupEligible reports a passkey that can be synced to other
	// devices (the BE flag), and BackedUp one that is (the latest BS
	// flag).
	BackupEligible, BackedUp bool
	// Transports are how the browser reaches the authenticator
	// ("internal", "hybrid", "usb", …).
	Transports []string
	// AAGUID identifies the authenticator's model (16 bytes, often zero).
	// Only with Config.AttestationRoots has an attestation verified to
	// a configured root vouched for it; with "none" it is the
	// authenticator's own word.
	AAGUID []byte
	// AttestationFormat is the attestation statement's format ("none"
	// by default; "packed", "tpm", … with Config.AttestationRoots).
	AttestationFormat string
	// Algorithm is the COSE identifier of its signature algorithm (-7
	// ES256, -8 EdDSA, -257 RS256).
	Algorithm int
	// SignCount is the last signature counter seen.
	SignCount uint32
	// CloneWarning reports that its counter once failed to grow
	// (SignCountPolicy).
	CloneWarning bool
	// PRF reports that its authenticator supports the PRF extension: it
	// can unlock the vault once set up (FinishUnlock with the vault
	// unlocked sets it up).
	PRF bool
	// CanUnlock reports that the user's vault has a slot for it now:
	// FinishUnlock with it opens the vault. A master-key rotation drops
	// such slots; the next FinishUnlock with the vault unlocked adds the
	// slot back.
	CanUnlock bool
}

func encodeID(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }

// decodeID parses a Credential.ID; ErrNotFound for anything that is not
// one (no user has it).
func decodeID(s string) ([]byte, error) {
	if len(s) == 0 || len(s) > base64.RawURLEncoding.EncodedLen(storage.MaxCredentialIDLen) {
		return nil, ErrNotFound
	}
	id, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(id) == 0 {
		return nil, ErrNotFound
	}
	return id, nil
}

func (c *credential) public(canUnlock bool) Credential {
	return Credential{
		ID: encodeID(c.id), Name: c.name, Created: c.created, LastUsed: c.lastUsed,
		BackupEligible: c.has(flagBackupEligible), BackedUp: c.has(flagBackupState),
		Transports: append([]string(nil), c.transports...), AAGUID: append([]byte(nil), c.aaguid...),
		AttestationFormat: c.attFormat, Algorithm: int(c.alg), SignCount: c.signCount,
		CloneWarning: c.has(flagCloneWarning), PRF: c.has(flagPRF), CanUnlock: canUnlock,
	}
}

// unlockSlots returns the IDs of the user's secret slots at the vault's
// current key version (nil without a vault or without one for the user).
func (m *Manager) unlockSlots(ctx context.Context, userID string) (map[string]bool, error) {
	if m.cfg.Vault == nil {
		return nil, nil
	}
	slots, err := m.cfg.Vault.Slots(ctx, userID)
	if errors.Is(err, vault.ErrNoVault) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	latest := uint32(0)
	for _, s := range slots {
		latest = max(latest, s.KeyVersion)
	}
	ids := map[string]bool{}
	for _, s := range slots {
		if s.Kind == vault.SlotSecret && s.KeyVersion == latest {
			ids[s.ID] = true
		}
	}
	return ids, nil
}

func (m *Manager) canUnlock(slots map[string]bool, c *credential) bool {
	sid, err := vault.SecretSlotID(c.id)
	return err == nil && slots[sid] && c.has(flagPRF) && len(c.prfSalt) == prfSaltLen
}

// List returns the user's passkeys, oldest first (none: an empty list).
func (m *Manager) List(ctx context.Context, userID string) ([]Credential, error) {
	if m == nil {
		return nil, errNilManager
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	sr, err := m.cfg.Store.GetPasskeys(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return []Credential{}, nil
	}
	if err != nil {
		return nil, err
	}
	rec, err := decodeRecord(sr)
	if err != nil {
		return nil, err
	}
	slots, err := m.unlockSlots(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Credential, len(rec.creds))
	for i := range rec.creds {
		out[i] = rec.creds[i].public(m.canUnlock(slots, &rec.creds[i]))
	}
	return out, nil
}

// Enrolled reports whether the user has at least one passkey, as Has
// does; with it a Manager is a second factor that totp.Config's
// OtherFactors (and this package's Config.SecondFactors of another
// Manager) can ask about.
func (m *Manager) Enrolled(ctx context.Context, userID string) (bool, error) {
	return m.Has(ctx, userID)
}

// Has reports whether the user has at least one passkey.
func (m *Manager) Has(ctx context.Context, userID string) (bool, error) {
	if m == nil {
		return false, errNilManager
	}
	if err := checkUserID(userID); err != nil {
		return false, err
	}
	sr, err := m.cfg.Store.GetPasskeys(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return len(sr.CredentialIDs) > 0, nil
}

// Rename gives the user's passkey id a new name (1 to MaxNameLen bytes of
// UTF-8 without control characters). The request's session must be the
// user's, complete (session.ErrNotLoggedIn otherwise).
func (m *Manager) Rename(r *http.Request, userID, id, name string) error {
	if m == nil {
		return errNilManager
	}
	if err := checkName(name); err != nil {
		return err
	}
	if err := m.requireSession(r, userID); err != nil {
		return err
	}
	raw, err := decodeID(id)
	if err != nil {
		return err
	}
	return m.update(r.Context(), userID, func(rec *record) error {
		i := rec.find(raw)
		if i < 0 {
			return ErrNotFound
		}
		rec.creds[i].name = name
		return nil
	})
}

// Remove removes the user's passkey id at once: the next assertion with
// it fails (PKY-15). It needs what adding one needs: the request's
// session the user's, complete, authenticated within StepUpMaxAge and
// multi-factor (ErrStepUpRequired): a passkey step-up (FinishStepUp) with
// another passkey, or the password and TOTP. A user who lost their only
// passkey and has no other second factor cannot remove it with the
// password alone: that is the app's account recovery (Delete resets the
// passkeys), as it would be for a lost TOTP authenticator without codes. A passkey that can unlock the
// vault has its vault slot removed too, which needs the session's vault
// unlocked (ErrVaultLocked, and nothing changes). Then the user's other
// sessions are revoked, the current one is re-issued, and the Notifier
// hears keyhold.PasskeyRemoved.
func (m *Manager) Remove(r *http.Request, userID, id string) error {
	if m == nil {
		return errNilManager
	}
	if r == nil {
		return fmt.Errorf("%w: nil request", ErrInvalidInput)
	}
	ctx := r.Context()
	// The session first, so that nobody learns from the answer whether
	// another user has a passkey. Removing a passkey needs what adding
	// one needs (the user has one, so a multi-factor session): with the
	// password alone, an attacker could otherwise strip the passkeys and
	// bring the account down to the password's level, then add their own.
	if err := m.requireStepUp(r, userID, true); err != nil {
		return err
	}
	raw, err := decodeID(id)
	if err != nil {
		return err
	}
	rec, err := m.load(ctx, userID)
	if err != nil {
		return err
	}
	i := rec.find(raw)
	if i < 0 {
		return ErrNotFound
	}
	name := rec.creds[i].name
	sid, _ := vault.SecretSlotID(raw)
	if err := m.update(ctx, userID, func(rec *record) error {
		i := rec.find(raw)
		if i < 0 {
			return ErrNotFound
		}
		// The vault slot goes first: a passkey that stays listed can be
		// removed again, a slot left without its passkey could not be
		// seen. It is looked for after each read of the record: a
		// set-up that added a slot since wrote the record after it
		// (keepSlot), so this write conflicts and the next read finds
		// the slot.
		has, err := m.hasSlot(ctx, userID, sid)
		if err != nil {
			return err
		}
		if has {
			u, err := m.cfg.Sessions.Unlocked(ctx)
			if errors.Is(err, session.ErrLocked) {
				return ErrVaultLocked
			}
			if err != nil {
				return err
			}
			if err := m.cfg.Vault.RemoveSlot(ctx, u, sid); err != nil && !errors.Is(err, vault.ErrInvalidInput) {
				return err
			}
		}
		rec.creds = append(rec.creds[:i], rec.creds[i+1:]...)
		return nil
	}); err != nil {
		return err
	}
	m.audit(ctx, slog.LevelInfo, "authn_passkey_removed", userID, attrCredential(raw))
	m.notify(ctx, r, keyhold.PasskeyRemoved, userID, name)
	return m.afterChange(ctx, userID)
}

// hasSlot reports whether the vault has the secret slot sid at any key
// version (a slot of a retired version goes with its passkey too), in
// one read of the vault's slots; a read that fails is an error, never a
// "no" that would leave the slot behind its removed passkey.
func (m *Manager) hasSlot(ctx context.Context, userID, sid string) (bool, error) {
	if m.cfg.Vault == nil {
		return false, nil
	}
	slots, err := m.cfg.Vault.Slots(ctx, userID)
	if errors.Is(err, vault.ErrNoVault) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(slots, func(s vault.SlotInfo) bool { return s.ID == sid }), nil
}

// Delete removes all of the user's passkeys and their handle, and resets
// Config.Lockout's counters of the user, for account deletion
// (vault/account does it through Parts.Passkeys). It needs no session;
// the vault's slots go with the vault. Deleting a user without passkeys
// returns nil.
func (m *Manager) Delete(ctx context.Context, userID string) error {
	if m == nil {
		return errNilManager
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	for range 8 {
		sr, err := m.cfg.Store.GetPasskeys(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return m.resetLockout(ctx, userID)
		}
		if err != nil {
			return err
		}
		err = m.cfg.Store.DeletePasskeys(ctx, userID, sr.Version)
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		return m.resetLockout(ctx, userID)
	}
	return ErrConflict
}

// resetLockout forgets the lockout's counters of the user, for account
// deletion.
func (m *Manager) resetLockout(ctx context.Context, userID string) error {
	if m.cfg.Lockout == nil {
		return nil
	}
	return m.cfg.Lockout.Reset(ctx, userID)
}

// update applies change to the user's stored record by compare-and-swap,
// reading again on a conflict.
func (m *Manager) update(ctx context.Context, userID string, change func(*record) error) error {
	for range 8 {
		sr, err := m.cfg.Store.GetPasskeys(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		rec, err := decodeRecord(sr)
		if err != nil {
			return err
		}
		if err := change(rec); err != nil {
			return err
		}
		if err := m.save(ctx, rec); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return ErrConflict
}

// requireSession checks that the request's session is userID's and
// complete, as stored now.
func (m *Manager) requireSession(r *http.Request, userID string) error {
	if r == nil {
		return fmt.Errorf("%w: nil request", ErrInvalidInput)
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	info, err := m.cfg.Sessions.Recheck(r.Context())
	if err != nil {
		return err
	}
	if info.UserID != userID || info.SecondFactorPending {
		return session.ErrNotLoggedIn
	}
	return nil
}

// requireStepUp enforces PKY-15 for a change to the user's passkeys: the
// request's session is the user's, complete, a cookie session,
// authenticated within StepUpMaxAge, and multi-factor if the user has a
// passkey or another second factor; checked against the session as
// stored now.
func (m *Manager) requireStepUp(r *http.Request, userID string, hasPasskey bool) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	info, err := m.cfg.Sessions.Recheck(r.Context())
	if err != nil && !errors.Is(err, session.ErrNotLoggedIn) {
		return err
	}
	if err != nil || info.UserID != userID || info.SecondFactorPending || info.Bearer ||
		m.cfg.Now().Sub(info.AuthTime) > m.cfg.StepUpMaxAge {
		return ErrStepUpRequired
	}
	needMFA := hasPasskey
	if !needMFA && m.cfg.SecondFactors != nil {
		if needMFA, err = m.cfg.SecondFactors.Enrolled(r.Context(), userID); err != nil {
			return err
		}
	}
	if needMFA && !info.MultiFactor {
		return ErrStepUpRequired
	}
	return nil
}

// afterChange revokes the user's other sessions and re-issues the
// current one (a privilege change).
func (m *Manager) afterChange(ctx context.Context, userID string) error {
	if info, ok := m.cfg.Sessions.Current(ctx); !ok || info.UserID != userID {
		return m.cfg.Sessions.RevokeAll(ctx, userID)
	}
	if err := m.cfg.Sessions.RevokeOthers(ctx); err != nil {
		return fmt.Errorf("passkey: the change is stored, but revoking the other sessions failed: %w", err)
	}
	if err := m.cfg.Sessions.Renew(ctx); err != nil {
		return fmt.Errorf("passkey: the change is stored, but re-issuing the session failed: %w", err)
	}
	return nil
}

var errNilManager = fmt.Errorf("%w: nil *passkey.Manager", ErrInvalidInput)

func checkUserID(userID string) error {
	if userID == "" || len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("%w: user ID of %d bytes", ErrInvalidInput, len(userID))
	}
	return nil
}
