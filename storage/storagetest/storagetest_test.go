package storagetest_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/storagetest"
)

// The suite must fail stores that break the contract. Each case below runs
// the suite, in a child process (a failing suite fails its test, which no
// test can recover from in-process), against a store with one flaw, and
// checks that the clauses that flaw breaks are reported as failed. The
// flawless case checks that the flawed store is otherwise correct and that
// every clause passes.
var flaws = []struct {
	flaw     string
	wantFail []string // clauses (subtest names under VaultStore/) that must fail
}{
	{"", nil},
	{"get-absent-is-empty-record", []string{"GetAbsentIsErrNotFound", "DeleteThenGetIsErrNotFound"}},
	{"first-version-0", []string{"FirstPutCreatesVersion1", "VersionGrowsByOne", "PutExpectZeroWhenPresentConflicts"}},
	{"put-ignores-expect", []string{
		"PutExpectZeroWhenPresentConflicts", "PutStaleExpectConflicts", "PutFutureExpectConflicts",
		"ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins", "DeletedRecordRefusesStaleExpect",
	}},
	{"put-creates-with-any-expect", []string{"PutNonZeroExpectWhenAbsentConflicts", "DeletedRecordRefusesStaleExpect"}},
	{"expect-high-bit-is-error", []string{"PutFutureExpectConflicts", "PutNonZeroExpectWhenAbsentConflicts", "DeleteWrongExpectConflicts", "DeleteAbsentIsNil"}},
	{"version-steps-by-2", []string{"VersionGrowsByOne", "PutStaleExpectConflicts"}},
	{"conflict-not-wrapped", []string{"PutExpectZeroWhenPresentConflicts", "ConcurrentCreatesOneWins", "DeleteWrongExpectConflicts"}},
	// ConcurrentPutAndDeleteOneWins fails this store too, but not every
	// time (not when the delete runs before every write's check).
	{"cas-not-atomic", []string{"ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins", "ConcurrentReadModifyWriteLosesNothing"}},
	{"delete-ignores-expect", []string{"DeleteWrongExpectConflicts"}},
	{"delete-absent-is-not-found", []string{"DeleteAbsentIsNil"}},
	{"delete-keeps-version", []string{"DeleteThenPutExpectZeroCreatesVersion1", "DeletedRecordRefusesStaleExpect"}},
	{"retains-input", []string{"PutDoesNotRetainData"}},
	{"returns-internal", []string{"GetReturnsCallersOwnCopy"}},
	{"case-insensitive-ids", []string{"UsersAreIsolated"}},
	{"trims-ids", []string{"UsersAreIsolated"}},
	{"truncates-at-nul", []string{"BinaryDataRoundTrips"}},
	{"caps-data-at-64k", []string{"LargestDataRoundTrips"}},
	{"empty-data-deletes", []string{"EmptyDataRoundTrips"}},
	{"caps-user-id-at-100", []string{"LongestUserIDRoundTrips"}},
	{"ignores-context", []string{"CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured"}},
	{"checks-context-after-write", []string{"CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured"}},
	{"context-error-not-wrapped", []string{"CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured"}},
}

const flawEnv = "STORAGETEST_FLAW"

// resultLine matches the verdict that go test -v prints for a clause.
var resultLine = regexp.MustCompile(`(?m)^\s*--- (PASS|FAIL|SKIP): TestFlawedStoreChild/VaultStore/(\S+)`)

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
			cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestFlawedStoreChild$", "-test.v", "-test.count=1", "-test.timeout=5m")
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

// flawedStore is a correct in-memory VaultStore but for one flaw, chosen by
// name.
type flawedStore struct {
	flaw string
	mu   sync.Mutex
	recs map[string]flawedRecord
}

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

func (s *flawedStore) PutVault(ctx context.Context, userID string, data []byte, expect uint64) error {
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
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
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
