package memstore

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// These tests look inside the Store (the number of entries, the heap) to
// show what the conformance suite cannot: that rate and lockout state is
// bounded, and which states a full Store forgets.

// rkey returns the 32-byte key numbered n.
func rkey(n uint64) []byte {
	k := make([]byte, storage.RateKeyLen)
	binary.BigEndian.PutUint64(k, n)
	k[31] = 0xA5
	return k
}

// t0 is the requests' clock at the start of each test: a whole second.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func rateReq(now time.Time, interval time.Duration, burst int64) storage.RateRequest {
	return storage.RateRequest{Now: now, Interval: interval, Burst: burst, Cost: 1}
}

func lockReq(now time.Time, forget time.Duration) storage.LockoutRequest {
	return storage.LockoutRequest{Now: now, MaxFailures: 3, LockFor: time.Second, MaxLockFor: time.Minute, ForgetAfter: forget}
}

func mustTake(t testing.TB, s *Store, key []byte, req storage.RateRequest) storage.RateResult {
	t.Helper()
	res, err := s.TakeRate(t.Context(), key, req)
	if err != nil {
		t.Fatalf("TakeRate: %v", err)
	}
	return res
}

func mustAttempt(t testing.TB, s *Store, key []byte, req storage.LockoutRequest) (bool, storage.LockoutState) {
	t.Helper()
	ok, st, err := s.BeginAttempt(t.Context(), key, req)
	if err != nil {
		t.Fatalf("BeginAttempt: %v", err)
	}
	return ok, st
}

// checkTable fails t unless tb's index, slots and heap agree and the heap
// is ordered.
func checkTable[V any](t *testing.T, tb *keyTable[V]) {
	t.Helper()
	if len(tb.index) != len(tb.slots) || len(tb.heap) != len(tb.slots) {
		t.Fatalf("%d keys indexed, %d slots, %d heap items", len(tb.index), len(tb.slots), len(tb.heap))
	}
	for i, sl := range tb.slots {
		if j, ok := tb.index[sl.key]; !ok || j != int32(i) {
			t.Fatalf("slot %d's key is indexed at %d (%v)", i, j, ok)
		}
		if int(sl.at) >= len(tb.heap) || tb.heap[sl.at].slot != int32(i) {
			t.Fatalf("slot %d says heap item %d, which does not point back", i, sl.at)
		}
	}
	for i := 1; i < len(tb.heap); i++ {
		if parent := (i - 1) / 2; tb.heap[parent].exp > tb.heap[i].exp {
			t.Fatalf("heap item %d expires before its parent %d", i, parent)
		}
	}
}

// millionKeys is the number of distinct keys that
// TestAMillionKeysStayUnderTheBound writes: fewer under the race detector
// (see race_test.go).
var millionKeys = 1_000_000

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// RL-10: a million distinct keys, none of which expires, leave exactly the
// bound in the Store, those that expire last, in memory proportional to
// the bound. Not parallel: it measures the heap.
func TestAMillionKeysStayUnderTheBound(t *testing.T) {
	keys := millionKeys
	const bound = 1 << 15
	// Upper estimates of the bytes per entry, twice what the package
	// documentation gives: the map's growth is the loose part.
	for _, tc := range []struct {
		name    string
		perKey  uint64
		put     func(s *Store, key []byte, i int)
		entries func(s *Store) int
		present func(s *Store, key []byte) bool
	}{
		{"RateStore", 2 * 140, func(s *Store, key []byte, i int) {
			// TATs grow with i and lie an hour ahead: nothing expires.
			mustTake(t, s, key, rateReq(t0.Add(time.Duration(i)*time.Microsecond), time.Hour, 10))
		}, func(s *Store) int { return s.rates.len() }, func(s *Store, key []byte) bool {
			_, ok := s.rates.lookup([32]byte(key))
			return ok
		}},
		{"LockoutStore", 2 * 160, func(s *Store, key []byte, i int) {
			mustAttempt(t, s, key, lockReq(t0.Add(time.Duration(i)*time.Millisecond), time.Hour))
		}, func(s *Store) int { return s.lockouts.len() }, func(s *Store, key []byte) bool {
			_, ok := s.lockouts.lookup([32]byte(key))
			return ok
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := heapInUse()
			s, err := NewWithOptions(Options{MaxRateKeys: bound, MaxLockoutKeys: bound})
			if err != nil {
				t.Fatal(err)
			}
			key := make([]byte, storage.RateKeyLen)
			for i := range keys {
				binary.BigEndian.PutUint64(key, uint64(i))
				tc.put(s, key, i)
				if n := tc.entries(s); n > bound {
					t.Fatalf("%d entries after %d keys, bound %d", n, i+1, bound)
				}
			}
			if n := tc.entries(s); n != bound {
				t.Errorf("%d entries after %d keys, want exactly the bound %d", n, keys, bound)
			}
			after := heapInUse()
			grown := int64(after) - int64(before)
			if limit := int64(bound * tc.perKey); grown > limit {
				t.Errorf("the heap grew by %d bytes (%d per entry), want at most %d", grown, grown/bound, limit)
			}
			t.Logf("%d keys: %d entries, heap grown by %d bytes (%d per entry)", keys, tc.entries(s), grown, grown/bound)
			// The last keys, which expire last, are the ones kept.
			for i := range keys {
				binary.BigEndian.PutUint64(key, uint64(i))
				if want := i >= keys-bound; tc.present(s, key) != want {
					t.Fatalf("key %d held: %v, want %v", i, !want, want)
				}
			}
			checkTable(t, &s.rates)
			checkTable(t, &s.lockouts)
			runtime.KeepAlive(s)
		})
	}
}

// A full Store evicts the state that expires soonest, whatever the order
// in which the states were written; the key evicted has a full bucket (no
// failures) again, and the others keep theirs.
func TestFullStoreEvictsWhatExpiresSoonest(t *testing.T) {
	t.Parallel()
	s, err := NewWithOptions(Options{MaxRateKeys: 3, MaxLockoutKeys: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Rate: Burst 5. Key 1 drains 3 units (TAT now+3s), key 2 one (now+1s),
	// key 3 two (now+2s).
	now := t0
	req := rateReq(now, time.Second, 5)
	for k, n := range map[uint64]int{1: 3, 2: 1, 3: 2} {
		for range n {
			mustTake(t, s, rkey(k), req)
		}
	}
	// Key 4 evicts key 2, the soonest.
	if res := mustTake(t, s, rkey(4), req); !res.Allowed || !res.TAT.Equal(now.Add(time.Second)) {
		t.Fatalf("key 4: %+v", res)
	}
	checkTable(t, &s.rates)
	for k, wantTAT := range map[uint64]time.Duration{1: 4 * time.Second, 3: 3 * time.Second, 4: 2 * time.Second} {
		if res := mustTake(t, s, rkey(k), req); !res.TAT.Equal(now.Add(wantTAT)) {
			t.Errorf("key %d kept TAT %v, want now+%v", k, res.TAT.Sub(now), wantTAT)
		}
	}
	// Key 2 was forgotten: it is absent, so it would evict key 4 (now+2s).
	if _, ok := s.rates.lookup([32]byte(rkey(2))); ok {
		t.Error("key 2 is still held")
	}
	if res := mustTake(t, s, rkey(2), req); !res.TAT.Equal(now.Add(time.Second)) {
		t.Errorf("key 2 after eviction: TAT now+%v, want now+1s (a full bucket)", res.TAT.Sub(now))
	}
	if _, ok := s.rates.lookup([32]byte(rkey(4))); ok {
		t.Error("key 4, now the soonest, was not evicted")
	}

	// Lockout: ForgetAfter differs per key, so Expires does.
	for k, forget := range map[uint64]time.Duration{1: 3 * time.Hour, 2: time.Hour, 3: 2 * time.Hour} {
		mustAttempt(t, s, rkey(k), lockReq(now, forget))
	}
	mustAttempt(t, s, rkey(4), lockReq(now, 4*time.Hour))
	checkTable(t, &s.lockouts)
	for k, want := range map[uint64]bool{1: true, 2: false, 3: true, 4: true} {
		if _, ok := s.lockouts.lookup([32]byte(rkey(k))); ok != want {
			t.Errorf("lockout key %d held: %v, want %v", k, ok, want)
		}
	}
	// The states kept are intact: key 1's second failure is counted.
	if _, st := mustAttempt(t, s, rkey(1), lockReq(now, 3*time.Hour)); st.Failures != 2 {
		t.Errorf("key 1 after the eviction: %+v, want 2 failures", st)
	}
}

// Expired states are dropped before an unexpired one is evicted, and, in a
// table at least half full, writes of new keys remove expired states that
// nobody asks for again.
func TestExpiredStatesAreReclaimed(t *testing.T) {
	t.Parallel()
	const n = 1000
	s, _ := NewWithOptions(Options{MaxRateKeys: n, MaxLockoutKeys: n})
	for i := range uint64(n) {
		mustTake(t, s, rkey(i), rateReq(t0, time.Millisecond, 1)) // TAT t0+1ms
		mustAttempt(t, s, rkey(i), lockReq(t0, time.Millisecond)) // Expires t0+1ms
	}
	if s.rates.len() != n || s.lockouts.len() != n {
		t.Fatalf("%d rate and %d lockout entries, want %d", s.rates.len(), s.lockouts.len(), n)
	}
	// At t0+1ms every one of them has expired. While the table is at least
	// half full, each write of a new key removes expireScan of them and
	// adds its own; below half, none.
	later := t0.Add(time.Millisecond)
	want := n
	for i := uint64(0); i < n/expireScan; i++ {
		mustTake(t, s, rkey(n+i), rateReq(later, time.Hour, 1))
		mustAttempt(t, s, rkey(n+i), lockReq(later, time.Hour))
		if 2*want >= n {
			want -= expireScan
		}
		want++
	}
	if s.rates.len() != want || s.lockouts.len() != want {
		t.Errorf("%d rate and %d lockout entries after %d writes, want %d", s.rates.len(), s.lockouts.len(), n/expireScan, want)
	}
	// An expired key that comes back reuses its entry.
	back := uint64(0)
	for ; back < n; back++ {
		if _, ok := s.rates.lookup([32]byte(rkey(back))); ok {
			break
		}
	}
	mustTake(t, s, rkey(back), rateReq(later, time.Hour, 1))
	if s.rates.len() != want {
		t.Errorf("an expired key that came back took a new entry: %d entries, want %d", s.rates.len(), want)
	}
	checkTable(t, &s.rates)
	checkTable(t, &s.lockouts)

	// A full Store whose soonest state has expired drops that one.
	s, _ = NewWithOptions(Options{MaxRateKeys: 2})
	mustTake(t, s, rkey(1), rateReq(t0, time.Hour, 1))
	mustTake(t, s, rkey(2), rateReq(t0, time.Millisecond, 1))
	mustTake(t, s, rkey(3), rateReq(t0.Add(time.Millisecond), time.Hour, 1))
	for k, want := range map[uint64]bool{1: true, 2: false, 3: true} {
		if _, ok := s.rates.lookup([32]byte(rkey(k))); ok != want {
			t.Errorf("key %d held: %v, want %v", k, ok, want)
		}
	}
}

// Random operations on a Store with room for 16 keys keep its table
// consistent; with room for all of them, every answer is the reference
// functions' on a plain map.
func TestRandomOperationsMatchTheReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	small, _ := NewWithOptions(Options{MaxRateKeys: 16, MaxLockoutKeys: 16})
	big := New()
	rates := map[uint64]int64{}
	locks := map[uint64]storage.LockoutState{}
	now := t0
	for op := range 20000 {
		now = now.Add(time.Duration(rng.IntN(5000)) * time.Microsecond)
		k := rng.Uint64N(40)
		switch rng.IntN(10) {
		case 0:
			for _, s := range []*Store{small, big} {
				if err := s.ResetRate(t.Context(), rkey(k)); err != nil {
					t.Fatal(err)
				}
			}
			delete(rates, k)
		case 1:
			for _, s := range []*Store{small, big} {
				if err := s.ResetLockout(t.Context(), rkey(k)); err != nil {
					t.Fatal(err)
				}
			}
			delete(locks, k)
		case 2, 3, 4, 5:
			req := storage.RateRequest{Now: now, Interval: time.Duration(1+rng.IntN(3)) * time.Millisecond, Burst: 1 + rng.Int64N(4)}
			req.Cost = 1 + rng.Int64N(req.Burst)
			mustTake(t, small, rkey(k), req)
			got := mustTake(t, big, rkey(k), req)
			allowed, tat := storage.DecideRate(rates[k], req)
			if allowed {
				rates[k] = tat
			}
			if got.Allowed != allowed || got.TAT.UnixMicro() != tat {
				t.Fatalf("op %d: TakeRate = %+v, want %v, %d", op, got, allowed, tat)
			}
		default:
			req := storage.LockoutRequest{Now: now, MaxFailures: 1 + rng.IntN(3), LockFor: time.Millisecond, MaxLockFor: 8 * time.Millisecond, ForgetAfter: time.Duration(1+rng.IntN(20)) * time.Millisecond}
			mustAttempt(t, small, rkey(k), req)
			ok, st := mustAttempt(t, big, rkey(k), req)
			wantOK, want := storage.DecideAttempt(locks[k], req)
			if wantOK {
				locks[k] = want
			}
			if ok != wantOK || !sameLockout(st, want) {
				t.Fatalf("op %d: BeginAttempt = %v, %+v; want %v, %+v", op, ok, st, wantOK, want)
			}
		}
		if small.rates.len() > 16 || small.lockouts.len() > 16 {
			t.Fatalf("op %d: %d rate and %d lockout entries, bound 16", op, small.rates.len(), small.lockouts.len())
		}
		if op%97 == 0 {
			checkTable(t, &small.rates)
			checkTable(t, &small.lockouts)
			checkTable(t, &big.rates)
			checkTable(t, &big.lockouts)
		}
	}
}

func sameLockout(a, b storage.LockoutState) bool {
	return a.Failures == b.Failures && a.Locks == b.Locks && a.LockedUntil.Equal(b.LockedUntil) &&
		a.LockedUntil.IsZero() == b.LockedUntil.IsZero() && a.Expires.Equal(b.Expires)
}

// Of 50 concurrent decisions on one key, exactly Burst (or MaxFailures)
// are allowed.
func TestConcurrentDecisionsAreExact(t *testing.T) {
	t.Parallel()
	s := New()
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		allowed, admitted int
	)
	for range 50 {
		wg.Go(func() {
			r := mustTake(t, s, rkey(1), rateReq(t0, time.Second, 10))
			ok, _ := mustAttempt(t, s, rkey(1), storage.LockoutRequest{Now: t0, MaxFailures: 7, LockFor: time.Hour, MaxLockFor: time.Hour, ForgetAfter: time.Hour})
			mu.Lock()
			defer mu.Unlock()
			if r.Allowed {
				allowed++
			}
			if ok {
				admitted++
			}
		})
	}
	wg.Wait()
	if allowed != 10 || admitted != 7 {
		t.Errorf("%d of 50 allowed with Burst 10, %d admitted with MaxFailures 7", allowed, admitted)
	}
}

// The Store starts no goroutine, whatever it is asked.
func TestNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 10 {
		s, err := NewWithOptions(Options{MaxRateKeys: 4, MaxLockoutKeys: 4})
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(100) {
			mustTake(t, s, rkey(i), rateReq(t0.Add(time.Duration(i)*time.Second), time.Second, 2))
			mustAttempt(t, s, rkey(i), lockReq(t0.Add(time.Duration(i)*time.Second), time.Second))
			if err := s.ResetRate(t.Context(), rkey(i/2)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines before, %d after", before, after)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	if got := New().Options(); got != (Options{MaxRateKeys: DefaultMaxRateKeys, MaxLockoutKeys: DefaultMaxLockoutKeys}) {
		t.Errorf("New().Options() = %+v", got)
	}
	if got := new(Store).Options(); got.MaxRateKeys != DefaultMaxRateKeys || got.MaxLockoutKeys != DefaultMaxLockoutKeys {
		t.Errorf("zero Store's Options() = %+v", got)
	}
	s, err := NewWithOptions(Options{MaxRateKeys: 5})
	if err != nil || s.Options() != (Options{MaxRateKeys: 5, MaxLockoutKeys: DefaultMaxLockoutKeys}) {
		t.Errorf("NewWithOptions(MaxRateKeys 5): %+v, %v", s.Options(), err)
	}
	for _, o := range []Options{{MaxRateKeys: -1}, {MaxLockoutKeys: -1}, {MaxRateKeys: 1 << 31}, {MaxLockoutKeys: 1 << 40}} {
		if _, err := NewWithOptions(o); err == nil {
			t.Errorf("NewWithOptions(%+v) accepted", o)
		}
	}
}

// Out-of-bounds arguments are refused with ErrInvalid, and a done context
// with its error, before anything is stored.
func TestRateRefusals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := New()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	good := rateReq(t0, time.Second, 1)
	for name, call := range map[string]func() error{
		"TakeRate/short key": func() error { _, err := s.TakeRate(ctx, rkey(1)[:31], good); return err },
		"TakeRate/no time":   func() error { _, err := s.TakeRate(ctx, rkey(1), rateReq(time.Time{}, time.Second, 1)); return err },
		"TakeRate/cost > burst": func() error {
			_, err := s.TakeRate(ctx, rkey(1), storage.RateRequest{Now: t0, Interval: 1, Burst: 1, Cost: 2})
			return err
		},
		"ResetRate/long key":     func() error { return s.ResetRate(ctx, append(rkey(1), 0)) },
		"BeginAttempt/nil key":   func() error { _, _, err := s.BeginAttempt(ctx, nil, lockReq(t0, time.Hour)); return err },
		"BeginAttempt/no forget": func() error { _, _, err := s.BeginAttempt(ctx, rkey(1), lockReq(t0, 0)); return err },
		"ResetLockout/short key": func() error { return s.ResetLockout(ctx, rkey(1)[:1]) },
	} {
		if err := call(); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for name, call := range map[string]func() error{
		"TakeRate":     func() error { _, err := s.TakeRate(canceled, rkey(1), good); return err },
		"ResetRate":    func() error { return s.ResetRate(canceled, rkey(1)) },
		"BeginAttempt": func() error { _, _, err := s.BeginAttempt(canceled, rkey(1), lockReq(t0, time.Hour)); return err },
		"ResetLockout": func() error { return s.ResetLockout(canceled, rkey(1)) },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v", name, err)
		}
	}
	if s.rates.len() != 0 || s.lockouts.len() != 0 {
		t.Errorf("%d rate and %d lockout entries after refusals", s.rates.len(), s.lockouts.len())
	}
}

// BenchmarkTakeRate measures one decision: on one key (every call but the
// first finds its state), and on a new key each time in a full Store of
// 2^16 keys (every call evicts one).
func BenchmarkTakeRate(b *testing.B) {
	ctx := context.Background()
	req := rateReq(t0, time.Microsecond, 1<<20)
	b.Run("serial/one key", func(b *testing.B) {
		s := New()
		key := rkey(1)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.TakeRate(ctx, key, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serial/new keys, full", func(b *testing.B) {
		s, _ := NewWithOptions(Options{MaxRateKeys: 1 << 16})
		key := rkey(0)
		n := uint64(0)
		b.ReportAllocs()
		for b.Loop() {
			n++
			binary.BigEndian.PutUint64(key, n)
			if _, err := s.TakeRate(ctx, key, rateReq(t0.Add(time.Duration(n)), time.Hour, 1)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel/key per goroutine", func(b *testing.B) {
		s := New()
		var next sync.Mutex
		id := uint64(0)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			next.Lock()
			id++
			key := rkey(id)
			next.Unlock()
			for pb.Next() {
				if _, err := s.TakeRate(ctx, key, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
