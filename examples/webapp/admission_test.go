package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/kdf"
)

// TestLoginAdmissionRefusesAFloodBeforeTheStore holds two logins of one
// account (each from an address of its own, as a flood from many would
// come) inside the handler (at its password check), so that the
// admission gate (one KDF run and one queued: two logins past it, four
// waiting, two per account) is full for that account once two more of its
// logins wait. The next login of that account is refused at once with 503
// and Retry-After, before it reaches the handler; another account's login
// still queues and gets in once the held ones finish.
func TestLoginAdmissionRefusesAFloodBeforeTheStore(t *testing.T) {
	e := newEnvWith(t, true, config{KDFGate: kdf.GateConfig{MaxConcurrent: 1, MaxWaiting: 1}})
	e.signup(e.client(), "mallory")
	bob := e.client()
	e.signup(bob, "bob")
	expect(t, "logout", e.post(bob, "/logout", nil), 303, "/")

	var checks atomic.Int32
	held, release := make(chan struct{}, 2), make(chan struct{})
	hook := func(string) {
		if checks.Add(1) <= 2 {
			held <- struct{}{}
			<-release
		}
	}
	hookLoginCheck.Store(&hook)
	t.Cleanup(func() { hookLoginCheck.Store(nil) })
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)

	form := url.Values{"username": {"mallory"}, "password": {"wrong password, mallory's"}}.Encode()
	login := func(ctx context.Context, c *http.Client, body string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/login", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	var wg sync.WaitGroup
	flood := make(chan int, 4)
	for i := range 4 {
		e.clock.Advance(3 * time.Minute) // the per-address login limit refills
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := login(context.Background(), e.clientFrom(fmt.Sprintf("127.0.1.%d", i+1)), form)
			if err != nil {
				t.Errorf("mallory's login %d: %v", i, err)
				return
			}
			flood <- resp.StatusCode
		}()
		if i < 2 {
			<-held // in the handler, holding a place past the gate
		} else {
			// Logins 3 and 4 wait at the gate, where nothing tells the
			// test they arrived: each is given time to queue before the
			// next request of the account (a probe that came first
			// would take its place, and the test would fail, not pass).
			time.Sleep(300 * time.Millisecond)
		}
	}

	// Mallory's logins 3 and 4 wait at the gate; were one still on its
	// way, a fifth would wait too: it is sent with a deadline (a waiter
	// whose context ends leaves the queue) until one is refused. The held
	// logins never finish before the test releases them, so an answer
	// within the deadline is a refusal at the gate.
	var refused *http.Response
	for try := 0; try < 20 && refused == nil; try++ {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		resp, err := login(ctx, e.clientFrom(fmt.Sprintf("127.0.2.%d", try+1)), form)
		cancel()
		switch {
		case err == nil && resp.StatusCode == http.StatusServiceUnavailable:
			refused = resp
		case err == nil:
			t.Fatalf("a login past the account's places answered %d, want 503", resp.StatusCode)
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatal(err)
		}
	}
	if refused == nil {
		t.Fatal("no login of the flooded account was refused at the admission gate: each waited (or reached the handler)")
	}
	if got := refused.Header.Get("Retry-After"); got == "" {
		t.Error("the 503 has no Retry-After")
	}
	if n := checks.Load(); n != 2 {
		t.Errorf("%d password checks while two logins were held, want 2: a refused login reached the handler", n)
	}

	// Bob's login waits for a place like the others, is not refused, and
	// gets in once the held logins finish.
	e.clock.Advance(3 * time.Minute)
	bobDone := make(chan result, 1)
	go func() { bobDone <- e.post(bob, "/login", url.Values{"username": {"bob"}, "password": {password}}) }()
	select {
	case r := <-bobDone:
		t.Fatalf("bob's login finished while the gate was full: %d %q", r.code, r.location)
	case <-time.After(50 * time.Millisecond):
	}
	releaseAll()
	expect(t, "bob's login after the flood's held logins", <-bobDone, 303, "/notes")
	wg.Wait()
	close(flood)
	for code := range flood {
		if code != http.StatusUnauthorized {
			t.Errorf("a held or queued login of mallory answered %d, want 401", code)
		}
	}
}
