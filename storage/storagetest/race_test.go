package storagetest

import (
	"context"
	"sync/atomic"
	"testing"
)

// The rendezvous that the package's test uses to force its flawed stores'
// races: a racer that awaits a rival does not go on before the rival has
// arrived.
func TestRaceAwaitWaitsForRival(t *testing.T) {
	var early atomic.Int32
	race(t.Context(), func(ctx context.Context, i int) error {
		Arrive(ctx, "read")
		Await(ctx, "read", 2)
		r := raceOf(ctx)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.arrived["read"] < 2 {
			early.Add(1)
		}
		return nil
	})
	if n := early.Load(); n != 0 {
		t.Errorf("%d racers went on before a rival arrived", n)
	}
}

// A racer whose rivals never arrive is let go once every other racer has
// returned or waits too, rather than hanging the clause.
func TestRaceAwaitReturnsWhenNoRivalCanArrive(t *testing.T) {
	var done atomic.Int32
	race(t.Context(), func(ctx context.Context, i int) error {
		if i%2 == 0 {
			Arrive(ctx, "read")
			Await(ctx, "never", 1)
			done.Add(1)
		}
		return nil
	})
	if n := done.Load(); n != concurrency/2 {
		t.Errorf("%d of %d waiting racers returned", n, concurrency/2)
	}
	// One arrival short of the number awaited.
	race(t.Context(), func(ctx context.Context, i int) error {
		Arrive(ctx, "read")
		Await(ctx, "read", concurrency+1)
		return nil
	})
}

// Calls that are not a racer's never wait.
func TestAwaitOutsideRaceReturns(t *testing.T) {
	if raceOf(t.Context()) != nil {
		t.Fatal("a plain context reads as a racer's")
	}
	Arrive(t.Context(), "read")
	Await(t.Context(), "read", 2)
}
