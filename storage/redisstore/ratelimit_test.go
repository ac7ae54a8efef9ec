package redisstore_test

import (
	"context"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/redisstore"
)

// graceMillis mirrors the package's stateGraceMillis.
const graceMillis = 1000

func (e env) rateKey(key []byte) string    { return e.prefix + "rl:" + hex.EncodeToString(key) }
func (e env) lockoutKey(key []byte) string { return e.prefix + "lo:" + hex.EncodeToString(key) }

// rateReq is a valid RateRequest.
func rateReq(now time.Time, interval time.Duration, burst, cost int64) storage.RateRequest {
	return storage.RateRequest{Now: now, Interval: interval, Burst: burst, Cost: cost}
}

func lockoutReq(now time.Time, maxFailures int) storage.LockoutRequest {
	return storage.LockoutRequest{Now: now, MaxFailures: maxFailures, LockFor: time.Minute, MaxLockFor: time.Hour, ForgetAfter: time.Hour}
}

func sameLockout(a, b storage.LockoutState) bool {
	return a.Failures == b.Failures && a.Locks == b.Locks && a.LockedUntil.Equal(b.LockedUntil) && a.Expires.Equal(b.Expires)
}

// TestTakeRateMatchesReference runs random sequences of requests, with
// clocks that go forwards and backwards, against storage.DecideRate.
func TestTakeRateMatchesReference(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	// Far from Redis's clock on purpose: the Store never reads it.
	starts := []time.Time{time.Now(), time.Date(2001, 2, 3, 4, 5, 6, 789_123_456, time.UTC), time.Date(2199, 12, 31, 0, 0, 0, 999, time.FixedZone("x", -5*3600))}
	for seq := range 24 {
		key := newID()
		interval := time.Duration(1+rng.IntN(5_000_000)) * time.Microsecond
		burst := int64(1 + rng.IntN(12))
		now := starts[seq%len(starts)]
		var stored int64
		for range 40 {
			now = now.Add(time.Duration(rng.Int64N(int64(3*interval))) - interval/2 + time.Duration(rng.IntN(1000)))
			req := rateReq(now, interval, burst, 1+rng.Int64N(burst))
			got, err := e.st.TakeRate(ctx, key, req)
			if err != nil {
				t.Fatal(err)
			}
			allowed, tat := storage.DecideRate(stored, req)
			if got.Allowed != allowed || got.TAT.UnixMicro() != tat || got.TAT.Nanosecond()%1000 != 0 {
				t.Fatalf("sequence %d: TakeRate(%+v) = %v, %d; DecideRate says %v, %d", seq, req, got.Allowed, got.TAT.UnixMicro(), allowed, tat)
			}
			if allowed {
				stored = tat
			}
		}
	}
}

// TestTakeRateBounds runs the largest windows at both ends of the clock
// that storage accepts, where the TAT's microseconds need the most bits of
// a Lua double.
func TestTakeRateBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	interval := storage.MaxRateWindow / storage.MaxRateBurst / time.Microsecond * time.Microsecond
	last := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Nanosecond)
	for _, now := range []time.Time{time.UnixMilli(1), last.Add(-3 * time.Microsecond), last.Add(-3 * time.Microsecond).In(time.FixedZone("y", 9*3600))} {
		key := newID()
		var stored int64
		for i, cost := range []int64{storage.MaxRateBurst - 1, 1, 1, storage.MaxRateBurst} {
			req := rateReq(now.Add(time.Duration(i)*time.Microsecond), interval, storage.MaxRateBurst, cost)
			got, err := e.st.TakeRate(ctx, key, req)
			if err != nil {
				t.Fatalf("now %d µs: %v", now.UnixMicro(), err)
			}
			allowed, tat := storage.DecideRate(stored, req)
			if got.Allowed != allowed || got.TAT.UnixMicro() != tat {
				t.Fatalf("now %d µs, cost %d: got %v, %d; DecideRate says %v, %d", now.UnixMicro(), cost, got.Allowed, got.TAT.UnixMicro(), allowed, tat)
			}
			if allowed {
				stored = tat
			}
		}
		if stored != now.UnixMicro()+storage.MaxRateBurst*interval.Microseconds() {
			t.Errorf("now %d µs: the bucket was not drained (TAT %d)", now.UnixMicro(), stored)
		}
	}
}

// TestBeginAttemptMatchesReference runs random sequences of attempts
// against storage.DecideAttempt, with locks that grow to their cap and
// states that expire.
func TestBeginAttemptMatchesReference(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(3, 4))
	starts := []time.Time{time.Now(), time.Date(1999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(2180, 6, 1, 0, 0, 0, 0, time.UTC)}
	for seq := range 24 {
		key := newID()
		lockFor := time.Duration(1+rng.IntN(10_000)) * time.Millisecond / time.Duration(1+rng.IntN(7))
		lockFor = max(lockFor, time.Millisecond)
		maxLockFor := min(lockFor*time.Duration(1+rng.IntN(100)), storage.MaxLockoutDuration)
		forget := time.Duration(1+rng.IntN(20_000)) * time.Millisecond
		if seq%4 == 0 { // locks that keep growing to the widest cap (see growing)
			lockFor, maxLockFor, forget = time.Millisecond+time.Duration(rng.IntN(1e6)), storage.MaxLockoutDuration, storage.MaxLockoutDuration
		}
		maxFailures := 1 + rng.IntN(5)
		growing := seq%4 == 0
		if growing {
			maxFailures = 1
		}
		now := starts[seq%len(starts)]
		var stored storage.LockoutState
		for range 60 {
			step := rng.IntN(4)
			if growing {
				step = 0
			}
			switch step {
			case 0: // past the current lock, if any
				if stored.LockedUntil.After(now) {
					now = stored.LockedUntil.Add(time.Duration(rng.IntN(2)) * time.Millisecond)
				}
			case 1:
				now = now.Add(time.Duration(rng.Int64N(int64(2 * forget))))
			default:
				now = now.Add(time.Duration(rng.IntN(3_000_000)) - time.Millisecond)
			}
			req := storage.LockoutRequest{Now: now, MaxFailures: maxFailures, LockFor: lockFor, MaxLockFor: maxLockFor, ForgetAfter: forget}
			admitted, st, err := e.st.BeginAttempt(ctx, key, req)
			if err != nil {
				t.Fatal(err)
			}
			wantAdmitted, want := storage.DecideAttempt(stored, req)
			if admitted != wantAdmitted || !sameLockout(st, want) {
				t.Fatalf("sequence %d: BeginAttempt(%+v) from %+v = %v, %+v; DecideAttempt says %v, %+v", seq, req, stored, admitted, st, wantAdmitted, want)
			}
			if admitted {
				stored = want
			}
		}
		if growing && stored.Locks < 30 {
			t.Errorf("sequence %d reached only %d locks", seq, stored.Locks)
		}
	}
}

// TestRateKeyLayout checks the documented key, its value and its TTL: the
// time from Now to the TAT plus the grace, by Redis's clock, whatever the
// caller's.
func TestRateKeyLayout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	rk, lk := newID(), newID()
	now := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) // long past by Redis's clock
	res, err := e.st.TakeRate(ctx, rk, rateReq(now, time.Hour, 3, 2))
	if err != nil || !res.Allowed {
		t.Fatalf("TakeRate: %+v, %v", res, err)
	}
	if _, _, err := e.st.BeginAttempt(ctx, lk, lockoutReq(now, 5)); err != nil {
		t.Fatal(err)
	}
	var keys []string
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	slices.Sort(keys)
	if want := []string{e.lockoutKey(lk), e.rateKey(rk)}; !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	if v, err := e.rdb.Get(ctx, e.rateKey(rk)).Result(); err != nil || v != "978314400000000" {
		t.Errorf("rate state %q (%v), want the TAT in Unix µs, 978314400000000", v, err)
	}
	if v, err := e.rdb.Get(ctx, e.lockoutKey(lk)).Result(); err != nil || v != "1:0:0:978310800000" {
		t.Errorf("lockout state %q (%v), want 1:0:0:978310800000", v, err)
	}
	// The TTLs count down from 2 h (the TAT's distance from Now, whole
	// milliseconds rounded up, and 1 ms more) and 1 h (to Expires), plus
	// the grace; a minute of slack leaves room for a slow machine.
	for key, ttl := range map[string]time.Duration{e.rateKey(rk): 2*time.Hour + time.Millisecond, e.lockoutKey(lk): time.Hour} {
		got, err := e.rdb.PTTL(ctx, key).Result()
		if limit := ttl + graceMillis*time.Millisecond; err != nil || got > limit || got < limit-time.Minute {
			t.Errorf("PTTL %s = %v (%v), want at most %v and close to it", key, got, err, limit)
		}
	}
	if err := e.st.ResetRate(ctx, rk); err != nil {
		t.Fatal(err)
	}
	if err := e.st.ResetLockout(ctx, lk); err != nil {
		t.Fatal(err)
	}
	if e.exists(t, e.rateKey(rk)) || e.exists(t, e.lockoutKey(lk)) {
		t.Error("a reset left its key")
	}
	// Resets without state, and a full bucket again.
	if err := e.st.ResetRate(ctx, rk); err != nil {
		t.Error(err)
	}
	if err := e.st.ResetLockout(ctx, lk); err != nil {
		t.Error(err)
	}
	if res, err := e.st.TakeRate(ctx, rk, rateReq(now, time.Hour, 3, 3)); err != nil || !res.Allowed {
		t.Errorf("after ResetRate, a full bucket: %+v, %v", res, err)
	}
}

// TestShortStateOutlivesItsTAT checks that a state whose TAT is a
// microsecond away still decides the next call: the grace keeps Redis from
// dropping it before the call that follows.
func TestShortStateOutlivesItsTAT(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	key := newID()
	now := time.Now()
	for i := range 3 {
		res, err := e.st.TakeRate(ctx, key, rateReq(now, time.Microsecond, 1, 1))
		if err != nil || res.Allowed != (i == 0) {
			t.Fatalf("call %d at the same Now: %+v, %v", i, res, err)
		}
	}
}

// TestConcurrentTakeRate races 64 goroutines over four Stores, each with
// its own client, on one key: exactly Burst are allowed.
func TestConcurrentTakeRate(t *testing.T) {
	t.Parallel()
	prefix := randomPrefix(t)
	var stores []*redisstore.Store
	for range 4 {
		st, err := redisstore.New(newClient(t), redisstore.Config{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, st)
	}
	ctx := t.Context()
	now := time.Now()
	for round := range 5 {
		key := newID()
		var allowed, refused atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 64 {
			wg.Go(func() {
				<-start
				res, err := stores[g%len(stores)].TakeRate(ctx, key, rateReq(now, time.Minute, 10, 1))
				switch {
				case err != nil:
					t.Error(err)
				case res.Allowed:
					allowed.Add(1)
				default:
					refused.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if allowed.Load() != 10 || refused.Load() != 54 {
			t.Errorf("round %d: %d allowed and %d refused of 64 with Burst 10, want 10 and 54", round, allowed.Load(), refused.Load())
		}
	}
}

// TestConcurrentBeginAttempt races 64 goroutines over four Stores on one
// account: exactly MaxFailures are admitted.
func TestConcurrentBeginAttempt(t *testing.T) {
	t.Parallel()
	prefix := randomPrefix(t)
	var stores []*redisstore.Store
	for range 4 {
		st, err := redisstore.New(newClient(t), redisstore.Config{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, st)
	}
	ctx := t.Context()
	now := time.Now()
	for round := range 5 {
		key := newID()
		var admitted, refused, locks atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 64 {
			wg.Go(func() {
				<-start
				ok, st, err := stores[g%len(stores)].BeginAttempt(ctx, key, lockoutReq(now, 10))
				switch {
				case err != nil:
					t.Error(err)
				case ok:
					admitted.Add(1)
					if st.Locks == 1 && st.Failures == 0 {
						locks.Add(1)
					}
				default:
					refused.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if admitted.Load() != 10 || refused.Load() != 54 || locks.Load() != 1 {
			t.Errorf("round %d: %d admitted (%d locking) and %d refused of 64 with MaxFailures 10, want 10 (1) and 54", round, admitted.Load(), locks.Load(), refused.Load())
		}
	}
}

// TestRateRoundTrips counts what each method sends once the scripts are
// cached: one EVALSHA per decision, one DEL per reset.
func TestRateRoundTrips(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := newEnv(t, rec)
	ctx := t.Context()
	key := newID()
	now := time.Now()
	calls := []struct {
		name string
		want string
		call func() error
	}{
		{"TakeRate", "evalsha", func() error { _, err := e.st.TakeRate(ctx, key, rateReq(now, time.Second, 5, 1)); return err }},
		{"TakeRate/refused", "evalsha", func() error { _, err := e.st.TakeRate(ctx, key, rateReq(now, time.Second, 5, 5)); return err }},
		{"ResetRate", "del", func() error { return e.st.ResetRate(ctx, key) }},
		{"BeginAttempt", "evalsha", func() error { _, _, err := e.st.BeginAttempt(ctx, key, lockoutReq(now, 2)); return err }},
		{"ResetLockout", "del", func() error { return e.st.ResetLockout(ctx, key) }},
	}
	for _, c := range calls { // warm up: load the scripts, open the connection
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	for _, c := range calls {
		rec.reset()
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, trips, cmds := rec.get(); trips != 1 || !slices.Equal(cmds, []string{c.want}) {
			t.Errorf("%s made %d round trips %v, want 1: %s", c.name, trips, cmds, c.want)
		}
	}
}

// TestRateScriptsReloaded flushes the server's script cache: the next
// calls load their scripts again.
func TestRateScriptsReloaded(t *testing.T) {
	e := newEnv(t) // not parallel: SCRIPT FLUSH affects every test
	ctx := t.Context()
	key := newID()
	now := time.Now()
	if _, err := e.st.TakeRate(ctx, key, rateReq(now, time.Second, 2, 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.st.BeginAttempt(ctx, key, lockoutReq(now, 3)); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if res, err := e.st.TakeRate(ctx, key, rateReq(now, time.Second, 2, 1)); err != nil || !res.Allowed || !res.TAT.Equal(now.Add(2*time.Second).Truncate(time.Microsecond)) {
		t.Errorf("after SCRIPT FLUSH, TakeRate: %+v, %v", res, err)
	}
	if ok, st, err := e.st.BeginAttempt(ctx, key, lockoutReq(now, 3)); err != nil || !ok || st.Failures != 2 {
		t.Errorf("after SCRIPT FLUSH, BeginAttempt: %v, %+v, %v", ok, st, err)
	}
}

// TestRateForeignValues stores values the Store did not write at its
// keys: decisions fail as infrastructure errors, never as a full bucket or
// a clean account, without echoing the value; resets still delete.
func TestRateForeignValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	const secret = "not-keyhold-state-SECRET"
	now := time.Now()
	for name, set := range map[string]func(key string){
		"string": func(key string) { e.rdb.Set(ctx, key, secret, time.Hour) },
		"hash":   func(key string) { e.rdb.HSet(ctx, key, "field", secret) },
		"nearly": func(key string) { e.rdb.Set(ctx, key, "1:2:3:4:"+secret, time.Hour) },
	} {
		rk, lk := newID(), newID()
		set(e.rateKey(rk))
		set(e.lockoutKey(lk))
		_, rerr := e.st.TakeRate(ctx, rk, rateReq(now, time.Second, 5, 1))
		_, _, lerr := e.st.BeginAttempt(ctx, lk, lockoutReq(now, 5))
		for method, err := range map[string]error{"TakeRate": rerr, "BeginAttempt": lerr} {
			switch {
			case err == nil:
				t.Errorf("%s on a foreign %s succeeded", method, name)
			case errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrNotFound):
				t.Errorf("%s on a foreign %s: %v, want an infrastructure error", method, name, err)
			case strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), hex.EncodeToString(rk)) || strings.Contains(err.Error(), hex.EncodeToString(lk)):
				t.Errorf("%s: the error echoes the value or the key: %v", method, err)
			case !strings.HasPrefix(err.Error(), "redisstore: "):
				t.Errorf("%s: error %q lacks the package prefix", method, err)
			}
		}
		if err := e.st.ResetRate(ctx, rk); err != nil {
			t.Errorf("ResetRate of a foreign %s: %v", name, err)
		}
		if err := e.st.ResetLockout(ctx, lk); err != nil {
			t.Errorf("ResetLockout of a foreign %s: %v", name, err)
		}
		if e.exists(t, e.rateKey(rk)) || e.exists(t, e.lockoutKey(lk)) {
			t.Errorf("a reset left a foreign %s in place", name)
		}
	}
}

// TestRateArgumentsCheckedBeforeRoundTrip runs against an address where no
// server listens: refused arguments and done contexts return before the
// client dials.
func TestRateArgumentsCheckedBeforeRoundTrip(t *testing.T) {
	rec := &recorder{}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	rdb.AddHook(rec)
	defer rdb.Close()
	st, err := redisstore.New(rdb, redisstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	key := newID()
	now := time.Now()
	invalid := map[string]error{}
	for name, k := range map[string][]byte{"nil": nil, "short": key[:31], "long": append(slices.Clone(key), 0)} {
		_, invalid["TakeRate/"+name+"Key"] = st.TakeRate(ctx, k, rateReq(now, time.Second, 1, 1))
		invalid["ResetRate/"+name+"Key"] = st.ResetRate(ctx, k)
		_, _, invalid["BeginAttempt/"+name+"Key"] = st.BeginAttempt(ctx, k, lockoutReq(now, 1))
		invalid["ResetLockout/"+name+"Key"] = st.ResetLockout(ctx, k)
	}
	for name, req := range map[string]storage.RateRequest{
		"zeroNow":     rateReq(time.Time{}, time.Second, 1, 1),
		"subMicro":    rateReq(now, time.Microsecond+1, 1, 1),
		"zeroBurst":   rateReq(now, time.Second, 0, 1),
		"cost>burst":  rateReq(now, time.Second, 2, 3),
		"window":      rateReq(now, storage.MaxRateWindow/2+time.Microsecond, 2, 1),
		"farFuture":   rateReq(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Second, 1, 1),
		"distantPast": rateReq(time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Second, 1, 1),
	} {
		_, invalid["TakeRate/"+name] = st.TakeRate(ctx, key, req)
	}
	for name, req := range map[string]storage.LockoutRequest{
		"zeroNow":      {MaxFailures: 1, LockFor: time.Second, MaxLockFor: time.Second, ForgetAfter: time.Second},
		"zeroFailures": {Now: now, LockFor: time.Second, MaxLockFor: time.Second, ForgetAfter: time.Second},
		"maxBelowLock": {Now: now, MaxFailures: 1, LockFor: time.Second, MaxLockFor: time.Millisecond, ForgetAfter: time.Second},
		"noForget":     {Now: now, MaxFailures: 1, LockFor: time.Second, MaxLockFor: time.Second},
	} {
		_, _, invalid["BeginAttempt/"+name] = st.BeginAttempt(ctx, key, req)
	}
	for name, err := range invalid {
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		} else if !strings.HasPrefix(err.Error(), "redisstore: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	dctx, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cctx, context.Canceled}, {dctx, context.DeadlineExceeded}} {
		done := map[string]error{}
		_, done["TakeRate"] = st.TakeRate(c.ctx, key, rateReq(now, time.Second, 1, 1))
		done["ResetRate"] = st.ResetRate(c.ctx, key)
		_, _, done["BeginAttempt"] = st.BeginAttempt(c.ctx, key, lockoutReq(now, 1))
		done["ResetLockout"] = st.ResetLockout(c.ctx, key)
		for name, err := range done {
			if !errors.Is(err, c.want) {
				t.Errorf("%s with a done context: %v, want %v", name, err, c.want)
			}
		}
	}
	if dials, trips, cmds := rec.get(); dials != 0 || trips != 0 {
		t.Errorf("refused calls dialled %d times and sent %d round trips (%v), want none", dials, trips, cmds)
	}
}
