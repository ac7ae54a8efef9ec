package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// countingCredential is a Credential whose Verify answers with verr and
// whose Dummy answers like kdf.Hasher.VerifyDummy, counting their calls.
type countingCredential struct {
	verify, dummy int
	verr          error
}

func (c *countingCredential) cred() ratelimit.Credential {
	return ratelimit.Credential{
		Verify: func(context.Context) error { c.verify++; return c.verr },
		Dummy:  func(context.Context) error { c.dummy++; return kdf.ErrMismatch },
	}
}

// Issue 10, item 6: through Check, every answer costs exactly one run of
// a credential function: Verify when admitted, Dummy when locked (never
// Verify), and the locked answer matches ErrRejected as a wrong one does,
// with the same text. Before Check, Begin answered a locked account with
// no work at all (the caller had to remember to pad it).
func TestCheckLockedCostsAsMuchAsWrong(t *testing.T) {
	c := newClock()
	l := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{MaxFailures: 3}, c)
	ctx := t.Context()
	src := ratelimit.Source{IP: netip.MustParseAddr("192.0.2.1")}
	var wrongText string
	for i := range 3 {
		cc := &countingCredential{verr: fmt.Errorf("bad password: %w", ratelimit.ErrWrongCredential)}
		err := l.Check(ctx, "alice", src, cc.cred())
		if !errors.Is(err, ratelimit.ErrRejected) || errors.Is(err, ratelimit.ErrLocked) {
			t.Fatalf("wrong password %d: %v, want ErrRejected and not ErrLocked", i+1, err)
		}
		if cc.verify != 1 || cc.dummy != 0 {
			t.Fatalf("wrong password %d: Verify ran %d times, Dummy %d; want 1, 0", i+1, cc.verify, cc.dummy)
		}
		wrongText = err.Error()
	}
	for _, verr := range []error{nil, ratelimit.ErrWrongCredential} { // right and wrong passwords, locked
		cc := &countingCredential{verr: verr}
		err := l.Check(ctx, "alice", src, cc.cred())
		var le *ratelimit.LockedError
		if !errors.Is(err, ratelimit.ErrRejected) || !errors.Is(err, ratelimit.ErrLocked) || !errors.As(err, &le) || le.Scope != ratelimit.ScopeSource {
			t.Fatalf("locked, Verify would answer %v: %v, want ErrRejected and ErrLocked (source)", verr, err)
		}
		if err.Error() != wrongText {
			t.Errorf("locked answer %q, wrong password %q: the texts differ", err, wrongText)
		}
		if cc.verify != 0 || cc.dummy != 1 {
			t.Fatalf("locked: Verify ran %d times, Dummy %d; want 0, 1", cc.verify, cc.dummy)
		}
	}
	// kdf.ErrMismatch and Credential.Wrong classify too; a right password
	// elsewhere gets in with one Verify.
	other := ratelimit.Source{IP: netip.MustParseAddr("192.0.2.2")}
	cc := &countingCredential{verr: kdf.ErrMismatch}
	if err := l.Check(ctx, "alice", other, cc.cred()); !errors.Is(err, ratelimit.ErrRejected) {
		t.Errorf("kdf.ErrMismatch: %v, want ErrRejected", err)
	}
	errTOTP := errors.New("wrong code")
	cred := (&countingCredential{verr: errTOTP}).cred()
	cred.Wrong = func(err error) bool { return errors.Is(err, errTOTP) }
	if err := l.Check(ctx, "alice", other, cred); !errors.Is(err, ratelimit.ErrRejected) {
		t.Errorf("Wrong(err): %v, want ErrRejected", err)
	}
	cc = &countingCredential{}
	if err := l.Check(ctx, "alice", other, cc.cred()); err != nil || cc.verify != 1 || cc.dummy != 0 {
		t.Errorf("right password from another address: %v, Verify %d, Dummy %d", err, cc.verify, cc.dummy)
	}
	// Misuse is refused before anything is counted.
	if err := l.Check(ctx, "alice", other, ratelimit.Credential{Verify: cc.cred().Verify}); !errors.Is(err, ratelimit.ErrInvalidInput) {
		t.Errorf("Check without Dummy: %v", err)
	}
}

// Issue 10, item 6: a system error of Dummy on a locked account answers
// as the same error of Verify would on an admitted one.
func TestCheckLockedBusyAnswersLikeBusy(t *testing.T) {
	c := newClock()
	l := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{MaxFailures: 1}, c)
	ctx := t.Context()
	busy := ratelimit.Credential{
		Verify: func(context.Context) error { return kdf.ErrBusy },
		Dummy:  func(context.Context) error { return kdf.ErrBusy },
	}
	admittedErr := l.Check(ctx, "alice", ratelimit.Source{}, busy)
	l.Check(ctx, "alice", ratelimit.Source{}, (&countingCredential{verr: kdf.ErrMismatch}).cred()) // locks
	lockedErr := l.Check(ctx, "alice", ratelimit.Source{}, busy)
	if !errors.Is(admittedErr, kdf.ErrBusy) || !errors.Is(lockedErr, kdf.ErrBusy) || errors.Is(admittedErr, ratelimit.ErrRejected) ||
		errors.Is(lockedErr, ratelimit.ErrRejected) || admittedErr.Error() != lockedErr.Error() || !errors.Is(lockedErr, ratelimit.ErrLocked) {
		t.Errorf("busy when admitted: %v; busy when locked: %v; want the same kdf.ErrBusy (and ErrLocked for the logs)", admittedErr, lockedErr)
	}
}

// Issue 10, item 7: attempts whose check was refused for capacity, or
// whose client went away, are given back and logged; 50 of them lock
// nothing, and the owner's right password then gets in.
func TestCheckAbandonsUncheckedAttempts(t *testing.T) {
	for _, b := range rateBackends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)(t)
			c := newClock()
			logger, logs := captureLogs()
			l, err := ratelimit.NewLockout(st, ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{MaxFailures: 3, AccountMaxFailures: 5}, Logger: logger, Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			src := ratelimit.Source{IP: netip.MustParseAddr("192.0.2.1")}
			for i := range 50 {
				var cred ratelimit.Credential
				ctx := t.Context()
				if i%2 == 0 {
					cred = (&countingCredential{verr: fmt.Errorf("gate: %w", kdf.ErrBusy)}).cred()
				} else { // the client hangs up while Verify runs
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					cred = ratelimit.Credential{
						Verify: func(ctx context.Context) error { cancel(); return ctx.Err() },
						Dummy:  func(context.Context) error { return kdf.ErrMismatch },
					}
				}
				err := l.Check(ctx, "alice", src, cred)
				if err == nil || errors.Is(err, ratelimit.ErrRejected) {
					t.Fatalf("unchecked attempt %d: %v, want the check's error", i+1, err)
				}
			}
			if n := len(logs.Named("authn_attempt_abandoned")); n != 50 {
				t.Errorf("%d authn_attempt_abandoned events, want 50", n)
			}
			reasons := map[any]int{}
			for _, e := range logs.Named("authn_attempt_abandoned") {
				reasons[e["reason"]]++
			}
			if reasons["kdf_busy"] != 25 || reasons["canceled"] != 25 {
				t.Errorf("abandon reasons %v, want 25 kdf_busy and 25 canceled", reasons)
			}
			if n := len(logs.Named("authn_login_fail")) + len(logs.Named("authn_login_lock")); n != 0 {
				t.Errorf("%d failures or locks logged for unchecked attempts", n)
			}
			cc := &countingCredential{}
			if err := l.Check(t.Context(), "alice", src, cc.cred()); err != nil || cc.verify != 1 {
				t.Fatalf("the right password after 50 unchecked attempts: %v", err)
			}
		})
	}
}

// Issue 10, item 7: with a forced interleaving, three attempts in flight
// lock the account (the third counts as the third failure), then all
// three turn out unchecked (kdf.ErrBusy): the lock is logged when it
// happens, and undone when its attempts are given back.
func TestAbandonUndoesTheLockItsAttemptsCaused(t *testing.T) {
	c := newClock()
	logger, logs := captureLogs()
	l, err := ratelimit.NewLockout(memstore.New(), ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{MaxFailures: 3}, Logger: logger, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var atts []*ratelimit.Attempt
	for range 3 {
		att, err := l.Begin(ctx, "alice", ratelimit.Source{})
		if err != nil {
			t.Fatal(err)
		}
		atts = append(atts, att)
	}
	// Every lock is logged, whichever path ends the attempt: here none
	// has ended yet.
	if n := len(logs.Named("authn_login_lock")); n != 1 {
		t.Fatalf("%d authn_login_lock events after the locking Begin, want 1", n)
	}
	if _, err := l.Begin(ctx, "alice", ratelimit.Source{}); !errors.Is(err, ratelimit.ErrLocked) {
		t.Fatalf("a fourth attempt in flight: %v, want ErrLocked", err)
	}
	for _, att := range slices.Backward(atts) {
		if err := att.Abandon(ctx, kdf.ErrBusy); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(logs.Named("authn_login_lock_undone")); n != 1 {
		t.Errorf("%d authn_login_lock_undone events, want 1", n)
	}
	for i := range 2 {
		if att, err := l.Begin(ctx, "alice", ratelimit.Source{}); err != nil {
			t.Fatalf("attempt %d after the abandoned ones: %v, want admitted", i+1, err)
		} else {
			att.Failed(ctx)
		}
	}
	if _, err := l.Begin(ctx, "alice", ratelimit.Source{}); err != nil {
		t.Fatalf("the third counted attempt: %v, want admitted (it locks)", err)
	}
}

// Issue 10, item 14: an account name is logged only as its keyed hash, so
// a password typed into the name field never reaches the logs, on any
// path: failures, locks, locked attempts, abandoned ones, limiter
// refusals.
func TestPasswordAsAccountNameNeverLogged(t *testing.T) {
	const password = "Tr0ub4dor&3-typed-in-the-name-field"
	c := newClock()
	logger, logs := captureLogs()
	store := memstore.New()
	key := make([]byte, ratelimit.LogKeyLen)
	key[0] = 7
	l, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{MaxFailures: 2}, Logger: logger, LogKey: key, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	perAccount, err := ratelimit.New(store, ratelimit.Rule{Name: "acct", Limit: 1, Period: time.Minute}, ratelimit.Options{Logger: logger, LogKey: key, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	src := ratelimit.Source{IP: netip.MustParseAddr("192.0.2.1")}
	l.Check(ctx, password, src, (&countingCredential{verr: kdf.ErrMismatch}).cred())
	l.Check(ctx, password, src, (&countingCredential{verr: kdf.ErrBusy}).cred())
	l.Check(ctx, password, src, (&countingCredential{verr: kdf.ErrMismatch}).cred()) // locks
	l.Check(ctx, password, src, (&countingCredential{verr: kdf.ErrMismatch}).cred()) // locked
	l.Check(ctx, password, src, (&countingCredential{verr: errors.New("db down")}).cred())
	perAccount.Allow(ctx, password)
	perAccount.Allow(ctx, password) // refused
	out := logs.String()
	for _, part := range []string{password, "Tr0ub4dor", "typed-in"} {
		if strings.Contains(out, part) {
			t.Fatalf("the password is in the log:\n%s", out)
		}
	}
	want, err := ratelimit.LogHash(key, password)
	if err != nil {
		t.Fatal(err)
	}
	if want != l.LogHash(password) || want != perAccount.LogHash(password) || len(want) != 16 {
		t.Fatalf("LogHash %q, Lockout.LogHash %q, Limiter.LogHash %q", want, l.LogHash(password), perAccount.LogHash(password))
	}
	for _, name := range []string{"authn_login_fail", "authn_login_lock", "authn_login_locked", "authn_attempt_abandoned"} {
		ev := logs.Named(name)
		if len(ev) == 0 || ev[0]["user_hash"] != want {
			t.Errorf("%s: %v, want user_hash %s", name, ev, want)
		}
	}
	if ev := logs.Named("excess_rate_limit_exceeded"); len(ev) != 1 || ev[0]["key_hash"] != want {
		t.Errorf("excess_rate_limit_exceeded: %v", ev)
	}
	// The operator's recipe: HMAC-SHA256(key, label ‖ name), first 8 bytes.
	if got, _ := ratelimit.LogHash(key, "alice"); got == want || got == "" {
		t.Errorf("LogHash(alice) = %q", got)
	}
	if _, err := ratelimit.LogHash(key[:31], "alice"); !errors.Is(err, ratelimit.ErrInvalidInput) {
		t.Errorf("LogHash with a short key: %v", err)
	}
}

// simResult is the outcome of a lockout simulation.
type simResult struct {
	ownerTries, ownerIn int
	// maxAttackerGuesses is the most wrong guesses that reached the
	// check on one account; maxRun the longest run of them without an
	// owner's success between.
	maxAttackerGuesses, maxRun int
}

// simulateLockout runs 30 days of one attacker's guessing against victims
// accounts, 5 attempts per 15 minutes (the LoginPerIP limit of each of
// its addresses, spread round-robin over the accounts), while each
// account's owner logs in with the right password at random times, about
// 116 times in the 30 days, each time from a new device and a new
// address (ownerKnown: from a device they logged in from before).
func simulateLockout(t *testing.T, victims, attackerAddrs int, ownerKnown bool, seed uint64) simResult {
	t.Helper()
	c := newClock()
	store := memstore.New()
	l := newLockout(t, store, ratelimit.LockoutPolicy{}, c)
	perIP := newLimiter(t, store, ratelimit.LoginPerIP(), c)
	devices := newDevices(t, c)
	ctx := t.Context()
	const days = 30
	end := t0.Add(days * 24 * time.Hour)

	type event struct {
		at       time.Time
		account  int
		owner    bool
		attacker int
	}
	var events []event
	rng := rand.New(rand.NewPCG(seed, 1))
	for a := range victims {
		for range 116 {
			events = append(events, event{at: t0.Add(time.Duration(rng.Int64N(int64(end.Sub(t0))))), account: a, owner: true})
		}
	}
	for x := range attackerAddrs {
		n := 0
		for at := t0.Add(time.Duration(x) * time.Second); at.Before(end); at = at.Add(3 * time.Minute) { // 5 per 15 min
			events = append(events, event{at: at, account: n % victims, attacker: x})
			n++
		}
	}
	slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })

	// The owners' known devices: one login each before the simulation.
	known := make([]ratelimit.Source, victims)
	for a := range victims {
		rec := httptest.NewRecorder()
		devices.Remember(rec, fmt.Sprint("victim", a))
		r := httptest.NewRequest("POST", "/login", nil)
		for _, ck := range rec.Result().Cookies() {
			r.AddCookie(ck)
		}
		known[a] = ratelimit.Source{IP: netip.MustParseAddr("192.0.2.200"), Device: devices.Recognize(r, fmt.Sprint("victim", a))}
	}

	var res simResult
	guesses := make([]int, victims)
	run := make([]int, victims)
	ownerAddr := 0
	for _, e := range events {
		c.Set(e.at)
		account := fmt.Sprint("victim", e.account)
		if e.owner {
			res.ownerTries++
			src := known[e.account]
			if !ownerKnown {
				ownerAddr++
				src = ratelimit.Source{IP: netip.AddrFrom4([4]byte{10, byte(ownerAddr >> 16), byte(ownerAddr >> 8), byte(ownerAddr)})}
			}
			cc := &countingCredential{}
			if err := l.Check(ctx, account, src, cc.cred()); err == nil {
				res.ownerIn++
				run[e.account] = 0
			} else if !errors.Is(err, ratelimit.ErrRejected) {
				t.Fatalf("owner: %v", err)
			}
			continue
		}
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(e.attacker)})
		if d, err := perIP.Allow(ctx, ip.String()); err != nil || !d.Allowed {
			t.Fatalf("the attacker's rate is over LoginPerIP: %+v, %v", d, err)
		}
		cc := &countingCredential{verr: kdf.ErrMismatch}
		err := l.Check(ctx, account, ratelimit.Source{IP: ip}, cc.cred())
		if !errors.Is(err, ratelimit.ErrRejected) {
			t.Fatalf("attacker: %v", err)
		}
		if cc.verify == 1 {
			guesses[e.account]++
			run[e.account]++
			res.maxRun = max(res.maxRun, run[e.account])
		}
	}
	res.maxAttackerGuesses = slices.Max(guesses)
	return res
}

// guessBound is the most guesses one source gets on one account in d
// under policy p, attempting without pause: MaxFailures before each lock,
// and each lock (growing) must pass before the next MaxFailures.
func guessBound(p ratelimit.LockoutPolicy, d time.Duration) int {
	n, spent := 1, time.Duration(0)
	for locks := 1; ; locks++ {
		spent += storage.LockDuration(locks, p.LockFor, p.MaxLockFor)
		if spent > d {
			return n * p.MaxFailures
		}
		n++
	}
}

// Issue 10, item 8: the review's 30-day simulation. One attacker address
// at 5 attempts per 15 minutes, against one account and against 40: the
// owners, logging in from a new device and a new address each time, all
// get in (before: 0 of 116, and 55% with 40 victims); the attacker's
// guesses per account stay within the per-source bound (10 per lock, locks
// growing to 24 h: 340 in 30 days), and no run of failures between the
// owner's successes exceeds the account's cap (100, NIST's). The
// distributed variant documents the cost: 20 addresses lock a new
// device out, but the owner's known device still gets in.
func TestLockoutDoSSimulation(t *testing.T) {
	p := ratelimit.DefaultLockoutPolicy()
	bound := guessBound(p, 30*24*time.Hour)
	for _, tc := range []struct {
		name                    string
		victims, addrs          int
		known                   bool
		wantAllIn, checkBounded bool
	}{
		{"one victim, one address, new devices", 1, 1, false, true, true},
		{"40 victims, one address, new devices", 40, 1, false, true, true},
		{"one victim, 20 addresses, known device", 1, 20, true, true, false},
		{"one victim, 20 addresses, new devices", 1, 20, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := simulateLockout(t, tc.victims, tc.addrs, tc.known, 10)
			t.Logf("owners got in %d of %d tries (%.1f%%); the attacker's guesses on one account: at most %d (bound %d), longest run between successes %d (cap %d)",
				res.ownerIn, res.ownerTries, 100*float64(res.ownerIn)/float64(res.ownerTries), res.maxAttackerGuesses, bound, res.maxRun, p.AccountMaxFailures)
			if tc.wantAllIn && res.ownerIn != res.ownerTries {
				t.Errorf("owners got in %d of %d tries, want all", res.ownerIn, res.ownerTries)
			}
			if tc.checkBounded && res.maxAttackerGuesses > bound {
				t.Errorf("the attacker got %d guesses on one account, over the bound %d", res.maxAttackerGuesses, bound)
			}
			if tc.checkBounded && res.maxRun > p.AccountMaxFailures {
				t.Errorf("a run of %d failures between successes, over AccountMaxFailures %d", res.maxRun, p.AccountMaxFailures)
			}
		})
	}
}

// A stored credential kdf cannot use (parameters over its Limits, a
// malformed or unsupported hash, an unknown pepper) is answered and counted
// like a wrong password: the account locks like any other, so counting
// attempts does not find the accounts an operator mis-set (review of
// issue 10), and the application's answer is the wrong-password one.
func TestCheckCountsUnusableStoredCredential(t *testing.T) {
	for _, cause := range []error{kdf.ErrParamsOutOfBounds, kdf.ErrMalformedHash, kdf.ErrUnsupportedAlgorithm, kdf.ErrUnknownPepper} {
		t.Run(cause.Error(), func(t *testing.T) {
			c := newClock()
			l, err := ratelimit.NewLockout(memstore.New(), ratelimit.LockoutOptions{Policy: ratelimit.LockoutPolicy{MaxFailures: 3}, Logger: slog.New(slog.DiscardHandler), Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			src := ratelimit.Source{IP: netip.MustParseAddr("192.0.2.7")}
			for i := range 3 {
				err := l.Check(t.Context(), "carol", src, (&countingCredential{verr: fmt.Errorf("stored: %w", cause)}).cred())
				if !errors.Is(err, ratelimit.ErrRejected) || !errors.Is(err, cause) {
					t.Fatalf("attempt %d: %v, want ErrRejected wrapping %v", i+1, err, cause)
				}
			}
			cc := &countingCredential{}
			err = l.Check(t.Context(), "carol", src, cc.cred())
			if !errors.Is(err, ratelimit.ErrLocked) || cc.verify != 0 || cc.dummy != 1 {
				t.Fatalf("after 3 unusable attempts: %v (verify %d, dummy %d), want locked with the dummy work", err, cc.verify, cc.dummy)
			}
		})
	}
}
