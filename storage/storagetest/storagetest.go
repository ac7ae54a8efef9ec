// Package storagetest checks that an implementation of the interfaces in
// package storage keeps their contracts.
//
// For most use cases, call [Run] from a test in the adapter's package, with
// a function that returns a new, empty store:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return newTestStore(t) })
//	}
//
// An adapter that provides only some of the interfaces calls the matching
// functions instead: [RunVaultStore], [RunSessionStore], [RunRefreshStore],
// [RunRateStore], [RunLockoutStore], [RunFactorStore], [RunPasskeyStore],
// [RunChallengeStore], [RunBlobStore].
//
// Each clause of a contract is one subtest, named after the clause (for
// example VaultStore/PutStaleExpectConflicts), so a failure names the
// promise that was broken and go test -run selects a single clause. The
// subtests run in parallel and call newStore once each: every store it
// returns must be empty and isolated from the others (a fresh database,
// schema, key prefix or temporary file), and must release what it holds
// through t.Cleanup. An adapter that needs a server skips its test, saying
// which environment variable is unset, before it calls Run.
//
// Run the suite under the race detector (go test -race): several clauses
// race 50 goroutines against one record (or one rate-limiter or lockout
// key), and a data race in the adapter fails them even when the outcome
// happens to be right. Whether two of those goroutines interleave inside
// the adapter is up to the scheduler, so against an adapter that is not
// atomic these clauses are evidence, not proof: the package's own test
// shows that they catch such a store on every run by making its flawed
// stores wait between their read and their write until a rival has read.
//
// # Time
//
// Sessions and refresh families expire, and the store compares their
// Expires with its own clock, which for a database server is not the test
// process's. The suite sets Expires from the test's clock: records meant to
// live expire ten minutes or more ahead, records meant to be expired at
// once expired an hour ago, so a skew of a few minutes does not matter. One clause in
// each of SessionStore and RefreshStore (ExpiredSessionIsAbsent,
// ExpiredFamilyIsAbsent) stores records that expire 1.5 s ahead, checks
// that they are there, sleeps until 0.1 s past their expiry and checks that
// they are gone: for these two, the store's clock must agree with the
// test's to within 0.1 s, and the store must write and read back a record
// in well under 1.5 s. Stores may round Expires to the millisecond: Expires
// read back must be within 1 ms of what was put, whatever time zone it was
// given in (the suite uses zones east and west of UTC).
//
// Rate limiters and lockouts never read a clock: every request carries its
// Now, and the RateStore and LockoutStore clauses move it as they need
// (forward by milliseconds to years, back, from 1970 to 2200), never sleep,
// and check every result against storage.DecideRate and
// storage.DecideAttempt exactly. An adapter may forget a state once it has
// passed; one that does it with a TTL on its own clock must count the TTL
// from the request's Now (TAT − Now, Expires − Now), not set an expiry at
// the absolute TAT or Expires, which the store's clock may be years from.
// A state that a later request depends on has at least 10 s to live by the
// Now of the request that stored it, so such a TTL runs out early only if
// the adapter takes seconds to answer.
//
// # What the suite does not check
//
// It cannot crash the adapter mid-write, so the atomicity of a write
// against crashes and the durability of a committed write are the
// adapter's to show. Contexts are checked only when already done
// (cancelled, or past their deadline) before the call: whether a call
// blocked on a slow database returns when its context ends is the
// adapter's to show too. Adapters may refuse values beyond the bounds in
// package storage (storage.MaxUserIDLen, storage.MaxVaultDataLen,
// storage.MaxSessionDataLen, IDs of another length than
// storage.SessionIDLen) but are not required to, so refusals are not
// checked; values exactly at the bounds must work and are checked. Rate
// and lockout requests, factor records, passkey records, challenges and
// blobs are the exception: RateStore, LockoutStore, FactorStore,
// PasskeyStore, ChallengeStore and BlobStore must refuse keys, requests,
// user IDs, handles, credential IDs, challenge IDs, blob names, list
// limits, Expires and data out of their bounds with storage.ErrInvalid
// (and change nothing), and the suite checks one value past every bound.
//
// Expired sessions and families, passed rate-limiter TATs and expired
// lockout states are checked to be absent, not to be removed: whether the
// adapter ever reclaims the space they take (a database's expiry job,
// Redis's TTL), and what it does when its memory for rate-limiter or
// lockout state is full, is the adapter's to show. A user with
// storage.MaxSessionsPerUser sessions is not tried (it takes a thousand
// writes); the index by user is checked with about fifty sessions of one
// user at most, written one by one and all at once. DeleteUserSessions racing PutSession
// is checked for what the contract promises (sessions stored before it
// starts are gone, and every session that survives is both found by
// GetSession and listed), which a store whose index is not updated in the
// same atomic step as the session fails only when the race goes the wrong
// way: a pass there is evidence, not proof.
package storagetest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// concurrency is the number of goroutines that race in the concurrency
// clauses.
const concurrency = 50

// Run tests that a storage implementation satisfies every contract in
// package storage: one group of subtests per interface that [storage.Store]
// embeds (VaultStore, SessionStore, RefreshStore, RateStore,
// LockoutStore, FactorStore, in that order), one subtest per clause, and
// then the PasskeyStore, ChallengeStore and BlobStore groups, whose
// clauses skip if the stores from newStore do not implement
// [storage.PasskeyStore], [storage.ChallengeStore] or [storage.BlobStore]
// (which Store does not embed).
// newStore must return an empty, isolated store on every call; cleanup
// goes through t.Cleanup. The groups run one after the other, and SessionStore and
// RefreshStore each wait about 1.6 s for records to expire.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Run("VaultStore", func(t *testing.T) {
		RunVaultStore(t, func(t *testing.T) storage.VaultStore { return newStore(t) })
	})
	t.Run("SessionStore", func(t *testing.T) {
		RunSessionStore(t, func(t *testing.T) storage.SessionStore { return newStore(t) })
	})
	t.Run("RefreshStore", func(t *testing.T) {
		RunRefreshStore(t, func(t *testing.T) storage.RefreshStore { return newStore(t) })
	})
	t.Run("RateStore", func(t *testing.T) {
		RunRateStore(t, func(t *testing.T) storage.RateStore { return newStore(t) })
	})
	t.Run("LockoutStore", func(t *testing.T) {
		RunLockoutStore(t, func(t *testing.T) storage.LockoutStore { return newStore(t) })
	})
	t.Run("FactorStore", func(t *testing.T) {
		RunFactorStore(t, func(t *testing.T) storage.FactorStore { return newStore(t) })
	})
	t.Run("PasskeyStore", func(t *testing.T) {
		runPasskeysIfImplemented(t, newStore)
	})
	t.Run("ChallengeStore", func(t *testing.T) {
		runChallengesIfImplemented(t, newStore)
	})
	t.Run("BlobStore", func(t *testing.T) {
		runBlobsIfImplemented(t, newStore)
	})
}

// RunVaultStore tests that a [storage.VaultStore] keeps its contract, one
// subtest per clause. It is for adapters that provide only this interface;
// [Run] calls it too. newStore must return an empty, isolated store on
// every call; cleanup goes through t.Cleanup.
//
// Besides the plain clauses, the subtests try what SQL schemas get wrong:
// user IDs that a case-insensitive or space-padding collation would merge
// ("alice", "Alice", "alice "), expect values above math.MaxInt64 (a
// conflict, not an error, even with a signed version column), data with
// every byte value including NUL, a record of exactly
// storage.MaxVaultDataLen bytes, and a user ID of exactly
// storage.MaxUserIDLen bytes of multi-byte UTF-8 (far fewer characters than
// bytes).
func RunVaultStore(t *testing.T, newStore func(t *testing.T) storage.VaultStore) {
	runClauses(t, vaultClauses, func(t *testing.T) records { return vaultRecords(t, newStore(t)) })
}

// A clause is one promise of a contract, checked on a store of type S.
type clause[S any] struct {
	name  string
	check func(t *testing.T, s S)
}

// runClauses runs each clause as a parallel subtest named after it, on a
// store of its own from newStore.
func runClauses[S any](t *testing.T, clauses []clause[S], newStore func(t *testing.T) S) {
	for _, c := range clauses {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if any(s) == nil {
				t.Fatal("newStore returned nil")
			}
			c.check(t, s)
		})
	}
}

// A record is one user's versioned record: a [storage.VaultRecord] or a
// [storage.FactorRecord], which convert to it.
type record struct {
	UserID  string
	Version uint64
	Data    []byte
}

// records is a store of one versioned record per user seen through its
// three methods: a VaultStore or a FactorStore, whose contracts are the
// same but for the largest record, so that one set of clauses checks both.
type records struct {
	get    func(ctx context.Context, userID string) (record, error)
	put    func(ctx context.Context, userID string, data []byte, expect uint64) error
	delete func(ctx context.Context, userID string, expect uint64) error

	// getName, putName and deleteName name the methods in messages.
	getName, putName, deleteName string
	// noun names what a record holds in the data the clauses write
	// ("bob's vault").
	noun string
	// maxLen is the largest record, in bytes, and maxName its name in
	// package storage.
	maxLen  int
	maxName string
}

// vaultRecords is s as records; a nil s fails the test.
func vaultRecords(t *testing.T, s storage.VaultStore) records {
	t.Helper()
	if s == nil {
		t.Fatal("newStore returned nil")
	}
	return records{
		get: func(ctx context.Context, userID string) (record, error) {
			rec, err := s.GetVault(ctx, userID)
			return record(rec), err
		},
		put:     s.PutVault,
		delete:  s.DeleteVault,
		getName: "GetVault", putName: "PutVault", deleteName: "DeleteVault",
		noun:   "vault",
		maxLen: storage.MaxVaultDataLen, maxName: "MaxVaultDataLen",
	}
}

// vaultClauses are the VaultStore subtests, in the order of the contract.
var vaultClauses = recordClauses(nil, nil)

// recordClauses are the clauses of the contract of VaultStore, which
// FactorStore shares, in the order of the contract. races are more
// clauses on concurrent calls, run after the others on concurrency;
// bounds are more clauses on values at or past the bounds, run after the
// others on values at the bounds.
func recordClauses(races, bounds []clause[records]) []clause[records] {
	return slices.Concat([]clause[records]{
		// Get.
		{"GetAbsentIsErrNotFound", getAbsentIsErrNotFound},

		// Put: versions and compare-and-swap.
		{"FirstPutCreatesVersion1", firstPutCreatesVersion1},
		{"PutExpectZeroWhenPresentConflicts", putExpectZeroWhenPresentConflicts},
		{"PutStaleExpectConflicts", putStaleExpectConflicts},
		{"PutFutureExpectConflicts", putFutureExpectConflicts},
		{"PutNonZeroExpectWhenAbsentConflicts", putNonZeroExpectWhenAbsentConflicts},
		{"VersionGrowsByOne", versionGrowsByOne},

		// Put and Delete under concurrency.
		{"ConcurrentCreatesOneWins", concurrentCreatesOneWins},
		{"ConcurrentUpdatesOneWins", concurrentUpdatesOneWins},
		{"ConcurrentReadModifyWriteLosesNothing", concurrentReadModifyWriteLosesNothing},
		{"ConcurrentPutAndDeleteOneWins", concurrentPutAndDeleteOneWins},
		{"ConcurrentDeletesAllSucceed", concurrentDeletesAllSucceed},
	}, races, []clause[records]{
		// Delete.
		{"DeleteWrongExpectConflicts", deleteWrongExpectConflicts},
		{"DeleteAbsentIsNil", deleteAbsentIsNil},
		{"DeleteThenGetIsErrNotFound", deleteThenGetIsErrNotFound},
		{"DeleteThenPutExpectZeroCreatesVersion1", deleteThenPutExpectZeroCreatesVersion1},
		{"DeletedRecordRefusesStaleExpect", deletedRecordRefusesStaleExpect},

		// Byte slices are not retained, and returned ones are the caller's.
		{"PutDoesNotRetainData", putDoesNotRetainData},
		{"GetReturnsCallersOwnCopy", getReturnsCallersOwnCopy},

		// One record per user; opaque data; values at the bounds.
		{"UsersAreIsolated", usersAreIsolated},
		{"BinaryDataRoundTrips", binaryDataRoundTrips},
		{"LargestDataRoundTrips", largestDataRoundTrips},
		{"EmptyDataRoundTrips", emptyDataRoundTrips},
		{"LongestUserIDRoundTrips", longestUserIDRoundTrips},
	}, bounds, []clause[records]{
		// Every method honours its context.
		{"CanceledContextIsHonoured", canceledContextIsHonoured(contextIsHonoured)},
		{"ExpiredDeadlineIsHonoured", expiredDeadlineIsHonoured(contextIsHonoured)},
	})
}

const user = "alice"

func getAbsentIsErrNotFound(t *testing.T, s records) {
	wantNotFound(t, s, user)
	mustPut(t, s, "bob", []byte("bob's "+s.noun), 0)
	wantNotFound(t, s, user)
}

func firstPutCreatesVersion1(t *testing.T, s records) {
	data := []byte("first " + s.noun)
	mustPut(t, s, user, data, 0)
	wantRecord(t, s, user, 1, data)
}

func putExpectZeroWhenPresentConflicts(t *testing.T, s records) {
	mustPut(t, s, user, []byte("original"), 0)
	wantConflict(t, s.put(t.Context(), user, []byte("intruder"), 0), s.putName+"(expect 0) over version 1")
	wantRecord(t, s, user, 1, []byte("original"))
}

func putStaleExpectConflicts(t *testing.T, s records) {
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, user, []byte("v2"), 1)
	mustPut(t, s, user, []byte("v3"), 2)
	for _, expect := range []uint64{1, 2} {
		wantConflict(t, s.put(t.Context(), user, []byte("stale"), expect), fmt.Sprintf("%s(expect %d) over version 3", s.putName, expect))
	}
	wantRecord(t, s, user, 3, []byte("v3"))
}

func putFutureExpectConflicts(t *testing.T, s records) {
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, user, []byte("v2"), 1)
	// The largest values catch adapters that wrap expect+1, or whose
	// signed version column cannot hold the value (which is a conflict
	// too, not an infrastructure error).
	for _, expect := range []uint64{3, 4, 1000, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
		wantConflict(t, s.put(t.Context(), user, []byte("future"), expect), fmt.Sprintf("%s(expect %d) over version 2", s.putName, expect))
	}
	wantRecord(t, s, user, 2, []byte("v2"))
}

func putNonZeroExpectWhenAbsentConflicts(t *testing.T, s records) {
	for _, expect := range []uint64{1, 2, math.MaxUint64} {
		wantConflict(t, s.put(t.Context(), user, []byte("no such record"), expect), fmt.Sprintf("%s(expect %d) with no record", s.putName, expect))
		wantNotFound(t, s, user)
	}
}

func versionGrowsByOne(t *testing.T, s records) {
	for v := uint64(1); v <= 10; v++ {
		data := fmt.Appendf(nil, "version %d", v)
		mustPut(t, s, user, data, v-1)
		wantRecord(t, s, user, v, data)
	}
}

// oneWinner checks that exactly one of errs is nil and all the others are
// ErrConflict, and returns the winner's index (-1 if there is none).
func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner, winners := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
			winners++
		case errors.Is(err, storage.ErrConflict):
		default:
			t.Errorf("racer %d: got %v, want nil or storage.ErrConflict", i, err)
		}
	}
	if winners != 1 {
		t.Errorf("%d of %d concurrent calls with the same expect succeeded, want exactly 1", winners, len(errs))
	}
	return winner
}

func racerData(i int) []byte { return fmt.Appendf(nil, "written by racer %d", i) }

func concurrentCreatesOneWins(t *testing.T, s records) {
	ctx := t.Context()
	errs := race(ctx, func(ctx context.Context, i int) error { return s.put(ctx, user, racerData(i), 0) })
	if w := oneWinner(t, errs); w >= 0 {
		wantRecord(t, s, user, 1, racerData(w))
	}
}

func concurrentUpdatesOneWins(t *testing.T, s records) {
	ctx := t.Context()
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, user, []byte("v2"), 1)
	errs := race(ctx, func(ctx context.Context, i int) error { return s.put(ctx, user, racerData(i), 2) })
	if w := oneWinner(t, errs); w >= 0 {
		wantRecord(t, s, user, 3, racerData(w))
	}
}

// concurrentReadModifyWriteLosesNothing runs the loop every caller of
// put runs (read, change, write with the version read, retry on
// conflict): each racer appends its own byte, and none may be lost.
func concurrentReadModifyWriteLosesNothing(t *testing.T, s records) {
	ctx := t.Context()
	// Each attempt of a racer fails only if another racer succeeded since
	// its read, so concurrency attempts suffice; more means the store is
	// not linearizable.
	const maxAttempts = 10 * concurrency
	errs := race(ctx, func(ctx context.Context, i int) error {
		for range maxAttempts {
			rec, err := s.get(ctx, user)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("%s: %w", s.getName, err)
			}
			data := append(slices.Clip(rec.Data), byte(i))
			err = s.put(ctx, user, data, rec.Version)
			if err == nil {
				return nil
			}
			if !errors.Is(err, storage.ErrConflict) {
				return fmt.Errorf("%s(expect %d): %w", s.putName, rec.Version, err)
			}
		}
		return fmt.Errorf("no successful write in %d attempts", maxAttempts)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: %v", i, err)
		}
	}
	rec, err := s.get(ctx, user)
	if err != nil {
		t.Fatalf("%s after the race: %v", s.getName, err)
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

// concurrentPutAndDeleteOneWins races one delete against many writes, all
// expecting the same version: a delete and a write of the same version
// exclude each other.
func concurrentPutAndDeleteOneWins(t *testing.T, s records) {
	ctx := t.Context()
	mustPut(t, s, user, []byte("v1"), 0)
	const deleter = 0
	errs := race(ctx, func(ctx context.Context, i int) error {
		if i == deleter {
			return s.delete(ctx, user, 1)
		}
		return s.put(ctx, user, racerData(i), 1)
	})
	switch w := oneWinner(t, errs); {
	case w == deleter:
		wantNotFound(t, s, user)
	case w > 0:
		wantRecord(t, s, user, 2, racerData(w))
	}
}

// concurrentDeletesAllSucceed races deletes of one record, all expecting
// its version (two administrators deleting one account, or a deletion
// re-run while the first still runs): the record is gone and every call
// succeeds, since deleting an absent record is success. A store that
// checks the version and then deletes in two steps must not report the
// record a rival deleted meanwhile as a conflict.
func concurrentDeletesAllSucceed(t *testing.T, s records) {
	ctx := t.Context()
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, "bob", []byte("bob's "+s.noun), 0)
	errs := race(ctx, func(ctx context.Context, i int) error { return s.delete(ctx, user, 1) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: %s(expect 1): %v, want nil", i, s.deleteName, err)
		}
	}
	wantNotFound(t, s, user)
	wantRecord(t, s, "bob", 1, []byte("bob's "+s.noun))
}

func deleteWrongExpectConflicts(t *testing.T, s records) {
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, user, []byte("v2"), 1)
	for _, expect := range []uint64{0, 1, 3, math.MaxInt64 + 1, math.MaxUint64} {
		wantConflict(t, s.delete(t.Context(), user, expect), fmt.Sprintf("%s(expect %d) of version 2", s.deleteName, expect))
	}
	wantRecord(t, s, user, 2, []byte("v2"))
}

func deleteAbsentIsNil(t *testing.T, s records) {
	for _, expect := range []uint64{0, 1, math.MaxUint64} {
		if err := s.delete(t.Context(), user, expect); err != nil {
			t.Errorf("%s(expect %d) with no record: %v, want nil", s.deleteName, expect, err)
		}
	}
	// Deleted twice: the second delete finds nothing, and succeeds.
	mustPut(t, s, user, []byte("v1"), 0)
	mustDelete(t, s, user, 1)
	if err := s.delete(t.Context(), user, 1); err != nil {
		t.Errorf("second %s(expect 1): %v, want nil", s.deleteName, err)
	}
	wantNotFound(t, s, user)
}

func deleteThenGetIsErrNotFound(t *testing.T, s records) {
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, user, []byte("v2"), 1)
	mustDelete(t, s, user, 2)
	wantNotFound(t, s, user)
}

func deleteThenPutExpectZeroCreatesVersion1(t *testing.T, s records) {
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, user, []byte("v2"), 1)
	mustDelete(t, s, user, 2)
	mustPut(t, s, user, []byte("reborn"), 0)
	wantRecord(t, s, user, 1, []byte("reborn"))
}

// deletedRecordRefusesStaleExpect checks that a writer that read the record
// before it was deleted cannot bring it back.
func deletedRecordRefusesStaleExpect(t *testing.T, s records) {
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, user, []byte("v2"), 1)
	mustDelete(t, s, user, 2)
	for _, expect := range []uint64{1, 2, 3} {
		wantConflict(t, s.put(t.Context(), user, []byte("stale writer"), expect), fmt.Sprintf("%s(expect %d) after the record was deleted", s.putName, expect))
	}
	wantNotFound(t, s, user)
}

func putDoesNotRetainData(t *testing.T, s records) {
	data := []byte("sealed " + s.noun)
	mustPut(t, s, user, data, 0)
	clear(data)
	wantRecord(t, s, user, 1, []byte("sealed "+s.noun))

	// The same on an update.
	data = []byte("second " + s.noun)
	mustPut(t, s, user, data, 1)
	copy(data, "XXXXXX")
	wantRecord(t, s, user, 2, []byte("second "+s.noun))
}

func getReturnsCallersOwnCopy(t *testing.T, s records) {
	mustPut(t, s, user, []byte("sealed "+s.noun), 0)
	first, err := s.get(t.Context(), user)
	if err != nil {
		t.Fatalf("%s: %v", s.getName, err)
	}
	clear(first.Data)
	wantRecord(t, s, user, 1, []byte("sealed "+s.noun))

	// Two reads do not share memory either.
	a, errA := s.get(t.Context(), user)
	b, errB := s.get(t.Context(), user)
	if errA != nil || errB != nil {
		t.Fatalf("%s: %v, %v", s.getName, errA, errB)
	}
	clear(a.Data)
	if !sameBytes(b.Data, []byte("sealed "+s.noun)) {
		t.Errorf("changing the data of one %s result changed another's: %s", s.getName, diff(b.Data, []byte("sealed "+s.noun)))
	}
}

func usersAreIsolated(t *testing.T, s records) {
	// IDs that a careless schema would merge: case (a case-insensitive
	// collation), trailing space (a padded CHAR or a PAD SPACE collation),
	// a prefix, and the two Unicode normal forms of "é".
	users := []string{"alice", "Alice", "ALICE", "alice ", "alice2", "al", "\u00e9", "e\u0301"}
	for i, u := range users {
		mustPut(t, s, u, fmt.Appendf(nil, "%s of %q", s.noun, u), 0)
		// Give each user another version, so that versions are checked to
		// be per user too.
		for v := range uint64(i) {
			mustPut(t, s, u, fmt.Appendf(nil, "%s of %q", s.noun, u), v+1)
		}
	}
	for i, u := range users {
		wantRecord(t, s, u, uint64(i)+1, fmt.Appendf(nil, "%s of %q", s.noun, u))
	}
	// A conflict and a delete on one user leave the others alone.
	wantConflict(t, s.put(t.Context(), "alice", []byte("x"), 0), s.putName+`("alice", expect 0) over version 1`)
	mustDelete(t, s, "alice", 1)
	wantNotFound(t, s, "alice")
	for i, u := range users[1:] {
		wantRecord(t, s, u, uint64(i)+2, fmt.Appendf(nil, "%s of %q", s.noun, u))
	}
	wantNotFound(t, s, "bob")
}

func binaryDataRoundTrips(t *testing.T, s records) {
	data := everyByte()
	mustPut(t, s, user, data, 0)
	wantRecord(t, s, user, 1, data)

	// A record that starts with NUL and is not UTF-8.
	data = []byte{0x00, 0xff, 0xfe, 0x00, 0xc3, 0x28, 0x00}
	mustPut(t, s, user, data, 1)
	wantRecord(t, s, user, 2, data)
}

func largestDataRoundTrips(t *testing.T, s records) {
	data := pattern(1, s.maxLen)
	mustPut(t, s, user, data, 0)
	wantRecord(t, s, user, 1, data)
	// Replace it with another record of the same size.
	data = pattern(2, s.maxLen)
	mustPut(t, s, user, data, 1)
	wantRecord(t, s, user, 2, data)
}

func emptyDataRoundTrips(t *testing.T, s records) {
	mustPut(t, s, user, []byte{}, 0)
	wantRecord(t, s, user, 1, nil)
	mustPut(t, s, user, []byte("not empty"), 1)
	mustPut(t, s, user, nil, 2)
	wantRecord(t, s, user, 3, nil)
}

func longestUserIDRoundTrips(t *testing.T, s records) {
	id := longestUserID()
	other := id[:len(id)-1] + "b" // the same but for the last byte
	mustPut(t, s, id, []byte("long"), 0)
	mustPut(t, s, other, []byte("other"), 0)
	wantRecord(t, s, id, 1, []byte("long"))
	mustPut(t, s, id, []byte("longer"), 1)
	wantRecord(t, s, id, 2, []byte("longer"))
	mustDelete(t, s, id, 2)
	wantNotFound(t, s, id)
	wantRecord(t, s, other, 1, []byte("other"))
}

// longestUserID returns a valid UTF-8 user ID of exactly
// storage.MaxUserIDLen bytes, mostly of 2-, 3- and 4-byte characters (so
// that it is far fewer characters than bytes) and ending in "a".
func longestUserID() string {
	var b strings.Builder
	for b.Len()+9 <= storage.MaxUserIDLen-1 {
		b.WriteString("é€😀") // 2 + 3 + 4 bytes
	}
	for b.Len() < storage.MaxUserIDLen-1 {
		b.WriteString("z")
	}
	b.WriteString("a")
	return b.String()
}

// canceledContextIsHonoured returns the clause that runs honoured with a
// context cancelled before the calls.
func canceledContextIsHonoured[S any](honoured func(t *testing.T, s S, done context.Context, want error)) func(t *testing.T, s S) {
	return func(t *testing.T, s S) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		honoured(t, s, ctx, context.Canceled)
	}
}

// expiredDeadlineIsHonoured returns the clause that runs honoured with a
// context whose deadline passed before the calls.
func expiredDeadlineIsHonoured[S any](honoured func(t *testing.T, s S, done context.Context, want error)) func(t *testing.T, s S) {
	return func(t *testing.T, s S) {
		ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel()
		honoured(t, s, ctx, context.DeadlineExceeded)
	}
}

// contextIsHonoured checks that every method of s, called with a
// context that is already done, fails with want and changes nothing.
func contextIsHonoured(t *testing.T, s records, done context.Context, want error) {
	t.Helper()
	// An absent record is not created.
	if err := s.put(done, "bob", []byte("must not be written"), 0); !errors.Is(err, want) {
		t.Errorf("%s (create) with a done context: %v, want an error matching %v", s.putName, err, want)
	}
	wantNotFound(t, s, "bob")

	mustPut(t, s, user, []byte("v1"), 0)
	if _, err := s.get(done, user); !errors.Is(err, want) {
		t.Errorf("%s with a done context: %v, want an error matching %v", s.getName, err, want)
	}
	// A present record is neither replaced nor deleted.
	if err := s.put(done, user, []byte("must not be written"), 1); !errors.Is(err, want) {
		t.Errorf("%s (update) with a done context: %v, want an error matching %v", s.putName, err, want)
	}
	if err := s.delete(done, user, 1); !errors.Is(err, want) {
		t.Errorf("%s with a done context: %v, want an error matching %v", s.deleteName, err, want)
	}
	wantRecord(t, s, user, 1, []byte("v1"))
}

// everyByte returns every byte value, up then down (512 bytes).
func everyByte() []byte {
	data := make([]byte, 0, 512)
	for b := range 256 {
		data = append(data, byte(b))
	}
	for b := 255; b >= 0; b-- {
		data = append(data, byte(b))
	}
	return data
}

// binaryIDs returns distinct IDs of storage.SessionIDLen bytes that a store
// keeping IDs as text would mangle or merge: the first is all NUL; then
// IDs that together hold every byte value; one that differs from the
// first only after its NULs; ASCII letters in either case (a
// case-insensitive collation); trailing spaces, a tab and a NUL after the
// same letters (trimming, or a PAD SPACE collation); not UTF-8.
func binaryIDs() [][]byte {
	const n = storage.SessionIDLen
	filled := func(b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	ids := [][]byte{make([]byte, n)}
	for start := 0; start < 256; start += n {
		id := make([]byte, n)
		for i := range id {
			id[i] = byte(start + i)
		}
		ids = append(ids, id)
	}
	lastOne := make([]byte, n)
	lastOne[n-1] = 1
	lower, upper := filled('a'), filled('A')
	space := append(filled('a')[:n-2], ' ', ' ')
	tab := append(filled('a')[:n-1], '\t')
	nul := append(filled('a')[:n-1], 0)
	invalid := filled(0xff)
	invalid[0], invalid[1] = 0xc3, 0x28
	return append(ids, lastOne, lower, upper, space, tab, nul, invalid)
}

// Expiry clauses set Expires expiryLead ahead, check that the record is
// there, and wait until expiryMargin past it: the lead leaves a slow store
// time to write and read the record back, the margin is room for a store
// that rounds Expires up to the millisecond and for a database clock a
// little behind the test's.
const (
	expiryLead   = 1500 * time.Millisecond
	expiryMargin = 100 * time.Millisecond
)

// expiryTolerance is how far a stored Expires may be from the one put:
// stores may round it to the millisecond.
const expiryTolerance = time.Millisecond

// sameExpiry reports whether got is want, to within expiryTolerance.
func sameExpiry(got, want time.Time) bool {
	d := got.Sub(want)
	return -expiryTolerance <= d && d <= expiryTolerance
}

// east and west are time zones for Expires: a store that keeps a wall-clock
// time without its offset reads them back hours off, and expires them
// hours early or late.
var (
	east = time.FixedZone("UTC+05:30", 5*60*60+30*60)
	west = time.FixedZone("UTC-07:00", -7*60*60)
)

// testExpiries returns unexpired Expires values in several zones, and some
// far ahead: 400 days is more milliseconds than an int32 holds.
func testExpiries() []time.Time {
	now := time.Now()
	return []time.Time{
		now.Add(time.Hour).UTC(),
		now.Add(2 * time.Hour).In(east),
		now.Add(3 * time.Hour).In(west),
		now.Add(400 * 24 * time.Hour),
	}
}

// waitUntilPast sleeps until expiryMargin past when.
func waitUntilPast(t *testing.T, when time.Time) {
	t.Helper()
	timer := time.NewTimer(time.Until(when.Add(expiryMargin)))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.Context().Done():
		t.Fatal("the test ended while waiting for a record to expire")
	}
}

// pattern returns n bytes that do not repeat with any short period, so that
// a dropped, duplicated or reordered chunk is caught.
func pattern(seed uint64, n int) []byte {
	b := make([]byte, n)
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 56)
	}
	return b
}

func mustPut(t *testing.T, s records, userID string, data []byte, expect uint64) {
	t.Helper()
	if err := s.put(t.Context(), userID, data, expect); err != nil {
		t.Fatalf("%s(%s, %d bytes, expect %d): %v", s.putName, shortID(userID), len(data), expect, err)
	}
}

func mustDelete(t *testing.T, s records, userID string, expect uint64) {
	t.Helper()
	if err := s.delete(t.Context(), userID, expect); err != nil {
		t.Fatalf("%s(%s, expect %d): %v", s.deleteName, shortID(userID), expect, err)
	}
}

// wantRecord checks that the user's record has this version and data.
func wantRecord(t *testing.T, s records, userID string, version uint64, data []byte) {
	t.Helper()
	rec, err := s.get(t.Context(), userID)
	if err != nil {
		t.Fatalf("%s(%s): %v, want version %d", s.getName, shortID(userID), err, version)
	}
	if rec.UserID != userID {
		t.Errorf("%s(%s) returned the record of user %s", s.getName, shortID(userID), shortID(rec.UserID))
	}
	if rec.Version != version {
		t.Errorf("%s(%s): version %d, want %d", s.getName, shortID(userID), rec.Version, version)
	}
	if !sameBytes(rec.Data, data) {
		t.Errorf("%s(%s): data differs from what was stored: %s", s.getName, shortID(userID), diff(rec.Data, data))
	}
}

func wantNotFound(t *testing.T, s records, userID string) {
	t.Helper()
	rec, err := s.get(t.Context(), userID)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("%s(%s): version %d, error %v; want storage.ErrNotFound", s.getName, shortID(userID), rec.Version, err)
	}
}

func wantConflict(t *testing.T, err error, call string) {
	t.Helper()
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("%s: %v, want storage.ErrConflict", call, err)
	}
}

// sameBytes reports whether a and b hold the same bytes. It goes through
// crypto/subtle only because library files may not use bytes.Equal (the
// repository's hygiene test); nothing here is secret.
func sameBytes(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// diff describes how got differs from want without printing a megabyte.
func diff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("%d bytes, want %d; first difference at byte %d: %#02x, want %#02x", len(got), len(want), i, got[i], want[i])
		}
	}
	return fmt.Sprintf("%d bytes, want %d", len(got), len(want))
}

// shortHex shows an ID by its first and last 4 bytes, in hex.
func shortHex(id []byte) string {
	if len(id) <= 8 {
		return fmt.Sprintf("%x", id)
	}
	return fmt.Sprintf("%x…%x", id[:4], id[len(id)-4:])
}

// shortID quotes a user ID for a message, cut if it is long.
func shortID(id string) string {
	if len(id) > 24 {
		return fmt.Sprintf("%q… (%d bytes)", id[:24], len(id))
	}
	return fmt.Sprintf("%q", id)
}
