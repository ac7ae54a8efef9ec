package kdf

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Regression tests for the review of issue 10's fixes, finding F1: a
// guess that NFKC changes costs an unpeppered hash two KDF runs, and the
// first one really checks the guess. If Verify could then answer ErrBusy
// or a context error ("not checked"), ratelimit.Lockout would give the
// attempt back although the guess was checked, and an attacker who keeps
// the second run from starting (hanging up, or filling the Gate) would get
// unlimited guesses. Once a run has completed, Verify answers ErrMismatch
// or a match; VerifyDummy answers the same, with the same runs.

// twoRunGuess is a wrong password that NFKC changes (full-width 'Ａ' is
// 'A'), so an unpeppered hash tries it twice.
var twoRunGuess = []byte("guess-\uff21")

// checkedCall is the answer of one Verify or VerifyDummy call and the KDF
// runs it made.
type checkedCall struct {
	name string
	err  error
	runs int
}

// verifyBoth runs Verify of twoRunGuess against a hash of another password
// and VerifyDummy of the same guess, each with a fresh context and with
// interfere called (through the run hook) when their first KDF run starts.
func verifyBoth(t *testing.T, h *Hasher, interfere func(cancel context.CancelFunc)) []checkedCall {
	t.Helper()
	stored, err := h.Hash(bg, []byte("the account's real password"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { h.runHook = nil }()
	call := func(name string, f func(ctx context.Context) error) checkedCall {
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		runs := 0
		h.runHook = func(kdfRun) {
			if runs++; runs == 1 {
				interfere(cancel)
			}
		}
		err := f(ctx)
		return checkedCall{name, err, runs}
	}
	return []checkedCall{
		call("Verify", func(ctx context.Context) error { _, err := h.Verify(ctx, stored, twoRunGuess); return err }),
		call("VerifyDummy", func(ctx context.Context) error { return h.VerifyDummy(ctx, twoRunGuess) }),
	}
}

// TestVerifyCheckedGuessIsNeverNotChecked: the context ends while the
// first of two runs is under way (the client hangs up between them).
// Before the fix the second run was queued at the Gate on its own and
// refused, and Verify returned ErrBusy matching context.Canceled after a
// run that had checked the guess.
func TestVerifyCheckedGuessIsNeverNotChecked(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{Params: cheapTestParams()})
	for _, c := range verifyBoth(t, h, func(cancel context.CancelFunc) { cancel() }) {
		if !errors.Is(c.err, ErrMismatch) || errors.Is(c.err, ErrBusy) || errors.Is(c.err, context.Canceled) {
			t.Errorf("%s after a completed run, context then cancelled: %v, want ErrMismatch", c.name, c.err)
		}
		if c.runs != 2 {
			t.Errorf("%s made %d runs, want 2", c.name, c.runs)
		}
	}
}

// TestVerifySecondRunNotRefusedByFullGate: while the first of two runs is
// under way, other callers take the Gate's other place and fill its queue.
// Before the fix the second run queued on its own, met a full queue and
// Verify returned ErrBusy after checking the guess. Now both runs hold the
// one place taken before the first, so the second cannot be refused.
func TestVerifySecondRunNotRefusedByFullGate(t *testing.T) {
	t.Parallel()
	const budget = 64 * 1024
	g := newTestGate(t, GateConfig{MaxConcurrent: 2, MemoryBudgetKiB: budget, MaxWaiting: 1, MaxWaitingPerKey: 1})
	h := newTestHasher(t, Config{Params: cheapTestParams(), Gate: g})
	var cleanups []func()
	fill := func() {
		// Take the other place, then queue a caller that needs the whole
		// budget (it cannot start while that place is held): the queue
		// is full.
		hold, err := g.acquire(bg, 1)
		if err != nil {
			t.Errorf("taking the second place: %v", err)
			return
		}
		done := make(chan error, 1)
		go func() { done <- g.Run(WithGateKey(bg, "someone else"), budget, func() {}) }()
		waitQueued(t, g, 1)
		cleanups = append(cleanups, func() {
			hold()
			if err := <-done; err != nil {
				t.Errorf("the queued caller: %v", err)
			}
		})
	}
	// The gate is filled during each of the two calls; the queued caller
	// of the first is let go before the second call.
	stored, err := h.Hash(bg, []byte("the account's real password"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Verify", func() error { _, err := h.Verify(bg, stored, twoRunGuess); return err }},
		{"VerifyDummy", func() error { return h.VerifyDummy(bg, twoRunGuess) }},
	} {
		runs := 0
		h.runHook = func(kdfRun) {
			if runs++; runs == 1 {
				fill()
			}
		}
		err := c.call()
		h.runHook = nil
		for _, f := range cleanups {
			f()
		}
		cleanups = nil
		if !errors.Is(err, ErrMismatch) || errors.Is(err, ErrBusy) {
			t.Errorf("%s with the Gate full after its first run: %v, want ErrMismatch", c.name, err)
		}
		if runs != 2 {
			t.Errorf("%s made %d runs, want 2", c.name, runs)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running != 0 || g.inUseKiB != 0 || g.waiting != 0 {
		t.Fatalf("gate state left: running %d, in use %d KiB, waiting %d", g.running, g.inUseKiB, g.waiting)
	}
}

// Before any run has started, a refusal is still "not checked": ErrBusy
// (matching the context's error), with no run made.
func TestVerifyNotCheckedBeforeAnyRun(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{Params: cheapTestParams()})
	stored, err := h.Hash(bg, []byte("the account's real password"))
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	h.runHook = func(kdfRun) { runs++ }
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, verr := h.Verify(ctx, stored, twoRunGuess)
	derr := h.VerifyDummy(ctx, twoRunGuess)
	for i, err := range []error{verr, derr} {
		if !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
			t.Errorf("call %d with an ended context: %v, want ErrBusy", i, err)
		}
	}
	if runs != 0 {
		t.Fatalf("%d runs with an ended context", runs)
	}
}

// cheapTestParams are the cheapest Argon2id parameters above the floors
// (m=12 MiB, t=3), for tests that count runs.
func cheapTestParams() Params {
	return Params{Algorithm: Argon2id, Time: 3, MemoryKiB: MinArgon2MemoryKiBAtT3, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Between two runs on one place, the first run's buffer is counted as
// garbage and, when it would take the Gate over its budget, collected
// before the second run starts: the accounting stays what it would be
// had each run taken its own place.
func TestGateReuseCountsFirstRunAsGarbage(t *testing.T) {
	t.Parallel()
	const budget = 8 * 1024
	g := newTestGate(t, GateConfig{MaxConcurrent: 1, MemoryBudgetKiB: budget})
	release, err := g.acquire(bg, budget/2+1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, (budget/2)*1024)
	buf[len(buf)-1] = 1
	g.reuse(budget/2 + 1)
	g.mu.Lock()
	inUse, garbage, running := g.inUseKiB, g.garbageKiB, g.running
	g.mu.Unlock()
	if inUse != budget/2+1 || running != 1 || inUse+garbage > budget {
		t.Fatalf("after reuse: in use %d KiB, garbage %d KiB, running %d; budget %d", inUse, garbage, running, budget)
	}
	release()
	checkGarbageInvariant(t, g)
}

// A waiter that forces a collection while the last run ends must not be
// left waiting for a wake-up that never comes. Forced interleaving: A and
// B hold the Gate's two places, an earlier run's buffer is still counted
// as garbage, and W waits. B ends; W is woken, finds only garbage in the
// way and forces a collection; during it (collectHook, lock released) A
// puts a second buffer's worth of garbage on the Gate and ends, as a
// two-run Verify does (reuse without needing a collection, then release).
// After the collection, garbage it did not cover stands in the way and
// nothing is running. Before the fix W then waited for a release that
// never came (seen as a 30-second stall in bench/kdfmem -non-nfkc); now it
// collects again and runs. The ctx deadline only turns a hang into a
// failure; nothing is asserted about time.
func TestGateWaiterNotStrandedByGarbageDuringCollection(t *testing.T) {
	t.Parallel()
	const k = 4 * 1024
	g := newTestGate(t, GateConfig{MaxConcurrent: 2, MemoryBudgetKiB: 2 * k})
	releaseA, err := g.acquire(bg, k)
	if err != nil {
		t.Fatal(err)
	}
	releaseB, err := g.acquire(bg, 1)
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.addGarbageLocked(k, gcCycles()) // an earlier run's buffer, not yet collected
	g.mu.Unlock()
	hooked := false
	g.collectHook = func() {
		if hooked {
			return
		}
		hooked = true
		g.mu.Lock()
		g.addGarbageLocked(k, gcCycles()) // A's first buffer (reuse)
		g.mu.Unlock()
		releaseA() // A's second run ends
	}
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, k, func() {}) }()
	waitQueued(t, g, 1)
	releaseB()
	if err := <-done; err != nil {
		t.Fatalf("the waiter: %v, want to run once the last run ended", err)
	}
	if !hooked {
		t.Fatal("the waiter never forced a collection: the interleaving was not exercised")
	}
	checkGarbageInvariant(t, g)
}
