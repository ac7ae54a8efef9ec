package kdf

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
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
	maxPerKey     int

	mu         sync.Mutex
	running    int
	inUseKiB   uint64
	garbage    []garbageRun
	garbageKiB uint64
	collecting bool
	epoch      uint64 // incremented when a forced collection starts
	// Waiting callers, in one FIFO queue per fairness key, served
	// round-robin: turn indexes the key whose oldest waiter goes next.
	queues  map[string]*keyQueue
	ring    []*keyQueue
	turn    int
	waiting int
	joins   uint64        // keys that have joined the queue so far
	wake    chan struct{} // closed and replaced whenever the state changes

	collectHook func() // tests only: called after a forced collection, g.mu released
}

// garbageRun is memory released by finished runs while the GC had
// completed gcCycles cycles and before forced collection number epoch
// started.
type garbageRun struct {
	kib      uint64
	gcCycles uint64
	epoch    uint64
}

type gateWaiter struct {
	kib     uint64
	evicted bool // its place was given to a caller of a key holding fewer
}

// keyQueue holds the waiting callers of one fairness key, oldest first.
type keyQueue struct {
	key     string
	waiters []*gateWaiter
	since   uint64 // when the key joined the queue (Gate.joins at the time)
}

type gateKeyCtx struct{}

// WithGateKey returns a copy of ctx that carries key as the fairness key
// of the Gate runs started with it (through [Hasher.Verify],
// [Hasher.VerifyDummy], [Hasher.Hash], [Hasher.DeriveKey] or [Gate.Run]).
// Use the account (or, before the account is known, the client address):
//
//	ctx = kdf.WithGateKey(ctx, "user:"+userID)
//
// A Gate serves waiting callers round-robin across keys, FIFO within a
// key, and lets one key hold at most a quarter of its queue places, so a
// single account flooding its own login cannot starve the others: its
// excess callers get ErrBusy while other keys still queue. When the whole
// queue is full, a caller whose key holds fewer places than some other key
// still gets in: the newest waiter of the key holding the most places
// (among equals, the key queued longest) gives up its place and gets
// ErrBusy. So many keys, such as login names an attacker makes up, cannot
// keep a victim's key out either: its caller queues on equal terms with
// them (bound the rate at which one client can bring new keys with a rate
// limit per address, as ratelimit does). Runs without a key share one
// anonymous key (the empty string), which may fill the whole queue (an
// application that sets no keys queues as deep as MaxWaiting), but which,
// holding the most places, is the first to give one up to a keyed caller.
// The key is only compared and
// kept while its callers wait; it never appears in an error.
func WithGateKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, gateKeyCtx{}, key)
}

// gateKey returns the fairness key ctx carries, or "".
func gateKey(ctx context.Context) string {
	k, _ := ctx.Value(gateKeyCtx{}).(string)
	return k
}

// GateConfig configures a Gate. Zero values select the defaults named on
// each field.
type GateConfig struct {
	// MaxConcurrent is the most runs at once. Zero selects
	// runtime.GOMAXPROCS(0): more runs than cores only add latency.
	MaxConcurrent int
	// MemoryBudgetKiB bounds the memory, in KiB, of runs in progress plus
	// finished runs not yet reclaimed. Zero selects the larger of
	// MaxConcurrent × 64 MiB and the largest run [DefaultLimits] allows
	// (DefaultLimits().MaxMemoryKiB, 256 MiB), so that on every host,
	// whatever its CPU count, a Hasher with the default Limits can verify
	// every hash those Limits accept (one such run at a time, the others
	// queued). A single run larger than the budget is refused with a
	// *ParamsError, and [New] refuses a Hasher whose Params or explicit
	// Limits would need one.
	//
	// Memory: with the default, password hashing may hold up to 256 MiB of
	// heap on a host of 4 CPUs or fewer (MaxConcurrent × 64 MiB on larger
	// ones), and the process's resident size can exceed that by about one
	// run while the runtime returns freed pages (bench/kdfmem measures it:
	// BENCHMARKS.md, "Memory of concurrent verifications"). It is
	// reached only when stored hashes (or the Hasher's Params) ask for that
	// much, or many runs wait at once; DefaultParams runs take 19 MiB. In a
	// small container, set a smaller budget: a Hasher whose Config leaves
	// Limits.MaxMemoryKiB zero then takes the budget as its bound, and
	// hashes above it are refused with a *ParamsError (after the dummy
	// work, see [Hasher.Verify]) until raised.
	MemoryBudgetKiB uint64
	// MaxWaiting is the most callers that may queue for a place; the next
	// one gets ErrBusy at once. Zero selects 4 × MaxConcurrent.
	MaxWaiting int
	// MaxWaitingPerKey is the most queue places that the callers of one
	// fairness key ([WithGateKey]) may hold at once; the next caller of that
	// key gets ErrBusy at once while other keys still queue. Zero selects
	// MaxWaiting / 4, at least 1. It is capped at MaxWaiting. It does not
	// bound the anonymous key of callers without one, which may fill the
	// queue but gives its places up first to keyed callers when it is
	// full, so a process that sets no keys queues as deep as before.
	MaxWaitingPerKey int
	// FailFast, if true, queues no one: a caller that cannot start at once
	// gets ErrBusy.
	FailFast bool
}

// defaultRunKiB is the memory per run that the default budget allows for.
const defaultRunKiB = 64 * 1024

// NewGate returns a Gate configured by cfg.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.MaxConcurrent < 0 || cfg.MaxWaiting < 0 || cfg.MaxWaitingPerKey < 0 {
		return nil, fmt.Errorf("kdf: gate MaxConcurrent, MaxWaiting and MaxWaitingPerKey must not be negative")
	}
	g := &Gate{maxConcurrent: cfg.MaxConcurrent, budgetKiB: cfg.MemoryBudgetKiB, maxWaiting: cfg.MaxWaiting, maxPerKey: cfg.MaxWaitingPerKey}
	if g.maxConcurrent == 0 {
		g.maxConcurrent = runtime.GOMAXPROCS(0)
	}
	if g.budgetKiB == 0 {
		g.budgetKiB = max(uint64(g.maxConcurrent)*defaultRunKiB, DefaultLimits().largestRunKiB())
	}
	if g.maxWaiting == 0 {
		g.maxWaiting = 4 * g.maxConcurrent
	}
	if cfg.FailFast {
		g.maxWaiting = 0
	}
	if g.maxPerKey == 0 {
		g.maxPerKey = max(g.maxWaiting/4, 1)
	}
	g.maxPerKey = min(g.maxPerKey, g.maxWaiting)
	g.queues = make(map[string]*keyQueue)
	g.wake = make(chan struct{})
	return g, nil
}

// Config returns the Gate's resolved configuration.
func (g *Gate) Config() GateConfig {
	if g == nil {
		return GateConfig{}
	}
	return GateConfig{MaxConcurrent: g.maxConcurrent, MemoryBudgetKiB: g.budgetKiB, MaxWaiting: g.maxWaiting,
		MaxWaitingPerKey: g.maxPerKey, FailFast: g.maxWaiting == 0}
}

// Run waits for a place for a run needing memKiB of memory, runs fn, and
// releases the place. It returns an error matching ErrBusy when the queue
// (or the share of it that ctx's fairness key may hold, see [WithGateKey])
// is full, when its place in the queue is given to a caller of a key
// holding fewer places, or when ctx ends first (then the error also matches
// ctx's error), and fn does not run. A run larger than the whole memory budget is refused
// with a *ParamsError matching ErrParamsOutOfBounds. Most applications use
// a [Hasher], which calls Run, and will not need to call it themselves.
//
// Waiting callers are admitted round-robin across fairness keys and in
// arrival order within a key; only the caller whose turn it is may start,
// so a large run is never overtaken indefinitely by smaller ones.
func (g *Gate) Run(ctx context.Context, memKiB uint64, fn func()) error {
	if g == nil {
		return errNilGate
	}
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
		return nil, outOfBounds("gate memory KiB", kib, g.budgetKiB, true)
	}
	if err := ctx.Err(); err != nil {
		return nil, &busyError{cause: err}
	}
	key := gateKey(ctx)
	release = func() { g.release(kib) }

	g.mu.Lock()
	if g.waiting == 0 && g.tryStartLocked(kib) {
		g.mu.Unlock()
		return release, nil
	}
	q := g.queues[key]
	held := 0
	if q != nil {
		held = len(q.waiters)
	}
	if held >= g.maxPerKey && key != "" {
		g.mu.Unlock()
		return nil, fmt.Errorf("%w: queue full for this key", ErrBusy)
	}
	if g.waiting >= g.maxWaiting && !g.evictForLocked(held) {
		g.mu.Unlock()
		return nil, fmt.Errorf("%w: queue full", ErrBusy)
	}
	if q == nil {
		g.joins++
		q = &keyQueue{key: key, since: g.joins}
		g.queues[key] = q
		g.ring = append(g.ring, q)
	}
	w := &gateWaiter{kib: kib}
	q.waiters = append(q.waiters, w)
	g.waiting++
	for {
		if w.evicted {
			g.mu.Unlock()
			return nil, fmt.Errorf("%w: queue full (place given to a key holding fewer)", ErrBusy)
		}
		if g.nextLocked() == w && g.tryStartLocked(kib) {
			g.removeLocked(q, w, true)
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
			g.removeLocked(q, w, false)
			g.broadcastLocked()
			g.mu.Unlock()
			return nil, &busyError{cause: ctx.Err()}
		}
	}
}

// evictForLocked makes room in a full queue for a caller whose key holds
// held places, if some other key holds more: the newest waiter of the key
// holding the most places leaves the queue and gets ErrBusy. Among keys
// holding equally many, the one that joined the queue first gives way, so
// that a key admitted a moment ago (a victim's, say) is not the one to lose
// its place to the next made-up key; the price is that under a flood of
// keys holding one place each, the callers who have waited longest are
// turned away first. It reports whether a place was freed.
func (g *Gate) evictForLocked(held int) bool {
	var most *keyQueue
	for _, q := range g.ring {
		if most == nil || len(q.waiters) > len(most.waiters) || (len(q.waiters) == len(most.waiters) && q.since < most.since) {
			most = q
		}
	}
	if most == nil || len(most.waiters) <= held {
		return false
	}
	w := most.waiters[len(most.waiters)-1]
	w.evicted = true
	g.removeLocked(most, w, false)
	g.broadcastLocked()
	return true
}

// nextLocked returns the waiter whose turn it is: the oldest of the key at
// the ring's turn.
func (g *Gate) nextLocked() *gateWaiter {
	if len(g.ring) == 0 {
		return nil
	}
	return g.ring[g.turn].waiters[0]
}

// removeLocked takes w out of its key's queue q. started tells whether w
// is leaving because it was admitted (it was then the next waiter, and the
// turn passes to the following key) or because its context ended. A key
// whose queue empties leaves the ring and the map.
func (g *Gate) removeLocked(q *keyQueue, w *gateWaiter, started bool) {
	i := slices.Index(q.waiters, w)
	if i < 0 {
		return
	}
	q.waiters = slices.Delete(q.waiters, i, i+1)
	g.waiting--
	pos := slices.Index(g.ring, q)
	if len(q.waiters) == 0 {
		delete(g.queues, q.key)
		g.ring = slices.Delete(g.ring, pos, pos+1)
		if pos < g.turn {
			g.turn--
		}
	} else if started && pos == g.turn {
		g.turn++
	}
	if g.turn >= len(g.ring) {
		g.turn = 0
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
	// Collect while only garbage stands in the way. Runs released during a
	// collection leave garbage it does not cover; when they were the last
	// ones running, no later release would wake this caller again, so it
	// collects once more instead of waiting.
	for g.inUseKiB+g.garbageKiB+kib > g.budgetKiB {
		if g.collecting {
			return false
		}
		g.collecting = true
		before := g.epoch
		g.epoch++
		g.mu.Unlock()
		runtime.GC() // frees every run released before this call
		if g.collectHook != nil {
			g.collectHook()
		}
		g.mu.Lock()
		g.collecting = false
		g.dropGarbageLocked(func(r garbageRun) bool { return r.epoch <= before })
		g.broadcastLocked()
		if g.running >= g.maxConcurrent || g.inUseKiB+kib > g.budgetKiB {
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
	g.addGarbageLocked(kib, cycles)
	g.broadcastLocked()
	g.mu.Unlock()
}

// addGarbageLocked records that a run of kib has ended while the GC had
// completed cycles cycles: its buffer is garbage until collected.
func (g *Gate) addGarbageLocked(kib, cycles uint64) {
	if kib <= smallRunKiB {
		return
	}
	if n := len(g.garbage); n > 0 && g.garbage[n-1].gcCycles == cycles && g.garbage[n-1].epoch == g.epoch {
		g.garbage[n-1].kib += kib
	} else {
		g.garbage = append(g.garbage, garbageRun{kib: kib, gcCycles: cycles, epoch: g.epoch})
	}
	g.garbageKiB += kib
}

// reuse is called by the holder of a place taken with acquire(ctx, kib)
// between one run of kib and the next on the same place: the first run's
// buffer is counted as garbage while the place stays charged for the next
// run, and when that garbage stands between the Gate and its budget a
// collection is forced before reuse returns, as for a new caller. reuse
// never waits in the queue, never looks at a context and cannot fail, so
// a second run on a place already held cannot be refused.
func (g *Gate) reuse(kib uint64) {
	if kib == 0 {
		kib = smallRunKiB
	}
	cycles := gcCycles()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addGarbageLocked(kib, cycles)
	g.reclaimLocked(gcCycles())
	// Collect without waiting for, or setting, g.collecting: a collection
	// another caller forces meanwhile does no harm, and each drops only
	// the garbage released before its own epoch began. Runs released
	// during a collection may leave garbage in the way: collect again.
	for g.inUseKiB+g.garbageKiB > g.budgetKiB {
		before := g.epoch
		g.epoch++
		g.mu.Unlock()
		runtime.GC() // frees the first run's buffer, released before this call
		g.mu.Lock()
		g.dropGarbageLocked(func(r garbageRun) bool { return r.epoch <= before })
		g.broadcastLocked()
	}
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
