package memstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.BlobStore = (*Store)(nil)

// checkBlobName refuses blob names that are empty or longer than
// storage.MaxBlobNameLen bytes. The name is not echoed.
func checkBlobName(name string) error {
	if name == "" || len(name) > storage.MaxBlobNameLen {
		return fmt.Errorf("memstore: %w: blob name of %d bytes (want 1 to %d)", storage.ErrInvalid, len(name), storage.MaxBlobNameLen)
	}
	return nil
}

// GetBlob returns the user's blob of this name (a tombstone included), or
// [storage.ErrNotFound] if none was ever stored or the user's blobs were
// deleted since. The blob's Data is a fresh copy, the caller's own (empty
// and not nil for a tombstone).
func (s *Store) GetBlob(ctx context.Context, userID, name string) (storage.Blob, error) {
	if s == nil {
		return storage.Blob{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.Blob{}, err
	}
	if err := checkUserID(userID); err != nil {
		return storage.Blob{}, err
	}
	if err := checkBlobName(name); err != nil {
		return storage.Blob{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.blobs[userID][name]
	if !ok {
		return storage.Blob{}, storage.ErrNotFound
	}
	return storage.Blob{
		UserID:  userID,
		Name:    name,
		Version: r.version,
		Data:    append([]byte{}, r.data...),
	}, nil
}

// PutBlob stores a copy of data (empty: a tombstone) as the user's blob of
// this name with version expect+1, if and only if the stored blob has
// version expect (expect 0: none may exist); otherwise it stores nothing
// and returns [storage.ErrConflict]. The check and the write are made
// under the Store's lock, so of concurrent calls with the same expect
// exactly one succeeds. The value replaced is overwritten with zeros.
func (s *Store) PutBlob(ctx context.Context, userID, name string, data []byte, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if err := checkBlobName(name); err != nil {
		return err
	}
	if len(data) > storage.MaxBlobDataLen {
		return fmt.Errorf("memstore: %w: blob data is %d bytes, more than storage.MaxBlobDataLen (%d)", storage.ErrInvalid, len(data), storage.MaxBlobDataLen)
	}
	own := append([]byte{}, data...)

	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.blobs[userID][name]
	var current uint64 // 0: no blob
	if ok {
		current = old.version
	}
	if current != expect {
		return storage.ErrConflict
	}
	if expect == ^uint64(0) {
		// Unreachable in practice, but a wrapped version would let a
		// stale writer win.
		return errors.New("memstore: blob version would overflow")
	}
	if s.blobs == nil {
		s.blobs = make(map[string]map[string]userRecord)
	}
	names := s.blobs[userID]
	if names == nil {
		names = make(map[string]userRecord)
		s.blobs[userID] = names
	}
	names[name] = userRecord{version: expect + 1, data: own}
	clear(old.data) // GetBlob handed out copies: no caller holds these bytes
	return nil
}

// ListBlobs returns the user's blobs, tombstones included, in increasing
// byte order of their names, at most limit of them after the name after
// ("" from the first). A limit below 1, or an after longer than
// [storage.MaxBlobNameLen] bytes, is refused with [storage.ErrInvalid].
func (s *Store) ListBlobs(ctx context.Context, userID, after string, limit int) ([]storage.BlobInfo, error) {
	if s == nil {
		return nil, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	if len(after) > storage.MaxBlobNameLen {
		return nil, fmt.Errorf("memstore: %w: list after a name of %d bytes (want at most %d)", storage.ErrInvalid, len(after), storage.MaxBlobNameLen)
	}
	if limit < 1 {
		return nil, fmt.Errorf("memstore: %w: list limit %d (want at least 1)", storage.ErrInvalid, limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := s.blobs[userID]
	keys := make([]string, 0, len(names))
	for n := range names {
		if n > after { // Go compares strings byte for byte
			keys = append(keys, n)
		}
	}
	slices.Sort(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	infos := make([]storage.BlobInfo, len(keys))
	for i, n := range keys {
		r := names[n]
		infos[i] = storage.BlobInfo{Name: n, Version: r.version, Size: len(r.data)}
	}
	return infos, nil
}

// DeleteBlobs removes every blob of the user, tombstones and versions
// included, and overwrites their bytes with zeros. It returns nil when the
// user has none.
func (s *Store) DeleteBlobs(ctx context.Context, userID string) error {
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
	for _, r := range s.blobs[userID] {
		clear(r.data) // GetBlob handed out copies: no caller holds these bytes
	}
	delete(s.blobs, userID)
	return nil
}
