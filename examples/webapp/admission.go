package main

import (
	"net/http"

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

// loginAdmissionPerAccount is how many logins of one account may wait at
// the admission gate.
const loginAdmissionPerAccount = 2

// newLoginAdmission returns the admission gate of POST /login for a KDF
// gate configured as kdfGate: as many logins past it as the KDF gate runs
// and queues, and twice that waiting.
func newLoginAdmission(kdfGate kdf.GateConfig) (*kdf.Gate, error) {
	inFlight := kdfGate.MaxConcurrent + kdfGate.MaxWaiting
	return kdf.NewGate(kdf.GateConfig{
		MaxConcurrent:    inFlight,
		MaxWaiting:       2 * inFlight,
		MaxWaitingPerKey: loginAdmissionPerAccount,
		// Places, not memory: the requests it admits take their memory
		// from the KDF gate. A budget no count of places reaches (each
		// run is charged 1 KiB) keeps the memory bound out of the way.
		MemoryBudgetKiB: 1 << 40,
	})
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
// admission gate, or answers 503 (busy) without running it.
func (a *app) admitLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := kdf.WithGateKey(r.Context(), admissionKey(a, r))
		err := a.loginAdmission.Run(ctx, 0, func() { next.ServeHTTP(w, r) })
		switch {
		case err == nil:
		case r.Context().Err() != nil:
			// The client went away while waiting: no one to answer.
		default:
			a.fail(w, r, err) // kdf.ErrBusy: 503 with Retry-After
		}
	})
}
