package memstore

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/keyhold/keyhold/storage"
)

var (
	_ storage.RateStore    = (*Store)(nil)
	_ storage.LockoutStore = (*Store)(nil)
)

// Defaults selected by the zero values of Options' fields.
const (
	// DefaultMaxRateKeys is the most rate-limiter keys a Store holds by
	// default (262,144): a Store full of them takes about 35 MiB (see [Options]).
	DefaultMaxRateKeys = 1 << 18
	// DefaultMaxLockoutKeys is the most lockout keys a Store holds by
	// default (262,144): a Store full of them takes about 40 MiB (see [Options]).
	DefaultMaxLockoutKeys = 1 << 18
)

// Options bound the memory that a Store gives to rate-limiter and lockout
// state. The zero value selects the defaults named on each field.
//
// Each rate-limiter key takes about 140 bytes (its 32-byte key in a map
// and in an array of entries, and an item in a heap ordered by expiry),
// and each lockout key about 160, as measured on amd64 with a million
// keys. The map's share varies as it grows: a smaller table that many
// keys have come and gone through may take half as much again per key.
// The arrays never grow beyond the bound, and neither they nor the map
// shrink when keys go: a Store keeps the memory of the most keys it has
// held.
type Options struct {
	// MaxRateKeys is the most rate-limiter keys (storage.RateStore) held
	// at once. Zero selects DefaultMaxRateKeys.
	MaxRateKeys int
	// MaxLockoutKeys is the most lockout keys (storage.LockoutStore) held
	// at once. Zero selects DefaultMaxLockoutKeys.
	MaxLockoutKeys int
}

// NewWithOptions returns an empty Store whose rate-limiter and lockout
// state is bounded by opts. It refuses negative bounds, and bounds above
// math.MaxInt32. Like [New], it starts no goroutine and needs no Close.
//
// Most applications will use [New], whose bounds are the defaults, and
// will not need this function.
func NewWithOptions(opts Options) (*Store, error) {
	if opts.MaxRateKeys < 0 {
		return nil, fmt.Errorf("memstore: MaxRateKeys %d is negative", opts.MaxRateKeys)
	}
	if opts.MaxLockoutKeys < 0 {
		return nil, fmt.Errorf("memstore: MaxLockoutKeys %d is negative", opts.MaxLockoutKeys)
	}
	if opts.MaxRateKeys > math.MaxInt32 || opts.MaxLockoutKeys > math.MaxInt32 {
		return nil, fmt.Errorf("memstore: MaxRateKeys %d or MaxLockoutKeys %d is more than %d", opts.MaxRateKeys, opts.MaxLockoutKeys, math.MaxInt32)
	}
	return &Store{maxRateKeys: opts.MaxRateKeys, maxLockoutKeys: opts.MaxLockoutKeys}, nil
}

// Options returns the Store's bounds with the defaults resolved.
func (s *Store) Options() Options {
	if s == nil {
		return Options{}
	}
	return Options{MaxRateKeys: s.rateCap(), MaxLockoutKeys: s.lockoutCap()}
}

func (s *Store) rateCap() int {
	if s.maxRateKeys == 0 {
		return DefaultMaxRateKeys
	}
	return s.maxRateKeys
}

func (s *Store) lockoutCap() int {
	if s.maxLockoutKeys == 0 {
		return DefaultMaxLockoutKeys
	}
	return s.maxLockoutKeys
}

// expireScan is the most expired entries that one write removes besides
// the one it may evict. A write adds one entry at most, so expired entries
// that nobody asks for again are removed faster than new ones come.
const expireScan = 8

// TakeRate makes one GCRA decision for key, as [storage.DecideRate]
// computes it, under the Store's lock: the stored TAT is read and the new
// one stored in one critical section.
//
// A key whose TAT is not after req.Now is absent (its bucket is full):
// the write that meets it replaces it, and writes of new keys remove such
// keys that nobody asks for again. When the Store holds its most rate
// keys, a new key evicts the one whose TAT comes soonest (see the package
// documentation).
func (s *Store) TakeRate(ctx context.Context, key []byte, req storage.RateRequest) (storage.RateResult, error) {
	if s == nil {
		return storage.RateResult{}, errNilStore
	}
	if err := storage.ValidRateRequest(key, req); err != nil {
		return storage.RateResult{}, fmt.Errorf("memstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return storage.RateResult{}, err
	}
	k := [storage.RateKeyLen]byte(key)
	now := req.Now.UnixMicro()

	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.rates.lookup(k)
	var stored int64
	if found {
		stored = s.rates.expiry(i)
	}
	allowed, tat := storage.DecideRate(stored, req)
	if allowed {
		if found {
			s.rates.update(i, tat, struct{}{})
		} else {
			s.rates.sweep(now, s.rateCap())
			s.rates.insert(k, tat, struct{}{}, s.rateCap())
		}
	}
	return storage.RateResult{Allowed: allowed, TAT: time.UnixMicro(tat)}, nil
}

// ResetRate forgets key's rate state. Resetting a key without state
// returns nil.
func (s *Store) ResetRate(ctx context.Context, key []byte) error {
	if s == nil {
		return errNilStore
	}
	if err := storage.ValidRateKey(key); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.rates.lookup([storage.RateKeyLen]byte(key)); ok {
		s.rates.remove(i)
	}
	return nil
}

// lockout is the part of a storage.LockoutState that a Store keeps
// besides its expiry, in milliseconds (lockedUntil 0: no lock, as in
// storage.DecideAttempt).
type lockout struct {
	failures, locks int
	lockedUntil     int64
}

// BeginAttempt counts one attempt for key unless the account is locked, as
// [storage.DecideAttempt] computes it, under the Store's lock: the stored
// state is read and the new one stored in one critical section.
//
// A state whose Expires is not after req.Now is absent: the write that
// meets it replaces it, and writes of new keys remove such states that
// nobody asks for again. When the Store holds its most lockout keys, a
// new key evicts the state that expires soonest (see the package
// documentation).
func (s *Store) BeginAttempt(ctx context.Context, key []byte, req storage.LockoutRequest) (bool, storage.LockoutState, error) {
	if s == nil {
		return false, storage.LockoutState{}, errNilStore
	}
	if err := storage.ValidLockoutRequest(key, req); err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("memstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return false, storage.LockoutState{}, err
	}
	k := [storage.RateKeyLen]byte(key)
	now := req.Now.UnixMilli()

	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.lockouts.lookup(k)
	var stored storage.LockoutState
	if found {
		stored = s.lockoutState(i)
	}
	admitted, next := storage.DecideAttempt(stored, req)
	if admitted {
		v := lockoutValue(next)
		exp := next.Expires.UnixMilli()
		if found {
			s.lockouts.update(i, exp, v)
		} else {
			s.lockouts.sweep(now, s.lockoutCap())
			s.lockouts.insert(k, exp, v, s.lockoutCap())
		}
	}
	return admitted, next, nil
}

// RefundAttempt gives back the count of an attempt whose credential was
// never checked, as [storage.DecideRefund] computes it, under the Store's
// lock: the stored state is read and the new one stored in one critical
// section. A key without a live state is left alone.
func (s *Store) RefundAttempt(ctx context.Context, key []byte, req storage.LockoutRequest, lock int) (bool, storage.LockoutState, error) {
	if s == nil {
		return false, storage.LockoutState{}, errNilStore
	}
	if err := storage.ValidRefund(key, req, lock); err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("memstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return false, storage.LockoutState{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.lockouts.lookup([storage.RateKeyLen]byte(key))
	if !found {
		return false, storage.LockoutState{}, nil
	}
	stored := s.lockoutState(i)
	refunded, next := storage.DecideRefund(stored, req, lock)
	if refunded {
		s.lockouts.update(i, next.Expires.UnixMilli(), lockoutValue(next))
	}
	return refunded, next, nil
}

// lockoutState returns the state in slot i.
func (s *Store) lockoutState(i int32) storage.LockoutState {
	v := s.lockouts.value(i)
	st := storage.LockoutState{Failures: v.failures, Locks: v.locks, Expires: time.UnixMilli(s.lockouts.expiry(i))}
	if v.lockedUntil != 0 {
		st.LockedUntil = time.UnixMilli(v.lockedUntil)
	}
	return st
}

// lockoutValue returns what a Store keeps of st besides its expiry.
func lockoutValue(st storage.LockoutState) lockout {
	v := lockout{failures: st.Failures, locks: st.Locks}
	if !st.LockedUntil.IsZero() {
		v.lockedUntil = st.LockedUntil.UnixMilli()
	}
	return v
}

// ResetLockout forgets key's lockout state. Resetting a key without state
// returns nil.
func (s *Store) ResetLockout(ctx context.Context, key []byte) error {
	if s == nil {
		return errNilStore
	}
	if err := storage.ValidRateKey(key); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.lockouts.lookup([storage.RateKeyLen]byte(key)); ok {
		s.lockouts.remove(i)
	}
	return nil
}

// keyTable holds values of type V by 32-byte key, each with an expiry (in
// whatever unit its user chose), in at most a given number of entries.
// The entries are kept densely in slots; a min-heap of (expiry, slot)
// pairs finds the one that expires soonest, which an insertion into a
// full table evicts. Nothing in it holds a pointer, so the garbage
// collector does not scan it. Store's lock guards it; the zero value is
// an empty table.
type keyTable[V any] struct {
	index map[[storage.RateKeyLen]byte]int32 // key → index in slots
	slots []keySlot[V]
	heap  []heapItem // heap[0] expires soonest
}

// keySlot is one entry of a keyTable: at is its index in the heap. (v
// comes first: a zero-size last field would be padded.)
type keySlot[V any] struct {
	v   V
	key [storage.RateKeyLen]byte
	at  int32
}

// heapItem is one entry in a keyTable's heap: its expiry, and the index
// of its slot.
type heapItem struct {
	exp  int64
	slot int32
}

// lookup returns the slot index of key's entry, if there is one.
func (t *keyTable[V]) lookup(key [storage.RateKeyLen]byte) (int32, bool) {
	i, ok := t.index[key]
	return i, ok
}

// expiry and value return the expiry and value of the entry in slot i.
func (t *keyTable[V]) expiry(i int32) int64 { return t.heap[t.slots[i].at].exp }
func (t *keyTable[V]) value(i int32) V      { return t.slots[i].v }

// update sets the expiry and value of the entry in slot i.
func (t *keyTable[V]) update(i int32, exp int64, v V) {
	t.slots[i].v = v
	at := t.slots[i].at
	t.heap[at].exp = exp
	heap.Fix(t, int(at))
}

// insert adds an entry for key, which has none, first evicting the entry
// that expires soonest if the table holds max entries.
func (t *keyTable[V]) insert(key [storage.RateKeyLen]byte, exp int64, v V, limit int) {
	for len(t.slots) >= limit && len(t.slots) > 0 {
		t.remove(t.heap[0].slot)
	}
	if t.index == nil {
		t.index = make(map[[storage.RateKeyLen]byte]int32)
	}
	n := len(t.slots)
	t.slots = grow(t.slots, limit)
	t.heap = grow(t.heap, limit)
	t.slots = append(t.slots, keySlot[V]{key: key, at: int32(n), v: v})
	t.heap = append(t.heap, heapItem{exp: exp, slot: int32(n)})
	t.index[key] = int32(n)
	heap.Fix(t, n)
}

// grow returns s with room for one more element, growing its capacity
// (by doubling) to limit at most, so that a full table holds no slack.
func grow[E any](s []E, limit int) []E {
	if len(s) < cap(s) {
		return s
	}
	c := max(min(max(2*cap(s), 8), limit), len(s)+1)
	return append(make([]E, 0, c), s...)
}

// remove removes the entry in slot i. The last slot moves into its place.
func (t *keyTable[V]) remove(i int32) {
	heap.Remove(t, int(t.slots[i].at)) // Pop drops the heap's last item
	delete(t.index, t.slots[i].key)
	last := int32(len(t.slots) - 1)
	if i != last {
		moved := t.slots[last]
		t.slots[i] = moved
		t.index[moved.key] = i
		t.heap[moved.at].slot = i
	}
	t.slots[last] = keySlot[V]{}
	t.slots = t.slots[:last]
}

// expire removes up to n entries whose expiry is not after now, soonest
// first.
func (t *keyTable[V]) expire(now int64, n int) {
	for ; n > 0 && len(t.heap) > 0 && t.heap[0].exp <= now; n-- {
		t.remove(t.heap[0].slot)
	}
}

// sweep removes up to expireScan expired entries before a new key is
// inserted, once the table is at least half full. Below that, removing
// them would free no memory (the table's arrays and map never shrink) and
// would only make keys that come back pay for a new entry.
func (t *keyTable[V]) sweep(now int64, limit int) {
	if 2*len(t.slots) >= limit {
		t.expire(now, expireScan)
	}
}

// len returns the number of entries.
func (t *keyTable[V]) len() int { return len(t.slots) }

// Len, Less, Swap, Push and Pop implement heap.Interface on the heap
// items, keeping each slot's index into the heap up to date.
func (t *keyTable[V]) Len() int           { return len(t.heap) }
func (t *keyTable[V]) Less(i, j int) bool { return t.heap[i].exp < t.heap[j].exp }
func (t *keyTable[V]) Swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.slots[t.heap[i].slot].at = int32(i)
	t.slots[t.heap[j].slot].at = int32(j)
}

// Push is not used: insert appends the item and calls heap.Fix, which
// avoids boxing it in an interface.
func (t *keyTable[V]) Push(x any) { t.heap = append(t.heap, x.(heapItem)) }

// Pop drops the last heap item, which heap.Remove has moved there. It
// returns nil rather than box the item.
func (t *keyTable[V]) Pop() any {
	t.heap = t.heap[:len(t.heap)-1]
	return nil
}
