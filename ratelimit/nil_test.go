package ratelimit_test

import (
	"testing"

	"github.com/keyhold/keyhold/internal/niltest"
	"github.com/keyhold/keyhold/ratelimit"
)

// Issue 11: no exported method panics on a nil receiver, what a failed
// constructor or Begin leaves behind: each returns an error matching
// ErrInvalidInput (zero values without an error result), and a nil
// Limiter's middleware answers 500.
func TestNilReceivers(t *testing.T) {
	for _, nilPtr := range []any{
		(*ratelimit.Limiter)(nil),
		(*ratelimit.Lockout)(nil),
		(*ratelimit.Attempt)(nil),
		(*ratelimit.Devices)(nil),
		(*ratelimit.ClientResolver)(nil),
	} {
		niltest.Methods(t, nilPtr, ratelimit.ErrInvalidInput)
	}
}
