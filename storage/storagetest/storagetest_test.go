package storagetest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/storagetest"
)

// The suite must fail stores that break the contract. Each case below runs
// the suite, in a child process (a failing suite fails its test, which no
// test can recover from in-process), against a store with one flaw, and
// checks that the clauses that flaw breaks are reported as failed; the
// child runs only those clauses, so that a flaw does not wait for the
// expiry clauses of the other groups. The flawless case runs every clause,
// and checks that the flawed store is otherwise correct and that every
// clause passes.
//
// A flaw that shows only when calls interleave (the *-not-atomic ones and
// session-index-lost-update) is forced, not left to the scheduler: the
// racing calls of the suite's concurrency clauses carry their race in
// their context, and the flawed store waits between its read and its
// write until a rival racer has read too (betweenReadAndWrite), or until
// a racing DeleteUserSessions has run (session-index-not-atomic), so
// those cases fail their clauses on every run, on a loaded machine too.
// A clause that catches a flaw only sometimes, whatever the store does,
// is not listed for it.
var flaws = []struct {
	flaw     string
	wantFail []string // clauses (subtest names under TestFlawedStoreChild/) that must fail
}{
	{"", nil},
	{"get-absent-is-empty-record", vault("GetAbsentIsErrNotFound", "DeleteThenGetIsErrNotFound")},
	{"first-version-0", vault("FirstPutCreatesVersion1", "VersionGrowsByOne", "PutExpectZeroWhenPresentConflicts")},
	{"put-ignores-expect", vault(
		"PutExpectZeroWhenPresentConflicts", "PutStaleExpectConflicts", "PutFutureExpectConflicts",
		"ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins", "DeletedRecordRefusesStaleExpect",
	)},
	{"put-creates-with-any-expect", vault("PutNonZeroExpectWhenAbsentConflicts", "DeletedRecordRefusesStaleExpect")},
	{"expect-high-bit-is-error", vault("PutFutureExpectConflicts", "PutNonZeroExpectWhenAbsentConflicts", "DeleteWrongExpectConflicts", "DeleteAbsentIsNil")},
	{"version-steps-by-2", vault("VersionGrowsByOne", "PutStaleExpectConflicts")},
	{"conflict-not-wrapped", vault("PutExpectZeroWhenPresentConflicts", "ConcurrentCreatesOneWins", "DeleteWrongExpectConflicts")},
	// ConcurrentPutAndDeleteOneWins fails this store too, but not every
	// time (not when the delete runs before every write's check).
	{"cas-not-atomic", vault("ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins", "ConcurrentReadModifyWriteLosesNothing")},
	{"delete-ignores-expect", vault("DeleteWrongExpectConflicts")},
	// Forced: the writers wait until the delete has checked the version,
	// and the delete until a writer has written over it (STO-06).
	{"delete-not-atomic", vault("ConcurrentPutAndDeleteOneWins")},
	// Forced: two deletes check the version before either deletes, and
	// the second reports the record the first deleted as a conflict.
	{"delete-race-is-conflict", vault("ConcurrentDeletesAllSucceed")},
	{"delete-absent-is-not-found", vault("DeleteAbsentIsNil")},
	// Reports success and keeps the record (STO-06: an account's keys
	// would survive its deletion).
	{"delete-leaves-data", vault(
		"DeleteAbsentIsNil", "DeleteThenGetIsErrNotFound", "DeleteThenPutExpectZeroCreatesVersion1", "DeletedRecordRefusesStaleExpect",
		"ConcurrentDeletesAllSucceed", "UsersAreIsolated",
	)},
	{"delete-keeps-version", vault("DeleteThenPutExpectZeroCreatesVersion1", "DeletedRecordRefusesStaleExpect")},
	{"retains-input", vault("PutDoesNotRetainData")},
	{"returns-internal", vault("GetReturnsCallersOwnCopy")},
	{"case-insensitive-ids", vault("UsersAreIsolated")},
	{"trims-ids", vault("UsersAreIsolated")},
	{"truncates-at-nul", vault("BinaryDataRoundTrips")},
	{"caps-data-at-64k", vault("LargestDataRoundTrips")},
	{"empty-data-deletes", vault("EmptyDataRoundTrips")},
	{"caps-user-id-at-100", vault("LongestUserIDRoundTrips")},
	{"ignores-context", vault("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},
	{"checks-context-after-write", vault("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},
	{"context-error-not-wrapped", vault("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},

	// SessionStore.
	{"session-get-ignores-expiry", sessions("ExpiredSessionIsAbsent")},
	{"session-list-includes-expired", sessions("ExpiredSessionIsAbsent")},
	{"session-put-expired-keeps-old", sessions("PutExpiredStoresNothing")},
	{"session-put-allows-user-change", sessions("PutWithAnotherUserIsInvalid")},
	{"session-user-change-keeps-old-index", sessions("ExpiredSessionIsAbsent")},
	{"session-list-includes-other-users", sessions("ListReturnsOnlyTheUsersSessions")},
	{"session-list-none-is-not-found", sessions("ListOfNoneIsEmpty", "ListReturnsOnlyTheUsersSessions", "DeleteThenGetIsErrNotFound")},
	{"session-delete-user-misses-index", sessions("DeleteUserSessionsRemovesOnlyTheUsers", "ConcurrentPutAndDeleteUserKeepIndexConsistent")},
	{"session-index-lost-update", sessions("ConcurrentPutsAreAllListed")},
	// Caught when DeleteUserSessions runs between a put's two steps, which
	// the flawed store forces (see PutSession).
	{"session-index-not-atomic", sessions("ConcurrentPutAndDeleteUserKeepIndexConsistent")},
	{"session-ids-truncated-at-nul", sessions("BinaryIDsRoundTrip")},
	{"session-expires-in-seconds", sessions("PutThenGetRoundTrips")},
	{"session-expires-wall-clock-utc", sessions("PutThenGetRoundTrips", "ExpiredSessionIsAbsent")},
	{"session-retains-input", sessions("PutDoesNotRetainIDOrData")},
	{"session-returns-internal", sessions("GetReturnsCallersOwnCopy", "ListReturnsCallersOwnCopy")},
	{"session-ignores-context", sessions("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},
	// PutSession's compare-and-swap (issue 10, item 1: a touch that
	// wrote back a session read before a logout, revoke or lock undid it).
	{"session-put-is-upsert", sessions(
		"PutExpectZeroWhenPresentConflicts", "PutStaleOrFutureExpectConflicts", "PutNonZeroExpectWhenAbsentConflicts",
		"PutIgnoresVersionField", "StalePutAfterDeleteConflicts", "StalePutAfterDeleteUserSessionsConflicts",
		"StaleTouchAfterLockConflicts", "ExpiredPutWithStaleExpectConflicts", "ExpiredSessionIsAbsent", "PutExpiredStoresNothing",
		"ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins",
	)},
	{"session-put-absent-ignores-expect", sessions(
		"PutNonZeroExpectWhenAbsentConflicts", "StalePutAfterDeleteConflicts", "StalePutAfterDeleteUserSessionsConflicts",
		"ExpiredSessionIsAbsent",
	)},
	// ConcurrentDeleteAndStalePutLeaveNothing fails the two stores above
	// whenever the delete runs before a put, which is likely but not
	// certain: the forced interleavings (StalePutAfter…) are what must
	// catch them.
	{"session-cas-not-atomic", sessions("ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins")},
	{"session-version-not-bumped", sessions(
		"PutVersionsCountFromOne", "PutIgnoresVersionField", "StaleTouchAfterLockConflicts", "ExpiredPutWithStaleExpectConflicts",
		"ConcurrentUpdatesOneWins",
	)},
	{"session-expired-keeps-version", sessions("ExpiredSessionIsAbsent")},

	// RefreshStore.
	{"refresh-put-ignores-expect", refresh(
		"PutExpectZeroWhenPresentConflicts", "PutStaleExpectConflicts", "PutFutureExpectConflicts",
		"PutNonZeroExpectWhenAbsentConflicts", "ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins",
		"DeletedFamilyRefusesStaleExpect", "ExpiredFamilyIsAbsent",
	)},
	// ConcurrentPutAndDeleteLeavesNothing fails this store too, but not
	// every time.
	{"refresh-cas-not-atomic", refresh("ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins")},
	{"refresh-trusts-version-field", refresh("PutIgnoresVersionField")},
	{"refresh-put-allows-user-change", refresh("PutWithAnotherUserIsInvalid")},
	{"refresh-expired-keeps-version", refresh("ExpiredFamilyIsAbsent")},
	{"refresh-delete-keeps-version", refresh("DeleteThenPutExpectZeroCreatesVersion1", "DeletedFamilyRefusesStaleExpect")},
	{"refresh-delete-user-case-insensitive", refresh("DeleteUserRefreshFamiliesRemovesOnlyTheUsers")},
	{"refresh-returns-internal", refresh("GetReturnsCallersOwnCopy")},
	{"refresh-ignores-context", refresh("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},

	// RateStore. A flaw in the precision of times is listed only with the
	// clauses that catch it whatever the test's clock reads.
	{"rate-take-not-atomic", rate("ConcurrentTakesAllowBurst", "ConcurrentCostlyTakesAllowBurst")},
	{"rate-refusal-stores", rate("TakeMatchesDecideRate", "RefusalChangesNothing")},
	{"rate-ignores-cost", rate("FreshKeyAllowsBurst", "TakeMatchesDecideRate", "ConcurrentCostlyTakesAllowBurst")},
	{"rate-burst-off-by-one", rate("FreshKeyAllowsBurst", "TakeMatchesDecideRate", "ConcurrentTakesAllowBurst")},
	{"rate-past-tat-is-current", rate("TakeMatchesDecideRate", "PassedTATIsAbsent")},
	{"rate-keeps-first-parameters", rate("OnlyTATIsStored")},
	{"rate-in-milliseconds", rate("MicrosecondPrecision")},
	{"rate-rounds-now", rate("MicrosecondPrecision")},
	{"rate-own-clock", rate("TimesFrom1970To2200")},
	{"rate-reset-does-nothing", rate("ResetFillsBucket")},
	{"rate-reset-absent-is-not-found", rate("ResetAbsentIsNil")},
	{"rate-keys-truncated-to-16", rate("KeysAreIndependent", "BinaryKeysAreDistinct")},
	{"rate-keys-truncated-at-nul", rate("BinaryKeysAreDistinct")},
	{"rate-retains-key", rate("KeyIsNotRetained")},
	{"rate-accepts-bad-key-length", rate("OutOfBoundsIsInvalid")},
	{"rate-window-product-overflows", rate("OutOfBoundsIsInvalid")},
	{"rate-validates-after-write", rate("OutOfBoundsIsInvalid")},
	{"rate-invalid-not-wrapped", rate("OutOfBoundsIsInvalid")},
	{"rate-invalid-error-shows-key", rate("OutOfBoundsIsInvalid")},
	{"rate-refuses-largest-burst", rate("MicrosecondPrecision", "TimesFrom1970To2200", "BoundsAreAccepted")},
	{"rate-ignores-context", rate("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},

	// LockoutStore.
	{"lockout-not-atomic", lockout("ConcurrentAttemptsAdmitMaxFailures")},
	{"lockout-locks-one-late", lockout("FreshKeyAdmitsMaxFailures", "AttemptMatchesDecideAttempt", "ConcurrentAttemptsAdmitMaxFailures")},
	{"lockout-refusal-counts", lockout("AttemptMatchesDecideAttempt", "RefusalChangesNothing")},
	{"lockout-ends-1ms-late", lockout("AttemptMatchesDecideAttempt", "LockEndsAtLockedUntil")},
	{"lockout-never-grows", lockout("AttemptMatchesDecideAttempt", "LocksGrowUpToMaxLockFor")},
	{"lockout-growth-overflows", lockout("LocksGrowUpToMaxLockFor")},
	{"lockout-truncates-before-doubling", lockout("MillisecondPrecision")},
	{"lockout-ignores-forget-after", lockout("AttemptMatchesDecideAttempt", "ExpiredStateIsAbsent")},
	{"lockout-expires-ignores-lock", lockout("AttemptMatchesDecideAttempt", "ExpiredStateIsAbsent")},
	{"lockout-keeps-first-parameters", lockout("OnlyStateIsStored")},
	{"lockout-seconds-precision", lockout("MillisecondPrecision")},
	{"lockout-nanosecond-precision", lockout("MillisecondPrecision")},
	{"lockout-own-clock", lockout("TimesFrom1970To2200")},
	{"lockout-reset-keeps-locks", lockout("ResetClearsState")},
	{"lockout-reset-absent-is-not-found", lockout("ResetAbsentIsNil")},
	{"lockout-keys-truncated-to-16", lockout("KeysAreIndependent", "BinaryKeysAreDistinct")},
	{"lockout-retains-key", lockout("KeyIsNotRetained")},
	{"lockout-accepts-bad-key-length", lockout("OutOfBoundsIsInvalid")},
	{"lockout-validates-after-write", lockout("OutOfBoundsIsInvalid")},
	{"lockout-durations-in-int32-ms", lockout("LocksGrowUpToMaxLockFor", "TimesFrom1970To2200", "BoundsAreAccepted")},
	{"lockout-ignores-context", lockout("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},
	{"lockout-refund-not-atomic", lockout("ConcurrentRefundsAreExact")},
	{"lockout-refund-ignores-lock", lockout("RefundUndoesRunningLock", "RefundLeavesOtherCountsAlone")},
	{"lockout-refund-keeps-lock", lockout("RefundUndoesRunningLock")},
	{"lockout-refund-any-lock-number", lockout("RefundOutOfBoundsIsInvalid")},
}

// vault, sessions, refresh, rate and lockout name clauses of the
// VaultStore, SessionStore, RefreshStore, RateStore and LockoutStore
// groups.
func vault(clauses ...string) []string    { return inGroup("VaultStore", clauses) }
func sessions(clauses ...string) []string { return inGroup("SessionStore", clauses) }
func refresh(clauses ...string) []string  { return inGroup("RefreshStore", clauses) }
func rate(clauses ...string) []string     { return inGroup("RateStore", clauses) }
func lockout(clauses ...string) []string  { return inGroup("LockoutStore", clauses) }

// (factors, for the FactorStore group, is in factor_test.go; passkeys,
// for the PasskeyStore group, in passkey_test.go; challenges, for the
// ChallengeStore group, in challenge_test.go; blobs, for the BlobStore
// group, in blob_test.go.)

func inGroup(group string, clauses []string) []string {
	names := make([]string, len(clauses))
	for i, c := range clauses {
		names[i] = group + "/" + c
	}
	return names
}

// groups are the subtests of Run, one per interface.
var groups = []string{"VaultStore", "SessionStore", "RefreshStore", "RateStore", "LockoutStore", "FactorStore", "PasskeyStore", "ChallengeStore", "BlobStore"}

const flawEnv = "STORAGETEST_FLAW"

// resultLine matches the verdict that go test -v prints for a clause, and
// captures it and the clause's group/name.
var resultLine = regexp.MustCompile(`(?m)^\s*--- (PASS|FAIL|SKIP): TestFlawedStoreChild/((?:VaultStore|SessionStore|RefreshStore|RateStore|LockoutStore|FactorStore|PasskeyStore|ChallengeStore|BlobStore)/\S+)`)

// childRun returns the -test.run pattern for a child: every clause for the
// flawless store; for a flawed one, the clauses it must fail (and any of
// the same name in the same groups), so that a flaw in one group does not
// wait for another group's expiry clauses.
func childRun(wantFail []string) string {
	if len(wantFail) == 0 {
		return "^TestFlawedStoreChild$"
	}
	var gs, cs []string
	for _, name := range wantFail {
		g, c, _ := strings.Cut(name, "/")
		if !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
		cs = append(cs, regexp.QuoteMeta(c))
	}
	return "^TestFlawedStoreChild$/^(" + strings.Join(gs, "|") + ")$/^(" + strings.Join(cs, "|") + ")$"
}

func TestSuiteFailsFlawedStores(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flaws {
		name := f.flaw
		if name == "" {
			name = "flawless"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), exe, "-test.run="+childRun(f.wantFail), "-test.v", "-test.count=1", "-test.timeout=5m")
			cmd.Env = append(os.Environ(), flawEnv+"="+name)
			out, err := cmd.CombinedOutput()
			verdicts := map[string]string{}
			for _, m := range resultLine.FindAllStringSubmatch(string(out), -1) {
				verdicts[m[2]] = m[1]
			}
			if len(verdicts) == 0 {
				t.Fatalf("the child printed no verdict (%v):\n%s", err, out)
			}
			if f.flaw == "" {
				if err != nil {
					t.Errorf("the suite fails the flawless store (%v):\n%s", err, out)
				}
				for c, v := range verdicts {
					if v != "PASS" {
						t.Errorf("clause %s: %s, want PASS", c, v)
					}
				}
				for _, g := range groups {
					if !slices.ContainsFunc(slices.Collect(maps.Keys(verdicts)), func(c string) bool { return strings.HasPrefix(c, g+"/") }) {
						t.Errorf("the child printed no verdict for a clause of %s", g)
					}
				}
				// A typo in the table would make a wanted failure read
				// as a missing verdict; name it for what it is.
				for _, f := range flaws {
					for _, c := range f.wantFail {
						if _, ok := verdicts[c]; !ok {
							t.Errorf("flaw %q: the suite has no clause named %s", f.flaw, c)
						}
					}
				}
				return
			}
			if err == nil {
				t.Errorf("the suite passes a store with flaw %q", f.flaw)
			}
			for _, c := range f.wantFail {
				if verdicts[c] != "FAIL" {
					t.Errorf("clause %s: %q, want FAIL", c, verdicts[c])
				}
			}
			if t.Failed() {
				t.Logf("child output:\n%s", out)
			}
		})
	}
}

// TestFlawedStoreChild is the child process of TestSuiteFailsFlawedStores.
func TestFlawedStoreChild(t *testing.T) {
	flaw, ok := os.LookupEnv(flawEnv)
	if !ok {
		t.Skip("run by TestSuiteFailsFlawedStores in a child process")
	}
	known := flaw == "flawless"
	for _, f := range flaws {
		known = known || f.flaw == flaw
	}
	if !known {
		t.Fatalf("unknown flaw %q", flaw)
	}
	storagetest.Run(t, func(t *testing.T) storage.Store { return &flawedStore{flaw: flaw} })
}

// flawedStore is a correct in-memory storage.Store but for one flaw, chosen
// by name.
type flawedStore struct {
	flaw string
	mu   sync.Mutex
	recs map[string]flawedRecord

	factorRecs map[string]flawedRecord // by user ID; nil data: a tombstone
	pk         flawedPasskeys          // see passkey_test.go

	challenges map[string]flawedChallenge // by ID; see challenge_test.go

	blobs   map[string]map[string]flawedBlob // by user ID, then name; see blob_test.go
	blobSeq uint64                           // blobs stored under a new name so far

	sessions map[string]flawedEntry     // by ID
	index    map[string]map[string]bool // user ID → IDs of the user's sessions
	families map[string]flawedEntry     // by ID

	rates         map[string]int64 // TAT in µs, by key
	lockouts      map[string]storage.LockoutState
	firstRates    map[string]storage.RateRequest    // flaw rate-keeps-first-parameters
	firstLockouts map[string]storage.LockoutRequest // flaw lockout-keeps-first-parameters

	// written is closed by the first racing write that succeeds (flaw
	// delete-not-atomic), which a racing delete waits for between its
	// check and its delete.
	written     chan struct{}
	writtenOnce sync.Once
}

// writtenChan returns s.written, made on first use; s.mu is held.
func (s *flawedStore) writtenChan() chan struct{} {
	if s.written == nil {
		s.written = make(chan struct{})
	}
	return s.written
}

// flawedEntry is a session or a refresh family. A family with no user is a
// tombstone (flaw refresh-delete-keeps-version).
type flawedEntry struct {
	userID  string
	version uint64
	expires time.Time
	data    []byte
}

func (e flawedEntry) expired() bool { return !time.Now().Before(e.expires) }

type flawedRecord struct {
	version uint64
	data    []byte
}

var _ storage.Store = (*flawedStore)(nil)

func (s *flawedStore) key(userID string) string {
	switch s.flaw {
	case "case-insensitive-ids":
		return strings.ToLower(userID)
	case "trims-ids":
		return strings.TrimSpace(userID)
	}
	return userID
}

func (s *flawedStore) checkContext(ctx context.Context) error {
	switch s.flaw {
	case "ignores-context", "checks-context-after-write":
		return nil
	case "context-error-not-wrapped":
		if ctx.Err() != nil {
			return errors.New("flawed: context done")
		}
	}
	return ctx.Err()
}

func (s *flawedStore) checkUserID(userID string) error {
	if s.flaw == "caps-user-id-at-100" && len(userID) > 100 {
		return errors.New("flawed: user ID too long")
	}
	return nil
}

// checkExpect is what database/sql does with a uint64 argument that does
// not fit an int64.
func (s *flawedStore) checkExpect(expect uint64) error {
	if s.flaw == "expect-high-bit-is-error" && expect > math.MaxInt64 {
		return errors.New("flawed: uint64 values with high bit set are not supported")
	}
	return nil
}

func (s *flawedStore) conflict() error {
	if s.flaw == "conflict-not-wrapped" {
		return errors.New("flawed: conflict")
	}
	return storage.ErrConflict
}

func (s *flawedStore) GetVault(ctx context.Context, userID string) (storage.VaultRecord, error) {
	if err := s.checkContext(ctx); err != nil {
		return storage.VaultRecord{}, err
	}
	if err := s.checkUserID(userID); err != nil {
		return storage.VaultRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[s.key(userID)]
	if !ok || (s.flaw == "delete-keeps-version" && r.data == nil) {
		if s.flaw == "get-absent-is-empty-record" {
			return storage.VaultRecord{UserID: userID}, nil
		}
		return storage.VaultRecord{}, storage.ErrNotFound
	}
	data := bytes.Clone(r.data)
	if s.flaw == "returns-internal" {
		data = r.data
	}
	return storage.VaultRecord{UserID: userID, Version: r.version, Data: data}, nil
}

func (s *flawedStore) PutVault(ctx context.Context, userID string, data []byte, expect uint64) (err error) {
	if err := s.checkContext(ctx); err != nil {
		return err
	}
	if err := s.checkUserID(userID); err != nil {
		return err
	}
	if err := s.checkExpect(expect); err != nil {
		return err
	}
	switch s.flaw {
	case "caps-data-at-64k":
		if len(data) > 64<<10 {
			return errors.New("flawed: data too long")
		}
	case "truncates-at-nul":
		if i := bytes.IndexByte(data, 0); i >= 0 {
			data = data[:i]
		}
	case "empty-data-deletes":
		if len(data) == 0 {
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.recs, s.key(userID))
			return nil
		}
	}
	own := append([]byte{}, data...)
	if s.flaw == "retains-input" {
		own = data
	}
	if s.flaw == "delete-not-atomic" && storagetest.InRace(ctx) {
		// A racing delete checks the version first (see DeleteVault),
		// and then waits for this write.
		storagetest.Await(ctx, "delete-checked", 1)
		s.mu.Lock()
		written := s.writtenChan()
		s.mu.Unlock()
		defer func() {
			if err == nil {
				s.writtenOnce.Do(func() { close(written) })
			}
		}()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[s.key(userID)]
	current := r.version
	if s.flaw == "delete-keeps-version" && ok && r.data == nil {
		// A tombstone: the record reads as absent, but keeps its version,
		// so expect 0 fails and the old version is accepted.
		ok = false
	}
	conflict := current != expect
	switch s.flaw {
	case "put-ignores-expect":
		conflict = false
	case "put-creates-with-any-expect":
		conflict = ok && current != expect
	case "first-version-0":
		conflict = ok && current != expect
	}
	if conflict {
		return s.conflict()
	}
	if s.flaw == "cas-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	next := expect + 1
	switch s.flaw {
	case "put-ignores-expect":
		next = current + 1
	case "first-version-0":
		if !ok {
			next = 0
		}
	case "version-steps-by-2":
		next = current + 2
		if !ok {
			next = 1
		}
	}
	if s.recs == nil {
		s.recs = map[string]flawedRecord{}
	}
	if own == nil {
		own = []byte{}
	}
	s.recs[s.key(userID)] = flawedRecord{version: next, data: own}
	if s.flaw == "checks-context-after-write" {
		return ctx.Err()
	}
	return nil
}

func (s *flawedStore) DeleteVault(ctx context.Context, userID string, expect uint64) error {
	if err := s.checkContext(ctx); err != nil {
		return err
	}
	if err := s.checkUserID(userID); err != nil {
		return err
	}
	if err := s.checkExpect(expect); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[s.key(userID)]
	if s.flaw == "delete-keeps-version" && ok && r.data == nil {
		ok = false
	}
	if !ok {
		if s.flaw == "delete-absent-is-not-found" {
			return storage.ErrNotFound
		}
		return nil
	}
	if r.version != expect && s.flaw != "delete-ignores-expect" {
		return s.conflict()
	}
	switch s.flaw {
	case "delete-leaves-data":
		return nil
	case "delete-not-atomic":
		// Checked, then deleted in a second step, whatever was written
		// in between: a racing write lands there. (The delete waits on a
		// channel of its own: were it in Await beside the writers still
		// waking from theirs, every racer would count as waiting and it
		// would be let go before any write.)
		if storagetest.InRace(ctx) {
			written := s.writtenChan()
			s.mu.Unlock()
			storagetest.Arrive(ctx, "delete-checked")
			select {
			case <-written:
			case <-ctx.Done():
			}
			s.mu.Lock()
		}
	case "delete-race-is-conflict":
		s.betweenReadAndWrite(ctx)
		if _, still := s.recs[s.key(userID)]; !still {
			return s.conflict()
		}
	}
	if s.flaw == "delete-keeps-version" {
		s.recs[s.key(userID)] = flawedRecord{version: r.version}
	} else {
		delete(s.recs, s.key(userID))
	}
	if s.flaw == "checks-context-after-write" {
		return ctx.Err()
	}
	return nil
}

// betweenReadAndWrite is the gap in a store that reads and writes in two
// steps (the flaws *-not-atomic and session-index-lost-update), called
// between them with s.mu held. It lets go of the lock and, for a call of
// one of the suite's racers, waits until another call of the same race
// has read too (storagetest.Arrive, Await): two racers then act on the
// same state, which is the race that the clause must catch, on every run
// rather than when the scheduler happens to interleave them. It takes the
// lock again before it returns.
func (s *flawedStore) betweenReadAndWrite(ctx context.Context) {
	s.mu.Unlock()
	defer s.mu.Lock()
	storagetest.Arrive(ctx, "read")
	storagetest.Await(ctx, "read", 2)
}

func (s *flawedStore) sessionContext(ctx context.Context) error {
	if s.flaw == "session-ignores-context" {
		return nil
	}
	return ctx.Err()
}

func (s *flawedStore) refreshContext(ctx context.Context) error {
	if s.flaw == "refresh-ignores-context" {
		return nil
	}
	return ctx.Err()
}

// sessionKey is how the store keys a session ID.
func (s *flawedStore) sessionKey(id []byte) string {
	if s.flaw == "session-ids-truncated-at-nul" {
		if i := bytes.IndexByte(id, 0); i >= 0 {
			id = id[:i]
		}
	}
	return string(id)
}

func (s *flawedStore) storedExpiry(t time.Time) time.Time {
	switch s.flaw {
	case "session-expires-in-seconds":
		return t.Truncate(time.Second)
	case "session-expires-wall-clock-utc":
		y, mo, d := t.Date()
		h, mi, sec := t.Clock()
		return time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), time.UTC)
	}
	return t
}

func (s *flawedStore) session(id []byte, e flawedEntry) storage.Session {
	data := bytes.Clone(e.data)
	if s.flaw == "session-returns-internal" {
		data = e.data
	}
	return storage.Session{ID: bytes.Clone(id), UserID: e.userID, Version: e.version, Expires: e.expires, Data: data}
}

func (s *flawedStore) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	if err := s.sessionContext(ctx); err != nil {
		return storage.Session{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.sessions[s.sessionKey(id)]
	if !ok || (e.expired() && s.flaw != "session-get-ignores-expiry") {
		return storage.Session{}, storage.ErrNotFound
	}
	return s.session(id, e), nil
}

func (s *flawedStore) PutSession(ctx context.Context, sess storage.Session, expect uint64) error {
	if err := s.sessionContext(ctx); err != nil {
		return err
	}
	key := s.sessionKey(sess.ID)
	e := flawedEntry{userID: sess.UserID, expires: s.storedExpiry(sess.Expires), data: bytes.Clone(sess.Data)}
	if s.flaw == "session-retains-input" {
		e.data = sess.Data
	}
	if e.data == nil {
		e.data = []byte{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.sessions[key]
	present := ok && (!old.expired() || s.flaw == "session-expired-keeps-version")
	var current uint64
	if present {
		current = old.version
	}
	switch {
	case s.flaw == "session-put-is-upsert":
		// Every put replaces: the write of a session read before it was
		// deleted brings it back.
	case s.flaw == "session-put-absent-ignores-expect" && !present:
		// Checks the version of a session that is there, and creates one
		// that is not, whatever was expected.
	case current != expect:
		return storage.ErrConflict
	}
	if present && old.userID != e.userID && s.flaw != "session-put-allows-user-change" {
		return fmt.Errorf("flawed: %w: another user's session", storage.ErrInvalid)
	}
	if s.flaw == "session-cas-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	if e.expired() {
		if s.flaw != "session-put-expired-keeps-old" {
			s.deleteSession(key)
		}
		return nil
	}
	e.version = current + 1
	if s.flaw == "session-version-not-bumped" && present {
		e.version = current
	}
	if ok && old.userID != e.userID && s.flaw != "session-user-change-keeps-old-index" {
		delete(s.index[old.userID], key)
	}
	if s.sessions == nil {
		s.sessions = map[string]flawedEntry{}
		s.index = map[string]map[string]bool{}
	}
	if s.flaw == "session-index-not-atomic" {
		// Index the session, then store it in another step.
		if s.index[e.userID] == nil {
			s.index[e.userID] = map[string]bool{}
		}
		s.index[e.userID][key] = true
		// A racer waits here until a racing DeleteUserSessions has run
		// (which waits for a racer to get here), so that the delete runs
		// between the two steps on every run.
		s.mu.Unlock()
		storagetest.Arrive(ctx, "indexed")
		storagetest.Await(ctx, "deleted", 1)
		s.mu.Lock()
		s.sessions[key] = e
		return nil
	}
	s.sessions[key] = e
	if s.flaw == "session-index-lost-update" {
		// Read the user's index, change it, write it back, and let
		// another writer in between.
		ids := maps.Clone(s.index[e.userID])
		s.betweenReadAndWrite(ctx)
		if ids == nil {
			ids = map[string]bool{}
		}
		ids[key] = true
		s.index[e.userID] = ids
		return nil
	}
	if s.index[e.userID] == nil {
		s.index[e.userID] = map[string]bool{}
	}
	s.index[e.userID][key] = true
	return nil
}

func (s *flawedStore) deleteSession(key string) {
	if e, ok := s.sessions[key]; ok {
		delete(s.sessions, key)
		delete(s.index[e.userID], key)
	}
}

func (s *flawedStore) DeleteSession(ctx context.Context, id []byte) error {
	if err := s.sessionContext(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteSession(s.sessionKey(id))
	return nil
}

func (s *flawedStore) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	if err := s.sessionContext(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []storage.Session{}
	add := func(key string, e flawedEntry) {
		if !e.expired() || s.flaw == "session-list-includes-expired" {
			out = append(out, s.session([]byte(key), e))
		}
	}
	if s.flaw == "session-list-includes-other-users" {
		for key, e := range s.sessions {
			if strings.EqualFold(strings.TrimSpace(e.userID), strings.TrimSpace(userID)) {
				add(key, e)
			}
		}
	} else {
		for key := range s.index[userID] {
			if e, ok := s.sessions[key]; ok {
				add(key, e)
			}
		}
	}
	if len(out) == 0 && s.flaw == "session-list-none-is-not-found" {
		return nil, storage.ErrNotFound
	}
	return out, nil
}

func (s *flawedStore) DeleteUserSessions(ctx context.Context, userID string) error {
	if err := s.sessionContext(ctx); err != nil {
		return err
	}
	if s.flaw == "session-index-not-atomic" {
		// A racer waits until a racing put has indexed its session and
		// not stored it yet (see PutSession).
		storagetest.Await(ctx, "indexed", 1)
		defer storagetest.Arrive(ctx, "deleted")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flaw != "session-delete-user-misses-index" {
		for key := range s.index[userID] {
			delete(s.sessions, key)
		}
	}
	delete(s.index, userID)
	return nil
}

func (s *flawedStore) GetRefreshFamily(ctx context.Context, id []byte) (storage.RefreshFamily, error) {
	if err := s.refreshContext(ctx); err != nil {
		return storage.RefreshFamily{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.families[string(id)]
	if !ok || e.userID == "" || e.expired() {
		return storage.RefreshFamily{}, storage.ErrNotFound
	}
	data := bytes.Clone(e.data)
	if s.flaw == "refresh-returns-internal" {
		data = e.data
	}
	return storage.RefreshFamily{ID: bytes.Clone(id), UserID: e.userID, Version: e.version, Expires: e.expires, Data: data}, nil
}

func (s *flawedStore) PutRefreshFamily(ctx context.Context, f storage.RefreshFamily, expect uint64) error {
	if err := s.refreshContext(ctx); err != nil {
		return err
	}
	key := string(f.ID)
	e := flawedEntry{userID: f.UserID, expires: f.Expires, data: bytes.Clone(f.Data)}
	if e.data == nil {
		e.data = []byte{}
	}
	if s.flaw == "refresh-trusts-version-field" && f.Version != 0 {
		expect = f.Version
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.families[key]
	present := ok && old.userID != "" && (!old.expired() || s.flaw == "refresh-expired-keeps-version")
	var current uint64
	if present || (ok && s.flaw == "refresh-delete-keeps-version") {
		current = old.version
	}
	if current != expect && s.flaw != "refresh-put-ignores-expect" {
		return storage.ErrConflict
	}
	if present && old.userID != e.userID && s.flaw != "refresh-put-allows-user-change" {
		return fmt.Errorf("flawed: %w: another user's family", storage.ErrInvalid)
	}
	if s.flaw == "refresh-cas-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	if e.expired() {
		delete(s.families, key)
		return nil
	}
	e.version = expect + 1
	if s.flaw == "refresh-put-ignores-expect" {
		e.version = current + 1
	}
	if s.families == nil {
		s.families = map[string]flawedEntry{}
	}
	s.families[key] = e
	return nil
}

func (s *flawedStore) DeleteRefreshFamily(ctx context.Context, id []byte) error {
	if err := s.refreshContext(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteFamily(string(id))
	return nil
}

func (s *flawedStore) deleteFamily(key string) {
	if s.flaw == "refresh-delete-keeps-version" {
		if e, ok := s.families[key]; ok {
			s.families[key] = flawedEntry{version: e.version}
		}
		return
	}
	delete(s.families, key)
}

func (s *flawedStore) DeleteUserRefreshFamilies(ctx context.Context, userID string) error {
	if err := s.refreshContext(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, e := range s.families {
		if e.userID == userID || (s.flaw == "refresh-delete-user-case-insensitive" && strings.EqualFold(e.userID, userID)) {
			s.deleteFamily(key)
		}
	}
	return nil
}

// stateKey is how the store keys a rate or lockout key; group ("rate" or
// "lockout") names the interface whose flaws apply.
func (s *flawedStore) stateKey(group string, key []byte) string {
	switch s.flaw {
	case group + "-keys-truncated-to-16":
		key = key[:min(len(key), 16)]
	case group + "-keys-truncated-at-nul":
		if i := bytes.IndexByte(key, 0); i >= 0 {
			key = key[:i]
		}
	case group + "-retains-key":
		// A conversion without a copy: the map keeps the caller's bytes.
		if len(key) > 0 {
			return unsafe.String(&key[0], len(key))
		}
	}
	return string(key)
}

// invalid is the error for an argument out of bounds, err.
func (s *flawedStore) invalid(group string, err error, key []byte) error {
	switch s.flaw {
	case group + "-invalid-not-wrapped":
		return errors.New("flawed: invalid argument")
	case group + "-invalid-error-shows-key":
		return fmt.Errorf("%w (key %x)", err, key)
	}
	return err
}

// checkKey checks the length of a rate or lockout key.
func (s *flawedStore) checkKey(group string, key []byte) error {
	if len(key) == storage.RateKeyLen || s.flaw == group+"-accepts-bad-key-length" {
		return nil
	}
	return s.invalid(group, fmt.Errorf("flawed: %w: %s key of %d bytes", storage.ErrInvalid, group, len(key)), key)
}

func (s *flawedStore) checkRateRequest(key []byte, req storage.RateRequest) error {
	if err := s.checkKey("rate", key); err != nil {
		return err
	}
	anyKey := make([]byte, storage.RateKeyLen) // the key is checked
	err := storage.ValidRateRequest(anyKey, req)
	switch s.flaw {
	case "rate-window-product-overflows":
		// The window checked by multiplying, which wraps.
		unit := req
		unit.Interval = time.Microsecond
		if err != nil && req.Interval >= time.Microsecond && req.Interval%time.Microsecond == 0 &&
			storage.ValidRateRequest(anyKey, unit) == nil && req.Interval*time.Duration(req.Burst) <= storage.MaxRateWindow {
			err = nil
		}
	case "rate-refuses-largest-burst":
		if err == nil && req.Burst > 1<<16 {
			err = fmt.Errorf("flawed: %w: burst over 65536", storage.ErrInvalid)
		}
	}
	if err != nil {
		return s.invalid("rate", err, key)
	}
	return nil
}

func (s *flawedStore) TakeRate(ctx context.Context, key []byte, req storage.RateRequest) (storage.RateResult, error) {
	if err := ctx.Err(); err != nil && s.flaw != "rate-ignores-context" {
		return storage.RateResult{}, err
	}
	invalid := s.checkRateRequest(key, req)
	if invalid != nil && s.flaw != "rate-validates-after-write" {
		return storage.RateResult{}, invalid
	}
	k := s.stateKey("rate", key)
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := s.rates[k]
	if s.flaw == "rate-own-clock" && stored <= time.Now().UnixMicro() {
		stored = 0 // an expiry at the absolute TAT, by the store's clock
	}
	if s.flaw == "rate-take-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	switch s.flaw {
	case "rate-keeps-first-parameters":
		if first, ok := s.firstRates[k]; ok {
			req.Interval, req.Burst = first.Interval, first.Burst
		} else {
			if s.firstRates == nil {
				s.firstRates = map[string]storage.RateRequest{}
			}
			s.firstRates[k] = req
		}
	case "rate-ignores-cost":
		req.Cost = 1
	case "rate-burst-off-by-one":
		req.Burst++
	case "rate-rounds-now":
		req.Now = req.Now.Round(time.Microsecond)
	}
	allowed, tat := storage.DecideRate(stored, req)
	now, interval := req.Now.UnixMicro(), req.Interval.Microseconds()
	switch s.flaw {
	case "rate-past-tat-is-current":
		if stored != 0 && stored < now {
			tat, allowed = stored+req.Cost*interval, true
		}
	case "rate-in-milliseconds":
		tat -= tat % 1000
	}
	if s.rates == nil {
		s.rates = map[string]int64{}
	}
	switch {
	case allowed:
		s.rates[k] = tat
	case s.flaw == "rate-refusal-stores":
		s.rates[k] = tat + req.Cost*interval
	}
	if invalid != nil {
		return storage.RateResult{}, invalid
	}
	return storage.RateResult{Allowed: allowed, TAT: time.UnixMicro(tat)}, nil
}

func (s *flawedStore) ResetRate(ctx context.Context, key []byte) error {
	if err := ctx.Err(); err != nil && s.flaw != "rate-ignores-context" {
		return err
	}
	if err := s.checkKey("rate", key); err != nil {
		return err
	}
	k := s.stateKey("rate", key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rates[k]; !ok && s.flaw == "rate-reset-absent-is-not-found" {
		return storage.ErrNotFound
	}
	if s.flaw != "rate-reset-does-nothing" {
		delete(s.rates, k)
		delete(s.firstRates, k)
	}
	return nil
}

func (s *flawedStore) checkLockoutRequest(key []byte, req storage.LockoutRequest) error {
	if err := s.checkKey("lockout", key); err != nil {
		return err
	}
	err := storage.ValidLockoutRequest(make([]byte, storage.RateKeyLen), req)
	if err == nil && s.flaw == "lockout-durations-in-int32-ms" && max(req.LockFor, req.MaxLockFor, req.ForgetAfter) > math.MaxInt32*time.Millisecond {
		err = errors.New("flawed: duration out of range for int32 milliseconds")
	}
	if err != nil {
		return s.invalid("lockout", err, key)
	}
	return nil
}

// lockDuration is how long lock number locks lasts, with the flaws that
// get it wrong.
func (s *flawedStore) lockDuration(locks int, req storage.LockoutRequest) time.Duration {
	switch s.flaw {
	case "lockout-never-grows":
		return req.LockFor.Truncate(time.Millisecond)
	case "lockout-growth-overflows":
		return min(req.LockFor<<(locks-1), req.MaxLockFor).Truncate(time.Millisecond)
	case "lockout-truncates-before-doubling":
		return storage.LockDuration(locks, req.LockFor.Truncate(time.Millisecond), req.MaxLockFor)
	}
	return storage.LockDuration(locks, req.LockFor, req.MaxLockFor)
}

func (s *flawedStore) BeginAttempt(ctx context.Context, key []byte, req storage.LockoutRequest) (bool, storage.LockoutState, error) {
	if err := ctx.Err(); err != nil && s.flaw != "lockout-ignores-context" {
		return false, storage.LockoutState{}, err
	}
	invalid := s.checkLockoutRequest(key, req)
	if invalid != nil && s.flaw != "lockout-validates-after-write" {
		return false, storage.LockoutState{}, invalid
	}
	k := s.stateKey("lockout", key)
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := s.lockouts[k]
	if s.flaw == "lockout-own-clock" && !stored.Expires.After(time.Now()) {
		stored = storage.LockoutState{} // an expiry at the absolute Expires, by the store's clock
	}
	if s.flaw == "lockout-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	now := req.Now.UnixMilli()
	switch s.flaw {
	case "lockout-keeps-first-parameters":
		if first, ok := s.firstLockouts[k]; ok {
			first.Now = req.Now
			req = first
		} else {
			if s.firstLockouts == nil {
				s.firstLockouts = map[string]storage.LockoutRequest{}
			}
			s.firstLockouts[k] = req
		}
	case "lockout-locks-one-late":
		req.MaxFailures++
	case "lockout-ignores-forget-after":
		if !stored.Expires.IsZero() && stored.Expires.UnixMilli() <= now {
			stored.Expires = time.UnixMilli(now + 1)
		}
	case "lockout-ends-1ms-late":
		if stored.Expires.UnixMilli() > now && !stored.LockedUntil.IsZero() && stored.LockedUntil.UnixMilli() == now {
			return false, stored, nil
		}
	}
	admitted, next := storage.DecideAttempt(stored, req)
	if locked := admitted && next.Failures == 0; locked {
		until := now + s.lockDuration(next.Locks, req).Milliseconds()
		next.LockedUntil = time.UnixMilli(until)
		next.Expires = time.UnixMilli(max(now, until) + req.ForgetAfter.Milliseconds())
		if s.flaw == "lockout-nanosecond-precision" {
			next.LockedUntil = next.LockedUntil.Add(time.Duration(req.Now.Nanosecond() % 1e6))
		}
	}
	if admitted {
		switch s.flaw {
		case "lockout-expires-ignores-lock":
			next.Expires = time.UnixMilli(now + req.ForgetAfter.Milliseconds())
		case "lockout-seconds-precision":
			next.LockedUntil = next.LockedUntil.Truncate(time.Second)
			next.Expires = next.Expires.Truncate(time.Second)
		case "lockout-nanosecond-precision":
			next.Expires = next.Expires.Add(time.Duration(req.Now.Nanosecond() % 1e6))
		}
	}
	if s.lockouts == nil {
		s.lockouts = map[string]storage.LockoutState{}
	}
	switch {
	case admitted:
		s.lockouts[k] = next
	case s.flaw == "lockout-refusal-counts":
		next.Failures++
		s.lockouts[k] = next
	}
	if invalid != nil {
		return false, storage.LockoutState{}, invalid
	}
	return admitted, next, nil
}

func (s *flawedStore) RefundAttempt(ctx context.Context, key []byte, req storage.LockoutRequest, lock int) (bool, storage.LockoutState, error) {
	if err := ctx.Err(); err != nil && s.flaw != "lockout-ignores-context" {
		return false, storage.LockoutState{}, err
	}
	invalid := s.checkLockoutRequest(key, req)
	if invalid == nil && s.flaw != "lockout-refund-any-lock-number" && (lock < 1 || lock > math.MaxInt32) {
		invalid = s.invalid("lockout", fmt.Errorf("%w: lock %d", storage.ErrInvalid, lock), key)
	}
	if invalid != nil && s.flaw != "lockout-validates-after-write" {
		return false, storage.LockoutState{}, invalid
	}
	k := s.stateKey("lockout", key)
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := s.lockouts[k]
	if s.flaw == "lockout-refund-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	var refunded bool
	var next storage.LockoutState
	switch s.flaw {
	case "lockout-refund-ignores-lock":
		// Gives back a pending count whatever lock it counted towards, and
		// never undoes a lock.
		if stored.Expires.UnixMilli() > req.Now.UnixMilli() && stored.Failures > 0 {
			refunded, next = true, stored
			next.Failures--
		}
	case "lockout-refund-keeps-lock":
		refunded, next = storage.DecideRefund(stored, req, lock)
		if refunded && next.Locks < stored.Locks {
			refunded, next = false, stored
		}
	default:
		refunded, next = storage.DecideRefund(stored, req, lock)
	}
	if refunded {
		s.lockouts[k] = next
	}
	if invalid != nil {
		return false, storage.LockoutState{}, invalid
	}
	return refunded, next, nil
}

func (s *flawedStore) ResetLockout(ctx context.Context, key []byte) error {
	if err := ctx.Err(); err != nil && s.flaw != "lockout-ignores-context" {
		return err
	}
	if err := s.checkKey("lockout", key); err != nil {
		return err
	}
	k := s.stateKey("lockout", key)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.lockouts[k]
	switch {
	case !ok && s.flaw == "lockout-reset-absent-is-not-found":
		return storage.ErrNotFound
	case ok && s.flaw == "lockout-reset-keeps-locks":
		s.lockouts[k] = storage.LockoutState{Locks: st.Locks, Expires: st.Expires}
	default:
		delete(s.lockouts, k)
	}
	delete(s.firstLockouts, k)
	return nil
}
