package memstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/storage"
)

// GetFactors returns the user's factor record, or [storage.ErrNotFound] if
// there is none. The record's Data is a fresh copy, the caller's own.
func (s *Store) GetFactors(ctx context.Context, userID string) (storage.FactorRecord, error) {
	if s == nil {
		return storage.FactorRecord{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.FactorRecord{}, err
	}
	if err := checkUserID(userID); err != nil {
		return storage.FactorRecord{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.factors[userID]
	if !ok {
		return storage.FactorRecord{}, storage.ErrNotFound
	}
	return storage.FactorRecord{
		UserID:  userID,
		Version: r.version,
		Data:    append([]byte{}, r.data...),
	}, nil
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
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if len(data) > storage.MaxFactorDataLen {
		return fmt.Errorf("memstore: %w: factor data is %d bytes, more than storage.MaxFactorDataLen (%d)", storage.ErrInvalid, len(data), storage.MaxFactorDataLen)
	}
	own := append([]byte{}, data...)

	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.factors[userID]
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
		return errors.New("memstore: factor version would overflow")
	}
	if s.factors == nil {
		s.factors = make(map[string]vaultRecord)
	}
	s.factors[userID] = vaultRecord{version: expect + 1, data: own}
	clear(old.data) // GetFactors handed out copies: no caller holds these bytes
	return nil
}

// DeleteFactors removes the user's factor record if its version is
// expect, and returns [storage.ErrConflict] if it has another version.
// Deleting a record that does not exist returns nil. The deleted record's
// bytes are overwritten with zeros.
func (s *Store) DeleteFactors(ctx context.Context, userID string, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.factors[userID]
	if !ok {
		return nil
	}
	if r.version != expect {
		return storage.ErrConflict
	}
	clear(r.data) // GetFactors handed out copies: no caller holds these bytes
	delete(s.factors, userID)
	return nil
}
