package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// RunPasskeyStore tests that a [storage.PasskeyStore] keeps its contract,
// one subtest per clause. [Run] calls it too when the stores it is given
// implement the interface. newStore must return an empty, isolated store
// on every call; cleanup goes through t.Cleanup.
//
// The clauses check VaultStore's contract on passkey records
// (compare-and-swap puts, conditional and idempotent deletes, a record
// put again after its deletion starting at version 1), and the two
// indexes: a handle never changes (ErrInvalid); the indexes follow every
// put and delete (a credential ID dropped from a record, or a deleted
// record's handle and credential IDs, map to no one); a handle or a
// credential ID that another user's record holds is refused with
// ErrDuplicate and nothing is stored. Three races are run: of 20
// creations of one user's record, exactly one succeeds and the others
// conflict (ConcurrentCreatesOneWins); of 20 puts that all read the record
// before any writes, exactly one succeeds and the indexes are the
// winner's (ConcurrentPutsOfOneReadOneWins); of 20 users registering one
// new credential ID at once, at most one succeeds and the index names it
// (ConcurrentRegistrationsOfOneCredentialAtMostOneWins). Values at the
// bounds (storage.MaxPasskeysPerUser credential IDs of
// storage.MaxCredentialIDLen bytes, IDs of one byte, IDs that differ only
// in case or after a NUL, storage.MaxPasskeyDataLen bytes of data) must
// work, and one value past every bound must be refused with ErrInvalid,
// by the lookups too. Credential IDs are compared as a set: a store may
// return them in any order.
func RunPasskeyStore(t *testing.T, newStore func(t *testing.T) storage.PasskeyStore) {
	runClauses(t, passkeyClauses, func(t *testing.T) storage.PasskeyStore { return newStore(t) })
}

// passkeyClauses are the PasskeyStore subtests, in the order of the
// contract.
var passkeyClauses = []clause[storage.PasskeyStore]{
	{"GetAbsentIsErrNotFound", passkeyGetAbsentIsErrNotFound},
	{"FirstPutCreatesVersion1", passkeyFirstPutCreatesVersion1},
	{"PutExpectZeroWhenPresentConflicts", passkeyPutExpectZeroWhenPresentConflicts},
	{"PutStaleOrFutureExpectConflicts", passkeyPutStaleOrFutureExpectConflicts},
	{"PutNonZeroExpectWhenAbsentConflicts", passkeyPutNonZeroExpectWhenAbsentConflicts},
	{"VersionGrowsByOne", passkeyVersionGrowsByOne},
	{"HandleCannotChange", passkeyHandleCannotChange},
	{"IndexesFollowPuts", passkeyIndexesFollowPuts},
	{"AnotherUsersCredentialIsDuplicate", passkeyAnotherUsersCredentialIsDuplicate},
	{"AnotherUsersHandleIsDuplicate", passkeyAnotherUsersHandleIsDuplicate},

	{"ConcurrentCreatesOneWins", passkeyConcurrentCreatesOneWins},
	{"ConcurrentPutsOfOneReadOneWins", passkeyConcurrentPutsOfOneReadOneWins},
	{"ConcurrentRegistrationsOfOneCredentialAtMostOneWins", passkeyConcurrentRegistrationsAtMostOneWins},

	{"DeleteWrongExpectConflicts", passkeyDeleteWrongExpectConflicts},
	{"DeleteAbsentIsNil", passkeyDeleteAbsentIsNil},
	{"DeleteRemovesIndexEntries", passkeyDeleteRemovesIndexEntries},
	{"DeleteThenPutExpectZeroCreatesVersion1", passkeyDeleteThenPutCreatesVersion1},

	{"PutDoesNotRetainInput", passkeyPutDoesNotRetainInput},
	{"GetReturnsCallersOwnCopy", passkeyGetReturnsCallersOwnCopy},

	{"ValuesAtBoundsRoundTrip", passkeyValuesAtBoundsRoundTrip},
	{"OutOfBoundsIsInvalid", passkeyOutOfBoundsIsInvalid},

	{"CanceledContextIsHonoured", canceledContextIsHonoured(passkeyContextIsHonoured)},
	{"ExpiredDeadlineIsHonoured", expiredDeadlineIsHonoured(passkeyContextIsHonoured)},
}

// passkeyRacers is the number of racers of the two passkey races.
const passkeyRacers = 20

// handleOf returns a handle for seed (storage.PasskeyHandleLen bytes).
func handleOf(seed uint64) []byte { return pattern(1000+seed, storage.PasskeyHandleLen) }

// credOf returns a credential ID of 16 bytes for seed.
func credOf(seed uint64) []byte { return pattern(2000+seed, 16) }

// passkeyRec returns a record of userID with the handle of handleSeed and
// the credential IDs of credSeeds.
func passkeyRec(userID string, handleSeed uint64, data string, credSeeds ...uint64) storage.PasskeyRecord {
	r := storage.PasskeyRecord{UserID: userID, Handle: handleOf(handleSeed), Data: []byte(data)}
	for _, c := range credSeeds {
		r.CredentialIDs = append(r.CredentialIDs, credOf(c))
	}
	return r
}

func mustPutPasskeys(t *testing.T, s storage.PasskeyStore, r storage.PasskeyRecord, expect uint64) {
	t.Helper()
	if err := s.PutPasskeys(t.Context(), r, expect); err != nil {
		t.Fatalf("PutPasskeys(%s, expect %d): %v", shortID(r.UserID), expect, err)
	}
}

// wantPasskeys checks that the user's record is want (its UserID, Handle,
// CredentialIDs as a set, Data) at this version.
func wantPasskeys(t *testing.T, s storage.PasskeyStore, want storage.PasskeyRecord, version uint64) {
	t.Helper()
	got, err := s.GetPasskeys(t.Context(), want.UserID)
	if err != nil {
		t.Fatalf("GetPasskeys(%s): %v, want version %d", shortID(want.UserID), err, version)
	}
	if got.UserID != want.UserID {
		t.Errorf("GetPasskeys(%s) returned the record of user %s", shortID(want.UserID), shortID(got.UserID))
	}
	if got.Version != version {
		t.Errorf("GetPasskeys(%s): version %d, want %d", shortID(want.UserID), got.Version, version)
	}
	if !sameBytes(got.Handle, want.Handle) {
		t.Errorf("GetPasskeys(%s): handle %s, want %s", shortID(want.UserID), shortHex(got.Handle), shortHex(want.Handle))
	}
	if g, w := credSet(got.CredentialIDs), credSet(want.CredentialIDs); !slices.Equal(g, w) {
		t.Errorf("GetPasskeys(%s): %d credential IDs %v, want %d %v", shortID(want.UserID), len(got.CredentialIDs), g, len(want.CredentialIDs), w)
	}
	if !sameBytes(got.Data, want.Data) {
		t.Errorf("GetPasskeys(%s): data differs from what was stored: %s", shortID(want.UserID), diff(got.Data, want.Data))
	}
}

// credSet returns ids in hex (shortened), sorted, for comparing as a set.
func credSet(ids [][]byte) []string {
	set := make([]string, len(ids))
	for i, id := range ids {
		set[i] = fmt.Sprintf("%d:%s", len(id), shortHex(id))
	}
	slices.Sort(set)
	return set
}

func wantNoPasskeys(t *testing.T, s storage.PasskeyStore, userID string) {
	t.Helper()
	got, err := s.GetPasskeys(t.Context(), userID)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetPasskeys(%s): version %d, error %v; want storage.ErrNotFound", shortID(userID), got.Version, err)
	}
}

// wantHandleUser checks what UserByHandle says of handle: userID, or
// ErrNotFound if userID is "".
func wantHandleUser(t *testing.T, s storage.PasskeyStore, handle []byte, userID string) {
	t.Helper()
	got, err := s.UserByHandle(t.Context(), handle)
	wantLookup(t, "UserByHandle("+shortHex(handle)+")", got, err, userID)
}

// wantCredUser checks what UserByCredential says of id: userID, or
// ErrNotFound if userID is "".
func wantCredUser(t *testing.T, s storage.PasskeyStore, id []byte, userID string) {
	t.Helper()
	got, err := s.UserByCredential(t.Context(), id)
	wantLookup(t, "UserByCredential("+shortHex(id)+")", got, err, userID)
}

func wantLookup(t *testing.T, call, got string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && !errors.Is(err, storage.ErrNotFound):
		t.Errorf("%s: %s, error %v; want storage.ErrNotFound", call, shortID(got), err)
	case want != "" && (err != nil || got != want):
		t.Errorf("%s: %s, error %v; want %s", call, shortID(got), err, shortID(want))
	}
}

func wantDuplicate(t *testing.T, err error, call string) {
	t.Helper()
	if !errors.Is(err, storage.ErrDuplicate) || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrInvalid) {
		t.Errorf("%s: %v, want storage.ErrDuplicate (and neither ErrConflict nor ErrInvalid)", call, err)
	}
}

func passkeyGetAbsentIsErrNotFound(t *testing.T, s storage.PasskeyStore) {
	wantNoPasskeys(t, s, user)
	wantHandleUser(t, s, handleOf(1), "")
	wantCredUser(t, s, credOf(1), "")
	mustPutPasskeys(t, s, passkeyRec("bob", 2, "bob's passkeys", 2), 0)
	wantNoPasskeys(t, s, user)
	wantNoPasskeys(t, s, "Bob")
	wantHandleUser(t, s, handleOf(1), "")
	wantCredUser(t, s, credOf(1), "")
}

func passkeyFirstPutCreatesVersion1(t *testing.T, s storage.PasskeyStore) {
	r := passkeyRec(user, 1, "v1", 1, 2, 3)
	r.Version = 7 // ignored
	mustPutPasskeys(t, s, r, 0)
	wantPasskeys(t, s, r, 1)
	wantHandleUser(t, s, r.Handle, user)
	for _, id := range r.CredentialIDs {
		wantCredUser(t, s, id, user)
	}
	// A record without credentials (all removed) is a record too.
	bob := passkeyRec("bob", 2, "")
	mustPutPasskeys(t, s, bob, 0)
	wantPasskeys(t, s, bob, 1)
	wantHandleUser(t, s, bob.Handle, "bob")
}

func passkeyPutExpectZeroWhenPresentConflicts(t *testing.T, s storage.PasskeyStore) {
	r := passkeyRec(user, 1, "v1", 1)
	mustPutPasskeys(t, s, r, 0)
	wantConflict(t, s.PutPasskeys(t.Context(), passkeyRec(user, 1, "v2", 2), 0), "PutPasskeys(expect 0) over version 1")
	wantPasskeys(t, s, r, 1)
	wantCredUser(t, s, credOf(2), "")
}

func passkeyPutStaleOrFutureExpectConflicts(t *testing.T, s storage.PasskeyStore) {
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v1", 1), 0)
	r := passkeyRec(user, 1, "v2", 2)
	mustPutPasskeys(t, s, r, 1)
	for _, expect := range []uint64{1, 3, 4, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
		wantConflict(t, s.PutPasskeys(t.Context(), passkeyRec(user, 1, "stale", 3), expect), fmt.Sprintf("PutPasskeys(expect %d) over version 2", expect))
	}
	wantPasskeys(t, s, r, 2)
	wantCredUser(t, s, credOf(1), "")
	wantCredUser(t, s, credOf(3), "")
}

func passkeyPutNonZeroExpectWhenAbsentConflicts(t *testing.T, s storage.PasskeyStore) {
	for _, expect := range []uint64{1, 2, math.MaxInt64 + 1} {
		wantConflict(t, s.PutPasskeys(t.Context(), passkeyRec(user, 1, "x", 1), expect), fmt.Sprintf("PutPasskeys(expect %d) of an absent record", expect))
	}
	wantNoPasskeys(t, s, user)
	wantHandleUser(t, s, handleOf(1), "")
	wantCredUser(t, s, credOf(1), "")
}

func passkeyVersionGrowsByOne(t *testing.T, s storage.PasskeyStore) {
	for v := range uint64(5) {
		r := passkeyRec(user, 1, fmt.Sprintf("v%d", v+1), v)
		r.Version = 100 + v // ignored
		mustPutPasskeys(t, s, r, v)
		wantPasskeys(t, s, r, v+1)
	}
}

// passkeyHandleCannotChange: a put with another handle is refused with
// ErrInvalid at the right version, and changes nothing (neither index).
func passkeyHandleCannotChange(t *testing.T, s storage.PasskeyStore) {
	r := passkeyRec(user, 1, "v1", 1)
	mustPutPasskeys(t, s, r, 0)
	err := s.PutPasskeys(t.Context(), passkeyRec(user, 9, "v2", 2), 1)
	if !errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("PutPasskeys(expect 1) with another handle: %v, want storage.ErrInvalid", err)
	}
	wantPasskeys(t, s, r, 1)
	wantHandleUser(t, s, handleOf(1), user)
	wantHandleUser(t, s, handleOf(9), "")
	wantCredUser(t, s, credOf(1), user)
	wantCredUser(t, s, credOf(2), "")
}

// passkeyIndexesFollowPuts: the credential index is the latest record's:
// an ID added maps to the user, an ID removed to no one, and then may be
// registered by another user.
func passkeyIndexesFollowPuts(t *testing.T, s storage.PasskeyStore) {
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v1", 1, 2), 0)
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v2", 2, 3), 1)
	wantCredUser(t, s, credOf(1), "")
	wantCredUser(t, s, credOf(2), user)
	wantCredUser(t, s, credOf(3), user)
	r := passkeyRec(user, 1, "v3")
	mustPutPasskeys(t, s, r, 2)
	wantPasskeys(t, s, r, 3)
	for c := range uint64(4) {
		wantCredUser(t, s, credOf(c), "")
	}
	wantHandleUser(t, s, r.Handle, user)
	// Credential IDs alice gave up are free for bob.
	bob := passkeyRec("bob", 2, "bob's", 1, 2, 3)
	mustPutPasskeys(t, s, bob, 0)
	for c := uint64(1); c <= 3; c++ {
		wantCredUser(t, s, credOf(c), "bob")
	}
	// And alice may list again what she listed before: her own ID in
	// the record she replaces is not another user's.
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v4", 4), 3)
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v5", 4, 5), 4)
	wantCredUser(t, s, credOf(4), user)
	wantCredUser(t, s, credOf(5), user)
}

// passkeyAnotherUsersCredentialIsDuplicate: a credential ID of alice's
// record, in bob's new record or in his update, is refused with
// ErrDuplicate, and nothing of the put is stored.
func passkeyAnotherUsersCredentialIsDuplicate(t *testing.T, s storage.PasskeyStore) {
	ctx := t.Context()
	alice := passkeyRec(user, 1, "alice's", 1, 2)
	mustPutPasskeys(t, s, alice, 0)
	wantDuplicate(t, s.PutPasskeys(ctx, passkeyRec("bob", 2, "bob's", 3, 2), 0), "PutPasskeys(bob, expect 0) listing alice's credential ID")
	wantNoPasskeys(t, s, "bob")
	wantHandleUser(t, s, handleOf(2), "")
	wantCredUser(t, s, credOf(3), "")
	wantCredUser(t, s, credOf(2), user)

	bob := passkeyRec("bob", 2, "bob's", 3)
	mustPutPasskeys(t, s, bob, 0)
	wantDuplicate(t, s.PutPasskeys(ctx, passkeyRec("bob", 2, "bob's v2", 4, 1), 1), "PutPasskeys(bob, expect 1) adding alice's credential ID")
	wantPasskeys(t, s, bob, 1)
	wantCredUser(t, s, credOf(3), "bob")
	wantCredUser(t, s, credOf(4), "")
	wantCredUser(t, s, credOf(1), user)
	wantPasskeys(t, s, alice, 1)
	// A user ID that differs only in case is another user.
	wantDuplicate(t, s.PutPasskeys(ctx, passkeyRec("Alice", 3, "", 1), 0), "PutPasskeys(\"Alice\") listing alice's credential ID")
	wantNoPasskeys(t, s, "Alice")
	// The refused puts did not take a version: bob's next put expects 1.
	mustPutPasskeys(t, s, passkeyRec("bob", 2, "bob's v2", 3, 4), 1)
}

// passkeyAnotherUsersHandleIsDuplicate: alice's handle in bob's record is
// refused with ErrDuplicate, and nothing of the put is stored.
func passkeyAnotherUsersHandleIsDuplicate(t *testing.T, s storage.PasskeyStore) {
	alice := passkeyRec(user, 1, "alice's", 1)
	mustPutPasskeys(t, s, alice, 0)
	wantDuplicate(t, s.PutPasskeys(t.Context(), passkeyRec("bob", 1, "bob's", 2), 0), "PutPasskeys(bob) with alice's handle")
	wantNoPasskeys(t, s, "bob")
	wantCredUser(t, s, credOf(2), "")
	wantHandleUser(t, s, handleOf(1), user)
	wantPasskeys(t, s, alice, 1)
}

// passkeyConcurrentCreatesOneWins: passkeyRacers puts of alice's first
// record (one handle, a credential of each racer's own), all expecting 0:
// exactly one succeeds and the others conflict (not ErrDuplicate: the
// handle and the record that the losers meet are alice's own), and the
// record and the credential index are the winner's.
func passkeyConcurrentCreatesOneWins(t *testing.T, s storage.PasskeyStore) {
	ctx := t.Context()
	racerRec := func(i int) storage.PasskeyRecord {
		return passkeyRec(user, 1, string(racerData(i)), uint64(100+i))
	}
	errs := raceN(ctx, passkeyRacers, func(ctx context.Context, i int) error {
		return s.PutPasskeys(ctx, racerRec(i), 0)
	})
	w := oneWinner(t, errs)
	if w < 0 {
		return
	}
	wantPasskeys(t, s, racerRec(w), 1)
	wantHandleUser(t, s, handleOf(1), user)
	for i := range passkeyRacers {
		want := ""
		if i == w {
			want = user
		}
		wantCredUser(t, s, credOf(uint64(100+i)), want)
	}
}

// passkeyConcurrentPutsOfOneReadOneWins: passkeyRacers puts of alice's
// record (each adding a credential of its own), every one expecting the
// version read before the race starts: exactly one succeeds, the others
// conflict, and the record and the credential index are the winner's.
func passkeyConcurrentPutsOfOneReadOneWins(t *testing.T, s storage.PasskeyStore) {
	ctx := t.Context()
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v1", 1), 0)
	reads := make([]storage.PasskeyRecord, passkeyRacers)
	for i := range reads {
		rec, err := s.GetPasskeys(ctx, user)
		if err != nil {
			t.Fatalf("GetPasskeys: %v", err)
		}
		reads[i] = rec
	}
	racerRec := func(i int) storage.PasskeyRecord {
		return passkeyRec(user, 1, string(racerData(i)), 1, uint64(100+i))
	}
	errs := raceN(ctx, passkeyRacers, func(ctx context.Context, i int) error {
		return s.PutPasskeys(ctx, racerRec(i), reads[i].Version)
	})
	w := oneWinner(t, errs)
	if w < 0 {
		return
	}
	wantPasskeys(t, s, racerRec(w), 2)
	wantCredUser(t, s, credOf(1), user)
	for i := range passkeyRacers {
		want := ""
		if i == w {
			want = user
		}
		wantCredUser(t, s, credOf(uint64(100+i)), want)
	}
}

// passkeyConcurrentRegistrationsAtMostOneWins: passkeyRacers users, each
// with a record already, add one new credential ID at once: at most one
// succeeds, the others get ErrDuplicate and keep their record, and the
// index names the winner.
func passkeyConcurrentRegistrationsAtMostOneWins(t *testing.T, s storage.PasskeyStore) {
	ctx := t.Context()
	userOf := func(i int) string { return fmt.Sprintf("user %d", i) }
	before := func(i int) storage.PasskeyRecord {
		return passkeyRec(userOf(i), uint64(10+i), "before", uint64(100+i))
	}
	for i := range passkeyRacers {
		mustPutPasskeys(t, s, before(i), 0)
	}
	const shared = 1
	after := func(i int) storage.PasskeyRecord {
		return passkeyRec(userOf(i), uint64(10+i), "after", uint64(100+i), shared)
	}
	errs := raceN(ctx, passkeyRacers, func(ctx context.Context, i int) error {
		return s.PutPasskeys(ctx, after(i), 1)
	})
	winner, winners := "", 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			winner = userOf(i)
			wantPasskeys(t, s, after(i), 2)
		case errors.Is(err, storage.ErrDuplicate):
			wantPasskeys(t, s, before(i), 1)
		default:
			t.Errorf("racer %d: %v, want nil or storage.ErrDuplicate", i, err)
		}
	}
	if winners > 1 {
		t.Errorf("%d of %d users registered one credential ID, want at most 1", winners, passkeyRacers)
	}
	wantCredUser(t, s, credOf(shared), winner)
	for i := range passkeyRacers {
		wantCredUser(t, s, credOf(uint64(100+i)), userOf(i))
	}
}

func passkeyDeleteWrongExpectConflicts(t *testing.T, s storage.PasskeyStore) {
	r := passkeyRec(user, 1, "v1", 1)
	mustPutPasskeys(t, s, r, 0)
	for _, expect := range []uint64{0, 2, math.MaxInt64 + 1} {
		wantConflict(t, s.DeletePasskeys(t.Context(), user, expect), fmt.Sprintf("DeletePasskeys(expect %d) of version 1", expect))
	}
	wantPasskeys(t, s, r, 1)
	wantHandleUser(t, s, r.Handle, user)
	wantCredUser(t, s, credOf(1), user)
}

func passkeyDeleteAbsentIsNil(t *testing.T, s storage.PasskeyStore) {
	for _, expect := range []uint64{0, 1, math.MaxInt64 + 1} {
		if err := s.DeletePasskeys(t.Context(), user, expect); err != nil {
			t.Errorf("DeletePasskeys(expect %d) of an absent record: %v, want nil", expect, err)
		}
	}
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v1", 1), 0)
	for range 2 {
		if err := s.DeletePasskeys(t.Context(), user, 1); err != nil {
			t.Errorf("DeletePasskeys(expect 1): %v, want nil", err)
		}
	}
	wantNoPasskeys(t, s, user)
}

// passkeyDeleteRemovesIndexEntries: a deleted record's handle and
// credential IDs map to no one, and another user may take them.
func passkeyDeleteRemovesIndexEntries(t *testing.T, s storage.PasskeyStore) {
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v1", 1), 0)
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v2", 1, 2), 1)
	bob := passkeyRec("bob", 3, "bob's", 3)
	mustPutPasskeys(t, s, bob, 0)
	if err := s.DeletePasskeys(t.Context(), user, 2); err != nil {
		t.Fatalf("DeletePasskeys(expect 2): %v", err)
	}
	wantNoPasskeys(t, s, user)
	wantHandleUser(t, s, handleOf(1), "")
	wantCredUser(t, s, credOf(1), "")
	wantCredUser(t, s, credOf(2), "")
	wantPasskeys(t, s, bob, 1)
	wantHandleUser(t, s, bob.Handle, "bob")
	wantCredUser(t, s, credOf(3), "bob")
	carol := passkeyRec("carol", 1, "carol's", 1, 2)
	mustPutPasskeys(t, s, carol, 0)
	wantHandleUser(t, s, handleOf(1), "carol")
	wantCredUser(t, s, credOf(2), "carol")
}

// passkeyDeleteThenPutCreatesVersion1: after a delete, a stale expect
// conflicts and a put expecting 0 starts at version 1 again.
func passkeyDeleteThenPutCreatesVersion1(t *testing.T, s storage.PasskeyStore) {
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v1", 1), 0)
	mustPutPasskeys(t, s, passkeyRec(user, 1, "v2", 1), 1)
	if err := s.DeletePasskeys(t.Context(), user, 2); err != nil {
		t.Fatalf("DeletePasskeys(expect 2): %v", err)
	}
	wantConflict(t, s.PutPasskeys(t.Context(), passkeyRec(user, 1, "stale", 1), 2), "PutPasskeys(expect 2) after the delete")
	wantNoPasskeys(t, s, user)
	wantCredUser(t, s, credOf(1), "")
	// A new record may have a new handle.
	r := passkeyRec(user, 2, "again", 1)
	mustPutPasskeys(t, s, r, 0)
	wantPasskeys(t, s, r, 1)
	wantHandleUser(t, s, handleOf(2), user)
	wantHandleUser(t, s, handleOf(1), "")
}

// passkeyPutDoesNotRetainInput: changing the slices given to a put
// afterwards changes nothing stored.
func passkeyPutDoesNotRetainInput(t *testing.T, s storage.PasskeyStore) {
	in := passkeyRec(user, 1, "v1", 1, 2)
	want := passkeyRec(user, 1, "v1", 1, 2)
	mustPutPasskeys(t, s, in, 0)
	for _, b := range append([][]byte{in.Handle, in.Data}, in.CredentialIDs...) {
		for i := range b {
			b[i] ^= 0xff
		}
	}
	in.CredentialIDs[0] = credOf(9)
	wantPasskeys(t, s, want, 1)
	wantHandleUser(t, s, want.Handle, user)
	wantCredUser(t, s, credOf(1), user)
	wantCredUser(t, s, credOf(9), "")
}

// passkeyGetReturnsCallersOwnCopy: changing what GetPasskeys returned
// changes nothing stored.
func passkeyGetReturnsCallersOwnCopy(t *testing.T, s storage.PasskeyStore) {
	want := passkeyRec(user, 1, "v1", 1, 2)
	mustPutPasskeys(t, s, want, 0)
	got, err := s.GetPasskeys(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append([][]byte{got.Handle, got.Data}, got.CredentialIDs...) {
		for i := range b {
			b[i] ^= 0xff
		}
	}
	if len(got.CredentialIDs) > 0 {
		got.CredentialIDs[0] = credOf(9)
	}
	wantPasskeys(t, s, want, 1)
	wantHandleUser(t, s, want.Handle, user)
}

// passkeyValuesAtBoundsRoundTrip: storage.MaxPasskeysPerUser credential
// IDs (of storage.MaxCredentialIDLen bytes, of 1 byte, differing only in
// case, after a NUL or by a trailing space), storage.MaxPasskeyDataLen
// bytes of data of every byte value and the longest user ID round-trip,
// and each ID is indexed.
func passkeyValuesAtBoundsRoundTrip(t *testing.T, s storage.PasskeyStore) {
	ids := [][]byte{
		{0}, {'a'}, {'A'}, []byte("cred"), []byte("CRED"), []byte("cred "), []byte("cred\x00"), []byte("cred\x00x"),
		everyByte()[:storage.MaxCredentialIDLen/2],
	}
	for i := len(ids); i < storage.MaxPasskeysPerUser; i++ {
		ids = append(ids, pattern(uint64(3000+i), storage.MaxCredentialIDLen))
	}
	data := pattern(5, storage.MaxPasskeyDataLen)
	copy(data, everyByte())
	handle := make([]byte, storage.PasskeyHandleLen) // all NUL
	r := storage.PasskeyRecord{UserID: longestUserID(), Handle: handle, CredentialIDs: ids, Data: data}
	mustPutPasskeys(t, s, r, 0)
	wantPasskeys(t, s, r, 1)
	wantHandleUser(t, s, handle, r.UserID)
	for _, id := range ids {
		wantCredUser(t, s, id, r.UserID)
	}
	wantCredUser(t, s, []byte("Cred"), "")
	wantCredUser(t, s, []byte("cred\x00y"), "")
	wantHandleUser(t, s, append(make([]byte, storage.PasskeyHandleLen-1), ' '), "")
	// Another user's credential ID that differs from one of these only
	// in case is not a duplicate.
	mustPutPasskeys(t, s, passkeyRec(user, 1, "", 0), 0)
	mustPutPasskeys(t, s, storage.PasskeyRecord{UserID: user, Handle: handleOf(1), CredentialIDs: [][]byte{[]byte("Cred"), []byte("CRED ")}}, 1)
	wantCredUser(t, s, []byte("Cred"), user)
	wantCredUser(t, s, []byte("cred"), r.UserID)
}

// passkeyOutOfBoundsIsInvalid: one value past each bound is refused with
// ErrInvalid (and neither ErrNotFound, ErrConflict nor ErrDuplicate), and
// nothing is stored or deleted.
func passkeyOutOfBoundsIsInvalid(t *testing.T, s storage.PasskeyStore) {
	ctx := t.Context()
	long := longestUserID() + "a"
	kept := passkeyRec(user, 1, "kept", 1)
	mustPutPasskeys(t, s, kept, 0)
	tooMany := make([][]byte, storage.MaxPasskeysPerUser+1)
	for i := range tooMany {
		tooMany[i] = credOf(uint64(200 + i))
	}
	with := func(f func(r *storage.PasskeyRecord)) storage.PasskeyRecord {
		r := passkeyRec("bob", 2, "bob's", 2)
		f(&r)
		return r
	}
	puts := []struct {
		what string
		r    storage.PasskeyRecord
	}{
		{"empty user ID", with(func(r *storage.PasskeyRecord) { r.UserID = "" })},
		{"user ID over MaxUserIDLen", with(func(r *storage.PasskeyRecord) { r.UserID = long })},
		{"no handle", with(func(r *storage.PasskeyRecord) { r.Handle = nil })},
		{"handle one byte short", with(func(r *storage.PasskeyRecord) { r.Handle = r.Handle[:storage.PasskeyHandleLen-1] })},
		{"handle one byte long", with(func(r *storage.PasskeyRecord) { r.Handle = append(r.Handle, 0) })},
		{"empty credential ID", with(func(r *storage.PasskeyRecord) { r.CredentialIDs = append(r.CredentialIDs, []byte{}) })},
		{"nil credential ID", with(func(r *storage.PasskeyRecord) { r.CredentialIDs = append(r.CredentialIDs, nil) })},
		{"credential ID over MaxCredentialIDLen", with(func(r *storage.PasskeyRecord) {
			r.CredentialIDs = append(r.CredentialIDs, pattern(7, storage.MaxCredentialIDLen+1))
		})},
		{"more than MaxPasskeysPerUser credential IDs", with(func(r *storage.PasskeyRecord) { r.CredentialIDs = tooMany })},
		{"a credential ID listed twice", with(func(r *storage.PasskeyRecord) { r.CredentialIDs = append(r.CredentialIDs, credOf(3), credOf(2)) })},
		{"data over MaxPasskeyDataLen", with(func(r *storage.PasskeyRecord) { r.Data = pattern(3, storage.MaxPasskeyDataLen+1) })},
	}
	type call struct {
		what string
		err  func() error
	}
	var calls []call
	for _, p := range puts {
		calls = append(calls, call{"PutPasskeys(" + p.what + ", expect 0)", func() error { return s.PutPasskeys(ctx, p.r, 0) }})
		// The same values as an update of alice's record.
		if p.r.UserID == "bob" {
			r := p.r
			r.UserID = user
			if len(r.Handle) == storage.PasskeyHandleLen {
				r.Handle = kept.Handle
			}
			calls = append(calls, call{"PutPasskeys(alice, " + p.what + ", expect 1)", func() error { return s.PutPasskeys(ctx, r, 1) }})
		}
	}
	calls = append(calls,
		call{"GetPasskeys(empty user ID)", func() error { _, err := s.GetPasskeys(ctx, ""); return err }},
		call{"GetPasskeys(user ID over MaxUserIDLen)", func() error { _, err := s.GetPasskeys(ctx, long); return err }},
		call{"DeletePasskeys(empty user ID)", func() error { return s.DeletePasskeys(ctx, "", 1) }},
		call{"DeletePasskeys(user ID over MaxUserIDLen)", func() error { return s.DeletePasskeys(ctx, long, 1) }},
		call{"UserByHandle(nil)", func() error { _, err := s.UserByHandle(ctx, nil); return err }},
		call{"UserByHandle(one byte short)", func() error {
			_, err := s.UserByHandle(ctx, kept.Handle[:storage.PasskeyHandleLen-1])
			return err
		}},
		call{"UserByHandle(one byte long)", func() error {
			_, err := s.UserByHandle(ctx, append(slices.Clip(kept.Handle), 0))
			return err
		}},
		call{"UserByCredential(empty)", func() error { _, err := s.UserByCredential(ctx, []byte{}); return err }},
		call{"UserByCredential(over MaxCredentialIDLen)", func() error {
			_, err := s.UserByCredential(ctx, append(credOf(1), make([]byte, storage.MaxCredentialIDLen)...))
			return err
		}},
	)
	for _, c := range calls {
		err := c.err()
		if !errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrDuplicate) {
			t.Errorf("%s: %v, want an error wrapping storage.ErrInvalid (and not ErrNotFound, ErrConflict or ErrDuplicate)", c.what, err)
		}
	}
	wantNoPasskeys(t, s, "bob")
	wantNoPasskeys(t, s, long[:storage.MaxUserIDLen])
	wantPasskeys(t, s, kept, 1)
	wantHandleUser(t, s, handleOf(2), "")
	wantCredUser(t, s, credOf(2), "")
	wantCredUser(t, s, credOf(200), "")
}

// passkeyContextIsHonoured checks that every method, called with a
// context that is already done, fails with want and changes nothing.
func passkeyContextIsHonoured(t *testing.T, s storage.PasskeyStore, done context.Context, want error) {
	t.Helper()
	check := func(call string, err error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s with a done context: %v, want an error matching %v", call, err, want)
		}
	}
	check("PutPasskeys (create)", s.PutPasskeys(done, passkeyRec("bob", 2, "must not be written", 2), 0))
	wantNoPasskeys(t, s, "bob")
	wantCredUser(t, s, credOf(2), "")

	r := passkeyRec(user, 1, "v1", 1)
	mustPutPasskeys(t, s, r, 0)
	_, err := s.GetPasskeys(done, user)
	check("GetPasskeys", err)
	_, err = s.UserByHandle(done, r.Handle)
	check("UserByHandle", err)
	_, err = s.UserByCredential(done, credOf(1))
	check("UserByCredential", err)
	check("PutPasskeys (update)", s.PutPasskeys(done, passkeyRec(user, 1, "must not be written", 3), 1))
	check("DeletePasskeys", s.DeletePasskeys(done, user, 1))
	wantPasskeys(t, s, r, 1)
	wantCredUser(t, s, credOf(3), "")
	wantCredUser(t, s, credOf(1), user)
}

// runPasskeysIfImplemented is Run's PasskeyStore group: each clause takes
// a store from newStore and runs on it if it implements
// storage.PasskeyStore, and skips, saying so, if it does not. (Each
// clause looks for itself, rather than the group once, so that a newStore
// that skips the clauses it does not want, by name, is asked only by
// them.)
func runPasskeysIfImplemented(t *testing.T, newStore func(t *testing.T) storage.Store) {
	RunPasskeyStore(t, func(t *testing.T) storage.PasskeyStore {
		s := newStore(t)
		ps, ok := s.(storage.PasskeyStore)
		if !ok {
			t.Skipf("the store (a %T) does not implement storage.PasskeyStore", s)
		}
		return ps
	})
}
