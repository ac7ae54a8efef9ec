package memstore_test

import (
	"testing"

	"github.com/keyhold/keyhold/internal/niltest"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// Issue 11: no method of a nil *Store panics: each returns an error
// matching storage.ErrInvalid (zero values without an error result).
func TestNilReceivers(t *testing.T) {
	niltest.Methods(t, (*memstore.Store)(nil), storage.ErrInvalid)
}
