package memstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyhold/keyhold/storage"
)

var (
	_ storage.SessionStore = (*Store)(nil)
	_ storage.RefreshStore = (*Store)(nil)
)

// Every sweepEvery-th write to a table examines up to sweepScan of its
// entries and removes those that have expired, so that entries nobody
// reads again do not stay forever: in the long run about sweepEvery /
// sweepScan of a table's entries are expired ones at most.
const (
	sweepEvery = 16
	sweepScan  = 64
)

// entry is one session or refresh family as a Store holds it. data is never
// changed after it is stored (only replaced), and never handed out.
type entry struct {
	userID  string
	version uint64
	expires time.Time
	data    []byte
}

// expired reports whether e is absent at now: from Expires on.
func (e entry) expired(now time.Time) bool { return !now.Before(e.expires) }

// table holds entries by ID (the ID's bytes as a string) with an index by
// user, which every change keeps consistent with the entries. Store's lock
// guards it. The zero value is an empty table.
type table struct {
	byID   map[string]entry
	byUser map[string]map[string]struct{} // user ID → IDs of the user's entries
	writes uint64                         // puts so far, to time the sweeps
}

// get returns the unexpired entry with this ID. An expired one is removed.
func (tb *table) get(id string, now time.Time) (entry, bool) {
	e, ok := tb.byID[id]
	if !ok {
		return entry{}, false
	}
	if e.expired(now) {
		tb.remove(id)
		return entry{}, false
	}
	return e, true
}

// put stores e with this ID, replacing any entry with it, indexes it under
// its user, and sweeps now and then.
func (tb *table) put(id string, e entry, now time.Time) {
	if old, ok := tb.byID[id]; ok && old.userID != e.userID {
		tb.unindex(id, old.userID)
	}
	if tb.byID == nil {
		tb.byID = make(map[string]entry)
		tb.byUser = make(map[string]map[string]struct{})
	}
	tb.byID[id] = e
	ids := tb.byUser[e.userID]
	if ids == nil {
		ids = make(map[string]struct{})
		tb.byUser[e.userID] = ids
	}
	ids[id] = struct{}{}

	tb.writes++
	if tb.writes%sweepEvery == 0 {
		tb.sweep(now)
	}
}

// remove removes the entry with this ID, if there is one.
func (tb *table) remove(id string) {
	if e, ok := tb.byID[id]; ok {
		delete(tb.byID, id)
		tb.unindex(id, e.userID)
	}
}

// unindex removes id from the user's index, and the index once it is empty.
func (tb *table) unindex(id, userID string) {
	ids := tb.byUser[userID]
	delete(ids, id)
	if len(ids) == 0 {
		delete(tb.byUser, userID)
	}
}

// removeUser removes every entry of the user.
func (tb *table) removeUser(userID string) {
	for id := range tb.byUser[userID] {
		delete(tb.byID, id)
	}
	delete(tb.byUser, userID)
}

// list returns the user's unexpired entries by ID. Expired ones are
// removed.
func (tb *table) list(userID string, now time.Time) map[string]entry {
	ids := tb.byUser[userID]
	live := make(map[string]entry, len(ids))
	for id := range ids {
		e := tb.byID[id]
		if e.expired(now) {
			tb.remove(id) // deleting from ids while ranging over it is allowed
			continue
		}
		live[id] = e
	}
	return live
}

// sweep examines up to sweepScan entries, from wherever map iteration
// starts (a random place), and removes those that have expired.
func (tb *table) sweep(now time.Time) {
	n := 0
	for id, e := range tb.byID {
		if n == sweepScan {
			break
		}
		n++
		if e.expired(now) {
			tb.remove(id)
		}
	}
}

// GetSession returns the session with this ID, or [storage.ErrNotFound] if
// there is none or it has expired (an expired one is removed). The
// session's ID and Data are fresh copies, the caller's own.
func (s *Store) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	if s == nil {
		return storage.Session{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.Session{}, err
	}
	if err := checkID(id); err != nil {
		return storage.Session{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.sessions.get(string(id), time.Now())
	if !ok {
		return storage.Session{}, storage.ErrNotFound
	}
	return e.session(string(id)), nil
}

// PutSession stores a copy of sess with version expect+1 if and only if
// the stored, unexpired session has version expect (expect 0: there is
// none), and indexes it under its user in the same critical section;
// otherwise it stores nothing and returns [storage.ErrConflict].
// sess.Version is ignored. Replacing a session of another user returns an
// error wrapping [storage.ErrInvalid] and stores nothing. A session whose
// Expires has passed is not stored: once expect matched, the stored one
// with its ID is removed.
func (s *Store) PutSession(ctx context.Context, sess storage.Session, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(sess.ID); err != nil {
		return err
	}
	if err := checkUserID(sess.UserID); err != nil {
		return err
	}
	if err := checkSessionData(sess.Data); err != nil {
		return err
	}
	id := string(sess.ID)
	e := entry{userID: sess.UserID, expires: sess.Expires, data: append([]byte{}, sess.Data...)}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	old, ok := s.sessions.get(id, now)
	var current uint64 // 0: no session
	if ok {
		current = old.version
	}
	if current != expect {
		return storage.ErrConflict
	}
	if ok && old.userID != e.userID {
		return fmt.Errorf("memstore: %w: the session with this ID belongs to another user", storage.ErrInvalid)
	}
	if expect == ^uint64(0) {
		// Unreachable in practice, as in PutVault.
		return errors.New("memstore: session version would overflow")
	}
	if e.expired(now) {
		s.sessions.remove(id)
		return nil
	}
	e.version = expect + 1
	s.sessions.put(id, e, now)
	return nil
}

// DeleteSession removes the session with this ID. Deleting a session that
// does not exist returns nil.
func (s *Store) DeleteSession(ctx context.Context, id []byte) error {
	if s == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions.remove(string(id))
	return nil
}

// ListUserSessions returns the user's unexpired sessions, in no particular
// order, or an empty slice if there are none. Expired ones are removed. The
// sessions' IDs and Data are fresh copies, the caller's own.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	if s == nil {
		return nil, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.sessions.list(userID, time.Now())
	out := make([]storage.Session, 0, len(live))
	for id, e := range live {
		out = append(out, e.session(id))
	}
	return out, nil
}

// DeleteUserSessions removes every session of the user.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
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
	s.sessions.removeUser(userID)
	return nil
}

// GetRefreshFamily returns the family, or [storage.ErrNotFound] if there is
// none or it has expired (an expired one is removed). The family's ID and
// Data are fresh copies, the caller's own.
func (s *Store) GetRefreshFamily(ctx context.Context, id []byte) (storage.RefreshFamily, error) {
	if s == nil {
		return storage.RefreshFamily{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.RefreshFamily{}, err
	}
	if err := checkID(id); err != nil {
		return storage.RefreshFamily{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.families.get(string(id), time.Now())
	if !ok {
		return storage.RefreshFamily{}, storage.ErrNotFound
	}
	return e.family(string(id)), nil
}

// PutRefreshFamily stores a copy of f with version expect+1 if and only if
// the stored, unexpired family has version expect (expect 0: there is
// none); otherwise it stores nothing and returns [storage.ErrConflict].
// f.Version is ignored. Of concurrent calls with the same expect, exactly
// one succeeds. Replacing a family of another user returns an error
// wrapping [storage.ErrInvalid] and stores nothing. A family whose Expires
// has passed is not stored, and any stored one with its ID is removed.
func (s *Store) PutRefreshFamily(ctx context.Context, f storage.RefreshFamily, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(f.ID); err != nil {
		return err
	}
	if err := checkUserID(f.UserID); err != nil {
		return err
	}
	if err := checkSessionData(f.Data); err != nil {
		return err
	}
	id := string(f.ID)
	e := entry{userID: f.UserID, expires: f.Expires, data: append([]byte{}, f.Data...)}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	old, ok := s.families.get(id, now)
	var current uint64 // 0: no family
	if ok {
		current = old.version
	}
	if current != expect {
		return storage.ErrConflict
	}
	if ok && old.userID != e.userID {
		return fmt.Errorf("memstore: %w: the refresh family with this ID belongs to another user", storage.ErrInvalid)
	}
	if expect == ^uint64(0) {
		// Unreachable in practice, as in PutVault.
		return errors.New("memstore: refresh family version would overflow")
	}
	if e.expired(now) {
		s.families.remove(id)
		return nil
	}
	e.version = expect + 1
	s.families.put(id, e, now)
	return nil
}

// DeleteRefreshFamily removes the family. Deleting one that does not exist
// returns nil.
func (s *Store) DeleteRefreshFamily(ctx context.Context, id []byte) error {
	if s == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.families.remove(string(id))
	return nil
}

// DeleteUserRefreshFamilies removes every family of the user.
func (s *Store) DeleteUserRefreshFamilies(ctx context.Context, userID string) error {
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
	s.families.removeUser(userID)
	return nil
}

// session returns e as the session with this ID, in fresh memory.
func (e entry) session(id string) storage.Session {
	return storage.Session{
		ID:      []byte(id),
		UserID:  e.userID,
		Version: e.version,
		Expires: e.expires,
		Data:    append([]byte{}, e.data...),
	}
}

// family returns e as the refresh family with this ID, in fresh memory.
func (e entry) family(id string) storage.RefreshFamily {
	return storage.RefreshFamily{
		ID:      []byte(id),
		UserID:  e.userID,
		Version: e.version,
		Expires: e.expires,
		Data:    append([]byte{}, e.data...),
	}
}

// checkID refuses session and refresh-family IDs of another length than
// storage.SessionIDLen.
func checkID(id []byte) error {
	if len(id) != storage.SessionIDLen {
		return fmt.Errorf("memstore: %w: ID is %d bytes, want storage.SessionIDLen (%d)", storage.ErrInvalid, len(id), storage.SessionIDLen)
	}
	return nil
}

// checkSessionData refuses session and refresh-family data longer than
// storage.MaxSessionDataLen.
func checkSessionData(data []byte) error {
	if len(data) > storage.MaxSessionDataLen {
		return fmt.Errorf("memstore: %w: data is %d bytes, more than storage.MaxSessionDataLen (%d)", storage.ErrInvalid, len(data), storage.MaxSessionDataLen)
	}
	return nil
}
