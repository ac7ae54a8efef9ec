package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/keyhold/keyhold/storage"
)

// queries are the statements of the store, qualified with the schema and
// in the dialect's placeholder syntax.
type queries struct {
	getVault, getVaultVersion, insertVault, updateVault, deleteVault string
}

func buildQueries(d Dialect, schema string) queries {
	vaults := qualify(schema) + "keyhold_vaults"
	return queries{
		getVault:        rebind(d, "SELECT version, data FROM "+vaults+" WHERE user_id = ?"),
		getVaultVersion: rebind(d, "SELECT version FROM "+vaults+" WHERE user_id = ?"),
		insertVault:     rebind(d, "INSERT INTO "+vaults+" (user_id, version, data) VALUES (?, 1, ?) ON CONFLICT (user_id) DO NOTHING"),
		updateVault:     rebind(d, "UPDATE "+vaults+" SET version = ?, data = ? WHERE user_id = ? AND version = ?"),
		deleteVault:     rebind(d, "DELETE FROM "+vaults+" WHERE user_id = ? AND version = ?"),
	}
}

// errBounds is wrapped by the errors for arguments outside the bounds of
// package storage; they are returned before any query runs.
var errBounds = fmt.Errorf("sqlstore: %w", storage.ErrInvalid)

func checkUserID(userID string) error {
	if len(userID) == 0 || len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("%w: user ID of %d bytes (want 1 to %d)", errBounds, len(userID), storage.MaxUserIDLen)
	}
	return nil
}

// maxDeleteAttempts bounds DeleteVault's retries. A retry happens only
// when the record was deleted and re-created with the expected version
// between two statements, so reaching the bound means pathological
// contention.
const maxDeleteAttempts = 100

// GetVault returns the user's vault record, or [storage.ErrNotFound] if
// there is none. The record's Data is the caller's own copy.
func (s *Store) GetVault(ctx context.Context, userID string) (storage.VaultRecord, error) {
	if s == nil {
		return storage.VaultRecord{}, errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return storage.VaultRecord{}, err
	}
	var (
		version int64
		data    []byte
	)
	// Scan into *[]byte copies the driver's bytes.
	err := s.r.QueryRowContext(ctx, s.q.getVault, []byte(userID)).Scan(&version, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.VaultRecord{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.VaultRecord{}, fmt.Errorf("sqlstore: get vault: %w", ctxErr(ctx, err))
	}
	if version < 1 {
		return storage.VaultRecord{}, fmt.Errorf("sqlstore: get vault: stored version %d is not positive", version)
	}
	if data == nil {
		data = []byte{}
	}
	return storage.VaultRecord{UserID: userID, Version: uint64(version), Data: data}, nil
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
	if err := checkUserID(userID); err != nil {
		return err
	}
	if len(data) > storage.MaxVaultDataLen {
		return fmt.Errorf("%w: vault data of %d bytes (want at most %d)", errBounds, len(data), storage.MaxVaultDataLen)
	}
	if data == nil {
		data = []byte{} // a nil []byte would be bound as NULL
	}
	if expect >= math.MaxInt64 {
		// Versions are stored as signed 64-bit integers and grow by one
		// per write from 1: no record has a version above MaxInt64, and
		// one at MaxInt64 (after 2^63-1 writes) could not grow.
		return storage.ErrConflict
	}
	var (
		res sql.Result
		err error
	)
	if expect == 0 {
		res, err = s.w.ExecContext(ctx, s.q.insertVault, []byte(userID), data)
	} else {
		res, err = s.w.ExecContext(ctx, s.q.updateVault, int64(expect)+1, data, []byte(userID), int64(expect))
	}
	if retryable(err) {
		// Under a SERIALIZABLE default isolation, PostgreSQL refuses a
		// write that raced another: the statement was rolled back, and
		// someone else wrote first.
		return storage.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlstore: put vault: %w", ctxErr(ctx, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: put vault: %w", err)
	}
	if n != 1 {
		return storage.ErrConflict
	}
	return nil
}

// DeleteVault removes the user's record if its version is expect, returns
// [storage.ErrConflict] if it has another version, and nil if there is no
// record.
func (s *Store) DeleteVault(ctx context.Context, userID string, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	for range maxDeleteAttempts {
		if expect <= math.MaxInt64 {
			res, err := s.w.ExecContext(ctx, s.q.deleteVault, []byte(userID), int64(expect))
			if retryable(err) {
				continue // rolled back after racing another write: look again
			}
			if err != nil {
				return fmt.Errorf("sqlstore: delete vault: %w", ctxErr(ctx, err))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlstore: delete vault: %w", err)
			}
			if n == 1 {
				return nil
			}
		}
		// Nothing was deleted: the record is absent (success, the delete is
		// idempotent) or has another version (conflict). This read is the
		// point at which the call takes effect. Should it find version
		// expect, the record was deleted and re-created in between: try
		// again.
		var version int64
		err := s.w.QueryRowContext(ctx, s.q.getVaultVersion, []byte(userID)).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlstore: delete vault: %w", ctxErr(ctx, err))
		}
		if version < 0 || uint64(version) != expect {
			return storage.ErrConflict
		}
	}
	return fmt.Errorf("sqlstore: delete vault: record re-created %d times during the call", maxDeleteAttempts)
}
