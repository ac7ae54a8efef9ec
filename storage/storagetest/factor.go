package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// RunFactorStore tests that a [storage.FactorStore] keeps its contract, one
// subtest per clause. It is for adapters that provide only this interface;
// [Run] calls it too. newStore must return an empty, isolated store on
// every call; cleanup goes through t.Cleanup.
//
// The contract is VaultStore's, and so are the clauses (see
// [RunVaultStore]: user IDs that a collation would merge, expect values
// above math.MaxInt64, binary data, a user ID of exactly
// storage.MaxUserIDLen bytes), with a record of exactly
// storage.MaxFactorDataLen bytes as the largest. Two more clauses check
// what package totp relies on when it accepts a code: of
// factorRacers calls of PutFactors that have all read the same version
// before any of them writes, exactly one succeeds
// (RacingUsesOfOneReadOneWins); and a put that expects the version read
// before a delete conflicts rather than bringing the record back
// (DeleteBetweenReadAndPutConflicts).
func RunFactorStore(t *testing.T, newStore func(t *testing.T) storage.FactorStore) {
	runClauses(t, factorClauses, newStore)
}

// factorRacers is the number of racers of RacingUsesOfOneReadOneWins: as
// many sign-ins with one TOTP or recovery code at once.
const factorRacers = 20

// raceN is race with n racers instead of concurrency.
func raceN(ctx context.Context, n int, f func(racer context.Context, i int) error) []error {
	run := &raceRun{racers: n, arrived: map[string]int{}, changed: make(chan struct{})}
	racer := context.WithValue(ctx, raceKey{}, run)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer run.finish()
			<-start
			errs[i] = f(racer, i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// factorRacingUsesOfOneReadOneWins is the use of one code by factorRacers
// sign-ins at once: each has read the record (the reads are made, one per
// racer, before the race starts, so every read comes before any write
// whatever the scheduler does), and all then write their change at once,
// each expecting the version it read. Exactly one write succeeds, the
// others conflict, and the record is the winner's.
func factorRacingUsesOfOneReadOneWins(t *testing.T, s storage.FactorStore) {
	ctx := t.Context()
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, user, []byte("v2"), 1)
	reads := make([]storage.FactorRecord, factorRacers)
	for i := range reads {
		rec, err := s.GetFactors(ctx, user)
		if err != nil {
			t.Fatalf("GetFactors: %v", err)
		}
		reads[i] = rec
	}
	errs := raceN(ctx, factorRacers, func(ctx context.Context, i int) error {
		return s.PutFactors(ctx, user, racerData(i), reads[i].Version)
	})
	if w := oneWinner(t, errs); w >= 0 {
		factorWantRecord(t, s, user, 3, racerData(w))
	}
}

// factorDeleteBetweenReadAndPutConflicts forces the interleaving of a
// code accepted (read, then write) around the removal of the user's
// factors: the write that expects the version read before the delete
// conflicts, and the record stays deleted; the next record starts at
// version 1 again.
func factorDeleteBetweenReadAndPutConflicts(t *testing.T, s storage.FactorStore) {
	ctx := t.Context()
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, user, []byte("v2"), 1)
	rec, err := s.GetFactors(ctx, user)
	if err != nil {
		t.Fatalf("GetFactors: %v", err)
	}
	factorMustDelete(t, s, user, rec.Version)
	wantConflict(t, s.PutFactors(ctx, user, []byte("stale use"), rec.Version), fmt.Sprintf("PutFactors(expect %d, read before the delete)", rec.Version))
	factorWantNotFound(t, s, user)
	// A delete that expects the version read before it conflicts with
	// nothing: the record is gone, and a second delete is nil.
	if err := s.DeleteFactors(ctx, user, rec.Version); err != nil {
		t.Errorf("DeleteFactors(expect %d) after the delete: %v, want nil", rec.Version, err)
	}
	factorMustPut(t, s, user, []byte("re-enrolled"), 0)
	factorWantRecord(t, s, user, 1, []byte("re-enrolled"))
}

// factorClauses are the FactorStore subtests, in the order of the contract.
var factorClauses = []clause[storage.FactorStore]{
	// GetFactors.
	{"GetAbsentIsErrNotFound", factorGetAbsentIsErrNotFound},

	// PutFactors: versions and compare-and-swap.
	{"FirstPutCreatesVersion1", factorFirstPutCreatesVersion1},
	{"PutExpectZeroWhenPresentConflicts", factorPutExpectZeroWhenPresentConflicts},
	{"PutStaleExpectConflicts", factorPutStaleExpectConflicts},
	{"PutFutureExpectConflicts", factorPutFutureExpectConflicts},
	{"PutNonZeroExpectWhenAbsentConflicts", factorPutNonZeroExpectWhenAbsentConflicts},
	{"VersionGrowsByOne", factorVersionGrowsByOne},

	// PutFactors and DeleteFactors under concurrency.
	{"ConcurrentCreatesOneWins", factorConcurrentCreatesOneWins},
	{"ConcurrentUpdatesOneWins", factorConcurrentUpdatesOneWins},
	{"ConcurrentReadModifyWriteLosesNothing", factorConcurrentReadModifyWriteLosesNothing},
	{"ConcurrentPutAndDeleteOneWins", factorConcurrentPutAndDeleteOneWins},
	{"ConcurrentDeletesAllSucceed", factorConcurrentDeletesAllSucceed},
	{"RacingUsesOfOneReadOneWins", factorRacingUsesOfOneReadOneWins},
	{"DeleteBetweenReadAndPutConflicts", factorDeleteBetweenReadAndPutConflicts},

	// DeleteFactors.
	{"DeleteWrongExpectConflicts", factorDeleteWrongExpectConflicts},
	{"DeleteAbsentIsNil", factorDeleteAbsentIsNil},
	{"DeleteThenGetIsErrNotFound", factorDeleteThenGetIsErrNotFound},
	{"DeleteThenPutExpectZeroCreatesVersion1", factorDeleteThenPutExpectZeroCreatesVersion1},
	{"DeletedRecordRefusesStaleExpect", factorDeletedRecordRefusesStaleExpect},

	// Byte slices are not retained, and returned ones are the caller's.
	{"PutDoesNotRetainData", factorPutDoesNotRetainData},
	{"GetReturnsCallersOwnCopy", factorGetReturnsCallersOwnCopy},

	// One record per user; opaque data; values at the bounds.
	{"UsersAreIsolated", factorUsersAreIsolated},
	{"BinaryDataRoundTrips", factorBinaryDataRoundTrips},
	{"LargestDataRoundTrips", factorLargestDataRoundTrips},
	{"EmptyDataRoundTrips", factorEmptyDataRoundTrips},
	{"LongestUserIDRoundTrips", factorLongestUserIDRoundTrips},
	{"OutOfBoundsIsInvalid", factorOutOfBoundsIsInvalid},

	// Every method honours its context.
	{"CanceledContextIsHonoured", canceledContextIsHonoured(factorContextIsHonoured)},
	{"ExpiredDeadlineIsHonoured", expiredDeadlineIsHonoured(factorContextIsHonoured)},
}

func factorGetAbsentIsErrNotFound(t *testing.T, s storage.FactorStore) {
	factorWantNotFound(t, s, user)
	factorMustPut(t, s, "bob", []byte("bob's factors"), 0)
	factorWantNotFound(t, s, user)
}

func factorFirstPutCreatesVersion1(t *testing.T, s storage.FactorStore) {
	data := []byte("first factors")
	factorMustPut(t, s, user, data, 0)
	factorWantRecord(t, s, user, 1, data)
}

func factorPutExpectZeroWhenPresentConflicts(t *testing.T, s storage.FactorStore) {
	factorMustPut(t, s, user, []byte("original"), 0)
	wantConflict(t, s.PutFactors(t.Context(), user, []byte("intruder"), 0), "PutFactors(expect 0) over version 1")
	factorWantRecord(t, s, user, 1, []byte("original"))
}

func factorPutStaleExpectConflicts(t *testing.T, s storage.FactorStore) {
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, user, []byte("v2"), 1)
	factorMustPut(t, s, user, []byte("v3"), 2)
	for _, expect := range []uint64{1, 2} {
		wantConflict(t, s.PutFactors(t.Context(), user, []byte("stale"), expect), fmt.Sprintf("PutFactors(expect %d) over version 3", expect))
	}
	factorWantRecord(t, s, user, 3, []byte("v3"))
}

func factorPutFutureExpectConflicts(t *testing.T, s storage.FactorStore) {
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, user, []byte("v2"), 1)
	// The largest values catch adapters that wrap expect+1, or whose
	// signed version column cannot hold the value (which is a conflict
	// too, not an infrastructure error).
	for _, expect := range []uint64{3, 4, 1000, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
		wantConflict(t, s.PutFactors(t.Context(), user, []byte("future"), expect), fmt.Sprintf("PutFactors(expect %d) over version 2", expect))
	}
	factorWantRecord(t, s, user, 2, []byte("v2"))
}

func factorPutNonZeroExpectWhenAbsentConflicts(t *testing.T, s storage.FactorStore) {
	for _, expect := range []uint64{1, 2, math.MaxUint64} {
		wantConflict(t, s.PutFactors(t.Context(), user, []byte("no such record"), expect), fmt.Sprintf("PutFactors(expect %d) with no record", expect))
		factorWantNotFound(t, s, user)
	}
}

func factorVersionGrowsByOne(t *testing.T, s storage.FactorStore) {
	for v := uint64(1); v <= 10; v++ {
		data := fmt.Appendf(nil, "version %d", v)
		factorMustPut(t, s, user, data, v-1)
		factorWantRecord(t, s, user, v, data)
	}
}

// oneWinner checks that exactly one of errs is nil and all the others are
// ErrConflict, and returns the winner's index (-1 if there is none).

func factorConcurrentCreatesOneWins(t *testing.T, s storage.FactorStore) {
	ctx := t.Context()
	errs := race(ctx, func(ctx context.Context, i int) error { return s.PutFactors(ctx, user, racerData(i), 0) })
	if w := oneWinner(t, errs); w >= 0 {
		factorWantRecord(t, s, user, 1, racerData(w))
	}
}

func factorConcurrentUpdatesOneWins(t *testing.T, s storage.FactorStore) {
	ctx := t.Context()
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, user, []byte("v2"), 1)
	errs := race(ctx, func(ctx context.Context, i int) error { return s.PutFactors(ctx, user, racerData(i), 2) })
	if w := oneWinner(t, errs); w >= 0 {
		factorWantRecord(t, s, user, 3, racerData(w))
	}
}

// factorConcurrentReadModifyWriteLosesNothing runs the loop every caller of
// PutFactors runs (read, change, write with the version read, retry on
// conflict): each racer appends its own byte, and none may be lost.
func factorConcurrentReadModifyWriteLosesNothing(t *testing.T, s storage.FactorStore) {
	ctx := t.Context()
	// Each attempt of a racer fails only if another racer succeeded since
	// its read, so concurrency attempts suffice; more means the store is
	// not linearizable.
	const maxAttempts = 10 * concurrency
	errs := race(ctx, func(ctx context.Context, i int) error {
		for range maxAttempts {
			rec, err := s.GetFactors(ctx, user)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("GetFactors: %w", err)
			}
			data := append(slices.Clip(rec.Data), byte(i))
			err = s.PutFactors(ctx, user, data, rec.Version)
			if err == nil {
				return nil
			}
			if !errors.Is(err, storage.ErrConflict) {
				return fmt.Errorf("PutFactors(expect %d): %w", rec.Version, err)
			}
		}
		return fmt.Errorf("no successful write in %d attempts", maxAttempts)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: %v", i, err)
		}
	}
	rec, err := s.GetFactors(ctx, user)
	if err != nil {
		t.Fatalf("GetFactors after the race: %v", err)
	}
	if rec.Version != concurrency {
		t.Errorf("after %d successful writes the version is %d, want %d", concurrency, rec.Version, concurrency)
	}
	seen := make([]int, concurrency)
	for _, b := range rec.Data {
		if int(b) < concurrency {
			seen[b]++
		}
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("racer %d's byte is in the final record %d times, want 1 (a lost or duplicated update)", i, n)
		}
	}
	if len(rec.Data) != concurrency {
		t.Errorf("final record has %d bytes, want %d", len(rec.Data), concurrency)
	}
}

// factorConcurrentPutAndDeleteOneWins races one delete against many writes, all
// expecting the same version: a delete and a write of the same version
// exclude each other.
func factorConcurrentPutAndDeleteOneWins(t *testing.T, s storage.FactorStore) {
	ctx := t.Context()
	factorMustPut(t, s, user, []byte("v1"), 0)
	const deleter = 0
	errs := race(ctx, func(ctx context.Context, i int) error {
		if i == deleter {
			return s.DeleteFactors(ctx, user, 1)
		}
		return s.PutFactors(ctx, user, racerData(i), 1)
	})
	switch w := oneWinner(t, errs); {
	case w == deleter:
		factorWantNotFound(t, s, user)
	case w > 0:
		factorWantRecord(t, s, user, 2, racerData(w))
	}
}

// factorConcurrentDeletesAllSucceed races deletes of one record, all expecting
// its version (two administrators deleting one account, or a deletion
// re-run while the first still runs): the record is gone and every call
// succeeds, since deleting an absent record is success. A store that
// checks the version and then deletes in two steps must not report the
// record a rival deleted meanwhile as a conflict.
func factorConcurrentDeletesAllSucceed(t *testing.T, s storage.FactorStore) {
	ctx := t.Context()
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, "bob", []byte("bob's factors"), 0)
	errs := race(ctx, func(ctx context.Context, i int) error { return s.DeleteFactors(ctx, user, 1) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: DeleteFactors(expect 1): %v, want nil", i, err)
		}
	}
	factorWantNotFound(t, s, user)
	factorWantRecord(t, s, "bob", 1, []byte("bob's factors"))
}

func factorDeleteWrongExpectConflicts(t *testing.T, s storage.FactorStore) {
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, user, []byte("v2"), 1)
	for _, expect := range []uint64{0, 1, 3, math.MaxInt64 + 1, math.MaxUint64} {
		wantConflict(t, s.DeleteFactors(t.Context(), user, expect), fmt.Sprintf("DeleteFactors(expect %d) of version 2", expect))
	}
	factorWantRecord(t, s, user, 2, []byte("v2"))
}

func factorDeleteAbsentIsNil(t *testing.T, s storage.FactorStore) {
	for _, expect := range []uint64{0, 1, math.MaxUint64} {
		if err := s.DeleteFactors(t.Context(), user, expect); err != nil {
			t.Errorf("DeleteFactors(expect %d) with no record: %v, want nil", expect, err)
		}
	}
	// Deleted twice: the second delete finds nothing, and succeeds.
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustDelete(t, s, user, 1)
	if err := s.DeleteFactors(t.Context(), user, 1); err != nil {
		t.Errorf("second DeleteFactors(expect 1): %v, want nil", err)
	}
	factorWantNotFound(t, s, user)
}

func factorDeleteThenGetIsErrNotFound(t *testing.T, s storage.FactorStore) {
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, user, []byte("v2"), 1)
	factorMustDelete(t, s, user, 2)
	factorWantNotFound(t, s, user)
}

func factorDeleteThenPutExpectZeroCreatesVersion1(t *testing.T, s storage.FactorStore) {
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, user, []byte("v2"), 1)
	factorMustDelete(t, s, user, 2)
	factorMustPut(t, s, user, []byte("reborn"), 0)
	factorWantRecord(t, s, user, 1, []byte("reborn"))
}

// factorDeletedRecordRefusesStaleExpect checks that a writer that read the record
// before it was deleted cannot bring it back.
func factorDeletedRecordRefusesStaleExpect(t *testing.T, s storage.FactorStore) {
	factorMustPut(t, s, user, []byte("v1"), 0)
	factorMustPut(t, s, user, []byte("v2"), 1)
	factorMustDelete(t, s, user, 2)
	for _, expect := range []uint64{1, 2, 3} {
		wantConflict(t, s.PutFactors(t.Context(), user, []byte("stale writer"), expect), fmt.Sprintf("PutFactors(expect %d) after the record was deleted", expect))
	}
	factorWantNotFound(t, s, user)
}

func factorPutDoesNotRetainData(t *testing.T, s storage.FactorStore) {
	data := []byte("sealed factors")
	factorMustPut(t, s, user, data, 0)
	clear(data)
	factorWantRecord(t, s, user, 1, []byte("sealed factors"))

	// The same on an update.
	data = []byte("second factors")
	factorMustPut(t, s, user, data, 1)
	copy(data, "XXXXXX")
	factorWantRecord(t, s, user, 2, []byte("second factors"))
}

func factorGetReturnsCallersOwnCopy(t *testing.T, s storage.FactorStore) {
	factorMustPut(t, s, user, []byte("sealed factors"), 0)
	first, err := s.GetFactors(t.Context(), user)
	if err != nil {
		t.Fatalf("GetFactors: %v", err)
	}
	clear(first.Data)
	factorWantRecord(t, s, user, 1, []byte("sealed factors"))

	// Two reads do not share memory either.
	a, errA := s.GetFactors(t.Context(), user)
	b, errB := s.GetFactors(t.Context(), user)
	if errA != nil || errB != nil {
		t.Fatalf("GetFactors: %v, %v", errA, errB)
	}
	clear(a.Data)
	if !sameBytes(b.Data, []byte("sealed factors")) {
		t.Errorf("changing the data of one GetFactors result changed another's: %s", diff(b.Data, []byte("sealed factors")))
	}
}

func factorUsersAreIsolated(t *testing.T, s storage.FactorStore) {
	// IDs that a careless schema would merge: case (a case-insensitive
	// collation), trailing space (a padded CHAR or a PAD SPACE collation),
	// a prefix, and the two Unicode normal forms of "é".
	users := []string{"alice", "Alice", "ALICE", "alice ", "alice2", "al", "\u00e9", "e\u0301"}
	for i, u := range users {
		factorMustPut(t, s, u, fmt.Appendf(nil, "factors of %q", u), 0)
		// Give each user another version, so that versions are checked to
		// be per user too.
		for v := range uint64(i) {
			factorMustPut(t, s, u, fmt.Appendf(nil, "factors of %q", u), v+1)
		}
	}
	for i, u := range users {
		factorWantRecord(t, s, u, uint64(i)+1, fmt.Appendf(nil, "factors of %q", u))
	}
	// A conflict and a delete on one user leave the others alone.
	wantConflict(t, s.PutFactors(t.Context(), "alice", []byte("x"), 0), `PutFactors("alice", expect 0) over version 1`)
	factorMustDelete(t, s, "alice", 1)
	factorWantNotFound(t, s, "alice")
	for i, u := range users[1:] {
		factorWantRecord(t, s, u, uint64(i)+2, fmt.Appendf(nil, "factors of %q", u))
	}
	factorWantNotFound(t, s, "bob")
}

func factorBinaryDataRoundTrips(t *testing.T, s storage.FactorStore) {
	data := everyByte()
	factorMustPut(t, s, user, data, 0)
	factorWantRecord(t, s, user, 1, data)

	// A record that starts with NUL and is not UTF-8.
	data = []byte{0x00, 0xff, 0xfe, 0x00, 0xc3, 0x28, 0x00}
	factorMustPut(t, s, user, data, 1)
	factorWantRecord(t, s, user, 2, data)
}

func factorLargestDataRoundTrips(t *testing.T, s storage.FactorStore) {
	data := pattern(1, storage.MaxFactorDataLen)
	factorMustPut(t, s, user, data, 0)
	factorWantRecord(t, s, user, 1, data)
	// Replace it with another record of the same size.
	data = pattern(2, storage.MaxFactorDataLen)
	factorMustPut(t, s, user, data, 1)
	factorWantRecord(t, s, user, 2, data)
}

func factorEmptyDataRoundTrips(t *testing.T, s storage.FactorStore) {
	factorMustPut(t, s, user, []byte{}, 0)
	factorWantRecord(t, s, user, 1, nil)
	factorMustPut(t, s, user, []byte("not empty"), 1)
	factorMustPut(t, s, user, nil, 2)
	factorWantRecord(t, s, user, 3, nil)
}

func factorLongestUserIDRoundTrips(t *testing.T, s storage.FactorStore) {
	id := longestUserID()
	other := id[:len(id)-1] + "b" // the same but for the last byte
	factorMustPut(t, s, id, []byte("long"), 0)
	factorMustPut(t, s, other, []byte("other"), 0)
	factorWantRecord(t, s, id, 1, []byte("long"))
	factorMustPut(t, s, id, []byte("longer"), 1)
	factorWantRecord(t, s, id, 2, []byte("longer"))
	factorMustDelete(t, s, id, 2)
	factorWantNotFound(t, s, id)
	factorWantRecord(t, s, other, 1, []byte("other"))
}

// longestUserID returns a valid UTF-8 user ID of exactly
// storage.MaxUserIDLen bytes, mostly of 2-, 3- and 4-byte characters (so
// that it is far fewer characters than bytes) and ending in "a".

// factorContextIsHonoured checks that every FactorStore method, called with a
// context that is already done, fails with want and changes nothing.
func factorContextIsHonoured(t *testing.T, s storage.FactorStore, done context.Context, want error) {
	t.Helper()
	// An absent record is not created.
	if err := s.PutFactors(done, "bob", []byte("must not be written"), 0); !errors.Is(err, want) {
		t.Errorf("PutFactors (create) with a done context: %v, want an error matching %v", err, want)
	}
	factorWantNotFound(t, s, "bob")

	factorMustPut(t, s, user, []byte("v1"), 0)
	if _, err := s.GetFactors(done, user); !errors.Is(err, want) {
		t.Errorf("GetFactors with a done context: %v, want an error matching %v", err, want)
	}
	// A present record is neither replaced nor deleted.
	if err := s.PutFactors(done, user, []byte("must not be written"), 1); !errors.Is(err, want) {
		t.Errorf("PutFactors (update) with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.DeleteFactors(done, user, 1); !errors.Is(err, want) {
		t.Errorf("DeleteFactors with a done context: %v, want an error matching %v", err, want)
	}
	factorWantRecord(t, s, user, 1, []byte("v1"))
}

func factorMustPut(t *testing.T, s storage.FactorStore, userID string, data []byte, expect uint64) {
	t.Helper()
	if err := s.PutFactors(t.Context(), userID, data, expect); err != nil {
		t.Fatalf("PutFactors(%s, %d bytes, expect %d): %v", shortID(userID), len(data), expect, err)
	}
}

func factorMustDelete(t *testing.T, s storage.FactorStore, userID string, expect uint64) {
	t.Helper()
	if err := s.DeleteFactors(t.Context(), userID, expect); err != nil {
		t.Fatalf("DeleteFactors(%s, expect %d): %v", shortID(userID), expect, err)
	}
}

// factorWantRecord checks that the user's record has this version and data.
func factorWantRecord(t *testing.T, s storage.FactorStore, userID string, version uint64, data []byte) {
	t.Helper()
	rec, err := s.GetFactors(t.Context(), userID)
	if err != nil {
		t.Fatalf("GetFactors(%s): %v, want version %d", shortID(userID), err, version)
	}
	if rec.UserID != userID {
		t.Errorf("GetFactors(%s) returned the record of user %s", shortID(userID), shortID(rec.UserID))
	}
	if rec.Version != version {
		t.Errorf("GetFactors(%s): version %d, want %d", shortID(userID), rec.Version, version)
	}
	if !sameBytes(rec.Data, data) {
		t.Errorf("GetFactors(%s): data differs from what was stored: %s", shortID(userID), diff(rec.Data, data))
	}
}

func factorWantNotFound(t *testing.T, s storage.FactorStore, userID string) {
	t.Helper()
	rec, err := s.GetFactors(t.Context(), userID)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetFactors(%s): version %d, error %v; want storage.ErrNotFound", shortID(userID), rec.Version, err)
	}
}

// factorOutOfBoundsIsInvalid checks that each method refuses a user ID
// that is empty or one byte over storage.MaxUserIDLen, and PutFactors data
// one byte over storage.MaxFactorDataLen, with an error wrapping
// storage.ErrInvalid (and neither ErrNotFound nor ErrConflict), and that
// nothing is stored or deleted: in particular not under the first
// storage.MaxUserIDLen bytes of the over-long ID, nor the first
// storage.MaxFactorDataLen bytes of the data.
func factorOutOfBoundsIsInvalid(t *testing.T, s storage.FactorStore) {
	ctx := t.Context()
	long := longestUserID() + "a"
	cut := long[:storage.MaxUserIDLen]
	factorMustPut(t, s, cut, []byte("kept"), 0)
	tooBig := pattern(3, storage.MaxFactorDataLen+1)
	for _, c := range []struct {
		call string
		err  func() error
	}{
		{"GetFactors(empty user ID)", func() error { _, err := s.GetFactors(ctx, ""); return err }},
		{"GetFactors(user ID over MaxUserIDLen)", func() error { _, err := s.GetFactors(ctx, long); return err }},
		{"PutFactors(empty user ID, expect 0)", func() error { return s.PutFactors(ctx, "", []byte("x"), 0) }},
		{"PutFactors(user ID over MaxUserIDLen, expect 0)", func() error { return s.PutFactors(ctx, long, []byte("x"), 0) }},
		{"PutFactors(user ID over MaxUserIDLen, expect 1)", func() error { return s.PutFactors(ctx, long, []byte("x"), 1) }},
		{"PutFactors(data over MaxFactorDataLen, expect 0)", func() error { return s.PutFactors(ctx, "bob", tooBig, 0) }},
		{"PutFactors(data over MaxFactorDataLen, expect 1)", func() error { return s.PutFactors(ctx, cut, tooBig, 1) }},
		{"DeleteFactors(empty user ID)", func() error { return s.DeleteFactors(ctx, "", 0) }},
		{"DeleteFactors(user ID over MaxUserIDLen)", func() error { return s.DeleteFactors(ctx, long, 1) }},
	} {
		err := c.err()
		if !errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("%s: %v, want an error wrapping storage.ErrInvalid (and neither ErrNotFound nor ErrConflict)", c.call, err)
		}
	}
	factorWantNotFound(t, s, "bob")
	factorWantRecord(t, s, cut, 1, []byte("kept"))
}
