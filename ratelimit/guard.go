package ratelimit

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// KDFPerClient limits the requests that cost a password-hash run (login,
// vault unlock, step-up, sign-up, password change) from one client
// address (IPv6: one /64), over all of them and whatever account they
// name: 20 per minute.
func KDFPerClient() Rule { return Rule{Name: "kdf-client", Limit: 20, Period: time.Minute} }

// KDFPerAccount limits the requests that cost a password-hash run for one
// account, from any number of addresses: 10 per minute. With the KDF
// gate's fair share per account, it keeps one account (its owner's
// scripts, or an attacker with its password) from filling the gate that
// every other user's login needs.
func KDFPerAccount() Rule { return Rule{Name: "kdf-account", Limit: 10, Period: time.Minute} }

// A Guard limits every endpoint that costs a password-hash run, per
// client address and per account, before the lockout and the KDF: build
// it from two Limiters on [KDFPerClient] and [KDFPerAccount] (or rules of
// your own) and call Allow first thing in each such handler, with the
// logged-in user's account (vault unlock, step-up, password change).
// Do not guard login with the submitted name: whoever knows a name could
// spend its budget and keep its owner out (see the package doc). Both
// limiters must be set.
type Guard struct {
	PerClient  *Limiter // keyed by the client's address (KDFPerClient)
	PerAccount *Limiter // keyed by the logged-in user's account (KDFPerAccount)
}

// Allow takes one unit for the client's address (its IPv6 /64) and then
// one for the account, and returns the first refusal, or the account's
// decision if both allow. A refused decision for the account carries no
// quota state for headers ([WriteHeaders] sends none for it), but its
// RetryAfter. A client without an address is refused with ErrNoClientIP.
func (g Guard) Allow(ctx context.Context, client netip.Addr, account string) (Decision, error) {
	if g.PerClient == nil || g.PerAccount == nil {
		return Decision{}, fmt.Errorf("%w: a Guard needs both limiters", ErrInvalidInput)
	}
	if !client.IsValid() {
		return Decision{}, ErrNoClientIP
	}
	d, err := g.PerClient.Allow(ctx, ClientKey(client, 64))
	if err != nil || !d.Allowed {
		return d, err
	}
	d, err = g.PerAccount.Allow(ctx, account)
	d.disclose = false
	return d, err
}
