package memstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/storagetest"
)

// Both conformance runs wait on expiry for most of their time: they run
// in parallel (each store is its own).
func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Store { return memstore.New() })
}

// The zero value is a usable, empty store.
func TestConformanceZeroValue(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Store { return new(memstore.Store) })
}

// Values keyhold never passes are refused with an error wrapping
// ErrInvalid (not ErrNotFound, not ErrConflict), and nothing is stored.
func TestRefusesOutOfBoundsValues(t *testing.T) {
	ctx := t.Context()
	long := strings.Repeat("a", storage.MaxUserIDLen+1)
	tooBig := make([]byte, storage.MaxVaultDataLen+1)
	id := make([]byte, storage.SessionIDLen)
	shortID, longID := id[:storage.SessionIDLen-1], make([]byte, storage.SessionIDLen+1)
	later := time.Now().Add(time.Hour)
	session := func(id []byte, userID string, data []byte) storage.Session {
		return storage.Session{ID: id, UserID: userID, Expires: later, Data: data}
	}
	family := func(id []byte, userID string, data []byte) storage.RefreshFamily {
		return storage.RefreshFamily{ID: id, UserID: userID, Expires: later, Data: data}
	}
	tooMuchSession := make([]byte, storage.MaxSessionDataLen+1)

	for _, tc := range []struct {
		name string
		call func(s *memstore.Store) error
	}{
		{"GetVault/empty user ID", func(s *memstore.Store) error { _, err := s.GetVault(ctx, ""); return err }},
		{"GetVault/long user ID", func(s *memstore.Store) error { _, err := s.GetVault(ctx, long); return err }},
		{"PutVault/empty user ID", func(s *memstore.Store) error { return s.PutVault(ctx, "", []byte("x"), 0) }},
		{"PutVault/long user ID", func(s *memstore.Store) error { return s.PutVault(ctx, long, []byte("x"), 0) }},
		{"PutVault/too much data", func(s *memstore.Store) error { return s.PutVault(ctx, "alice", tooBig, 0) }},
		{"DeleteVault/empty user ID", func(s *memstore.Store) error { return s.DeleteVault(ctx, "", 0) }},
		{"DeleteVault/long user ID", func(s *memstore.Store) error { return s.DeleteVault(ctx, long, 0) }},

		{"GetSession/short ID", func(s *memstore.Store) error { _, err := s.GetSession(ctx, shortID); return err }},
		{"GetSession/long ID", func(s *memstore.Store) error { _, err := s.GetSession(ctx, longID); return err }},
		{"GetSession/nil ID", func(s *memstore.Store) error { _, err := s.GetSession(ctx, nil); return err }},
		{"PutSession/short ID", func(s *memstore.Store) error { return s.PutSession(ctx, session(shortID, "alice", nil), 0) }},
		{"PutSession/long ID", func(s *memstore.Store) error { return s.PutSession(ctx, session(longID, "alice", nil), 0) }},
		{"PutSession/empty user ID", func(s *memstore.Store) error { return s.PutSession(ctx, session(id, "", nil), 0) }},
		{"PutSession/long user ID", func(s *memstore.Store) error { return s.PutSession(ctx, session(id, long, nil), 0) }},
		{"PutSession/too much data", func(s *memstore.Store) error { return s.PutSession(ctx, session(id, "alice", tooMuchSession), 0) }},
		{"DeleteSession/short ID", func(s *memstore.Store) error { return s.DeleteSession(ctx, shortID) }},
		{"ListUserSessions/empty user ID", func(s *memstore.Store) error { _, err := s.ListUserSessions(ctx, ""); return err }},
		{"ListUserSessions/long user ID", func(s *memstore.Store) error { _, err := s.ListUserSessions(ctx, long); return err }},
		{"DeleteUserSessions/empty user ID", func(s *memstore.Store) error { return s.DeleteUserSessions(ctx, "") }},
		{"DeleteUserSessions/long user ID", func(s *memstore.Store) error { return s.DeleteUserSessions(ctx, long) }},

		{"GetRefreshFamily/short ID", func(s *memstore.Store) error { _, err := s.GetRefreshFamily(ctx, shortID); return err }},
		{"PutRefreshFamily/long ID", func(s *memstore.Store) error { return s.PutRefreshFamily(ctx, family(longID, "alice", nil), 0) }},
		{"PutRefreshFamily/empty user ID", func(s *memstore.Store) error { return s.PutRefreshFamily(ctx, family(id, "", nil), 0) }},
		{"PutRefreshFamily/long user ID", func(s *memstore.Store) error { return s.PutRefreshFamily(ctx, family(id, long, nil), 0) }},
		{"PutRefreshFamily/too much data", func(s *memstore.Store) error {
			return s.PutRefreshFamily(ctx, family(id, "alice", tooMuchSession), 0)
		}},
		{"DeleteRefreshFamily/short ID", func(s *memstore.Store) error { return s.DeleteRefreshFamily(ctx, shortID) }},
		{"DeleteUserRefreshFamilies/empty user ID", func(s *memstore.Store) error { return s.DeleteUserRefreshFamilies(ctx, "") }},
		{"DeleteUserRefreshFamilies/long user ID", func(s *memstore.Store) error { return s.DeleteUserRefreshFamilies(ctx, long) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := memstore.New()
			err := tc.call(s)
			if !errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
				t.Fatalf("got %v, want an error wrapping ErrInvalid, and neither ErrNotFound nor ErrConflict", err)
			}
			if !strings.HasPrefix(err.Error(), "memstore: ") {
				t.Errorf("error %q is not prefixed with the package name", err)
			}
			for _, u := range []string{"alice", long[:storage.MaxUserIDLen]} {
				if _, err := s.GetVault(ctx, u); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("GetVault(%.8q…) after the refusal: %v, want ErrNotFound", u, err)
				}
				if l, err := s.ListUserSessions(ctx, u); err != nil || len(l) != 0 {
					t.Errorf("ListUserSessions(%.8q…) after the refusal: %d sessions, error %v; want none", u, len(l), err)
				}
			}
			if _, err := s.GetSession(ctx, id); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetSession after the refusal: %v, want ErrNotFound", err)
			}
			if _, err := s.GetRefreshFamily(ctx, id); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetRefreshFamily after the refusal: %v, want ErrNotFound", err)
			}
		})
	}
}

// A context that is done wins over a refusal: it is checked first.
func TestContextCheckedFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := memstore.New()
	if err := s.PutVault(ctx, "", nil, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("PutVault with a cancelled context and an empty user ID: %v, want context.Canceled", err)
	}
	if err := s.PutSession(ctx, storage.Session{}, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("PutSession with a cancelled context and no ID: %v, want context.Canceled", err)
	}
	if err := s.PutRefreshFamily(ctx, storage.RefreshFamily{}, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("PutRefreshFamily with a cancelled context and no ID: %v, want context.Canceled", err)
	}
}

// A put with the wrong expect and another user conflicts: the version is
// checked first, as it is for a put of the family's own user.
func TestRefreshConflictBeforeUserChange(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	id := make([]byte, storage.SessionIDLen)
	f := storage.RefreshFamily{ID: id, UserID: "alice", Expires: time.Now().Add(time.Hour)}
	if err := s.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	f.UserID = "bob"
	if err := s.PutRefreshFamily(ctx, f, 0); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutRefreshFamily(expect 0) of bob's family over alice's: %v, want ErrConflict", err)
	}
	if err := s.PutRefreshFamily(ctx, f, 1); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("PutRefreshFamily(expect 1) of bob's family over alice's: %v, want ErrInvalid", err)
	}
}

// An expired session put with another user's session ID is refused like
// any other change of user, and removes nothing.
func TestExpiredPutOfAnotherUserIsInvalid(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	id := make([]byte, storage.SessionIDLen)
	if err := s.PutSession(ctx, storage.Session{ID: id, UserID: "alice", Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	err := s.PutSession(ctx, storage.Session{ID: id, UserID: "bob", Expires: time.Now().Add(-time.Hour)}, 1)
	if !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("PutSession of bob's expired session over alice's: %v, want ErrInvalid", err)
	}
	if got, err := s.GetSession(ctx, id); err != nil || got.UserID != "alice" {
		t.Errorf("GetSession after the refusal: user %q, error %v; want alice's session", got.UserID, err)
	}
}

// Many users written and read at once, for the race detector: the suite
// races goroutines on one record, this on the map.
func TestConcurrentUsers(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	const n = 64
	errs := make(chan error, 3*n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			u := string(rune('A' + i))
			errs <- s.PutVault(ctx, u, []byte(u), 0)
			rec, err := s.GetVault(ctx, u)
			if err == nil && (rec.Version != 1 || string(rec.Data) != u) {
				err = errors.New("wrong record for " + u)
			}
			errs <- err
			errs <- s.DeleteVault(ctx, u, 1)
		}()
	}
	for range n {
		<-done
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
