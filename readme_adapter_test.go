package keyhold_test

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" driver of database/sql

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/storagetest"
)

// The README's storage adapter: vault records in one table of the
// application's own SQL database (here SQLite through database/sql).

// readme:begin adapter
// VaultTable keeps keyhold's vault records in a table of your database.
type VaultTable struct{ db *sql.DB }

var _ storage.VaultStore = (*VaultTable)(nil) // the compiler checks the methods

// NewVaultTable creates the table if it is missing.
func NewVaultTable(ctx context.Context, db *sql.DB) (*VaultTable, error) {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS vaults (
		user_id BLOB PRIMARY KEY, -- compared as bytes: "alice" and "Alice " are two users
		version INTEGER NOT NULL, -- 1, then +1 with every write
		data    BLOB              -- sealed by keyhold, opaque here (empty: NULL)
	)`)
	return &VaultTable{db: db}, err
}

// GetVault returns the user's record, or storage.ErrNotFound.
func (s *VaultTable) GetVault(ctx context.Context, userID string) (storage.VaultRecord, error) {
	rec := storage.VaultRecord{UserID: userID}
	err := s.db.QueryRowContext(ctx, `SELECT version, data FROM vaults WHERE user_id = ?`, []byte(userID)).
		Scan(&rec.Version, &rec.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.VaultRecord{}, storage.ErrNotFound
	}
	return rec, err
}

// PutVault writes version expect+1 if the stored version is expect (0: none), else storage.ErrConflict.
func (s *VaultTable) PutVault(ctx context.Context, userID string, data []byte, expect uint64) error {
	if err := ctx.Err(); err != nil { // a call whose context is done changes nothing
		return err
	}
	if expect > math.MaxInt64 { // no row holds such a version
		return storage.ErrConflict
	}
	var res sql.Result
	var err error
	if expect == 0 {
		res, err = s.db.ExecContext(ctx, `INSERT INTO vaults (user_id, version, data) VALUES (?, 1, ?)
			ON CONFLICT (user_id) DO NOTHING`, []byte(userID), data)
	} else { // one statement: the check and the write are atomic
		res, err = s.db.ExecContext(ctx, `UPDATE vaults SET version = version + 1, data = ?
			WHERE user_id = ? AND version = ?`, data, []byte(userID), int64(expect))
	}
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n != 1 {
		err = storage.ErrConflict // another version is stored, or (expect 0) a record exists
	}
	return err
}

// DeleteVault deletes the record if its version is expect; an absent record is not an error.
func (s *VaultTable) DeleteVault(ctx context.Context, userID string, expect uint64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version uint64
	err = tx.QueryRowContext(ctx, `SELECT version FROM vaults WHERE user_id = ?`, []byte(userID)).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // already gone
	case err != nil:
		return err
	case version != expect:
		return storage.ErrConflict
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM vaults WHERE user_id = ?`, []byte(userID)); err != nil {
		return err
	}
	return tx.Commit()
}

// readme:end adapter

// TestReadmeAdapter runs the conformance suite, as the README shows it,
// against the README's adapter.
func TestReadmeAdapter(t *testing.T) {
	t.Parallel()
	// readme:begin adapter-test
	storagetest.RunVaultStore(t, func(t *testing.T) storage.VaultStore {
		// An empty database of its own for every clause (the clauses run in parallel).
		path := filepath.Join(t.TempDir(), "app.db")
		// busy_timeout: writers wait for each other; _txlock=immediate: a transaction holds the write lock.
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := NewVaultTable(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	// readme:end adapter-test
}
