package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// A LockoutStatus is what a Lockout's counters say about one account, as
// seen from one source: for the account's owner once they have
// authenticated (an account page that explains a lock), or for an
// administrator. It holds counts and times only, nothing secret, but it
// does reveal the account's state: never show it to a client that has not
// authenticated as the account's owner (the login form must keep
// answering a locked account exactly like a wrong password).
type LockoutStatus struct {
	// Account is the counter of every source without a recognised device
	// (ScopeAccount): when it is locked, the account is locked for every
	// browser that has not logged in to it before.
	Account CounterStatus
	// Source is the counter of the source's address on the account
	// (ScopeSource): the attempts from the same IPv4 address or IPv6 /64.
	Source CounterStatus
	// Device is the counter of the source's recognised device
	// (ScopeDevice); zero when the source has none.
	Device CounterStatus
}

// A CounterStatus is one lockout counter's state, read at one instant.
type CounterStatus struct {
	// Failures counts the failed (or unfinished) attempts since the
	// counter was last reset by a success or forgotten after a quiet
	// period, locks included: each lock consumed MaxFailures of them.
	Failures int
	// MaxFailures is the counter's limit: every MaxFailures failures
	// lock it.
	MaxFailures int
	// Locks counts the locks since the counter was last reset or
	// forgotten; each lasted twice as long as the one before, up to the
	// policy's MaxLockFor.
	Locks int
	// LockedUntil is when the current lock ends; zero when the counter is
	// not locked at the instant it was read.
	LockedUntil time.Time
	// Forget is when the counter will be forgotten if no attempt counts
	// on it before (ForgetAfter after the last attempt, or after the end
	// of the last lock); zero when there is nothing to forget.
	Forget time.Time
}

// Locked reports whether the counter was locked when it was read.
func (c CounterStatus) Locked() bool { return !c.LockedUntil.IsZero() }

// Status reads the counters that an attempt on account from src would
// count on (see [LockoutPolicy]): the account's, the source address's
// and, if src has a recognised device, the device's. It reads at most
// three counters, changes none of them, and counts nothing: calling it is
// not an attempt. account is the name the application passes to Check
// (MaxKeyLen bytes at most; ErrInvalidInput otherwise). A store failure
// is returned wrapped in ErrUnavailable.
//
// The LockoutStore interface has no read: Status reads through
// RefundAttempt with a lock number (math.MaxInt32) that DecideRefund
// matches only on a counter that has been locked about 2^31 times
// without a success or a quiet ForgetAfter between them, that is after
// more than two billion failures on one counter. For every other
// counter, and so for every counter in practice, the refund changes
// nothing and returns the stored state, which is what Status reports.
func (l *Lockout) Status(ctx context.Context, account string, src Source) (LockoutStatus, error) {
	if l == nil {
		return LockoutStatus{}, errNilLockout
	}
	if err := checkKey(account); err != nil {
		return LockoutStatus{}, err
	}
	now := l.now()
	var s LockoutStatus
	read := func(key [storage.RateKeyLen]byte, maxFailures int) (CounterStatus, error) {
		_, st, err := l.store.RefundAttempt(ctx, key[:], l.request(maxFailures, now), math.MaxInt32)
		if err != nil {
			return CounterStatus{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return counterStatus(st, maxFailures, now), nil
	}
	var err error
	if s.Account, err = read(storeKey(kindLockout, l.name, "a\x00"+account), l.policy.AccountMaxFailures); err != nil {
		return LockoutStatus{}, err
	}
	if s.Source, err = read(l.sourceKey(account, src.IP), l.policy.MaxFailures); err != nil {
		return LockoutStatus{}, err
	}
	if src.Device.ok {
		if s.Device, err = read(storeKey(kindLockout, l.name, "d\x00"+string(src.Device.id[:])+account), l.policy.MaxFailures); err != nil {
			return LockoutStatus{}, err
		}
	}
	return s, nil
}

// counterStatus describes st, a counter's stored state (the zero state
// for none, or one that has expired), at now.
func counterStatus(st storage.LockoutState, maxFailures int, now time.Time) CounterStatus {
	c := CounterStatus{MaxFailures: maxFailures}
	if st.Expires.IsZero() || st.Expires.UnixMilli() <= now.UnixMilli() {
		return c
	}
	c.Failures = st.Locks*maxFailures + st.Failures
	c.Locks = st.Locks
	c.Forget = st.Expires
	if !st.LockedUntil.IsZero() && st.LockedUntil.UnixMilli() > now.UnixMilli() {
		c.LockedUntil = st.LockedUntil
	}
	return c
}
