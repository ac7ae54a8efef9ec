package totp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/recoverycode"
	"github.com/keyhold/keyhold/ratelimit"
)

// A RecoveryCode is a login recovery code: it stands in for the second
// factor once, when the user's authenticator is lost. It is written in
// the same format as a vault recovery key (package vault): 160 bits from
// crypto/rand as 32 characters of Crockford's base32 in eight groups of
// four; input ignores case, spaces and dashes, and reads O, I and L as 0,
// 1 and 1.
//
// 160 bits is why a fast keyed hash is safe to store: the store keeps
// HMAC-SHA-256(salt, user, code) with a 128-bit random salt per set, and
// finding a code from its hash means searching 2^160 codes, far beyond
// the 112 bits under which NIST SP 800-63B §3.1.2.2 asks for a slow,
// salted password hash (TOT-10). Show the codes once; they are never
// stored in the clear.
type RecoveryCode struct {
	code      string
	generated int64 // its set's RecoveryStatus.Generated, in Unix milliseconds
}

// Reveal returns the code's text, grouped for display. It is the only way
// to read it: String and Format redact it.
func (c RecoveryCode) Reveal() string { return c.code }

// Generated returns when the code's set was made: the RecoveryStatus's
// Generated while that set is the user's. Each new set of a user gets a
// later time than the set it replaces (a millisecond later at least), so
// it tells the user's sets apart: an application that asks the user to
// confirm they saved the codes it showed can record this time, and ask
// again whenever RecoveryCodes reports another one (a set whose page
// never reached the user).
func (c RecoveryCode) Generated() time.Time {
	if c.generated == 0 {
		return time.Time{}
	}
	return time.UnixMilli(c.generated)
}

// String returns "[redacted]".
func (c RecoveryCode) String() string { return "[redacted]" }

// GoString returns "[redacted]".
func (c RecoveryCode) GoString() string { return "[redacted]" }

// Format prints "[redacted]" for every verb.
func (c RecoveryCode) Format(f fmt.State, _ rune) { fmt.Fprint(f, "[redacted]") }

// MarshalText fails, so a code is not logged or stored by accident.
func (c RecoveryCode) MarshalText() ([]byte, error) {
	return nil, fmt.Errorf("%w: a recovery code is not marshalled", ErrInvalidInput)
}

// RecoveryStatus describes the user's recovery codes.
type RecoveryStatus struct {
	// Remaining is how many codes are left unused.
	Remaining int
	// Total is how many the set had.
	Total int
	// Low is set when Remaining is at or below Config.LowRecoveryCodes
	// (and the user has a set): ask the user to make a new set.
	Low bool
	// Generated is when the set was made (zero: the user has none).
	Generated time.Time
}

func (a *Authenticator) status(rec *factorRecord) RecoveryStatus {
	st := RecoveryStatus{Remaining: len(rec.hashes), Total: int(rec.total)}
	if rec.generated != 0 {
		st.Generated = time.UnixMilli(rec.generated)
		st.Low = st.Remaining <= a.cfg.LowRecoveryCodes
	}
	return st
}

// testHookRecoveryHash, if a test sets it, is called for every
// recovery-code hash computed (to count the work of each path).
var testHookRecoveryHash func()

// recoveryHash is what the store keeps of a code: HMAC-SHA-256 keyed with
// the set's salt, over a label, the user ID and the code's secret.
func recoveryHash(salt []byte, userID string, secret []byte) [recoveryHashLen]byte {
	if testHookRecoveryHash != nil {
		testHookRecoveryHash()
	}
	mac := hmac.New(sha256.New, salt)
	mac.Write(appendString16(nil, "keyhold/totp/recovery/v1"))
	mac.Write(appendString16(nil, userID))
	mac.Write(secret)
	var h [recoveryHashLen]byte
	mac.Sum(h[:0])
	return h
}

// newRecoverySet replaces the record's codes with a fresh set and returns
// the codes.
func (a *Authenticator) newRecoverySet(rec *factorRecord, userID string, now time.Time) []RecoveryCode {
	randRead(rec.salt[:])
	// Later than the set it replaces, even within one millisecond or
	// with the clock set back: the time tells the sets apart
	// (RecoveryCode.Generated).
	rec.generated = max(now.UnixMilli(), rec.generated+1)
	rec.total, rec.hashes = byte(a.cfg.RecoveryCodes), nil
	codes := make([]RecoveryCode, 0, a.cfg.RecoveryCodes)
	for range a.cfg.RecoveryCodes {
		text, secret := recoverycode.New()
		rec.hashes = append(rec.hashes, recoveryHash(rec.salt[:], userID, secret))
		clear(secret)
		codes = append(codes, RecoveryCode{code: text, generated: rec.generated})
	}
	return codes
}

// RecoveryCodes returns the state of the user's recovery codes.
func (a *Authenticator) RecoveryCodes(ctx context.Context, userID string) (RecoveryStatus, error) {
	if a == nil {
		return RecoveryStatus{}, errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return RecoveryStatus{}, err
	}
	rec, _, err := a.load(ctx, userID)
	if err != nil {
		return RecoveryStatus{}, err
	}
	return a.status(rec), nil
}

// RegenerateRecoveryCodes makes a new set of Config.RecoveryCodes codes
// and returns them, to show once; every code of the old set stops
// working in the same write. With Config.Sessions it needs a fresh
// step-up (multi-factor if the user has an authenticator) and afterwards
// revokes the user's other sessions and re-issues the current one. The
// Notifier hears keyhold.LoginRecoveryCodesRegenerated.
func (a *Authenticator) RegenerateRecoveryCodes(ctx context.Context, userID string) ([]RecoveryCode, error) {
	if a == nil {
		return nil, errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	rec, _, err := a.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := a.requireStepUp(ctx, userID, len(rec.creds) > 0); err != nil {
		return nil, err
	}
	var codes []RecoveryCode
	err = a.update(ctx, userID, func(rec *factorRecord) error {
		// Again, at the version written (see Confirm).
		if err := a.requireStepUp(ctx, userID, len(rec.creds) > 0); err != nil {
			return err
		}
		codes = a.newRecoverySet(rec, userID, a.cfg.Now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.audit(ctx, slog.LevelInfo, "authn_recovery_codes_created", userID, slog.Int("codes", len(codes)))
	a.notify(ctx, keyhold.LoginRecoveryCodesRegenerated, userID, "", ratelimit.Source{})
	return codes, a.afterChange(ctx, userID, 0)
}

// matchRecovery returns the index of the hash that secret matches, or -1,
// comparing with every hash, in constant time and with no early exit
// (TOT-11).
func matchRecovery(rec *factorRecord, userID string, secret []byte) int {
	h := recoveryHash(rec.salt[:], userID, secret)
	found, idx := 0, 0
	for i := range rec.hashes {
		eq := subtle.ConstantTimeCompare(h[:], rec.hashes[i][:])
		idx = subtle.ConstantTimeSelect(eq&^found, i, idx)
		found |= eq
	}
	if found == 0 {
		return -1
	}
	return idx
}

// UseRecoveryCode checks a recovery code, through the Lockout, and uses
// it up: the code's hash is removed with a compare-and-swap, so of any
// number of requests racing with one code exactly one succeeds. Input is
// normalised (case, spaces, dashes, look-alike letters). Right, wrong,
// malformed and locked cost the same work.
//
// It returns the codes' state after the use (RecoveryStatus.Low: ask the
// user to make a new set); an error matching ratelimit.ErrRejected for a
// wrong or used code or a locked account; ErrNotEnrolled for a user
// without recovery codes. The Notifier hears
// keyhold.LoginRecoveryCodeUsed. UseRecoveryCode only checks the code: at
// login, use RecoverLogin.
func (a *Authenticator) UseRecoveryCode(ctx context.Context, userID, code string, src ratelimit.Source) (RecoveryStatus, error) {
	if a == nil {
		return RecoveryStatus{}, errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return RecoveryStatus{}, err
	}
	rec, version, err := a.load(ctx, userID)
	if err != nil {
		return RecoveryStatus{}, err
	}
	if rec.generated == 0 {
		return RecoveryStatus{}, ErrNotEnrolled
	}
	secret, wellFormed := recoverycode.Parse(code)
	if !wellFormed {
		secret = make([]byte, recoverycode.Bytes) // the same work, matching nothing
	}
	var st RecoveryStatus
	verify := func(ctx context.Context) error {
		for range maxCASRetries {
			i := matchRecovery(rec, userID, secret)
			if i < 0 || !wellFormed {
				return ErrWrongCode
			}
			rec.hashes = slices.Delete(rec.hashes, i, i+1)
			err := a.cfg.Store.PutFactors(ctx, userID, rec.encode(), version)
			if err == nil {
				st = a.status(rec)
				return nil
			}
			if !isConflict(err) {
				return err
			}
			if rec, version, err = a.load(ctx, userID); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, ErrBusy)
	}
	dummy := func(context.Context) error {
		matchRecovery(rec, userID, secret)
		return ErrWrongCode
	}
	if err := a.cfg.Lockout.Check(ctx, userID, src, ratelimit.Credential{Verify: verify, Dummy: dummy, Wrong: isWrongCode}); err != nil {
		return RecoveryStatus{}, err
	}
	a.audit(ctx, slog.LevelWarn, "authn_recovery_code_used", userID, slog.Int("remaining", st.Remaining), slog.Bool("low", st.Low))
	a.notify(ctx, keyhold.LoginRecoveryCodeUsed, userID, strconv.Itoa(st.Remaining), src)
	return st, nil
}
