package storagetest

import (
	"context"
	"errors"
	"fmt"
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
	runClauses(t, factorClauses, func(t *testing.T) records { return factorRecords(t, newStore(t)) })
}

// factorRecords is s as records; a nil s fails the test.
func factorRecords(t *testing.T, s storage.FactorStore) records {
	t.Helper()
	if s == nil {
		t.Fatal("newStore returned nil")
	}
	return records{
		get: func(ctx context.Context, userID string) (record, error) {
			rec, err := s.GetFactors(ctx, userID)
			return record(rec), err
		},
		put:     s.PutFactors,
		delete:  s.DeleteFactors,
		getName: "GetFactors", putName: "PutFactors", deleteName: "DeleteFactors",
		noun:   "factors",
		maxLen: storage.MaxFactorDataLen, maxName: "MaxFactorDataLen",
	}
}

// factorClauses are the FactorStore subtests, in the order of the
// contract: VaultStore's, with two more races and the refusal of values
// out of bounds.
var factorClauses = recordClauses(
	[]clause[records]{
		{"RacingUsesOfOneReadOneWins", racingUsesOfOneReadOneWins},
		{"DeleteBetweenReadAndPutConflicts", deleteBetweenReadAndPutConflicts},
	},
	[]clause[records]{
		{"OutOfBoundsIsInvalid", outOfBoundsIsInvalid},
	},
)

// factorRacers is the number of racers of RacingUsesOfOneReadOneWins: as
// many sign-ins with one TOTP or recovery code at once.
const factorRacers = 20

// racingUsesOfOneReadOneWins is the use of one code by factorRacers
// sign-ins at once: each has read the record (the reads are made, one per
// racer, before the race starts, so every read comes before any write
// whatever the scheduler does), and all then write their change at once,
// each expecting the version it read. Exactly one write succeeds, the
// others conflict, and the record is the winner's.
func racingUsesOfOneReadOneWins(t *testing.T, s records) {
	ctx := t.Context()
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, user, []byte("v2"), 1)
	reads := make([]record, factorRacers)
	for i := range reads {
		rec, err := s.get(ctx, user)
		if err != nil {
			t.Fatalf("%s: %v", s.getName, err)
		}
		reads[i] = rec
	}
	errs := raceN(ctx, factorRacers, func(ctx context.Context, i int) error {
		return s.put(ctx, user, racerData(i), reads[i].Version)
	})
	if w := oneWinner(t, errs); w >= 0 {
		wantRecord(t, s, user, 3, racerData(w))
	}
}

// deleteBetweenReadAndPutConflicts forces the interleaving of a code
// accepted (read, then write) around the removal of the user's factors:
// the write that expects the version read before the delete conflicts,
// and the record stays deleted; the next record starts at version 1
// again.
func deleteBetweenReadAndPutConflicts(t *testing.T, s records) {
	ctx := t.Context()
	mustPut(t, s, user, []byte("v1"), 0)
	mustPut(t, s, user, []byte("v2"), 1)
	rec, err := s.get(ctx, user)
	if err != nil {
		t.Fatalf("%s: %v", s.getName, err)
	}
	mustDelete(t, s, user, rec.Version)
	wantConflict(t, s.put(ctx, user, []byte("stale use"), rec.Version), fmt.Sprintf("%s(expect %d, read before the delete)", s.putName, rec.Version))
	wantNotFound(t, s, user)
	// A delete that expects the version read before it conflicts with
	// nothing: the record is gone, and a second delete is nil.
	if err := s.delete(ctx, user, rec.Version); err != nil {
		t.Errorf("%s(expect %d) after the delete: %v, want nil", s.deleteName, rec.Version, err)
	}
	mustPut(t, s, user, []byte("re-enrolled"), 0)
	wantRecord(t, s, user, 1, []byte("re-enrolled"))
}

// outOfBoundsIsInvalid checks that each method refuses a user ID that is
// empty or one byte over storage.MaxUserIDLen, and put data one byte over
// s.maxLen, with an error wrapping storage.ErrInvalid (and neither
// ErrNotFound nor ErrConflict), and that nothing is stored or deleted: in
// particular not under the first storage.MaxUserIDLen bytes of the
// over-long ID, nor the first s.maxLen bytes of the data.
func outOfBoundsIsInvalid(t *testing.T, s records) {
	ctx := t.Context()
	long := longestUserID() + "a"
	cut := long[:storage.MaxUserIDLen]
	mustPut(t, s, cut, []byte("kept"), 0)
	tooBig := pattern(3, s.maxLen+1)
	for _, c := range []struct {
		call string
		err  func() error
	}{
		{s.getName + "(empty user ID)", func() error { _, err := s.get(ctx, ""); return err }},
		{s.getName + "(user ID over MaxUserIDLen)", func() error { _, err := s.get(ctx, long); return err }},
		{s.putName + "(empty user ID, expect 0)", func() error { return s.put(ctx, "", []byte("x"), 0) }},
		{s.putName + "(user ID over MaxUserIDLen, expect 0)", func() error { return s.put(ctx, long, []byte("x"), 0) }},
		{s.putName + "(user ID over MaxUserIDLen, expect 1)", func() error { return s.put(ctx, long, []byte("x"), 1) }},
		{s.putName + "(data over " + s.maxName + ", expect 0)", func() error { return s.put(ctx, "bob", tooBig, 0) }},
		{s.putName + "(data over " + s.maxName + ", expect 1)", func() error { return s.put(ctx, cut, tooBig, 1) }},
		{s.deleteName + "(empty user ID)", func() error { return s.delete(ctx, "", 0) }},
		{s.deleteName + "(user ID over MaxUserIDLen)", func() error { return s.delete(ctx, long, 1) }},
	} {
		err := c.err()
		if !errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("%s: %v, want an error wrapping storage.ErrInvalid (and neither ErrNotFound nor ErrConflict)", c.call, err)
		}
	}
	wantNotFound(t, s, "bob")
	wantRecord(t, s, cut, 1, []byte("kept"))
}
