package ratelimit_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// want is the part of a Decision a test checks.
type want struct {
	allowed          bool
	remaining        int
	reset, next, try time.Duration
}

func checkDecision(t *testing.T, step string, d ratelimit.Decision, err error, w want) {
	t.Helper()
	if err != nil || d.Err != nil {
		t.Fatalf("%s: err %v, d.Err %v", step, err, d.Err)
	}
	got := want{d.Allowed, d.Remaining, d.Reset, d.Next, d.RetryAfter}
	if got != w {
		t.Errorf("%s: got allowed=%v remaining=%d reset=%v next=%v retry=%v, want allowed=%v remaining=%d reset=%v next=%v retry=%v",
			step, got.allowed, got.remaining, got.reset, got.next, got.try, w.allowed, w.remaining, w.reset, w.next, w.try)
	}
}

// LoginPerIP (5 per 15 minutes) allows a burst of 5, refuses the 6th
// with RetryAfter 3m, allows one more every 3 minutes, and is full again
// 15 minutes after the last allowed request; Remaining, Reset and Next are
// exact at every step.
func TestLoginPerIPSequence(t *testing.T) {
	loginSequence(t, memstore.New(), newClock())
}

// loginSequence checks LoginPerIP's decisions on store, from c's time.
func loginSequence(t *testing.T, store storage.RateStore, c *clock) {
	l := newLimiter(t, store, ratelimit.LoginPerIP(), c)
	ctx := t.Context()
	const m = time.Minute

	if r := l.Rule(); r != (ratelimit.Rule{Name: "login", Limit: 5, Period: 15 * m}) {
		t.Fatalf("Rule() = %+v", r)
	}
	for i := 1; i <= 5; i++ {
		d, err := l.Allow(ctx, "192.0.2.1")
		checkDecision(t, "burst", d, err, want{true, 5 - i, time.Duration(i) * 3 * m, 3 * m, 0})
		if d.Policy != "login" || d.Limit != 5 || d.Period != 15*m {
			t.Errorf("decision rule fields: %+v", d)
		}
	}
	d, err := l.Allow(ctx, "192.0.2.1")
	checkDecision(t, "6th", d, err, want{false, 0, 15 * m, 3 * m, 3 * m})

	c.Advance(3*m - time.Microsecond)
	d, err = l.Allow(ctx, "192.0.2.1")
	checkDecision(t, "1µs before the refill", d, err, want{false, 0, 12*m + time.Microsecond, time.Microsecond, time.Microsecond})

	c.Advance(time.Microsecond) // t0 + 3m
	d, err = l.Allow(ctx, "192.0.2.1")
	checkDecision(t, "after 3 minutes", d, err, want{true, 0, 15 * m, 3 * m, 0})
	d, err = l.Allow(ctx, "192.0.2.1")
	checkDecision(t, "then refused again", d, err, want{false, 0, 15 * m, 3 * m, 3 * m})

	c.Advance(90 * time.Second) // half an interval: still nothing
	d, err = l.Allow(ctx, "192.0.2.1")
	checkDecision(t, "half an interval", d, err, want{false, 0, 13*m + 30*time.Second, 90 * time.Second, 90 * time.Second})

	c.Advance(15*m - 90*time.Second) // 15 minutes after the last allowed
	for i := 1; i <= 5; i++ {
		d, err := l.Allow(ctx, "192.0.2.1")
		checkDecision(t, "full again", d, err, want{true, 5 - i, time.Duration(i) * 3 * m, 3 * m, 0})
	}
	d, err = l.Allow(ctx, "192.0.2.1")
	checkDecision(t, "full again, 6th", d, err, want{false, 0, 15 * m, 3 * m, 3 * m})
}

// AllowN takes n units at once, refuses without taking anything when they
// are not there, and reports how long until n would be; n outside
// 1..Limit is invalid input.
func TestAllowNCost(t *testing.T) {
	c := newClock()
	l := newLimiter(t, memstore.New(), ratelimit.LoginPerIP(), c)
	ctx := t.Context()
	const m = time.Minute

	d, err := l.AllowN(ctx, "k", 3)
	checkDecision(t, "3 of 5", d, err, want{true, 2, 9 * m, 3 * m, 0})
	d, err = l.AllowN(ctx, "k", 3)
	checkDecision(t, "3 more: refused", d, err, want{false, 2, 9 * m, 3 * m, 3 * m})
	d, err = l.AllowN(ctx, "k", 2)
	checkDecision(t, "the 2 left", d, err, want{true, 0, 15 * m, 3 * m, 0})
	c.Advance(3 * m)
	d, err = l.AllowN(ctx, "k", 2)
	checkDecision(t, "2 after one refill", d, err, want{false, 1, 12 * m, 3 * m, 3 * m})
	c.Advance(12 * m)
	d, err = l.AllowN(ctx, "k", 5)
	checkDecision(t, "the whole bucket", d, err, want{true, 0, 15 * m, 3 * m, 0})

	for _, n := range []int{0, -1, 6} {
		d, err := l.AllowN(ctx, "k2", n)
		if !errors.Is(err, ratelimit.ErrInvalidInput) || !errors.Is(d.Err, ratelimit.ErrInvalidInput) || d.Allowed {
			t.Errorf("AllowN(%d): %+v, %v; want a refusal wrapping ErrInvalidInput", n, d, err)
		}
	}
	// The invalid calls took nothing from k2.
	d, err = l.Allow(ctx, "k2")
	checkDecision(t, "k2 untouched", d, err, want{true, 4, 3 * m, 3 * m, 0})
}

// Keys have buckets of their own; rules with different names on the same
// store never share buckets, and limiters with the same name do.
func TestBucketsAreSeparate(t *testing.T) {
	c := newClock()
	store := memstore.New()
	ctx := t.Context()
	login := newLimiter(t, store, ratelimit.LoginPerIP(), c)
	other := newLimiter(t, store, ratelimit.Rule{Name: "login-2", Limit: 5, Period: 15 * time.Minute}, c)
	twin := newLimiter(t, store, ratelimit.LoginPerIP(), c) // another instance of the same rule

	for range 5 {
		if d, _ := login.Allow(ctx, "a"); !d.Allowed {
			t.Fatal("burst refused")
		}
	}
	if d, _ := login.Allow(ctx, "a"); d.Allowed {
		t.Fatal("6th allowed")
	}
	if d, _ := twin.Allow(ctx, "a"); d.Allowed {
		t.Error("a limiter with the same rule name does not share the bucket")
	}
	if d, _ := login.Allow(ctx, "b"); !d.Allowed || d.Remaining != 4 {
		t.Errorf("key b shares key a's bucket: %+v", d)
	}
	if d, _ := other.Allow(ctx, "a"); !d.Allowed || d.Remaining != 4 {
		t.Errorf("rule login-2 shares rule login's bucket: %+v", d)
	}
	// Keys that would collide if joined naively stay apart.
	if d, _ := login.Allow(ctx, "a\x00"); !d.Allowed || d.Remaining != 4 {
		t.Errorf(`key "a\x00" shares key "a"'s bucket: %+v`, d)
	}
}

// Reset fills the bucket again.
func TestReset(t *testing.T) {
	c := newClock()
	l := newLimiter(t, memstore.New(), ratelimit.LoginPerIP(), c)
	ctx := t.Context()
	for range 6 {
		l.Allow(ctx, "a")
	}
	if err := l.Reset(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	d, err := l.Allow(ctx, "a")
	checkDecision(t, "after Reset", d, err, want{true, 4, 3 * time.Minute, 3 * time.Minute, 0})
	if err := l.Reset(ctx, "never-seen"); err != nil {
		t.Errorf("Reset of a key without state: %v", err)
	}
	if err := l.Reset(ctx, ""); !errors.Is(err, ratelimit.ErrInvalidInput) {
		t.Errorf("Reset(\"\"): %v", err)
	}
}

// Rules and keys outside their bounds are refused with ErrInvalidInput.
func TestInvalidRulesAndKeys(t *testing.T) {
	store := memstore.New()
	day := 24 * time.Hour
	for _, tc := range []struct {
		name string
		rule ratelimit.Rule
	}{
		{"limit 0", ratelimit.Rule{Name: "r", Limit: 0, Period: time.Minute}},
		{"negative limit", ratelimit.Rule{Name: "r", Limit: -1, Period: time.Minute}},
		{"limit over MaxRateBurst", ratelimit.Rule{Name: "r", Limit: storage.MaxRateBurst + 1, Period: time.Hour}},
		{"zero period", ratelimit.Rule{Name: "r", Limit: 5}},
		{"negative period", ratelimit.Rule{Name: "r", Limit: 5, Period: -time.Minute}},
		{"period under 1µs per unit", ratelimit.Rule{Name: "r", Limit: 5, Period: 4 * time.Microsecond}},
		{"period over MaxRateWindow", ratelimit.Rule{Name: "r", Limit: 5, Period: storage.MaxRateWindow + time.Microsecond}},
		{"a year and a half", ratelimit.Rule{Name: "r", Limit: 1, Period: 550 * day}},
		// Period/Limit rounded up to the microsecond, times Limit, is over the window.
		{"rounded interval over MaxRateWindow", ratelimit.Rule{Name: "r", Limit: 7, Period: storage.MaxRateWindow - time.Microsecond}},
		{"empty name", ratelimit.Rule{Name: "", Limit: 5, Period: time.Minute}},
		{"name of 65 bytes", ratelimit.Rule{Name: strings.Repeat("n", 65), Limit: 5, Period: time.Minute}},
		{"space in name", ratelimit.Rule{Name: "log in", Limit: 5, Period: time.Minute}},
		{"quote in name", ratelimit.Rule{Name: `lo"gin`, Limit: 5, Period: time.Minute}},
		{"non-ASCII name", ratelimit.Rule{Name: "connexión", Limit: 5, Period: time.Minute}},
		{"NUL in name", ratelimit.Rule{Name: "a\x00b", Limit: 5, Period: time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ratelimit.New(store, tc.rule, ratelimit.Options{Logger: discard})
			if !errors.Is(err, ratelimit.ErrInvalidInput) || l != nil {
				t.Errorf("New(%+v) = %v, %v; want ErrInvalidInput", tc.rule, l, err)
			}
		})
	}
	for _, rule := range []ratelimit.Rule{
		{Name: strings.Repeat("n", 64), Limit: 1, Period: time.Microsecond},
		{Name: "A-z_0.9", Limit: storage.MaxRateBurst, Period: time.Hour},
		{Name: "year", Limit: 1, Period: storage.MaxRateWindow},
		{Name: "y7", Limit: 7, Period: storage.MaxRateWindow - 7*time.Microsecond},
		ratelimit.LoginPerIP(),
		ratelimit.SetupPerIP(),
	} {
		if _, err := ratelimit.New(store, rule, ratelimit.Options{}); err != nil {
			t.Errorf("New(%+v): %v", rule, err)
		}
	}
	if _, err := ratelimit.New(nil, ratelimit.LoginPerIP(), ratelimit.Options{}); !errors.Is(err, ratelimit.ErrInvalidInput) {
		t.Errorf("New(nil store): %v", err)
	}

	l := newLimiter(t, store, ratelimit.LoginPerIP(), newClock())
	for _, key := range []string{"", strings.Repeat("k", ratelimit.MaxKeyLen+1)} {
		d, err := l.Allow(t.Context(), key)
		if !errors.Is(err, ratelimit.ErrInvalidInput) || d.Allowed {
			t.Errorf("Allow(key of %d bytes) = %+v, %v; want a refusal wrapping ErrInvalidInput", len(key), d, err)
		}
	}
	if d, err := l.Allow(t.Context(), strings.Repeat("k", ratelimit.MaxKeyLen)); err != nil || !d.Allowed {
		t.Errorf("Allow(key of MaxKeyLen bytes) = %+v, %v", d, err)
	}
}

// The guarantee in the package documentation, by simulation: whatever a
// client does, in any span of time D it gets at most Limit +
// floor(D / (Period/Limit)) units (so at most 2×Limit−1 within one
// Period), and a client that keeps trying gets exactly one unit per
// Period/Limit once its burst is spent.
func TestGCRAGuarantee(t *testing.T) {
	rules := []ratelimit.Rule{
		{Name: "m", Limit: 5, Period: time.Minute},
		ratelimit.LoginPerIP(),
		{Name: "odd", Limit: 7, Period: 100 * time.Second}, // interval 14.285715 s: not a whole second
	}
	clients := []struct {
		name  string
		tries func(rng *rand.Rand, sec int) int // attempts at second sec
	}{
		{"every second", func(*rand.Rand, int) int { return 1 }},
		{"ten a second", func(*rand.Rand, int) int { return 10 }},
		{"random bursts", func(rng *rand.Rand, _ int) int {
			if rng.IntN(4) == 0 {
				return rng.IntN(12)
			}
			return 0
		}},
		{"quiet, then hammering", func(_ *rand.Rand, sec int) int {
			if sec%200 < 150 {
				return 0
			}
			return 3
		}},
	}
	for _, rule := range rules {
		for _, cl := range clients {
			t.Run(rule.Name+"/"+cl.name, func(t *testing.T) {
				c := newClock()
				l := newLimiter(t, memstore.New(), rule, c)
				rng := rand.New(rand.NewPCG(1, 2))
				interval := (rule.Period + time.Duration(rule.Limit)*time.Microsecond - time.Microsecond) / time.Duration(rule.Limit)
				interval = interval.Truncate(time.Microsecond)
				secs := int(4 * rule.Period / time.Second)
				var allowed []time.Duration // times since t0 of the allowed units
				for s := range secs {
					for range cl.tries(rng, s) {
						d, err := l.Allow(t.Context(), "client")
						if err != nil {
							t.Fatal(err)
						}
						if d.Allowed {
							allowed = append(allowed, c.Now().Sub(t0))
						}
					}
					c.Advance(time.Second)
				}
				if len(allowed) == 0 {
					t.Fatal("nothing allowed")
				}
				// Any span [allowed[i], allowed[j]].
				for i := range allowed {
					for j := i; j < len(allowed); j++ {
						span := allowed[j] - allowed[i]
						if n, bound := j-i+1, rule.Limit+int(span/interval); n > bound {
							t.Fatalf("%d units in %v, more than Limit + span/interval = %d", n, span, bound)
						}
					}
				}
				// Any window of one Period.
				maxIn := 0
				for i := range allowed {
					n := 0
					for j := i; j < len(allowed) && allowed[j]-allowed[i] < rule.Period; j++ {
						n++
					}
					maxIn = max(maxIn, n)
				}
				if maxIn > 2*rule.Limit-1 {
					t.Fatalf("%d units within one Period, more than 2×Limit−1 = %d", maxIn, 2*rule.Limit-1)
				}
				if cl.name != "every second" && cl.name != "ten a second" {
					return
				}
				// A client that keeps trying: the burst at once, then one
				// unit per interval, each in the first second it is due.
				if cl.name == "ten a second" {
					for i := range rule.Limit {
						if allowed[i] != 0 {
							t.Fatalf("burst unit %d at %v, want 0", i, allowed[i])
						}
					}
				}
				if maxIn != 2*rule.Limit-1 {
					t.Errorf("busiest Period held %d units; a client that keeps trying gets 2×Limit−1 = %d", maxIn, 2*rule.Limit-1)
				}
				k := 0
				for i := rule.Limit; i < len(allowed); i++ {
					k++
					due := time.Duration(k) * interval
					if want := (due + time.Second - 1).Truncate(time.Second); allowed[i] != want {
						t.Fatalf("unit %d after the burst at %v, want %v (due at %v)", k, allowed[i], want, due)
					}
				}
				if wantK := int((time.Duration(secs-1) * time.Second) / interval); k != wantK {
					t.Errorf("%d units after the burst in %d s, want %d (one per %v)", k, secs, wantK, interval)
				}
			})
		}
	}
}

// RL-07: of 200 concurrent requests on one key with a limit of 10,
// exactly 10 are allowed.
func TestConcurrentAllowExact(t *testing.T) {
	c := newClock()
	l := newLimiter(t, memstore.New(), ratelimit.Rule{Name: "conc", Limit: 10, Period: time.Hour}, c)
	var ok atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 200 {
		wg.Go(func() {
			<-start
			d, err := l.Allow(t.Context(), "192.0.2.1")
			if err != nil {
				t.Error(err)
			}
			if d.Allowed {
				ok.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 10 {
		t.Fatalf("%d of 200 concurrent requests allowed, want exactly 10", ok.Load())
	}
}
