package sqlstore

import (
	"context"
	"fmt"

	"github.com/keyhold/keyhold/storage"
)

// errBounds is wrapped by the errors for arguments outside the bounds of
// package storage; they are returned before any query runs.
var errBounds = fmt.Errorf("sqlstore: %w", storage.ErrInvalid)

func checkUserID(userID string) error {
	if len(userID) == 0 || len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("%w: user ID of %d bytes (want 1 to %d)", errBounds, len(userID), storage.MaxUserIDLen)
	}
	return nil
}

// GetVault returns the user's vault record, or [storage.ErrNotFound] if
// there is none. The record's Data is the caller's own copy.
func (s *Store) GetVault(ctx context.Context, userID string) (storage.VaultRecord, error) {
	if s == nil {
		return storage.VaultRecord{}, errNilStore
	}
	return s.getRecord(ctx, &s.vaults, userID)
}

// PutVault stores data as the user's record with version expect+1 if the
// stored record has version expect (expect 0: if there is none), and
// returns [storage.ErrConflict] otherwise. The check and the write are one
// statement (INSERT … ON CONFLICT DO NOTHING, or UPDATE … WHERE version =
// expect), so of concurrent calls with the same expect exactly one
// succeeds.
func (s *Store) PutVault(ctx context.Context, userID string, data []byte, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	return s.putRecord(ctx, &s.vaults, userID, data, expect)
}

// DeleteVault removes the user's record if its version is expect, returns
// [storage.ErrConflict] if it has another version, and nil if there is no
// record.
func (s *Store) DeleteVault(ctx context.Context, userID string, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	return s.deleteRecord(ctx, &s.vaults, userID, expect)
}
