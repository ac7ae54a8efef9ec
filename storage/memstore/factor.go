package memstore

import (
	"context"

	"github.com/keyhold/keyhold/storage"
)

// GetFactors returns the user's factor record, or [storage.ErrNotFound] if
// there is none. The record's Data is a fresh copy, the caller's own.
func (s *Store) GetFactors(ctx context.Context, userID string) (storage.FactorRecord, error) {
	if s == nil {
		return storage.FactorRecord{}, errNilStore
	}
	r, err := s.getRecord(ctx, &s.factors, userID)
	return storage.FactorRecord(r), err
}

// PutFactors stores a copy of data as the user's factor record with
// version expect+1, if and only if the stored record has version expect
// (expect 0: no record may exist); otherwise it stores nothing and returns
// [storage.ErrConflict]. The check and the write are made under the
// Store's lock, so of concurrent calls with the same expect exactly one
// succeeds. The record replaced is overwritten with zeros.
func (s *Store) PutFactors(ctx context.Context, userID string, data []byte, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	return s.putRecord(ctx, factorKind, &s.factors, userID, data, expect)
}

// DeleteFactors removes the user's factor record if its version is
// expect, and returns [storage.ErrConflict] if it has another version.
// Deleting a record that does not exist returns nil. The deleted record's
// bytes are overwritten with zeros.
func (s *Store) DeleteFactors(ctx context.Context, userID string, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	return s.deleteRecord(ctx, &s.factors, userID, expect)
}
