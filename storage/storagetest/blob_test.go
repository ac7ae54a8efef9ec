package storagetest_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/keyhold/keyhold/storage"
)

// blobFlaws are the flawed BlobStores of TestSuiteFailsFlawedStores: each
// flaw would let two devices both overwrite one blob, bring a deleted
// value's version back, hide or misorder blobs in a listing, or let one
// account's deletion touch another's blobs.
var blobFlaws = []struct {
	flaw     string
	wantFail []string
}{
	// Every put replaces, whatever was expected.
	{"blob-put-is-upsert", blobs(
		"PutExpectZeroWhenPresentConflicts", "PutStaleOrFutureExpectConflicts", "PutNonZeroExpectWhenAbsentConflicts",
		"TombstoneKeepsVersion", "ConcurrentCreatesOneWins", "ConcurrentWritesOfOneReadOneWins",
		"ConcurrentTombstonesOfOneReadOneWins", "DeleteBlobsRemovesTombstonesAndVersions",
	)},
	// Forced: each racer waits between its check and its write until a
	// rival has checked too.
	{"blob-cas-not-atomic", blobs("ConcurrentCreatesOneWins", "ConcurrentWritesOfOneReadOneWins", "ConcurrentTombstonesOfOneReadOneWins")},
	// A tombstone removes the blob, and its version with it.
	{"blob-tombstone-resets-version", blobs("TombstoneKeepsVersion", "TombstonesAreListedWithSizeZero", "DeleteBlobsRemovesTombstonesAndVersions")},
	// A tombstone is written whatever was expected.
	{"blob-tombstone-skips-cas", blobs("PutStaleOrFutureExpectConflicts", "PutNonZeroExpectWhenAbsentConflicts", "ConcurrentTombstonesOfOneReadOneWins")},
	// Listed in the order the names were first stored.
	{"blob-list-unordered", blobs("ListIsInByteOrder", "ListPaginates")},
	// Listed in the order of a case-insensitive collation.
	{"blob-list-collation-order", blobs("ListIsInByteOrder", "ListPaginates")},
	{"blob-list-after-inclusive", blobs("ListPaginates")},
	{"blob-list-ignores-limit", blobs("ListPaginates")},
	{"blob-list-hides-tombstones", blobs("TombstonesAreListedWithSizeZero", "DeleteBlobsTouchesNoOtherUser")},
	// A limit below 1 lists nothing instead of being refused.
	{"blob-list-limit-unchecked", blobs("OutOfBoundsIsInvalid")},
	// DeleteBlobs also deletes the blobs of every user whose ID begins
	// with the user's, case-insensitively (a LIKE 'alice%').
	{"blob-delete-other-users", blobs("DeleteBlobsTouchesNoOtherUser")},
	// DeleteBlobs writes tombstones rather than removing the blobs.
	{"blob-delete-keeps-versions", blobs("DeleteBlobsRemovesTombstonesAndVersions")},
	{"blob-users-case-insensitive", blobs("UsersAreIsolated", "ListReturnsOnlyTheUsersBlobs")},
	{"blob-names-case-insensitive", blobs("NamesAreIsolated")},
	{"blob-names-truncated-at-nul", blobs("NamesAreIsolated")},
	{"blob-returns-shared-slice", blobs("GetReturnsCallersOwnCopy")},
	{"blob-retains-input", blobs("PutDoesNotRetainData")},
	{"blob-accepts-out-of-bounds", blobs("OutOfBoundsIsInvalid")},
	{"blob-ignores-context", blobs("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},
}

// blobs names clauses of the BlobStore group.
func blobs(clauses ...string) []string { return inGroup("BlobStore", clauses) }

func init() {
	for _, f := range blobFlaws {
		flaws = append(flaws, struct {
			flaw     string
			wantFail []string
		}{f.flaw, f.wantFail})
	}
}

var _ storage.BlobStore = (*flawedStore)(nil)

// flawedBlob is a blob as the flawedStore holds it, under its mu.
type flawedBlob struct {
	version uint64
	data    []byte
	seq     uint64 // when the name was first stored (flaw blob-list-unordered)
}

func (s *flawedStore) blobUser(userID string) string {
	if s.flaw == "blob-users-case-insensitive" {
		return strings.ToLower(userID)
	}
	return userID
}

func (s *flawedStore) blobName(name string) string {
	switch s.flaw {
	case "blob-names-case-insensitive":
		return strings.ToLower(name)
	case "blob-names-truncated-at-nul":
		name, _, _ = strings.Cut(name, "\x00")
	}
	return name
}

func (s *flawedStore) checkBlobArgs(ctx context.Context, userID, name string, data []byte) error {
	if err := ctx.Err(); err != nil && s.flaw != "blob-ignores-context" {
		return err
	}
	if s.flaw == "blob-accepts-out-of-bounds" {
		return nil
	}
	if userID == "" || len(userID) > storage.MaxUserIDLen || len(name) > storage.MaxBlobNameLen || len(data) > storage.MaxBlobDataLen {
		return fmt.Errorf("flawed: %w: blob arguments out of bounds", storage.ErrInvalid)
	}
	return nil
}

func (s *flawedStore) GetBlob(ctx context.Context, userID, name string) (storage.Blob, error) {
	if err := s.checkBlobArgs(ctx, userID, name, nil); err != nil {
		return storage.Blob{}, err
	}
	if name == "" && s.flaw != "blob-accepts-out-of-bounds" {
		return storage.Blob{}, fmt.Errorf("flawed: %w: empty blob name", storage.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[s.blobUser(userID)][s.blobName(name)]
	if !ok {
		return storage.Blob{}, storage.ErrNotFound
	}
	data := bytes.Clone(b.data)
	if s.flaw == "blob-returns-shared-slice" {
		data = b.data
	}
	return storage.Blob{UserID: userID, Name: name, Version: b.version, Data: data}, nil
}

func (s *flawedStore) PutBlob(ctx context.Context, userID, name string, data []byte, expect uint64) error {
	if err := s.checkBlobArgs(ctx, userID, name, data); err != nil {
		return err
	}
	if name == "" && s.flaw != "blob-accepts-out-of-bounds" {
		return fmt.Errorf("flawed: %w: empty blob name", storage.ErrInvalid)
	}
	own := append([]byte{}, data...)
	if s.flaw == "blob-retains-input" && data != nil {
		own = data
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, n := s.blobUser(userID), s.blobName(name)
	old, ok := s.blobs[u][n]
	skipCAS := s.flaw == "blob-put-is-upsert" || (s.flaw == "blob-tombstone-skips-cas" && len(data) == 0)
	if !skipCAS && old.version != expect {
		return storage.ErrConflict
	}
	if expect == ^uint64(0) {
		return storage.ErrConflict
	}
	if s.flaw == "blob-cas-not-atomic" {
		s.betweenReadAndWrite(ctx)
	}
	next := expect + 1
	if skipCAS {
		next = old.version + 1
	}
	if s.blobs == nil {
		s.blobs = map[string]map[string]flawedBlob{}
	}
	if s.blobs[u] == nil {
		s.blobs[u] = map[string]flawedBlob{}
	}
	if s.flaw == "blob-tombstone-resets-version" && len(data) == 0 {
		delete(s.blobs[u], n)
		return nil
	}
	seq := old.seq
	if !ok {
		s.blobSeq++
		seq = s.blobSeq
	}
	s.blobs[u][n] = flawedBlob{version: next, data: own, seq: seq}
	return nil
}

func (s *flawedStore) ListBlobs(ctx context.Context, userID, after string, limit int) ([]storage.BlobInfo, error) {
	if err := s.checkBlobArgs(ctx, userID, after, nil); err != nil {
		return nil, err
	}
	if limit < 1 && s.flaw != "blob-list-limit-unchecked" && s.flaw != "blob-accepts-out-of-bounds" {
		return nil, fmt.Errorf("flawed: %w: list limit below 1", storage.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	user := s.blobs[s.blobUser(userID)]
	var names []string
	for n, b := range user {
		if s.flaw == "blob-list-hides-tombstones" && len(b.data) == 0 {
			continue
		}
		if n > after || (s.flaw == "blob-list-after-inclusive" && n == after) {
			names = append(names, n)
		}
	}
	switch s.flaw {
	case "blob-list-unordered":
		slices.SortFunc(names, func(a, b string) int { return int(user[a].seq) - int(user[b].seq) })
	case "blob-list-collation-order":
		slices.SortFunc(names, func(a, b string) int {
			return strings.Compare(strings.ToLower(a), strings.ToLower(b))
		})
	default:
		slices.Sort(names)
	}
	if len(names) > limit && s.flaw != "blob-list-ignores-limit" {
		names = names[:max(limit, 0)]
	}
	infos := []storage.BlobInfo{}
	for _, n := range names {
		infos = append(infos, storage.BlobInfo{Name: n, Version: user[n].version, Size: len(user[n].data)})
	}
	return infos, nil
}

func (s *flawedStore) DeleteBlobs(ctx context.Context, userID string) error {
	if err := s.checkBlobArgs(ctx, userID, "", nil); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.blobUser(userID)
	switch s.flaw {
	case "blob-delete-other-users":
		for other := range s.blobs {
			if strings.HasPrefix(strings.ToLower(other), strings.ToLower(u)) {
				delete(s.blobs, other)
			}
		}
	case "blob-delete-keeps-versions":
		for n, b := range s.blobs[u] {
			s.blobs[u][n] = flawedBlob{version: b.version + 1, seq: b.seq}
		}
	default:
		delete(s.blobs, u)
	}
	return nil
}
