package main

import (
	"net/http"
	"sync"

	"github.com/keyhold/keyhold/kdf"
)

// A login flood must meet its limits before it reaches the store. Each
// login writes to the store twice before its password is checked (the
// per-address limiter and the account's lockout count), and on SQLite every
// write waits for the one writer connection, in a queue that is neither
// bounded nor fair: under 500 concurrent logins the KDF gate's fairness
// never got a say, refusals took 25 s, and most legitimate users were not
// answered within a minute (bench/storm.sh). So POST /login first takes a
// place at an admission gate: a kdf.Gate used as a bounded, fair queue of
// whole requests rather than of KDF runs. At most as many logins run past
// it as the KDF gate can run and queue; the rest wait, served round-robin
// across accounts, at most loginAdmissionPerAccount of them per account;
// beyond that a login is refused at once with 503 and Retry-After, having
// touched nothing. So a flood on a few accounts holds a few places, and the
// other accounts' logins still queue and get in.
//
// Fairness by account alone is undone by names: one address sending logins
// under made-up names, each a key holding no place, fills the queue, and a
// full kdf.Gate gives a waiter's place to a key holding fewer, turning the
// real users' waiting logins away. So before the gate each client address
// (ratelimit.ClientResolver's key: the address, or its IPv6 /64) may hold
// at most as many places, waiting or past the gate, as there are past it:
// a third of all places, not enough to fill the queue alone. The next
// login from that address is refused at once with 429 and Retry-After,
// having touched nothing. Two addresses can fill the queue while other
// users' logins hold the places past the gate; a flood from many
// addresses is met by the per-address limiter and the lockout behind the
// gate (SECURITY.md, Known limits).

// loginAdmissionPerAccount is how many logins of one account may wait at
// the admission gate.
const loginAdmissionPerAccount = 2

// newLoginAdmission returns the admission gate of POST /login for a KDF
// gate configured as kdfGate (as many logins past it as the KDF gate runs
// and queues, and twice that waiting) and the bound on the places one
// client address may hold there (as many as there are past the gate).
func newLoginAdmission(kdfGate kdf.GateConfig) (*kdf.Gate, *addressPlaces, error) {
	inFlight := kdfGate.MaxConcurrent + kdfGate.MaxWaiting
	gate, err := kdf.NewGate(kdf.GateConfig{
		MaxConcurrent:    inFlight,
		MaxWaiting:       2 * inFlight,
		MaxWaitingPerKey: loginAdmissionPerAccount,
		// Places, not memory: the requests it admits take their memory
		// from the KDF gate. A budget no count of places reaches (each
		// run is charged 1 KiB) keeps the memory bound out of the way.
		MemoryBudgetKiB: 1 << 40,
	})
	if err != nil {
		return nil, nil, err
	}
	return gate, &addressPlaces{max: max(2, inFlight), held: make(map[string]int)}, nil
}

// addressPlaces counts the places that each client address holds at the
// admission gate, up to max each. An address leaves the map when it holds
// none, so the map never holds more entries than there are logins in
// flight.
type addressPlaces struct {
	mu   sync.Mutex
	max  int
	held map[string]int
}

// take gives addr one more place, or reports false if it holds max.
func (p *addressPlaces) take(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[addr] >= p.max {
		return false
	}
	p.held[addr]++
	return true
}

// give returns one of addr's places.
func (p *addressPlaces) give(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[addr] <= 1 {
		delete(p.held, addr)
		return
	}
	p.held[addr]--
}

// admissionKey is the login's key at the admission gate: the account's
// name, apart for a browser that proves it logged in to the account before
// (a knownDevices cookie, checked with one HMAC and no store). The lockout
// lets such a device in whatever failures others cause on the name
// (ratelimit.Source.Device); keyed on the name alone, the gate would undo
// that: anyone who knows a username could hold its two places and have
// its owner's logins refused with 503. The name is the lockout's
// (formUsername), so no spelling of it escapes its places.
func admissionKey(a *app, r *http.Request) string {
	name := formUsername(r)
	if a.knownDevices.Recognize(r, name).Known() {
		return "known-device:" + name
	}
	return "account:" + name
}

// admitLogin runs next once the login's account has a place at the
// admission gate, or answers without running it: 429 when the client's
// address holds its share of the places, 503 (busy) when the account's
// places or the queue are full.
func (a *app) admitLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, err := a.clients.ClientKey(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if !a.loginPlaces.take(addr) {
			w.Header().Set("Retry-After", "1")
			msg := "Too many logins from your network at once. Please try again in a moment."
			if err := a.render(w, r, http.StatusTooManyRequests, "login", pageData{Error: msg}); err != nil {
				a.fail(w, r, err)
			}
			return
		}
		defer a.loginPlaces.give(addr)
		ctx := kdf.WithGateKey(r.Context(), admissionKey(a, r))
		err = a.loginAdmission.Run(ctx, 0, func() { next.ServeHTTP(w, r) })
		switch {
		case err == nil:
		case r.Context().Err() != nil:
			// The client went away while waiting: no one to answer.
		default:
			a.fail(w, r, err) // kdf.ErrBusy: 503 with Retry-After
		}
	})
}
