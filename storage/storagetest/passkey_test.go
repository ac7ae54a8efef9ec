package storagetest_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/keyhold/keyhold/storage"
)

// passkeyFlaws are the flawed PasskeyStores of TestSuiteFailsFlawedStores:
// each flaw would let a passkey sign in as the wrong user, survive its
// removal or its account's deletion, be registered twice, or undo a
// concurrent change.
var passkeyFlaws = []struct {
	flaw     string
	wantFail []string
}{
	// An absent record reads as an empty one at version 0, and an
	// unknown handle or credential ID as the empty user.
	{"passkey-get-absent-is-empty-record", passkeys("GetAbsentIsErrNotFound")},
	// Every put replaces, whatever was expected.
	{"passkey-put-is-upsert", passkeys(
		"PutExpectZeroWhenPresentConflicts", "PutStaleOrFutureExpectConflicts", "PutNonZeroExpectWhenAbsentConflicts",
		"ConcurrentCreatesOneWins", "ConcurrentPutsOfOneReadOneWins", "DeleteThenPutExpectZeroCreatesVersion1",
	)},
	// Forced: each racer waits between its check and its write until a
	// rival has checked too.
	{"passkey-cas-not-atomic", passkeys("ConcurrentCreatesOneWins", "ConcurrentPutsOfOneReadOneWins")},
	{"passkey-version-not-bumped", passkeys("VersionGrowsByOne", "ConcurrentPutsOfOneReadOneWins")},
	// Puts that use the stored Version field rather than expect+1.
	{"passkey-trusts-version-field", passkeys("FirstPutCreatesVersion1", "VersionGrowsByOne")},
	{"passkey-handle-change-allowed", passkeys("HandleCannotChange")},
	// A credential ID dropped from the record still signs in as the user.
	{"passkey-index-keeps-removed-credentials", passkeys("IndexesFollowPuts")},
	// A deleted account's passkeys still name it.
	{"passkey-index-not-updated-on-delete", passkeys("DeleteRemovesIndexEntries")},
	{"passkey-duplicate-credential-allowed", passkeys("AnotherUsersCredentialIsDuplicate", "ConcurrentRegistrationsOfOneCredentialAtMostOneWins")},
	{"passkey-duplicate-handle-allowed", passkeys("AnotherUsersHandleIsDuplicate")},
	// Checks the credential index, then waits (forced) until a rival has
	// checked too, then writes: two users register one credential ID.
	{"passkey-duplicate-check-not-atomic", passkeys("ConcurrentRegistrationsOfOneCredentialAtMostOneWins")},
	// Refuses the duplicate but keeps the record it was part of.
	{"passkey-duplicate-stores-record", passkeys("AnotherUsersCredentialIsDuplicate", "ConcurrentRegistrationsOfOneCredentialAtMostOneWins")},
	{"passkey-credentials-case-insensitive", passkeys("ValuesAtBoundsRoundTrip")},
	{"passkey-delete-ignores-version", passkeys("DeleteWrongExpectConflicts")},
	{"passkey-delete-absent-conflicts", passkeys("DeleteAbsentIsNil")},
	{"passkey-delete-keeps-version", passkeys("DeleteThenPutExpectZeroCreatesVersion1")},
	{"passkey-returns-shared-slice", passkeys("GetReturnsCallersOwnCopy")},
	{"passkey-retains-input", passkeys("PutDoesNotRetainInput")},
	{"passkey-accepts-out-of-bounds", passkeys("OutOfBoundsIsInvalid")},
	// Checks the bounds of puts only: the lookups take any length.
	{"passkey-lookups-unbounded", passkeys("OutOfBoundsIsInvalid")},
	{"passkey-accepts-listed-twice", passkeys("OutOfBoundsIsInvalid")},
	{"passkey-ignores-context", passkeys("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},
}

// passkeys names clauses of the PasskeyStore group.
func passkeys(clauses ...string) []string { return inGroup("PasskeyStore", clauses) }

func init() {
	for _, f := range passkeyFlaws {
		flaws = append(flaws, struct {
			flaw     string
			wantFail []string
		}{f.flaw, f.wantFail})
	}
}

var _ storage.PasskeyStore = (*flawedStore)(nil)

// flawedPasskeys is the flawedStore's PasskeyStore state, under its mu.
type flawedPasskeys struct {
	recs     map[string]storage.PasskeyRecord // by user ID; nil Handle: a tombstone (passkey-delete-keeps-version)
	byHandle map[string]string
	byCred   map[string]string
}

func (s *flawedStore) credKey(id []byte) string {
	if s.flaw == "passkey-credentials-case-insensitive" {
		return strings.ToLower(string(id))
	}
	return string(id)
}

func (s *flawedStore) passkeyContext(ctx context.Context) error {
	if s.flaw == "passkey-ignores-context" {
		return nil
	}
	return ctx.Err()
}

func (s *flawedStore) checkPasskeyUser(userID string) error {
	if s.flaw != "passkey-accepts-out-of-bounds" && (userID == "" || len(userID) > storage.MaxUserIDLen) {
		return fmt.Errorf("flawed: %w: user ID", storage.ErrInvalid)
	}
	return nil
}

func (s *flawedStore) checkLookup(n, lo, hi int) error {
	if s.flaw != "passkey-accepts-out-of-bounds" && s.flaw != "passkey-lookups-unbounded" && (n < lo || n > hi) {
		return fmt.Errorf("flawed: %w: lookup key", storage.ErrInvalid)
	}
	return nil
}

func (s *flawedStore) checkPasskeyRecord(r storage.PasskeyRecord) error {
	if err := s.checkPasskeyUser(r.UserID); err != nil {
		return err
	}
	if s.flaw == "passkey-accepts-out-of-bounds" {
		return nil
	}
	if len(r.Handle) != storage.PasskeyHandleLen || len(r.CredentialIDs) > storage.MaxPasskeysPerUser || len(r.Data) > storage.MaxPasskeyDataLen {
		return fmt.Errorf("flawed: %w: passkey record", storage.ErrInvalid)
	}
	seen := map[string]bool{}
	for _, id := range r.CredentialIDs {
		if len(id) == 0 || len(id) > storage.MaxCredentialIDLen || (seen[string(id)] && s.flaw != "passkey-accepts-listed-twice") {
			return fmt.Errorf("flawed: %w: credential ID", storage.ErrInvalid)
		}
		seen[string(id)] = true
	}
	return nil
}

func clonePasskeys(r storage.PasskeyRecord) storage.PasskeyRecord {
	r.Handle = bytes.Clone(r.Handle)
	r.Data = bytes.Clone(r.Data)
	ids := make([][]byte, len(r.CredentialIDs))
	for i, id := range r.CredentialIDs {
		ids[i] = bytes.Clone(id)
	}
	r.CredentialIDs = ids
	return r
}

func (s *flawedStore) GetPasskeys(ctx context.Context, userID string) (storage.PasskeyRecord, error) {
	if err := s.passkeyContext(ctx); err != nil {
		return storage.PasskeyRecord{}, err
	}
	if err := s.checkPasskeyUser(userID); err != nil {
		return storage.PasskeyRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.pk.recs[userID]
	if !ok || r.Handle == nil {
		if s.flaw == "passkey-get-absent-is-empty-record" {
			return storage.PasskeyRecord{UserID: userID}, nil
		}
		return storage.PasskeyRecord{}, storage.ErrNotFound
	}
	if s.flaw == "passkey-returns-shared-slice" {
		return r, nil
	}
	return clonePasskeys(r), nil
}

func (s *flawedStore) PutPasskeys(ctx context.Context, r storage.PasskeyRecord, expect uint64) error {
	if err := s.passkeyContext(ctx); err != nil {
		return err
	}
	if err := s.checkPasskeyRecord(r); err != nil {
		return err
	}
	own := clonePasskeys(r)
	if s.flaw == "passkey-retains-input" {
		own = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.pk
	old, ok := t.recs[r.UserID]
	if s.flaw != "passkey-put-is-upsert" && old.Version != expect {
		return storage.ErrConflict
	}
	if s.flaw == "passkey-cas-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	live := ok && old.Handle != nil
	if live && string(old.Handle) != string(r.Handle) && s.flaw != "passkey-handle-change-allowed" {
		return fmt.Errorf("flawed: %w: handle change", storage.ErrInvalid)
	}
	if u, held := t.byHandle[string(r.Handle)]; held && u != r.UserID && s.flaw != "passkey-duplicate-handle-allowed" {
		return fmt.Errorf("flawed: %w: handle", storage.ErrDuplicate)
	}
	for _, id := range r.CredentialIDs {
		if u, held := t.byCred[s.credKey(id)]; held && u != r.UserID && s.flaw != "passkey-duplicate-credential-allowed" {
			if s.flaw == "passkey-duplicate-stores-record" {
				s.storePasskeys(own, old, live, expect)
			}
			return fmt.Errorf("flawed: %w: credential ID", storage.ErrDuplicate)
		}
	}
	if s.flaw == "passkey-duplicate-check-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	s.storePasskeys(own, old, live, expect)
	return nil
}

// storePasskeys writes r over old; s.mu is held.
func (s *flawedStore) storePasskeys(r, old storage.PasskeyRecord, live bool, expect uint64) {
	t := &s.pk
	if t.recs == nil {
		t.recs = map[string]storage.PasskeyRecord{}
		t.byHandle = map[string]string{}
		t.byCred = map[string]string{}
	}
	switch s.flaw {
	case "passkey-put-is-upsert":
		r.Version = old.Version + 1
	case "passkey-version-not-bumped":
		r.Version = max(expect, 1)
	case "passkey-trusts-version-field":
		// r.Version as given.
	default:
		r.Version = expect + 1
	}
	if live {
		delete(t.byHandle, string(old.Handle))
		if s.flaw != "passkey-index-keeps-removed-credentials" {
			for _, id := range old.CredentialIDs {
				delete(t.byCred, s.credKey(id))
			}
		}
	}
	t.recs[r.UserID] = r
	t.byHandle[string(r.Handle)] = r.UserID
	for _, id := range r.CredentialIDs {
		t.byCred[s.credKey(id)] = r.UserID
	}
}

func (s *flawedStore) DeletePasskeys(ctx context.Context, userID string, expect uint64) error {
	if err := s.passkeyContext(ctx); err != nil {
		return err
	}
	if err := s.checkPasskeyUser(userID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.pk
	r, ok := t.recs[userID]
	if !ok || r.Handle == nil {
		if s.flaw == "passkey-delete-absent-conflicts" {
			return storage.ErrConflict
		}
		return nil
	}
	if r.Version != expect && s.flaw != "passkey-delete-ignores-version" {
		return storage.ErrConflict
	}
	if s.flaw != "passkey-index-not-updated-on-delete" {
		delete(t.byHandle, string(r.Handle))
		for _, id := range r.CredentialIDs {
			delete(t.byCred, s.credKey(id))
		}
	}
	if s.flaw == "passkey-delete-keeps-version" {
		t.recs[userID] = storage.PasskeyRecord{UserID: userID, Version: r.Version}
		return nil
	}
	delete(t.recs, userID)
	return nil
}

func (s *flawedStore) UserByHandle(ctx context.Context, handle []byte) (string, error) {
	if err := s.passkeyContext(ctx); err != nil {
		return "", err
	}
	if err := s.checkLookup(len(handle), storage.PasskeyHandleLen, storage.PasskeyHandleLen); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.pk.byHandle[string(handle)]
	if !ok && s.flaw == "passkey-get-absent-is-empty-record" {
		return "", nil
	}
	if !ok {
		return "", storage.ErrNotFound
	}
	return u, nil
}

func (s *flawedStore) UserByCredential(ctx context.Context, credentialID []byte) (string, error) {
	if err := s.passkeyContext(ctx); err != nil {
		return "", err
	}
	if err := s.checkLookup(len(credentialID), 1, storage.MaxCredentialIDLen); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.pk.byCred[s.credKey(credentialID)]
	if !ok && s.flaw == "passkey-get-absent-is-empty-record" {
		return "", nil
	}
	if !ok {
		return "", storage.ErrNotFound
	}
	return u, nil
}
