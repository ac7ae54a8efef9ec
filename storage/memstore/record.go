package memstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/storage"
)

// A recordKind is what differs between the Store's two tables of one
// versioned record per user, its vault records and its factor records,
// whose contracts are otherwise the same.
type recordKind struct {
	// name names the records in errors ("vault data is …").
	name string
	// maxLen is the longest data, and maxName its name in package storage.
	maxLen  int
	maxName string
	// wipeReplaced makes a put overwrite the record it replaces with
	// zeros (a delete always does).
	wipeReplaced bool
}

var (
	vaultKind  = recordKind{name: "vault", maxLen: storage.MaxVaultDataLen, maxName: "storage.MaxVaultDataLen"}
	factorKind = recordKind{name: "factor", maxLen: storage.MaxFactorDataLen, maxName: "storage.MaxFactorDataLen", wipeReplaced: true}
)

// getRecord returns the user's record in table (s.vaults or s.factors), or
// [storage.ErrNotFound]. Its Data is a fresh copy. s is not nil.
func (s *Store) getRecord(ctx context.Context, table *map[string]userRecord, userID string) (storage.VaultRecord, error) {
	if err := ctx.Err(); err != nil {
		return storage.VaultRecord{}, err
	}
	if err := checkUserID(userID); err != nil {
		return storage.VaultRecord{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := (*table)[userID]
	if !ok {
		return storage.VaultRecord{}, storage.ErrNotFound
	}
	return storage.VaultRecord{
		UserID:  userID,
		Version: r.version,
		Data:    append([]byte{}, r.data...),
	}, nil
}

// putRecord stores a copy of data as the user's record in table with
// version expect+1, if and only if the stored record has version expect
// (expect 0: no record may exist); otherwise it stores nothing and returns
// [storage.ErrConflict]. The check and the write are made under s.mu. s is
// not nil.
func (s *Store) putRecord(ctx context.Context, kind recordKind, table *map[string]userRecord, userID string, data []byte, expect uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if len(data) > kind.maxLen {
		return fmt.Errorf("memstore: %w: %s data is %d bytes, more than %s (%d)", storage.ErrInvalid, kind.name, len(data), kind.maxName, kind.maxLen)
	}
	own := append([]byte{}, data...)

	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := (*table)[userID]
	var current uint64 // 0: no record
	if ok {
		current = old.version
	}
	if current != expect {
		return storage.ErrConflict
	}
	if expect == ^uint64(0) {
		// Unreachable in practice (2^64-1 writes to one record), but a
		// wrapped version would let a stale writer win.
		return errors.New("memstore: " + kind.name + " version would overflow")
	}
	if *table == nil {
		*table = make(map[string]userRecord)
	}
	(*table)[userID] = userRecord{version: expect + 1, data: own}
	if kind.wipeReplaced {
		clear(old.data) // getRecord handed out copies: no caller holds these bytes
	}
	return nil
}

// deleteRecord removes the user's record from table if its version is
// expect, and returns [storage.ErrConflict] if it has another version, nil
// if there is no record. The deleted record's bytes are overwritten with
// zeros. s is not nil.
func (s *Store) deleteRecord(ctx context.Context, table *map[string]userRecord, userID string, expect uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := (*table)[userID]
	if !ok {
		return nil
	}
	if r.version != expect {
		return storage.ErrConflict
	}
	clear(r.data) // getRecord handed out copies: no caller holds these bytes
	delete(*table, userID)
	return nil
}
