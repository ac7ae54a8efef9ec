package storagetest_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/keyhold/keyhold/storage"
)

// factorFlaws are the flawed FactorStores of TestSuiteFailsFlawedStores:
// each flaw is one that would let a TOTP or recovery code be used twice,
// bring back deleted factors, or hand out the store's bytes.
var factorFlaws = []struct {
	flaw     string
	wantFail []string
}{
	// Every put replaces, whatever was expected: two sign-ins with one
	// code both succeed, and a stale write brings deleted factors back.
	{"factor-put-is-upsert", factors(
		"PutExpectZeroWhenPresentConflicts", "PutStaleExpectConflicts", "PutFutureExpectConflicts",
		"PutNonZeroExpectWhenAbsentConflicts", "ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins",
		"RacingUsesOfOneReadOneWins", "DeleteBetweenReadAndPutConflicts", "DeletedRecordRefusesStaleExpect",
	)},
	// Forced: each racer waits between its check and its write until a
	// rival has checked too.
	{"factor-cas-not-atomic", factors("ConcurrentCreatesOneWins", "ConcurrentUpdatesOneWins", "ConcurrentReadModifyWriteLosesNothing", "RacingUsesOfOneReadOneWins")},
	{"factor-delete-ignores-version", factors("DeleteWrongExpectConflicts")},
	{"factor-delete-absent-conflicts", factors("DeleteAbsentIsNil", "DeleteBetweenReadAndPutConflicts")},
	// A delete that leaves a tombstone with the old version: the stale
	// write of a code read before the delete is accepted.
	{"factor-delete-keeps-version", factors("DeleteThenPutExpectZeroCreatesVersion1", "DeletedRecordRefusesStaleExpect", "DeleteBetweenReadAndPutConflicts")},
	{"factor-returns-shared-slice", factors("GetReturnsCallersOwnCopy")},
	{"factor-retains-input", factors("PutDoesNotRetainData")},
	{"factor-case-insensitive-ids", factors("UsersAreIsolated")},
	{"factor-accepts-out-of-bounds", factors("OutOfBoundsIsInvalid")},
	{"factor-ignores-context", factors("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},
}

// factors names clauses of the FactorStore group.
func factors(clauses ...string) []string { return inGroup("FactorStore", clauses) }

func init() {
	for _, f := range factorFlaws {
		flaws = append(flaws, struct {
			flaw     string
			wantFail []string
		}{f.flaw, f.wantFail})
	}
}

func (s *flawedStore) factorKey(userID string) string {
	if s.flaw == "factor-case-insensitive-ids" {
		return string(bytes.ToLower([]byte(userID)))
	}
	return userID
}

func (s *flawedStore) checkFactorArgs(ctx context.Context, userID string, data []byte) error {
	if err := ctx.Err(); err != nil && s.flaw != "factor-ignores-context" {
		return err
	}
	if s.flaw == "factor-accepts-out-of-bounds" {
		return nil
	}
	if userID == "" || len(userID) > storage.MaxUserIDLen || len(data) > storage.MaxFactorDataLen {
		return fmt.Errorf("flawed: %w: factor arguments out of bounds", storage.ErrInvalid)
	}
	return nil
}

func (s *flawedStore) GetFactors(ctx context.Context, userID string) (storage.FactorRecord, error) {
	if err := s.checkFactorArgs(ctx, userID, nil); err != nil {
		return storage.FactorRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.factorRecs[s.factorKey(userID)]
	if !ok || r.data == nil { // nil data: a tombstone (factor-delete-keeps-version)
		return storage.FactorRecord{}, storage.ErrNotFound
	}
	data := bytes.Clone(r.data)
	if s.flaw == "factor-returns-shared-slice" {
		data = r.data
	}
	return storage.FactorRecord{UserID: userID, Version: r.version, Data: data}, nil
}

func (s *flawedStore) PutFactors(ctx context.Context, userID string, data []byte, expect uint64) error {
	if err := s.checkFactorArgs(ctx, userID, data); err != nil {
		return err
	}
	own := append([]byte{}, data...)
	if s.flaw == "factor-retains-input" && data != nil {
		own = data
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.factorKey(userID)
	r, ok := s.factorRecs[key]
	current := r.version // a tombstone keeps its version (factor-delete-keeps-version)
	if s.flaw != "factor-put-is-upsert" && current != expect {
		return storage.ErrConflict
	}
	if s.flaw == "factor-cas-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	if s.factorRecs == nil {
		s.factorRecs = map[string]flawedRecord{}
	}
	next := expect + 1
	if s.flaw == "factor-put-is-upsert" {
		next = 1
		if ok {
			next = current + 1
		}
	}
	s.factorRecs[key] = flawedRecord{version: next, data: own}
	return nil
}

func (s *flawedStore) DeleteFactors(ctx context.Context, userID string, expect uint64) error {
	if err := s.checkFactorArgs(ctx, userID, nil); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.factorKey(userID)
	r, ok := s.factorRecs[key]
	if !ok || r.data == nil {
		if s.flaw == "factor-delete-absent-conflicts" {
			return storage.ErrConflict
		}
		return nil
	}
	if r.version != expect && s.flaw != "factor-delete-ignores-version" {
		return storage.ErrConflict
	}
	if s.flaw == "factor-delete-keeps-version" {
		s.factorRecs[key] = flawedRecord{version: r.version}
		return nil
	}
	delete(s.factorRecs, key)
	return nil
}
