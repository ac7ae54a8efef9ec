package kdf_test

import (
	"testing"

	"github.com/keyhold/keyhold/internal/niltest"
	"github.com/keyhold/keyhold/kdf"
)

// Issue 11: no exported method panics on a nil receiver, what a failed
// constructor leaves behind: each returns an error matching
// ErrInvalidInput (zero values without an error result).
func TestNilReceivers(t *testing.T) {
	for _, nilPtr := range []any{
		(*kdf.Hasher)(nil),
		(*kdf.Gate)(nil),
		(*kdf.Policy)(nil),
		(*kdf.PwnedChecker)(nil),
	} {
		niltest.Methods(t, nilPtr, kdf.ErrInvalidInput)
	}
}
