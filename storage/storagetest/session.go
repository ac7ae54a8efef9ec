package storagetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// RunSessionStore tests that a [storage.SessionStore] keeps its contract,
// one subtest per clause. It is for adapters that provide only this
// interface; [Run] calls it too. newStore must return an empty, isolated
// store on every call; cleanup goes through t.Cleanup.
//
// Besides the plain clauses, the subtests try what adapters get wrong:
// session IDs with every byte value (NUL first, NUL only, not UTF-8, ASCII
// letters in either case, trailing spaces), Expires in time zones east and
// west of UTC and more than 2^31 milliseconds ahead, user IDs that a
// collation would merge ("alice", "Alice", "alice "), an expired session's
// ID taken by another user (a stale entry in the index by user must not
// list it, nor let DeleteUserSessions remove it), 50 sessions of one user
// stored at once (an index kept as one value loses updates), and
// DeleteUserSessions racing PutSession. Clause ExpiredSessionIsAbsent
// sleeps about 1.6 s; the package documentation says what it needs of the
// store's clock.
func RunSessionStore(t *testing.T, newStore func(t *testing.T) storage.SessionStore) {
	runClauses(t, sessionClauses, newStore)
}

// sessionClauses are the SessionStore subtests, in the order of the
// contract.
var sessionClauses = []clause[storage.SessionStore]{
	// GetSession and PutSession.
	{"GetAbsentIsErrNotFound", sessionGetAbsentIsErrNotFound},
	{"PutThenGetRoundTrips", sessionPutThenGetRoundTrips},
	{"PutReplaces", sessionPutReplaces},
	{"PutWithAnotherUserIsInvalid", sessionPutWithAnotherUserIsInvalid},
	{"PutExpiredStoresNothing", sessionPutExpiredStoresNothing},
	{"ExpiredSessionIsAbsent", expiredSessionIsAbsent},

	// PutSession's compare-and-swap on the version.
	{"PutVersionsCountFromOne", sessionPutVersionsCountFromOne},
	{"PutExpectZeroWhenPresentConflicts", sessionPutExpectZeroWhenPresentConflicts},
	{"PutStaleOrFutureExpectConflicts", sessionPutStaleOrFutureExpectConflicts},
	{"PutNonZeroExpectWhenAbsentConflicts", sessionPutNonZeroExpectWhenAbsentConflicts},
	{"PutIgnoresVersionField", sessionPutIgnoresVersionField},
	{"StalePutAfterDeleteConflicts", sessionStalePutAfterDeleteConflicts},
	{"StalePutAfterDeleteUserSessionsConflicts", sessionStalePutAfterDeleteUserSessionsConflicts},
	{"StaleTouchAfterLockConflicts", sessionStaleTouchAfterLockConflicts},
	{"ExpiredPutWithStaleExpectConflicts", sessionExpiredPutWithStaleExpectConflicts},
	{"ConcurrentCreatesOneWins", sessionConcurrentCreatesOneWins},
	{"ConcurrentUpdatesOneWins", sessionConcurrentUpdatesOneWins},
	{"ConcurrentDeleteAndStalePutLeaveNothing", sessionConcurrentDeleteAndStalePutLeaveNothing},

	// DeleteSession.
	{"DeleteAbsentIsNil", sessionDeleteAbsentIsNil},
	{"DeleteThenGetIsErrNotFound", sessionDeleteThenGetIsErrNotFound},

	// ListUserSessions and DeleteUserSessions.
	{"ListReturnsOnlyTheUsersSessions", listReturnsOnlyTheUsersSessions},
	{"ListOfNoneIsEmpty", listOfNoneIsEmpty},
	{"DeleteUserSessionsRemovesOnlyTheUsers", deleteUserSessionsRemovesOnlyTheUsers},

	// The index by user under concurrency.
	{"ConcurrentPutsAreAllListed", concurrentPutsAreAllListed},
	{"ConcurrentPutAndDeleteUserKeepIndexConsistent", concurrentPutAndDeleteUserKeepIndexConsistent},

	// Byte slices are not retained, and returned ones are the caller's.
	{"PutDoesNotRetainIDOrData", sessionPutDoesNotRetainIDOrData},
	{"GetReturnsCallersOwnCopy", sessionGetReturnsCallersOwnCopy},
	{"ListReturnsCallersOwnCopy", listReturnsCallersOwnCopy},

	// Opaque IDs and data; values at the bounds.
	{"BinaryIDsRoundTrip", sessionBinaryIDsRoundTrip},
	{"BinaryDataRoundTrips", sessionBinaryDataRoundTrips},
	{"LargestDataRoundTrips", sessionLargestDataRoundTrips},
	{"EmptyDataRoundTrips", sessionEmptyDataRoundTrips},
	{"LongestUserIDRoundTrips", sessionLongestUserIDRoundTrips},

	// Every method honours its context.
	{"CanceledContextIsHonoured", canceledContextIsHonoured(sessionContextIsHonoured)},
	{"ExpiredDeadlineIsHonoured", expiredDeadlineIsHonoured(sessionContextIsHonoured)},
}

func sessionGetAbsentIsErrNotFound(t *testing.T, s storage.SessionStore) {
	wantNoSession(t, s, sessionID(1), "none was stored")
	mustPutSession(t, s, testSession(2, "bob"))
	wantNoSession(t, s, sessionID(1), "only another session was stored")
}

func sessionPutThenGetRoundTrips(t *testing.T, s storage.SessionStore) {
	var all []storage.Session
	for i, expires := range testExpiries() {
		sess := testSession(uint64(i), user)
		sess.Expires = expires
		mustPutSession(t, s, sess)
		wantSession(t, s, sess)
		all = append(all, sess)
	}
	wantSessionList(t, s, user, all...)
}

func sessionPutReplaces(t *testing.T, s storage.SessionStore) {
	first, other := testSession(1, user), testSession(2, user)
	mustPutSession(t, s, first)
	mustPutSession(t, s, other)

	// A later expiry and other data.
	second := cloneSession(first)
	second.Expires = first.Expires.Add(time.Hour)
	second.Data = []byte("replaced")
	mustPutSession(t, s, second)
	wantSession(t, s, second)
	wantSessionList(t, s, user, second, other)

	// An earlier one.
	third := cloneSession(first)
	third.Expires = time.Now().Add(10 * time.Minute)
	third.Data = []byte("replaced again")
	mustPutSession(t, s, third)
	wantSession(t, s, third)
	wantSessionList(t, s, user, third, other)
}

func sessionPutWithAnotherUserIsInvalid(t *testing.T, s storage.SessionStore) {
	orig := testSession(1, user)
	mustPutSession(t, s, orig)
	for _, other := range []string{"bob", "Alice", "alice "} {
		intruder := storage.Session{ID: sessionID(1), UserID: other, Expires: time.Now().Add(2 * time.Hour), Data: []byte("intruder")}
		if err := s.PutSession(t.Context(), intruder, 1); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("PutSession of %s's session with the ID of %s's: %v, want storage.ErrInvalid", shortID(other), shortID(user), err)
		}
		wantSession(t, s, orig)
		wantSessionList(t, s, other)
	}
	wantSessionList(t, s, user, orig)
}

func sessionPutExpiredStoresNothing(t *testing.T, s storage.SessionStore) {
	past := time.Now().Add(-time.Hour)
	keep := testSession(1, user)
	mustPutSession(t, s, keep)

	// A new session that has already expired is not stored. That is not
	// an error: the put succeeds, and the session is absent at once.
	fresh := testSession(2, user)
	fresh.Expires = past
	if err := s.PutSession(t.Context(), fresh, 0); err != nil {
		t.Errorf("PutSession of a new session that expired an hour ago: %v, want nil", err)
	}
	wantNoSession(t, s, fresh.ID, "it was put with an Expires an hour ago")

	// Replacing a session with one that has expired removes it.
	stored := testSession(3, user)
	mustPutSession(t, s, stored)
	expired := cloneSession(stored)
	expired.Expires = past
	expired.Data = []byte("expired replacement")
	// With a stale version, it conflicts and removes nothing.
	if err := s.PutSession(t.Context(), expired, 2); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutSession of an expired replacement expecting version 2 of a session at version 1: %v, want storage.ErrConflict", err)
	}
	wantSession(t, s, stored)
	if err := s.PutSession(t.Context(), expired, 1); err != nil {
		t.Errorf("PutSession replacing a session with one that expired an hour ago: %v, want nil", err)
	}
	wantNoSession(t, s, stored.ID, "it was replaced with one that expired an hour ago")
	wantSessionList(t, s, user, keep)

	// The ID can be stored again.
	mustPutSession(t, s, stored)
	wantSession(t, s, stored)
	wantSessionList(t, s, user, keep, stored)
}

// expiredSessionIsAbsent checks that a session is absent for every method
// once its Expires has passed, whether or not the store has removed it.
func expiredSessionIsAbsent(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	expires := time.Now().Add(expiryLead).In(west)
	short, other := testSession(1, user), testSession(2, user)
	short.Expires, other.Expires = expires, expires
	long := testSession(3, user)
	for _, sess := range []storage.Session{short, other, long} {
		mustPutSession(t, s, sess)
	}
	if _, err := s.GetSession(ctx, short.ID); err != nil {
		t.Fatalf("GetSession of a session that expires in %v: %v, want it (is the store's clock ahead of the test's, or is the store this slow?)", time.Until(expires).Round(time.Millisecond), err)
	}
	wantSessionList(t, s, user, short, other, long)

	waitUntilPast(t, expires)
	wantNoSession(t, s, short.ID, "its Expires has passed")
	wantNoSession(t, s, other.ID, "its Expires has passed")
	wantSessionList(t, s, user, long)
	if err := s.DeleteSession(ctx, other.ID); err != nil {
		t.Errorf("DeleteSession of an expired session: %v, want nil", err)
	}

	// The expired session is absent for PutSession too: its ID may be
	// stored again, even for another user, and that session is then
	// neither listed nor deleted with the expired one's user.
	// A put that expects the version it had conflicts, and does not bring
	// it back.
	stale := cloneSession(short)
	stale.Expires = time.Now().Add(time.Hour)
	if err := s.PutSession(ctx, stale, 1); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutSession expecting the version of a session that has expired: %v, want storage.ErrConflict", err)
	}
	wantNoSession(t, s, short.ID, "its Expires had passed when a put expected its old version")
	reused := testSession(1, "bob")
	if err := s.PutSession(ctx, reused, 0); err != nil {
		t.Fatalf("PutSession of %q's session with the ID of %q's expired one: %v, want nil (an expired session is absent)", "bob", user, err)
	}
	wantSession(t, s, reused)
	wantSessionList(t, s, "bob", reused)
	wantSessionList(t, s, user, long)
	if err := s.DeleteUserSessions(ctx, user); err != nil {
		t.Fatalf("DeleteUserSessions(%q): %v", user, err)
	}
	wantNoSession(t, s, long.ID, "its user's sessions were deleted")
	wantSession(t, s, reused)
	wantSessionList(t, s, "bob", reused)
}

func sessionDeleteAbsentIsNil(t *testing.T, s storage.SessionStore) {
	if err := s.DeleteSession(t.Context(), sessionID(1)); err != nil {
		t.Errorf("DeleteSession with no session: %v, want nil", err)
	}
	other := testSession(2, user)
	mustPutSession(t, s, other)
	if err := s.DeleteSession(t.Context(), sessionID(1)); err != nil {
		t.Errorf("DeleteSession of an absent session next to another: %v, want nil", err)
	}
	wantSession(t, s, other)

	// Deleted twice: the second delete finds nothing, and succeeds.
	mustDeleteSession(t, s, other.ID)
	if err := s.DeleteSession(t.Context(), other.ID); err != nil {
		t.Errorf("second DeleteSession: %v, want nil", err)
	}
	wantNoSession(t, s, other.ID, "it was deleted")
}

func sessionDeleteThenGetIsErrNotFound(t *testing.T, s storage.SessionStore) {
	a, b := testSession(1, user), testSession(2, user)
	mustPutSession(t, s, a)
	mustPutSession(t, s, b)
	mustDeleteSession(t, s, a.ID)
	wantNoSession(t, s, a.ID, "it was deleted")
	wantSession(t, s, b)
	wantSessionList(t, s, user, b)
	mustDeleteSession(t, s, b.ID)
	wantNoSession(t, s, b.ID, "it was deleted")
	wantSessionList(t, s, user)
}

func listReturnsOnlyTheUsersSessions(t *testing.T, s storage.SessionStore) {
	// User IDs that a careless schema would merge (see usersAreIsolated);
	// each has another number of sessions.
	users := []string{"alice", "Alice", "ALICE", "alice ", "alice2", "al", "\u00e9", "e\u0301"}
	byUser := map[string][]storage.Session{}
	n := uint64(0)
	for i, u := range users {
		for range i + 1 {
			n++
			sess := testSession(n, u)
			mustPutSession(t, s, sess)
			byUser[u] = append(byUser[u], sess)
		}
	}
	for _, u := range users {
		wantSessionList(t, s, u, byUser[u]...)
	}
	wantSessionList(t, s, "bob")
}

func listOfNoneIsEmpty(t *testing.T, s storage.SessionStore) {
	check := func(when string) {
		t.Helper()
		got, err := s.ListUserSessions(t.Context(), user)
		if err != nil || len(got) != 0 {
			t.Errorf("ListUserSessions(%q) %s: %d sessions, error %v; want none and nil", user, when, len(got), err)
		}
	}
	check("in an empty store")
	mustPutSession(t, s, testSession(1, "bob"))
	check("with only another user's session stored")
	a := testSession(2, user)
	mustPutSession(t, s, a)
	mustDeleteSession(t, s, a.ID)
	check("after its only session was deleted")
	mustPutSession(t, s, testSession(3, user))
	if err := s.DeleteUserSessions(t.Context(), user); err != nil {
		t.Fatalf("DeleteUserSessions(%q): %v", user, err)
	}
	check("after DeleteUserSessions")
}

func deleteUserSessionsRemovesOnlyTheUsers(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	users := []string{"alice", "Alice", "alice ", "bob"}
	byUser := map[string][]storage.Session{}
	n := uint64(0)
	for _, u := range users {
		for range 3 {
			n++
			sess := testSession(n, u)
			mustPutSession(t, s, sess)
			byUser[u] = append(byUser[u], sess)
		}
	}
	if err := s.DeleteUserSessions(ctx, "alice"); err != nil {
		t.Fatalf(`DeleteUserSessions("alice"): %v`, err)
	}
	for _, sess := range byUser["alice"] {
		wantNoSession(t, s, sess.ID, "its user's sessions were deleted")
	}
	wantSessionList(t, s, "alice")
	for _, u := range users[1:] {
		for _, sess := range byUser[u] {
			wantSession(t, s, sess)
		}
		wantSessionList(t, s, u, byUser[u]...)
	}

	// Deleting the sessions of a user who has none is not an error, and
	// the user's index works afterwards.
	for _, u := range []string{"alice", "carol"} {
		if err := s.DeleteUserSessions(ctx, u); err != nil {
			t.Errorf("DeleteUserSessions(%q) with no session: %v, want nil", u, err)
		}
	}
	again := testSession(100, "alice")
	mustPutSession(t, s, again)
	wantSessionList(t, s, "alice", again)
}

// concurrentPutsAreAllListed stores 50 sessions of one user at once: an
// index by user kept as one value (a list in a row or a key) that is read,
// changed and written back loses some of them.
func concurrentPutsAreAllListed(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	sessions := make([]storage.Session, concurrency)
	for i := range sessions {
		sessions[i] = testSession(uint64(i), user)
	}
	errs := race(ctx, func(ctx context.Context, i int) error { return s.PutSession(ctx, sessions[i], 0) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: PutSession: %v", i, err)
		}
	}
	wantSessionList(t, s, user, sessions...)
	for _, sess := range sessions {
		wantSession(t, s, sess)
	}
}

// concurrentPutAndDeleteUserKeepIndexConsistent races DeleteUserSessions
// against puts of the user's sessions, a few rounds: every session stored
// before the delete started is gone, and of the ones raced, every one that
// survived is both found and listed.
func concurrentPutAndDeleteUserKeepIndexConsistent(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	bob := testSession(0, "bob")
	mustPutSession(t, s, bob)
	const rounds = 3
	n := uint64(1)
	var survivors []storage.Session
	for round := range rounds {
		before := survivors
		for range 2 {
			sess := testSession(n, user)
			n++
			mustPutSession(t, s, sess)
			before = append(before, sess)
		}
		racers := make([]storage.Session, concurrency)
		for i := range racers {
			racers[i] = testSession(n, user)
			n++
		}
		// The deleter is in the middle, so that it is not always the first
		// racer to run.
		const deleter = concurrency / 2
		errs := race(ctx, func(ctx context.Context, i int) error {
			if i == deleter {
				return s.DeleteUserSessions(ctx, user)
			}
			return s.PutSession(ctx, racers[i], 0)
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, racer %d: %v", round, i, err)
			}
		}
		for _, sess := range before {
			wantNoSession(t, s, sess.ID, fmt.Sprintf("round %d: it was stored before DeleteUserSessions started", round))
		}
		survivors = survivors[:0:0]
		for i, sess := range racers {
			if i == deleter {
				continue
			}
			_, err := s.GetSession(ctx, sess.ID)
			switch {
			case err == nil:
				survivors = append(survivors, sess)
			case !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("round %d: GetSession(%s): %v", round, shortHex(sess.ID), err)
			}
		}
		// What GetSession finds and what ListUserSessions lists must agree:
		// a session left out is one the index lost, a session listed that
		// is not found is one the index kept after it was deleted.
		if problems := sessionListDiff(t, s, user, survivors); len(problems) > 0 {
			t.Errorf("round %d: after DeleteUserSessions raced %d puts, %d sessions are found by GetSession, and ListUserSessions disagrees:\n\t%s",
				round, concurrency-1, len(survivors), strings.Join(problems, "\n\t"))
		}
	}
	wantSession(t, s, bob)
	wantSessionList(t, s, "bob", bob)
}

func sessionPutDoesNotRetainIDOrData(t *testing.T, s storage.SessionStore) {
	sess := testSession(1, user)
	want := cloneSession(sess)
	mustPutSession(t, s, sess)
	sess.ID[0] ^= 0xff
	clear(sess.Data)
	wantSession(t, s, want)
	wantSessionList(t, s, user, want)
	wantNoSession(t, s, sess.ID, "its ID was changed by the caller after the put, which must not change what was stored")

	// The same on a replacement.
	sess = cloneSession(want)
	sess.Data = []byte("replacement")
	want = cloneSession(sess)
	mustPutSession(t, s, sess)
	copy(sess.ID, "XXXXXXXX")
	copy(sess.Data, "XXXXXXXX")
	wantSession(t, s, want)
	wantSessionList(t, s, user, want)
}

func sessionGetReturnsCallersOwnCopy(t *testing.T, s storage.SessionStore) {
	want := testSession(1, user)
	mustPutSession(t, s, cloneSession(want))
	got, err := s.GetSession(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	clear(got.ID)
	clear(got.Data)
	wantSession(t, s, want)
	wantSessionList(t, s, user, want)

	// Two reads do not share memory either.
	a, errA := s.GetSession(t.Context(), want.ID)
	b, errB := s.GetSession(t.Context(), want.ID)
	if errA != nil || errB != nil {
		t.Fatalf("GetSession: %v, %v", errA, errB)
	}
	clear(a.ID)
	clear(a.Data)
	if d := sessionDiff(b, want); d != "" {
		t.Errorf("changing the ID and data of one GetSession result changed another's: %s", d)
	}
}

func listReturnsCallersOwnCopy(t *testing.T, s storage.SessionStore) {
	a, b := testSession(1, user), testSession(2, user)
	mustPutSession(t, s, cloneSession(a))
	mustPutSession(t, s, cloneSession(b))
	got, err := s.ListUserSessions(t.Context(), user)
	if err != nil {
		t.Fatalf("ListUserSessions: %v", err)
	}
	for i := range got {
		clear(got[i].ID)
		clear(got[i].Data)
	}
	wantSession(t, s, a)
	wantSession(t, s, b)
	wantSessionList(t, s, user, a, b)

	// Two lists do not share memory either.
	first, err1 := s.ListUserSessions(t.Context(), user)
	second, err2 := s.ListUserSessions(t.Context(), user)
	if err1 != nil || err2 != nil {
		t.Fatalf("ListUserSessions: %v, %v", err1, err2)
	}
	for i := range first {
		clear(first[i].ID)
		clear(first[i].Data)
		first[i] = storage.Session{}
	}
	if problems := listDiff(second, []storage.Session{a, b}); len(problems) > 0 {
		t.Errorf("changing the sessions of one ListUserSessions result changed another's:\n\t%s", strings.Join(problems, "\n\t"))
	}
}

func sessionBinaryIDsRoundTrip(t *testing.T, s storage.SessionStore) {
	ids := binaryIDs()
	all := make([]storage.Session, len(ids))
	for i, id := range ids {
		all[i] = storage.Session{ID: id, UserID: user, Expires: time.Now().Add(time.Hour), Data: fmt.Appendf(nil, "binary ID %d", i)}
		mustPutSession(t, s, all[i])
	}
	for _, sess := range all {
		wantSession(t, s, sess)
	}
	wantSessionList(t, s, user, all...)
	// Deleting the all-NUL ID deletes only it.
	mustDeleteSession(t, s, all[0].ID)
	wantNoSession(t, s, all[0].ID, "it was deleted")
	for _, sess := range all[1:] {
		wantSession(t, s, sess)
	}
	wantSessionList(t, s, user, all[1:]...)
}

func sessionBinaryDataRoundTrips(t *testing.T, s storage.SessionStore) {
	sess := testSession(1, user)
	sess.Data = everyByte()
	mustPutSession(t, s, sess)
	wantSession(t, s, sess)
	wantSessionList(t, s, user, sess)

	// Data that starts with NUL and is not UTF-8.
	sess.Data = []byte{0x00, 0xff, 0xfe, 0x00, 0xc3, 0x28, 0x00}
	mustPutSession(t, s, sess)
	wantSession(t, s, sess)
	wantSessionList(t, s, user, sess)
}

func sessionLargestDataRoundTrips(t *testing.T, s storage.SessionStore) {
	sess := testSession(1, user)
	sess.Data = pattern(1, storage.MaxSessionDataLen)
	mustPutSession(t, s, sess)
	wantSession(t, s, sess)
	wantSessionList(t, s, user, sess)
	// Replace it with another session of the same size.
	sess.Data = pattern(2, storage.MaxSessionDataLen)
	mustPutSession(t, s, sess)
	wantSession(t, s, sess)
	wantSessionList(t, s, user, sess)
}

func sessionEmptyDataRoundTrips(t *testing.T, s storage.SessionStore) {
	empty, null := testSession(1, user), testSession(2, user)
	empty.Data, null.Data = []byte{}, nil
	mustPutSession(t, s, empty)
	mustPutSession(t, s, null)
	wantSession(t, s, empty)
	wantSession(t, s, null)
	wantSessionList(t, s, user, empty, null)
}

func sessionLongestUserIDRoundTrips(t *testing.T, s storage.SessionStore) {
	id := longestUserID()
	other := id[:len(id)-1] + "b" // the same but for the last byte
	mine, theirs := testSession(1, id), testSession(2, other)
	mustPutSession(t, s, mine)
	mustPutSession(t, s, theirs)
	wantSession(t, s, mine)
	wantSessionList(t, s, id, mine)
	wantSessionList(t, s, other, theirs)
	if err := s.DeleteUserSessions(t.Context(), id); err != nil {
		t.Fatalf("DeleteUserSessions(%s): %v", shortID(id), err)
	}
	wantNoSession(t, s, mine.ID, "its user's sessions were deleted")
	wantSessionList(t, s, id)
	wantSession(t, s, theirs)
	wantSessionList(t, s, other, theirs)
}

// sessionContextIsHonoured checks that every SessionStore method, called
// with a context that is already done, fails with want and changes nothing.
func sessionContextIsHonoured(t *testing.T, s storage.SessionStore, done context.Context, want error) {
	t.Helper()
	// An absent session is not created.
	bob := testSession(1, "bob")
	if err := s.PutSession(done, bob, 0); !errors.Is(err, want) {
		t.Errorf("PutSession (create) with a done context: %v, want an error matching %v", err, want)
	}
	wantNoSession(t, s, bob.ID, "it was put with a done context")
	wantSessionList(t, s, "bob")

	a := testSession(2, user)
	mustPutSession(t, s, a)
	if _, err := s.GetSession(done, a.ID); !errors.Is(err, want) {
		t.Errorf("GetSession with a done context: %v, want an error matching %v", err, want)
	}
	if _, err := s.ListUserSessions(done, user); !errors.Is(err, want) {
		t.Errorf("ListUserSessions with a done context: %v, want an error matching %v", err, want)
	}
	// A present session is neither replaced nor deleted.
	replacement := cloneSession(a)
	replacement.Data = []byte("must not be written")
	if err := s.PutSession(done, replacement, 1); !errors.Is(err, want) {
		t.Errorf("PutSession (replace) with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.DeleteSession(done, a.ID); !errors.Is(err, want) {
		t.Errorf("DeleteSession with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.DeleteUserSessions(done, user); !errors.Is(err, want) {
		t.Errorf("DeleteUserSessions with a done context: %v, want an error matching %v", err, want)
	}
	wantSession(t, s, a)
	wantSessionList(t, s, user, a)
}

// sessionPutVersionsCountFromOne checks that a new session has version 1
// and that every successful put adds one.
func sessionPutVersionsCountFromOne(t *testing.T, s storage.SessionStore) {
	sess := testSession(1, user)
	putSessionAt(t, s, sess, 0)
	wantSessionVersion(t, s, sess, 1)
	for v := uint64(1); v <= 3; v++ {
		sess.Data = fmt.Appendf(nil, "version %d", v+1)
		putSessionAt(t, s, sess, v)
		wantSessionVersion(t, s, sess, v+1)
	}
	// Another session starts at 1 too.
	other := testSession(2, user)
	putSessionAt(t, s, other, 0)
	wantSessionVersion(t, s, other, 1)
	wantSessionVersion(t, s, sess, 4)
}

func sessionPutExpectZeroWhenPresentConflicts(t *testing.T, s storage.SessionStore) {
	sess := testSession(1, user)
	putSessionAt(t, s, sess, 0)
	again := cloneSession(sess)
	again.Data = []byte("a second session with the same ID")
	wantSessionConflict(t, s, again, 0, "a session with this ID exists")
	wantSessionVersion(t, s, sess, 1)
	wantSessionList(t, s, user, sess)
}

func sessionPutStaleOrFutureExpectConflicts(t *testing.T, s storage.SessionStore) {
	sess := testSession(1, user)
	putSessionAt(t, s, sess, 0)
	putSessionAt(t, s, sess, 1)
	for _, expect := range []uint64{1, 3, 1 << 32, 1<<63 + 2, ^uint64(0)} {
		w := cloneSession(sess)
		w.Data = fmt.Appendf(nil, "expects %d", expect)
		wantSessionConflict(t, s, w, expect, "the stored session is at version 2")
	}
	wantSessionVersion(t, s, sess, 2)
	wantSessionList(t, s, user, sess)
}

func sessionPutNonZeroExpectWhenAbsentConflicts(t *testing.T, s storage.SessionStore) {
	sess := testSession(1, user)
	for _, expect := range []uint64{1, 2, ^uint64(0)} {
		wantSessionConflict(t, s, sess, expect, "no session with this ID exists")
		wantNoSession(t, s, sess.ID, "a put expecting a version of a session that never existed must not create it")
	}
	wantSessionList(t, s, user)
}

func sessionPutIgnoresVersionField(t *testing.T, s storage.SessionStore) {
	sess := testSession(1, user)
	sess.Version = 7
	putSessionAt(t, s, sess, 0)
	wantSessionVersion(t, s, sess, 1)
	sess.Version = 1
	wantSessionConflict(t, s, sess, 5, "the stored session is at version 1, whatever Session.Version says")
	sess.Version = 99
	putSessionAt(t, s, sess, 1)
	wantSessionVersion(t, s, sess, 2)
}

// sessionStalePutAfterDeleteConflicts forces the interleaving of a logout
// or revocation with a request of the same session: the request reads the
// session, the session is deleted, then the request writes back what it
// read (its "last seen" touch). The write must conflict and leave the
// session deleted, not bring it back.
func sessionStalePutAfterDeleteConflicts(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	sess := testSession(1, user)
	sess.Data = []byte("custody blob: the vault keys, sealed")
	other := testSession(2, user)
	putSessionAt(t, s, sess, 0)
	putSessionAt(t, s, other, 0)
	read, err := s.GetSession(ctx, sess.ID)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	mustDeleteSession(t, s, sess.ID)
	touched := cloneSession(read)
	touched.Expires = time.Now().Add(2 * time.Hour)
	wantSessionConflict(t, s, touched, read.Version, "the session was deleted after it was read")
	wantNoSession(t, s, sess.ID, "it was deleted, and a put expecting the version read before the delete must not bring it back")
	wantSessionList(t, s, user, other)

	// The ID is free: a new session with it starts at version 1.
	fresh := testSession(1, user)
	fresh.Data = []byte("a new session")
	putSessionAt(t, s, fresh, 0)
	wantSessionVersion(t, s, fresh, 1)
	// (A writer still holding version 1 of the deleted session could now
	// overwrite this one: versions restart with the ID. Package session
	// never reuses an ID: each comes from a new random token.)
}

// sessionStalePutAfterDeleteUserSessionsConflicts is the same interleaving
// with DeleteUserSessions (revoke all) as the delete.
func sessionStalePutAfterDeleteUserSessionsConflicts(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	a, b := testSession(1, user), testSession(2, user)
	putSessionAt(t, s, a, 0)
	putSessionAt(t, s, b, 0)
	putSessionAt(t, s, b, 1)
	readA, errA := s.GetSession(ctx, a.ID)
	readB, errB := s.GetSession(ctx, b.ID)
	if errA != nil || errB != nil {
		t.Fatalf("GetSession: %v, %v", errA, errB)
	}
	if err := s.DeleteUserSessions(ctx, user); err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	wantSessionConflict(t, s, readA, readA.Version, "the user's sessions were deleted after it was read")
	wantSessionConflict(t, s, readB, readB.Version, "the user's sessions were deleted after it was read")
	wantNoSession(t, s, a.ID, "its user's sessions were deleted")
	wantNoSession(t, s, b.ID, "its user's sessions were deleted")
	wantSessionList(t, s, user)
}

// sessionStaleTouchAfterLockConflicts forces the interleaving of a lock
// (a put that removes the sealed vault keys from the session) with a
// touch of the same session read before it: the touch must conflict, and
// the keys must not come back.
func sessionStaleTouchAfterLockConflicts(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	sess := testSession(1, user)
	sess.Data = []byte("unlocked: custody blob")
	putSessionAt(t, s, sess, 0)
	touchRead, err1 := s.GetSession(ctx, sess.ID)
	lockRead, err2 := s.GetSession(ctx, sess.ID)
	if err1 != nil || err2 != nil {
		t.Fatalf("GetSession: %v, %v", err1, err2)
	}
	locked := cloneSession(lockRead)
	locked.Data = []byte("locked")
	putSessionAt(t, s, locked, lockRead.Version)
	touched := cloneSession(touchRead)
	touched.Expires = time.Now().Add(2 * time.Hour)
	wantSessionConflict(t, s, touched, touchRead.Version, "the session was locked after the touch read it")
	wantSessionVersion(t, s, locked, 2)

	// The writer that lost reads again and writes over the new version.
	reread, err := s.GetSession(ctx, sess.ID)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	retouched := cloneSession(reread)
	retouched.Expires = time.Now().Add(2 * time.Hour)
	putSessionAt(t, s, retouched, reread.Version)
	wantSessionVersion(t, s, retouched, 3)
	if string(retouched.Data) != "locked" {
		t.Errorf("the re-read session's data is %q, want %q", retouched.Data, "locked")
	}
}

// sessionExpiredPutWithStaleExpectConflicts checks that a put whose
// Expires has passed is a conditional delete: with the wrong version it
// removes nothing.
func sessionExpiredPutWithStaleExpectConflicts(t *testing.T, s storage.SessionStore) {
	sess := testSession(1, user)
	putSessionAt(t, s, sess, 0)
	putSessionAt(t, s, sess, 1)
	gone := cloneSession(sess)
	gone.Expires = time.Now().Add(-time.Hour)
	wantSessionConflict(t, s, gone, 1, "the stored session is at version 2")
	wantSessionVersion(t, s, sess, 2)
	putSessionAt(t, s, gone, 2)
	wantNoSession(t, s, sess.ID, "an expired put at its version removed it")
	wantSessionList(t, s, user)
}

// sessionConcurrentCreatesOneWins races puts of one new session with
// expect 0: exactly one succeeds.
func sessionConcurrentCreatesOneWins(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	base := testSession(1, user)
	mk := func(i int) storage.Session {
		sess := cloneSession(base)
		sess.Data = racerData(i)
		return sess
	}
	errs := race(ctx, func(ctx context.Context, i int) error { return s.PutSession(ctx, mk(i), 0) })
	if w := oneWinner(t, errs); w >= 0 {
		wantSessionVersion(t, s, mk(w), 1)
		wantSessionList(t, s, user, mk(w))
	}
}

// sessionConcurrentUpdatesOneWins races puts that all read the same
// version (touches of concurrent requests, a lock among them): exactly one
// succeeds, and the session holds its data.
func sessionConcurrentUpdatesOneWins(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	base := testSession(1, user)
	mk := func(i int) storage.Session {
		sess := cloneSession(base)
		sess.Data = racerData(i)
		return sess
	}
	putSessionAt(t, s, base, 0)
	putSessionAt(t, s, base, 1)
	errs := race(ctx, func(ctx context.Context, i int) error { return s.PutSession(ctx, mk(i), 2) })
	if w := oneWinner(t, errs); w >= 0 {
		wantSessionVersion(t, s, mk(w), 3)
		wantSessionList(t, s, user, mk(w))
	}
}

// sessionConcurrentDeleteAndStalePutLeaveNothing races DeleteSession
// against puts that expect the version read before it, a few rounds:
// whichever runs first, the session ends absent (a put that lands first is
// deleted; a put that lands after the delete conflicts).
func sessionConcurrentDeleteAndStalePutLeaveNothing(t *testing.T, s storage.SessionStore) {
	ctx := t.Context()
	for round := range 3 {
		sess := testSession(uint64(round), user)
		putSessionAt(t, s, sess, 0)
		const deleter = concurrency / 2
		errs := race(ctx, func(ctx context.Context, i int) error {
			if i == deleter {
				return s.DeleteSession(ctx, sess.ID)
			}
			w := cloneSession(sess)
			w.Data = racerData(i)
			return s.PutSession(ctx, w, 1)
		})
		for i, err := range errs {
			if err != nil && !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("round %d, racer %d: %v", round, i, err)
			}
		}
		wantNoSession(t, s, sess.ID, fmt.Sprintf("round %d: it was deleted, and every put expected the version read before", round))
	}
	wantSessionList(t, s, user)
}

// sessionID returns the n-th session ID of the clauses: storage.SessionIDLen
// bytes that look like a SHA-256 output, different for every n.
func sessionID(n uint64) []byte { return pattern(1<<32+n, storage.SessionIDLen) }

// testSession returns session n of the user, expiring in an hour, with data
// of its own.
func testSession(n uint64, userID string) storage.Session {
	return storage.Session{
		ID:      sessionID(n),
		UserID:  userID,
		Expires: time.Now().Add(time.Hour),
		Data:    fmt.Appendf(nil, "session %d of %s", n, userID),
	}
}

// cloneSession returns a copy of sess that shares no memory with it.
func cloneSession(sess storage.Session) storage.Session {
	sess.ID = append([]byte(nil), sess.ID...)
	sess.Data = append([]byte(nil), sess.Data...)
	return sess
}

// mustPutSession stores sess over whatever version of it is stored (0 if
// none), as a writer that has just read it would.
func mustPutSession(t *testing.T, s storage.SessionStore, sess storage.Session) {
	t.Helper()
	var expect uint64
	got, err := s.GetSession(t.Context(), sess.ID)
	switch {
	case err == nil:
		expect = got.Version
	case !errors.Is(err, storage.ErrNotFound):
		t.Fatalf("GetSession(%s): %v", shortHex(sess.ID), err)
	}
	if err := s.PutSession(t.Context(), sess, expect); err != nil {
		t.Fatalf("PutSession(%s of %s, %d bytes, expect %d): %v", shortHex(sess.ID), shortID(sess.UserID), len(sess.Data), expect, err)
	}
}

// putSessionAt stores sess expecting version expect, and checks that it
// succeeds.
func putSessionAt(t *testing.T, s storage.SessionStore, sess storage.Session, expect uint64) {
	t.Helper()
	if err := s.PutSession(t.Context(), sess, expect); err != nil {
		t.Fatalf("PutSession(%s of %s, expect %d): %v", shortHex(sess.ID), shortID(sess.UserID), expect, err)
	}
}

// wantSessionConflict checks that a put of sess expecting version expect
// returns ErrConflict, because of why.
func wantSessionConflict(t *testing.T, s storage.SessionStore, sess storage.Session, expect uint64, why string) {
	t.Helper()
	if err := s.PutSession(t.Context(), sess, expect); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutSession(%s, expect %d): %v, want storage.ErrConflict (%s)", shortHex(sess.ID), expect, err, why)
	}
}

// wantSessionVersion checks that GetSession returns want at version v, and
// that ListUserSessions lists it at that version.
func wantSessionVersion(t *testing.T, s storage.SessionStore, want storage.Session, v uint64) {
	t.Helper()
	wantSession(t, s, want)
	got, err := s.GetSession(t.Context(), want.ID)
	if err == nil && got.Version != v {
		t.Errorf("GetSession(%s): version %d, want %d", shortHex(want.ID), got.Version, v)
	}
	list, err := s.ListUserSessions(t.Context(), want.UserID)
	if err != nil {
		t.Fatalf("ListUserSessions(%s): %v", shortID(want.UserID), err)
	}
	for _, l := range list {
		if sameBytes(l.ID, want.ID) && l.Version != v {
			t.Errorf("ListUserSessions(%s) lists session %s at version %d, want %d", shortID(want.UserID), shortHex(want.ID), l.Version, v)
		}
	}
}

func mustDeleteSession(t *testing.T, s storage.SessionStore, id []byte) {
	t.Helper()
	if err := s.DeleteSession(t.Context(), id); err != nil {
		t.Fatalf("DeleteSession(%s): %v", shortHex(id), err)
	}
}

// wantSession checks that GetSession returns want.
func wantSession(t *testing.T, s storage.SessionStore, want storage.Session) {
	t.Helper()
	got, err := s.GetSession(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetSession(%s): %v, want the session of %s", shortHex(want.ID), err, shortID(want.UserID))
	}
	if d := sessionDiff(got, want); d != "" {
		t.Errorf("GetSession(%s): %s", shortHex(want.ID), d)
	}
}

// wantNoSession checks that GetSession returns ErrNotFound, because of why.
func wantNoSession(t *testing.T, s storage.SessionStore, id []byte, why string) {
	t.Helper()
	got, err := s.GetSession(t.Context(), id)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetSession(%s): session of %s, error %v; want storage.ErrNotFound (%s)", shortHex(id), shortID(got.UserID), err, why)
	}
}

// wantSessionList checks that ListUserSessions returns want, in any order.
func wantSessionList(t *testing.T, s storage.SessionStore, userID string, want ...storage.Session) {
	t.Helper()
	if problems := sessionListDiff(t, s, userID, want); len(problems) > 0 {
		t.Errorf("ListUserSessions(%s), want %d sessions:\n\t%s", shortID(userID), len(want), strings.Join(problems, "\n\t"))
	}
}

// sessionListDiff lists the user's sessions and describes how they differ
// from want, in any order.
func sessionListDiff(t *testing.T, s storage.SessionStore, userID string, want []storage.Session) []string {
	t.Helper()
	got, err := s.ListUserSessions(t.Context(), userID)
	if err != nil {
		t.Fatalf("ListUserSessions(%s): %v", shortID(userID), err)
	}
	return listDiff(got, want)
}

// listDiff describes how the sessions got differ from want, in any order,
// in at most a dozen lines.
func listDiff(got, want []storage.Session) []string {
	const maxProblems = 12
	var problems []string
	wanted := make(map[string]storage.Session, len(want))
	for _, w := range want {
		wanted[string(w.ID)] = w
	}
	seen := make(map[string]bool, len(got))
	for _, g := range got {
		k := string(g.ID)
		w, ok := wanted[k]
		switch {
		case seen[k]:
			problems = append(problems, fmt.Sprintf("session %s is listed twice", shortHex(g.ID)))
		case !ok:
			problems = append(problems, fmt.Sprintf("session %s of %s is listed, and must not be (another user's, expired, or deleted)", shortHex(g.ID), shortID(g.UserID)))
		default:
			if d := sessionDiff(g, w); d != "" {
				problems = append(problems, fmt.Sprintf("session %s: %s", shortHex(g.ID), d))
			}
		}
		seen[k] = true
	}
	for _, w := range want {
		if !seen[string(w.ID)] {
			problems = append(problems, fmt.Sprintf("session %s is left out", shortHex(w.ID)))
		}
	}
	if len(problems) > maxProblems {
		problems = append(problems[:maxProblems], fmt.Sprintf("and %d more", len(problems)-maxProblems))
	}
	return problems
}

// sessionDiff describes how got differs from want, or returns "" if it does
// not.
func sessionDiff(got, want storage.Session) string {
	var d []string
	if !sameBytes(got.ID, want.ID) {
		d = append(d, fmt.Sprintf("ID %s, want %s", shortHex(got.ID), shortHex(want.ID)))
	}
	if got.UserID != want.UserID {
		d = append(d, fmt.Sprintf("user %s, want %s", shortID(got.UserID), shortID(want.UserID)))
	}
	if !sameExpiry(got.Expires, want.Expires) {
		d = append(d, fmt.Sprintf("Expires %s, want %s (±%v)", got.Expires.Format(time.RFC3339Nano), want.Expires.Format(time.RFC3339Nano), expiryTolerance))
	}
	if !sameBytes(got.Data, want.Data) {
		d = append(d, "data differs from what was stored: "+diff(got.Data, want.Data))
	}
	return strings.Join(d, "; ")
}
