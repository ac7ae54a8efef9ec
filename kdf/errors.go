package kdf

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with [errors.Is]; the errors the
// package returns wrap them with context that never includes a password,
// a key, a hash, or any other byte of a stored value (which may be a
// plaintext password or an unsalted digest): they name the problem, a
// parameter by its name and numeric value (*[ParamsError]), or an algorithm
// from this package's fixed list, never quote the input.
var (
	// ErrMismatch means the password does not match the stored hash.
	ErrMismatch = errors.New("kdf: password does not match")

	// ErrTooLong means the password is longer than the configured maximum
	// (in bytes for hashing, in code points for a Policy). It is checked
	// before any hashing work is done.
	ErrTooLong = errors.New("kdf: password too long")

	// ErrInvalidUTF8 means the password is not valid UTF-8, so it cannot be
	// normalised or counted in code points.
	ErrInvalidUTF8 = errors.New("kdf: password is not valid UTF-8")

	// ErrMalformedHash means an encoded hash could not be parsed.
	ErrMalformedHash = errors.New("kdf: malformed hash")

	// ErrUnsupportedAlgorithm means an encoded hash names an algorithm this
	// package does not know, or one it only verifies when asked to hash.
	ErrUnsupportedAlgorithm = errors.New("kdf: unsupported algorithm")

	// ErrParamsOutOfBounds means a hash's parameters are outside the
	// accepted Limits (too costly, or too weak to be what they claim), or a
	// run would not fit the Gate's memory budget. It is detected before any
	// memory is allocated for the KDF, and it is not a mismatch: the
	// password was never checked, so callers must not report it (nor count
	// it) as a wrong password.
	ErrParamsOutOfBounds = errors.New("kdf: parameters out of bounds")

	// ErrWeakParams means Params passed to a constructor are below the
	// floor this package accepts for new hashes (see [Params.Validate]).
	ErrWeakParams = errors.New("kdf: parameters below the security floor")

	// ErrUnknownPepper means a hash references a pepper id that the
	// Hasher was not configured with.
	ErrUnknownPepper = errors.New("kdf: unknown pepper id")

	// ErrBusy means the Gate refused to start another expensive run: its
	// queue (or the share of it that the caller's [WithGateKey] key may
	// hold) was full, or the caller's context ended while it waited. The
	// password was not checked: it is neither a success nor a failed
	// attempt.
	ErrBusy = errors.New("kdf: too many concurrent password operations")

	// ErrInvalidInput means a method was called on a nil *Hasher, *Gate,
	// *Policy or *PwnedChecker (what a failed constructor returns).
	// Methods without an error result return zero values on a nil
	// receiver; none panics.
	ErrInvalidInput = errors.New("kdf: invalid input")
)

// What the methods of nil receivers return.
var (
	errNilHasher       = fmt.Errorf("%w: nil *Hasher", ErrInvalidInput)
	errNilGate         = fmt.Errorf("%w: nil *Gate", ErrInvalidInput)
	errNilPolicy       = fmt.Errorf("%w: %w: nil *Policy", ErrInvalidPolicy, ErrInvalidInput) // both: a nil Policy fails closed like an invalid one
	errNilPwnedChecker = fmt.Errorf("%w: nil *PwnedChecker", ErrInvalidInput)
)

// ParamsError reports which parameter of a stored or requested hash is out
// of bounds. It matches [ErrParamsOutOfBounds] or [ErrWeakParams] with
// [errors.Is].
type ParamsError struct {
	Param string // the parameter's name as in the encoded hash, e.g. "m"
	Value uint64 // the value that was found
	Bound uint64 // the bound it broke
	Max   bool   // true if Bound is an upper bound, false if a lower one
	err   error
}

// Error describes the parameter, its value and the bound it broke.
func (e *ParamsError) Error() string {
	rel := "below the minimum"
	if e.Max {
		rel = "above the maximum"
	}
	return fmt.Sprintf("%v: %s=%d is %s %d", e.err, e.Param, e.Value, rel, e.Bound)
}

// Unwrap returns the sentinel the error matches.
func (e *ParamsError) Unwrap() error { return e.err }

func outOfBounds(param string, value, bound uint64, isMax bool) error {
	return &ParamsError{Param: param, Value: value, Bound: bound, Max: isMax, err: ErrParamsOutOfBounds}
}

func tooWeak(param string, value, bound uint64) error {
	return &ParamsError{Param: param, Value: value, Bound: bound, Max: false, err: ErrWeakParams}
}

// busyError is returned when a caller's context ended while it waited at
// the Gate: it matches both ErrBusy and the context's error.
type busyError struct{ cause error }

func (e *busyError) Error() string   { return ErrBusy.Error() + ": " + e.cause.Error() }
func (e *busyError) Unwrap() []error { return []error{ErrBusy, e.cause} }
