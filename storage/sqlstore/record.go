package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/keyhold/keyhold/storage"
)

// A recordTable is a table of one versioned record per user
// (keyhold_vaults, and keyhold_factors of migration 0005, which has the
// same columns): its statements, qualified with the schema and in the
// dialect's placeholder syntax, and what differs between the tables.
type recordTable struct {
	// name names the records in errors ("get vault: …", "get factors: …"),
	// dataName their data in the bounds error ("vault data of …").
	name, dataName string
	// maxLen is the longest data.
	maxLen int

	get, getVersion, insert, update, delete string
}

func buildRecordTable(d Dialect, schema, table, name, dataName string, maxLen int) recordTable {
	t := qualify(schema) + table
	return recordTable{
		name: name, dataName: dataName, maxLen: maxLen,
		get:        rebind(d, "SELECT version, data FROM "+t+" WHERE user_id = ?"),
		getVersion: rebind(d, "SELECT version FROM "+t+" WHERE user_id = ?"),
		insert:     rebind(d, "INSERT INTO "+t+" (user_id, version, data) VALUES (?, 1, ?) ON CONFLICT (user_id) DO NOTHING"),
		update:     rebind(d, "UPDATE "+t+" SET version = ?, data = ? WHERE user_id = ? AND version = ?"),
		delete:     rebind(d, "DELETE FROM "+t+" WHERE user_id = ? AND version = ?"),
	}
}

// buildVaultTable and buildFactorTable return the Store's two record
// tables.
func buildVaultTable(d Dialect, schema string) recordTable {
	return buildRecordTable(d, schema, "keyhold_vaults", "vault", "vault", storage.MaxVaultDataLen)
}

func buildFactorTable(d Dialect, schema string) recordTable {
	return buildRecordTable(d, schema, "keyhold_factors", "factors", "factor", storage.MaxFactorDataLen)
}

// maxDeleteAttempts bounds deleteRecord's retries. A retry happens only
// when the record was deleted and re-created with the expected version
// between two statements, so reaching the bound means pathological
// contention.
const maxDeleteAttempts = 100

// getRecord returns the user's record in t, or [storage.ErrNotFound] if
// there is none. The record's Data is the caller's own copy. s is not nil.
func (s *Store) getRecord(ctx context.Context, t *recordTable, userID string) (storage.VaultRecord, error) {
	if err := checkUserID(userID); err != nil {
		return storage.VaultRecord{}, err
	}
	var (
		version int64
		data    []byte
	)
	// Scan into *[]byte copies the driver's bytes.
	err := s.r.QueryRowContext(ctx, t.get, []byte(userID)).Scan(&version, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.VaultRecord{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.VaultRecord{}, fmt.Errorf("sqlstore: get %s: %w", t.name, ctxErr(ctx, err))
	}
	if version < 1 {
		return storage.VaultRecord{}, fmt.Errorf("sqlstore: get %s: stored version %d is not positive", t.name, version)
	}
	if data == nil {
		data = []byte{}
	}
	return storage.VaultRecord{UserID: userID, Version: uint64(version), Data: data}, nil
}

// putRecord stores data as the user's record in t with version expect+1
// if the stored record has version expect (expect 0: if there is none),
// and returns [storage.ErrConflict] otherwise. The check and the write are
// one statement (INSERT … ON CONFLICT DO NOTHING, or UPDATE … WHERE
// version = expect), so of concurrent calls with the same expect exactly
// one succeeds. s is not nil.
func (s *Store) putRecord(ctx context.Context, t *recordTable, userID string, data []byte, expect uint64) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	if len(data) > t.maxLen {
		return fmt.Errorf("%w: %s data of %d bytes (want at most %d)", errBounds, t.dataName, len(data), t.maxLen)
	}
	return s.casWrite(ctx, t.name, t.insert, t.update, []any{[]byte(userID)}, data, expect)
}

// casWrite stores data with version expect+1 in the row of keys (the
// columns before the data, in the queries' order) if the stored row has
// version expect (expect 0: if there is none), and returns
// [storage.ErrConflict] otherwise. The check and the write are one
// statement: insert (INSERT … ON CONFLICT DO NOTHING, its arguments the
// keys then the data) or update (UPDATE … WHERE version = expect, its
// arguments the new version, the data, the keys and expect), so of
// concurrent calls with the same expect exactly one succeeds. what names
// the row in errors. s is not nil.
func (s *Store) casWrite(ctx context.Context, what, insert, update string, keys []any, data []byte, expect uint64) error {
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
		res, err = s.w.ExecContext(ctx, insert, append(keys, data)...)
	} else {
		args := append([]any{int64(expect) + 1, data}, keys...)
		res, err = s.w.ExecContext(ctx, update, append(args, int64(expect))...)
	}
	if retryable(err) {
		// Under a SERIALIZABLE default isolation, PostgreSQL refuses a
		// write that raced another: the statement was rolled back, and
		// someone else wrote first.
		return storage.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlstore: put %s: %w", what, ctxErr(ctx, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: put %s: %w", what, err)
	}
	if n != 1 {
		return storage.ErrConflict
	}
	return nil
}

// deleteRecord removes the user's record in t if its version is expect,
// returns [storage.ErrConflict] if it has another version, and nil if
// there is no record. s is not nil.
func (s *Store) deleteRecord(ctx context.Context, t *recordTable, userID string, expect uint64) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	for range maxDeleteAttempts {
		if expect <= math.MaxInt64 {
			res, err := s.w.ExecContext(ctx, t.delete, []byte(userID), int64(expect))
			if retryable(err) {
				continue // rolled back after racing another write: look again
			}
			if err != nil {
				return fmt.Errorf("sqlstore: delete %s: %w", t.name, ctxErr(ctx, err))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlstore: delete %s: %w", t.name, err)
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
		err := s.w.QueryRowContext(ctx, t.getVersion, []byte(userID)).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlstore: delete %s: %w", t.name, ctxErr(ctx, err))
		}
		if version < 0 || uint64(version) != expect {
			return storage.ErrConflict
		}
	}
	return fmt.Errorf("sqlstore: delete %s: record re-created %d times during the call", t.name, maxDeleteAttempts)
}
