package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// RunBlobStore tests that a [storage.BlobStore] keeps its contract, one
// subtest per clause. It is for adapters that provide only this interface;
// [Run] calls it too, for stores that implement it. newStore must return
// an empty, isolated store on every call; cleanup goes through t.Cleanup.
//
// Besides the plain clauses (compare-and-swap puts, tombstones that keep
// their version and are listed with Size 0, copies in and out, a blob of
// exactly storage.MaxBlobDataLen bytes), the subtests try what SQL schemas
// get wrong: user IDs and names that a case-insensitive or space-padding
// collation would merge, names with NUL and bytes that are not UTF-8
// (names are bytes, compared and ordered byte for byte), a list order that
// a collation other than byte order would change ("B" before "a", "a b"
// before "a-b", "z" before "é"), expect values above math.MaxInt64 (a
// conflict, not an error), and a user ID and a name of exactly their
// longest, in multi-byte UTF-8. Pagination is walked with every limit
// from 1 up, and from an after that is not a stored name. DeleteBlobs is
// checked to remove tombstones and versions (the next put expects 0) and
// to leave alone users whose IDs a collation, a prefix match or a
// LIKE pattern would confuse with the user's.
//
// Three clauses race blobRacers writers against one name: creates
// (expect 0), and writes of values, or of values and tombstones mixed,
// that have all read the same version before any of them writes. Exactly
// one must succeed, the others conflict, and the blob is the winner's.
//
// Arguments out of bounds must be refused with an error wrapping
// storage.ErrInvalid, and nothing stored or deleted: an empty or
// over-long user ID or name, data over storage.MaxBlobDataLen, a list
// limit below 1 and an after over storage.MaxBlobNameLen.
func RunBlobStore(t *testing.T, newStore func(t *testing.T) storage.BlobStore) {
	runClauses(t, blobClauses, newStore)
}

// runBlobsIfImplemented is Run's BlobStore group: each clause takes a
// store from newStore and runs on it if it implements storage.BlobStore,
// and skips, saying so, if it does not.
func runBlobsIfImplemented(t *testing.T, newStore func(t *testing.T) storage.Store) {
	RunBlobStore(t, func(t *testing.T) storage.BlobStore {
		s := newStore(t)
		bs, ok := s.(storage.BlobStore)
		if !ok {
			t.Skipf("the store (a %T) does not implement storage.BlobStore", s)
		}
		return bs
	})
}

// blobClauses are the BlobStore subtests, in the order of the contract.
var blobClauses = []clause[storage.BlobStore]{
	// Get and put.
	{"GetAbsentIsErrNotFound", blobGetAbsentIsErrNotFound},
	{"FirstPutCreatesVersion1", blobFirstPutCreatesVersion1},
	{"PutExpectZeroWhenPresentConflicts", blobPutExpectZeroWhenPresentConflicts},
	{"PutStaleOrFutureExpectConflicts", blobPutStaleOrFutureExpectConflicts},
	{"PutNonZeroExpectWhenAbsentConflicts", blobPutNonZeroExpectWhenAbsentConflicts},
	{"VersionGrowsByOne", blobVersionGrowsByOne},

	// Tombstones.
	{"TombstoneKeepsVersion", blobTombstoneKeepsVersion},
	{"TombstonesAreListedWithSizeZero", blobTombstonesAreListedWithSizeZero},

	// Concurrency.
	{"ConcurrentCreatesOneWins", blobConcurrentCreatesOneWins},
	{"ConcurrentWritesOfOneReadOneWins", blobRacingWritesOfOneReadOneWins},
	{"ConcurrentTombstonesOfOneReadOneWins", blobRacingTombstonesOfOneReadOneWins},

	// List.
	{"ListOfNoneIsEmpty", blobListOfNoneIsEmpty},
	{"ListIsInByteOrder", blobListIsInByteOrder},
	{"ListPaginates", blobListPaginates},
	{"ListReturnsOnlyTheUsersBlobs", blobListReturnsOnlyTheUsersBlobs},

	// DeleteBlobs.
	{"DeleteBlobsRemovesTombstonesAndVersions", blobDeleteBlobsRemovesTombstonesAndVersions},
	{"DeleteBlobsTouchesNoOtherUser", blobDeleteBlobsTouchesNoOtherUser},
	{"DeleteBlobsOfNoneIsNil", blobDeleteBlobsOfNoneIsNil},

	// Byte slices are not retained, and returned ones are the caller's.
	{"PutDoesNotRetainData", blobPutDoesNotRetainData},
	{"GetReturnsCallersOwnCopy", blobGetReturnsCallersOwnCopy},

	// Isolation; opaque data; values at and past the bounds.
	{"UsersAreIsolated", blobUsersAreIsolated},
	{"NamesAreIsolated", blobNamesAreIsolated},
	{"BinaryDataRoundTrips", blobBinaryDataRoundTrips},
	{"LargestDataRoundTrips", blobLargestDataRoundTrips},
	{"LongestUserIDAndNameRoundTrip", blobLongestUserIDAndNameRoundTrip},
	{"OutOfBoundsIsInvalid", blobOutOfBoundsIsInvalid},

	// Every method honours its context.
	{"CanceledContextIsHonoured", canceledContextIsHonoured(blobContextIsHonoured)},
	{"ExpiredDeadlineIsHonoured", expiredDeadlineIsHonoured(blobContextIsHonoured)},
}

// blobRacers is the number of racers of the BlobStore race clauses: as
// many devices of one user writing one blob at once.
const blobRacers = 20

// blobName is the name most clauses use.
const blobName = "vault"

func blobGetAbsentIsErrNotFound(t *testing.T, s storage.BlobStore) {
	wantNoBlob(t, s, user, blobName)
	mustPutBlob(t, s, user, "other", []byte("other"), 0)
	mustPutBlob(t, s, "bob", blobName, []byte("bob's"), 0)
	wantNoBlob(t, s, user, blobName)
}

func blobFirstPutCreatesVersion1(t *testing.T, s storage.BlobStore) {
	mustPutBlob(t, s, user, blobName, []byte("sealed"), 0)
	wantBlob(t, s, user, blobName, 1, []byte("sealed"))
}

func blobPutExpectZeroWhenPresentConflicts(t *testing.T, s storage.BlobStore) {
	mustPutBlob(t, s, user, blobName, []byte("original"), 0)
	wantConflict(t, s.PutBlob(t.Context(), user, blobName, []byte("intruder"), 0), "PutBlob(expect 0) over version 1")
	wantBlob(t, s, user, blobName, 1, []byte("original"))
}

func blobPutStaleOrFutureExpectConflicts(t *testing.T, s storage.BlobStore) {
	mustPutBlob(t, s, user, blobName, []byte("v1"), 0)
	mustPutBlob(t, s, user, blobName, []byte("v2"), 1)
	mustPutBlob(t, s, user, blobName, []byte("v3"), 2)
	// The largest values catch adapters that wrap expect+1, or whose
	// signed version column cannot hold the value (a conflict too, not an
	// infrastructure error).
	for _, expect := range []uint64{1, 2, 4, 5, 1000, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
		wantConflict(t, s.PutBlob(t.Context(), user, blobName, []byte("wrong"), expect), fmt.Sprintf("PutBlob(expect %d) over version 3", expect))
		wantConflict(t, s.PutBlob(t.Context(), user, blobName, nil, expect), fmt.Sprintf("PutBlob(tombstone, expect %d) over version 3", expect))
	}
	wantBlob(t, s, user, blobName, 3, []byte("v3"))
}

func blobPutNonZeroExpectWhenAbsentConflicts(t *testing.T, s storage.BlobStore) {
	mustPutBlob(t, s, user, "other", []byte("other"), 0) // version 1 of another name
	for _, expect := range []uint64{1, 2, math.MaxUint64} {
		wantConflict(t, s.PutBlob(t.Context(), user, blobName, []byte("no such blob"), expect), fmt.Sprintf("PutBlob(expect %d) with no blob", expect))
		wantConflict(t, s.PutBlob(t.Context(), user, blobName, nil, expect), fmt.Sprintf("PutBlob(tombstone, expect %d) with no blob", expect))
		wantNoBlob(t, s, user, blobName)
	}
}

func blobVersionGrowsByOne(t *testing.T, s storage.BlobStore) {
	for v := uint64(1); v <= 10; v++ {
		data := fmt.Appendf(nil, "version %d", v)
		mustPutBlob(t, s, user, blobName, data, v-1)
		wantBlob(t, s, user, blobName, v, data)
	}
}

// blobTombstoneKeepsVersion: a value deleted by a tombstone reads as a
// tombstone at the next version (not ErrNotFound), puts that expect 0 or
// the version before the tombstone conflict, and the next value goes on
// from the tombstone's version. A tombstone of a tombstone is a version
// too, and nil and empty data are both tombstones.
func blobTombstoneKeepsVersion(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	mustPutBlob(t, s, user, blobName, []byte("v1"), 0)
	mustPutBlob(t, s, user, blobName, nil, 1)
	wantBlob(t, s, user, blobName, 2, nil)
	for _, expect := range []uint64{0, 1, 3} {
		wantConflict(t, s.PutBlob(ctx, user, blobName, []byte("stale"), expect), fmt.Sprintf("PutBlob(expect %d) over a tombstone at version 2", expect))
	}
	wantBlob(t, s, user, blobName, 2, nil)
	mustPutBlob(t, s, user, blobName, []byte{}, 2)
	wantBlob(t, s, user, blobName, 3, nil)
	mustPutBlob(t, s, user, blobName, []byte("back"), 3)
	wantBlob(t, s, user, blobName, 4, []byte("back"))
	// A tombstone as the first version of a name.
	mustPutBlob(t, s, user, "never", nil, 0)
	wantBlob(t, s, user, "never", 1, nil)
	wantConflict(t, s.PutBlob(ctx, user, "never", []byte("x"), 0), "PutBlob(expect 0) over a tombstone at version 1")
}

func blobTombstonesAreListedWithSizeZero(t *testing.T, s storage.BlobStore) {
	mustPutBlob(t, s, user, "a", []byte("12345"), 0)
	mustPutBlob(t, s, user, "b", []byte("gone"), 0)
	mustPutBlob(t, s, user, "b", nil, 1)
	mustPutBlob(t, s, user, "c", nil, 0)
	wantList(t, s, user, "", 10, []storage.BlobInfo{
		{Name: "a", Version: 1, Size: 5},
		{Name: "b", Version: 2, Size: 0},
		{Name: "c", Version: 1, Size: 0},
	})
}

func blobConcurrentCreatesOneWins(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	errs := raceN(ctx, blobRacers, func(ctx context.Context, i int) error {
		return s.PutBlob(ctx, user, blobName, racerData(i), 0)
	})
	if w := oneWinner(t, errs); w >= 0 {
		wantBlob(t, s, user, blobName, 1, racerData(w))
	}
}

// blobRacingWritesOfOneReadOneWins (ConcurrentWritesOfOneReadOneWins)
// is one blob written by blobRacers devices at once: each has read the
// blob (the reads are made, one per racer, before the race starts, so
// every read comes before any write whatever the scheduler does), and all
// then write, each expecting the version it read. Exactly one write
// succeeds. (The clauses whose calls overlap are named Concurrent…, which
// adapters' tests may select by name.)
func blobRacingWritesOfOneReadOneWins(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	mustPutBlob(t, s, user, blobName, []byte("v1"), 0)
	mustPutBlob(t, s, user, blobName, []byte("v2"), 1)
	reads := readBlobs(t, s, blobRacers)
	errs := raceN(ctx, blobRacers, func(ctx context.Context, i int) error {
		return s.PutBlob(ctx, user, blobName, racerData(i), reads[i].Version)
	})
	if w := oneWinner(t, errs); w >= 0 {
		wantBlob(t, s, user, blobName, 3, racerData(w))
	}
}

// blobRacingTombstonesOfOneReadOneWins is blobRacingWritesOfOneReadOneWins
// with every other racer deleting the value (a tombstone) instead: a
// delete is a compare-and-swap write like any other.
func blobRacingTombstonesOfOneReadOneWins(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	mustPutBlob(t, s, user, blobName, []byte("v1"), 0)
	reads := readBlobs(t, s, blobRacers)
	data := func(i int) []byte {
		if i%2 == 0 {
			return nil
		}
		return racerData(i)
	}
	errs := raceN(ctx, blobRacers, func(ctx context.Context, i int) error {
		return s.PutBlob(ctx, user, blobName, data(i), reads[i].Version)
	})
	if w := oneWinner(t, errs); w >= 0 {
		wantBlob(t, s, user, blobName, 2, data(w))
	}
}

// readBlobs reads user's blobName n times.
func readBlobs(t *testing.T, s storage.BlobStore, n int) []storage.Blob {
	t.Helper()
	reads := make([]storage.Blob, n)
	for i := range reads {
		b, err := s.GetBlob(t.Context(), user, blobName)
		if err != nil {
			t.Fatalf("GetBlob: %v", err)
		}
		reads[i] = b
	}
	return reads
}

func blobListOfNoneIsEmpty(t *testing.T, s storage.BlobStore) {
	wantList(t, s, user, "", 10, nil)
	mustPutBlob(t, s, "bob", blobName, []byte("bob's"), 0)
	wantList(t, s, user, "", 10, nil)
	wantList(t, s, user, "m", 1, nil)
}

// byteOrderNames are names whose byte order a collation would change:
// upper case before lower, space before '-' before upper case before
// '_', a prefix before
// its extensions, NUL and other control bytes early, "é" (0xc3 0xa9) and
// a byte that is not UTF-8 after "z". They are listed in byte order.
func byteOrderNames() []string {
	names := []string{
		"\x00", "\x01", "\t", " ", "B", "Z", "a", "a\x00", "a\x00b", "a b", "a-b", "aB",
		"a_b", "ab", "b", "z", "\u00e9", "\xf0\x9f\x98\x80", "\xff", "\xff\xff",
	}
	if !slices.IsSorted(names) {
		panic("storagetest: byteOrderNames are not in byte order")
	}
	return names
}

// shuffled returns names in an order that is neither theirs nor its
// reverse: a store that lists in insertion order fails.
func shuffled(names []string) []string {
	out := make([]string, 0, len(names))
	for i := 0; i < len(names); i += 2 {
		out = append(out, names[len(names)-1-i])
	}
	for i := 1; i < len(names); i += 2 {
		out = append(out, names[len(names)-1-i])
	}
	return out
}

func blobListIsInByteOrder(t *testing.T, s storage.BlobStore) {
	names := byteOrderNames()
	var want []storage.BlobInfo
	for _, n := range shuffled(names) {
		mustPutBlob(t, s, user, n, []byte("of "+n), 0)
	}
	for _, n := range names {
		want = append(want, storage.BlobInfo{Name: n, Version: 1, Size: len("of " + n)})
	}
	wantList(t, s, user, "", len(names)+5, want)
}

// blobListPaginates walks the user's blobs with every limit from 1 to
// past their number, each page starting after the last name of the one
// before, and lists after names that are not stored.
func blobListPaginates(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	names := byteOrderNames()
	var all []storage.BlobInfo
	for i, n := range shuffled(names) {
		mustPutBlob(t, s, user, n, pattern(uint64(i), i), 0)
	}
	for _, n := range names {
		b, err := s.GetBlob(ctx, user, n)
		if err != nil {
			t.Fatalf("GetBlob(%q): %v", n, err)
		}
		all = append(all, storage.BlobInfo{Name: n, Version: 1, Size: len(b.Data)})
	}
	for limit := 1; limit <= len(names)+1; limit++ {
		var got []storage.BlobInfo
		after := ""
		for page := 0; ; page++ {
			if page > len(names) {
				t.Fatalf("limit %d: more than %d pages", limit, len(names))
			}
			infos, err := s.ListBlobs(ctx, user, after, limit)
			if err != nil {
				t.Fatalf("ListBlobs(after %q, limit %d): %v", after, limit, err)
			}
			if len(infos) > limit {
				t.Fatalf("ListBlobs(after %q, limit %d): %d blobs", after, limit, len(infos))
			}
			got = append(got, infos...)
			if len(infos) < limit {
				break
			}
			after = infos[len(infos)-1].Name
		}
		if !slices.Equal(got, all) {
			t.Fatalf("pages of %d: %s", limit, describeInfos(got, all))
		}
	}
	// After a name that is not stored, between two that are, and after
	// the last.
	for _, c := range []struct {
		after string
		from  int // index in names of the first listed
	}{
		{"A", 4}, {"a\x00a", 8}, {"aA", 11}, {"b\x00", 15}, {"\xfe", 18}, {"\xff\xff", len(names)}, {"\xff\xff\xff", len(names)},
	} {
		wantList(t, s, user, c.after, len(names), all[c.from:])
		if c.from < len(names) {
			wantList(t, s, user, c.after, 1, all[c.from:c.from+1])
		}
	}
}

func blobListReturnsOnlyTheUsersBlobs(t *testing.T, s storage.BlobStore) {
	users := []string{"alice", "Alice", "alice ", "alic", "alice2", "%", "_"}
	for i, u := range users {
		for j := range i + 1 {
			mustPutBlob(t, s, u, fmt.Sprintf("n%d", j), []byte(u), 0)
		}
	}
	for i, u := range users {
		var want []storage.BlobInfo
		for j := range i + 1 {
			want = append(want, storage.BlobInfo{Name: fmt.Sprintf("n%d", j), Version: 1, Size: len(u)})
		}
		wantList(t, s, u, "", 100, want)
	}
}

func blobDeleteBlobsRemovesTombstonesAndVersions(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	mustPutBlob(t, s, user, "a", []byte("v1"), 0)
	mustPutBlob(t, s, user, "a", []byte("v2"), 1)
	mustPutBlob(t, s, user, "b", []byte("v1"), 0)
	mustPutBlob(t, s, user, "b", nil, 1) // a tombstone
	if err := s.DeleteBlobs(ctx, user); err != nil {
		t.Fatalf("DeleteBlobs: %v", err)
	}
	wantNoBlob(t, s, user, "a")
	wantNoBlob(t, s, user, "b")
	wantList(t, s, user, "", 10, nil)
	// The versions are gone: a put that expects them conflicts, and the
	// next value of a name is version 1 again.
	wantConflict(t, s.PutBlob(ctx, user, "a", []byte("stale"), 2), "PutBlob(expect 2) after DeleteBlobs")
	wantConflict(t, s.PutBlob(ctx, user, "b", []byte("stale"), 2), "PutBlob(expect 2) after DeleteBlobs")
	mustPutBlob(t, s, user, "a", []byte("new"), 0)
	mustPutBlob(t, s, user, "b", nil, 0)
	wantBlob(t, s, user, "a", 1, []byte("new"))
	wantBlob(t, s, user, "b", 1, nil)
	// Deleting again removes them again.
	if err := s.DeleteBlobs(ctx, user); err != nil {
		t.Fatalf("DeleteBlobs: %v", err)
	}
	wantList(t, s, user, "", 10, nil)
}

// blobDeleteBlobsTouchesNoOtherUser deletes one user's blobs among users
// whose IDs a collation, a trailing-space rule, a prefix match or a LIKE
// pattern would confuse with the user's ("%" and "_" are LIKE's
// wildcards).
func blobDeleteBlobsTouchesNoOtherUser(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	others := []string{"Alice", "alice ", "alic", "alice2", "%", "_lice", "b"}
	for _, u := range append([]string{user}, others...) {
		mustPutBlob(t, s, u, blobName, []byte("of "+u), 0)
		mustPutBlob(t, s, u, "tomb", nil, 0)
	}
	if err := s.DeleteBlobs(ctx, user); err != nil {
		t.Fatalf("DeleteBlobs: %v", err)
	}
	wantList(t, s, user, "", 10, nil)
	for _, u := range others {
		wantBlob(t, s, u, blobName, 1, []byte("of "+u))
		wantList(t, s, u, "", 10, []storage.BlobInfo{{Name: "tomb", Version: 1}, {Name: blobName, Version: 1, Size: len("of " + u)}})
	}
	for _, id := range []string{"%", "_lice"} {
		if err := s.DeleteBlobs(ctx, id); err != nil {
			t.Fatalf("DeleteBlobs(%q): %v", id, err)
		}
	}
	for _, u := range []string{"Alice", "alice ", "alic", "alice2", "b"} {
		wantBlob(t, s, u, blobName, 1, []byte("of "+u))
	}
}

func blobDeleteBlobsOfNoneIsNil(t *testing.T, s storage.BlobStore) {
	mustPutBlob(t, s, "bob", blobName, []byte("bob's"), 0)
	if err := s.DeleteBlobs(t.Context(), user); err != nil {
		t.Errorf("DeleteBlobs of a user with no blobs: %v, want nil", err)
	}
	wantBlob(t, s, "bob", blobName, 1, []byte("bob's"))
}

func blobPutDoesNotRetainData(t *testing.T, s storage.BlobStore) {
	data := []byte("sealed blob")
	mustPutBlob(t, s, user, blobName, data, 0)
	clear(data)
	wantBlob(t, s, user, blobName, 1, []byte("sealed blob"))
	data = []byte("second blob")
	mustPutBlob(t, s, user, blobName, data, 1)
	copy(data, "XXXXXX")
	wantBlob(t, s, user, blobName, 2, []byte("second blob"))
}

func blobGetReturnsCallersOwnCopy(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	mustPutBlob(t, s, user, blobName, []byte("sealed blob"), 0)
	first, err := s.GetBlob(ctx, user, blobName)
	if err != nil {
		t.Fatalf("GetBlob: %v", err)
	}
	clear(first.Data)
	wantBlob(t, s, user, blobName, 1, []byte("sealed blob"))
	a, errA := s.GetBlob(ctx, user, blobName)
	b, errB := s.GetBlob(ctx, user, blobName)
	if errA != nil || errB != nil {
		t.Fatalf("GetBlob: %v, %v", errA, errB)
	}
	clear(a.Data)
	if !sameBytes(b.Data, []byte("sealed blob")) {
		t.Errorf("changing the data of one GetBlob result changed another's: %s", diff(b.Data, []byte("sealed blob")))
	}
}

func blobUsersAreIsolated(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	users := []string{"alice", "Alice", "ALICE", "alice ", "alice2", "al", "\u00e9", "e\u0301"}
	for i, u := range users {
		for v := range uint64(i) + 1 {
			mustPutBlob(t, s, u, blobName, []byte("of "+u), v)
		}
	}
	for i, u := range users {
		wantBlob(t, s, u, blobName, uint64(i)+1, []byte("of "+u))
	}
	wantConflict(t, s.PutBlob(ctx, "alice", blobName, []byte("x"), 0), `PutBlob("alice", expect 0) over version 1`)
	mustPutBlob(t, s, "alice", blobName, nil, 1)
	wantBlob(t, s, "alice", blobName, 2, nil)
	for i, u := range users[1:] {
		wantBlob(t, s, u, blobName, uint64(i)+2, []byte("of "+u))
	}
	wantNoBlob(t, s, "bob", blobName)
}

// blobNamesAreIsolated stores one user's blobs under names that a
// case-insensitive or space-padding collation, a text column that stops
// at NUL or refuses what is not UTF-8, or a prefix match would merge,
// each at its own version.
func blobNamesAreIsolated(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	names := []string{"notes", "Notes", "NOTES", "notes ", "note", "notes2", "\u00e9", "e\u0301", "a", "a\x00", "a\x00b", "a\x00c", "\xff", "\xc3\x28"}
	for i, n := range names {
		for v := range uint64(i) + 1 {
			mustPutBlob(t, s, user, n, []byte("blob "+n), v)
		}
	}
	for i, n := range names {
		wantBlob(t, s, user, n, uint64(i)+1, []byte("blob "+n))
	}
	mustPutBlob(t, s, user, "notes", nil, 1)
	wantConflict(t, s.PutBlob(ctx, user, "a", []byte("x"), 0), `PutBlob("a", expect 0) over version 9`)
	wantBlob(t, s, user, "notes", 2, nil)
	for i, n := range names[1:] {
		wantBlob(t, s, user, n, uint64(i)+2, []byte("blob "+n))
	}
	wantNoBlob(t, s, user, "notes\x00")
	wantNoBlob(t, s, user, "b")
	infos, err := s.ListBlobs(ctx, user, "", 100)
	if err != nil {
		t.Fatalf("ListBlobs: %v", err)
	}
	if len(infos) != len(names) {
		t.Errorf("ListBlobs: %d blobs, want %d", len(infos), len(names))
	}
}

func blobBinaryDataRoundTrips(t *testing.T, s storage.BlobStore) {
	data := everyByte()
	mustPutBlob(t, s, user, blobName, data, 0)
	wantBlob(t, s, user, blobName, 1, data)
	data = []byte{0x00, 0xff, 0xfe, 0x00, 0xc3, 0x28, 0x00}
	mustPutBlob(t, s, user, blobName, data, 1)
	wantBlob(t, s, user, blobName, 2, data)
	wantList(t, s, user, "", 1, []storage.BlobInfo{{Name: blobName, Version: 2, Size: len(data)}})
}

func blobLargestDataRoundTrips(t *testing.T, s storage.BlobStore) {
	data := pattern(1, storage.MaxBlobDataLen)
	mustPutBlob(t, s, user, blobName, data, 0)
	wantBlob(t, s, user, blobName, 1, data)
	data = pattern(2, storage.MaxBlobDataLen)
	mustPutBlob(t, s, user, blobName, data, 1)
	wantBlob(t, s, user, blobName, 2, data)
	wantList(t, s, user, "", 1, []storage.BlobInfo{{Name: blobName, Version: 2, Size: storage.MaxBlobDataLen}})
}

// longestBlobName returns a valid UTF-8 name of exactly
// storage.MaxBlobNameLen bytes, mostly of multi-byte characters, ending
// in "a".
func longestBlobName() string {
	var b strings.Builder
	for b.Len()+9 <= storage.MaxBlobNameLen-1 {
		b.WriteString("é€😀")
	}
	for b.Len() < storage.MaxBlobNameLen-1 {
		b.WriteString("z")
	}
	b.WriteString("a")
	return b.String()
}

func blobLongestUserIDAndNameRoundTrip(t *testing.T, s storage.BlobStore) {
	id, name := longestUserID(), longestBlobName()
	otherName := name[:len(name)-1] + "b"
	otherID := id[:len(id)-1] + "b"
	mustPutBlob(t, s, id, name, []byte("long"), 0)
	mustPutBlob(t, s, id, otherName, []byte("other name"), 0)
	mustPutBlob(t, s, otherID, name, []byte("other user"), 0)
	mustPutBlob(t, s, id, name, []byte("longer"), 1)
	wantBlob(t, s, id, name, 2, []byte("longer"))
	wantBlob(t, s, id, otherName, 1, []byte("other name"))
	wantBlob(t, s, otherID, name, 1, []byte("other user"))
	wantList(t, s, id, "", 10, []storage.BlobInfo{{Name: name, Version: 2, Size: 6}, {Name: otherName, Version: 1, Size: 10}})
	wantList(t, s, id, name, 10, []storage.BlobInfo{{Name: otherName, Version: 1, Size: 10}})
	if err := s.DeleteBlobs(t.Context(), id); err != nil {
		t.Fatalf("DeleteBlobs: %v", err)
	}
	wantNoBlob(t, s, id, name)
	wantBlob(t, s, otherID, name, 1, []byte("other user"))
}

// blobOutOfBoundsIsInvalid checks that each method refuses arguments out
// of bounds with an error wrapping storage.ErrInvalid (and neither
// ErrNotFound nor ErrConflict), and that nothing is stored or deleted: in
// particular not under the first storage.MaxUserIDLen bytes of an
// over-long user ID, nor the first storage.MaxBlobNameLen bytes of an
// over-long name.
func blobOutOfBoundsIsInvalid(t *testing.T, s storage.BlobStore) {
	ctx := t.Context()
	longID := longestUserID() + "a"
	cutID := longID[:storage.MaxUserIDLen]
	longName := longestBlobName() + "a"
	cutName := longName[:storage.MaxBlobNameLen]
	mustPutBlob(t, s, cutID, blobName, []byte("kept"), 0)
	mustPutBlob(t, s, user, cutName, []byte("kept"), 0)
	tooBig := pattern(3, storage.MaxBlobDataLen+1)
	for _, c := range []struct {
		call string
		err  func() error
	}{
		{"GetBlob(empty user ID)", func() error { _, err := s.GetBlob(ctx, "", blobName); return err }},
		{"GetBlob(user ID over MaxUserIDLen)", func() error { _, err := s.GetBlob(ctx, longID, blobName); return err }},
		{"GetBlob(empty name)", func() error { _, err := s.GetBlob(ctx, user, ""); return err }},
		{"GetBlob(name over MaxBlobNameLen)", func() error { _, err := s.GetBlob(ctx, user, longName); return err }},
		{"PutBlob(empty user ID)", func() error { return s.PutBlob(ctx, "", blobName, []byte("x"), 0) }},
		{"PutBlob(user ID over MaxUserIDLen, expect 0)", func() error { return s.PutBlob(ctx, longID, blobName, []byte("x"), 0) }},
		{"PutBlob(user ID over MaxUserIDLen, expect 1)", func() error { return s.PutBlob(ctx, longID, blobName, []byte("x"), 1) }},
		{"PutBlob(empty name)", func() error { return s.PutBlob(ctx, user, "", []byte("x"), 0) }},
		{"PutBlob(name over MaxBlobNameLen, expect 0)", func() error { return s.PutBlob(ctx, user, longName, []byte("x"), 0) }},
		{"PutBlob(name over MaxBlobNameLen, expect 1)", func() error { return s.PutBlob(ctx, user, longName, []byte("x"), 1) }},
		{"PutBlob(data over MaxBlobDataLen, expect 0)", func() error { return s.PutBlob(ctx, "bob", blobName, tooBig, 0) }},
		{"PutBlob(data over MaxBlobDataLen, expect 1)", func() error { return s.PutBlob(ctx, cutID, blobName, tooBig, 1) }},
		{"ListBlobs(empty user ID)", func() error { _, err := s.ListBlobs(ctx, "", "", 10); return err }},
		{"ListBlobs(user ID over MaxUserIDLen)", func() error { _, err := s.ListBlobs(ctx, longID, "", 10); return err }},
		{"ListBlobs(limit 0)", func() error { _, err := s.ListBlobs(ctx, user, "", 0); return err }},
		{"ListBlobs(limit -1)", func() error { _, err := s.ListBlobs(ctx, user, "", -1); return err }},
		{"ListBlobs(limit MinInt)", func() error { _, err := s.ListBlobs(ctx, user, "", math.MinInt); return err }},
		{"ListBlobs(after over MaxBlobNameLen)", func() error { _, err := s.ListBlobs(ctx, user, longName, 10); return err }},
		{"DeleteBlobs(empty user ID)", func() error { return s.DeleteBlobs(ctx, "") }},
		{"DeleteBlobs(user ID over MaxUserIDLen)", func() error { return s.DeleteBlobs(ctx, longID) }},
	} {
		err := c.err()
		if !errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("%s: %v, want an error wrapping storage.ErrInvalid (and neither ErrNotFound nor ErrConflict)", c.call, err)
		}
	}
	wantNoBlob(t, s, "bob", blobName)
	wantBlob(t, s, cutID, blobName, 1, []byte("kept"))
	wantBlob(t, s, user, cutName, 1, []byte("kept"))
	wantList(t, s, user, "", 10, []storage.BlobInfo{{Name: cutName, Version: 1, Size: 4}})
}

// blobContextIsHonoured checks that every method of s, called with a
// context that is already done, fails with want and changes nothing.
func blobContextIsHonoured(t *testing.T, s storage.BlobStore, done context.Context, want error) {
	t.Helper()
	if err := s.PutBlob(done, "bob", blobName, []byte("must not be written"), 0); !errors.Is(err, want) {
		t.Errorf("PutBlob (create) with a done context: %v, want an error matching %v", err, want)
	}
	wantNoBlob(t, s, "bob", blobName)
	mustPutBlob(t, s, user, blobName, []byte("v1"), 0)
	if _, err := s.GetBlob(done, user, blobName); !errors.Is(err, want) {
		t.Errorf("GetBlob with a done context: %v, want an error matching %v", err, want)
	}
	if _, err := s.ListBlobs(done, user, "", 10); !errors.Is(err, want) {
		t.Errorf("ListBlobs with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.PutBlob(done, user, blobName, []byte("must not be written"), 1); !errors.Is(err, want) {
		t.Errorf("PutBlob (update) with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.PutBlob(done, user, blobName, nil, 1); !errors.Is(err, want) {
		t.Errorf("PutBlob (tombstone) with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.DeleteBlobs(done, user); !errors.Is(err, want) {
		t.Errorf("DeleteBlobs with a done context: %v, want an error matching %v", err, want)
	}
	wantBlob(t, s, user, blobName, 1, []byte("v1"))
}

func mustPutBlob(t *testing.T, s storage.BlobStore, userID, name string, data []byte, expect uint64) {
	t.Helper()
	if err := s.PutBlob(t.Context(), userID, name, data, expect); err != nil {
		t.Fatalf("PutBlob(%s, %q, %d bytes, expect %d): %v", shortID(userID), shortName(name), len(data), expect, err)
	}
}

// wantBlob checks that the user's blob of this name has this version and
// data (empty data: a tombstone, whose Data may be nil or empty).
func wantBlob(t *testing.T, s storage.BlobStore, userID, name string, version uint64, data []byte) {
	t.Helper()
	b, err := s.GetBlob(t.Context(), userID, name)
	if err != nil {
		t.Fatalf("GetBlob(%s, %q): %v, want version %d", shortID(userID), shortName(name), err, version)
	}
	if b.UserID != userID || b.Name != name {
		t.Errorf("GetBlob(%s, %q) returned the blob %q of user %s", shortID(userID), shortName(name), shortName(b.Name), shortID(b.UserID))
	}
	if b.Version != version {
		t.Errorf("GetBlob(%s, %q): version %d, want %d", shortID(userID), shortName(name), b.Version, version)
	}
	if !sameBytes(b.Data, data) {
		t.Errorf("GetBlob(%s, %q): data differs from what was stored: %s", shortID(userID), shortName(name), diff(b.Data, data))
	}
}

func wantNoBlob(t *testing.T, s storage.BlobStore, userID, name string) {
	t.Helper()
	b, err := s.GetBlob(t.Context(), userID, name)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetBlob(%s, %q): version %d, error %v; want storage.ErrNotFound", shortID(userID), shortName(name), b.Version, err)
	}
}

// wantList checks that ListBlobs(userID, after, limit) returns want (nil:
// an empty list, and no error).
func wantList(t *testing.T, s storage.BlobStore, userID, after string, limit int, want []storage.BlobInfo) {
	t.Helper()
	got, err := s.ListBlobs(t.Context(), userID, after, limit)
	if err != nil {
		t.Fatalf("ListBlobs(%s, after %q, limit %d): %v", shortID(userID), shortName(after), limit, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListBlobs(%s, after %q, limit %d): %s", shortID(userID), shortName(after), limit, describeInfos(got, want))
	}
}

// describeInfos describes how the list got differs from want.
func describeInfos(got, want []storage.BlobInfo) string {
	show := func(infos []storage.BlobInfo) string {
		var b strings.Builder
		for i, in := range infos {
			if i == 8 {
				fmt.Fprintf(&b, " … (%d in all)", len(infos))
				break
			}
			fmt.Fprintf(&b, " %q v%d %dB", shortName(in.Name), in.Version, in.Size)
		}
		return "[" + b.String() + " ]"
	}
	return fmt.Sprintf("got %s, want %s", show(got), show(want))
}

// shortName cuts a blob name for a message.
func shortName(name string) string {
	if len(name) > 24 {
		return name[:24] + "…"
	}
	return name
}
