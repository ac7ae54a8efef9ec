package memstore

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// Expired sessions that nobody reads again are swept by later writes: their
// number stays a bounded share of the table, and the index by user keeps
// no ID without an entry.
func TestSweepBoundsExpiredEntries(t *testing.T) {
	ctx := t.Context()
	s := New()
	id := func(n uint64) []byte {
		b := make([]byte, storage.SessionIDLen)
		binary.BigEndian.PutUint64(b, n)
		return b
	}
	// Sessions that expire almost at once, each of its own user, never read
	// again.
	const expiring = 2000
	soon := time.Now().Add(20 * time.Millisecond)
	for n := range uint64(expiring) {
		u := string(rune('a'+n%26)) + string(rune('a'+n/26%26)) + string(rune('a'+n/676))
		if err := s.PutSession(ctx, storage.Session{ID: id(n), UserID: u, Expires: soon}, 0); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Until(soon) + 10*time.Millisecond)

	// Writes of live sessions sweep them.
	const live = 4000
	for n := range uint64(live) {
		if err := s.PutSession(ctx, storage.Session{ID: id(expiring + n), UserID: "live", Expires: time.Now().Add(time.Hour)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	left := len(s.sessions.byID) - live
	// The writes examined sweepScan/sweepEvery = 4 entries each, 16000 in
	// all, 4 times as many as there are: few expired ones can be left.
	if bound := expiring / 10; left > bound {
		t.Errorf("%d of %d expired sessions are still held after %d writes, want at most %d", left, expiring, live, bound)
	}
	indexed := 0
	for u, ids := range s.sessions.byUser {
		if len(ids) == 0 {
			t.Errorf("user %q has an empty index", u)
		}
		for id := range ids {
			if e, ok := s.sessions.byID[id]; !ok || e.userID != u {
				t.Errorf("user %q's index holds an ID without an entry of the user's", u)
			}
		}
		indexed += len(ids)
	}
	if indexed != len(s.sessions.byID) {
		t.Errorf("the index by user holds %d IDs, the table %d entries", indexed, len(s.sessions.byID))
	}
	t.Logf("%d of %d expired sessions left after %d writes", left, expiring, live)
}
