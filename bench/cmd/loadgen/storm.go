package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyhold/keyhold/kdf"
)

// stormConfig is the login storm's: a flood of logins on a few attacked
// accounts while legitimate users log in to their own.
type stormConfig struct {
	Duration   time.Duration // of the flood
	Flood      int           // concurrent flood clients (closed loop)
	FloodAddrs int           // addresses the flood clients start from, shared in turn (at most Flood)
	Legit      int           // legitimate users, each logging in again and again
	Attacked   int           // accounts the flood is spread over
	RightEvery int           // every RightEvery-th flood attempt carries the right password (0: none)
	LegitPause time.Duration // a legitimate user's pause after a login before the next
	RetryPause time.Duration // a legitimate user's pause before trying again after a refusal
	Grace      time.Duration // after the flood, a legitimate user not yet logged in keeps trying this long
	Baseline   time.Duration // before the flood, the legitimate users log in alone this long (0: not)
	OtherKiB   uint64        // the margin's allowance for the process's memory outside the KDF (see marginKiB)
	Log        io.Writer
}

// outcome classifies an answer to POST /login.
type outcome int

const (
	loggedIn  outcome = iota // 303 to /notes: logged in, vault unlocked
	lockedIn                 // 303 to /unlock: logged in, the vault's unlock refused (the gate was full)
	wrong                    // 401: wrong password, unknown user or locked account (one answer)
	limited                  // 429: the per-address login limit
	busy                     // 503 with the app's "busy" page: the KDF gate's queue was full
	server                   // any other 5xx
	other                    // any other answer
	timedOut                 // no answer within the client's time-out (a minute)
	transport                // no answer: the connection refused, reset or closed
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"logged in (303 /notes)", "logged in, notes locked (303 /unlock)", "refused as wrong (401)",
	"rate-limited (429)", "queue full (503)", "other 5xx", "other answer", "no answer within a minute", "transport error"}

func classify(a answer, err error) outcome {
	var timeout interface{ Timeout() bool }
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &timeout) && timeout.Timeout()):
		return timedOut
	case err != nil:
		return transport
	case a.status == http.StatusSeeOther && a.location == "/notes":
		return loggedIn
	case a.status == http.StatusSeeOther && a.location == "/unlock":
		return lockedIn
	case a.status == http.StatusUnauthorized:
		return wrong
	case a.status == http.StatusTooManyRequests:
		return limited
	case a.busy:
		return busy
	case a.status >= 500:
		return server
	}
	return other
}

type counts [nOutcomes]atomic.Int64

func (c *counts) total() int64 {
	var n int64
	for i := range c {
		n += c[i].Load()
	}
	return n
}

// stormResult is what one storm measured.
type stormResult struct {
	Storage string
	Gate    kdf.GateConfig // the app's gate (the zero GateConfig, resolved on this host)
	// Memory, KiB.
	BudgetKiB, MarginKiB   uint64
	StartRSS, BeforeRSS    uint64 // at start (no request yet), and after the users were set up
	PeakHWM, MaxSampledRSS uint64 // VmHWM since the storm began; the most VmRSS sampled every 50 ms
	PeakSinceStart         bool   // VmHWM could not be reset: it covers the setup too
	Flood                  counts
	FloodRotations         atomic.Int64 // flood clients moved to a new address after a 429
	Accounts               []string
	PerAccount             []counts
	FloodBusy              samples       // how long the flood's refusals by the full queue (503) took
	Legit                  *legitStats   // the legitimate users during the flood (and the grace after it)
	Baseline               *legitStats   // the same users alone, before the flood (nil: not measured)
	Elapsed                time.Duration // of the flood
	Problems               []string      // panics and errors in the app's log
	ProblemCount           int
}

// marginKiB is the allowance over the gate's budget for the peak RSS:
// one vault KDF run (kdf.SensitiveParams, 64 MiB), by which the kdf
// package documents that the resident size can exceed the budget while
// the runtime returns freed pages, plus other for everything the budget
// does not count (the Go runtime, the database pools and caches,
// templates, the connections' goroutines and buffers).
func marginKiB(other uint64) uint64 {
	return uint64(kdf.SensitiveParams().MemoryKiB) + other
}

// defaultFloodAddrs is how many addresses flood clients start from by
// default: one per twice as many clients as an address may have logins in
// progress at the web app's admission gate (as many as the KDF gate runs
// and queues; the app's zero kdf.GateConfig, resolved the same on this
// host), so that each address meets that bound.
func defaultFloodAddrs(flood int) (int, error) {
	gate, err := kdf.NewGate(kdf.GateConfig{})
	if err != nil {
		return 0, err
	}
	c := gate.Config()
	return max(flood/(2*(c.MaxConcurrent+c.MaxWaiting)), 1), nil
}

// runStorm starts the web app on st, creates the attacked accounts and
// the legitimate users through the sign-up form, and runs the storm:
// cfg.Flood clients post logins to the attacked accounts in a closed loop
// (wrong passwords, every cfg.RightEvery-th the right one), starting from
// cfg.FloodAddrs addresses shared in turn (an attacker with fewer
// addresses than connections), each client moving to a fresh address of
// its own when the app answers 429, while cfg.Legit users log in to their
// own accounts again and again, each login from an address of its own
// (the per-address limit of 5 logins per 15 minutes would otherwise refuse
// a user logging in this often; that limit is tested elsewhere).
func runStorm(ctx context.Context, bins binaries, dir string, st storage, cfg stormConfig) (*stormResult, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, "loadgen: "+format+"\n", args...) }
	gate, err := kdf.NewGate(kdf.GateConfig{}) // the web app's (main sets no KDFGate): resolved the same on this host
	if err != nil {
		return nil, err
	}
	res := &stormResult{Storage: st.name, Gate: gate.Config(), MarginKiB: marginKiB(cfg.OtherKiB)}
	res.BudgetKiB = res.Gate.MemoryBudgetKiB
	app, err := startWebapp(ctx, bins.webapp, dir, st)
	if err != nil {
		return nil, err
	}
	defer app.stop()
	base := "http://" + app.addr
	if res.StartRSS, err = app.status("VmRSS"); err != nil {
		return nil, err
	}
	logf("storm on %s: web app at %s; creating %d attacked accounts and %d legitimate users", st.name, base, cfg.Attacked, cfg.Legit)

	setupAddrs := &addrBlock{first: 3}
	attacked := make([]user, cfg.Attacked)
	legit := make([]user, cfg.Legit)
	legitClients := make([]*http.Client, cfg.Legit)
	setupStart := time.Now()
	if err := parallel(ctx, cfg.Attacked+cfg.Legit, 2, func(i int) error {
		t := newTransport(setupAddrs.addr(), 1)
		defer t.CloseIdleConnections()
		c := newClient(t, time.Minute)
		u := newUser("storm-")
		if err := signUp(ctx, c, base, &u, 0); err != nil {
			return err
		}
		if err := logout(ctx, c, base); err != nil {
			return err
		}
		if i < cfg.Attacked {
			attacked[i] = u
		} else {
			legit[i-cfg.Attacked], legitClients[i-cfg.Attacked] = u, c
		}
		return nil
	}); err != nil {
		return nil, err
	}
	logf("users created in %s", time.Since(setupStart).Round(time.Millisecond))
	for _, u := range attacked {
		res.Accounts = append(res.Accounts, u.name)
	}
	res.PerAccount = make([]counts, cfg.Attacked)
	legitAddrs := &addrBlock{first: 4}
	if cfg.Baseline > 0 {
		logf("baseline: %d legitimate users alone, %s", cfg.Legit, cfg.Baseline)
		res.Baseline = newLegitStats(cfg.Legit)
		var wg sync.WaitGroup
		begin := make(chan struct{})
		end := time.Now().Add(cfg.Baseline)
		runLegit(ctx, &wg, begin, &end, base, legit, legitClients, legitAddrs, res.Baseline, cfg, 0)
		close(begin)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logf("baseline: %s", res.Baseline.summary())
	}
	res.Legit = newLegitStats(cfg.Legit)

	if err := app.resetPeak(); err != nil {
		res.PeakSinceStart = true
		logf("cannot reset VmHWM (%v): the peak covers the setup too", err)
	}
	if res.BeforeRSS, err = app.status("VmRSS"); err != nil {
		return nil, err
	}
	// The resident size, sampled, as a check of VmHWM.
	sampling, stopSampling := context.WithCancel(ctx)
	var sampled sync.WaitGroup
	sampled.Go(func() {
		for sampling.Err() == nil {
			if v, err := app.status("VmRSS"); err == nil {
				res.MaxSampledRSS = max(res.MaxSampledRSS, v)
			}
			select {
			case <-sampling.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})

	logf("storm: %d flood clients on %d accounts, %d legitimate users, %s", cfg.Flood, cfg.Attacked, cfg.Legit, cfg.Duration)
	floodAddrs := &addrBlock{first: 16}
	floodStart := make([]netip.Addr, min(max(cfg.FloodAddrs, 1), cfg.Flood))
	for i := range floodStart {
		floodStart[i] = floodAddrs.addr()
	}
	begin := make(chan struct{})
	var end time.Time
	var attempts atomic.Int64
	var wg sync.WaitGroup
	for i := range cfg.Flood {
		acct := i % cfg.Attacked
		u := attacked[acct]
		wrongPassword := rand.Text()[:12] + " " + rand.Text()[:12]
		t := newTransport(floodStart[i%len(floodStart)], 1)
		c := &http.Client{Transport: t, Timeout: time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		wg.Go(func() {
			<-begin
			for time.Now().Before(end) && ctx.Err() == nil {
				pw := wrongPassword
				if k := attempts.Add(1); cfg.RightEvery > 0 && k%int64(cfg.RightEvery) == 0 {
					pw = u.password
				}
				a, err := do(ctx, c, base, "/login", url.Values{"username": {u.name}, "password": {pw}})
				o := classify(a, err)
				res.Flood[o].Add(1)
				res.PerAccount[acct][o].Add(1)
				if o == busy {
					res.FloodBusy.add(a.took)
				}
				// The per-address login limit's 429: this address is spent,
				// the attacker moves to another. A 429 for the address's
				// places at the admission gate (too many logins in progress
				// at once) is not: the client tries again from it.
				if o == limited && !bytes.Contains(a.body, []byte("at once")) {
					t.CloseIdleConnections()
					t = newTransport(floodAddrs.addr(), 1)
					c.Transport = t
					res.FloodRotations.Add(1)
				}
			}
			t.CloseIdleConnections()
		})
	}
	runLegit(ctx, &wg, begin, &end, base, legit, legitClients, legitAddrs, res.Legit, cfg, cfg.Grace)
	start := time.Now()
	end = start.Add(cfg.Duration)
	close(begin)
	wg.Wait()
	logf("flood over; the last requests answered %s after it began", time.Since(start).Round(time.Millisecond))
	res.Elapsed = min(time.Since(start), cfg.Duration)
	stopSampling()
	sampled.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if res.PeakHWM, err = app.status("VmHWM"); err != nil {
		return nil, err
	}
	app.stop()
	res.Problems, res.ProblemCount = logProblems(app.logPath)

	logf("peak RSS %.1f MiB (sampled max %.1f), gate budget %.0f MiB + margin %.0f MiB; RSS at start %.1f MiB, before the storm %.1f MiB",
		mib(res.PeakHWM), mib(res.MaxSampledRSS), mib(res.BudgetKiB), mib(res.MarginKiB), mib(res.StartRSS), mib(res.BeforeRSS))
	logf("flood: %d requests: %s; %d address changes", res.Flood.total(), summary(&res.Flood), res.FloodRotations.Load())
	for i := range res.PerAccount {
		logf("  attacked account %d: %s", i+1, summary(&res.PerAccount[i]))
	}
	logf("flood refusals (503) answered in p50 %.0f ms, p99 %.0f ms", ms(res.FloodBusy.percentile(0.5)), ms(res.FloodBusy.percentile(0.99)))
	logf("legitimate, during the flood: %s", res.Legit.summary())
	if res.ProblemCount > 0 {
		logf("the web app logged %d errors or panics:\n%s", res.ProblemCount, strings.Join(res.Problems, "\n"))
	}
	return res, nil
}

// legitStats is what the legitimate users got in one phase.
type legitStats struct {
	Answers       counts
	During, After []atomic.Int64 // per user: logins during the phase, and during the grace after it
	Request       samples        // the successful login requests
	Time          samples        // from a login's first try to its success, retries included
}

func newLegitStats(users int) *legitStats {
	return &legitStats{During: make([]atomic.Int64, users), After: make([]atomic.Int64, users)}
}

func (l *legitStats) usersDuring() int {
	n := 0
	for i := range l.During {
		if l.During[i].Load() > 0 {
			n++
		}
	}
	return n
}

func (l *legitStats) usersEver() int {
	n := 0
	for i := range l.During {
		if l.During[i].Load()+l.After[i].Load() > 0 {
			n++
		}
	}
	return n
}

func (l *legitStats) summary() string {
	return fmt.Sprintf("%d answers: %s; login p50 %.0f ms, p99 %.0f ms; time to log in p50 %.0f ms, p99 %.0f ms; %d of %d users logged in (%d counting the grace)",
		l.Answers.total(), summary(&l.Answers), ms(l.Request.percentile(0.5)), ms(l.Request.percentile(0.99)),
		ms(l.Time.percentile(0.5)), ms(l.Time.percentile(0.99)), l.usersDuring(), len(l.During), l.usersEver())
}

// runLegit starts, in wg, one goroutine per legitimate user that waits
// for begin and then logs in again and again until *end (read after
// begin), each login from a fresh address of addrs, pausing
// cfg.LegitPause after a login and cfg.RetryPause after a refusal; after
// *end, a user not yet logged in keeps trying until grace has passed too.
func runLegit(ctx context.Context, wg *sync.WaitGroup, begin <-chan struct{}, end *time.Time, base string, users []user, clients []*http.Client,
	addrs *addrBlock, st *legitStats, cfg stormConfig, grace time.Duration) {
	for i := range users {
		wg.Go(func() {
			<-begin
			c := clients[i]
			going := func() bool {
				now := time.Now()
				return ctx.Err() == nil && (now.Before(*end) || st.During[i].Load() == 0 && now.Before(end.Add(grace)))
			}
			for going() {
				first := time.Now()
				for going() {
					t := newTransport(addrs.addr(), 1)
					c.Transport = t
					sent := time.Now()
					a, err := do(ctx, c, base, "/login", url.Values{"username": {users[i].name}, "password": {users[i].password}})
					o := classify(a, err)
					st.Answers[o].Add(1)
					if o == loggedIn || o == lockedIn {
						_ = logout(ctx, c, base)
					}
					t.CloseIdleConnections()
					if o == loggedIn {
						st.Request.add(a.took)
						st.Time.add(time.Since(first))
						if sent.Before(*end) {
							st.During[i].Add(1)
						} else {
							st.After[i].Add(1)
						}
						break
					}
					sleep(ctx, cfg.RetryPause)
				}
				sleep(ctx, cfg.LegitPause)
			}
		})
	}
}

func summary(c *counts) string {
	var parts []string
	for i := range c {
		if n := c[i].Load(); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", outcomeNames[i], n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// checkStorm returns what in res breaks the storm's claims: the peak RSS
// within the gate's budget plus the margin, every legitimate user logged
// in during the flood, the flood met both the per-address limit (429) and
// the full queue (503), no other 5xx and no transport error, nothing
// unexpected in the app's log.
func checkStorm(res *stormResult, cfg stormConfig) error {
	var errs []error
	if limit := res.BudgetKiB + res.MarginKiB; res.PeakHWM > limit {
		errs = append(errs, fmt.Errorf("peak RSS %.1f MiB over the gate's budget %.0f MiB + margin %.0f MiB", mib(res.PeakHWM), mib(res.BudgetKiB), mib(res.MarginKiB)))
	}
	if n := res.Legit.usersEver(); n < cfg.Legit {
		errs = append(errs, fmt.Errorf("%d of %d legitimate users logged in during the flood or the %s after it", n, cfg.Legit, cfg.Grace))
	}
	// The flood meets the login admission gate: 429 when its address
	// holds its share of the places (the default -flood-addrs puts twice
	// that many clients on each address), 503 when its accounts' places or
	// the queue are full; behind the gate, the per-address limit (429).
	if res.Flood[busy].Load() == 0 {
		errs = append(errs, errors.New("no flood request was refused by a full queue (503: the login admission gate or the KDF gate)"))
	}
	if res.Flood[limited].Load() == 0 {
		errs = append(errs, errors.New("no flood request was refused for its address (429: the admission gate's places per address or the per-address limit)"))
	}
	for _, c := range []*counts{&res.Flood, &res.Legit.Answers} {
		if n := c[server].Load(); n > 0 {
			errs = append(errs, fmt.Errorf("%d answers were 5xx other than the busy page", n))
		}
		if n := c[timedOut].Load(); n > 0 {
			errs = append(errs, fmt.Errorf("%d requests got no answer within a minute", n))
		}
		if n := c[transport].Load(); n > 0 {
			errs = append(errs, fmt.Errorf("%d requests got no answer (connection refused, reset or closed)", n))
		}
		if n := c[other].Load(); n > 0 {
			errs = append(errs, fmt.Errorf("%d answers were unexpected", n))
		}
	}
	for _, o := range []outcome{wrong, limited} {
		if n := res.Legit.Answers[o].Load(); n > 0 {
			errs = append(errs, fmt.Errorf("%d legitimate logins were %s", n, outcomeNames[o]))
		}
	}
	if res.ProblemCount > 0 {
		errs = append(errs, fmt.Errorf("the web app logged %d errors or panics: %s", res.ProblemCount, strings.Join(res.Problems, "\n")))
	}
	return errors.Join(errs...)
}

// stormRows are the storm's result rows: facts.
func stormRows(r *rows, res *stormResult, cfg stormConfig, note string) {
	note = fmt.Sprintf("%s; %s, %d flood clients from %d addresses (a fresh one after each 429 of the per-address limit) on %d accounts (every %dth attempt with the right password), %d legitimate users (each login from an address of its own), flood %s; gate: %d runs at once, queue %d, %d per key",
		note, res.Storage, cfg.Flood, min(max(cfg.FloodAddrs, 1), cfg.Flood), cfg.Attacked, cfg.RightEvery, cfg.Legit, cfg.Duration, res.Gate.MaxConcurrent, res.Gate.MaxWaiting, res.Gate.MaxWaitingPerKey)
	f := func(what string, v float64, unit string) { r.fact("storm", what, v, unit, note) }
	peak := "peak RSS of the web app during the storm (VmHWM, reset before it)"
	if res.PeakSinceStart {
		peak = "peak RSS of the web app since its start (VmHWM, setup included)"
	}
	f(peak, mib(res.PeakHWM), "MiB")
	f("the KDF gate's memory budget (the app's zero kdf.GateConfig on this host)", mib(res.BudgetKiB), "MiB")
	f(fmt.Sprintf("budget + margin (one 64 MiB vault KDF run, which RSS may exceed the budget by while freed pages return, + %.0f MiB for the rest of the process)", mib(cfg.OtherKiB)), mib(res.BudgetKiB+res.MarginKiB), "MiB")
	f("peak RSS under the budget + margin", boolf(res.PeakHWM <= res.BudgetKiB+res.MarginKiB), "yes=1")
	f("RSS of the web app at start, before any request", mib(res.StartRSS), "MiB")
	f("RSS of the web app before the storm, after setting up the users", mib(res.BeforeRSS), "MiB")
	f("largest RSS sampled every 50 ms during the storm", mib(res.MaxSampledRSS), "MiB")

	l := res.Legit
	f("legitimate logins: p50 of the successful login request", ms(l.Request.percentile(0.5)), "ms")
	f("legitimate logins: p99 of the successful login request", ms(l.Request.percentile(0.99)), "ms")
	f("legitimate logins: p50 from the first try to success, retries included", ms(l.Time.percentile(0.5)), "ms")
	f("legitimate logins: p99 from the first try to success, retries included", ms(l.Time.percentile(0.99)), "ms")
	if b := res.Baseline; b != nil {
		for _, q := range []struct {
			name string
			q    float64
			s    func(*legitStats) *samples
		}{
			{"p50 of the successful login request", 0.5, func(l *legitStats) *samples { return &l.Request }},
			{"p99 of the successful login request", 0.99, func(l *legitStats) *samples { return &l.Request }},
			{"p50 from the first try to success, retries included", 0.5, func(l *legitStats) *samples { return &l.Time }},
			{"p99 from the first try to success, retries included", 0.99, func(l *legitStats) *samples { return &l.Time }},
		} {
			r.ratio(ratioRow{Table: "storm", What: "legitimate logins: " + q.name, OursLabel: "the legitimate users during the flood",
				Ours: ms(q.s(l).percentile(q.q)), ReferenceLabel: fmt.Sprintf("the same users alone, for %s before the flood", cfg.Baseline),
				Reference: ms(q.s(b).percentile(q.q)), Unit: "ms", LowerIsBetter: true, Note: note})
		}
		r.ratio(ratioRow{Table: "storm", What: "legitimate logins that succeeded, per second", OursLabel: "the legitimate users during the flood",
			Ours: round3(float64(sum(l.During)) / cfg.Duration.Seconds()), ReferenceLabel: fmt.Sprintf("the same users alone, for %s before the flood", cfg.Baseline),
			Reference: round3(float64(sum(b.During)) / cfg.Baseline.Seconds()), Unit: "logins/s", LowerIsBetter: false, Note: note})
	}
	f("legitimate logins that succeeded during the flood", float64(sum(l.During)), "logins")
	f(fmt.Sprintf("legitimate users (of %d) who logged in during the flood", cfg.Legit), float64(l.usersDuring()), "users")
	f(fmt.Sprintf("legitimate users (of %d) who logged in during the flood or the %s after it", cfg.Legit, cfg.Grace), float64(l.usersEver()), "users")
	minUser, maxUser := int64(-1), int64(0)
	for i := range l.During {
		n := l.During[i].Load()
		if minUser < 0 || n < minUser {
			minUser = n
		}
		maxUser = max(maxUser, n)
	}
	f("legitimate logins during the flood: fewest of one user", float64(max(minUser, 0)), "logins")
	f("legitimate logins during the flood: most of one user", float64(maxUser), "logins")
	for o := range nOutcomes {
		if o == loggedIn {
			continue
		}
		f("legitimate login answers: "+outcomeNames[o], float64(l.Answers[o].Load()), "requests")
	}

	f("flood login requests", float64(res.Flood.total()), "requests")
	f("flood refusals by the full queue (503): p50 time to the answer", ms(res.FloodBusy.percentile(0.5)), "ms")
	f("flood refusals by the full queue (503): p99 time to the answer", ms(res.FloodBusy.percentile(0.99)), "ms")
	f("flood login requests per second", round3(float64(res.Flood.total())/res.Elapsed.Seconds()), "req/s")
	for o := range nOutcomes {
		f("flood answers: "+outcomeNames[o], float64(res.Flood[o].Load()), "requests")
	}
	minChecked, maxChecked := int64(-1), int64(0)
	for i := range res.PerAccount {
		c := &res.PerAccount[i]
		checked := c[wrong].Load() + c[loggedIn].Load() + c[lockedIn].Load()
		who := fmt.Sprintf("attacked account %d of %d", i+1, len(res.PerAccount))
		f(who+": flood requests checked (401 or 303: through the gate)", float64(checked), "requests")
		f(who+": flood logins with the right password that succeeded", float64(c[loggedIn].Load()+c[lockedIn].Load()), "requests")
		f(who+": refused by the full queue (503)", float64(c[busy].Load()), "requests")
		f(who+": rate-limited (429)", float64(c[limited].Load()), "requests")
		if minChecked < 0 || checked < minChecked {
			minChecked = checked
		}
		maxChecked = max(maxChecked, checked)
	}
	if maxChecked > 0 {
		f("attacked accounts: fewest checked requests / most (1 = even shares)", round3(float64(minChecked)/float64(maxChecked)), "ratio")
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sum(c []atomic.Int64) int64 {
	var n int64
	for i := range c {
		n += c[i].Load()
	}
	return n
}
