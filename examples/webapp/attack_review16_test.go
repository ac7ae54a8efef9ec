package main

import (
	"context"
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

// TestAttackReview16AdmissionKeepsKnownDevicesIn: an attacker who knows
// only the victim's username holds the admission gate's places for that
// name (two logins past the gate, at their password check, and the
// account's two waiting places). The lockout lets a device that logged in
// to the account before through whatever failures others cause
// (ratelimit.Source.Device); the admission gate must not undo that. The
// victim's login from such a device waits for a place and gets in once
// the held logins finish, instead of a 503 at once (what a gate keyed on
// the name alone answered). A client without the device cookie is still
// refused at once.
func TestAttackReview16AdmissionKeepsKnownDevicesIn(t *testing.T) {
	e := newEnvWith(t, true, config{KDFGate: kdf.GateConfig{MaxConcurrent: 1, MaxWaiting: 1}})
	victim := e.client()
	e.signup(victim, "victim")
	expect(t, "logout", e.post(victim, "/logout", nil), 303, "/")
	e.clock.Advance(3 * time.Minute)
	expect(t, "victim's login (earns the device cookie)", e.post(victim, "/login", url.Values{"username": {"victim"}, "password": {password}}), 303, "/notes")
	expect(t, "logout", e.post(victim, "/logout", nil), 303, "/")

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

	// The attacker's logins: the victim's name in another case and with
	// spaces, which formUsername folds into the same name.
	form := url.Values{"username": {"  VICTIM "}, "password": {"not the victim's password"}}.Encode()
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
	// Two logins past the gate, held at their password check; then more,
	// each given a moment to queue, until one is refused at once: the
	// name's waiting places are full (no client deadline, which a TLS
	// handshake on a loaded machine can outlast).
	var wg sync.WaitGroup
	var sent atomic.Int32
	send := func(codes chan<- int) {
		wg.Add(1)
		from := fmt.Sprintf("127.0.1.%d", sent.Add(1)) // an address of its own: a flood from many
		go func() {
			defer wg.Done()
			resp, err := login(context.Background(), e.clientFrom(from), form)
			if err != nil {
				t.Errorf("attacker's login: %v", err)
				codes <- 0
				return
			}
			codes <- resp.StatusCode
		}()
	}
	for range 2 {
		e.clock.Advance(3 * time.Minute)
		send(make(chan int, 1))
		<-held
	}
	refused := false
	for try := 0; try < 20 && !refused; try++ {
		codes := make(chan int, 1)
		send(codes)
		select {
		case code := <-codes:
			if code != http.StatusServiceUnavailable {
				t.Fatalf("an attacker's login answered %d while two were held, want 503 or a wait", code)
			}
			refused = true
		case <-time.After(300 * time.Millisecond):
		}
	}
	if !refused {
		t.Fatal("the attacker never filled the name's places")
	}

	// The victim, from the device that logged in before, with the right
	// password.
	e.clock.Advance(3 * time.Minute)
	done := make(chan result, 1)
	go func() {
		done <- e.post(victim, "/login", url.Values{"username": {"victim"}, "password": {password}})
	}()
	select {
	case r := <-done:
		releaseAll()
		wg.Wait()
		t.Fatalf("the victim's login from a known device answered %d at once while an attacker held the name's places, want it to wait and get in", r.code)
	case <-time.After(100 * time.Millisecond):
	}
	releaseAll()
	expect(t, "the victim's login from a known device", <-done, 303, "/notes")
	wg.Wait()
}

// TestAttackReview16MadeUpNamesEvictWaitingLogins: the admission gate is
// keyed by account name, and a full queue gives a waiter's place to a key
// holding fewer (kdf.Gate's eviction). One address sending logins under
// made-up names, each a key holding no place, used to fill the queue and
// then turn away every legitimate login that waited (bob's here) with 503.
// Now one address holds at most as many places as there are past the gate
// (two here, of six): the made-up names beyond its two are refused at once
// with 429, the queue never fills, and bob's login waits and gets in.
func TestAttackReview16MadeUpNamesEvictWaitingLogins(t *testing.T) {
	e := newEnvWith(t, true, config{KDFGate: kdf.GateConfig{MaxConcurrent: 1, MaxWaiting: 1}})
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

	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	send := func(c *http.Client, name string, codes chan<- int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.post(c, "/login", url.Values{"username": {name}, "password": {"x"}})
			codes <- r.code
		}()
	}
	for i := range 2 { // the two places past the gate, held by two other users
		e.clock.Advance(3 * time.Minute)
		send(e.clientFrom(fmt.Sprintf("127.0.3.%d", i+1)), fmt.Sprintf("holder%d", i), make(chan int, 1))
		<-held
	}
	e.clock.Advance(3 * time.Minute)
	bobDone := make(chan result, 1)
	go func() { bobDone <- e.post(bob, "/login", url.Values{"username": {"bob"}, "password": {password}}) }()
	time.Sleep(500 * time.Millisecond) // bob waits at the gate
	// Made-up names from one address: without the bound, four fill the
	// queue and the next ones each take a waiter's place (bob's first).
	attacker := e.clientFrom("127.0.4.1")
	const madeUp = 8
	codes := make(chan int, madeUp)
	for i := range madeUp {
		send(attacker, fmt.Sprintf("made-up-%d", i), codes)
	}
	refused := 0
	for refused < madeUp-2 {
		select {
		case code := <-codes:
			if code != http.StatusTooManyRequests {
				releaseAll()
				t.Fatalf("a made-up name's login answered %d while the gate was held, want 429 (the address's places taken) or a wait", code)
			}
			refused++
		case r := <-bobDone:
			releaseAll()
			t.Fatalf("bob's login answered %d while made-up names flooded from one address, want it to wait and get in", r.code)
		case <-time.After(10 * time.Second):
			releaseAll()
			t.Fatalf("%d of %d made-up names' logins refused at once, want %d (the address holds two places)", refused, madeUp, madeUp-2)
		}
	}
	select {
	case r := <-bobDone:
		releaseAll()
		t.Fatalf("bob's login answered %d while made-up names flooded from one address, want it to wait and get in", r.code)
	case <-time.After(time.Second):
	}
	releaseAll()
	expect(t, "bob's login", <-bobDone, 303, "/notes")
	for range 2 {
		if code := <-codes; code != http.StatusUnauthorized {
			t.Errorf("a made-up name's login that waited answered %d, want 401", code)
		}
	}
}
