package kdf

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestGate(t *testing.T, cfg GateConfig) *Gate {
	t.Helper()
	g, err := NewGate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGateDefaults(t *testing.T) {
	t.Parallel()
	g := newTestGate(t, GateConfig{MaxConcurrent: 3})
	c := g.Config()
	if c.MaxConcurrent != 3 || c.MemoryBudgetKiB != 3*64*1024 || c.MaxWaiting != 12 || c.FailFast {
		t.Fatalf("resolved config %+v", c)
	}
	if _, err := NewGate(GateConfig{MaxConcurrent: -1}); err == nil {
		t.Fatal("negative MaxConcurrent accepted")
	}
	if c := newTestGate(t, GateConfig{FailFast: true}).Config(); c.MaxWaiting != 0 || !c.FailFast {
		t.Fatalf("FailFast config %+v", c)
	}
}

// KDF-08: never more runs at once than MaxConcurrent; callers beyond the
// queue get ErrBusy at once; every admitted caller runs.
func TestGateBoundsConcurrency(t *testing.T) {
	t.Parallel()
	g := newTestGate(t, GateConfig{MaxConcurrent: 2, MemoryBudgetKiB: 1 << 20, MaxWaiting: 3})
	var running, peak, ran, busy atomic.Int32
	hold := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := g.Run(bg, 1024, func() {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				<-hold
				running.Add(-1)
				ran.Add(1)
			})
			if errors.Is(err, ErrBusy) {
				busy.Add(1)
			} else if err != nil {
				t.Error(err)
			}
		}()
	}
	// Wait until 2 run and 3 queue: the other 15 must have been refused.
	deadline := time.Now().Add(10 * time.Second)
	for busy.Load() < 15 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	if peak.Load() > 2 {
		t.Fatalf("%d runs at once, limit 2", peak.Load())
	}
	if ran.Load() != 5 || busy.Load() != 15 {
		t.Fatalf("ran %d, busy %d; want 5 and 15", ran.Load(), busy.Load())
	}
}

// A caller whose context ends while it waits gets an error matching both
// ErrBusy and the context's error, and leaves the queue.
func TestGateContext(t *testing.T) {
	t.Parallel()
	g := newTestGate(t, GateConfig{MaxConcurrent: 1})
	release, err := g.acquire(bg, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	err = g.Run(ctx, 1, func() { t.Error("ran while the gate was full") })
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrBusy and DeadlineExceeded", err)
	}
	g.mu.Lock()
	queued := len(g.queue)
	g.mu.Unlock()
	if queued != 0 {
		t.Fatalf("%d waiters left in the queue", queued)
	}
	cancelled, cancel2 := context.WithCancel(bg)
	cancel2()
	if err := g.Run(cancelled, 1, func() {}); !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	release()
	if err := g.Run(bg, 1, func() {}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// A run larger than the whole budget is refused, and a Hasher never
// accepts a stored hash that would need one.
func TestGateBudget(t *testing.T) {
	t.Parallel()
	g := newTestGate(t, GateConfig{MaxConcurrent: 4, MemoryBudgetKiB: 32 * 1024})
	if err := g.Run(bg, 32*1024+1, func() {}); !errors.Is(err, ErrParamsOutOfBounds) {
		t.Fatalf("oversized run: %v", err)
	}
	h := newTestHasher(t, Config{Gate: g})
	if got := h.Limits().MaxMemoryKiB; got != 32*1024 {
		t.Fatalf("Limits.MaxMemoryKiB = %d, want the budget", got)
	}
	if _, err := h.Verify(bg, "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", []byte("password")); !errors.Is(err, ErrParamsOutOfBounds) {
		t.Fatalf("hash above the budget: %v", err)
	}
	if _, err := New(Config{Gate: g, Params: ModerateParams()}); err == nil {
		t.Fatal("a Hasher whose own params exceed the budget was built")
	}
}

// Memory held by two concurrent runs fills the budget, so two
// budget-filling runs must alternate; finished runs count as garbage until
// a collection, which the gate forces when it stands in the way.
func TestGateCountsGarbage(t *testing.T) {
	t.Parallel()
	const budget = 8 * 1024
	g := newTestGate(t, GateConfig{MaxConcurrent: 2, MemoryBudgetKiB: budget})
	var inUse atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := g.Run(bg, budget/2+1, func() {
				if n := inUse.Add(budget/2 + 1); n > budget {
					t.Errorf("%d KiB in use, budget %d", n, budget)
				}
				buf := make([]byte, (budget/2)*1024)
				buf[len(buf)-1] = 1
				inUse.Add(-(budget/2 + 1))
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running != 0 || g.inUseKiB != 0 {
		t.Fatalf("running %d, in use %d after all runs", g.running, g.inUseKiB)
	}
	if g.garbageKiB > budget {
		t.Fatalf("garbage %d KiB exceeds the budget", g.garbageKiB)
	}
}

// checkGarbageInvariant fails t if the gate's garbage total disagrees with
// its entries (a wrapped counter shows up here).
func checkGarbageInvariant(t *testing.T, g *Gate) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	var sum uint64
	for _, r := range g.garbage {
		sum += r.kib
	}
	if sum != g.garbageKiB || g.garbageKiB > 1<<40 {
		t.Fatalf("garbage total %d, entries sum to %d", g.garbageKiB, sum)
	}
}

// Regression: while one caller forces a collection with the lock released,
// others reclaim garbage entries; the collector must then drop entries by
// what they are, not by position (it used to wrap the total and panic with
// the lock held).
func TestGateForcedCollectionRacesReclaim(t *testing.T) {
	t.Parallel()
	g := newTestGate(t, GateConfig{MaxConcurrent: 4, MemoryBudgetKiB: 100, FailFast: true})
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if rel, err := g.acquire(ctx, 2); err == nil {
					rel()
				}
			}
		}()
	}
	for range 200 {
		g.mu.Lock()
		old := gcCycles() - min(gcCycles(), 1)
		g.garbage = append(g.garbage, garbageRun{kib: 60, gcCycles: old, epoch: g.epoch})
		g.garbageKiB += 60
		g.mu.Unlock()
		rel, err := g.acquire(bg, 50)
		if err == nil {
			rel()
		} else if !errors.Is(err, ErrBusy) {
			t.Fatal(err)
		}
		checkGarbageInvariant(t, g)
	}
	cancel()
	wg.Wait()
	checkGarbageInvariant(t, g)
}
