// Package memstore keeps keyhold's state in memory: the reference
// implementation of the interfaces in package storage.
//
// For most use cases, use memstore in tests and in programs that run as a
// single process and may lose their state at exit; create one store with
// [New] and pass it wherever a [storage.Store] or one of its parts is
// wanted. For state that must survive a restart or be shared by several
// processes, use [github.com/keyhold/keyhold/storage/sqlstore].
//
// # Contracts
//
// A [Store] keeps every clause of the contracts in package storage, and
// passes [github.com/keyhold/keyhold/storage/storagetest.Run]. It is safe
// for concurrent use: each method runs under one lock, so compare-and-swap
// writes are atomic, and a session or refresh family is stored and indexed
// under its user in the same critical section, as a passkey record and
// its index entries (by user handle, by credential ID) are. Byte slices are copied on
// the way in and on the way out. A method whose context is already done
// returns the context's error before doing anything. Arguments keyhold
// never passes are refused with an error wrapping [storage.ErrInvalid]: an
// empty user ID or one longer than [storage.MaxUserIDLen] bytes, vault
// data longer than [storage.MaxVaultDataLen] bytes, factor data longer
// than [storage.MaxFactorDataLen] bytes, passkey records out of the
// bounds of [storage.PasskeyRecord] (user handles of another length than
// [storage.PasskeyHandleLen], credential IDs empty, longer than
// [storage.MaxCredentialIDLen], listed twice or more than
// [storage.MaxPasskeysPerUser], data longer than
// [storage.MaxPasskeyDataLen]), session and
// refresh-family IDs of another length than [storage.SessionIDLen], and
// their data longer than [storage.MaxSessionDataLen] bytes, blob names
// empty or longer than [storage.MaxBlobNameLen] bytes and blob data
// longer than [storage.MaxBlobDataLen] bytes.
//
// Blobs ([storage.BlobStore]) are kept in a map by user, then by name,
// under the same lock; ListBlobs sorts the user's names on every call.
//
// Challenges ([storage.ChallengeStore]) are kept in a map under the same
// lock: a take reads and removes one in a single critical section, so of
// concurrent takes exactly one gets it. A challenge is absent from its
// Expires on, by the process's clock, whether or not it has been
// removed; every put also examines up to 8 other challenges and removes
// those that have expired. A taken, replaced or removed challenge's data
// is overwritten with zeros. IDs of another length than
// [storage.ChallengeIDLen], empty data or data over
// [storage.MaxChallengeDataLen] bytes, and an Expires not in the future
// or more than [storage.MaxChallengeLifetime] ahead are refused with
// [storage.ErrInvalid].
//
// Sessions and refresh families expire by the process's clock
// ([time.Now]): from their Expires on they are absent. An expired one is
// removed when a method meets it (reading it, listing its user's, writing
// its ID), and every 16th write of a session (or of a family) examines up
// to 64 others and removes those that have expired, so expired entries
// that nobody asks for again take a bounded share of the memory, with no
// background goroutine.
//
// # Rate limits and lockouts
//
// Rate-limiter state ([storage.RateStore]) and lockout state
// ([storage.LockoutStore]) are decided by [storage.DecideRate] and
// [storage.DecideAttempt] under the Store's lock, so of concurrent
// decisions on one key none is lost. Their times are the callers' (the
// requests' Now), never the process clock. A state whose TAT or Expires is
// not after the Now of a write is absent: the write that meets it reuses
// its entry in place, and once a table is half full every write of a new
// key first removes up to 8 others, those that expire soonest, if they
// have expired.
//
// Their memory is bounded: a Store holds at most [DefaultMaxRateKeys] rate
// keys and [DefaultMaxLockoutKeys] lockout keys, about 140 and 160 bytes
// each (other bounds through [NewWithOptions] and [Options]). A new key
// that finds its table full of unexpired states evicts the one whose TAT
// or Expires comes soonest, found in a heap ordered by expiry: the one
// whose loss gives the least away. A client that floods the Store with
// new keys (262,144 of them, by default, each living longer than the
// state it is to evict) can therefore at worst make it forget the states
// that would have expired soonest: a bucket nearest to full, failures
// nearest to being forgotten anyway, or a lock nearest to its end plus
// ForgetAfter. It cannot make the Store use more memory. Choose bounds
// above the number of keys that are live at once in normal use.
//
// # What memstore does not do
//
// Nothing is written to disk: the state is lost when the process exits.
// There is no background goroutine, and no bound on the number of vault,
// factor, passkey, session and refresh records and blobs other than the
// memory of the process.
// Records replaced, deleted or expired are left to the garbage collector,
// not overwritten, but for deleted vault records, replaced or deleted
// factor and passkey records, and replaced or deleted blobs, whose bytes
// are zeroed; they hold only what keyhold (or, for blobs, the user's
// client) has already sealed or hashed.
package memstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.Store = (*Store)(nil)

// A Store is an in-memory [storage.Store], safe for concurrent use. The
// zero value is an empty store ready to use; [New] returns one too.
type Store struct {
	mu       sync.RWMutex
	vaults   map[string]userRecord // by user ID; nil until the first write
	factors  map[string]userRecord // factor records, by user ID; nil until the first write
	passkeys passkeyTable          // passkey records, by user ID, indexed by handle and credential ID
	sessions table                 // by session ID, indexed by user
	families table                 // refresh families, by ID, indexed by user
	rates    keyTable[struct{}]    // rate-limiter TATs (µs), by key
	lockouts keyTable[lockout]     // lockout states, expiring in ms, by key

	// blobs are the users' blobs, by user ID, then by name; nil until
	// the first put.
	blobs map[string]map[string]userRecord

	// challenges are the pending WebAuthn challenges, by ID; nil until
	// the first put.
	challenges map[string]challengeEntry

	// maxRateKeys and maxLockoutKeys bound rates and lockouts; 0 selects
	// the default (see Options).
	maxRateKeys, maxLockoutKeys int
}

// userRecord is what a Store holds for one user in vaults or factors, or
// for one blob of a user in blobs.
// data is never changed after it is stored (only replaced), and never
// handed out.
type userRecord struct {
	version uint64
	data    []byte
}

// New returns an empty Store. It starts no goroutine and needs no Close:
// the Store and everything it holds are garbage-collected when it is no
// longer referenced.
func New() *Store {
	return &Store{}
}

// GetVault returns the user's record, or [storage.ErrNotFound] if there is
// none. The record's Data is a fresh copy, the caller's own.
func (s *Store) GetVault(ctx context.Context, userID string) (storage.VaultRecord, error) {
	if s == nil {
		return storage.VaultRecord{}, errNilStore
	}
	return s.getRecord(ctx, &s.vaults, userID)
}

// PutVault stores a copy of data as the user's record with version
// expect+1, if and only if the stored record has version expect (expect 0:
// no record may exist); otherwise it stores nothing and returns
// [storage.ErrConflict]. Of concurrent calls with the same expect, exactly
// one succeeds.
func (s *Store) PutVault(ctx context.Context, userID string, data []byte, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	return s.putRecord(ctx, vaultKind, &s.vaults, userID, data, expect)
}

// DeleteVault removes the user's record if its version is expect, and
// returns [storage.ErrConflict] if it has another version. Deleting a
// record that does not exist returns nil. The deleted record's bytes are
// overwritten with zeros, so that they do not linger in the process's
// memory until it is reused.
func (s *Store) DeleteVault(ctx context.Context, userID string, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	return s.deleteRecord(ctx, &s.vaults, userID, expect)
}

// checkUserID refuses user IDs that keyhold never passes. The ID itself is
// not echoed: it may be long, and it is the caller's to log.
func checkUserID(userID string) error {
	if userID == "" {
		return fmt.Errorf("memstore: %w: empty user ID", storage.ErrInvalid)
	}
	if len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("memstore: %w: user ID is %d bytes, more than storage.MaxUserIDLen (%d)", storage.ErrInvalid, len(userID), storage.MaxUserIDLen)
	}
	return nil
}
