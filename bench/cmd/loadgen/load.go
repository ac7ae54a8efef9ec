package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig is the load test's: closed-loop reads of the notes page.
type loadConfig struct {
	Duration    time.Duration // per target (the app, and each reference)
	Slice       time.Duration // the targets take turns in slices of this long
	Warmup      time.Duration // per target, before the slices, not counted
	Concurrency int           // clients, each a user of its own with requests in turn
	Notes       int           // notes per user
	StaticRef   bool          // also measure the app's static file route
	Log         io.Writer
}

// target is one side of the comparison.
type target struct {
	name  string
	label string
	req   func(ctx context.Context, worker int) error
	lat   samples
	n     atomic.Int64 // requests answered as expected
	errs  atomic.Int64
	first atomic.Pointer[string] // the first error
	spent time.Duration          // time measured, summed over slices
}

func (t *target) rps() float64 {
	if t.spent <= 0 {
		return 0
	}
	return float64(t.n.Load()) / t.spent.Seconds()
}

// loadResult is what one load run measured.
type loadResult struct {
	Storage string
	Targets []*target // the app first, then the references
	Body    int       // bytes of the notes page
}

// runLoad starts the web app on st, creates cfg.Concurrency users through
// the forms (each signs up, adds cfg.Notes notes, logs out, logs in, which
// unlocks the vault, and checks its notes page), starts the bare server
// serving a copy of one of those pages, and measures closed-loop GETs of
// the notes page against the references, the targets taking turns in
// slices so that a drifting machine load hits all alike.
func runLoad(ctx context.Context, bins binaries, dir string, st storage, cfg loadConfig) (*loadResult, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, "loadgen: "+format+"\n", args...) }
	app, err := startWebapp(ctx, bins.webapp, dir, st)
	if err != nil {
		return nil, err
	}
	defer app.stop()
	base := "http://" + app.addr
	logf("load on %s: web app at %s; creating %d users with %d notes each", st.name, base, cfg.Concurrency, cfg.Notes)

	// Users, two at a time (each sign-up and login runs the KDF; the app
	// runs as many at once as it has CPUs).
	setupAddrs := &addrBlock{first: 3}
	users := make([]user, cfg.Concurrency)
	clients := make([]*http.Client, cfg.Concurrency)
	shared := newTransport(netip.Addr{}, cfg.Concurrency*2)
	defer shared.CloseIdleConnections()
	setupStart := time.Now()
	if err := parallel(ctx, cfg.Concurrency, 2, func(i int) error {
		u := newUser("load-")
		t := newTransport(setupAddrs.addr(), 1)
		defer t.CloseIdleConnections()
		c := newClient(t, time.Minute)
		if err := signUp(ctx, c, base, &u, cfg.Notes); err != nil {
			return err
		}
		if err := logout(ctx, c, base); err != nil {
			return err
		}
		if err := logIn(ctx, c, base, u); err != nil {
			return err
		}
		if _, _, err := checkNotes(ctx, c, base, u); err != nil {
			return err
		}
		// The same session cookie, on the shared transport the
		// measurement uses (connections from 127.0.0.1).
		c.Transport = shared
		users[i], clients[i] = u, c
		return nil
	}); err != nil {
		return nil, err
	}

	logf("users created in %s", time.Since(setupStart).Round(time.Millisecond))
	// The bare server serves the bytes of user 0's notes page.
	resp, body, err := checkNotes(ctx, clients[0], base, users[0])
	if err != nil {
		return nil, err
	}
	var hdr strings.Builder
	for k, vs := range resp.Header {
		if k == "Set-Cookie" || k == "Date" || k == "Content-Length" {
			continue // no cookie from the reference: it would replace the session's in the jar
		}
		for _, v := range vs {
			fmt.Fprintf(&hdr, "%s: %s\n", k, v)
		}
	}
	bodyFile, hdrFile := filepath.Join(dir, "notes.html"), filepath.Join(dir, "notes.headers")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(hdrFile, []byte(hdr.String()), 0o600); err != nil {
		return nil, err
	}
	bare, err := startBare(ctx, bins.bare, dir, bodyFile, hdrFile)
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	bareBase := "http://" + bare.addr
	cookieless := &http.Client{Transport: shared, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	get := func(ctx context.Context, c *http.Client, url string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	ours := &target{name: "webapp", label: fmt.Sprintf("web app GET /notes: session read, vault key unsealed from the session, %d notes opened (AES-GCM), page rendered", cfg.Notes)}
	ours.req = func(ctx context.Context, w int) error {
		status, b, err := get(ctx, clients[w], base+"/notes")
		if err != nil {
			return err
		}
		if status != http.StatusOK || !strings.Contains(string(b), users[w].titles[0]) {
			return fmt.Errorf("GET /notes: %d, %d bytes, without the note's title", status, len(b))
		}
		return nil
	}
	ref := &target{name: "bare", label: fmt.Sprintf("bare net/http handler in its own process (bench/cmd/loadgen/bareserver), the same %d-byte page and headers", len(body))}
	ref.req = func(ctx context.Context, w int) error {
		status, b, err := get(ctx, clients[w], bareBase+"/notes") // the same client: the same cookie is sent
		if err != nil {
			return err
		}
		if status != http.StatusOK || len(b) != len(body) {
			return fmt.Errorf("bare GET: %d, %d bytes", status, len(b))
		}
		return nil
	}
	targets := []*target{ours, ref}
	if cfg.StaticRef {
		static := &target{name: "static", label: "the web app's own static file route, GET /static/style.css without a session cookie (the app's middleware, no session read)"}
		static.req = func(ctx context.Context, w int) error {
			status, _, err := get(ctx, cookieless, base+"/static/style.css")
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("GET /static/style.css: %d", status)
			}
			return nil
		}
		targets = append(targets, static)
	}

	if cfg.Warmup > 0 {
		for _, t := range targets {
			var discard target
			discard.req = t.req
			if err := slice(ctx, &discard, cfg.Concurrency, cfg.Warmup); err != nil {
				return nil, err
			}
		}
	}
	logf("measuring %s per target in %s slices, %d clients, %d targets", cfg.Duration, cfg.Slice, cfg.Concurrency, len(targets))
	for round := 0; targets[0].spent < cfg.Duration; round++ {
		d := min(cfg.Slice, cfg.Duration-targets[0].spent)
		for i := range targets {
			t := targets[(round+i)%len(targets)] // the order rotates: each target goes first in turn
			if err := slice(ctx, t, cfg.Concurrency, d); err != nil {
				return nil, err
			}
		}
	}
	if app.exited() {
		return nil, fmt.Errorf("the web app exited during the run: %s", tail(app.logPath))
	}
	if lines, n := logProblems(app.logPath); n > 0 {
		return nil, fmt.Errorf("the web app logged %d errors or panics:\n%s", n, strings.Join(lines, "\n"))
	}
	for _, t := range targets {
		logf("%-7s %8.1f req/s  p50 %7.3f ms  p99 %7.3f ms  %d requests, %d errors", t.name, t.rps(),
			ms(t.lat.percentile(0.50)), ms(t.lat.percentile(0.99)), t.n.Load(), t.errs.Load())
		if p := t.first.Load(); p != nil {
			logf("%s: first error: %s", t.name, *p)
		}
	}
	return &loadResult{Storage: st.name, Targets: targets, Body: len(body)}, nil
}

// slice runs conc closed-loop workers on t for d: each sends a request as
// soon as its previous one is answered. Requests started before the end
// are counted; t.spent grows by the time until the last one ended.
func slice(ctx context.Context, t *target, conc int, d time.Duration) error {
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			var lat []time.Duration
			for time.Now().Before(end) && ctx.Err() == nil {
				s := time.Now()
				err := t.req(ctx, w)
				took := time.Since(s)
				if err != nil {
					t.errs.Add(1)
					msg := err.Error()
					t.first.CompareAndSwap(nil, &msg)
					continue
				}
				t.n.Add(1)
				lat = append(lat, took)
			}
			t.lat.addAll(lat)
		})
	}
	wg.Wait()
	t.spent += time.Since(start)
	return ctx.Err()
}

// parallel runs fn(0..n-1), at most width at once, and returns the
// first error (the others still finish).
func parallel(ctx context.Context, n, width int, fn func(i int) error) error {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return errors.Join(ctx.Err())
}

// loadRows are the load test's result rows: ratios of the app to each
// reference (req/s, p50, p99), and the counts.
func loadRows(r *rows, res *loadResult, cfg loadConfig, note string) {
	ours := res.Targets[0]
	what := fmt.Sprintf("GET /notes (%d sealed notes), %d clients, %s", cfg.Notes, cfg.Concurrency, res.Storage)
	for _, ref := range res.Targets[1:] {
		refWhat := what
		if ref.name == "static" {
			refWhat += ", against the app's static route"
		}
		r.ratio(ratioRow{Table: "load", What: refWhat + ": throughput", OursLabel: ours.label, Ours: round3(ours.rps()),
			ReferenceLabel: ref.label, Reference: round3(ref.rps()), Unit: "req/s", LowerIsBetter: false, Note: note})
		for _, q := range []struct {
			name string
			q    float64
		}{{"p50", 0.50}, {"p99", 0.99}} {
			r.ratio(ratioRow{Table: "load", What: refWhat + ": " + q.name + " latency", OursLabel: ours.label, Ours: ms(ours.lat.percentile(q.q)),
				ReferenceLabel: ref.label, Reference: ms(ref.lat.percentile(q.q)), Unit: "ms", LowerIsBetter: true, Note: note})
		}
	}
	for _, t := range res.Targets {
		r.fact("load", fmt.Sprintf("%s: %s requests answered as expected", what, t.name), float64(t.n.Load()), "requests", note)
		r.fact("load", fmt.Sprintf("%s: %s errors (wrong status or page, transport errors)", what, t.name), float64(t.errs.Load()), "requests", note)
	}
}
