package sqlstore

import (
	"context"

	"github.com/keyhold/keyhold/storage"
)

// GetFactors returns the user's factor record, or [storage.ErrNotFound] if
// there is none. The record's Data is the caller's own copy.
func (s *Store) GetFactors(ctx context.Context, userID string) (storage.FactorRecord, error) {
	if s == nil {
		return storage.FactorRecord{}, errNilStore
	}
	r, err := s.getRecord(ctx, &s.factors, userID)
	return storage.FactorRecord(r), err
}

// PutFactors stores data as the user's factor record with version
// expect+1 if the stored record has version expect (expect 0: if there is
// none), and returns [storage.ErrConflict] otherwise. As PutVault, the
// check and the write are one statement (INSERT … ON CONFLICT DO NOTHING,
// or UPDATE … WHERE version = expect), so of concurrent calls with the
// same expect exactly one succeeds.
func (s *Store) PutFactors(ctx context.Context, userID string, data []byte, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	return s.putRecord(ctx, &s.factors, userID, data, expect)
}

// DeleteFactors removes the user's factor record if its version is
// expect, returns [storage.ErrConflict] if it has another version, and nil
// if there is no record. With SQLite (through [OpenSQLite]), the deleted
// row is overwritten in the database file (secure_delete), as a deleted
// vault record is.
func (s *Store) DeleteFactors(ctx context.Context, userID string, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	return s.deleteRecord(ctx, &s.factors, userID, expect)
}
