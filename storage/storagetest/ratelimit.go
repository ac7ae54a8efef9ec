package storagetest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// RunRateStore tests that a [storage.RateStore] keeps its contract, one
// subtest per clause. It is for adapters that provide only this interface;
// [Run] calls it too. newStore must return an empty, isolated store on
// every call; cleanup goes through t.Cleanup.
//
// Every decision is checked against [storage.DecideRate]: the suite
// follows each key with the TAT the store must hold, and every TakeRate
// must return exactly what DecideRate returns from that TAT (Allowed, and
// TAT to the microsecond, in any time zone). Besides the plain clauses (a
// fresh key's burst, refill as Now moves on, costs above 1, refusals that
// store nothing, a TAT that has passed, ResetRate), the subtests try what
// adapters get wrong: Interval and Burst that change from one request to
// the next on one key (only the TAT is stored), Now with nanoseconds (it
// is truncated to the microsecond, not rounded), Now from 1970 to 2200 (an
// adapter that forgets a state by its own clock rather than by the
// requests' fails), Now that moves back (a caller whose clock is behind),
// keys with every byte value and keys that differ only in one byte, a key
// changed by the caller after the call, 50 goroutines taking from one
// bucket at once (exactly Burst, or Burst/Cost, are allowed), every bound
// exactly (it works) and just past it (an error wrapping
// storage.ErrInvalid that names no key, and nothing changes), and
// contexts already done.
//
// The store never reads a clock for these decisions, but an adapter may
// forget a state whose TAT has passed, and one that does so with a TTL
// counts down on its own clock. Whenever a later request depends on a
// stored TAT, that TAT is at least 10 s after the Now of the request that
// stored it, so such an adapter passes if it answers within 10 s.
//
// The suite does not check that passed states are forgotten (the memory
// bound), nor what an adapter whose memory is full does: it would take
// more keys than a test can write.
func RunRateStore(t *testing.T, newStore func(t *testing.T) storage.RateStore) {
	runClauses(t, rateClauses, newStore)
}

// rateClauses are the RateStore subtests, in the order of the contract.
var rateClauses = []clause[storage.RateStore]{
	// TakeRate: one GCRA decision.
	{"FreshKeyAllowsBurst", freshKeyAllowsBurst},
	{"TakeMatchesDecideRate", takeMatchesDecideRate},
	{"RefusalChangesNothing", rateRefusalChangesNothing},
	{"PassedTATIsAbsent", passedTATIsAbsent},
	{"OnlyTATIsStored", onlyTATIsStored},
	{"MicrosecondPrecision", rateMicrosecondPrecision},
	{"TimesFrom1970To2200", rateTimesFrom1970To2200},

	// ResetRate.
	{"ResetFillsBucket", resetFillsBucket},
	{"ResetAbsentIsNil", rateResetAbsentIsNil},

	// One state per key; keys are opaque and not retained.
	{"KeysAreIndependent", rateKeysAreIndependent},
	{"BinaryKeysAreDistinct", rateBinaryKeysAreDistinct},
	{"KeyIsNotRetained", rateKeyIsNotRetained},

	// TakeRate under concurrency.
	{"ConcurrentTakesAllowBurst", concurrentTakesAllowBurst},
	{"ConcurrentCostlyTakesAllowBurst", concurrentCostlyTakesAllowBurst},

	// Bounds.
	{"OutOfBoundsIsInvalid", rateOutOfBoundsIsInvalid},
	{"BoundsAreAccepted", rateBoundsAreAccepted},

	// Every method honours its context.
	{"CanceledContextIsHonoured", canceledContextIsHonoured(rateContextIsHonoured)},
	{"ExpiredDeadlineIsHonoured", expiredDeadlineIsHonoured(rateContextIsHonoured)},
}

// A rateLimit is the Interval and Burst of a series of requests.
type rateLimit struct {
	interval time.Duration
	burst    int64
}

// req returns the request for cost units at now.
func (l rateLimit) req(now time.Time, cost int64) storage.RateRequest {
	return storage.RateRequest{Now: now, Interval: l.interval, Burst: l.burst, Cost: cost}
}

// A rateStep is one request of a script: cost units at t0+at, and whether
// storage.DecideRate allows them (which the script checks of itself).
type rateStep struct {
	at      time.Duration
	cost    int64
	allowed bool
}

// rateScriptLimit and rateScript are a sequence of requests on one key
// that moves through every case of the algorithm.
var (
	rateScriptLimit = rateLimit{time.Minute, 5}
	rateScript      = []rateStep{
		{0, 1, true},                  // a fresh key
		{0, 2, true},                  // a cost above 1, at the same Now
		{30 * time.Second, 2, true},   // the last 2 units, half a unit refilled
		{30 * time.Second, 1, false},  // empty
		{time.Minute, 1, true},        // exactly one unit refilled
		{90 * time.Second, 2, false},  // one and a half units are not two
		{210 * time.Second, 2, true},  // a partial refill: 2.5 units
		{210 * time.Second, 1, false}, // half a unit left
		{4 * time.Minute, 1, true},    // exactly one unit again
		{3 * time.Minute, 1, false},   // Now moved back: a caller whose clock is behind
		{20 * time.Minute, 5, true},   // the TAT passed long ago: a full bucket
		{20 * time.Minute, 1, false},  // empty
		{25 * time.Minute, 5, true},   // Now is the TAT: full again
		{27*time.Minute + 30*time.Second, 3, false},
		{27*time.Minute + 30*time.Second, 2, true},
		{26 * time.Minute, 1, false}, // behind again
	}
)

// runRateScript runs script on b from t0.
func runRateScript(b *rateBucket, l rateLimit, script []rateStep) {
	b.t.Helper()
	for _, step := range script {
		b.takeWant(l.req(b.t0.Add(step.at), step.cost), step.allowed)
	}
}

func freshKeyAllowsBurst(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	for i, l := range []rateLimit{{time.Minute, 1}, {time.Minute, 5}, {10 * time.Second, 10}} {
		b := newRateBucket(t, s, rateKey(uint64(i)), t0)
		for n := range l.burst {
			got := b.takeWant(l.req(t0, 1), true)
			if want := b.micros(t0.UnixMicro() + (n+1)*l.interval.Microseconds()); !got.TAT.Equal(want) {
				t.Fatalf("request %d of a fresh key with Burst %d: TAT %s, want %s", n+1, l.burst, b.at(got.TAT), b.at(want))
			}
		}
		for range 3 {
			b.takeWant(l.req(t0, 1), false)
		}
	}
	// The whole burst in one request.
	l := rateLimit{time.Minute, 7}
	b := newRateBucket(t, s, rateKey(10), t0)
	b.takeWant(l.req(t0, 7), true)
	b.takeWant(l.req(t0, 1), false)
}

func takeMatchesDecideRate(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	runRateScript(newRateBucket(t, s, rateKey(1), t0), rateScriptLimit, rateScript)
}

// rateRefusalChangesNothing refuses requests of every size on an empty
// bucket, then checks with one that is allowed that they did not move the
// TAT.
func rateRefusalChangesNothing(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	l := rateLimit{time.Minute, 3}
	b := newRateBucket(t, s, rateKey(1), t0)
	b.takeWant(l.req(t0, 3), true)
	for _, step := range []rateStep{
		{0, 1, false},
		{30 * time.Second, 1, false},
		{59 * time.Second, 1, false},
		{0, 3, false},
		{2 * time.Minute, 3, false},
		{2*time.Minute + 59*time.Second, 3, false},
	} {
		b.takeWant(l.req(t0.Add(step.at), step.cost), step.allowed)
	}
	// One unit has refilled at t0+1m, whatever was refused before.
	b.takeWant(l.req(t0.Add(time.Minute), 1), true)
	b.takeWant(l.req(t0.Add(time.Minute), 1), false)
	b.takeWant(l.req(t0.Add(3*time.Minute), 2), true)
}

// passedTATIsAbsent checks that a TAT that is not after Now is a full
// bucket: when Now is the TAT, and long after.
func passedTATIsAbsent(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	l := rateLimit{time.Minute, 4}
	b := newRateBucket(t, s, rateKey(1), t0)
	b.takeWant(l.req(t0, 4), true)
	at := t0.Add(4 * time.Minute)
	for range 4 {
		b.takeWant(l.req(at, 1), true)
	}
	b.takeWant(l.req(at, 1), false)
	at = t0.Add(time.Hour)
	b.takeWant(l.req(at, 4), true)
	b.takeWant(l.req(at, 1), false)
	at = t0.Add(48 * time.Hour)
	for range 4 {
		b.takeWant(l.req(at, 1), true)
	}
	b.takeWant(l.req(at, 1), false)
}

// onlyTATIsStored changes Interval and Burst from one request to the next
// on one key: each decision uses the request's, from the stored TAT.
func onlyTATIsStored(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	b := newRateBucket(t, s, rateKey(1), t0)
	b.takeWant(rateLimit{time.Minute, 10}.req(t0, 5), true)                      // TAT t0+5m
	b.takeWant(rateLimit{2 * time.Minute, 3}.req(t0, 1), false)                  // would reach t0+7m, past a 6m window
	b.takeWant(rateLimit{30 * time.Second, 20}.req(t0, 10), true)                // TAT t0+10m, exactly a 10m window
	b.takeWant(rateLimit{time.Minute, 10}.req(t0.Add(30*time.Second), 1), false) // t0+11m is 10.5m after Now
	b.takeWant(rateLimit{10 * time.Minute, 2}.req(t0.Add(time.Minute), 1), true)
	b.takeWant(rateLimit{time.Second, 1000}.req(t0.Add(2*time.Minute), 1), false)
	b.takeWant(rateLimit{time.Hour, 1}.req(t0.Add(20*time.Minute), 1), true)
}

// rateMicrosecondPrecision checks that Now is truncated to the microsecond
// (not rounded, nor kept in nanoseconds) and that TATs are computed and
// stored to the microsecond: with an interval of 13 µs, each request is
// 1 ns short of, or exactly at, the microsecond that frees the units it
// asks for.
func rateMicrosecondPrecision(t *testing.T, s storage.RateStore) {
	t0 := time.Now().Truncate(time.Second)
	l := rateLimit{13 * time.Microsecond, storage.MaxRateBurst} // a 13.6 s window
	b := newRateBucket(t, s, rateKey(1), t0)
	// 1,000,000 units leave the TAT 13 s ahead and 48,576 units.
	b.takeWant(l.req(t0.Add(999*time.Nanosecond), 1_000_000), true)
	b.takeWant(l.req(t0.Add(999*time.Nanosecond).In(east), 48_577), false)
	b.takeWant(l.req(t0.Add(999*time.Nanosecond).In(west), 48_576), true)
	// Now the bucket is empty at t0 (and the TAT a window ahead). Each
	// round waits for cost units: 1 ns before they are free it is refused,
	// when they are free it is allowed and empties the bucket again.
	at := t0
	for _, cost := range []int64{1, 2, 3, 5, 8} {
		at = at.Add(time.Duration(cost) * l.interval)
		b.takeWant(l.req(at.Add(-time.Nanosecond), cost), false)
		b.takeWant(l.req(at, cost), true)
		b.takeWant(l.req(at.Add(999*time.Nanosecond), 1), false)
	}
}

// rateTimesFrom1970To2200 runs the script of TakeMatchesDecideRate at
// three epochs far from the store's clock: just after 1970 (an adapter
// that forgets a TAT once its own clock passes it forgets these at once),
// across 2^31 seconds, and in 2200. The last key takes the widest window
// in 2200, which comes within a few bits of the 53 that an adapter
// computing in floating point has.
func rateTimesFrom1970To2200(t *testing.T, s storage.RateStore) {
	epochs := []time.Time{
		time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 7, 0, time.UTC),
		time.Date(2200, 1, 1, 0, 0, 0, 999_999_999, west),
	}
	for i, t0 := range epochs {
		runRateScript(newRateBucket(t, s, rateKey(uint64(i)), t0), rateScriptLimit, rateScript)
	}
	t0 := epochs[len(epochs)-1]
	l := widestRate()
	b := newRateBucket(t, s, rateKey(10), t0)
	b.takeWant(l.req(t0, l.burst), true)
	b.takeWant(l.req(t0.Add(l.interval-time.Microsecond), 1), false)
	b.takeWant(l.req(t0.Add(l.interval), 1), true)
}

// widestRate returns the largest Burst with the largest Interval that
// keeps the window within storage.MaxRateWindow.
func widestRate() rateLimit {
	interval := (storage.MaxRateWindow / storage.MaxRateBurst).Truncate(time.Microsecond)
	return rateLimit{interval, storage.MaxRateBurst}
}

func resetFillsBucket(t *testing.T, s storage.RateStore) {
	ctx := t.Context()
	t0 := epoch()
	l := rateLimit{time.Minute, 5}
	b := newRateBucket(t, s, rateKey(1), t0)
	b.takeWant(l.req(t0, 5), true)
	b.reset()
	// Full again, though the TAT has not passed, and refilled from Now.
	at := t0.Add(10 * time.Second)
	for range 5 {
		b.takeWant(l.req(at, 1), true)
	}
	b.takeWant(l.req(at, 1), false)

	// A partly drained bucket, reset twice.
	b.reset()
	b.takeWant(l.req(at, 2), true)
	b.reset()
	if err := s.ResetRate(ctx, b.key); err != nil {
		t.Fatalf("second ResetRate(%s): %v, want nil", shortHex(b.key), err)
	}
	b.takeWant(l.req(at, 5), true)
	b.takeWant(l.req(at, 1), false)
}

func rateResetAbsentIsNil(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	l := rateLimit{time.Minute, 3}
	b := newRateBucket(t, s, rateKey(1), t0)
	b.reset() // never used
	b.takeWant(l.req(t0, 3), true)
	b.takeWant(l.req(t0, 1), false)

	// A key whose TAT has passed, which the store may have forgotten.
	other := newRateBucket(t, s, rateKey(2), t0)
	other.takeWant(l.req(t0.Add(-time.Hour), 1), true)
	other.reset()
	other.takeWant(l.req(t0, 3), true)
	b.takeWant(l.req(t0, 1), false)
}

// rateKeys returns keys that differ from the first in one byte: the last,
// the first, the middle (a store that keys by a prefix merges them), and
// the first key with its halves swapped.
func rateKeys(seed uint64) [][]byte {
	first := pattern(seed, storage.RateKeyLen)
	keys := [][]byte{first}
	for _, i := range []int{storage.RateKeyLen - 1, 0, storage.RateKeyLen / 2} {
		k := bytes.Clone(first)
		k[i] ^= 0x01
		keys = append(keys, k)
	}
	half := storage.RateKeyLen / 2
	return append(keys, append(bytes.Clone(first[half:]), first[:half]...))
}

func rateKeysAreIndependent(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	l := rateLimit{time.Minute, 10}
	var buckets []*rateBucket
	for _, k := range rateKeys(3<<32 + 1) {
		buckets = append(buckets, newRateBucket(t, s, k, t0))
	}
	// The first is drained; each other one gets a TAT of its own.
	buckets[0].takeWant(l.req(t0, 10), true)
	for i, b := range buckets[1:] {
		b.takeWant(l.req(t0, int64(i+1)), true)
	}
	buckets[0].takeWant(l.req(t0, 1), false)
	for _, b := range buckets[1:] {
		b.takeWant(l.req(t0, 1), true)
	}
	// Resetting one resets only it.
	buckets[1].reset()
	buckets[1].takeWant(l.req(t0, 10), true)
	buckets[0].takeWant(l.req(t0, 1), false)
	for _, b := range buckets[2:] {
		b.takeWant(l.req(t0, 1), true)
	}
}

func rateBinaryKeysAreDistinct(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	keys := binaryKeys(storage.RateKeyLen)
	l := rateLimit{time.Minute, int64(2*len(keys) + 2)}
	buckets := make([]*rateBucket, len(keys))
	for i, k := range keys {
		buckets[i] = newRateBucket(t, s, k, t0)
		buckets[i].takeWant(l.req(t0, int64(i+1)), true)
	}
	for _, b := range buckets {
		b.takeWant(l.req(t0, 1), true)
	}
	// Resetting the all-NUL key resets only it.
	buckets[0].reset()
	buckets[0].takeWant(l.req(t0, l.burst), true)
	for _, b := range buckets[1:] {
		b.takeWant(l.req(t0, 1), true)
	}
}

func rateKeyIsNotRetained(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	l := rateLimit{time.Minute, 3}
	key := rateKey(1)
	b := newRateBucket(t, s, key, t0)
	b.takeWant(l.req(t0, 3), true)
	// The caller changes the key it passed: the store's state is still
	// the original key's, and the changed key is a fresh one.
	b.key = bytes.Clone(key)
	key[0] ^= 0xff
	b.takeWant(l.req(t0, 1), false)
	changed := newRateBucket(t, s, bytes.Clone(key), t0)
	changed.takeWant(l.req(t0, 3), true)
	b.takeWant(l.req(t0, 1), false)
}

// concurrentTakesAllowBurst races 50 goroutines of 4 requests each on one
// key at one Now: of the 200, exactly Burst are allowed, each with a TAT of
// its own.
func concurrentTakesAllowBurst(t *testing.T, s storage.RateStore) {
	raceTakes(t, s, rateLimit{time.Minute, 10}, 1, 4)
}

// concurrentCostlyTakesAllowBurst races 50 goroutines of 2 requests of
// cost 3 each on one key at one Now, Burst 10: exactly 3 are allowed.
func concurrentCostlyTakesAllowBurst(t *testing.T, s storage.RateStore) {
	raceTakes(t, s, rateLimit{time.Minute, 10}, 3, 2)
}

// raceTakes races concurrency goroutines of perRacer requests of cost each
// on one fresh key at one Now, and checks that exactly burst/cost are
// allowed, that the allowed ones report the TATs one after the other would
// (t0 + k×cost×interval), that the refused ones report the TAT of the
// empty bucket, and that the stored TAT is that one.
func raceTakes(t *testing.T, s storage.RateStore, l rateLimit, cost int64, perRacer int) {
	ctx := t.Context()
	t0 := epoch()
	b := newRateBucket(t, s, rateKey(1), t0)
	req := l.req(t0, cost)
	results := make([][]storage.RateResult, concurrency)
	errs := race(ctx, func(ctx context.Context, i int) error {
		for range perRacer {
			res, err := s.TakeRate(ctx, b.key, req)
			if err != nil {
				return err
			}
			results[i] = append(results[i], res)
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: TakeRate: %v", i, err)
		}
	}
	allowed := l.burst / cost
	step := cost * l.interval.Microseconds()
	full := b.micros(t0.UnixMicro() + allowed*step)
	var tats []int64
	var wrongRefusals []string
	for _, rs := range results {
		for _, r := range rs {
			switch {
			case r.Allowed:
				tats = append(tats, r.TAT.UnixMicro())
			case !r.TAT.Equal(full) && len(wrongRefusals) < 5:
				wrongRefusals = append(wrongRefusals, b.at(r.TAT))
			}
		}
	}
	total := concurrency * perRacer
	if int64(len(tats)) != allowed {
		t.Errorf("%d of %d concurrent requests of cost %d at one Now on a fresh key with Burst %d were allowed, want exactly %d", len(tats), total, cost, l.burst, allowed)
	}
	slices.Sort(tats)
	for k, tat := range tats {
		if want := t0.UnixMicro() + int64(k+1)*step; tat != want {
			t.Errorf("the allowed requests reported the TATs %s; want %d TATs, from %s every %v", b.microsList(tats), allowed, b.at(b.micros(t0.UnixMicro()+step)), time.Duration(step)*time.Microsecond)
			break
		}
	}
	if len(wrongRefusals) > 0 {
		t.Errorf("refused requests reported the TATs %s, want %s (the TAT of the empty bucket)", strings.Join(wrongRefusals, ", "), b.at(full))
	}
	if t.Failed() {
		return
	}
	b.tat = full.UnixMicro()
	b.takeWant(req, false)
	b.takeWant(l.req(t0.Add(l.interval*time.Duration(cost)), cost), true)
}

// rateOutOfBoundsIsInvalid makes requests just past each bound on a key
// with a state, at a Now past its TAT (where any write would show), and
// checks that each is refused with ErrInvalid and changes nothing.
func rateOutOfBoundsIsInvalid(t *testing.T, s storage.RateStore) {
	ctx := t.Context()
	t0 := epoch()
	l := rateLimit{time.Minute, 3}
	key := rateKey(1)
	b := newRateBucket(t, s, key, t0)
	b.takeWant(l.req(t0, 2), true)

	later := t0.Add(10 * time.Minute)
	valid := l.req(later, 1)
	with := func(change func(r *storage.RateRequest)) storage.RateRequest {
		r := valid
		change(&r)
		return r
	}
	longKey := append(bytes.Clone(key), 0)
	badKeys := map[string][]byte{
		"nil":      nil,
		"empty":    {},
		"31 bytes": key[:storage.RateKeyLen-1],
		"33 bytes": longKey,
		"64 bytes": append(bytes.Clone(key), key...),
	}
	widest := widestRate()
	badReqs := map[string]storage.RateRequest{
		"Interval 0":                 with(func(r *storage.RateRequest) { r.Interval = 0 }),
		"Interval -1m":               with(func(r *storage.RateRequest) { r.Interval = -time.Minute }),
		"Interval 1500ns":            with(func(r *storage.RateRequest) { r.Interval = 1500 * time.Nanosecond }),
		"Interval 999ns":             with(func(r *storage.RateRequest) { r.Interval = 999 * time.Nanosecond }),
		"Interval 1m+1ns":            with(func(r *storage.RateRequest) { r.Interval = time.Minute + time.Nanosecond }),
		"Burst 0":                    with(func(r *storage.RateRequest) { r.Burst = 0 }),
		"Burst -1":                   with(func(r *storage.RateRequest) { r.Burst = -1 }),
		"Burst MaxRateBurst+1":       with(func(r *storage.RateRequest) { r.Burst, r.Interval = storage.MaxRateBurst+1, time.Microsecond }),
		"Burst MinInt64":             with(func(r *storage.RateRequest) { r.Burst = math.MinInt64 }),
		"Cost 0":                     with(func(r *storage.RateRequest) { r.Cost = 0 }),
		"Cost -1":                    with(func(r *storage.RateRequest) { r.Cost = -1 }),
		"Cost Burst+1":               with(func(r *storage.RateRequest) { r.Cost = r.Burst + 1 }),
		"Cost MaxInt64":              with(func(r *storage.RateRequest) { r.Cost = math.MaxInt64 }),
		"zero Now":                   with(func(r *storage.RateRequest) { r.Now = time.Time{} }),
		"Interval MaxRateWindow+1µs": with(func(r *storage.RateRequest) { r.Interval, r.Burst = storage.MaxRateWindow+time.Microsecond, 1 }),
		"window of 3 just over": with(func(r *storage.RateRequest) {
			r.Interval = (storage.MaxRateWindow / 3).Truncate(time.Microsecond) + time.Microsecond
		}),
		"widest Interval + 1µs": with(func(r *storage.RateRequest) { r.Interval, r.Burst = widest.interval+time.Microsecond, widest.burst }),
		"Interval × Burst overflows": with(func(r *storage.RateRequest) {
			r.Interval, r.Burst = time.Duration(math.MaxInt64).Truncate(time.Microsecond), 2
		}),
		"Interval × Cost overflows too": with(func(r *storage.RateRequest) {
			r.Interval, r.Burst, r.Cost = time.Duration(math.MaxInt64/4).Truncate(time.Microsecond), 8, 8
		}),
	}
	for name, k := range badKeys {
		_, err := s.TakeRate(ctx, k, valid)
		wantInvalid(t, err, fmt.Sprintf("TakeRate with a key of %s", name), key)
		wantInvalid(t, s.ResetRate(ctx, k), fmt.Sprintf("ResetRate with a key of %s", name), key)
	}
	for name, req := range badReqs {
		if storage.ValidRateRequest(key, req) == nil {
			t.Fatalf("the suite's request %q is valid", name)
		}
		_, err := s.TakeRate(ctx, key, req)
		wantInvalid(t, err, fmt.Sprintf("TakeRate with %s", name), key)
	}
	// Nothing was taken, reset or moved: at t0 one unit is left.
	b.takeWant(l.req(t0, 1), true)
	b.takeWant(l.req(t0, 1), false)
}

// wantInvalid checks that err wraps storage.ErrInvalid and does not show
// key (in hex, as bytes, or raw).
func wantInvalid(t *testing.T, err error, call string, key []byte) {
	t.Helper()
	if !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("%s: %v, want an error wrapping storage.ErrInvalid", call, err)
		return
	}
	msg := err.Error()
	for _, shown := range []string{hex.EncodeToString(key[:8]), strings.ToUpper(hex.EncodeToString(key[:8])), strings.Trim(fmt.Sprint(key[:8]), "[]"), string(key[:8])} {
		if strings.Contains(msg, shown) {
			t.Errorf("%s: the error %q shows the key", call, msg)
			return
		}
	}
}

// rateBoundsAreAccepted makes requests exactly at each bound.
func rateBoundsAreAccepted(t *testing.T, s storage.RateStore) {
	t0 := epoch()
	// The largest Burst, with the widest Interval it allows, all at once.
	l := widestRate()
	b := newRateBucket(t, s, rateKey(1), t0)
	b.takeWant(l.req(t0, storage.MaxRateBurst), true)
	b.takeWant(l.req(t0, 1), false)
	b.takeWant(l.req(t0.Add(l.interval), 1), true)
	b.takeWant(l.req(t0.Add(l.interval), 1), false)
	window := time.Duration(l.burst) * l.interval
	b.takeWant(l.req(t0.Add(window), storage.MaxRateBurst), false)
	b.takeWant(l.req(t0.Add(window+l.interval), storage.MaxRateBurst), true)

	// Interval × Burst exactly MaxRateWindow, two ways.
	for i, l := range []rateLimit{
		{time.Hour, int64(storage.MaxRateWindow / time.Hour)},
		{storage.MaxRateWindow, 1},
	} {
		b := newRateBucket(t, s, rateKey(uint64(2+i)), t0)
		b.takeWant(l.req(t0, l.burst), true)
		b.takeWant(l.req(t0.Add(l.interval-time.Microsecond), 1), false)
		b.takeWant(l.req(t0.Add(l.interval), 1), true)
		b.takeWant(l.req(t0.Add(storage.MaxRateWindow), l.burst), false)
		b.takeWant(l.req(t0.Add(storage.MaxRateWindow+l.interval), l.burst), true)
	}

	// The smallest Interval, Burst and Cost. (Later requests do not
	// depend on a TAT this close: see RunRateStore.)
	small := rateLimit{time.Microsecond, 1}
	b = newRateBucket(t, s, rateKey(4), t0)
	b.takeWant(small.req(t0, 1), true)
	b.takeWant(small.req(t0.Add(time.Microsecond), 1), true)
	b.takeWant(small.req(t0.Add(time.Second), 1), true)
}

// rateContextIsHonoured checks that every RateStore method, called with a
// context that is already done, fails with want and changes nothing.
func rateContextIsHonoured(t *testing.T, s storage.RateStore, done context.Context, want error) {
	t.Helper()
	t0 := epoch()
	l := rateLimit{time.Minute, 3}
	// An absent key gets no state.
	fresh := newRateBucket(t, s, rateKey(1), t0)
	if _, err := s.TakeRate(done, fresh.key, l.req(t0, 3)); !errors.Is(err, want) {
		t.Errorf("TakeRate (fresh key) with a done context: %v, want an error matching %v", err, want)
	}
	fresh.takeWant(l.req(t0, 3), true)

	// A drained bucket is neither taken from nor reset.
	b := newRateBucket(t, s, rateKey(2), t0)
	b.takeWant(l.req(t0, 3), true)
	if _, err := s.TakeRate(done, b.key, l.req(t0.Add(time.Hour), 3)); !errors.Is(err, want) {
		t.Errorf("TakeRate with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.ResetRate(done, b.key); !errors.Is(err, want) {
		t.Errorf("ResetRate with a done context: %v, want an error matching %v", err, want)
	}
	b.takeWant(l.req(t0, 1), false)
	b.takeWant(l.req(t0.Add(time.Minute), 1), true)
}

// rateKey returns the n-th rate key of the clauses: storage.RateKeyLen
// bytes that look like a hash output, different for every n.
func rateKey(n uint64) []byte { return pattern(3<<32+n, storage.RateKeyLen) }

// binaryKeys returns distinct keys of n bytes that a store keeping keys as
// text would mangle or merge: the first is all NUL; then keys that
// together hold every byte value; all 0xff; one that differs from the
// first only after its NULs; ASCII letters in either case; trailing
// spaces, a tab and a NUL after the same letters; not UTF-8.
func binaryKeys(n int) [][]byte {
	filled := func(b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	keys := [][]byte{make([]byte, n)}
	for start := 0; start < 256; start += n {
		k := make([]byte, n)
		for i := range k {
			k[i] = byte(start + i)
		}
		keys = append(keys, k)
	}
	lastOne := make([]byte, n)
	lastOne[n-1] = 1
	lower, upper := filled('a'), filled('A')
	space := append(filled('a')[:n-2], ' ', ' ')
	tab := append(filled('a')[:n-1], '\t')
	nul := append(filled('a')[:n-1], 0)
	invalid := filled(0xfe)
	invalid[0], invalid[1] = 0xc3, 0x28
	return append(keys, filled(0xff), lastOne, lower, upper, space, tab, nul, invalid)
}

// A rateBucket follows one key of a RateStore: it holds the TAT the store
// must hold, from storage.DecideRate's decisions so far, and checks each
// TakeRate against DecideRate.
type rateBucket struct {
	t   *testing.T
	s   storage.RateStore
	key []byte
	t0  time.Time // the clause's epoch, which messages show times from
	tat int64     // µs since 1970; 0 for none
}

func newRateBucket(t *testing.T, s storage.RateStore, key []byte, t0 time.Time) *rateBucket {
	return &rateBucket{t: t, s: s, key: key, t0: t0}
}

// takeWant calls TakeRate with req, checks that the result is
// storage.DecideRate's, and that DecideRate allows req if and only if
// allowed (which checks the clause's script). A difference ends the test:
// every later decision would differ too.
func (b *rateBucket) takeWant(req storage.RateRequest, allowed bool) storage.RateResult {
	b.t.Helper()
	wantAllowed, wantTAT := storage.DecideRate(b.tat, req)
	if wantAllowed != allowed {
		b.t.Fatalf("the suite is wrong: storage.DecideRate(%s) allows %s: %t", b.at(b.micros(b.tat)), b.call(req), wantAllowed)
	}
	got, err := b.s.TakeRate(b.t.Context(), b.key, req)
	if err != nil {
		b.t.Fatalf("%s: %v", b.call(req), err)
	}
	if got.Allowed != wantAllowed || !got.TAT.Equal(b.micros(wantTAT)) {
		b.t.Fatalf("%s, with the stored TAT %s: allowed %t, TAT %s; want allowed %t, TAT %s (storage.DecideRate)",
			b.call(req), b.at(b.micros(b.tat)), got.Allowed, b.at(got.TAT), wantAllowed, b.at(b.micros(wantTAT)))
	}
	if wantAllowed {
		b.tat = wantTAT
	}
	return got
}

// reset calls ResetRate.
func (b *rateBucket) reset() {
	b.t.Helper()
	if err := b.s.ResetRate(b.t.Context(), b.key); err != nil {
		b.t.Fatalf("ResetRate(%s): %v", shortHex(b.key), err)
	}
	b.tat = 0
}

func (b *rateBucket) call(req storage.RateRequest) string {
	return fmt.Sprintf("TakeRate(%s, Now %s, Interval %v, Burst %d, Cost %d)", shortHex(b.key), b.at(req.Now), req.Interval, req.Burst, req.Cost)
}

// micros returns the time of a TAT in µs, or the zero time for none.
func (b *rateBucket) micros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

func (b *rateBucket) microsList(us []int64) string {
	var s []string
	for _, u := range us {
		s = append(s, b.at(b.micros(u)))
	}
	return shortList(s)
}

// shortList shows at most a dozen items.
func shortList(items []string) string {
	const most = 12
	if len(items) > most {
		items = append(items[:most:most], fmt.Sprintf("and %d more", len(items)-most))
	}
	return "[" + strings.Join(items, " ") + "]"
}

// at shows a time from the clause's epoch.
func (b *rateBucket) at(when time.Time) string { return since(b.t0, when) }

// since shows when as an offset from t0 ("t0+1m30s"), or "none".
func since(t0, when time.Time) string {
	if when.IsZero() {
		return "none"
	}
	d := when.Sub(t0)
	if d < 0 {
		return "t0" + d.String()
	}
	return "t0+" + d.String()
}

// RunLockoutStore tests that a [storage.LockoutStore] keeps its contract,
// one subtest per clause. It is for adapters that provide only this
// interface; [Run] calls it too. newStore must return an empty, isolated
// store on every call; cleanup goes through t.Cleanup.
//
// Every attempt is checked against [storage.DecideAttempt]: the suite
// follows each key with the state the store must hold, and every
// BeginAttempt must return exactly what DecideAttempt returns from that
// state (admitted or not; Failures and Locks; LockedUntil and Expires to
// the millisecond, in any time zone). A LockedUntil that is not after Now
// may be reported as zero or as any time not after Now, as the contract
// allows: the account is not locked either way. Besides the plain clauses
// (a fresh key's MaxFailures attempts, the lock and its end at exactly
// LockedUntil, locks that double up to MaxLockFor, a state forgotten at
// exactly Expires, refusals that store nothing, ResetLockout; and
// RefundAttempt, checked against [storage.DecideRefund]: a pending count
// given back, a running lock undone, counts of other locks, expired states
// and absent keys left alone, 50 concurrent refunds exact), the
// subtests try what adapters get wrong: request fields that change from
// one attempt to the next on one key (only the state is stored), Now with
// nanoseconds and durations that are not whole milliseconds (times are
// truncated to the millisecond, LockFor only after doubling), Now from 1970
// to 2200 and moving back, 64 locks in a row (a lock's growth computed by
// shifting overflows), keys with every byte value and keys that differ only
// in one byte, a key changed by the caller after the call, 50 goroutines
// attempting at once on a fresh key (exactly MaxFailures are admitted, and
// the account is locked once), every bound exactly (it works) and just past
// it (an error wrapping storage.ErrInvalid that names no key, and nothing
// changes), and contexts already done.
//
// As for [RunRateStore], whenever a later attempt depends on a stored
// state, that state's Expires is at least 10 s after the Now of the
// attempt that stored it, so that an adapter that forgets states with a
// TTL on its own clock passes if it answers within 10 s. The suite does not
// check that expired states are forgotten, nor what an adapter whose
// memory is full does.
func RunLockoutStore(t *testing.T, newStore func(t *testing.T) storage.LockoutStore) {
	runClauses(t, lockoutClauses, newStore)
}

// lockoutClauses are the LockoutStore subtests, in the order of the
// contract.
var lockoutClauses = []clause[storage.LockoutStore]{
	// BeginAttempt: counting, locking, forgetting.
	{"FreshKeyAdmitsMaxFailures", freshKeyAdmitsMaxFailures},
	{"AttemptMatchesDecideAttempt", attemptMatchesDecideAttempt},
	{"RefusalChangesNothing", lockoutRefusalChangesNothing},
	{"LockEndsAtLockedUntil", lockEndsAtLockedUntil},
	{"LocksGrowUpToMaxLockFor", locksGrowUpToMaxLockFor},
	{"ExpiredStateIsAbsent", expiredLockoutIsAbsent},
	{"OnlyStateIsStored", onlyStateIsStored},
	{"MillisecondPrecision", lockoutMillisecondPrecision},
	{"TimesFrom1970To2200", lockoutTimesFrom1970To2200},

	// ResetLockout.
	{"ResetClearsState", resetClearsState},
	{"ResetAbsentIsNil", lockoutResetAbsentIsNil},

	// RefundAttempt.
	{"RefundGivesBackPendingCount", refundGivesBackPendingCount},
	{"RefundUndoesRunningLock", refundUndoesRunningLock},
	{"RefundLeavesOtherCountsAlone", refundLeavesOtherCountsAlone},
	{"ConcurrentRefundsAreExact", concurrentRefundsAreExact},
	{"RefundOutOfBoundsIsInvalid", refundOutOfBoundsIsInvalid},

	// One state per key; keys are opaque and not retained.
	{"KeysAreIndependent", lockoutKeysAreIndependent},
	{"BinaryKeysAreDistinct", lockoutBinaryKeysAreDistinct},
	{"KeyIsNotRetained", lockoutKeyIsNotRetained},

	// BeginAttempt under concurrency.
	{"ConcurrentAttemptsAdmitMaxFailures", concurrentAttemptsAdmitMaxFailures},

	// Bounds.
	{"OutOfBoundsIsInvalid", lockoutOutOfBoundsIsInvalid},
	{"BoundsAreAccepted", lockoutBoundsAreAccepted},

	// Every method honours its context.
	{"CanceledContextIsHonoured", canceledContextIsHonoured(lockoutContextIsHonoured)},
	{"ExpiredDeadlineIsHonoured", expiredDeadlineIsHonoured(lockoutContextIsHonoured)},
}

// A lockoutPolicy is the fields of a LockoutRequest but Now.
type lockoutPolicy struct {
	maxFailures         int
	lockFor, maxLockFor time.Duration
	forgetAfter         time.Duration
}

// req returns the request at now.
func (p lockoutPolicy) req(now time.Time) storage.LockoutRequest {
	return storage.LockoutRequest{Now: now, MaxFailures: p.maxFailures, LockFor: p.lockFor, MaxLockFor: p.maxLockFor, ForgetAfter: p.forgetAfter}
}

// A lockoutStep is one attempt of a script: at t0+at, and whether
// storage.DecideAttempt admits it (which the script checks of itself).
type lockoutStep struct {
	at       time.Duration
	admitted bool
}

// lockoutScriptPolicy and lockoutScript are a sequence of attempts on one
// key that moves through every case of the lockout.
var (
	lockoutScriptPolicy = lockoutPolicy{3, time.Minute, 10 * time.Minute, 30 * time.Minute}
	lockoutScript       = []lockoutStep{
		{0, true},
		{10 * time.Second, true},
		{20 * time.Second, true},                   // the third failure locks until 1m20s
		{30 * time.Second, false},                  // locked
		{80*time.Second - time.Millisecond, false}, // 1 ms before the lock ends
		{80 * time.Second, true},                   // the lock ends at LockedUntil
		{90 * time.Second, true},
		{100 * time.Second, true}, // the second lock: 2m, until 3m40s
		{time.Minute, false},      // Now moved back, into the lock
		{220 * time.Second, true},
		{221 * time.Second, true},
		{222 * time.Second, true}, // 4m, until 7m42s
		{462 * time.Second, true},
		{463 * time.Second, true},
		{464 * time.Second, true}, // 8m, until 15m44s
		{944 * time.Second, true},
		{945 * time.Second, true},
		{946 * time.Second, true}, // 16m is past MaxLockFor: 10m, until 25m46s
		{1500 * time.Second, false},
		{1546 * time.Second, true},                  // expires 30m after: at 55m46s
		{3346*time.Second - time.Millisecond, true}, // 1 ms before it expires
		{3347 * time.Second, true},                  // the sixth lock, of 10m, until 65m47s
		{3947 * time.Second, true},                  // expires at 95m47s
		{5747 * time.Second, true},                  // expired: as new
		{5748 * time.Second, true},
		{5749 * time.Second, true}, // the first lock again: 1m
		{5750 * time.Second, false},
		{5809 * time.Second, true},
	}
)

// runLockoutScript runs script on a from its t0.
func runLockoutScript(a *lockoutAccount, p lockoutPolicy, script []lockoutStep) {
	a.t.Helper()
	for _, step := range script {
		a.attemptWant(p.req(a.t0.Add(step.at)), step.admitted)
	}
}

func freshKeyAdmitsMaxFailures(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	for i, maxFailures := range []int{1, 3, 10} {
		p := lockoutPolicy{maxFailures, time.Minute, time.Hour, time.Hour}
		a := newLockoutAccount(t, s, lockoutKey(uint64(i)), t0)
		for n := 1; n <= maxFailures; n++ {
			got := a.attemptWant(p.req(t0), true)
			switch {
			case n < maxFailures && (got.Failures != n || got.Locks != 0):
				t.Fatalf("attempt %d of a fresh key with MaxFailures %d: Failures %d, Locks %d; want %d, 0", n, maxFailures, got.Failures, got.Locks, n)
			case n == maxFailures && (got.Failures != 0 || got.Locks != 1 || !got.LockedUntil.Equal(time.UnixMilli(t0.UnixMilli()).Add(time.Minute))):
				t.Fatalf("attempt %d of a fresh key with MaxFailures %d: %s; want it to lock the account until Now+1m", n, maxFailures, a.show(got))
			}
		}
		for range 3 {
			a.attemptWant(p.req(t0), false)
		}
	}
}

func attemptMatchesDecideAttempt(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	runLockoutScript(newLockoutAccount(t, s, lockoutKey(1), t0), lockoutScriptPolicy, lockoutScript)
}

// lockoutRefusalChangesNothing makes attempts on a locked account, then
// checks with the first one after the lock that they were not counted and
// did not move the lock or the expiry.
func lockoutRefusalChangesNothing(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{2, 5 * time.Minute, time.Hour, 10 * time.Minute}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0.Add(time.Second)), true)
	until := a.st.LockedUntil
	for _, at := range []time.Time{t0.Add(2 * time.Second), t0.Add(time.Minute), until.Add(-time.Millisecond), t0.Add(-time.Hour), until.Add(-time.Nanosecond)} {
		a.attemptWant(p.req(at), false)
	}
	a.attemptWant(p.req(until), true) // Failures 1: the refusals did not count
	// Expires is 10 min after the lock's end, not after a refusal.
	a.attemptWant(p.req(until.Add(10*time.Minute-time.Millisecond)), true) // the second lock: 10 min
	a.attemptWant(p.req(a.st.LockedUntil.Add(-time.Millisecond)), false)
	a.attemptWant(p.req(a.st.LockedUntil), true)
}

// lockEndsAtLockedUntil checks that an account is locked until 1 ms
// before LockedUntil (and 1 ns, which is the same millisecond), and
// admitted at LockedUntil.
func lockEndsAtLockedUntil(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{2, 90 * time.Second, time.Hour, time.Hour}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0.Add(500*time.Millisecond)), true)
	for range 2 {
		until := a.st.LockedUntil
		a.attemptWant(p.req(until.Add(-time.Millisecond).In(east)), false)
		a.attemptWant(p.req(until.Add(-time.Nanosecond).In(west)), false)
		a.attemptWant(p.req(until), true)
		a.attemptWant(p.req(until.Add(time.Millisecond-time.Nanosecond)), true) // locks again, for twice as long
	}
}

// locksGrowUpToMaxLockFor locks an account again and again, one attempt
// each time (MaxFailures 1): each lock lasts twice the one before, up to
// MaxLockFor. The second account takes 64 locks from 1 ms to 90 days,
// more doublings than a 64-bit shift survives.
func locksGrowUpToMaxLockFor(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{1, time.Minute, 5 * time.Minute, time.Hour}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	at := t0
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		got := a.attemptWant(p.req(at), true)
		if d := got.LockedUntil.Sub(time.UnixMilli(at.UnixMilli())); d != want {
			t.Fatalf("lock %d with LockFor 1m and MaxLockFor 5m lasts %v, want %v", i+1, d, want)
		}
		at = a.st.LockedUntil
		a.attemptWant(p.req(at.Add(-time.Millisecond)), false)
	}

	p = lockoutPolicy{1, time.Millisecond, storage.MaxLockoutDuration, time.Hour}
	a = newLockoutAccount(t, s, lockoutKey(2), t0)
	at = t0
	for range 64 {
		a.attemptWant(p.req(at), true)
		at = a.st.LockedUntil
	}
	a.attemptWant(p.req(at.Add(-time.Millisecond)), false)
	a.attemptWant(p.req(at), true)
}

// expiredLockoutIsAbsent checks that a state is remembered until 1 ms
// before its Expires, and forgotten at Expires: failures and the lock's
// growth start again.
func expiredLockoutIsAbsent(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{3, time.Minute, time.Hour, 10 * time.Minute}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0.Add(time.Second)), true)
	a.attemptWant(p.req(a.st.Expires.Add(-time.Millisecond)), true) // the third failure locks
	a.attemptWant(p.req(a.st.Expires.Add(-time.Millisecond)), true) // after the lock: Failures 1 of Locks 1
	got := a.attemptWant(p.req(a.st.Expires.In(east)), true)        // forgotten
	if got.Failures != 1 || got.Locks != 0 {
		t.Fatalf("the first attempt at Expires: %s, want Failures 1, Locks 0 (the state is forgotten)", a.show(got))
	}
	at := a.st.Expires.Add(-time.Minute)
	a.attemptWant(p.req(at), true)
	a.attemptWant(p.req(at.Add(time.Second)), true) // the first lock again: 1 min
	a.attemptWant(p.req(a.st.LockedUntil.Add(-time.Millisecond)), false)
	a.attemptWant(p.req(a.st.LockedUntil), true)
}

// onlyStateIsStored changes every field of the request from one attempt to
// the next on one key: each decision uses the request's, from the stored
// state.
func onlyStateIsStored(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	lenient := lockoutPolicy{5, time.Minute, time.Hour, 30 * time.Minute}
	strict := lockoutPolicy{3, 2 * time.Minute, time.Hour, 30 * time.Minute}
	forgetful := lockoutPolicy{10, 5 * time.Minute, time.Hour, time.Minute}
	capped := lockoutPolicy{1, 3 * time.Minute, 4 * time.Minute, time.Hour}
	for i := range 3 {
		a.attemptWant(lenient.req(t0.Add(time.Duration(i)*time.Second)), true)
	}
	a.attemptWant(strict.req(t0.Add(3*time.Second)), true) // 4 ≥ 3: locks for 2 min
	until := a.st.LockedUntil
	a.attemptWant(lenient.req(until.Add(-time.Millisecond)), false)
	a.attemptWant(forgetful.req(until), true) // expires 1 min later
	a.attemptWant(lenient.req(until.Add(time.Minute)), true)
	a.attemptWant(strict.req(until.Add(time.Minute+time.Second)), true)
	a.attemptWant(strict.req(until.Add(time.Minute+2*time.Second)), true) // locks, for 2 min
	a.attemptWant(capped.req(a.st.LockedUntil), true)                     // the second lock: 6 min capped to 4
	a.attemptWant(capped.req(a.st.LockedUntil.Add(-time.Millisecond)), false)
}

// lockoutMillisecondPrecision checks that Now is truncated to the
// millisecond, that a LockFor that is not a whole number of milliseconds
// is doubled before it is truncated (1.5 ms: locks of 1, 3, 6 ms), that
// MaxLockFor and ForgetAfter are truncated too, and that the times
// returned are exact to the millisecond.
func lockoutMillisecondPrecision(t *testing.T, s storage.LockoutStore) {
	t0 := time.Now().Truncate(time.Second)
	p := lockoutPolicy{1, 1500 * time.Microsecond, 10*time.Millisecond + 700*time.Microsecond, 10*time.Minute + 2500*time.Microsecond}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	at := t0.Add(123_456_789 * time.Nanosecond)
	for range 6 {
		a.attemptWant(p.req(at), true)
		a.attemptWant(p.req(a.st.LockedUntil.Add(-time.Nanosecond).In(east)), false)
		at = a.st.LockedUntil.Add(999_999 * time.Nanosecond).In(west)
	}
	// Two failures in a row with MaxFailures 3, and the sub-millisecond
	// ForgetAfter: forgotten at Expires, not 2.5 ms later.
	p.maxFailures = 3
	a.attemptWant(p.req(at), true)
	a.attemptWant(p.req(a.st.Expires.Add(-time.Nanosecond)), true)
	a.attemptWant(p.req(a.st.Expires), true)
}

// lockoutTimesFrom1970To2200 runs the script of AttemptMatchesDecideAttempt
// at three epochs far from the store's clock: just after 1970 (an adapter
// that forgets a state once its own clock passes its Expires forgets these
// at once), across 2^31 seconds, and in 2200, where the last key is
// locked for the longest time.
func lockoutTimesFrom1970To2200(t *testing.T, s storage.LockoutStore) {
	epochs := []time.Time{
		time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 7, 0, time.UTC),
		time.Date(2200, 1, 1, 0, 0, 0, 999_999_999, west),
	}
	for i, t0 := range epochs {
		runLockoutScript(newLockoutAccount(t, s, lockoutKey(uint64(i)), t0), lockoutScriptPolicy, lockoutScript)
	}
	t0 := epochs[len(epochs)-1]
	const longest = storage.MaxLockoutDuration
	p := lockoutPolicy{1, longest, longest, longest}
	a := newLockoutAccount(t, s, lockoutKey(10), t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(a.st.LockedUntil.Add(-time.Millisecond)), false)
	a.attemptWant(p.req(a.st.LockedUntil), true)
}

func resetClearsState(t *testing.T, s storage.LockoutStore) {
	ctx := t.Context()
	t0 := epoch()
	p := lockoutPolicy{2, time.Minute, time.Hour, time.Hour}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0.Add(time.Second)), true) // locked for 1 min
	a.attemptWant(p.req(a.st.LockedUntil), true)
	a.attemptWant(p.req(a.st.LockedUntil), true) // locked again, for 2 min
	at := a.st.LockedUntil.Add(-30 * time.Second)
	a.attemptWant(p.req(at), false)

	// A reset lifts the lock at once, and its growth: the next lock is
	// 1 min again.
	a.reset()
	got := a.attemptWant(p.req(at), true)
	if got.Failures != 1 || got.Locks != 0 {
		t.Fatalf("the first attempt after ResetLockout: %s, want Failures 1, Locks 0", a.show(got))
	}
	a.attemptWant(p.req(at), true)
	a.attemptWant(p.req(a.st.LockedUntil.Add(-time.Millisecond)), false)

	// A reset after one failure, twice.
	at = a.st.LockedUntil
	a.attemptWant(p.req(at), true)
	a.reset()
	if err := s.ResetLockout(ctx, a.key); err != nil {
		t.Fatalf("second ResetLockout(%s): %v, want nil", shortHex(a.key), err)
	}
	a.attemptWant(p.req(at), true)
	a.attemptWant(p.req(at), true) // the first lock again
}

func lockoutResetAbsentIsNil(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{2, time.Minute, time.Hour, time.Hour}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	a.reset() // never used
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0), false)

	// A key whose state has expired, which the store may have forgotten.
	other := newLockoutAccount(t, s, lockoutKey(2), t0)
	other.attemptWant(p.req(t0.Add(-2*time.Hour)), true)
	other.reset()
	other.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0), false)
}

func lockoutKeysAreIndependent(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{5, time.Minute, time.Hour, time.Hour}
	var accounts []*lockoutAccount
	for _, k := range rateKeys(4<<32 + 1) {
		accounts = append(accounts, newLockoutAccount(t, s, k, t0))
	}
	// The first is locked; each other one gets a count of its own.
	for range 5 {
		accounts[0].attemptWant(p.req(t0), true)
	}
	for i, a := range accounts[1:] {
		for range i + 1 {
			a.attemptWant(p.req(t0), true)
		}
	}
	accounts[0].attemptWant(p.req(t0), false)
	for _, a := range accounts[1:] {
		a.attemptWant(p.req(t0), true)
	}
	// Resetting one resets only it.
	accounts[0].reset()
	accounts[0].attemptWant(p.req(t0), true)
	accounts[4].attemptWant(p.req(t0), false) // the fifth failure locked it
	accounts[4].reset()
	accounts[4].attemptWant(p.req(t0), true)
	accounts[3].attemptWant(p.req(t0), true) // the fifth: locks
	accounts[3].attemptWant(p.req(t0), false)
	for _, a := range accounts[1:3] {
		a.attemptWant(p.req(t0), true)
	}
}

func lockoutBinaryKeysAreDistinct(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{storage.MaxLockoutFailures, time.Minute, time.Hour, time.Hour}
	keys := binaryKeys(storage.RateKeyLen)
	accounts := make([]*lockoutAccount, len(keys))
	for i, k := range keys {
		accounts[i] = newLockoutAccount(t, s, k, t0)
		for range i + 1 {
			accounts[i].attemptWant(p.req(t0), true)
		}
	}
	for _, a := range accounts {
		a.attemptWant(p.req(t0), true)
	}
	// Resetting the all-NUL key resets only it.
	accounts[0].reset()
	for _, a := range accounts {
		a.attemptWant(p.req(t0), true)
	}
}

func lockoutKeyIsNotRetained(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{2, time.Minute, time.Hour, time.Hour}
	key := lockoutKey(1)
	a := newLockoutAccount(t, s, key, t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0), true)
	// The caller changes the key it passed: the store's state is still
	// the original key's, and the changed key is a fresh one.
	a.key = bytes.Clone(key)
	key[0] ^= 0xff
	a.attemptWant(p.req(t0), false)
	changed := newLockoutAccount(t, s, bytes.Clone(key), t0)
	changed.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0), false)
	changed.attemptWant(p.req(t0), true)
}

// concurrentAttemptsAdmitMaxFailures races 50 attempts on a fresh key at
// one Now, with MaxFailures 10: exactly 10 are admitted, with the states
// that 10 attempts one after the other get (Failures 1 to 9, then the
// lock), and the others are refused with the locked state.
func concurrentAttemptsAdmitMaxFailures(t *testing.T, s storage.LockoutStore) {
	ctx := t.Context()
	t0 := epoch()
	p := lockoutPolicy{10, time.Minute, time.Hour, time.Hour}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	req := p.req(t0)
	admitted := make([]bool, concurrency)
	states := make([]storage.LockoutState, concurrency)
	errs := race(ctx, func(ctx context.Context, i int) error {
		var err error
		admitted[i], states[i], err = s.BeginAttempt(ctx, a.key, req)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: BeginAttempt: %v", i, err)
		}
	}
	// The states of attempts one after the other.
	var want []storage.LockoutState
	var locked storage.LockoutState
	for range p.maxFailures {
		_, locked = storage.DecideAttempt(locked, req)
		want = append(want, locked)
	}
	var got []storage.LockoutState
	var wrongRefusals []string
	for i, ok := range admitted {
		switch {
		case ok:
			got = append(got, states[i])
		case lockoutDiff(states[i], locked, t0) != "" && len(wrongRefusals) < 5:
			wrongRefusals = append(wrongRefusals, a.show(states[i]))
		}
	}
	if len(got) != p.maxFailures {
		t.Errorf("%d of %d concurrent attempts at one Now on a fresh key with MaxFailures %d were admitted, want exactly %d", len(got), concurrency, p.maxFailures, p.maxFailures)
	}
	byCount := func(x, y storage.LockoutState) int {
		if x.Locks != y.Locks {
			return x.Locks - y.Locks
		}
		return x.Failures - y.Failures
	}
	slices.SortFunc(got, byCount)
	slices.SortFunc(want, byCount)
	if len(got) == len(want) {
		for i := range got {
			if lockoutDiff(got[i], want[i], t0) != "" {
				t.Errorf("the admitted attempts reported %s; want %s (one after the other)", a.showAll(got), a.showAll(want))
				break
			}
		}
	}
	if len(wrongRefusals) > 0 {
		t.Errorf("refused attempts reported %s, want %s (the locked state)", strings.Join(wrongRefusals, ", "), a.show(locked))
	}
	if t.Failed() {
		return
	}
	a.st = locked
	a.attemptWant(req, false)
	a.attemptWant(p.req(locked.LockedUntil), true)
}

// lockoutOutOfBoundsIsInvalid makes attempts just past each bound on a key
// with two failures of three, which any write would lock, and checks that
// each is refused with ErrInvalid and changes nothing.
func lockoutOutOfBoundsIsInvalid(t *testing.T, s storage.LockoutStore) {
	ctx := t.Context()
	t0 := epoch()
	p := lockoutPolicy{3, time.Minute, time.Hour, time.Hour}
	key := lockoutKey(1)
	a := newLockoutAccount(t, s, key, t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0.Add(time.Second)), true)

	valid := p.req(t0.Add(2 * time.Second))
	with := func(change func(r *storage.LockoutRequest)) storage.LockoutRequest {
		r := valid
		change(&r)
		return r
	}
	const longest = storage.MaxLockoutDuration
	badKeys := map[string][]byte{
		"nil":      nil,
		"empty":    {},
		"31 bytes": key[:storage.RateKeyLen-1],
		"33 bytes": append(bytes.Clone(key), 0),
		"64 bytes": append(bytes.Clone(key), key...),
	}
	badReqs := map[string]storage.LockoutRequest{
		"MaxFailures 0":                     with(func(r *storage.LockoutRequest) { r.MaxFailures = 0 }),
		"MaxFailures -1":                    with(func(r *storage.LockoutRequest) { r.MaxFailures = -1 }),
		"MaxFailures MaxLockoutFailures+1":  with(func(r *storage.LockoutRequest) { r.MaxFailures = storage.MaxLockoutFailures + 1 }),
		"MaxFailures MinInt":                with(func(r *storage.LockoutRequest) { r.MaxFailures = math.MinInt }),
		"LockFor 0":                         with(func(r *storage.LockoutRequest) { r.LockFor = 0 }),
		"LockFor -1m":                       with(func(r *storage.LockoutRequest) { r.LockFor = -time.Minute }),
		"LockFor 1ms-1ns":                   with(func(r *storage.LockoutRequest) { r.LockFor = time.Millisecond - time.Nanosecond }),
		"MaxLockFor below LockFor":          with(func(r *storage.LockoutRequest) { r.LockFor, r.MaxLockFor = 2*time.Minute, time.Minute }),
		"MaxLockFor MaxLockoutDuration+1ns": with(func(r *storage.LockoutRequest) { r.MaxLockFor = longest + time.Nanosecond }),
		"LockFor MaxLockoutDuration+1ms": with(func(r *storage.LockoutRequest) {
			r.LockFor, r.MaxLockFor = longest+time.Millisecond, longest+time.Millisecond
		}),
		"ForgetAfter 0":                      with(func(r *storage.LockoutRequest) { r.ForgetAfter = 0 }),
		"ForgetAfter -1h":                    with(func(r *storage.LockoutRequest) { r.ForgetAfter = -time.Hour }),
		"ForgetAfter 1ms-1ns":                with(func(r *storage.LockoutRequest) { r.ForgetAfter = time.Millisecond - time.Nanosecond }),
		"ForgetAfter MaxLockoutDuration+1ns": with(func(r *storage.LockoutRequest) { r.ForgetAfter = longest + time.Nanosecond }),
		"ForgetAfter MaxInt64":               with(func(r *storage.LockoutRequest) { r.ForgetAfter = math.MaxInt64 }),
		"zero Now":                           with(func(r *storage.LockoutRequest) { r.Now = time.Time{} }),
	}
	for name, k := range badKeys {
		_, _, err := s.BeginAttempt(ctx, k, valid)
		wantInvalid(t, err, fmt.Sprintf("BeginAttempt with a key of %s", name), key)
		wantInvalid(t, s.ResetLockout(ctx, k), fmt.Sprintf("ResetLockout with a key of %s", name), key)
	}
	for name, req := range badReqs {
		if storage.ValidLockoutRequest(key, req) == nil {
			t.Fatalf("the suite's request %q is valid", name)
		}
		_, _, err := s.BeginAttempt(ctx, key, req)
		wantInvalid(t, err, fmt.Sprintf("BeginAttempt with %s", name), key)
	}
	// Nothing was counted or reset: the third failure locks.
	a.attemptWant(valid, true)
	a.attemptWant(valid, false)
}

// refundGivesBackPendingCount refunds attempts that have not locked the
// account: each gives back one count, so the lock comes that much later,
// and Expires does not move.
func refundGivesBackPendingCount(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{3, time.Minute, time.Hour, time.Hour}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0.Add(time.Second)), true)
	got := a.refundWant(p.req(t0.Add(2*time.Second)), 1, true)
	if got.Failures != 1 || got.Locks != 0 {
		t.Fatalf("a refund after two attempts: %s, want Failures 1, Locks 0", a.show(got))
	}
	a.refundWant(p.req(t0.Add(3*time.Second)), 1, true)
	a.refundWant(p.req(t0.Add(4*time.Second)), 1, false) // Failures 0: nothing to give back
	a.attemptWant(p.req(t0.Add(5*time.Second)), true)
	a.attemptWant(p.req(t0.Add(6*time.Second)), true)
	a.attemptWant(p.req(t0.Add(7*time.Second)), true) // the third counted attempt locks
	a.attemptWant(p.req(t0.Add(8*time.Second)), false)
	// After a lock has ended, a pending count of the second lock.
	a.attemptWant(p.req(a.st.LockedUntil), true)
	got = a.refundWant(p.req(a.st.LockedUntil.Add(time.Second)), 2, true)
	if got.Failures != 0 || got.Locks != 1 {
		t.Fatalf("a refund towards the second lock: %s, want Failures 0, Locks 1", a.show(got))
	}
}

// refundUndoesRunningLock refunds the attempt that locked the account
// while the lock runs: the lock is undone (the account is admitted at
// once, and one more attempt locks it again for the first lock's length,
// not twice it).
func refundUndoesRunningLock(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{3, time.Minute, time.Hour, time.Hour}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	for i := range 3 {
		a.attemptWant(p.req(t0.Add(time.Duration(i)*time.Second)), true)
	}
	a.attemptWant(p.req(t0.Add(3*time.Second)), false)
	got := a.refundWant(p.req(t0.Add(4*time.Second)), 1, true)
	if got.Failures != 2 || got.Locks != 0 || got.LockedUntil.UnixMilli() > t0.Add(4*time.Second).UnixMilli() {
		t.Fatalf("the refund of the locking attempt: %s, want Failures 2, Locks 0, not locked", a.show(got))
	}
	a.refundWant(p.req(t0.Add(5*time.Second)), 1, true) // and one more pending count
	a.attemptWant(p.req(t0.Add(6*time.Second)), true)
	a.attemptWant(p.req(t0.Add(7*time.Second)), true) // locks: the first lock again
	if d := a.st.LockedUntil.Sub(t0.Add(7 * time.Second)); d != time.Minute {
		t.Fatalf("the lock after an undone one lasts %v, want 1m (the first lock's)", d)
	}
	a.attemptWant(p.req(t0.Add(8*time.Second)), false)

	// MaxFailures 1: the undone lock leaves no failure.
	p = lockoutPolicy{1, time.Minute, time.Hour, time.Hour}
	b := newLockoutAccount(t, s, lockoutKey(2), t0)
	b.attemptWant(p.req(t0), true)
	b.attemptWant(p.req(b.st.LockedUntil), true) // the second lock
	got = b.refundWant(p.req(t0.Add(90*time.Second)), 2, true)
	if got.Failures != 0 || got.Locks != 1 {
		t.Fatalf("the refund of the second lock's attempt: %s, want Failures 0, Locks 1", b.show(got))
	}
	b.attemptWant(p.req(t0.Add(91*time.Second)), true) // the second lock again: 2m
}

// refundLeavesOtherCountsAlone refunds what is not there to give back: no
// state, an expired one, an attempt of a lock that has ended or of a lock
// before it, an attempt counted towards a later lock. Nothing changes.
func refundLeavesOtherCountsAlone(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	p := lockoutPolicy{2, time.Minute, time.Hour, 10 * time.Minute}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	a.refundWant(p.req(t0), 1, false) // no state
	o := newLockoutAccount(t, s, lockoutKey(2), t0)
	o.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0), true)
	a.refundWant(p.req(t0), 2, false) // towards a later lock
	a.refundWant(p.req(t0), 3, false)
	a.attemptWant(p.req(t0.Add(time.Second)), true) // locks until t0+1m1s
	a.refundWant(p.req(t0.Add(2*time.Second)), 2, false)
	until := a.st.LockedUntil
	a.refundWant(p.req(until), 1, false) // the lock has ended: its counts are spent
	a.attemptWant(p.req(until), true)
	a.refundWant(p.req(until), 1, false)                       // an attempt of the first lock
	a.attemptWant(p.req(a.st.Expires.Add(-time.Second)), true) // locks again: not forgotten
	a.refundWant(p.req(a.st.Expires), 2, false)                // expired: nothing to give back
	// The other key was not touched.
	o.attemptWant(p.req(t0.Add(time.Second)), true)
	o.attemptWant(p.req(t0.Add(2*time.Second)), false)
}

// concurrentRefundsAreExact counts attempts one after the other, then
// refunds them all at once: every count comes back, none twice.
func concurrentRefundsAreExact(t *testing.T, s storage.LockoutStore) {
	ctx := t.Context()
	t0 := epoch()
	p := lockoutPolicy{storage.MaxLockoutFailures, time.Minute, time.Hour, time.Hour}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	for range concurrency {
		a.attemptWant(p.req(t0), true)
	}
	req := p.req(t0.Add(time.Second))
	refunded := make([]bool, concurrency)
	errs := race(ctx, func(ctx context.Context, i int) error {
		var err error
		refunded[i], _, err = s.RefundAttempt(ctx, a.key, req, 1)
		return err
	})
	n := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: RefundAttempt: %v", i, err)
		}
		if refunded[i] {
			n++
		}
	}
	if n != concurrency {
		t.Fatalf("%d of %d concurrent refunds of %d counted attempts refunded, want all", n, concurrency, concurrency)
	}
	a.st.Failures = 0
	a.refundWant(req, 1, false)
	got := a.attemptWant(req, true)
	if got.Failures != 1 {
		t.Fatalf("after %d concurrent refunds of as many attempts: %s, want Failures 1", concurrency, a.show(got))
	}
}

// refundOutOfBoundsIsInvalid refunds with arguments just past each bound
// on a key with two failures: each is refused with ErrInvalid and changes
// nothing.
func refundOutOfBoundsIsInvalid(t *testing.T, s storage.LockoutStore) {
	ctx := t.Context()
	t0 := epoch()
	p := lockoutPolicy{3, time.Minute, time.Hour, time.Hour}
	key := lockoutKey(1)
	a := newLockoutAccount(t, s, key, t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0), true)
	valid := p.req(t0.Add(time.Second))
	for name, k := range map[string][]byte{"nil": nil, "31 bytes": key[:storage.RateKeyLen-1], "33 bytes": append(bytes.Clone(key), 0)} {
		_, _, err := s.RefundAttempt(ctx, k, valid, 1)
		wantInvalid(t, err, fmt.Sprintf("RefundAttempt with a key of %s", name), key)
	}
	for _, lock := range []int{0, -1, math.MinInt, math.MaxInt32 + 1} {
		_, _, err := s.RefundAttempt(ctx, key, valid, lock)
		wantInvalid(t, err, fmt.Sprintf("RefundAttempt towards lock %d", lock), key)
	}
	bad := valid
	bad.MaxFailures = 0
	_, _, err := s.RefundAttempt(ctx, key, bad, 1)
	wantInvalid(t, err, "RefundAttempt with MaxFailures 0", key)
	bad = valid
	bad.Now = time.Time{}
	_, _, err = s.RefundAttempt(ctx, key, bad, 1)
	wantInvalid(t, err, "RefundAttempt with a zero Now", key)
	a.attemptWant(valid, true) // nothing was refunded: the third locks
	a.attemptWant(valid, false)
}

// lockoutBoundsAreAccepted makes attempts exactly at each bound.
func lockoutBoundsAreAccepted(t *testing.T, s storage.LockoutStore) {
	t0 := epoch()
	const longest = storage.MaxLockoutDuration
	// The most failures, the shortest lock, the longest growth and
	// memory.
	p := lockoutPolicy{storage.MaxLockoutFailures, time.Millisecond, longest, longest}
	a := newLockoutAccount(t, s, lockoutKey(1), t0)
	for range storage.MaxLockoutFailures {
		a.attemptWant(p.req(t0), true)
	}
	a.attemptWant(p.req(t0), false)
	a.attemptWant(p.req(t0.Add(time.Millisecond)), true)

	// The longest lock, at once.
	p = lockoutPolicy{1, longest, longest, longest}
	a = newLockoutAccount(t, s, lockoutKey(2), t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(a.st.LockedUntil.Add(-time.Millisecond)), false)
	a.attemptWant(p.req(a.st.LockedUntil), true)
	a.attemptWant(p.req(a.st.LockedUntil.Add(-time.Millisecond)), false)

	// The shortest memory. (Later attempts do not depend on a state this
	// short-lived: see RunLockoutStore.)
	p = lockoutPolicy{2, time.Millisecond, time.Millisecond, time.Millisecond}
	a = newLockoutAccount(t, s, lockoutKey(3), t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0.Add(time.Millisecond)), true)
	a.attemptWant(p.req(t0.Add(time.Hour)), true)
}

// lockoutContextIsHonoured checks that every LockoutStore method, called
// with a context that is already done, fails with want and changes
// nothing.
func lockoutContextIsHonoured(t *testing.T, s storage.LockoutStore, done context.Context, want error) {
	t.Helper()
	t0 := epoch()
	p := lockoutPolicy{3, time.Minute, time.Hour, time.Hour}
	// An absent key gets no state.
	fresh := newLockoutAccount(t, s, lockoutKey(1), t0)
	if _, _, err := s.BeginAttempt(done, fresh.key, p.req(t0)); !errors.Is(err, want) {
		t.Errorf("BeginAttempt (fresh key) with a done context: %v, want an error matching %v", err, want)
	}
	fresh.attemptWant(p.req(t0), true)

	// An account with two failures is neither counted nor reset.
	a := newLockoutAccount(t, s, lockoutKey(2), t0)
	a.attemptWant(p.req(t0), true)
	a.attemptWant(p.req(t0), true)
	if _, _, err := s.BeginAttempt(done, a.key, p.req(t0)); !errors.Is(err, want) {
		t.Errorf("BeginAttempt with a done context: %v, want an error matching %v", err, want)
	}
	if err := s.ResetLockout(done, a.key); !errors.Is(err, want) {
		t.Errorf("ResetLockout with a done context: %v, want an error matching %v", err, want)
	}
	if _, _, err := s.RefundAttempt(done, a.key, p.req(t0), 1); !errors.Is(err, want) {
		t.Errorf("RefundAttempt with a done context: %v, want an error matching %v", err, want)
	}
	a.attemptWant(p.req(t0), true) // the third failure locks
	a.attemptWant(p.req(t0), false)
}

// lockoutKey returns the n-th lockout key of the clauses:
// storage.RateKeyLen bytes that look like a hash output, different for
// every n.
func lockoutKey(n uint64) []byte { return pattern(4<<32+n, storage.RateKeyLen) }

// A lockoutAccount follows one key of a LockoutStore: it holds the state
// the store must hold, from storage.DecideAttempt's decisions so far, and
// checks each BeginAttempt against DecideAttempt.
type lockoutAccount struct {
	t   *testing.T
	s   storage.LockoutStore
	key []byte
	t0  time.Time // the clause's epoch, which messages show times from
	st  storage.LockoutState
}

func newLockoutAccount(t *testing.T, s storage.LockoutStore, key []byte, t0 time.Time) *lockoutAccount {
	return &lockoutAccount{t: t, s: s, key: key, t0: t0}
}

// attemptWant calls BeginAttempt with req, checks that the outcome is
// storage.DecideAttempt's, and that DecideAttempt admits req if and only
// if admitted (which checks the clause's script). A difference ends the
// test: every later decision would differ too.
func (a *lockoutAccount) attemptWant(req storage.LockoutRequest, admitted bool) storage.LockoutState {
	a.t.Helper()
	wantAdmitted, want := storage.DecideAttempt(a.st, req)
	if wantAdmitted != admitted {
		a.t.Fatalf("the suite is wrong: storage.DecideAttempt(%s) admits %s: %t", a.show(a.st), a.call(req), wantAdmitted)
	}
	gotAdmitted, got, err := a.s.BeginAttempt(a.t.Context(), a.key, req)
	if err != nil {
		a.t.Fatalf("%s: %v", a.call(req), err)
	}
	if d := lockoutDiff(got, want, req.Now); gotAdmitted != wantAdmitted || d != "" {
		a.t.Fatalf("%s, with the stored state %s: admitted %t, %s; want admitted %t, %s (storage.DecideAttempt)",
			a.call(req), a.show(a.st), gotAdmitted, a.show(got), wantAdmitted, a.show(want))
	}
	if wantAdmitted {
		a.st = want
	}
	return got
}

// refundWant calls RefundAttempt with req and lock, and checks that the
// outcome is storage.DecideRefund's, and that DecideRefund refunds if and
// only if refunded (which checks the clause's script).
func (a *lockoutAccount) refundWant(req storage.LockoutRequest, lock int, refunded bool) storage.LockoutState {
	a.t.Helper()
	wantRefunded, want := storage.DecideRefund(a.st, req, lock)
	if wantRefunded != refunded {
		a.t.Fatalf("the suite is wrong: storage.DecideRefund(%s) refunds towards lock %d at %s: %t", a.show(a.st), lock, since(a.t0, req.Now), wantRefunded)
	}
	gotRefunded, got, err := a.s.RefundAttempt(a.t.Context(), a.key, req, lock)
	if err != nil {
		a.t.Fatalf("RefundAttempt(%s, lock %d) at %s: %v", shortHex(a.key), lock, since(a.t0, req.Now), err)
	}
	if d := lockoutDiff(got, want, req.Now); gotRefunded != wantRefunded || (wantRefunded && d != "") {
		a.t.Fatalf("RefundAttempt(%s, lock %d) at %s, with the stored state %s: refunded %t, %s; want refunded %t, %s (storage.DecideRefund)",
			shortHex(a.key), lock, since(a.t0, req.Now), a.show(a.st), gotRefunded, a.show(got), wantRefunded, a.show(want))
	}
	if wantRefunded {
		a.st = want
	}
	return got
}

// reset calls ResetLockout.
func (a *lockoutAccount) reset() {
	a.t.Helper()
	if err := a.s.ResetLockout(a.t.Context(), a.key); err != nil {
		a.t.Fatalf("ResetLockout(%s): %v", shortHex(a.key), err)
	}
	a.st = storage.LockoutState{}
}

func (a *lockoutAccount) call(req storage.LockoutRequest) string {
	return fmt.Sprintf("BeginAttempt(%s, Now %s, MaxFailures %d, LockFor %v, MaxLockFor %v, ForgetAfter %v)",
		shortHex(a.key), since(a.t0, req.Now), req.MaxFailures, req.LockFor, req.MaxLockFor, req.ForgetAfter)
}

func (a *lockoutAccount) show(st storage.LockoutState) string {
	return fmt.Sprintf("{Failures %d, Locks %d, LockedUntil %s, Expires %s}", st.Failures, st.Locks, since(a.t0, st.LockedUntil), since(a.t0, st.Expires))
}

func (a *lockoutAccount) showAll(sts []storage.LockoutState) string {
	var s []string
	for _, st := range sts {
		s = append(s, a.show(st))
	}
	return shortList(s)
}

// lockoutDiff describes how got differs from want, the state after an
// attempt at now, or returns "" if it does not. Times are compared with
// Equal (another time zone is the same time). A LockedUntil that is not
// after now may be zero or any time not after now: either way the account
// is not locked, which is all the contract says of it.
func lockoutDiff(got, want storage.LockoutState, now time.Time) string {
	var d []string
	if got.Failures != want.Failures {
		d = append(d, fmt.Sprintf("Failures %d, want %d", got.Failures, want.Failures))
	}
	if got.Locks != want.Locks {
		d = append(d, fmt.Sprintf("Locks %d, want %d", got.Locks, want.Locks))
	}
	nowMs := now.UnixMilli()
	if !want.LockedUntil.IsZero() && want.LockedUntil.UnixMilli() > nowMs {
		if !got.LockedUntil.Equal(want.LockedUntil) {
			d = append(d, "LockedUntil differs")
		}
	} else if !got.LockedUntil.IsZero() && got.LockedUntil.UnixMilli() > nowMs {
		d = append(d, "LockedUntil is after Now, want zero or not after Now")
	}
	if !got.Expires.Equal(want.Expires) {
		d = append(d, "Expires differs")
	}
	return strings.Join(d, "; ")
}

// epoch returns the time the rate and lockout clauses start from, t0 in
// their messages: the test's clock, to the millisecond so that messages
// read well. Clauses MicrosecondPrecision and MillisecondPrecision add
// nanoseconds of their own.
func epoch() time.Time { return time.Now().Truncate(time.Millisecond) }
