package kdf

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	if c.MaxConcurrent != 3 || c.MemoryBudgetKiB != max(3*64*1024, uint64(DefaultLimits().MaxMemoryKiB)) || c.MaxWaiting != 12 || c.MaxWaitingPerKey != 3 || c.FailFast {
		t.Fatalf("resolved config %+v", c)
	}
	if c := newTestGate(t, GateConfig{MaxConcurrent: 8}).Config(); c.MemoryBudgetKiB != 8*64*1024 {
		t.Fatalf("8 places: budget %d KiB, want 8 × 64 MiB", c.MemoryBudgetKiB)
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
	// Every caller is anonymous: the anonymous key may hold the whole queue.
	g := newTestGate(t, GateConfig{MaxConcurrent: 2, MemoryBudgetKiB: 1 << 20, MaxWaiting: 3, MaxWaitingPerKey: 3})
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
	queued := g.waiting + len(g.ring) + len(g.queues)
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
	// Limits set explicitly above the budget would admit hashes that the
	// Gate then refuses at every verification: New refuses them.
	lim := DefaultLimits()
	lim.MaxMemoryKiB = 32*1024 + 1
	if _, err := New(Config{Gate: g, Limits: lim}); !errors.Is(err, ErrParamsOutOfBounds) {
		t.Fatalf("New with Limits above the budget: %v, want ErrParamsOutOfBounds", err)
	}
}

// Memory held by two concurrent runs fills the budget, so two
// budget-filling runs must alternate; finished runs count as garbage until
// a collection, which the gate forces when it stands in the way.
func TestGateCountsGarbage(t *testing.T) {
	t.Parallel()
	const budget = 8 * 1024
	g := newTestGate(t, GateConfig{MaxConcurrent: 2, MemoryBudgetKiB: budget, MaxWaitingPerKey: 8})
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

// waitQueued waits until n callers wait at g. It polls the gate's state;
// nothing is asserted about time.
func waitQueued(t *testing.T, g *Gate, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		g.mu.Lock()
		w := g.waiting
		g.mu.Unlock()
		if w == n {
			return
		}
	}
	t.Fatalf("never saw %d waiters", n)
}

// TestGateFairAcrossKeys is issue 10, item 7 (gate part): with one place,
// key A queues waiters up to its share of the queue (MaxWaiting/4) and its
// next caller gets ErrBusy at once, while key B still queues; once the
// place frees, B runs right after A's oldest waiter, before A's later
// ones (round-robin across keys, FIFO within a key). Before the fix one
// FIFO queue served A's whole backlog first, and A could fill every place.
func TestGateFairAcrossKeys(t *testing.T) {
	t.Parallel()
	g := newTestGate(t, GateConfig{MaxConcurrent: 1, MemoryBudgetKiB: 1024, MaxWaiting: 16})
	if got := g.Config().MaxWaitingPerKey; got != 4 {
		t.Fatalf("MaxWaitingPerKey = %d, want 16/4", got)
	}
	hold, err := g.acquire(bg, 1)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	enqueue := func(key, label string, queued int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := g.Run(WithGateKey(bg, key), 1, func() {
				mu.Lock()
				order = append(order, label)
				mu.Unlock()
			})
			if err != nil {
				t.Errorf("%s: %v", label, err)
			}
		}()
		waitQueued(t, g, queued)
	}
	for i := 1; i <= 4; i++ {
		enqueue("A", fmt.Sprintf("A%d", i), i)
	}
	// A's share is full: its next callers are refused at once…
	for range 3 {
		if err := g.Run(WithGateKey(bg, "A"), 1, func() { t.Error("A's excess caller ran") }); !errors.Is(err, ErrBusy) {
			t.Fatalf("A's fifth waiter: %v, want ErrBusy", err)
		}
	}
	// …while B, and callers without a key (the anonymous key, with a share
	// of its own like any other), are still admitted to the queue.
	enqueue("B", "B1", 5)
	enqueue("", "anon1", 6)
	enqueue("B", "B2", 7)
	hold()
	wg.Wait()
	want := []string{"A1", "B1", "anon1", "A2", "B2", "A3", "A4"}
	if !slices.Equal(order, want) {
		t.Fatalf("run order %v, want %v", order, want)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting != 0 || len(g.ring) != 0 || len(g.queues) != 0 || g.running != 0 {
		t.Fatalf("state left: waiting %d, ring %d, keys %d, running %d", g.waiting, len(g.ring), len(g.queues), g.running)
	}
}

// A waiter that gives up (context ended) leaves its key's queue without
// using its key's turn, and the others keep their order.
func TestGateFairCancel(t *testing.T) {
	t.Parallel()
	g := newTestGate(t, GateConfig{MaxConcurrent: 1, MemoryBudgetKiB: 1024, MaxWaiting: 16})
	hold, err := g.acquire(bg, 1)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	run := func(ctx context.Context, label string) {
		defer wg.Done()
		err := g.Run(ctx, 1, func() {
			mu.Lock()
			order = append(order, label)
			mu.Unlock()
		})
		if label == "A-cancelled" {
			if !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled waiter: %v", err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", label, err)
		}
	}
	ctxA := WithGateKey(bg, "A")
	cancelled, cancel := context.WithCancel(WithGateKey(bg, "A"))
	wg.Add(1)
	go run(cancelled, "A-cancelled")
	waitQueued(t, g, 1)
	wg.Add(1)
	go run(WithGateKey(bg, "B"), "B1")
	waitQueued(t, g, 2)
	wg.Add(1)
	go run(ctxA, "A2")
	waitQueued(t, g, 3)
	cancel()
	waitQueued(t, g, 2)
	hold()
	wg.Wait()
	// A's turn was not used by its cancelled waiter: its next one goes.
	if want := []string{"A2", "B1"}; !slices.Equal(order, want) {
		t.Fatalf("run order %v, want %v", order, want)
	}
}
