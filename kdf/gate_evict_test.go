package kdf

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Regression tests for the review of issue 10's fixes, finding F5: the
// Gate's fairness held only against a single key. Login keys are
// "account:"+the submitted name, which the attacker chooses, so rotating
// names (or running without a key) filled the whole queue, and a victim's
// key was refused although it held no place at all.

// gateQueueRecorder queues callers at a Gate whose only place the test
// holds, and records which of them run and which are refused.
type gateQueueRecorder struct {
	t  *testing.T
	g  *Gate
	wg sync.WaitGroup

	mu      sync.Mutex
	ran     []string
	refused []string
}

// enqueue starts a caller of key, labelled label, and waits until the
// Gate holds queued waiters (after any eviction its arrival caused) and
// the caller is one of them. It fails t at once if the caller is refused.
func (r *gateQueueRecorder) enqueue(key, label string, queued int) {
	r.t.Helper()
	r.wg.Add(1)
	done := make(chan error, 1)
	go func() {
		defer r.wg.Done()
		err := r.g.Run(WithGateKey(bg, key), 1, func() {
			r.mu.Lock()
			r.ran = append(r.ran, label)
			r.mu.Unlock()
		})
		r.mu.Lock()
		switch {
		case errors.Is(err, ErrBusy):
			r.refused = append(r.refused, label)
		case err != nil:
			r.t.Errorf("%s: %v", label, err)
		}
		r.mu.Unlock()
		done <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		select {
		case err := <-done:
			r.t.Fatalf("%s was not queued: %v", label, err)
		default:
		}
		r.g.mu.Lock()
		ok := r.g.waiting == queued && r.g.queues[key] != nil
		r.g.mu.Unlock()
		if ok {
			return
		}
	}
	r.t.Fatalf("%s: never saw %d waiters", label, queued)
}

// expectRefused calls Run with key while queued callers wait, and fails t
// unless it is refused with ErrBusy at once, without running and without
// taking a place (a caller that queues instead is cancelled, so that the
// test ends on the old code too).
func (r *gateQueueRecorder) expectRefused(key, label string, queued int) {
	r.t.Helper()
	ctx, cancel := context.WithCancel(WithGateKey(bg, key))
	defer cancel()
	r.mu.Lock()
	refusedBefore := len(r.refused)
	r.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- r.g.Run(ctx, 1, func() { r.t.Errorf("%s ran", label) }) }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		select {
		case err := <-done:
			if !errors.Is(err, ErrBusy) || errors.Is(err, context.Canceled) {
				r.t.Errorf("%s: %v, want ErrBusy at once", label, err)
			}
			return
		default:
		}
		r.g.mu.Lock()
		w := r.g.waiting
		r.g.mu.Unlock()
		r.mu.Lock()
		evicted := len(r.refused) > refusedBefore
		r.mu.Unlock()
		if w > queued || evicted {
			cancel()
			r.t.Errorf("%s was queued (evicting another: %v), want ErrBusy at once", label, evicted)
			<-done
			return
		}
	}
	r.t.Fatalf("%s: no answer", label)
}

// waitRefused waits until n callers have been refused.
func (r *gateQueueRecorder) waitRefused(n int) {
	r.t.Helper()
	r.waitState(func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.refused) == n
	})
}

// waitState polls the Gate's state (under its lock) until ok holds.
// Nothing is asserted about time.
func (r *gateQueueRecorder) waitState(ok func() bool) {
	r.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if ok() {
			return
		}
	}
	r.t.Fatal("the Gate never reached the expected state")
}

func (r *gateQueueRecorder) results() (ran, refused []string) {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ran), slices.Clone(r.refused)
}

func newQueueRecorder(t *testing.T, cfg GateConfig) (*gateQueueRecorder, func()) {
	g := newTestGate(t, cfg)
	release, err := g.acquire(bg, 1)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	hold := func() { once.Do(release) }
	t.Cleanup(hold) // lets the queued callers go if the test stops early
	return &gateQueueRecorder{t: t, g: g}, hold
}

// TestGateRotatingKeysCannotStarveVictim: eight attacker-chosen keys of
// one place each fill the queue (MaxWaiting 8); the victim's first caller
// is still queued, in place of the newest waiter of the key that has been
// queued longest (every key holds one place), and runs. Before the fix
// the victim got ErrBusy: the whole queue was full.
func TestGateRotatingKeysCannotStarveVictim(t *testing.T) {
	t.Parallel()
	r, hold := newQueueRecorder(t, GateConfig{MaxConcurrent: 1, MemoryBudgetKiB: 1024, MaxWaiting: 8})
	for i := range 8 {
		r.enqueue(fmt.Sprint("account:nonexistent", i), fmt.Sprint("rot", i), i+1)
	}
	r.enqueue("account:victim", "victim", 8)
	r.waitRefused(1)
	// The victim's key now holds as many places as any other: its second
	// caller does not push another key out.
	r.expectRefused("account:victim", "the victim's second caller (queue full, every key at one place)", 8)
	hold()
	ran, refused := r.results()
	if !slices.Contains(ran, "victim") {
		t.Fatalf("the victim did not run; ran %v, refused %v", ran, refused)
	}
	if want := []string{"rot0"}; !slices.Equal(refused, want) {
		t.Fatalf("refused %v, want %v (the key queued longest gives up its place)", refused, want)
	}
	if want := []string{"rot1", "rot2", "rot3", "rot4", "rot5", "rot6", "rot7", "victim"}; !slices.Equal(ran, want) {
		t.Fatalf("run order %v, want %v", ran, want)
	}
	checkGateIdle(t, r.g)
}

// TestGateAnonymousFloodCannotStarveVictim: callers without a key share
// the anonymous key, which may fill the whole queue (an application that
// sets no keys queues as deep as MaxWaiting), but a keyed caller arriving
// at the full queue takes the place of the newest anonymous waiter (the
// key holding the most). Before the eviction, the anonymous key held the
// whole queue and the victim was refused.
func TestGateAnonymousFloodCannotStarveVictim(t *testing.T) {
	t.Parallel()
	r, hold := newQueueRecorder(t, GateConfig{MaxConcurrent: 1, MemoryBudgetKiB: 1024, MaxWaiting: 8})
	for i := range 8 {
		r.enqueue("", fmt.Sprint("anon", i), i+1)
	}
	// The queue is full and no key holds fewer than the anonymous one.
	r.expectRefused("", "a ninth anonymous caller", 8)
	r.enqueue("account:victim", "victim", 8) // evicts anon7, the anonymous key's newest
	r.waitRefused(1)
	hold()
	ran, refused := r.results()
	if want := []string{"anon7"}; !slices.Equal(refused, want) {
		t.Fatalf("refused %v, want %v", refused, want)
	}
	if !slices.Contains(ran, "victim") || len(ran) != 8 {
		t.Fatalf("run order %v: want the victim and anon0..anon6", ran)
	}
	checkGateIdle(t, r.g)
}

// An evicted waiter leaves its key's queue at the back (the newest goes),
// its key's other waiters keep their order, and round-robin across keys
// goes on: four keys at their share of two fill the queue, a fifth key
// takes the place of the newest waiter of the key queued longest, then of
// the next, until it holds as many as they do.
func TestGateEvictionKeepsOrder(t *testing.T) {
	t.Parallel()
	r, hold := newQueueRecorder(t, GateConfig{MaxConcurrent: 1, MemoryBudgetKiB: 1024, MaxWaiting: 8})
	n := 0
	for _, k := range []string{"A", "B", "C", "D"} {
		for i := 1; i <= 2; i++ {
			n++
			r.enqueue(k, fmt.Sprint(k, i), n)
		}
	}
	r.enqueue("E", "E1", 8)
	r.waitRefused(1)
	// E still holds fewer places than B, C and D: its second caller takes
	// the place of the newest waiter of B (queued longest among them).
	r.enqueue("E", "E2", 8)
	r.waitRefused(2)
	// E now holds its share: its next caller is refused at once.
	r.expectRefused("E", "E's third caller", 8)
	ctx, cancel := context.WithCancel(WithGateKey(bg, "F"))
	cancel()
	if err := r.g.Run(ctx, 1, func() {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v", err)
	}
	hold()
	ran, refused := r.results()
	if want := []string{"A2", "B2"}; !slices.Equal(refused, want) {
		t.Fatalf("refused %v, want %v", refused, want)
	}
	if want := []string{"A1", "B1", "C1", "D1", "E1", "C2", "D2", "E2"}; !slices.Equal(ran, want) {
		t.Fatalf("run order %v, want %v", ran, want)
	}
	checkGateIdle(t, r.g)
}

// checkGateIdle fails t unless g has nothing running, queued or charged.
func checkGateIdle(t *testing.T, g *Gate) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting != 0 || len(g.ring) != 0 || len(g.queues) != 0 || g.running != 0 || g.inUseKiB != 0 {
		t.Fatalf("state left: waiting %d, ring %d, keys %d, running %d, in use %d", g.waiting, len(g.ring), len(g.queues), g.running, g.inUseKiB)
	}
}
