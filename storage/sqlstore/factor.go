package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/keyhold/keyhold/storage"
)

// factorQueries are the statements on keyhold_factors (migration 0005),
// the same as those on keyhold_vaults.
type factorQueries struct {
	get, getVersion, insert, update, delete string
}

func buildFactorQueries(d Dialect, schema string) factorQueries {
	factors := qualify(schema) + "keyhold_factors"
	return factorQueries{
		get:        rebind(d, "SELECT version, data FROM "+factors+" WHERE user_id = ?"),
		getVersion: rebind(d, "SELECT version FROM "+factors+" WHERE user_id = ?"),
		insert:     rebind(d, "INSERT INTO "+factors+" (user_id, version, data) VALUES (?, 1, ?) ON CONFLICT (user_id) DO NOTHING"),
		update:     rebind(d, "UPDATE "+factors+" SET version = ?, data = ? WHERE user_id = ? AND version = ?"),
		delete:     rebind(d, "DELETE FROM "+factors+" WHERE user_id = ? AND version = ?"),
	}
}

// GetFactors returns the user's factor record, or [storage.ErrNotFound] if
// there is none. The record's Data is the caller's own copy.
func (s *Store) GetFactors(ctx context.Context, userID string) (storage.FactorRecord, error) {
	if s == nil {
		return storage.FactorRecord{}, errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return storage.FactorRecord{}, err
	}
	var (
		version int64
		data    []byte
	)
	// Scan into *[]byte copies the driver's bytes.
	err := s.r.QueryRowContext(ctx, s.fq.get, []byte(userID)).Scan(&version, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.FactorRecord{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.FactorRecord{}, fmt.Errorf("sqlstore: get factors: %w", ctxErr(ctx, err))
	}
	if version < 1 {
		return storage.FactorRecord{}, fmt.Errorf("sqlstore: get factors: stored version %d is not positive", version)
	}
	if data == nil {
		data = []byte{}
	}
	return storage.FactorRecord{UserID: userID, Version: uint64(version), Data: data}, nil
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
	if err := checkUserID(userID); err != nil {
		return err
	}
	if len(data) > storage.MaxFactorDataLen {
		return fmt.Errorf("%w: factor data of %d bytes (want at most %d)", errBounds, len(data), storage.MaxFactorDataLen)
	}
	if data == nil {
		data = []byte{} // a nil []byte would be bound as NULL
	}
	if expect >= math.MaxInt64 {
		// Versions are signed 64-bit integers growing by one from 1: no
		// record has this version, or could grow from it.
		return storage.ErrConflict
	}
	var (
		res sql.Result
		err error
	)
	if expect == 0 {
		res, err = s.w.ExecContext(ctx, s.fq.insert, []byte(userID), data)
	} else {
		res, err = s.w.ExecContext(ctx, s.fq.update, int64(expect)+1, data, []byte(userID), int64(expect))
	}
	if retryable(err) {
		// Rolled back after racing another write (a SERIALIZABLE
		// default isolation): someone else wrote first.
		return storage.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlstore: put factors: %w", ctxErr(ctx, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: put factors: %w", err)
	}
	if n != 1 {
		return storage.ErrConflict
	}
	return nil
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
	if err := checkUserID(userID); err != nil {
		return err
	}
	for range maxDeleteAttempts {
		if expect <= math.MaxInt64 {
			res, err := s.w.ExecContext(ctx, s.fq.delete, []byte(userID), int64(expect))
			if retryable(err) {
				continue // rolled back after racing another write: look again
			}
			if err != nil {
				return fmt.Errorf("sqlstore: delete factors: %w", ctxErr(ctx, err))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlstore: delete factors: %w", err)
			}
			if n == 1 {
				return nil
			}
		}
		// Nothing was deleted: the record is absent (success) or has
		// another version (conflict). This read is the point at which the
		// call takes effect; should it find version expect, the record
		// was deleted and re-created in between: try again.
		var version int64
		err := s.w.QueryRowContext(ctx, s.fq.getVersion, []byte(userID)).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlstore: delete factors: %w", ctxErr(ctx, err))
		}
		if version < 0 || uint64(version) != expect {
			return storage.ErrConflict
		}
	}
	return fmt.Errorf("sqlstore: delete factors: record re-created %d times during the call", maxDeleteAttempts)
}
