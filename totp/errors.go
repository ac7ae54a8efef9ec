package totp

import "errors"

var (
	// ErrInvalidInput means an argument is out of bounds or malformed: an
	// empty or over-long user ID or name, a setup token or code that is
	// too long, a Config field out of range. Nothing was read or written.
	ErrInvalidInput = errors.New("totp: invalid input")

	// ErrWrongCode is what a wrong, malformed or replayed TOTP code or
	// recovery code matches, inside the ratelimit.ErrRejected that the
	// lockout returns. Answer every error matching ratelimit.ErrRejected
	// with one response: never tell the client whether the code was
	// wrong, used before, or the account locked.
	ErrWrongCode = errors.New("totp: wrong code")

	// ErrReplayed additionally marks a code that was right but for a time
	// step at or before the last one accepted for its authenticator (a
	// code used twice): for the server's logs only, like ErrWrongCode.
	ErrReplayed = errors.New("totp: code already used")

	// ErrNotEnrolled means the user has no TOTP authenticator (Verify), no
	// recovery codes (UseRecoveryCode), or no authenticator with this ID
	// (Remove).
	ErrNotEnrolled = errors.New("totp: not enrolled")

	// ErrSetupExpired means a setup token is past its lifetime: start
	// again with Begin.
	ErrSetupExpired = errors.New("totp: setup token expired")

	// ErrSetupInvalid means a setup token does not open for this user
	// (tampered, truncated, another user's, sealed under a key the
	// Sealer no longer has).
	ErrSetupInvalid = errors.New("totp: setup token invalid")

	// ErrAlreadyConfirmed means the setup token's authenticator was
	// confirmed before: a setup token works once, and the secret it
	// carries cannot be shown again once it is in use (TOT-07).
	ErrAlreadyConfirmed = errors.New("totp: enrollment already confirmed")

	// ErrTooManyAuthenticators means the user already has
	// MaxAuthenticators authenticators.
	ErrTooManyAuthenticators = errors.New("totp: too many authenticators")

	// ErrStepUpRequired means a change to the user's second factors was
	// asked without a fresh authentication: with Config.Sessions set, the
	// request's session must be the user's, complete (not pending its
	// second factor), and authenticated within Config.StepUpMaxAge.
	// Reauthenticate the user (session.Manager.Reauthenticated) and retry.
	ErrStepUpRequired = errors.New("totp: step-up authentication required")

	// ErrVaultLocked means the secrets are sealed under the user's vault
	// (VaultSealer) and the context carries no unlocked vault of this
	// user (see WithVault).
	ErrVaultLocked = errors.New("totp: the user's vault is not unlocked")

	// ErrUnsealFailed means a stored secret does not open: the record was
	// tampered with, moved from another user, or sealed under a key the
	// Sealer no longer has.
	ErrUnsealFailed = errors.New("totp: stored secret does not open")

	// ErrMalformedRecord means the user's stored factor record does not
	// decode.
	ErrMalformedRecord = errors.New("totp: malformed factor record")

	// ErrBusy means the user's factor record changed under every retry of
	// a compare-and-swap write (a storm of concurrent writers); nothing
	// was written. Retry later.
	ErrBusy = errors.New("totp: factor record too busy")
)
