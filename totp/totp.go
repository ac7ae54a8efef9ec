package totp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/notify"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
)

// An Algorithm is the HMAC hash of a TOTP authenticator (RFC 6238 §1.2).
type Algorithm uint8

// The algorithms. SHA-1 is the default, and the one every authenticator
// app supports; HMAC-SHA-1 is not weakened by SHA-1's collisions.
const (
	SHA1   Algorithm = algSHA1
	SHA256 Algorithm = algSHA256
	SHA512 Algorithm = algSHA512
)

// String returns "SHA1", "SHA256" or "SHA512", as otpauth URIs spell them.
func (a Algorithm) String() string {
	switch a {
	case SHA1:
		return "SHA1"
	case SHA256:
		return "SHA256"
	case SHA512:
		return "SHA512"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

func (a Algorithm) otp() otp.Algorithm {
	switch a {
	case SHA256:
		return otp.AlgorithmSHA256
	case SHA512:
		return otp.AlgorithmSHA512
	}
	return otp.AlgorithmSHA1
}

// secretLen is the length of a new secret for each algorithm: the hash's
// output length (RFC 6238 Appendix A uses these), and never less than
// 160 bits (RFC 4226 §4 R6, TOT-01).
func (a Algorithm) secretLen() int {
	switch a {
	case SHA256:
		return 32
	case SHA512:
		return 64
	}
	return 20
}

const (
	// DefaultPeriod is the time step: 30 seconds (RFC 6238 §5.2).
	DefaultPeriod = 30 * time.Second
	// DefaultSetupLifetime is how long a setup token from Begin can be
	// confirmed.
	DefaultSetupLifetime = 10 * time.Minute
	// MaxSetupLifetime bounds Config.SetupLifetime.
	MaxSetupLifetime = time.Hour
	// DefaultStepUpMaxAge is how recent the session's authentication must
	// be for a change to the user's factors, with Config.Sessions.
	DefaultStepUpMaxAge = 5 * time.Minute
	// DefaultLowRecoveryCodes is the remaining count at or below which
	// RecoveryStatus.Low is set.
	DefaultLowRecoveryCodes = 3
	// MaxCodeInputLen bounds the text of a TOTP code, in bytes, before it
	// is parsed.
	MaxCodeInputLen = 32
	// MaxSetupTokenLen bounds a setup token's text, in bytes.
	MaxSetupTokenLen = 1024

	minPeriodSeconds = 15
	maxPeriodSeconds = 300
	maxCASRetries    = 8
)

// Config configures an Authenticator. Store, Sealer, Lockout and Issuer
// are required.
type Config struct {
	// Store keeps each user's factor record: the authenticators with
	// their sealed secrets and last accepted time steps, and the hashes
	// of the recovery codes.
	Store storage.FactorStore
	// Sealer encrypts the secrets at rest: a KeyRing (the usual choice)
	// or VaultSealer.
	Sealer Sealer
	// Lockout counts every code attempt (TOTP codes, recovery codes, the
	// code that confirms an enrollment) against the user ID, across
	// login attempts and sessions (TOT-05): give it a Lockout of its own
	// (ratelimit.NewLockout with a Name such as "totp"), so that wrong
	// codes and wrong passwords are counted apart.
	Lockout *ratelimit.Lockout
	// Issuer names the application in authenticator apps (the otpauth
	// URI's issuer), e.g. "Example Corp": 1 to MaxNameLen bytes without
	// ':', '&' or '+', which the URI cannot carry intact.
	Issuer string

	// Algorithm, Digits and Period are those of new authenticators
	// (existing ones keep theirs). Zero: SHA1, 6 digits, 30 seconds.
	// Digits is 6 or 8; Period is whole seconds from 15 s to 5 min. Most
	// authenticator apps support only the defaults.
	Algorithm Algorithm
	Digits    int
	Period    time.Duration
	// ExactStepOnly accepts a code only for the current time step. By
	// default the step before and the step after are accepted too
	// (RFC 6238 §5.2's allowance for network delay and clock drift; the
	// ASVS asks for 30 s at most, SECURITY.md explains the choice): with
	// replay refusal (a code works once), a code is usable for up to
	// three periods.
	ExactStepOnly bool

	// SetupLifetime is how long a setup token from Begin can be
	// confirmed. Zero: DefaultSetupLifetime; at most MaxSetupLifetime.
	SetupLifetime time.Duration
	// RecoveryCodes is how many codes a set holds: MinRecoveryCodes to
	// MaxRecoveryCodes. Zero: MinRecoveryCodes.
	RecoveryCodes int
	// LowRecoveryCodes is the remaining count at or below which
	// RecoveryStatus.Low asks the user to make a new set. Zero:
	// DefaultLowRecoveryCodes.
	LowRecoveryCodes int

	// Sessions, if set, ties the Authenticator to the app's sessions:
	// changes (Confirm, Remove, RegenerateRecoveryCodes) require the
	// request's session to be the user's, complete, authenticated within
	// StepUpMaxAge, and multi-factor if the user has an authenticator or
	// (OtherFactors) another second factor (ErrStepUpRequired); after a change, and after a recovery code
	// logs in, the user's other sessions are revoked and the current one
	// is re-issued; VerifyLogin and RecoverLogin complete a pending
	// login. Without it the app does all of that itself.
	Sessions *session.Manager
	// OtherFactors, if set, tells whether the user has a second factor
	// other than TOTP (a passkey: pass a passkey.Manager's Enrolled, or
	// a function that calls it, to break the circle of the two
	// configurations). A user who has one needs a multi-factor session
	// for every change here, the first enrollment included: otherwise the
	// password alone would enroll an authenticator, make the session
	// multi-factor, and add a passkey with it.
	OtherFactors func(ctx context.Context, userID string) (bool, error)
	// StepUpMaxAge bounds the age of the session's authentication for a
	// change. Zero: DefaultStepUpMaxAge.
	StepUpMaxAge time.Duration

	// Notifier is told of every change to the user's factors and of
	// every recovery code used (keyhold.SecondFactorEnabled,
	// SecondFactorRemoved, LoginRecoveryCodeUsed,
	// LoginRecoveryCodesRegenerated).
	Notifier keyhold.Notifier
	// Logger receives the audit events (SECURITY.md, "Audit events").
	// Nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now. Codes are checked against this
	// clock only: no API takes the client's time (TOT-03).
	Now func() time.Time
}

// An Authenticator enrolls and checks TOTP authenticators and login
// recovery codes. Its methods are safe for concurrent use, also from many
// processes sharing one store: every write is a compare-and-swap on the
// user's record.
type Authenticator struct {
	cfg      Config
	period   uint16
	log      *slog.Logger
	sessions *session.Manager
}

var errNilAuthenticator = fmt.Errorf("%w: nil Authenticator", ErrInvalidInput)

// New checks cfg and returns an Authenticator. Errors wrap
// ErrInvalidInput.
func New(cfg Config) (*Authenticator, error) {
	switch {
	case cfg.Store == nil:
		return nil, fmt.Errorf("%w: Config.Store is required", ErrInvalidInput)
	case cfg.Sealer == nil:
		return nil, fmt.Errorf("%w: Config.Sealer is required", ErrInvalidInput)
	case cfg.Lockout == nil:
		return nil, fmt.Errorf("%w: Config.Lockout is required: every code attempt is counted", ErrInvalidInput)
	case cfg.Issuer == "" || len(cfg.Issuer) > MaxNameLen || strings.ContainsAny(cfg.Issuer, ":&+"):
		return nil, fmt.Errorf("%w: Config.Issuer must be 1 to %d bytes without ':', '&' or '+' (the otpauth URI cannot carry them)", ErrInvalidInput, MaxNameLen)
	}
	if cfg.Algorithm == 0 {
		cfg.Algorithm = SHA1
	}
	if cfg.Digits == 0 {
		cfg.Digits = 6
	}
	if cfg.Period == 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.SetupLifetime == 0 {
		cfg.SetupLifetime = DefaultSetupLifetime
	}
	if cfg.RecoveryCodes == 0 {
		cfg.RecoveryCodes = MinRecoveryCodes
	}
	if cfg.LowRecoveryCodes == 0 {
		cfg.LowRecoveryCodes = DefaultLowRecoveryCodes
	}
	if cfg.StepUpMaxAge == 0 {
		cfg.StepUpMaxAge = DefaultStepUpMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	seconds := cfg.Period / time.Second
	switch {
	case cfg.Algorithm < SHA1 || cfg.Algorithm > SHA512:
		return nil, fmt.Errorf("%w: Config.Algorithm must be SHA1, SHA256 or SHA512", ErrInvalidInput)
	case cfg.Digits != 6 && cfg.Digits != 8:
		return nil, fmt.Errorf("%w: Config.Digits must be 6 or 8", ErrInvalidInput)
	case cfg.Period%time.Second != 0 || seconds < minPeriodSeconds || seconds > maxPeriodSeconds:
		return nil, fmt.Errorf("%w: Config.Period must be whole seconds from %d to %d", ErrInvalidInput, minPeriodSeconds, maxPeriodSeconds)
	case cfg.SetupLifetime < 0 || cfg.SetupLifetime > MaxSetupLifetime:
		return nil, fmt.Errorf("%w: Config.SetupLifetime must be at most %v", ErrInvalidInput, MaxSetupLifetime)
	case cfg.RecoveryCodes < MinRecoveryCodes || cfg.RecoveryCodes > MaxRecoveryCodes:
		return nil, fmt.Errorf("%w: Config.RecoveryCodes must be %d to %d", ErrInvalidInput, MinRecoveryCodes, MaxRecoveryCodes)
	case cfg.LowRecoveryCodes < 0 || cfg.LowRecoveryCodes >= cfg.RecoveryCodes:
		return nil, fmt.Errorf("%w: Config.LowRecoveryCodes must be below Config.RecoveryCodes", ErrInvalidInput)
	case cfg.StepUpMaxAge < 0:
		return nil, fmt.Errorf("%w: Config.StepUpMaxAge must not be negative", ErrInvalidInput)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Authenticator{cfg: cfg, period: uint16(seconds), log: log, sessions: cfg.Sessions}, nil
}

func checkUserID(userID string) error {
	if userID == "" || len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("%w: user ID must be 1 to %d bytes", ErrInvalidInput, storage.MaxUserIDLen)
	}
	return nil
}

// load reads the user's record; a user without one has an empty record
// at version 0.
func (a *Authenticator) load(ctx context.Context, userID string) (*factorRecord, uint64, error) {
	fr, err := a.cfg.Store.GetFactors(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return &factorRecord{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	rec, err := decodeRecord(fr.Data)
	if err != nil {
		return nil, 0, err
	}
	return rec, fr.Version, nil
}

// update applies change to the user's record and stores it at the
// version read, re-reading and re-applying on a conflict. change returns
// errStop to store nothing (and update returns nil), or any other error
// to stop with it. Only Delete (account deletion) deletes a record.
func (a *Authenticator) update(ctx context.Context, userID string, change func(rec *factorRecord) error) error {
	for range maxCASRetries {
		rec, version, err := a.load(ctx, userID)
		if err != nil {
			return err
		}
		if err := change(rec); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
		// A record left empty is stored empty, not deleted: its version
		// keeps growing, so a writer that read it before cannot overwrite
		// a later enrollment that would restart at version 1.
		err = a.cfg.Store.PutFactors(ctx, userID, rec.encode(), version)
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return ErrBusy
}

var errStop = errors.New("totp: nothing to store")

// AuthenticatorInfo describes one of the user's TOTP authenticators. It
// holds no secret.
type AuthenticatorInfo struct {
	// ID identifies the authenticator (32 hex digits), for Remove and
	// ConfirmOptions.Replace.
	ID string
	// Name is the label the user gave it at Confirm.
	Name string
	// Created is when it was confirmed.
	Created time.Time
	// LastUsed is when a code of it was last accepted (zero: only the
	// confirming code).
	LastUsed time.Time
	// Algorithm, Digits and Period are its parameters.
	Algorithm Algorithm
	Digits    int
	Period    time.Duration
}

func (c *cred) info() AuthenticatorInfo {
	in := AuthenticatorInfo{ID: hex.EncodeToString(c.id[:]), Name: c.name, Created: time.UnixMilli(c.created),
		Algorithm: Algorithm(c.alg), Digits: int(c.digits), Period: time.Duration(c.period) * time.Second}
	if c.lastUsed != 0 {
		in.LastUsed = time.UnixMilli(c.lastUsed)
	}
	return in
}

// Authenticators lists the user's TOTP authenticators, oldest first.
func (a *Authenticator) Authenticators(ctx context.Context, userID string) ([]AuthenticatorInfo, error) {
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
	out := make([]AuthenticatorInfo, 0, len(rec.creds))
	for i := range rec.creds {
		out = append(out, rec.creds[i].info())
	}
	return out, nil
}

// Enrolled reports whether the user has at least one TOTP authenticator:
// if so, log them in with session.LoginOptions.SecondFactorPending after
// their password, and ask for a code.
func (a *Authenticator) Enrolled(ctx context.Context, userID string) (bool, error) {
	list, err := a.Authenticators(ctx, userID)
	return len(list) > 0, err
}

// parseCode returns the code's digits: exactly digits ASCII digits once
// spaces are removed (TOT-06), or false.
func parseCode(code string, digits int) ([]byte, bool) {
	if len(code) > MaxCodeInputLen {
		return nil, false
	}
	out := make([]byte, 0, 8)
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case c == ' ':
		case '0' <= c && c <= '9' && len(out) < 8:
			out = append(out, c)
		default:
			return nil, false
		}
	}
	return out, len(out) == digits
}

// codeAt returns the authenticator's code for one time step.
func codeAt(secretB32 string, alg, digits byte, step uint64) []byte {
	d := otp.DigitsSix
	if digits == 8 {
		d = otp.DigitsEight
	}
	code, err := hotp.GenerateCodeCustom(secretB32, step, hotp.ValidateOpts{Digits: d, Algorithm: Algorithm(alg).otp()})
	if err != nil { // only for a secret that is not base32, which ours always is
		return nil
	}
	return []byte(code)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// match is the outcome of checking a code against one authenticator.
type match struct {
	found    bool   // the code is right for some step in the window
	step     uint64 // that step
	replayed bool   // ... but it is not after the last accepted one
}

// matchCode checks code against the secret at every step of the window
// around now, comparing in constant time with no early exit.
func (a *Authenticator) matchCode(secret []byte, alg, digits byte, period uint16, lastStep uint64, code string, now time.Time) match {
	input, ok := parseCode(code, int(digits))
	secretB32 := b32.EncodeToString(secret)
	current := uint64(max(now.Unix(), 0)) / uint64(period)
	skew := uint64(1)
	if a.cfg.ExactStepOnly {
		skew = 0
	}
	var found, step int
	for s := current - min(skew, current); s <= current+skew; s++ {
		want := codeAt(secretB32, alg, digits, s)
		eq := subtle.ConstantTimeCompare(want, input)
		step = subtle.ConstantTimeSelect(eq&^found, int(s), step)
		found |= eq
	}
	m := match{found: found == 1 && ok, step: uint64(step)}
	if m.found && m.step <= lastStep {
		m.found, m.replayed = false, true
	}
	return m
}

// newID returns a random authenticator ID.
func newID() [credIDLen]byte {
	var id [credIDLen]byte
	rand.Read(id[:])
	return id
}

func (a *Authenticator) audit(ctx context.Context, level slog.Level, event, userID string, attrs ...slog.Attr) {
	a.log.LogAttrs(ctx, level, event, append([]slog.Attr{slog.String("user", userID)}, attrs...)...)
}

func (a *Authenticator) notify(ctx context.Context, kind keyhold.EventKind, userID, detail string, src ratelimit.Source) {
	if p := notify.Send(ctx, a.cfg.Notifier, keyhold.Event{Kind: kind, UserID: userID, Time: a.cfg.Now(), IP: src.IP, Detail: detail}); p != "" {
		a.audit(ctx, slog.LevelError, "sys_notify_fail", userID, slog.String("event", string(kind)), slog.String("panic", p))
	}
}

// requireStepUp enforces TOT-08 when the Authenticator knows the
// sessions: a change to the user's factors needs the request's session to
// be the user's, complete, recently authenticated, and multi-factor if
// the user already has a second factor.
func (a *Authenticator) requireStepUp(ctx context.Context, userID string, hasFactor bool) error {
	if a.sessions == nil {
		return nil
	}
	// The session as stored now: one revoked since the request began
	// (its account deleted, say) changes nothing.
	info, err := a.sessions.Recheck(ctx)
	if err != nil && !errors.Is(err, session.ErrNotLoggedIn) {
		return err
	}
	if err != nil || info.UserID != userID || info.SecondFactorPending || info.Bearer ||
		a.cfg.Now().Sub(info.AuthTime) > a.cfg.StepUpMaxAge || (hasFactor && !info.MultiFactor) {
		return ErrStepUpRequired
	}
	if !hasFactor && !info.MultiFactor && a.cfg.OtherFactors != nil {
		other, err := a.cfg.OtherFactors(ctx, userID)
		if err != nil {
			return err
		}
		if other {
			return ErrStepUpRequired
		}
	}
	return nil
}

// afterChange revokes the user's other sessions and re-issues the
// current one, when the Authenticator knows the sessions. proved is the
// factor the change itself proved (FactorTOTP for Confirm, whose code came
// from the new authenticator), or zero: the session is re-issued marked
// with it, as session.Manager.SecondFactorVerified does.
func (a *Authenticator) afterChange(ctx context.Context, userID string, proved session.Factors) error {
	if a.sessions == nil {
		return nil
	}
	if info, ok := a.sessions.Current(ctx); !ok || info.UserID != userID {
		return a.sessions.RevokeAll(ctx, userID)
	}
	if err := a.sessions.RevokeOthers(ctx); err != nil {
		return fmt.Errorf("totp: the change is stored, but revoking the other sessions failed: %w", err)
	}
	reissue := func() error { return a.sessions.Renew(ctx) }
	if proved != 0 {
		reissue = func() error { return a.sessions.SecondFactorVerified(ctx, proved) }
	}
	if err := reissue(); err != nil {
		return fmt.Errorf("totp: the change is stored, but re-issuing the session failed: %w", err)
	}
	return nil
}

// Delete removes the user's factor record (every authenticator and
// recovery code) and resets the Lockout's counters of the user. It is for
// account deletion (vault/account.Parts.Factors) and needs no step-up; to
// turn off a second factor, use Remove. Deleting a user without factors
// returns nil.
func (a *Authenticator) Delete(ctx context.Context, userID string) error {
	if a == nil {
		return errNilAuthenticator
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if attempt == maxCASRetries {
			return ErrBusy
		}
		fr, err := a.cfg.Store.GetFactors(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
		err = a.cfg.Store.DeleteFactors(ctx, userID, fr.Version)
		if err == nil {
			break
		}
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	if err := a.cfg.Lockout.Reset(ctx, userID); err != nil {
		return err
	}
	a.audit(ctx, slog.LevelInfo, "authn_mfa_disabled", userID, slog.String("reason", "account_deleted"))
	return nil
}

func randRead(b []byte) { rand.Read(b) }

func isConflict(err error) bool { return errors.Is(err, storage.ErrConflict) }
