package totp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"slices"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
)

const setupFormat = 1

// An Enrollment is a TOTP authenticator being set up: a fresh secret that
// nothing stores yet. Show its QR code (or its secret, for typing) to the
// user, keep its Token with the confirmation form, and call Confirm with
// the first code the user's app shows.
//
// The secret is in the URI, the QR code and Secret: send them only to the
// user, over the authenticated session, and never log them; String and
// the fmt verbs redact them.
type Enrollment struct {
	// Token is the setup token: the pending secret and its parameters,
	// sealed by the Authenticator's Sealer and bound to the user
	// (FORMAT.md §6.3). It is safe to put in a hidden form field or a
	// session; it works once, until Expires.
	Token string
	// Expires is when the token stops being accepted.
	Expires time.Time

	key *otp.Key
}

// URI returns the otpauth:// URI (issuer, account, secret, algorithm,
// digits, period) that authenticator apps read from the QR code.
func (e *Enrollment) URI() string {
	if e == nil || e.key == nil {
		return ""
	}
	return e.key.URL()
}

// Secret returns the secret in base32, for users who type it into their
// app instead of scanning the QR code.
func (e *Enrollment) Secret() string {
	if e == nil || e.key == nil {
		return ""
	}
	return e.key.Secret()
}

// QRCode returns the URI as a QR code, a PNG image of size×size pixels
// (100 to 1000).
func (e *Enrollment) QRCode(size int) ([]byte, error) {
	if e == nil || e.key == nil {
		return nil, fmt.Errorf("%w: no enrollment", ErrInvalidInput)
	}
	if size < 100 || size > 1000 {
		return nil, fmt.Errorf("%w: QR code size must be 100 to 1000 pixels", ErrInvalidInput)
	}
	img, err := e.key.Image(size, size)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// String returns a description without the secret.
func (e *Enrollment) String() string { return "totp.Enrollment{secret: [redacted]}" }

// GoString returns the same as String.
func (e *Enrollment) GoString() string { return e.String() }

// Format prints String for every verb.
func (e *Enrollment) Format(f fmt.State, _ rune) { fmt.Fprint(f, e.String()) }

// setup is what a setup token seals.
type setup struct {
	id       [credIDLen]byte
	removals uint64 // the user's factorRecord.removals at Begin
	expires  int64  // Unix ms
	alg      byte
	digits   byte
	period   uint16
	account  string
	secret   []byte
}

func (s *setup) encode() []byte {
	b := []byte{setupFormat}
	b = append(b, s.id[:]...)
	b = binary.BigEndian.AppendUint64(b, s.removals)
	b = binary.BigEndian.AppendUint64(b, uint64(s.expires))
	b = append(b, s.alg, s.digits)
	b = binary.BigEndian.AppendUint16(b, s.period)
	b = append(b, byte(len(s.account)))
	b = append(b, s.account...)
	b = append(b, byte(len(s.secret)))
	return append(b, s.secret...)
}

func decodeSetup(b []byte) (*setup, bool) {
	r := &reader{b: b, ok: true}
	if r.u8() != setupFormat {
		return nil, false
	}
	s := &setup{}
	copy(s.id[:], r.take(credIDLen))
	s.removals = r.u64()
	s.expires = r.i64()
	s.alg, s.digits, s.period = r.u8(), r.u8(), r.u16()
	s.account = r.str(int(r.u8()))
	s.secret = slices.Clone(r.take(int(r.u8())))
	if !r.ok || len(r.b) != 0 || !validParams(s.alg, s.digits, s.period) || len(s.secret) < 20 {
		return nil, false
	}
	return s, true
}

func (s *setup) enrollment(issuer, token string) (*Enrollment, error) {
	d := otp.DigitsSix
	if s.digits == 8 {
		d = otp.DigitsEight
	}
	key, err := pqtotp.Generate(pqtotp.GenerateOpts{Issuer: issuer, AccountName: s.account, Period: uint(s.period),
		Secret: s.secret, Digits: d, Algorithm: Algorithm(s.alg).otp()})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return &Enrollment{Token: token, Expires: time.UnixMilli(s.expires), key: key}, nil
}

// Begin starts setting up a TOTP authenticator for userID: a new secret
// (160 bits or more from crypto/rand), sealed into the returned
// Enrollment's Token. It stores nothing (it reads the user's record, to
// bind the token to its count of removed authenticators): an enrollment
// never confirmed leaves no trace. accountName is what the user's app shows under the
// issuer (an email address, a user name; 1 to MaxNameLen bytes, no
// colon).
func (a *Authenticator) Begin(ctx context.Context, userID, accountName string) (*Enrollment, error) {
	if a == nil {
		return nil, errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	if accountName == "" || len(accountName) > MaxNameLen || bytes.ContainsAny([]byte(accountName), ":\x00") {
		return nil, fmt.Errorf("%w: account name must be 1 to %d bytes without a colon", ErrInvalidInput, MaxNameLen)
	}
	rec, _, err := a.load(ctx, userID) // a read only: Begin stores nothing
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	s := &setup{id: newID(), removals: rec.removals, expires: now.Add(a.cfg.SetupLifetime).UnixMilli(), alg: byte(a.cfg.Algorithm),
		digits: byte(a.cfg.Digits), period: a.period, account: accountName,
		secret: make([]byte, a.cfg.Algorithm.secretLen())}
	randRead(s.secret)
	sealed, err := a.cfg.Sealer.Seal(ctx, userID, s.encode(), setupAD(userID))
	if err != nil {
		return nil, err
	}
	return s.enrollment(a.cfg.Issuer, base64.RawURLEncoding.EncodeToString(sealed))
}

// openSetup opens a setup token for userID.
func (a *Authenticator) openSetup(ctx context.Context, userID, token string) (*setup, error) {
	if len(token) > MaxSetupTokenLen {
		return nil, fmt.Errorf("%w: setup token over %d bytes", ErrInvalidInput, MaxSetupTokenLen)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, ErrSetupInvalid
	}
	pt, err := a.cfg.Sealer.Open(ctx, userID, sealed, setupAD(userID))
	if errors.Is(err, ErrVaultLocked) {
		return nil, err
	}
	if err != nil {
		return nil, ErrSetupInvalid
	}
	s, ok := decodeSetup(pt)
	if !ok {
		return nil, ErrSetupInvalid
	}
	if a.cfg.Now().UnixMilli() >= s.expires {
		return nil, ErrSetupExpired
	}
	return s, nil
}

// Pending reopens a setup token, to show its QR code again (after a wrong
// code, say). Once the token's authenticator is confirmed, its secret is
// never shown again: Pending returns ErrAlreadyConfirmed (TOT-07), also
// after the authenticator is removed.
func (a *Authenticator) Pending(ctx context.Context, userID, token string) (*Enrollment, error) {
	if a == nil {
		return nil, errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	s, err := a.openSetup(ctx, userID, token)
	if err != nil {
		return nil, err
	}
	rec, _, err := a.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	if rec.used(s) {
		return nil, ErrAlreadyConfirmed
	}
	return s.enrollment(a.cfg.Issuer, token)
}

// used reports whether a setup token can no longer be used: its
// authenticator is enrolled, or was enrolled and removed. A removal is
// listed in retired until every token begun before it has expired; if
// more authenticators were removed since the token's Begin than retired
// still lists (or the record is older than the token), the token is
// refused too, as one of them may be its own.
func (r *factorRecord) used(s *setup) bool {
	if r.find(s.id) >= 0 || slices.ContainsFunc(r.retired, func(x retiredID) bool { return x.id == s.id }) {
		return true
	}
	return s.removals > r.removals || r.removals-s.removals > uint64(len(r.retired))
}

func (r *factorRecord) find(id [credIDLen]byte) int {
	return slices.IndexFunc(r.creds, func(c cred) bool { return c.id == id })
}

// ConfirmOptions vary Confirm.
type ConfirmOptions struct {
	// Name labels the authenticator in Authenticators ("Phone"), 0 to
	// MaxNameLen bytes.
	Name string
	// Replace is the ID of an authenticator that the new one replaces
	// (re-enrollment): it is removed in the same write.
	Replace string
}

// Confirmed is what Confirm returns.
type Confirmed struct {
	// Authenticator describes the new authenticator.
	Authenticator AuthenticatorInfo
	// RecoveryCodes is a new set of login recovery codes when the user had
	// none (their first second factor): show them once. Nil otherwise.
	RecoveryCodes []RecoveryCode
}

// Confirm completes an enrollment: if code is right for the setup
// token's secret (at the current step ±1), the authenticator is stored,
// its secret sealed, with the code's step as its last accepted one, so
// the confirming code cannot be used again to log in. The code goes
// through the Lockout like every other. A token works once
// (ErrAlreadyConfirmed), only for its user (ErrSetupInvalid), and only
// until it expires (ErrSetupExpired).
//
// With Config.Sessions, Confirm needs a fresh step-up (ErrStepUpRequired)
// and afterwards revokes the user's other sessions and re-issues the
// current one, marked with session.FactorTOTP (the user has just proved
// the password, recently, and the new authenticator: the session is
// multi-factor, as later changes require). The Notifier hears keyhold.SecondFactorEnabled (and
// SecondFactorRemoved for a replaced one).
//
// A wrong code returns an error matching ratelimit.ErrRejected and
// ErrWrongCode: show the form again (Pending).
func (a *Authenticator) Confirm(ctx context.Context, userID, token, code string, src ratelimit.Source, opts ConfirmOptions) (Confirmed, error) {
	if a == nil {
		return Confirmed{}, errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return Confirmed{}, err
	}
	if len(opts.Name) > MaxNameLen {
		return Confirmed{}, fmt.Errorf("%w: name over %d bytes", ErrInvalidInput, MaxNameLen)
	}
	var replace [credIDLen]byte
	if opts.Replace != "" {
		if n, err := hex.Decode(replace[:], []byte(opts.Replace[:min(len(opts.Replace), 2*credIDLen)])); err != nil || n != credIDLen || len(opts.Replace) != 2*credIDLen {
			return Confirmed{}, fmt.Errorf("%w: Replace is not an authenticator ID", ErrInvalidInput)
		}
		opts.Replace = hex.EncodeToString(replace[:]) // as Authenticators lists it, for the logs and notices
	}
	s, err := a.openSetup(ctx, userID, token)
	if err != nil {
		return Confirmed{}, err
	}
	rec, _, err := a.load(ctx, userID)
	if err != nil {
		return Confirmed{}, err
	}
	if err := a.requireStepUp(ctx, userID, len(rec.creds) > 0); err != nil {
		return Confirmed{}, err
	}
	if rec.used(s) {
		return Confirmed{}, ErrAlreadyConfirmed
	}
	var m match
	check := func(context.Context) error {
		m = a.matchCode(s.secret, s.alg, s.digits, s.period, 0, code, a.cfg.Now())
		if !m.found {
			return ErrWrongCode
		}
		return nil
	}
	dummy := func(ctx context.Context) error { check(ctx); return ErrWrongCode }
	if err := a.cfg.Lockout.Check(ctx, userID, src, ratelimit.Credential{Verify: check, Dummy: dummy, Wrong: isWrongCode}); err != nil {
		return Confirmed{}, err
	}
	sealed, err := a.cfg.Sealer.Seal(ctx, userID, s.secret, secretAD(userID, s.id))
	if err != nil {
		return Confirmed{}, err
	}
	now := a.cfg.Now()
	newCred := cred{id: s.id, created: now.UnixMilli(), lastStep: m.step, alg: s.alg, digits: s.digits,
		period: s.period, name: opts.Name, sealed: sealed}
	var codes []RecoveryCode
	var replaced bool
	err = a.update(ctx, userID, func(rec *factorRecord) error {
		codes, replaced = nil, false
		if rec.used(s) {
			return ErrAlreadyConfirmed
		}
		// Again, at the version written: the user may have enrolled a
		// first authenticator since the check above, after which a
		// password-only session may change nothing.
		if err := a.requireStepUp(ctx, userID, len(rec.creds) > 0); err != nil {
			return err
		}
		if opts.Replace != "" {
			i := rec.find(replace)
			if i < 0 {
				return fmt.Errorf("%w: no authenticator %s to replace", ErrNotEnrolled, opts.Replace)
			}
			rec.creds = slices.Delete(rec.creds, i, i+1)
			rec.retire(replace, now.UnixMilli())
			replaced = true
		}
		if len(rec.creds) >= MaxAuthenticators {
			return ErrTooManyAuthenticators
		}
		rec.creds = append(rec.creds, newCred)
		if rec.generated == 0 {
			codes = a.newRecoverySet(rec, userID, now)
		}
		return nil
	})
	if err != nil {
		return Confirmed{}, err
	}
	info := newCred.info()
	a.audit(ctx, slog.LevelInfo, "authn_mfa_enabled", userID, slog.String("authenticator", info.ID),
		slog.Bool("replaced", replaced), slog.Bool("recovery_codes_created", codes != nil))
	a.notify(ctx, keyhold.SecondFactorEnabled, userID, info.ID, src)
	if replaced {
		a.notify(ctx, keyhold.SecondFactorRemoved, userID, opts.Replace, src)
	}
	return Confirmed{Authenticator: info, RecoveryCodes: codes}, a.afterChange(ctx, userID, session.FactorTOTP)
}

func isWrongCode(err error) bool { return errors.Is(err, ErrWrongCode) }

// Remove removes one of the user's authenticators: its codes stop working
// at once; the others, and the recovery codes, stay. With
// Config.Sessions it needs a fresh, multi-factor step-up and afterwards
// revokes the user's other sessions and re-issues the current one. The
// Notifier hears keyhold.SecondFactorRemoved.
func (a *Authenticator) Remove(ctx context.Context, userID, id string) error {
	if a == nil {
		return errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	var want [credIDLen]byte
	if n, err := hex.Decode(want[:], []byte(id[:min(len(id), 2*credIDLen)])); err != nil || n != credIDLen || len(id) != 2*credIDLen {
		return fmt.Errorf("%w: not an authenticator ID", ErrInvalidInput)
	}
	id = hex.EncodeToString(want[:]) // as Authenticators lists it, for the logs and notices
	if err := a.requireStepUp(ctx, userID, true); err != nil {
		return err
	}
	err := a.update(ctx, userID, func(rec *factorRecord) error {
		i := rec.find(want)
		if i < 0 {
			return ErrNotEnrolled
		}
		rec.creds = slices.Delete(rec.creds, i, i+1)
		rec.retire(want, a.cfg.Now().UnixMilli())
		return nil
	})
	if err != nil {
		return err
	}
	a.audit(ctx, slog.LevelInfo, "authn_mfa_disabled", userID, slog.String("authenticator", id), slog.String("reason", "removed"))
	a.notify(ctx, keyhold.SecondFactorRemoved, userID, id, ratelimit.Source{})
	return a.afterChange(ctx, userID, 0)
}

// Verify checks a TOTP code of the user's authenticators, through the
// Lockout, and accepts it at most once: the authenticator's last accepted
// step is moved forward with a compare-and-swap, so of any number of
// requests racing with one code exactly one succeeds, and a code for a
// step at or before the last accepted one fails (TOT-04). Right, wrong,
// replayed and locked cost the same work: every authenticator's codes for
// every step of the window are computed and compared in constant time.
//
// It returns nil for a right code; an error matching
// ratelimit.ErrRejected for a wrong, malformed or replayed code or a
// locked account (answer them all alike); ErrNotEnrolled for a user
// without an authenticator. Verify only checks the code: at login, use
// VerifyLogin, or tell the session (session.Manager.SecondFactorVerified).
func (a *Authenticator) Verify(ctx context.Context, userID, code string, src ratelimit.Source) error {
	if a == nil {
		return errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	rec, version, err := a.load(ctx, userID)
	if err != nil {
		return err
	}
	if len(rec.creds) == 0 {
		return ErrNotEnrolled
	}
	// check computes the outcome against one read of the record.
	check := func(ctx context.Context, rec *factorRecord) (int, match, error) {
		now := a.cfg.Now()
		idx, best := -1, match{}
		for i := range rec.creds {
			c := &rec.creds[i]
			secret, err := a.cfg.Sealer.Open(ctx, userID, c.sealed, secretAD(userID, c.id))
			if errors.Is(err, ErrVaultLocked) { // nothing was checked: the attempt is given back
				return -1, match{}, fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, err)
			}
			if err != nil {
				return -1, match{}, err
			}
			m := a.matchCode(secret, c.alg, c.digits, c.period, c.lastStep, code, now)
			clear(secret)
			if (m.found || m.replayed) && idx < 0 {
				idx, best = i, m
			}
		}
		return idx, best, nil
	}
	var used AuthenticatorInfo
	verify := func(ctx context.Context) error {
		for range maxCASRetries {
			i, m, err := check(ctx, rec)
			switch {
			case err != nil:
				return err
			case m.replayed:
				a.audit(ctx, slog.LevelWarn, "authn_mfa_replay", userID, slog.String("authenticator", rec.creds[i].info().ID))
				return fmt.Errorf("%w: %w", ErrWrongCode, ErrReplayed)
			case !m.found:
				return ErrWrongCode
			}
			c := &rec.creds[i]
			c.lastStep, c.lastUsed = m.step, a.cfg.Now().UnixMilli()
			err = a.cfg.Store.PutFactors(ctx, userID, rec.encode(), version)
			if err == nil {
				used = c.info()
				return nil
			}
			if !errors.Is(err, storage.ErrConflict) {
				return err
			}
			if rec, version, err = a.load(ctx, userID); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: %w", ratelimit.ErrNotChecked, ErrBusy)
	}
	dummy := func(ctx context.Context) error {
		if _, _, err := check(ctx, rec); err != nil {
			return err
		}
		return ErrWrongCode
	}
	if err := a.cfg.Lockout.Check(ctx, userID, src, ratelimit.Credential{Verify: verify, Dummy: dummy, Wrong: isWrongCode}); err != nil {
		return err
	}
	a.audit(ctx, slog.LevelInfo, "authn_mfa_success", userID, slog.String("authenticator", used.ID))
	return nil
}
