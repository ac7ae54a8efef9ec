package kdf

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
)

// A Gate bounds the expensive runs (Argon2id, scrypt, PBKDF2, bcrypt) that
// a process performs at once, by count and by memory, so that a flood of
// logins meets a queue and then [ErrBusy] instead of exhausting memory.
// Share one Gate between every [Hasher] (and vault) of a process.
//
// The memory budget counts the memory of runs in progress and also the
// memory of finished runs that the garbage collector has not reclaimed yet:
// Argon2id's buffer is garbage once a run ends, and with a plain semaphore
// the heap grows to about twice the concurrent memory before the collector
// runs. When only such garbage stands between a caller and the budget, the
// Gate forces a collection (runtime.GC) before admitting it, so peak heap
// used by password hashing stays within the budget.
//
// A Gate is safe for concurrent use.
type Gate struct {
	maxConcurrent int
	budgetKiB     uint64
	maxWaiting    int

	mu         sync.Mutex
	running    int
	inUseKiB   uint64
	garbage    []garbageRun
	garbageKiB uint64
	collecting bool
	epoch      uint64 // incremented when a forced collection starts
	queue      []*gateWaiter
	wake       chan struct{} // closed and replaced whenever the state changes
}

// garbageRun is memory released by finished runs while the GC had
// completed gcCycles cycles and before forced collection number epoch
// started.
type garbageRun struct {
	kib      uint64
	gcCycles uint64
	epoch    uint64
}

type gateWaiter struct{ kib uint64 }

// GateConfig configures a Gate. Zero values select the defaults named on
// each field.
type GateConfig struct {
	// MaxConcurrent is the most runs at once. Zero selects
	// runtime.GOMAXPROCS(0): more runs than cores only add latency.
	MaxConcurrent int
	// MemoryBudgetKiB bounds the memory, in KiB, of runs in progress plus
	// finished runs not yet reclaimed. Zero selects MaxConcurrent × 64 MiB.
	// A single run larger than the budget is refused, and a Hasher refuses
	// Params or Limits that would need one.
	MemoryBudgetKiB uint64
	// MaxWaiting is the most callers that may queue for a place; the next
	// one gets ErrBusy at once. Zero selects 4 × MaxConcurrent.
	MaxWaiting int
	// FailFast, if true, queues no one: a caller that cannot start at once
	// gets ErrBusy.
	FailFast bool
}

// defaultRunKiB is the memory per run that the default budget allows for.
const defaultRunKiB = 64 * 1024

// NewGate returns a Gate configured by cfg.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.MaxConcurrent < 0 || cfg.MaxWaiting < 0 {
		return nil, fmt.Errorf("kdf: gate MaxConcurrent and MaxWaiting must not be negative")
	}
	g := &Gate{maxConcurrent: cfg.MaxConcurrent, budgetKiB: cfg.MemoryBudgetKiB, maxWaiting: cfg.MaxWaiting}
	if g.maxConcurrent == 0 {
		g.maxConcurrent = runtime.GOMAXPROCS(0)
	}
	if g.budgetKiB == 0 {
		g.budgetKiB = uint64(g.maxConcurrent) * defaultRunKiB
	}
	if g.maxWaiting == 0 {
		g.maxWaiting = 4 * g.maxConcurrent
	}
	if cfg.FailFast {
		g.maxWaiting = 0
	}
	g.wake = make(chan struct{})
	return g, nil
}

// Config returns the Gate's resolved configuration.
func (g *Gate) Config() GateConfig {
	return GateConfig{MaxConcurrent: g.maxConcurrent, MemoryBudgetKiB: g.budgetKiB, MaxWaiting: g.maxWaiting, FailFast: g.maxWaiting == 0}
}

// Run waits for a place for a run needing memKiB of memory, runs fn, and
// releases the place. It returns an error matching ErrBusy when the queue
// is full or ctx ends first (then the error also matches ctx's error), and
// fn does not run. Most applications use a [Hasher], which calls Run, and
// will not need to call it themselves.
func (g *Gate) Run(ctx context.Context, memKiB uint64, fn func()) error {
	release, err := g.acquire(ctx, memKiB)
	if err != nil {
		return err
	}
	defer release()
	fn()
	return nil
}

func (g *Gate) acquire(ctx context.Context, kib uint64) (release func(), err error) {
	if kib == 0 {
		kib = smallRunKiB
	}
	if kib > g.budgetKiB {
		return nil, fmt.Errorf("%w: a run of %d KiB exceeds the gate's memory budget of %d KiB", ErrParamsOutOfBounds, kib, g.budgetKiB)
	}
	if err := ctx.Err(); err != nil {
		return nil, &busyError{cause: err}
	}
	release = func() { g.release(kib) }

	g.mu.Lock()
	if len(g.queue) == 0 && g.tryStartLocked(kib) {
		g.mu.Unlock()
		return release, nil
	}
	if len(g.queue) >= g.maxWaiting {
		g.mu.Unlock()
		return nil, fmt.Errorf("%w: queue full", ErrBusy)
	}
	w := &gateWaiter{kib: kib}
	g.queue = append(g.queue, w)
	for {
		if g.queue[0] == w && g.tryStartLocked(kib) {
			g.queue = g.queue[1:]
			g.broadcastLocked()
			g.mu.Unlock()
			return release, nil
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
			g.mu.Lock()
		case <-ctx.Done():
			g.mu.Lock()
			for i, q := range g.queue {
				if q == w {
					g.queue = append(g.queue[:i], g.queue[i+1:]...)
					break
				}
			}
			g.broadcastLocked()
			g.mu.Unlock()
			return nil, &busyError{cause: ctx.Err()}
		}
	}
}

// tryStartLocked admits a run of kib if a slot and memory are free,
// forcing a collection first when only unreclaimed garbage is in the way.
// g.mu is held on entry and on return, but released during a collection.
func (g *Gate) tryStartLocked(kib uint64) bool {
	g.reclaimLocked(gcCycles())
	if g.running >= g.maxConcurrent || g.inUseKiB+kib > g.budgetKiB {
		return false
	}
	if g.inUseKiB+g.garbageKiB+kib > g.budgetKiB {
		if g.collecting {
			return false
		}
		g.collecting = true
		before := g.epoch
		g.epoch++
		g.mu.Unlock()
		runtime.GC() // frees every run released before this call
		g.mu.Lock()
		g.collecting = false
		g.dropGarbageLocked(func(r garbageRun) bool { return r.epoch <= before })
		g.broadcastLocked()
		if g.running >= g.maxConcurrent || g.inUseKiB+g.garbageKiB+kib > g.budgetKiB {
			return false
		}
	}
	g.running++
	g.inUseKiB += kib
	return true
}

func (g *Gate) release(kib uint64) {
	cycles := gcCycles()
	g.mu.Lock()
	g.running--
	g.inUseKiB -= kib
	if kib > smallRunKiB {
		if n := len(g.garbage); n > 0 && g.garbage[n-1].gcCycles == cycles && g.garbage[n-1].epoch == g.epoch {
			g.garbage[n-1].kib += kib
		} else {
			g.garbage = append(g.garbage, garbageRun{kib: kib, gcCycles: cycles, epoch: g.epoch})
		}
		g.garbageKiB += kib
	}
	g.broadcastLocked()
	g.mu.Unlock()
}

// reclaimLocked forgets garbage that collections since its release have
// freed. A cycle that was already under way at release may have marked the
// buffer live, so only the second cycle after it is sure to free it.
func (g *Gate) reclaimLocked(now uint64) {
	g.dropGarbageLocked(func(r garbageRun) bool { return r.gcCycles+2 <= now })
}

// dropGarbageLocked forgets the garbage entries for which freed is true.
// Entries are removed by what they are, not by position: another caller may
// have dropped some while g.mu was released for a collection.
func (g *Gate) dropGarbageLocked(freed func(garbageRun) bool) {
	kept := g.garbage[:0]
	for _, r := range g.garbage {
		if freed(r) {
			g.garbageKiB -= r.kib
		} else {
			kept = append(kept, r)
		}
	}
	g.garbage = kept
}

func (g *Gate) broadcastLocked() {
	close(g.wake)
	g.wake = make(chan struct{})
}

// gcCycles returns the number of completed GC cycles.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
