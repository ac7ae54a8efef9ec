package totp_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/totp"
)

// racers is how many requests race with one code (TOT-04, A10).
const racers = 20

// gateTimeout only keeps a broken test from hanging: the gate opens as
// soon as its writes have arrived, which no correct run waits this long
// for.
const gateTimeout = 30 * time.Second

var errGateTimeout = errors.New("gateStore: the expected writes never arrived")

// A gateStore forces the interleaving that a compare-and-swap exists for.
// Once armed with n, it holds back every write (PutFactors,
// DeleteFactors) until n writes have arrived: with one write per racer,
// every racer has made all its reads of the record, and decided what to
// write, before any of them writes, so each decides on the same version,
// whatever the scheduler does and however many reads the Authenticator
// makes before its write. Writes after the n-th (the retries after a
// conflict) pass freely.
//
// With blind set it is a flawed store: its PutFactors ignores expect and
// overwrites whatever is stored (it reads the current version and writes
// over it, again until it lands), as a store without compare-and-swap
// would. The tests run it to prove that they catch such a store.
type gateStore struct {
	storage.FactorStore

	mu      sync.Mutex
	armed   bool
	blind   bool
	n       int
	reads   int
	arrived int
	open    chan struct{}
}

// arm holds the writes until n of them have arrived.
func (g *gateStore) arm(n int, blind bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.blind, g.n, g.reads, g.arrived, g.open = true, blind, n, 0, 0, make(chan struct{})
}

// disarm lets everything through again, and returns how many reads and
// writes the armed run saw.
func (g *gateStore) disarm() (reads, writes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = false
	return g.reads, g.arrived
}

func (g *gateStore) GetFactors(ctx context.Context, userID string) (storage.FactorRecord, error) {
	g.mu.Lock()
	if g.armed {
		g.reads++
	}
	g.mu.Unlock()
	return g.FactorStore.GetFactors(ctx, userID)
}

// pass waits, for an armed gate, until n writes have arrived; it reports
// whether the store is flawed.
func (g *gateStore) pass() (blind bool, err error) {
	g.mu.Lock()
	armed, blind, open := g.armed, g.blind, g.open
	if armed {
		g.arrived++
		if g.arrived == g.n {
			close(open)
		}
	}
	g.mu.Unlock()
	if !armed {
		return false, nil
	}
	select {
	case <-open:
		return blind, nil
	case <-time.After(gateTimeout):
		return blind, errGateTimeout
	}
}

func (g *gateStore) PutFactors(ctx context.Context, userID string, data []byte, expect uint64) error {
	blind, err := g.pass()
	if err != nil || !blind {
		if err != nil {
			return err
		}
		return g.FactorStore.PutFactors(ctx, userID, data, expect)
	}
	for { // the flaw: expect is ignored
		var current uint64
		fr, err := g.FactorStore.GetFactors(ctx, userID)
		switch {
		case err == nil:
			current = fr.Version
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		if err := g.FactorStore.PutFactors(ctx, userID, data, current); !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
}

func (g *gateStore) DeleteFactors(ctx context.Context, userID string, expect uint64) error {
	if _, err := g.pass(); err != nil {
		return err
	}
	return g.FactorStore.DeleteFactors(ctx, userID, expect)
}

// race runs f(0) … f(n-1) in goroutines released together, and returns
// their errors by index.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// outcome counts the successes of a race, and reports the first error
// that is neither a success nor the rejection of a code.
func outcome(errs []error) (wins, rejections int, other error) {
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case rejected(err):
			rejections++
		case other == nil:
			other = err
		}
	}
	return wins, rejections, other
}

// raceFixture is an Authenticator over st through a gateStore, with one
// user ("alice") enrolled, the clock one step past the confirming code.
type raceFixture struct {
	*authFixture
	gate *gateStore
	e    enrolled
	// regenerated is the set RegenerateRecoveryCodes made in a race.
	regenerated []totp.RecoveryCode
}

func newRaceFixture(t *testing.T, st factorStore) *raceFixture {
	gate := &gateStore{FactorStore: st}
	f := newAuth(t, st, newStepClock(), authOptions{factors: gate})
	e := f.enroll(t.Context(), "alice")
	f.clock.Advance(period)
	return &raceFixture{authFixture: f, gate: gate, e: e}
}

// raceVerify has 20 requests Verify the same right code, each having read
// the record before any writes, and returns their errors.
func (f *raceFixture) raceVerify(t *testing.T, blind bool) []error {
	code := appCode(t, f.e.secret, f.clock.Now())
	f.gate.arm(racers, blind)
	errs := race(racers, func(int) error { return f.auth.Verify(t.Context(), "alice", code, noSource) })
	reads, writes := f.gate.disarm()
	// Every racer read, then found the code right and wrote: the race
	// was real, and no racer was turned away by the lockout instead. (A
	// loser reads again after its conflict, and finds the code used.)
	if reads < racers || writes != racers {
		t.Errorf("the race had %d reads and %d writes, want ≥ %d and %d", reads, writes, racers, racers)
	}
	return errs
}

// Of 20 concurrent requests with one right code, each having read the
// record before any wrote it, exactly one succeeds; the 19 others are
// refused as a replay, with the answer of a wrong code (TOT-04, A10).
func TestRaceVerifyOneCodeOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st factorStore) {
		f := newRaceFixture(t, st)
		errs := f.raceVerify(t, false)
		wins, rejections, other := outcome(errs)
		if other != nil {
			t.Fatalf("unexpected error: %v", other)
		}
		if wins != 1 || rejections != racers-1 {
			t.Fatalf("%d successes and %d rejections, want 1 and %d", wins, rejections, racers-1)
		}
		for _, err := range errs {
			if err != nil && (!errors.Is(err, totp.ErrReplayed) || errors.Is(err, ratelimit.ErrLocked)) {
				t.Errorf("a losing racer: %v, want a replay (not a lock)", err)
			}
		}
		// And the code stays used.
		if err := f.auth.Verify(t.Context(), "alice", appCode(t, f.e.secret, f.clock.Now()), noSource); !errors.Is(err, totp.ErrReplayed) {
			t.Errorf("the code after the race: %v, want a replay", err)
		}
	})
}

// The proof that TestRaceVerifyOneCodeOnce can fail: the same race over a
// flawed store whose writes ignore the expected version lets more than
// one request succeed with one code. If this test ever fails, the race
// above no longer forces the interleaving, and passes for nothing.
func TestRaceVerifyFlawedStoreIsCaught(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st factorStore) {
		f := newRaceFixture(t, st)
		wins, _, other := outcome(f.raceVerify(t, true))
		if other != nil {
			t.Fatalf("unexpected error: %v", other)
		}
		if wins < 2 {
			t.Fatalf("the flawed store let %d requests succeed with one code: the race does not catch a missing compare-and-swap", wins)
		}
	})
}

// raceRecovery has 20 requests use the same recovery code, each having
// read the record before any writes, and returns their errors.
func (f *raceFixture) raceRecovery(t *testing.T, blind bool) []error {
	code := f.e.codes[0].Reveal()
	f.gate.arm(racers, blind)
	errs := race(racers, func(int) error {
		_, err := f.auth.UseRecoveryCode(t.Context(), "alice", code, noSource)
		return err
	})
	reads, writes := f.gate.disarm()
	if reads < racers || writes != racers {
		t.Errorf("the race had %d reads and %d writes, want ≥ %d and %d", reads, writes, racers, racers)
	}
	return errs
}

// Of 20 concurrent requests with one recovery code, exactly one succeeds,
// and one code is gone from the set (TOT-04's rule for recovery codes,
// A12: a used code is not accepted again).
func TestRaceRecoveryCodeOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st factorStore) {
		f := newRaceFixture(t, st)
		wins, rejections, other := outcome(f.raceRecovery(t, false))
		if other != nil {
			t.Fatalf("unexpected error: %v", other)
		}
		if wins != 1 || rejections != racers-1 {
			t.Fatalf("%d successes and %d rejections, want 1 and %d", wins, rejections, racers-1)
		}
		status, err := f.auth.RecoveryCodes(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if want := len(f.e.codes) - 1; status.Remaining != want {
			t.Errorf("%d codes left, want %d", status.Remaining, want)
		}
		if _, err := f.auth.UseRecoveryCode(t.Context(), "alice", f.e.codes[0].Reveal(), noSource); !rejected(err) {
			t.Errorf("the code after the race: %v, want it rejected", err)
		}
		if _, err := f.auth.UseRecoveryCode(t.Context(), "alice", f.e.codes[1].Reveal(), noSource); err != nil {
			t.Errorf("another code of the set after the race: %v", err)
		}
	})
}

// The proof that TestRaceRecoveryCodeOnce can fail: over the flawed store,
// one recovery code logs in more than once.
func TestRaceRecoveryFlawedStoreIsCaught(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st factorStore) {
		f := newRaceFixture(t, st)
		wins, _, other := outcome(f.raceRecovery(t, true))
		if other != nil {
			t.Fatalf("unexpected error: %v", other)
		}
		if wins < 2 {
			t.Fatalf("the flawed store let %d requests use one recovery code: the race does not catch a missing compare-and-swap", wins)
		}
	})
}

// Once step T's code is accepted, the code of step T−1 (still inside the
// ±1 window) is refused, as is T's again: only a step after the last
// accepted one counts (TOT-04).
func TestEarlierStepAfterLaterRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st factorStore) {
		f := newAuth(t, st, newStepClock(), authOptions{})
		e := f.enroll(t.Context(), "alice") // uses step T−2
		f.clock.Advance(2 * period)
		now := f.clock.Now()
		if err := f.auth.Verify(t.Context(), "alice", appCode(t, e.secret, now), noSource); err != nil {
			t.Fatalf("step T: %v", err)
		}
		for name, at := range map[string]time.Time{"T−1": now.Add(-period), "T": now} {
			err := f.auth.Verify(t.Context(), "alice", appCode(t, e.secret, at), noSource)
			if !rejected(err) || !errors.Is(err, totp.ErrReplayed) {
				t.Errorf("step %s after T: %v, want a rejected replay", name, err)
			}
		}
		// T+1 is still good: the refusals did not consume anything.
		if err := f.auth.Verify(t.Context(), "alice", appCode(t, e.secret, now.Add(period)), noSource); err != nil {
			t.Errorf("step T+1: %v", err)
		}
	})
}

// changeRace is a change that races with Confirm.
type changeRace struct {
	name string
	do   func(t *testing.T, f *raceFixture, other enrolled) error
	// kept reports whether the change's write survived.
	kept func(t *testing.T, f *raceFixture, other enrolled) bool
}

var changeRaces = []changeRace{
	{
		name: "Remove",
		do: func(t *testing.T, f *raceFixture, other enrolled) error {
			return f.auth.Remove(t.Context(), "alice", other.id)
		},
		kept: func(t *testing.T, f *raceFixture, other enrolled) bool {
			return !slices.Contains(f.ids("alice"), other.id)
		},
	},
	{
		name: "RegenerateRecoveryCodes",
		do: func(t *testing.T, f *raceFixture, other enrolled) error {
			codes, err := f.auth.RegenerateRecoveryCodes(t.Context(), "alice")
			if err == nil {
				f.regenerated = codes
			}
			return err
		},
		kept: func(t *testing.T, f *raceFixture, other enrolled) bool {
			// The new set works, and the old one does not.
			_, errOld := f.auth.UseRecoveryCode(t.Context(), "alice", f.e.codes[0].Reveal(), noSource)
			_, errNew := f.auth.UseRecoveryCode(t.Context(), "alice", f.regenerated[0].Reveal(), noSource)
			return rejected(errOld) && errNew == nil
		},
	},
}

// confirmRace runs Confirm of a new authenticator against change, both
// having read the record before either writes, and reports whether each
// write survived.
func confirmRace(t *testing.T, st factorStore, c changeRace, blind bool) (confirmKept, changeKept bool) {
	f := newRaceFixture(t, st)
	other := f.enroll(t.Context(), "alice") // a second authenticator, for Remove
	f.clock.Advance(period)
	e, err := f.auth.Begin(t.Context(), "alice", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	code := appCode(t, e.Secret(), f.clock.Now())
	var newID string
	// Both have made every read before either writes.
	f.gate.arm(2, blind)
	errs := race(2, func(i int) error {
		if i == 0 {
			got, err := f.auth.Confirm(t.Context(), "alice", e.Token, code, noSource, totp.ConfirmOptions{Name: "new"})
			newID = got.Authenticator.ID
			return err
		}
		return c.do(t, f, other)
	})
	f.gate.disarm()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("Confirm: %v; %s: %v", errs[0], c.name, errs[1])
	}
	return slices.Contains(f.ids("alice"), newID), c.kept(t, f, other)
}

// Confirm racing Remove or RegenerateRecoveryCodes (each having read the
// record before either writes) loses neither write: the one that finds
// its version taken reads again and applies its change on top.
func TestRaceConfirmKeepsConcurrentChange(t *testing.T) {
	for _, c := range changeRaces {
		t.Run(c.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, st factorStore) {
				confirmKept, changeKept := confirmRace(t, st, c, false)
				if !confirmKept || !changeKept {
					t.Errorf("Confirm's write kept: %v; %s's write kept: %v", confirmKept, c.name, changeKept)
				}
			})
		})
	}
}

// The proof that TestRaceConfirmKeepsConcurrentChange can fail: over the
// flawed store, one of the two writes is lost.
func TestRaceConfirmFlawedStoreIsCaught(t *testing.T) {
	for _, c := range changeRaces {
		t.Run(c.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, st factorStore) {
				confirmKept, changeKept := confirmRace(t, st, c, true)
				if confirmKept && changeKept {
					t.Errorf("the flawed store kept both writes: the race does not catch a lost update")
				}
			})
		})
	}
}
