package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.PasskeyStore = (*Store)(nil)

// passkeyQueries are the statements of PasskeyStore, on the tables of
// migration 0006: keyhold_passkeys (one row per user: handle, version,
// data) and keyhold_passkey_credentials (one row per credential ID, with
// its user).
//
// A put locks the user's keyhold_passkeys row first (its INSERT or
// UPDATE), then replaces the user's credential rows, inserting them in
// byte order; a delete locks the row, then removes the credential rows.
// A credential ID or a handle that another transaction is inserting or
// deleting makes the put wait for that transaction and then fail with a
// unique violation (it committed: the ID is taken) or go on (it rolled
// back, or freed the ID).
type passkeyQueries struct {
	get, getCreds                  string
	insert, update, state          string
	deleteCreds, insertCred        string
	delete, version                string
	userByHandle, userByCredential string
}

func buildPasskeyQueries(d Dialect, schema string) passkeyQueries {
	p := qualify(schema) + "keyhold_passkeys"
	c := qualify(schema) + "keyhold_passkey_credentials"
	return passkeyQueries{
		get:      rebind(d, "SELECT handle, version, data FROM "+p+" WHERE user_id = ?"),
		getCreds: rebind(d, "SELECT credential_id FROM "+c+" WHERE user_id = ? ORDER BY credential_id"),
		// ON CONFLICT (user_id) only: a handle that another row holds is
		// a unique violation, which PutPasskeys reports.
		insert:           rebind(d, "INSERT INTO "+p+" (user_id, handle, version, data) VALUES (?, ?, 1, ?) ON CONFLICT (user_id) DO NOTHING"),
		update:           rebind(d, "UPDATE "+p+" SET version = ?, data = ? WHERE user_id = ? AND version = ? AND handle = ?"),
		state:            rebind(d, "SELECT version, handle FROM "+p+" WHERE user_id = ?"),
		deleteCreds:      rebind(d, "DELETE FROM "+c+" WHERE user_id = ?"),
		insertCred:       rebind(d, "INSERT INTO "+c+" (credential_id, user_id) VALUES (?, ?)"),
		delete:           rebind(d, "DELETE FROM "+p+" WHERE user_id = ? AND version = ?"),
		version:          rebind(d, "SELECT version FROM "+p+" WHERE user_id = ?"),
		userByHandle:     rebind(d, "SELECT user_id FROM "+p+" WHERE handle = ?"),
		userByCredential: rebind(d, "SELECT user_id FROM "+c+" WHERE credential_id = ?"),
	}
}

// checkPasskeyRecord refuses a record out of the bounds of
// [storage.PasskeyRecord], before any query runs. The values themselves
// are not echoed.
func checkPasskeyRecord(r storage.PasskeyRecord) error {
	if err := checkUserID(r.UserID); err != nil {
		return err
	}
	if err := checkHandle(r.Handle); err != nil {
		return err
	}
	if len(r.CredentialIDs) > storage.MaxPasskeysPerUser {
		return fmt.Errorf("%w: %d credential IDs (want at most %d)", errBounds, len(r.CredentialIDs), storage.MaxPasskeysPerUser)
	}
	seen := make(map[string]struct{}, len(r.CredentialIDs))
	for i, id := range r.CredentialIDs {
		if err := checkCredentialID(id); err != nil {
			return err
		}
		if _, dup := seen[string(id)]; dup {
			return fmt.Errorf("%w: credential ID %d is listed twice", errBounds, i)
		}
		seen[string(id)] = struct{}{}
	}
	if len(r.Data) > storage.MaxPasskeyDataLen {
		return fmt.Errorf("%w: passkey data of %d bytes (want at most %d)", errBounds, len(r.Data), storage.MaxPasskeyDataLen)
	}
	return nil
}

func checkHandle(handle []byte) error {
	if len(handle) != storage.PasskeyHandleLen {
		return fmt.Errorf("%w: user handle of %d bytes (want %d)", errBounds, len(handle), storage.PasskeyHandleLen)
	}
	return nil
}

func checkCredentialID(id []byte) error {
	if len(id) == 0 || len(id) > storage.MaxCredentialIDLen {
		return fmt.Errorf("%w: credential ID of %d bytes (want 1 to %d)", errBounds, len(id), storage.MaxCredentialIDLen)
	}
	return nil
}

// errUniqueViolation is what a put's transaction returns, after rolling
// back, when a handle or a credential ID it inserts is in another row.
var errUniqueViolation = errors.New("unique violation")

// isUniqueViolation reports whether err is a violation of a UNIQUE or
// PRIMARY KEY constraint.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		// SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE
		return se.Code() == 1555 || se.Code() == 2067
	}
	return false
}

// GetPasskeys returns the user's passkey record, or
// [storage.ErrNotFound] if there is none. Its Handle, CredentialIDs (in
// byte order, not necessarily the order they were put in) and Data are
// the caller's own copies, read in one transaction.
func (s *Store) GetPasskeys(ctx context.Context, userID string) (storage.PasskeyRecord, error) {
	if s == nil {
		return storage.PasskeyRecord{}, errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return storage.PasskeyRecord{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.PasskeyRecord{}, fmt.Errorf("sqlstore: get passkeys: %w", err)
	}
	// The record and its credential rows are read in one snapshot: a
	// read-only REPEATABLE READ transaction in PostgreSQL (which never
	// fails to serialize), a read transaction in SQLite.
	var opts *sql.TxOptions
	if s.dialect == PostgreSQL {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	var rec storage.PasskeyRecord
	err := read(func() error {
		var err error
		rec, err = s.getPasskeys(ctx, opts, userID)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.PasskeyRecord{}, err
	}
	if err != nil {
		return storage.PasskeyRecord{}, fmt.Errorf("sqlstore: get passkeys: %w", ctxErr(ctx, err))
	}
	return rec, nil
}

func (s *Store) getPasskeys(ctx context.Context, opts *sql.TxOptions, userID string) (storage.PasskeyRecord, error) {
	var rec storage.PasskeyRecord
	tx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return rec, err
	}
	defer tx.Rollback() // a read: nothing to commit
	var version int64
	// Scan into *[]byte copies the driver's bytes.
	err = tx.QueryRowContext(ctx, s.pq.get, []byte(userID)).Scan(&rec.Handle, &version, &rec.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, storage.ErrNotFound
	}
	if err != nil {
		return rec, err
	}
	if version < 1 {
		return rec, fmt.Errorf("stored version %d is not positive", version)
	}
	rows, err := tx.QueryContext(ctx, s.pq.getCreds, []byte(userID))
	if err != nil {
		return rec, err
	}
	defer rows.Close()
	rec.CredentialIDs = [][]byte{}
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return rec, err
		}
		rec.CredentialIDs = append(rec.CredentialIDs, id)
	}
	if err := rows.Err(); err != nil {
		return rec, err
	}
	if rec.Data == nil {
		rec.Data = []byte{}
	}
	rec.UserID, rec.Version = userID, uint64(version)
	return rec, nil
}

// PutPasskeys stores r as r.UserID's record with version expect+1, and
// its credential IDs as the user's, if the stored record has version
// expect (expect 0: if there is none); otherwise it stores nothing and
// returns [storage.ErrConflict]. It runs in one transaction: the
// compare-and-swap on the record's row (INSERT … ON CONFLICT DO NOTHING,
// or UPDATE … WHERE version = expect), then the replacement of the user's
// credential rows. A handle other than the stored record's is refused
// with an error wrapping [storage.ErrInvalid]. A handle or a credential ID
// in another user's rows violates a unique constraint: the transaction is
// rolled back and the error wraps [storage.ErrDuplicate]. Of concurrent
// calls with the same expect exactly one succeeds, and of users
// registering one credential ID at once at most one does: the database's
// unique index decides.
func (s *Store) PutPasskeys(ctx context.Context, r storage.PasskeyRecord, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := checkPasskeyRecord(r); err != nil {
		return err
	}
	if expect >= math.MaxInt64 {
		// As in PutVault: no record has such a version.
		return storage.ErrConflict
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: put passkeys: %w", err)
	}
	user := []byte(r.UserID)
	data := r.Data
	if data == nil {
		data = []byte{} // a nil []byte would be bound as NULL
	}
	// In byte order, so that two puts insert shared IDs in the same
	// order (fewer deadlocks to retry).
	ids := slices.Clone(r.CredentialIDs)
	slices.SortFunc(ids, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })

	for range maxTxAttempts {
		err := s.writeTx(ctx, func(tx *sql.Tx) error {
			return s.putPasskeysTx(ctx, tx, user, r.Handle, ids, data, expect)
		})
		if !errors.Is(err, errUniqueViolation) {
			if err != nil && !isSentinel(err) {
				return fmt.Errorf("sqlstore: put passkeys: %w", ctxErr(ctx, err))
			}
			return err
		}
		// Who holds what the put inserted? Another user: a duplicate.
		// This user (its record, created by a rival since the put
		// began, which the INSERT met in the handle's index before its
		// own): a conflict. No one any more (the holder has since let
		// go): try again.
		if err := s.classifyDuplicate(ctx, r.UserID, r.Handle, ids, expect); err != nil {
			return err
		}
	}
	return fmt.Errorf("sqlstore: put passkeys: %d unique violations, and no holder found after each", maxTxAttempts)
}

// putPasskeysTx is PutPasskeys's transaction.
func (s *Store) putPasskeysTx(ctx context.Context, tx *sql.Tx, user, handle []byte, ids [][]byte, data []byte, expect uint64) error {
	if err := s.passkeyCAS(ctx, tx, user, handle, data, expect); err != nil {
		if isUniqueViolation(err) {
			return errUniqueViolation
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, s.pq.deleteCreds, user); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, s.pq.insertCred, id, user); err != nil {
			if isUniqueViolation(err) {
				return errUniqueViolation
			}
			return err
		}
	}
	return nil
}

// passkeyCAS is the compare-and-swap on the user's keyhold_passkeys row,
// in tx.
func (s *Store) passkeyCAS(ctx context.Context, tx *sql.Tx, user, handle, data []byte, expect uint64) error {
	if expect == 0 {
		res, err := tx.ExecContext(ctx, s.pq.insert, user, handle, data)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 {
			return storage.ErrConflict // a record exists
		}
		return nil
	}
	for range maxTxAttempts {
		res, err := tx.ExecContext(ctx, s.pq.update, int64(expect)+1, data, user, int64(expect), handle)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		// Nothing was updated: the record is absent or has another
		// version (conflict), or another handle (invalid). Should this
		// read find version expect and this handle, the record was
		// deleted and re-created in between (PostgreSQL; SQLite's write
		// transactions are serial): try again.
		var (
			version int64
			stored  []byte
		)
		err = tx.QueryRowContext(ctx, s.pq.state, user).Scan(&version, &stored)
		if errors.Is(err, sql.ErrNoRows) {
			return storage.ErrConflict
		}
		if err != nil {
			return err
		}
		if version < 0 || uint64(version) != expect {
			return storage.ErrConflict
		}
		if string(stored) != string(handle) {
			return fmt.Errorf("%w: the user handle of a passkey record cannot change", errBounds)
		}
	}
	return fmt.Errorf("passkey record re-created %d times during the call", maxTxAttempts)
}

// classifyDuplicate tells, after a put's unique violation, whether what
// it inserted is another user's (an error wrapping storage.ErrDuplicate),
// this user's existing record (storage.ErrConflict: the put expected
// none), or no one's any more (nil: the caller tries again).
func (s *Store) classifyDuplicate(ctx context.Context, userID string, handle []byte, ids [][]byte, expect uint64) error {
	holder := func(query string, key []byte) (string, error) {
		var u []byte
		err := read(func() error { return s.w.QueryRowContext(ctx, query, key).Scan(&u) })
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("sqlstore: put passkeys: %w", ctxErr(ctx, err))
		}
		return string(u), nil
	}
	u, err := holder(s.pq.userByHandle, handle)
	if err != nil {
		return err
	}
	if u != "" && u != userID {
		return fmt.Errorf("sqlstore: %w: another user's passkey record has this user handle", storage.ErrDuplicate)
	}
	own := u == userID
	for i, id := range ids {
		u, err := holder(s.pq.userByCredential, id)
		if err != nil {
			return err
		}
		if u != "" && u != userID {
			return fmt.Errorf("sqlstore: %w: credential ID %d (in byte order) belongs to another user", storage.ErrDuplicate, i)
		}
	}
	if own && expect == 0 {
		return storage.ErrConflict
	}
	return nil
}

// DeletePasskeys removes the user's passkey record and its credential
// rows, in one transaction, if its version is expect; it returns
// [storage.ErrConflict] if the record has another version, and nil if
// there is none. With SQLite (through [OpenSQLite]), the deleted rows are
// overwritten in the database file (secure_delete), as a deleted vault
// record is.
func (s *Store) DeletePasskeys(ctx context.Context, userID string, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: delete passkeys: %w", err)
	}
	user := []byte(userID)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		for range maxDeleteAttempts {
			if expect <= math.MaxInt64 {
				res, err := tx.ExecContext(ctx, s.pq.delete, user, int64(expect))
				if err != nil {
					return err
				}
				n, err := res.RowsAffected()
				if err != nil {
					return err
				}
				if n == 1 {
					// ON DELETE CASCADE has removed them where foreign
					// keys are enforced; a connection of New's may not.
					_, err := tx.ExecContext(ctx, s.pq.deleteCreds, user)
					return err
				}
			}
			// Nothing was deleted: the record is absent (success) or has
			// another version (conflict). Should it have version expect,
			// it was deleted and re-created in between: try again.
			var version int64
			err := tx.QueryRowContext(ctx, s.pq.version, user).Scan(&version)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			if version < 0 || uint64(version) != expect {
				return storage.ErrConflict
			}
		}
		return fmt.Errorf("record re-created %d times during the call", maxDeleteAttempts)
	})
	if err != nil && !isSentinel(err) {
		return fmt.Errorf("sqlstore: delete passkeys: %w", ctxErr(ctx, err))
	}
	return err
}

// UserByHandle returns the user whose passkey record has this handle, or
// [storage.ErrNotFound].
func (s *Store) UserByHandle(ctx context.Context, handle []byte) (string, error) {
	if s == nil {
		return "", errNilStore
	}
	if err := checkHandle(handle); err != nil {
		return "", err
	}
	return s.lookupUser(ctx, "user by handle", s.pq.userByHandle, handle)
}

// UserByCredential returns the user whose passkey record lists this
// credential ID, or [storage.ErrNotFound].
func (s *Store) UserByCredential(ctx context.Context, credentialID []byte) (string, error) {
	if s == nil {
		return "", errNilStore
	}
	if err := checkCredentialID(credentialID); err != nil {
		return "", err
	}
	return s.lookupUser(ctx, "user by credential", s.pq.userByCredential, credentialID)
}

func (s *Store) lookupUser(ctx context.Context, what, query string, key []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	var u []byte
	err := read(func() error { return s.r.QueryRowContext(ctx, query, key).Scan(&u) })
	if errors.Is(err, sql.ErrNoRows) {
		return "", storage.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("sqlstore: %s: %w", what, ctxErr(ctx, err))
	}
	return string(u), nil
}
