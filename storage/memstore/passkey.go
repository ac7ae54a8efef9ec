package memstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.PasskeyStore = (*Store)(nil)

// passkeyTable is what a Store holds of passkey records: the records by
// user, and the two indexes, from a handle and from a credential ID to
// the user. All three change together, under the Store's lock.
type passkeyTable struct {
	records   map[string]passkeyRecord // by user ID
	byHandle  map[string]string        // handle → user ID
	byCredIDs map[string]string        // credential ID → user ID
}

// passkeyRecord is one user's record. Its slices are the Store's own:
// never changed after they are stored (but wiped when replaced or
// deleted), never handed out.
type passkeyRecord struct {
	version uint64
	handle  []byte
	credIDs [][]byte
	data    []byte
}

// checkPasskeyRecord refuses a record out of the bounds of package
// storage: an empty or over-long user ID, a handle of another length than
// [storage.PasskeyHandleLen], more than [storage.MaxPasskeysPerUser]
// credential IDs, an empty or over-long credential ID or two equal ones,
// data over [storage.MaxPasskeyDataLen] bytes. The values themselves are
// not echoed.
func checkPasskeyRecord(r storage.PasskeyRecord) error {
	if err := checkUserID(r.UserID); err != nil {
		return err
	}
	if err := checkHandle(r.Handle); err != nil {
		return err
	}
	if len(r.CredentialIDs) > storage.MaxPasskeysPerUser {
		return fmt.Errorf("memstore: %w: %d credential IDs, more than storage.MaxPasskeysPerUser (%d)", storage.ErrInvalid, len(r.CredentialIDs), storage.MaxPasskeysPerUser)
	}
	seen := make(map[string]struct{}, len(r.CredentialIDs))
	for i, id := range r.CredentialIDs {
		if err := checkCredentialID(id); err != nil {
			return err
		}
		if _, dup := seen[string(id)]; dup {
			return fmt.Errorf("memstore: %w: credential ID %d is listed twice", storage.ErrInvalid, i)
		}
		seen[string(id)] = struct{}{}
	}
	if len(r.Data) > storage.MaxPasskeyDataLen {
		return fmt.Errorf("memstore: %w: passkey data is %d bytes, more than storage.MaxPasskeyDataLen (%d)", storage.ErrInvalid, len(r.Data), storage.MaxPasskeyDataLen)
	}
	return nil
}

func checkHandle(handle []byte) error {
	if len(handle) != storage.PasskeyHandleLen {
		return fmt.Errorf("memstore: %w: user handle of %d bytes, want storage.PasskeyHandleLen (%d)", storage.ErrInvalid, len(handle), storage.PasskeyHandleLen)
	}
	return nil
}

func checkCredentialID(id []byte) error {
	if len(id) == 0 || len(id) > storage.MaxCredentialIDLen {
		return fmt.Errorf("memstore: %w: credential ID of %d bytes, want 1 to storage.MaxCredentialIDLen (%d)", storage.ErrInvalid, len(id), storage.MaxCredentialIDLen)
	}
	return nil
}

// GetPasskeys returns the user's passkey record, or [storage.ErrNotFound]
// if there is none. Its Handle, CredentialIDs (in the order they were
// put) and Data are fresh copies, the caller's own.
func (s *Store) GetPasskeys(ctx context.Context, userID string) (storage.PasskeyRecord, error) {
	if s == nil {
		return storage.PasskeyRecord{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.PasskeyRecord{}, err
	}
	if err := checkUserID(userID); err != nil {
		return storage.PasskeyRecord{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.passkeys.records[userID]
	if !ok {
		return storage.PasskeyRecord{}, storage.ErrNotFound
	}
	ids := make([][]byte, len(r.credIDs))
	for i, id := range r.credIDs {
		ids[i] = append([]byte{}, id...)
	}
	return storage.PasskeyRecord{
		UserID:        userID,
		Handle:        append([]byte{}, r.handle...),
		CredentialIDs: ids,
		Version:       r.version,
		Data:          append([]byte{}, r.data...),
	}, nil
}

// PutPasskeys stores a copy of r as r.UserID's record with version
// expect+1, and indexes its handle and credential IDs, if and only if the
// stored record has version expect (expect 0: no record may exist);
// otherwise it stores nothing and returns [storage.ErrConflict]. A handle
// other than the stored record's is refused with an error wrapping
// [storage.ErrInvalid]; a handle or a credential ID that another user's
// record holds, with [storage.ErrDuplicate]. The checks and the write are
// made under the Store's lock, so of concurrent calls with the same
// expect exactly one succeeds, and of users registering one credential ID
// at once at most one does. The data of the record replaced is
// overwritten with zeros.
func (s *Store) PutPasskeys(ctx context.Context, r storage.PasskeyRecord, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkPasskeyRecord(r); err != nil {
		return err
	}
	own := passkeyRecord{
		version: expect + 1,
		handle:  append([]byte{}, r.Handle...),
		credIDs: make([][]byte, len(r.CredentialIDs)),
		data:    append([]byte{}, r.Data...),
	}
	for i, id := range r.CredentialIDs {
		own.credIDs[i] = append([]byte{}, id...)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.passkeys
	old, ok := t.records[r.UserID]
	var current uint64 // 0: no record
	if ok {
		current = old.version
	}
	if current != expect {
		return storage.ErrConflict
	}
	if expect == ^uint64(0) {
		// As in putRecord: a wrapped version would let a stale writer win.
		return errors.New("memstore: passkey version would overflow")
	}
	if ok && string(old.handle) != string(own.handle) {
		return fmt.Errorf("memstore: %w: the user handle of a passkey record cannot change", storage.ErrInvalid)
	}
	if u, held := t.byHandle[string(own.handle)]; held && u != r.UserID {
		return fmt.Errorf("memstore: %w: another user's passkey record has this user handle", storage.ErrDuplicate)
	}
	for i, id := range own.credIDs {
		if u, held := t.byCredIDs[string(id)]; held && u != r.UserID {
			return fmt.Errorf("memstore: %w: credential ID %d belongs to another user", storage.ErrDuplicate, i)
		}
	}

	if t.records == nil {
		t.records = make(map[string]passkeyRecord)
		t.byHandle = make(map[string]string)
		t.byCredIDs = make(map[string]string)
	}
	if ok {
		for _, id := range old.credIDs {
			delete(t.byCredIDs, string(id))
		}
		clear(old.data) // GetPasskeys handed out copies: no caller holds these bytes
	}
	t.records[r.UserID] = own
	t.byHandle[string(own.handle)] = r.UserID
	for _, id := range own.credIDs {
		t.byCredIDs[string(id)] = r.UserID
	}
	return nil
}

// DeletePasskeys removes the user's passkey record and its index entries
// if its version is expect, and returns [storage.ErrConflict] if it has
// another version, nil if there is no record. The deleted record's handle
// and data are overwritten with zeros.
func (s *Store) DeletePasskeys(ctx context.Context, userID string, expect uint64) error {
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
	t := &s.passkeys
	r, ok := t.records[userID]
	if !ok {
		return nil
	}
	if r.version != expect {
		return storage.ErrConflict
	}
	delete(t.byHandle, string(r.handle))
	for _, id := range r.credIDs {
		delete(t.byCredIDs, string(id))
	}
	delete(t.records, userID)
	clear(r.handle)
	clear(r.data)
	return nil
}

// UserByHandle returns the user whose passkey record has this handle, or
// [storage.ErrNotFound].
func (s *Store) UserByHandle(ctx context.Context, handle []byte) (string, error) {
	if s == nil {
		return "", errNilStore
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := checkHandle(handle); err != nil {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.passkeys.byHandle[string(handle)]
	if !ok {
		return "", storage.ErrNotFound
	}
	return u, nil
}

// UserByCredential returns the user whose passkey record lists this
// credential ID, or [storage.ErrNotFound].
func (s *Store) UserByCredential(ctx context.Context, credentialID []byte) (string, error) {
	if s == nil {
		return "", errNilStore
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := checkCredentialID(credentialID); err != nil {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.passkeys.byCredIDs[string(credentialID)]
	if !ok {
		return "", storage.ErrNotFound
	}
	return u, nil
}
