package storagetest

import (
	"context"
	"sync"
)

// race runs f(racer, 0) … f(racer, concurrency-1) in goroutines released
// together, and returns their errors by index. The context racer is ctx
// carrying the race (a *raceRun), which no adapter looks at and which
// changes nothing for one. The package's own test gives it to its flawed
// stores that read and write in two steps: they wait between the steps
// until a rival racer has read too, so the race that a clause exists to
// catch happens on every run, whatever the scheduler does.
func race(ctx context.Context, f func(racer context.Context, i int) error) []error {
	return raceN(ctx, concurrency, f)
}

// raceN is race with n racers instead of concurrency.
func raceN(ctx context.Context, n int, f func(racer context.Context, i int) error) []error {
	run := &raceRun{racers: n, arrived: map[string]int{}, changed: make(chan struct{})}
	racer := context.WithValue(ctx, raceKey{}, run)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer run.finish()
			<-start
			errs[i] = f(racer, i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// raceKey is the context key of the *raceRun that race's calls carry.
type raceKey struct{}

// A raceRun is one call of race: it counts the racers that returned, and
// lets a racer's call wait, at a point of its choosing, until a number of
// calls of the same race have reached another point (arrive, await).
// Only the package's test uses the points (through export_test.go).
type raceRun struct {
	racers int

	mu       sync.Mutex
	finished int            // racers whose function returned
	waiting  int            // calls in await
	arrived  map[string]int // calls that reached each point
	changed  chan struct{}  // closed, and replaced, whenever the above change
}

// raceOf returns the race that a call with context ctx is part of, or nil
// for a call that is not a racer's.
func raceOf(ctx context.Context) *raceRun {
	r, _ := ctx.Value(raceKey{}).(*raceRun)
	return r
}

// changedLocked wakes the calls in await; r.mu is held.
func (r *raceRun) changedLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// finish counts a racer that returned.
func (r *raceRun) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished++
	r.changedLocked()
}

// arrive counts a call that reached point.
func (r *raceRun) arrive(point string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.arrived[point]++
	r.changedLocked()
}

// await waits until n calls of the race have reached point. So that a
// race in which fewer ever get there cannot hang, it returns as well when
// no call can arrive any more (every racer has returned or is in await),
// and when ctx is done.
func (r *raceRun) await(ctx context.Context, point string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting++
	r.changedLocked()
	defer func() {
		r.waiting--
		r.changedLocked()
	}()
	for r.arrived[point] < n && r.finished+r.waiting < r.racers {
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
		}
		r.mu.Lock()
		if ctx.Err() != nil {
			return
		}
	}
}
