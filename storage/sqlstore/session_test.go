package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
)

// These tests cover SessionStore and RefreshStore on both dialects,
// including what the conformance suite cannot do: move the store's clock,
// look at the rows behind the store's back, and migrate a database made
// by the previous schema version.

// sid returns a session or refresh-family ID (storage.SessionIDLen bytes)
// made from label.
func sid(label string) []byte {
	h := sha256.Sum256([]byte("sqlstore test ID\x00" + label))
	return h[:]
}

// fakeClock is a store clock that moves only when told to.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(st *sqlstore.Store, start time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(start.UnixNano())
	sqlstore.SetClock(st, c.Now)
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// t0 is the fake clocks' start: a whole second, so that offsets in whole
// milliseconds are exact.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// eachDialect runs f, in parallel, on a fresh store of each dialect.
func eachDialect(t *testing.T, f func(t *testing.T, d dialectCase, st *sqlstore.Store, raw *sql.DB, table func(string) string)) {
	t.Helper()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			st, _, raw, table := d.open(t)
			f(t, d, st, raw, table)
		})
	}
}

// mustPutSession stores s over whatever version of it is stored.
func mustPutSession(t *testing.T, st storage.SessionStore, s storage.Session) {
	t.Helper()
	if err := st.PutSession(t.Context(), s, currentVersion(t, st, s.ID)); err != nil {
		t.Fatalf("PutSession(%x, %q): %v", s.ID[:4], s.UserID, err)
	}
}

func wantSessionAbsent(t *testing.T, st storage.SessionStore, id []byte) {
	t.Helper()
	if s, err := st.GetSession(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSession(%x): %+v, %v; want ErrNotFound", id[:4], s, err)
	}
}

func wantSession(t *testing.T, st storage.SessionStore, want storage.Session) {
	t.Helper()
	got, err := st.GetSession(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetSession(%x): %v", want.ID[:4], err)
	}
	if !sameSession(got, want) {
		t.Errorf("GetSession(%x) = %+v, want %+v", want.ID[:4], got, want)
	}
}

// sameSession compares sessions with Expires rounded down to the
// millisecond, as the store keeps it.
func sameSession(got, want storage.Session) bool {
	return string(got.ID) == string(want.ID) && got.UserID == want.UserID &&
		got.Expires.Equal(want.Expires.Truncate(time.Millisecond)) && string(got.Data) == string(want.Data) && got.Data != nil
}

func countRows(t *testing.T, raw *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := raw.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSessionRoundTrip(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, _ dialectCase, st *sqlstore.Store, _ *sql.DB, _ func(string) string) {
		ctx := t.Context()
		// Not a whole millisecond: the store rounds down.
		exp := time.Now().Add(time.Hour).Truncate(time.Millisecond).Add(123456 * time.Nanosecond)
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		in := storage.Session{ID: sid("a"), UserID: "alice", Expires: exp, Data: slices.Clone(all)}
		mustPutSession(t, st, in)
		want := storage.Session{ID: sid("a"), UserID: "alice", Expires: exp, Data: all}

		// The store kept neither slice.
		in.ID[0] ^= 0xff
		in.Data[0] ^= 0xff
		wantSession(t, st, want)

		got, err := st.GetSession(ctx, sid("a"))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Expires.Equal(exp.Truncate(time.Millisecond)) || got.Expires.After(exp) {
			t.Errorf("Expires %v, want %v rounded down to the millisecond", got.Expires, exp)
		}
		// The returned slices are the caller's own.
		got.ID[0] ^= 0xff
		got.Data[0] ^= 0xff
		wantSession(t, st, want)

		// Replacing keeps one session, with the new values; empty and nil
		// data both come back as an empty, non-nil slice.
		for _, data := range [][]byte{nil, {}} {
			want = storage.Session{ID: sid("a"), UserID: "alice", Expires: exp.Add(time.Hour), Data: data}
			mustPutSession(t, st, want)
			want.Data = []byte{}
			wantSession(t, st, want)
		}
		// The largest session.
		big := storage.Session{ID: sid("big"), UserID: strings.Repeat("é", storage.MaxUserIDLen/2), Expires: exp, Data: make([]byte, storage.MaxSessionDataLen)}
		mustPutSession(t, st, big)
		wantSession(t, st, big)

		wantSessionAbsent(t, st, sid("never put"))
		if err := st.DeleteSession(ctx, sid("a")); err != nil {
			t.Fatal(err)
		}
		wantSessionAbsent(t, st, sid("a"))
		if err := st.DeleteSession(ctx, sid("a")); err != nil {
			t.Errorf("deleting an absent session: %v", err)
		}
	})
}

// currentVersion returns the stored version of the session, 0 if none.
func currentVersion(t *testing.T, st storage.SessionStore, id []byte) uint64 {
	t.Helper()
	got, err := st.GetSession(t.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("GetSession(%x): %v", id[:4], err)
	}
	return got.Version
}

// A session's user never changes, however close the other user ID is to
// the first.
func TestSessionUserNeverChanges(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, _ dialectCase, st *sqlstore.Store, raw *sql.DB, table func(string) string) {
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		orig := storage.Session{ID: sid("a"), UserID: "alice", Expires: exp, Data: []byte("alice's")}
		mustPutSession(t, st, orig)
		for _, other := range []string{"Alice", "alice ", "alice\x00", "ALICE", "bob"} {
			err := st.PutSession(ctx, storage.Session{ID: sid("a"), UserID: other, Expires: exp.Add(time.Hour), Data: []byte("taken over")}, 1)
			if !errors.Is(err, storage.ErrInvalid) || !strings.HasPrefix(err.Error(), "sqlstore: ") {
				t.Errorf("PutSession for %q on alice's session: %v, want ErrInvalid", other, err)
			}
			// An expired put for another user removes nothing either.
			err = st.PutSession(ctx, storage.Session{ID: sid("a"), UserID: other, Expires: time.Now().Add(-time.Hour)}, 1)
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("expired PutSession for %q on alice's session: %v, want ErrInvalid", other, err)
			}
			if l, err := st.ListUserSessions(ctx, other); err != nil || len(l) != 0 {
				t.Errorf("ListUserSessions(%q) = %v, %v; want none", other, l, err)
			}
		}
		wantSession(t, st, orig)
		if n := countRows(t, raw, table("keyhold_sessions")); n != 1 {
			t.Errorf("%d session rows, want 1", n)
		}

		// Of concurrent puts by two users over version 1 of a session, at
		// most one succeeds, and only one of the owner's; the other user's
		// are refused.
		mustPutSession(t, st, storage.Session{ID: sid("race"), UserID: "alice", Expires: exp})
		errs := raceN(50, func(i int) error {
			return st.PutSession(ctx, storage.Session{ID: sid("race"), UserID: []string{"alice", "Alice"}[i%2], Expires: exp, Data: fmt.Appendf(nil, "%d", i)}, 1)
		})
		got, err := st.GetSession(ctx, sid("race"))
		if err != nil {
			t.Fatal(err)
		}
		if got.UserID != "alice" || got.Version != 2 {
			t.Errorf("after the race: user %q, version %d; want alice's at version 2", got.UserID, got.Version)
		}
		wins := 0
		for i, err := range errs {
			owner := i%2 == 0
			switch {
			case owner && err == nil:
				wins++
			case owner && !errors.Is(err, storage.ErrConflict):
				t.Errorf("put %d by the owner: %v, want nil or ErrConflict", i, err)
			case !owner && !errors.Is(err, storage.ErrInvalid) && !errors.Is(err, storage.ErrConflict):
				t.Errorf("put %d by the other user: %v, want ErrInvalid or ErrConflict", i, err)
			case !owner && err == nil:
				t.Errorf("put %d by the other user succeeded", i)
			}
		}
		if wins != 1 {
			t.Errorf("%d of the owner's puts with expect 1 succeeded, want exactly 1", wins)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, _ dialectCase, st *sqlstore.Store, raw *sql.DB, table func(string) string) {
		ctx := t.Context()
		clock := newFakeClock(st, t0)
		// Expires 1000.5ms from now is stored as 1000ms: the session is
		// absent from then on, half a millisecond early, never late.
		s := storage.Session{ID: sid("a"), UserID: "alice", Expires: t0.Add(1000*time.Millisecond + 500*time.Microsecond), Data: []byte("x")}
		mustPutSession(t, st, s)
		clock.Set(t0.Add(999*time.Millisecond + 999*time.Microsecond))
		wantSession(t, st, s)
		if l, err := st.ListUserSessions(ctx, "alice"); err != nil || len(l) != 1 {
			t.Errorf("ListUserSessions before expiry: %v, %v", l, err)
		}
		clock.Set(t0.Add(1000 * time.Millisecond))
		wantSessionAbsent(t, st, sid("a"))
		if l, err := st.ListUserSessions(ctx, "alice"); err != nil || l == nil || len(l) != 0 {
			t.Errorf("ListUserSessions after expiry: %#v, %v; want an empty slice", l, err)
		}

		// An expired session is absent to PutSession too: another user may
		// take its ID.
		bobs := storage.Session{ID: sid("a"), UserID: "bob", Expires: clock.Now().Add(time.Hour), Data: []byte("bob's")}
		mustPutSession(t, st, bobs)
		wantSession(t, st, bobs)

		// A put whose Expires has passed (or is now) stores nothing and
		// removes the stored session.
		for _, exp := range []time.Time{clock.Now(), clock.Now().Add(-time.Hour), {}} {
			mustPutSession(t, st, storage.Session{ID: sid("b"), UserID: "bob", Expires: clock.Now().Add(time.Hour)})
			mustPutSession(t, st, storage.Session{ID: sid("b"), UserID: "bob", Expires: exp, Data: []byte("y")})
			wantSessionAbsent(t, st, sid("b"))
			mustPutSession(t, st, storage.Session{ID: sid("never"), UserID: "bob", Expires: exp})
			wantSessionAbsent(t, st, sid("never"))
		}
		// Far-future expiry times are clamped, not wrapped into the past.
		mustPutSession(t, st, storage.Session{ID: sid("far"), UserID: "bob", Expires: time.Unix(1<<62, 0)})
		if got, err := st.GetSession(ctx, sid("far")); err != nil || !got.Expires.After(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("far-future session: %+v, %v", got, err)
		}

		// A put removes the user's expired sessions in the same step.
		raw0 := countRows(t, raw, table("keyhold_sessions"))
		for i := range 3 {
			mustPutSession(t, st, storage.Session{ID: sid(fmt.Sprint("carol", i)), UserID: "carol", Expires: clock.Now().Add(time.Second)})
		}
		clock.Advance(2 * time.Second)
		mustPutSession(t, st, storage.Session{ID: sid("carol new"), UserID: "carol", Expires: clock.Now().Add(time.Hour)})
		if n := countRows(t, raw, table("keyhold_sessions")); n != raw0+1 {
			t.Errorf("%d session rows after carol's put, want %d: her expired ones remain", n, raw0+1)
		}
	})
}

func TestListAndDeleteUserSessions(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, _ dialectCase, st *sqlstore.Store, _ *sql.DB, _ func(string) string) {
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		users := []string{"alice", "Alice", "alice ", "bob"}
		want := map[string][]storage.Session{}
		for i, u := range users {
			for j := range i + 1 {
				s := storage.Session{ID: sid(fmt.Sprint(u, "/", j)), UserID: u, Expires: exp.Add(time.Duration(j) * time.Minute), Data: []byte(u + strconv.Itoa(j))}
				mustPutSession(t, st, s)
				want[u] = append(want[u], s)
			}
		}
		check := func(u string, want []storage.Session) {
			t.Helper()
			got, err := st.ListUserSessions(ctx, u)
			if err != nil || got == nil {
				t.Fatalf("ListUserSessions(%q) = %#v, %v", u, got, err)
			}
			byID := func(a, b storage.Session) int { return strings.Compare(string(a.ID), string(b.ID)) }
			slices.SortFunc(got, byID)
			want = slices.Clone(want)
			slices.SortFunc(want, byID)
			if !slices.EqualFunc(got, want, sameSession) {
				t.Errorf("ListUserSessions(%q) = %+v, want %+v", u, got, want)
			}
		}
		for _, u := range users {
			check(u, want[u])
		}
		check("carol", nil)

		if err := st.DeleteUserSessions(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		check("alice", nil)
		for _, s := range want["alice"] {
			wantSessionAbsent(t, st, s.ID)
		}
		for _, u := range users[1:] {
			check(u, want[u])
		}
		if err := st.DeleteUserSessions(ctx, "carol"); err != nil {
			t.Errorf("DeleteUserSessions of a user without sessions: %v", err)
		}
		// The user's ID is free for a new session.
		mustPutSession(t, st, storage.Session{ID: want["alice"][0].ID, UserID: "alice", Expires: exp})
	})
}

func TestRefreshFamilyCAS(t *testing.T) {
	t.Parallel()
	const writers = 50
	for _, d := range dialects {
		for _, stores := range []int{1, 5} {
			t.Run(fmt.Sprintf("%s/%dstores", d.name, stores), func(t *testing.T) {
				t.Parallel()
				st, reopen, _, _ := d.open(t)
				all := []*sqlstore.Store{st}
				for range stores - 1 {
					s, err := reopen(t)
					if err != nil {
						t.Fatal(err)
					}
					all = append(all, s)
				}
				ctx := t.Context()
				id := sid("family")
				exp := time.Now().Add(time.Hour)
				for round := range 5 {
					expect := uint64(round)
					errs := raceN(writers, func(i int) error {
						f := storage.RefreshFamily{ID: id, UserID: "alice", Version: 999, Expires: exp, Data: fmt.Appendf(nil, "round %d writer %d", round, i)}
						return all[i%len(all)].PutRefreshFamily(ctx, f, expect)
					})
					w := oneWinner(t, errs)
					f, err := st.GetRefreshFamily(ctx, id)
					if err != nil || f.Version != expect+1 || string(f.Data) != fmt.Sprintf("round %d writer %d", round, w) || f.UserID != "alice" || string(f.ID) != string(id) {
						t.Fatalf("round %d: after the race %+v, %v; winner %d", round, f, err, w)
					}
				}
				// Stale, future, and impossible versions conflict.
				for _, expect := range []uint64{0, 1, 4, 6, 1 << 63, 1<<64 - 1} {
					err := st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: id, UserID: "alice", Expires: exp}, expect)
					if !errors.Is(err, storage.ErrConflict) {
						t.Errorf("PutRefreshFamily(expect %d) on version 5: %v, want ErrConflict", expect, err)
					}
				}
			})
		}
	}
}

func TestRefreshFamilies(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, _ dialectCase, st *sqlstore.Store, raw *sql.DB, table func(string) string) {
		ctx := t.Context()
		clock := newFakeClock(st, t0)
		id := sid("f")
		put := func(f storage.RefreshFamily, expect uint64) error {
			t.Helper()
			return st.PutRefreshFamily(ctx, f, expect)
		}
		get := func() (storage.RefreshFamily, error) { return st.GetRefreshFamily(ctx, id) }

		if _, err := get(); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetRefreshFamily of an absent family: %v", err)
		}
		if err := put(storage.RefreshFamily{ID: id, UserID: "alice"}, 1); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("expect 1 on an absent family: %v, want ErrConflict", err)
		}
		data := []byte("hash 1")
		if err := put(storage.RefreshFamily{ID: id, UserID: "alice", Expires: t0.Add(time.Second), Data: data}, 0); err != nil {
			t.Fatal(err)
		}
		data[0] = 'X'
		f, err := get()
		if err != nil || f.Version != 1 || string(f.Data) != "hash 1" || !f.Expires.Equal(t0.Add(time.Second)) {
			t.Fatalf("after the first put: %+v, %v", f, err)
		}
		f.Data[0] = 'X'
		if f, _ := get(); string(f.Data) != "hash 1" {
			t.Errorf("changing the returned data changed the store: %q", f.Data)
		}

		// The user never changes: ErrInvalid when the version matches,
		// ErrConflict when it does not.
		for _, other := range []string{"Alice", "alice ", "bob"} {
			if err := put(storage.RefreshFamily{ID: id, UserID: other, Expires: t0.Add(time.Hour)}, 1); !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("expect 1 by %q on alice's family: %v, want ErrInvalid", other, err)
			}
			for _, expect := range []uint64{0, 2} {
				if err := put(storage.RefreshFamily{ID: id, UserID: other, Expires: t0.Add(time.Hour)}, expect); !errors.Is(err, storage.ErrConflict) {
					t.Errorf("expect %d by %q on alice's family: %v, want ErrConflict", expect, other, err)
				}
			}
		}
		if f, err := get(); err != nil || f.Version != 1 || f.UserID != "alice" {
			t.Errorf("after the refused puts: %+v, %v", f, err)
		}
		if err := put(storage.RefreshFamily{ID: id, UserID: "alice", Expires: t0.Add(time.Second), Data: []byte("hash 2")}, 1); err != nil {
			t.Fatal(err)
		}

		// Expired, the family is absent: its version no longer matches, and
		// expect 0 (by anyone) starts it again at version 1.
		clock.Set(t0.Add(time.Second))
		if _, err := get(); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetRefreshFamily of an expired family: %v", err)
		}
		if err := put(storage.RefreshFamily{ID: id, UserID: "alice", Expires: t0.Add(time.Hour)}, 2); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("expect 2 on an expired family: %v, want ErrConflict", err)
		}
		if err := put(storage.RefreshFamily{ID: id, UserID: "bob", Expires: t0.Add(time.Hour), Data: []byte("bob's")}, 0); err != nil {
			t.Fatalf("expect 0 on an expired family: %v", err)
		}
		if f, err := get(); err != nil || f.Version != 1 || f.UserID != "bob" || string(f.Data) != "bob's" {
			t.Errorf("after replacing the expired family: %+v, %v", f, err)
		}

		// A put whose Expires has passed is checked like any other, and
		// leaves the family absent.
		if err := put(storage.RefreshFamily{ID: id, UserID: "bob", Expires: t0}, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := get(); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetRefreshFamily after an expired put: %v", err)
		}

		// Deletes.
		for i, u := range []string{"carol", "carol", "Carol", "dave"} {
			if err := put(storage.RefreshFamily{ID: sid(fmt.Sprint("g", i)), UserID: u, Expires: t0.Add(time.Hour)}, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.DeleteUserRefreshFamilies(ctx, "carol"); err != nil {
			t.Fatal(err)
		}
		for i, present := range []bool{false, false, true, true} {
			_, err := st.GetRefreshFamily(ctx, sid(fmt.Sprint("g", i)))
			if present != (err == nil) {
				t.Errorf("family %d after deleting carol's: %v", i, err)
			}
		}
		if err := st.DeleteRefreshFamily(ctx, sid("g2")); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteRefreshFamily(ctx, sid("g2")); err != nil {
			t.Errorf("deleting an absent family: %v", err)
		}
		if _, err := st.GetRefreshFamily(ctx, sid("g2")); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("after DeleteRefreshFamily: %v", err)
		}
		if err := st.DeleteUserRefreshFamilies(ctx, "nobody"); err != nil {
			t.Errorf("DeleteUserRefreshFamilies of a user without families: %v", err)
		}
		// Only dave's family remains as a row: the expired put removed its
		// family with bob's other expired ones.
		if n := countRows(t, raw, table("keyhold_refresh_families")); n != 1 {
			t.Errorf("%d family rows, want 1", n)
		}
	})
}

// Expired rows of any user are removed now and then, a bounded batch at a
// time; a full batch makes the next write sweep again.
func TestExpiredRowsAreSwept(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d dialectCase, st *sqlstore.Store, raw *sql.DB, table func(string) string) {
		ctx := t.Context()
		clock := newFakeClock(st, t0)
		sessions, families := table("keyhold_sessions"), table("keyhold_refresh_families")
		const expired = sqlstore.SweepBatch + 44
		insertExpired := func(n int, label string) {
			t.Helper()
			tx, err := raw.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			ph, fph := "?, ?, ?, ?", "?, ?, 7, ?, ?"
			if d.name == "PostgreSQL" {
				ph, fph = "$1, $2, $3, $4", "$1, $2, 7, $3, $4"
			}
			for i := range n {
				id, user, exp := sid(fmt.Sprint(label, i)), []byte(fmt.Sprint("user ", i)), clock.Now().UnixMilli()
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+sessions+" (id, user_id, expires, data) VALUES ("+ph+")", id, user, exp, []byte{}); err != nil {
					t.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+families+" (id, user_id, version, expires, data) VALUES ("+fph+")", id, user, exp, []byte{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		want := func(wantSessions, wantFamilies int) {
			t.Helper()
			if n, m := countRows(t, raw, sessions), countRows(t, raw, families); n != wantSessions || m != wantFamilies {
				t.Errorf("%d session rows and %d family rows, want %d and %d", n, m, wantSessions, wantFamilies)
			}
		}
		insertExpired(expired, "a")
		want(expired, expired)

		// The first write sweeps a full batch of each table, the next one
		// the rest.
		put := func(i int) {
			t.Helper()
			mustPutSession(t, st, storage.Session{ID: sid(fmt.Sprint("live", i)), UserID: "alice", Expires: clock.Now().Add(time.Hour)})
		}
		put(0)
		want(expired-sqlstore.SweepBatch+1, expired-sqlstore.SweepBatch)
		put(1)
		want(2, 0)

		// Then not again before a minute has passed, on any write.
		insertExpired(5, "b")
		put(2)
		if err := st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: sid("fam"), UserID: "alice", Expires: clock.Now().Add(time.Hour)}, 0); err != nil {
			t.Fatal(err)
		}
		want(3+5, 1+5)
		clock.Advance(61 * time.Second)
		if err := st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: sid("fam"), UserID: "alice", Expires: clock.Now().Add(time.Hour)}, 1); err != nil {
			t.Fatal(err)
		}
		want(3, 1)
	})
}

// A database at schema version 1 (vaults only) is migrated to the current
// version at the next open, and keeps its vault records.
func TestMigrationFromVersion1(t *testing.T) {
	t.Parallel()
	v1 := func(t *testing.T, dialect string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("migrations", dialect, "0001_vault.sql"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	check := func(t *testing.T, st *sqlstore.Store, raw *sql.DB, table func(string) string) {
		t.Helper()
		ctx := t.Context()
		wantVersions(t, appliedVersions(t, raw, table), migrationCount(t, st.Dialect()))
		for u, want := range map[string]storage.VaultRecord{
			"alice": {UserID: "alice", Version: 3, Data: []byte("alice's vault")},
			"Alice": {UserID: "Alice", Version: 1, Data: []byte("Alice's vault")},
		} {
			got, err := st.GetVault(ctx, u)
			if err != nil || got.Version != want.Version || string(got.Data) != string(want.Data) {
				t.Errorf("GetVault(%q) after the migration: %+v, %v; want %+v", u, got, err, want)
			}
		}
		if err := st.PutVault(ctx, "alice", []byte("v4"), 3); err != nil {
			t.Errorf("PutVault after the migration: %v", err)
		}
		s := storage.Session{ID: sid("s"), UserID: "alice", Expires: time.Now().Add(time.Hour), Data: []byte("session")}
		mustPutSession(t, st, s)
		wantSession(t, st, s)
		if err := st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: sid("f"), UserID: "alice", Expires: time.Now().Add(time.Hour)}, 0); err != nil {
			t.Errorf("PutRefreshFamily after the migration: %v", err)
		}
	}
	const vaultRows = "INSERT INTO %skeyhold_vaults (user_id, version, data) VALUES (CAST('alice' AS %[2]s), 3, CAST('alice''s vault' AS %[2]s)), (CAST('Alice' AS %[2]s), 1, CAST('Alice''s vault' AS %[2]s))"

	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "keyhold.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		raw := rawSQLite(t, path)
		for _, q := range []string{
			`CREATE TABLE keyhold_schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT`,
			strings.ReplaceAll(v1(t, "sqlite"), "{schema}.", ""),
			`INSERT INTO keyhold_schema_migrations (version, name) VALUES (1, '0001_vault')`,
			fmt.Sprintf(vaultRows, "", "BLOB"),
		} {
			if _, err := raw.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		check(t, openSQLite(t, path), raw, func(s string) string { return s })
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		dsn := postgresDSN(t)
		schema := newSchema(t, dsn)
		q := `"` + schema + `".`
		raw := adminDB(t, dsn)
		for _, stmt := range []string{
			`CREATE SCHEMA "` + schema + `"`,
			`CREATE TABLE ` + q + `keyhold_schema_migrations (
	version    integer     NOT NULL PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`,
			strings.ReplaceAll(v1(t, "postgres"), "{schema}.", q),
			`INSERT INTO ` + q + `keyhold_schema_migrations (version, name) VALUES (1, '0001_vault')`,
			fmt.Sprintf(vaultRows, q, "bytea"),
		} {
			if _, err := raw.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		reserveConns(t, testConns)
		check(t, openPostgres(t, dsn, schema), raw, func(s string) string { return q + s })
	})
}

// Arguments outside the bounds are refused with ErrInvalid before any
// query runs: on a closed Store, the error is not the pool's.
func TestSessionBoundsCheckedBeforeTheDatabase(t *testing.T) {
	t.Parallel()
	st, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "keyhold.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	long := strings.Repeat("a", storage.MaxUserIDLen+1)
	tooBig := make([]byte, storage.MaxSessionDataLen+1)
	for _, id := range [][]byte{nil, {}, sid("x")[:31], append(sid("x"), 0)} {
		for name, call := range map[string]func() error{
			"GetSession":       func() error { _, err := st.GetSession(ctx, id); return err },
			"PutSession":       func() error { return st.PutSession(ctx, storage.Session{ID: id, UserID: "alice", Expires: exp}, 0) },
			"DeleteSession":    func() error { return st.DeleteSession(ctx, id) },
			"GetRefreshFamily": func() error { _, err := st.GetRefreshFamily(ctx, id); return err },
			"PutRefreshFamily": func() error {
				return st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: id, UserID: "alice", Expires: exp}, 0)
			},
			"DeleteRefreshFamily": func() error { return st.DeleteRefreshFamily(ctx, id) },
		} {
			if err := call(); !errors.Is(err, storage.ErrInvalid) || !strings.HasPrefix(err.Error(), "sqlstore: ") {
				t.Errorf("%s with a %d-byte ID: %v, want ErrInvalid", name, len(id), err)
			}
		}
	}
	for name, call := range map[string]func() error{
		"PutSession/empty user ID": func() error { return st.PutSession(ctx, storage.Session{ID: sid("x"), Expires: exp}, 0) },
		"PutSession/long user ID":  func() error { return st.PutSession(ctx, storage.Session{ID: sid("x"), UserID: long, Expires: exp}, 0) },
		"PutSession/too much data": func() error {
			return st.PutSession(ctx, storage.Session{ID: sid("x"), UserID: "a", Expires: exp, Data: tooBig}, 0)
		},
		"PutSession/expired, too much data": func() error { return st.PutSession(ctx, storage.Session{ID: sid("x"), UserID: "a", Data: tooBig}, 0) },
		"ListUserSessions/empty user ID":    func() error { _, err := st.ListUserSessions(ctx, ""); return err },
		"ListUserSessions/long user ID":     func() error { _, err := st.ListUserSessions(ctx, long); return err },
		"DeleteUserSessions/empty user ID":  func() error { return st.DeleteUserSessions(ctx, "") },
		"DeleteUserSessions/long user ID":   func() error { return st.DeleteUserSessions(ctx, long) },
		"PutRefreshFamily/empty user ID":    func() error { return st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: sid("x"), Expires: exp}, 0) },
		"PutRefreshFamily/long user ID": func() error {
			return st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: sid("x"), UserID: long, Expires: exp}, 0)
		},
		"PutRefreshFamily/too much data": func() error {
			return st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: sid("x"), UserID: "a", Data: tooBig}, 0)
		},
		"DeleteUserRefreshFamilies/empty user ID": func() error { return st.DeleteUserRefreshFamilies(ctx, "") },
		"DeleteUserRefreshFamilies/long user ID":  func() error { return st.DeleteUserRefreshFamilies(ctx, long) },
	} {
		if err := call(); !errors.Is(err, storage.ErrInvalid) || !strings.HasPrefix(err.Error(), "sqlstore: ") {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// A context that is already done is reported as such, by every method,
// and nothing is written.
func TestSessionContextDone(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, _ dialectCase, st *sqlstore.Store, _ *sql.DB, _ func(string) string) {
		canceled, cancel := context.WithCancel(t.Context())
		cancel()
		expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel2()
		exp := time.Now().Add(time.Hour)
		for _, tc := range []struct {
			ctx  context.Context
			want error
		}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
			ctx := tc.ctx
			for name, call := range map[string]func() error{
				"GetSession": func() error { _, err := st.GetSession(ctx, sid("x")); return err },
				"PutSession": func() error {
					return st.PutSession(ctx, storage.Session{ID: sid("x"), UserID: "alice", Expires: exp}, 0)
				},
				"DeleteSession":      func() error { return st.DeleteSession(ctx, sid("x")) },
				"ListUserSessions":   func() error { _, err := st.ListUserSessions(ctx, "alice"); return err },
				"DeleteUserSessions": func() error { return st.DeleteUserSessions(ctx, "alice") },
				"GetRefreshFamily":   func() error { _, err := st.GetRefreshFamily(ctx, sid("x")); return err },
				"PutRefreshFamily": func() error {
					return st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: sid("x"), UserID: "alice", Expires: exp}, 0)
				},
				"DeleteRefreshFamily":       func() error { return st.DeleteRefreshFamily(ctx, sid("x")) },
				"DeleteUserRefreshFamilies": func() error { return st.DeleteUserRefreshFamilies(ctx, "alice") },
			} {
				if err := call(); !errors.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", name, err, tc.want)
				}
			}
		}
		wantSessionAbsent(t, st, sid("x"))
		if _, err := st.GetRefreshFamily(t.Context(), sid("x")); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetRefreshFamily after the canceled put: %v", err)
		}
	})
}

// Writers of every kind contend for a few sessions and families of two
// users while the clock moves (so that rows expire and sweeps run): no
// call fails with anything but the contract's answers, which in
// PostgreSQL would show a deadlock or serialization failure leaking out.
func TestSessionWritesUnderContention(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, _ dialectCase, st *sqlstore.Store, _ *sql.DB, _ func(string) string) {
		ctx := t.Context()
		clock := newFakeClock(st, t0)
		// Every worker meets every kind of call (w+i)%8 within 8 ops.
		const workers = 50
		ops := testenv.Size(t, 8, 20)
		users := []string{"alice", "Alice"}
		errs := raceN(workers, func(w int) error {
			user := users[w%2]
			for i := range ops {
				k := (w*7 + i*3) % 8
				id := sid(fmt.Sprint("contended ", k))
				var err error
				switch (w + i) % 8 {
				case 0, 1, 2, 3:
					var expect uint64
					if s, gerr := st.GetSession(ctx, id); gerr == nil {
						expect = s.Version
					}
					expires := clock.Now().Add(time.Duration(k) * time.Second)
					if (w+i)%8 == 3 {
						expires = clock.Now().Add(-time.Second)
					}
					err = st.PutSession(ctx, storage.Session{ID: id, UserID: user, Expires: expires, Data: []byte("s")}, expect)
					if errors.Is(err, storage.ErrConflict) {
						err = nil
					}
				case 4:
					err = st.DeleteSession(ctx, id)
					clock.Advance(10 * time.Second)
				case 5:
					_, err = st.ListUserSessions(ctx, user)
					if i%5 == 0 {
						err = errors.Join(err, st.DeleteUserSessions(ctx, user), st.DeleteUserRefreshFamilies(ctx, user))
					}
				case 6, 7:
					var expect uint64
					if f, gerr := st.GetRefreshFamily(ctx, id); gerr == nil {
						expect = f.Version
					}
					err = st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: id, UserID: user, Expires: clock.Now().Add(time.Duration(k) * time.Second)}, expect)
					if errors.Is(err, storage.ErrConflict) {
						err = nil
					}
				}
				if err != nil && !errors.Is(err, storage.ErrInvalid) {
					return fmt.Errorf("op %d: %w", i, err)
				}
				if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalid) && !strings.Contains(err.Error(), "another user") {
					return fmt.Errorf("op %d: %w", i, err)
				}
			}
			return nil
		})
		for w, err := range errs {
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		}
	})
}
