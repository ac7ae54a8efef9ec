package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// RunRefreshStore tests that a [storage.RefreshStore] keeps its contract,
// one subtest per clause. It is for adapters that provide only this
// interface; [Run] calls it too. newStore must return an empty, isolated
// store on every call; cleanup goes through t.Cleanup.
//
// Besides the plain clauses, the subtests try what adapters get wrong: the
// clauses of [RunVaultStore] on versions (expect values above
// math.MaxInt64, 50 racers with the same expect), f.Version set to
// anything but the expected version, a delete racing puts (a put that
// checked the version before the delete must not bring the family back),
// an expired family's old version (it must not be accepted), family IDs
// with every byte value, Expires in time zones east and west of UTC, and
// user IDs that a collation would merge. Clause ExpiredFamilyIsAbsent
// sleeps about 1.6 s; the package documentation says what it needs of the
// store's clock.
func RunRefreshStore(t *testing.T, newStore func(t *testing.T) storage.RefreshStore) {
	runClauses(t, refreshClauses, newStore)
}

// refreshClauses are the RefreshStore subtests, in the order of the
// contract.
var refreshClauses = []clause[storage.RefreshStore]{
	// GetRefreshFamily.
	{"GetAbsentIsErrNotFound", familyGetAbsentIsErrNotFound},

	// PutRefreshFamily: versions and compare-and-swap.
	{"FirstPutCreatesVersion1", familyFirstPutCreatesVersion1},
	{"PutIgnoresVersionField", familyPutIgnoresVersionField},
	{"PutExpectZeroWhenPresentConflicts", familyPutExpectZeroWhenPresentConflicts},
	{"PutStaleExpectConflicts", familyPutStaleExpectConflicts},
	{"PutFutureExpectConflicts", familyPutFutureExpectConflicts},
	{"PutNonZeroExpectWhenAbsentConflicts", familyPutNonZeroExpectWhenAbsentConflicts},
	{"VersionGrowsByOne", familyVersionGrowsByOne},
	{"PutWithAnotherUserIsInvalid", familyPutWithAnotherUserIsInvalid},
	{"ExpiredFamilyIsAbsent", expiredFamilyIsAbsent},

	// PutRefreshFamily and DeleteRefreshFamily under concurrency.
	{"ConcurrentCreatesOneWins", familyConcurrentCreatesOneWins},
	{"ConcurrentUpdatesOneWins", familyConcurrentUpdatesOneWins},
	{"ConcurrentPutAndDeleteLeavesNothing", familyConcurrentPutAndDeleteLeavesNothing},

	// DeleteRefreshFamily and DeleteUserRefreshFamilies.
	{"DeleteAbsentIsNil", familyDeleteAbsentIsNil},
	{"DeleteThenGetIsErrNotFound", familyDeleteThenGetIsErrNotFound},
	{"DeleteThenPutExpectZeroCreatesVersion1", familyDeleteThenPutExpectZeroCreatesVersion1},
	{"DeletedFamilyRefusesStaleExpect", deletedFamilyRefusesStaleExpect},
	{"DeleteUserRefreshFamiliesRemovesOnlyTheUsers", deleteUserRefreshFamiliesRemovesOnlyTheUsers},

	// Byte slices are not retained, and returned ones are the caller's.
	{"PutDoesNotRetainIDOrData", familyPutDoesNotRetainIDOrData},
	{"GetReturnsCallersOwnCopy", familyGetReturnsCallersOwnCopy},

	// Opaque IDs and data; values at the bounds.
	{"BinaryIDsRoundTrip", familyBinaryIDsRoundTrip},
	{"BinaryDataRoundTrips", familyBinaryDataRoundTrips},
	{"LargestDataRoundTrips", familyLargestDataRoundTrips},
	{"EmptyDataRoundTrips", familyEmptyDataRoundTrips},
	{"LongestUserIDRoundTrips", familyLongestUserIDRoundTrips},

	// Every method honours its context.
	{"CanceledContextIsHonoured", canceledContextIsHonoured(refreshContextIsHonoured)},
	{"ExpiredDeadlineIsHonoured", expiredDeadlineIsHonoured(refreshContextIsHonoured)},
}

func familyGetAbsentIsErrNotFound(t *testing.T, s storage.RefreshStore) {
	wantNoFamily(t, s, familyID(1), "none was stored")
	mustPutFamily(t, s, testFamily(2, "bob"), 0)
	wantNoFamily(t, s, familyID(1), "only another family was stored")
}

func familyFirstPutCreatesVersion1(t *testing.T, s storage.RefreshStore) {
	for i, expires := range testExpiries() {
		f := testFamily(uint64(i), user)
		f.Expires = expires
		mustPutFamily(t, s, f, 0)
		wantFamily(t, s, f, 1)
	}
}

// familyPutIgnoresVersionField checks that the version is expect+1 and the
// compare-and-swap is against expect, whatever f.Version says.
func familyPutIgnoresVersionField(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	f.Version = 7
	mustPutFamily(t, s, f, 0)
	wantFamily(t, s, f, 1)
	f.Version = 0
	mustPutFamily(t, s, f, 1)
	wantFamily(t, s, f, 2)
	f.Version = 2 // the stored version, but expect is stale
	wantConflict(t, s.PutRefreshFamily(t.Context(), f, 1), "PutRefreshFamily(f.Version 2, expect 1) over version 2")
	f.Version = 1 // stale, but expect is right
	mustPutFamily(t, s, f, 2)
	wantFamily(t, s, f, 3)
}

func familyPutExpectZeroWhenPresentConflicts(t *testing.T, s storage.RefreshStore) {
	orig := testFamily(1, user)
	mustPutFamily(t, s, orig, 0)
	intruder := testFamily(1, user)
	intruder.Data = []byte("intruder")
	wantConflict(t, s.PutRefreshFamily(t.Context(), intruder, 0), "PutRefreshFamily(expect 0) over version 1")
	wantFamily(t, s, orig, 1)
}

func familyPutStaleExpectConflicts(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	for v := range uint64(3) {
		f.Data = fmt.Appendf(nil, "v%d", v+1)
		mustPutFamily(t, s, f, v)
	}
	stale := cloneFamily(f)
	stale.Data = []byte("stale")
	for _, expect := range []uint64{1, 2} {
		wantConflict(t, s.PutRefreshFamily(t.Context(), stale, expect), fmt.Sprintf("PutRefreshFamily(expect %d) over version 3", expect))
	}
	wantFamily(t, s, f, 3)
}

func familyPutFutureExpectConflicts(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	mustPutFamily(t, s, f, 0)
	mustPutFamily(t, s, f, 1)
	future := cloneFamily(f)
	future.Data = []byte("future")
	for _, expect := range []uint64{3, 4, 1000, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
		wantConflict(t, s.PutRefreshFamily(t.Context(), future, expect), fmt.Sprintf("PutRefreshFamily(expect %d) over version 2", expect))
	}
	wantFamily(t, s, f, 2)
}

func familyPutNonZeroExpectWhenAbsentConflicts(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	for _, expect := range []uint64{1, 2, math.MaxInt64 + 1, math.MaxUint64} {
		wantConflict(t, s.PutRefreshFamily(t.Context(), f, expect), fmt.Sprintf("PutRefreshFamily(expect %d) with no family", expect))
		wantNoFamily(t, s, f.ID, "every put conflicted")
	}
}

func familyVersionGrowsByOne(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	for v := uint64(1); v <= 10; v++ {
		f.Data = fmt.Appendf(nil, "version %d", v)
		f.Expires = time.Now().Add(time.Duration(v) * time.Hour)
		mustPutFamily(t, s, f, v-1)
		wantFamily(t, s, f, v)
	}
}

func familyPutWithAnotherUserIsInvalid(t *testing.T, s storage.RefreshStore) {
	orig := testFamily(1, user)
	mustPutFamily(t, s, orig, 0)
	mustPutFamily(t, s, orig, 1)
	for _, other := range []string{"bob", "Alice", "alice "} {
		intruder := testFamily(1, other)
		intruder.Data = []byte("intruder")
		if err := s.PutRefreshFamily(t.Context(), intruder, 2); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("PutRefreshFamily(expect 2) of %s's family with the ID of %s's: %v, want storage.ErrInvalid", shortID(other), shortID(user), err)
		}
		wantFamily(t, s, orig, 2)
	}
}

// expiredFamilyIsAbsent checks that a family is absent for every method
// once its Expires has passed, whether or not the store has removed it: it
// is not found, its old version is not accepted (a refresh token of an
// expired family must not bring it back), and a put expecting 0 creates a
// new family, even for another user.
func expiredFamilyIsAbsent(t *testing.T, s storage.RefreshStore) {
	ctx := t.Context()
	expires := time.Now().Add(expiryLead).In(east)
	mine, theirs := testFamily(1, user), testFamily(2, user)
	mine.Expires, theirs.Expires = expires, expires
	long := testFamily(3, user)
	mustPutFamily(t, s, mine, 0)
	mustPutFamily(t, s, mine, 1)
	mustPutFamily(t, s, theirs, 0)
	mustPutFamily(t, s, long, 0)
	if _, err := s.GetRefreshFamily(ctx, mine.ID); err != nil {
		t.Fatalf("GetRefreshFamily of a family that expires in %v: %v, want it (is the store's clock ahead of the test's, or is the store this slow?)", time.Until(expires).Round(time.Millisecond), err)
	}

	waitUntilPast(t, expires)
	wantNoFamily(t, s, mine.ID, "its Expires has passed")
	wantNoFamily(t, s, theirs.ID, "its Expires has passed")
	wantFamily(t, s, long, 1)

	renewed := cloneFamily(mine)
	renewed.Expires = time.Now().Add(time.Hour)
	renewed.Data = []byte("renewed")
	for _, expect := range []uint64{2, 1} {
		wantConflict(t, s.PutRefreshFamily(ctx, renewed, expect), fmt.Sprintf("PutRefreshFamily(expect %d) of a family that had version 2 and expired", expect))
		wantNoFamily(t, s, mine.ID, "its Expires has passed, and every put conflicted")
	}
	if err := s.PutRefreshFamily(ctx, renewed, 0); err != nil {
		t.Fatalf("PutRefreshFamily(expect 0) of a family that expired: %v, want nil (an expired family is absent)", err)
	}
	wantFamily(t, s, renewed, 1)

	// Another user takes the other expired family's ID: it is a new
	// family, which deleting the first user's families leaves alone.
	taken := testFamily(2, "bob")
	if err := s.PutRefreshFamily(ctx, taken, 0); err != nil {
		t.Fatalf("PutRefreshFamily(expect 0) of %q's family with the ID of %q's expired one: %v, want nil (an expired family is absent)", "bob", user, err)
	}
	wantFamily(t, s, taken, 1)
	if err := s.DeleteUserRefreshFamilies(ctx, user); err != nil {
		t.Fatalf("DeleteUserRefreshFamilies(%q): %v", user, err)
	}
	wantNoFamily(t, s, renewed.ID, "its user's families were deleted")
	wantNoFamily(t, s, long.ID, "its user's families were deleted")
	wantFamily(t, s, taken, 1)
}

func racerFamily(i int) storage.RefreshFamily {
	f := testFamily(1, user)
	f.Data = racerData(i)
	return f
}

func familyConcurrentCreatesOneWins(t *testing.T, s storage.RefreshStore) {
	ctx := t.Context()
	families := make([]storage.RefreshFamily, concurrency)
	for i := range families {
		families[i] = racerFamily(i)
	}
	errs := race(ctx, func(ctx context.Context, i int) error { return s.PutRefreshFamily(ctx, families[i], 0) })
	if w := oneWinner(t, errs); w >= 0 {
		wantFamily(t, s, families[w], 1)
	}
}

func familyConcurrentUpdatesOneWins(t *testing.T, s storage.RefreshStore) {
	ctx := t.Context()
	f := testFamily(1, user)
	mustPutFamily(t, s, f, 0)
	mustPutFamily(t, s, f, 1)
	families := make([]storage.RefreshFamily, concurrency)
	for i := range families {
		families[i] = racerFamily(i)
	}
	errs := race(ctx, func(ctx context.Context, i int) error { return s.PutRefreshFamily(ctx, families[i], 2) })
	if w := oneWinner(t, errs); w >= 0 {
		wantFamily(t, s, families[w], 3)
	}
}

// familyConcurrentPutAndDeleteLeavesNothing races a delete (a revocation)
// against puts that all expect the version it removes. Whatever the order,
// the family ends up absent: a put that checked the version before the
// delete and wrote after it would bring a revoked family back.
func familyConcurrentPutAndDeleteLeavesNothing(t *testing.T, s storage.RefreshStore) {
	ctx := t.Context()
	f := testFamily(1, user)
	mustPutFamily(t, s, f, 0)
	families := make([]storage.RefreshFamily, concurrency)
	for i := range families {
		families[i] = racerFamily(i)
	}
	const deleter = 0
	errs := race(ctx, func(ctx context.Context, i int) error {
		if i == deleter {
			return s.DeleteRefreshFamily(ctx, f.ID)
		}
		return s.PutRefreshFamily(ctx, families[i], 1)
	})
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil && i != deleter:
			winners++
		case err == nil, errors.Is(err, storage.ErrConflict) && i != deleter:
		case i == deleter:
			t.Errorf("DeleteRefreshFamily racing puts: %v, want nil", err)
		default:
			t.Errorf("racer %d: PutRefreshFamily(expect 1): %v, want nil or storage.ErrConflict", i, err)
		}
	}
	if winners > 1 {
		t.Errorf("%d of %d concurrent puts with the same expect succeeded, want at most 1", winners, concurrency-1)
	}
	wantNoFamily(t, s, f.ID, "it was deleted, and every put expected version 1, which only the first put or the delete could find")
}

func familyDeleteAbsentIsNil(t *testing.T, s storage.RefreshStore) {
	if err := s.DeleteRefreshFamily(t.Context(), familyID(1)); err != nil {
		t.Errorf("DeleteRefreshFamily with no family: %v, want nil", err)
	}
	other := testFamily(2, user)
	mustPutFamily(t, s, other, 0)
	if err := s.DeleteRefreshFamily(t.Context(), familyID(1)); err != nil {
		t.Errorf("DeleteRefreshFamily of an absent family next to another: %v, want nil", err)
	}
	wantFamily(t, s, other, 1)

	// Deleted twice: the second delete finds nothing, and succeeds.
	mustDeleteFamily(t, s, other.ID)
	if err := s.DeleteRefreshFamily(t.Context(), other.ID); err != nil {
		t.Errorf("second DeleteRefreshFamily: %v, want nil", err)
	}
	wantNoFamily(t, s, other.ID, "it was deleted")
}

func familyDeleteThenGetIsErrNotFound(t *testing.T, s storage.RefreshStore) {
	a, b := testFamily(1, user), testFamily(2, user)
	mustPutFamily(t, s, a, 0)
	mustPutFamily(t, s, a, 1)
	mustPutFamily(t, s, b, 0)
	mustDeleteFamily(t, s, a.ID)
	wantNoFamily(t, s, a.ID, "it was deleted")
	wantFamily(t, s, b, 1)
}

func familyDeleteThenPutExpectZeroCreatesVersion1(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	mustPutFamily(t, s, f, 0)
	mustPutFamily(t, s, f, 1)
	mustDeleteFamily(t, s, f.ID)
	reborn := cloneFamily(f)
	reborn.Data = []byte("reborn")
	mustPutFamily(t, s, reborn, 0)
	wantFamily(t, s, reborn, 1)
}

// deletedFamilyRefusesStaleExpect checks that a refresh that read the
// family before it was revoked cannot bring it back.
func deletedFamilyRefusesStaleExpect(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	mustPutFamily(t, s, f, 0)
	mustPutFamily(t, s, f, 1)
	mustDeleteFamily(t, s, f.ID)
	for _, expect := range []uint64{1, 2, 3} {
		wantConflict(t, s.PutRefreshFamily(t.Context(), f, expect), fmt.Sprintf("PutRefreshFamily(expect %d) after the family was deleted", expect))
	}
	wantNoFamily(t, s, f.ID, "it was deleted, and every put after conflicted")
}

func deleteUserRefreshFamiliesRemovesOnlyTheUsers(t *testing.T, s storage.RefreshStore) {
	ctx := t.Context()
	users := []string{"alice", "Alice", "alice ", "bob"}
	byUser := map[string][]storage.RefreshFamily{}
	n := uint64(0)
	for _, u := range users {
		for range 3 {
			n++
			f := testFamily(n, u)
			mustPutFamily(t, s, f, 0)
			byUser[u] = append(byUser[u], f)
		}
	}
	if err := s.DeleteUserRefreshFamilies(ctx, "alice"); err != nil {
		t.Fatalf(`DeleteUserRefreshFamilies("alice"): %v`, err)
	}
	for _, f := range byUser["alice"] {
		wantNoFamily(t, s, f.ID, "its user's families were deleted")
	}
	for _, u := range users[1:] {
		for _, f := range byUser[u] {
			wantFamily(t, s, f, 1)
		}
	}

	// Deleting the families of a user who has none is not an error, and
	// the user's families can be created again.
	for _, u := range []string{"alice", "carol"} {
		if err := s.DeleteUserRefreshFamilies(ctx, u); err != nil {
			t.Errorf("DeleteUserRefreshFamilies(%q) with no family: %v, want nil", u, err)
		}
	}
	again := byUser["alice"][0]
	mustPutFamily(t, s, again, 0)
	wantFamily(t, s, again, 1)
	if err := s.DeleteUserRefreshFamilies(ctx, "alice"); err != nil {
		t.Fatalf(`DeleteUserRefreshFamilies("alice"): %v`, err)
	}
	wantNoFamily(t, s, again.ID, "its user's families were deleted")
}

func familyPutDoesNotRetainIDOrData(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	want := cloneFamily(f)
	mustPutFamily(t, s, f, 0)
	f.ID[0] ^= 0xff
	clear(f.Data)
	wantFamily(t, s, want, 1)
	wantNoFamily(t, s, f.ID, "its ID was changed by the caller after the put, which must not change what was stored")

	// The same on an update.
	f = cloneFamily(want)
	f.Data = []byte("rotated")
	want = cloneFamily(f)
	mustPutFamily(t, s, f, 1)
	copy(f.ID, "XXXXXXXX")
	copy(f.Data, "XXXXXXXX")
	wantFamily(t, s, want, 2)
}

func familyGetReturnsCallersOwnCopy(t *testing.T, s storage.RefreshStore) {
	want := testFamily(1, user)
	mustPutFamily(t, s, cloneFamily(want), 0)
	got, err := s.GetRefreshFamily(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetRefreshFamily: %v", err)
	}
	clear(got.ID)
	clear(got.Data)
	wantFamily(t, s, want, 1)

	// Two reads do not share memory either.
	a, errA := s.GetRefreshFamily(t.Context(), want.ID)
	b, errB := s.GetRefreshFamily(t.Context(), want.ID)
	if errA != nil || errB != nil {
		t.Fatalf("GetRefreshFamily: %v, %v", errA, errB)
	}
	clear(a.ID)
	clear(a.Data)
	if d := familyDiff(b, want, 1); d != "" {
		t.Errorf("changing the ID and data of one GetRefreshFamily result changed another's: %s", d)
	}
}

func familyBinaryIDsRoundTrip(t *testing.T, s storage.RefreshStore) {
	ids := binaryIDs()
	all := make([]storage.RefreshFamily, len(ids))
	for i, id := range ids {
		all[i] = storage.RefreshFamily{ID: id, UserID: user, Expires: time.Now().Add(time.Hour), Data: fmt.Appendf(nil, "binary ID %d", i)}
		mustPutFamily(t, s, all[i], 0)
	}
	for _, f := range all {
		wantFamily(t, s, f, 1)
	}
	// Updating and deleting the all-NUL ID touches only it.
	all[0].Data = []byte("updated")
	mustPutFamily(t, s, all[0], 1)
	wantFamily(t, s, all[0], 2)
	for _, f := range all[1:] {
		wantFamily(t, s, f, 1)
	}
	mustDeleteFamily(t, s, all[0].ID)
	wantNoFamily(t, s, all[0].ID, "it was deleted")
	for _, f := range all[1:] {
		wantFamily(t, s, f, 1)
	}
}

func familyBinaryDataRoundTrips(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	f.Data = everyByte()
	mustPutFamily(t, s, f, 0)
	wantFamily(t, s, f, 1)

	// Data that starts with NUL and is not UTF-8.
	f.Data = []byte{0x00, 0xff, 0xfe, 0x00, 0xc3, 0x28, 0x00}
	mustPutFamily(t, s, f, 1)
	wantFamily(t, s, f, 2)
}

func familyLargestDataRoundTrips(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	f.Data = pattern(1, storage.MaxSessionDataLen)
	mustPutFamily(t, s, f, 0)
	wantFamily(t, s, f, 1)
	// Replace it with another family record of the same size.
	f.Data = pattern(2, storage.MaxSessionDataLen)
	mustPutFamily(t, s, f, 1)
	wantFamily(t, s, f, 2)
}

func familyEmptyDataRoundTrips(t *testing.T, s storage.RefreshStore) {
	f := testFamily(1, user)
	f.Data = []byte{}
	mustPutFamily(t, s, f, 0)
	wantFamily(t, s, f, 1)
	f.Data = []byte("not empty")
	mustPutFamily(t, s, f, 1)
	f.Data = nil
	mustPutFamily(t, s, f, 2)
	wantFamily(t, s, f, 3)
}

func familyLongestUserIDRoundTrips(t *testing.T, s storage.RefreshStore) {
	id := longestUserID()
	other := id[:len(id)-1] + "b" // the same but for the last byte
	mine, theirs := testFamily(1, id), testFamily(2, other)
	mustPutFamily(t, s, mine, 0)
	mustPutFamily(t, s, theirs, 0)
	wantFamily(t, s, mine, 1)
	mustPutFamily(t, s, mine, 1)
	wantFamily(t, s, mine, 2)
	if err := s.DeleteUserRefreshFamilies(t.Context(), id); err != nil {
		t.Fatalf("DeleteUserRefreshFamilies(%s): %v", shortID(id), err)
	}
	wantNoFamily(t, s, mine.ID, "its user's families were deleted")
	wantFamily(t, s, theirs, 1)
}

// refreshContextIsHonoured checks that every RefreshStore method, called
// with a context that is already done, fails with want and changes nothing.
func refreshContextIsHonoured(t *testing.T, s storage.RefreshStore, done context.Context, want error) {
	t.Helper()
	// An absent family is not created.
	bob := testFamily(1, "bob")
	if err := s.PutRefreshFamily(done, bob, 0); !errors.Is(err, want) {
		t.Errorf("PutRefreshFamily (create) with a done context: %v, want an error matching %v", err, want)
	}
	wantNoFamily(t, s, bob.ID, "it was put with a done context")

	f := testFamily(2, user)
	mustPutFamily(t, s, f, 0)
	if _, err := s.GetRefreshFamily(done, f.ID); !errors.Is(err, want) {
		t.Errorf("GetRefreshFamily with a done context: %v, want an error matching %v", err, want)
	}
	// A present family is neither updated nor deleted.
	update := cloneFamily(f)
	update.Data = []byte("must not be written")
	if err := s.PutRefreshFamily(done, update, 1); !errors.Is(err, want) {
		t.Errorf("PutRefreshFamily (update) with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.DeleteRefreshFamily(done, f.ID); !errors.Is(err, want) {
		t.Errorf("DeleteRefreshFamily with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.DeleteUserRefreshFamilies(done, user); !errors.Is(err, want) {
		t.Errorf("DeleteUserRefreshFamilies with a done context: %v, want an error matching %v", err, want)
	}
	wantFamily(t, s, f, 1)
}

// familyID returns the n-th refresh-family ID of the clauses:
// storage.SessionIDLen bytes that look like a SHA-256 output, different for
// every n.
func familyID(n uint64) []byte { return pattern(2<<32+n, storage.SessionIDLen) }

// testFamily returns family n of the user, expiring in an hour, with data
// of its own. Its Version is 0: the store ignores it.
func testFamily(n uint64, userID string) storage.RefreshFamily {
	return storage.RefreshFamily{
		ID:      familyID(n),
		UserID:  userID,
		Expires: time.Now().Add(time.Hour),
		Data:    fmt.Appendf(nil, "family %d of %s", n, userID),
	}
}

// cloneFamily returns a copy of f that shares no memory with it.
func cloneFamily(f storage.RefreshFamily) storage.RefreshFamily {
	f.ID = append([]byte(nil), f.ID...)
	f.Data = append([]byte(nil), f.Data...)
	return f
}

func mustPutFamily(t *testing.T, s storage.RefreshStore, f storage.RefreshFamily, expect uint64) {
	t.Helper()
	if err := s.PutRefreshFamily(t.Context(), f, expect); err != nil {
		t.Fatalf("PutRefreshFamily(%s of %s, %d bytes, expect %d): %v", shortHex(f.ID), shortID(f.UserID), len(f.Data), expect, err)
	}
}

func mustDeleteFamily(t *testing.T, s storage.RefreshStore, id []byte) {
	t.Helper()
	if err := s.DeleteRefreshFamily(t.Context(), id); err != nil {
		t.Fatalf("DeleteRefreshFamily(%s): %v", shortHex(id), err)
	}
}

// wantFamily checks that GetRefreshFamily returns want (but for its
// Version) with this version.
func wantFamily(t *testing.T, s storage.RefreshStore, want storage.RefreshFamily, version uint64) {
	t.Helper()
	got, err := s.GetRefreshFamily(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetRefreshFamily(%s): %v, want version %d", shortHex(want.ID), err, version)
	}
	if d := familyDiff(got, want, version); d != "" {
		t.Errorf("GetRefreshFamily(%s): %s", shortHex(want.ID), d)
	}
}

// wantNoFamily checks that GetRefreshFamily returns ErrNotFound, because of
// why.
func wantNoFamily(t *testing.T, s storage.RefreshStore, id []byte, why string) {
	t.Helper()
	got, err := s.GetRefreshFamily(t.Context(), id)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetRefreshFamily(%s): version %d, error %v; want storage.ErrNotFound (%s)", shortHex(id), got.Version, err, why)
	}
}

// familyDiff describes how got differs from want with this version, or
// returns "" if it does not. want.Version is not read.
func familyDiff(got, want storage.RefreshFamily, version uint64) string {
	var d []string
	if !sameBytes(got.ID, want.ID) {
		d = append(d, fmt.Sprintf("ID %s, want %s", shortHex(got.ID), shortHex(want.ID)))
	}
	if got.UserID != want.UserID {
		d = append(d, fmt.Sprintf("user %s, want %s", shortID(got.UserID), shortID(want.UserID)))
	}
	if got.Version != version {
		d = append(d, fmt.Sprintf("version %d, want %d", got.Version, version))
	}
	if !sameExpiry(got.Expires, want.Expires) {
		d = append(d, fmt.Sprintf("Expires %s, want %s (±%v)", got.Expires.Format(time.RFC3339Nano), want.Expires.Format(time.RFC3339Nano), expiryTolerance))
	}
	if !sameBytes(got.Data, want.Data) {
		d = append(d, "data differs from what was stored: "+diff(got.Data, want.Data))
	}
	return strings.Join(d, "; ")
}
