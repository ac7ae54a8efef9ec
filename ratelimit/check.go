package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/keyhold/keyhold/kdf"
)

var (
	// ErrRejected is what Check returns (wrapped) for a wrong credential
	// and for a locked account alike: answer every error that matches it
	// with the same response (status, body, headers), the one for a wrong
	// credential. The two differ only in what errors.Is(err, ErrLocked)
	// and errors.As(err, **LockedError) report, for the server's logs;
	// never show them, nor err.Error() (the same text in both cases, but
	// the rule stays simpler without exceptions), to the client.
	ErrRejected = errors.New("ratelimit: credential rejected")

	// ErrWrongCredential is what a Credential's Verify (or Dummy) returns,
	// wrapped, when the credential is wrong. kdf.ErrMismatch counts as
	// wrong too; for other checks (vault.ErrUnlockFailed, a TOTP code),
	// wrap this or set Credential.Wrong.
	ErrWrongCredential = errors.New("ratelimit: wrong credential")

	// ErrNotChecked is what a Credential's Verify returns, wrapped, when
	// it could not check the credential and told the client nothing: the
	// attempt is given back (see Attempt.Abandon). kdf.ErrBusy,
	// context.Canceled, context.DeadlineExceeded and ErrUnavailable count
	// as not checked too. Any other error counts as a failed attempt.
	ErrNotChecked = errors.New("ratelimit: credential not checked")
)

// A Credential is one check of a credential, for [Lockout.Check]: Verify
// checks it for real; Dummy does the same work against nothing (a KDF run
// at the same parameters that matches nothing: kdf.Hasher.VerifyDummy, or
// vault's dummy unlock), so that a locked account costs what a wrong
// credential costs and its answer comes as late.
type Credential struct {
	// Verify checks the credential: nil if it is right; an error matching
	// ErrWrongCredential or kdf.ErrMismatch (or for which Wrong reports
	// true) if it is wrong; an error matching ErrNotChecked, kdf.ErrBusy,
	// context.Canceled, context.DeadlineExceeded or ErrUnavailable if it
	// could not be checked. Any other error counts as a failure. Required.
	Verify func(ctx context.Context) error
	// Dummy does the work of Verify without a credential to check, for a
	// locked account. Its nil or wrong-credential result is the same
	// rejection as a wrong credential; its other errors are returned as
	// Verify's would be. Required.
	Dummy func(ctx context.Context) error
	// Wrong reports whether an error of Verify or Dummy means a wrong
	// credential, besides ErrWrongCredential and kdf.ErrMismatch (which
	// always do). Optional.
	Wrong func(error) bool
}

func (c *Credential) wrong(err error) bool {
	return errors.Is(err, ErrWrongCredential) || errors.Is(err, kdf.ErrMismatch) || unusableStored(err) || (c.Wrong != nil && c.Wrong(err))
}

// unusableStored reports whether err says that the account's stored
// credential cannot be checked at all (kdf refused the stored hash or
// vault slot: parameters over its Limits, a malformed or unsupported
// format, an unknown pepper). kdf answers these after the work of a wrong
// password; Check answers and counts them as one too (ErrRejected, a
// failure), so such an account looks and locks like any other. The error
// still matches its kdf sentinel, for the operator's log.
func unusableStored(err error) bool {
	return errors.Is(err, kdf.ErrParamsOutOfBounds) || errors.Is(err, kdf.ErrMalformedHash) ||
		errors.Is(err, kdf.ErrUnsupportedAlgorithm) || errors.Is(err, kdf.ErrUnknownPepper)
}

// notChecked reports whether err means that a credential check was never
// done (nothing was learned from it).
func notChecked(err error) bool {
	return errors.Is(err, ErrNotChecked) || errors.Is(err, kdf.ErrBusy) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// reasonKind names the kind of err for the logs, never its text (which an
// app's check may fill with anything).
func reasonKind(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, kdf.ErrBusy):
		return "kdf_busy"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, ErrUnavailable):
		return "store_unavailable"
	case errors.Is(err, ErrNotChecked):
		return "not_checked"
	}
	return "error"
}

// Check runs one authentication attempt on account from src, and is the
// way in for every credential of the account (password login, vault
// unlock, step-up, TOTP, recovery codes): it counts the attempt (Begin);
// when admitted, it runs c.Verify and records the outcome; when the
// account is locked for src, it runs c.Dummy instead, so that the locked
// answer costs the same work as a wrong one. Exactly one of Verify and
// Dummy runs, once.
//
// It returns:
//
//   - nil: the credential is right; its counters are reset.
//   - an error matching kdf.ErrPasswordChangeRequired (returned by Verify):
//     the password is right but marked compromised; the counters are
//     reset as for nil, and the caller must have the user change it.
//   - an error matching ErrRejected: the credential is wrong, or the
//     account is locked (then it also matches ErrLocked, and errors.As
//     finds a *LockedError: for the server's logs only). Answer both
//     exactly as a wrong credential.
//   - an error matching ErrInvalidInput (an empty or over-long account,
//     a Credential without Verify or Dummy) or ErrUnavailable (the store
//     failed, and the lockout fails closed): nothing was checked.
//   - any other error wraps what Verify (or Dummy) returned: answer it as
//     a server error (503 for kdf.ErrBusy). When it means the credential
//     was not checked (see ErrNotChecked), the attempt is given back and
//     logged (Attempt.Abandon); otherwise it stays counted as a failure.
//
// Verify and Dummy get ctx; outcomes are recorded with
// context.WithoutCancel(ctx), so a client that hangs up cannot skip them.
func (l *Lockout) Check(ctx context.Context, account string, src Source, c Credential) error {
	if l == nil {
		return errNilLockout
	}
	if c.Verify == nil || c.Dummy == nil {
		return fmt.Errorf("%w: a Credential needs Verify and Dummy", ErrInvalidInput)
	}
	att, err := l.Begin(ctx, account, src)
	var locked *LockedError
	switch {
	case errors.As(err, &locked):
		derr := c.Dummy(ctx)
		if derr == nil || c.wrong(derr) {
			return &rejectedError{cause: locked}
		}
		return &checkError{cause: derr, locked: locked}
	case att == nil:
		return err
	}
	rec := context.WithoutCancel(ctx)
	verr := c.Verify(ctx)
	switch {
	case verr == nil, errors.Is(verr, kdf.ErrPasswordChangeRequired):
		// kdf.ErrPasswordChangeRequired: the password matched a hash
		// marked compromised; a success that the caller must follow
		// with a password change, so it is returned.
		if err := att.Succeeded(rec); err != nil {
			// The owner proved the credential; a counter that could
			// not be reset must not turn that into a refusal.
			l.log.LogAttrs(ctx, slog.LevelError, "sys_store_fail", l.attrs(account, src,
				slog.String("op", "reset_lockout"), slog.String("error", err.Error()))...)
		}
		return verr
	case c.wrong(verr):
		att.Failed(rec)
		return &rejectedError{cause: verr}
	case notChecked(verr):
		att.Abandon(rec, verr)
		return &checkError{cause: verr}
	default:
		l.log.LogAttrs(ctx, slog.LevelWarn, "authn_login_fail", l.attrs(account, src,
			append(att.failureAttrs(), slog.String("reason", reasonKind(verr)))...)...)
		att.notifyLocks(rec)
		return &checkError{cause: verr}
	}
}

// rejectedError is Check's answer to a wrong credential or a locked
// account: the same text either way.
type rejectedError struct{ cause error }

func (e *rejectedError) Error() string   { return ErrRejected.Error() }
func (e *rejectedError) Unwrap() []error { return []error{ErrRejected, e.cause} }

// checkError is Check's answer when the credential check itself failed:
// the check's error, and the lock when the account was locked (for the
// logs: the text is the check's error either way).
type checkError struct {
	cause  error
	locked *LockedError
}

func (e *checkError) Error() string { return "ratelimit: credential check: " + e.cause.Error() }
func (e *checkError) Unwrap() []error {
	if e.locked != nil {
		return []error{e.cause, e.locked}
	}
	return []error{e.cause}
}
