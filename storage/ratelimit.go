package storage

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Bounds for rate-limiter and lockout state.
const (
	// RateKeyLen is the length of every rate and lockout key: package
	// ratelimit hashes the limiter's name and the client or account it
	// limits into 32 bytes, so the store never sees an IP address or a
	// user name and every key has the same size.
	RateKeyLen = 32
	// MaxRateBurst is the largest RateRequest.Burst.
	MaxRateBurst = 1 << 20
	// MaxRateWindow bounds RateRequest.Interval × Burst, the time a fully
	// drained bucket takes to refill (and so the longest a rate state
	// lives). With Now before 2201, it keeps every timestamp and
	// product exact in 53 bits of microseconds, which adapters that
	// compute in floating point (Redis Lua) rely on.
	MaxRateWindow = 400 * 24 * time.Hour
	// MaxLockoutFailures is the largest LockoutRequest.MaxFailures.
	MaxLockoutFailures = 100
	// MaxLockoutDuration bounds LockoutRequest.MaxLockFor and
	// ForgetAfter.
	MaxLockoutDuration = 90 * 24 * time.Hour
)

// maxRequestTime bounds the Now of rate and lockout requests from above;
// from below, Now must be after the Unix epoch (0 stands for "no state").
var maxRequestTime = time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC)

// validNow reports whether now is inside (Unix epoch, 2201-01-01 UTC).
func validNow(now time.Time) bool {
	return now.UnixMilli() > 0 && now.Before(maxRequestTime)
}

// A RateRequest asks for one decision of the generic cell rate algorithm
// (GCRA): a bucket of Burst units that refills one unit per Interval.
// All times are taken to the microsecond: Now is truncated, Interval must
// be a whole number of microseconds.
type RateRequest struct {
	// Now is the caller's clock; adapters never use their own. It must
	// be after the Unix epoch (by at least a millisecond) and before
	// 2201-01-01 UTC.
	Now time.Time
	// Interval is the emission interval, the time one unit takes to
	// refill: at least 1 µs, a whole number of microseconds.
	Interval time.Duration
	// Burst is the bucket's size: 1 to MaxRateBurst, with Interval×Burst
	// at most MaxRateWindow.
	Burst int64
	// Cost is the number of units taken: 1 to Burst.
	Cost int64
}

// A RateResult is the outcome of a RateRequest.
type RateResult struct {
	// Allowed reports whether the units were taken.
	Allowed bool
	// TAT is the key's theoretical arrival time after the decision, to
	// the microsecond: when allowed, the new TAT; when refused, the
	// stored TAT, or Now if that had passed (or there was none). The
	// bucket is full again at TAT, and holds
	// floor((Burst×Interval − (TAT − Now)) / Interval) units.
	TAT time.Time
}

// RateStore keeps the state of rate limiters: one theoretical arrival
// time (TAT) per key, updated by the generic cell rate algorithm in one
// atomic step per decision.
//
// TakeRate must compute exactly what [DecideRate] computes, from the
// stored TAT (or none) and the request, and store the new TAT in the same
// atomic step as it reads the old: of concurrent requests, no more are
// allowed than one after the other would be. A TAT that is not after Now
// means a full bucket, the same as no state at all, so an adapter may
// forget a key once its TAT has passed (and should, to bound its memory).
// An adapter whose memory is bounded below the number of live keys may
// also forget live keys, those whose TAT comes soonest first (they are
// closest to a full bucket, so forgetting them gives away the least), and
// must document its bound: a forgotten live key allows more than the
// algorithm would. Adapters without such a bound never forget a live key.
//
// An argument out of bounds (a key that is not RateKeyLen bytes, a
// RateRequest outside its bounds) is refused with an error wrapping
// ErrInvalid before anything is read or written.
type RateStore interface {
	// TakeRate makes one GCRA decision for key, atomically.
	TakeRate(ctx context.Context, key []byte, req RateRequest) (RateResult, error)
	// ResetRate forgets key's state (its bucket is full again). Resetting
	// a key that has no state returns nil.
	ResetRate(ctx context.Context, key []byte) error
}

// ValidRateKey returns an error wrapping ErrInvalid if key is not a rate
// or lockout key (RateKeyLen bytes). ResetRate and ResetLockout check it;
// ValidRateRequest and ValidLockoutRequest include it.
func ValidRateKey(key []byte) error {
	if len(key) != RateKeyLen {
		return fmt.Errorf("%w: rate or lockout key of %d bytes, want %d", ErrInvalid, len(key), RateKeyLen)
	}
	return nil
}

// ValidRateRequest returns an error wrapping ErrInvalid if key or req is
// outside the bounds that RateStore documents.
func ValidRateRequest(key []byte, req RateRequest) error {
	if err := ValidRateKey(key); err != nil {
		return err
	}
	switch {
	case req.Interval < time.Microsecond || req.Interval%time.Microsecond != 0:
		return fmt.Errorf("%w: rate interval %v is not a positive whole number of microseconds", ErrInvalid, req.Interval)
	case req.Burst < 1 || req.Burst > MaxRateBurst:
		return fmt.Errorf("%w: rate burst %d outside 1..%d", ErrInvalid, req.Burst, MaxRateBurst)
	case req.Interval > MaxRateWindow/time.Duration(req.Burst):
		return fmt.Errorf("%w: rate window %v × %d over %v", ErrInvalid, req.Interval, req.Burst, MaxRateWindow)
	case req.Cost < 1 || req.Cost > req.Burst:
		return fmt.Errorf("%w: rate cost %d outside 1..%d", ErrInvalid, req.Cost, req.Burst)
	case !validNow(req.Now):
		return fmt.Errorf("%w: rate request time outside 1970..2200", ErrInvalid)
	}
	return nil
}

// DecideRate is the reference GCRA step, in microseconds: given the stored
// TAT (storedTAT, or 0 for none) and req, it returns whether req is
// allowed and the TAT to report, which is also the TAT to store when
// allowed. req must be valid (see [ValidRateRequest]).
//
//	tat    = max(storedTAT, now)
//	newTAT = tat + Cost×Interval
//	allowed iff newTAT − now ≤ Burst×Interval
func DecideRate(storedTAT int64, req RateRequest) (allowed bool, tat int64) {
	now := req.Now.UnixMicro()
	interval := req.Interval.Microseconds()
	tat = max(storedTAT, now)
	newTAT := tat + req.Cost*interval
	if newTAT-now > req.Burst*interval {
		return false, tat
	}
	return true, newTAT
}

// A LockoutRequest asks for one authentication attempt against an
// account's failure counter.
type LockoutRequest struct {
	// Now is the caller's clock; adapters never use their own. It must
	// be after the Unix epoch (by at least a millisecond) and before
	// 2201-01-01 UTC.
	Now time.Time
	// MaxFailures is the number of attempts, without a success between
	// them, after which the account locks: 1 to MaxLockoutFailures.
	MaxFailures int
	// LockFor is how long the first lock lasts; each further lock
	// (without a success or ForgetAfter of quiet between them) lasts twice
	// as long as the one before, up to MaxLockFor. At least 1 ms.
	LockFor time.Duration
	// MaxLockFor caps the growing lock: LockFor to MaxLockoutDuration.
	MaxLockFor time.Duration
	// ForgetAfter is how long after the last attempt (or the end of the
	// last lock, if later) the state is forgotten: failures and the
	// lock's growth start again from nothing. 1 ms to MaxLockoutDuration.
	ForgetAfter time.Duration
}

// A LockoutState is an account's failure counter, to the millisecond.
type LockoutState struct {
	// Failures counts the attempts since the last success or lock,
	// including the one just admitted. It goes back to 0 when an attempt
	// locks the account.
	Failures int
	// Locks counts the locks since the state was last forgotten or reset.
	Locks int
	// LockedUntil is when the current lock ends; zero or past when the
	// account is not locked.
	LockedUntil time.Time
	// Expires is when the state is forgotten: the later of the last
	// attempt and LockedUntil, plus ForgetAfter.
	Expires time.Time
}

// LockoutStore keeps one failure counter per account key.
//
// BeginAttempt must compute exactly what [DecideAttempt] computes, from the
// stored state (or none: the zero LockoutState) and the request, and store
// the new state in the same atomic step as it reads the old: of N
// concurrent attempts on an account with no state, exactly
// min(N, MaxFailures) are admitted. A state whose Expires has passed is
// the same as no state; adapters may forget it then. An adapter whose
// memory is bounded below the number of live states may also forget live
// ones, those that expire soonest first, and must document its bound: a
// forgotten live state admits attempts that the lockout would have
// refused. Adapters without such a bound never forget a live state.
//
// An argument out of bounds (a key that is not RateKeyLen bytes, a
// LockoutRequest outside its bounds) is refused with an error wrapping
// ErrInvalid before anything is read or written.
type LockoutStore interface {
	// BeginAttempt counts one attempt for key unless the account is
	// locked, atomically, and returns whether it was admitted with the
	// state after the decision (when refused, the stored state, unchanged).
	BeginAttempt(ctx context.Context, key []byte, req LockoutRequest) (admitted bool, st LockoutState, err error)
	// ResetLockout forgets key's state after a success: no failures, no
	// lock, no growth. Resetting a key without state returns nil.
	ResetLockout(ctx context.Context, key []byte) error
	// RefundAttempt gives back the count of one attempt that
	// BeginAttempt admitted but whose credential was never checked (the
	// check was refused for capacity, the client went away, another
	// counter refused it), exactly as [DecideRefund] computes it from the
	// stored state, in the same atomic step as it reads the state. lock
	// is the number of the lock the attempt counts towards: the admitted
	// state's Locks if that attempt locked the account, Locks+1
	// otherwise (see [RefundLock]). It returns whether anything changed
	// and the state after the call (the stored one when nothing changed).
	// req is validated as for BeginAttempt; lock must be 1 to
	// math.MaxInt32.
	RefundAttempt(ctx context.Context, key []byte, req LockoutRequest, lock int) (refunded bool, st LockoutState, err error)
}

// RefundLock returns the lock number that an attempt admitted by
// BeginAttempt at now, with the state st after it, counts towards: st.Locks
// if that attempt locked the account, st.Locks+1 otherwise.
func RefundLock(st LockoutState, now time.Time) int {
	if st.Failures == 0 && st.Locks > 0 && st.LockedUntil.UnixMilli() > now.UnixMilli() {
		return st.Locks
	}
	return st.Locks + 1
}

// ValidRefund returns an error wrapping ErrInvalid if key, req or lock is
// outside the bounds that RefundAttempt documents.
func ValidRefund(key []byte, req LockoutRequest, lock int) error {
	if err := ValidLockoutRequest(key, req); err != nil {
		return err
	}
	if lock < 1 || lock > math.MaxInt32 {
		return fmt.Errorf("%w: refund towards lock %d, outside 1..%d", ErrInvalid, lock, math.MaxInt32)
	}
	return nil
}

// DecideRefund is the reference refund step, in milliseconds. Given the
// stored state (the zero LockoutState for none; a state whose Expires is
// not after Now counts as none), req and lock (see
// [LockoutStore.RefundAttempt]), it returns whether the refund changes
// the state and the state after it, which is also the state to store
// when it changes:
//
//	if Locks = lock−1 and Failures > 0: Failures−−
//	    (the attempt's count is still pending: give it back)
//	else if Locks = lock and now < LockedUntil:
//	    Locks−−, Failures = MaxFailures−1, LockedUntil = now
//	    (the attempt's count completed a lock that is still running:
//	    without it there would have been no lock, so undo it)
//	else: nothing (no state; or the attempt's count was consumed by a lock
//	    that has ended, or forgotten by a reset or an expiry)
//
// Expires never changes. A refund after a reset may give back one count
// of an attempt begun after the reset: at most one per attempt that was
// in flight at the reset, and never one that a check has answered.
func DecideRefund(stored LockoutState, req LockoutRequest, lock int) (refunded bool, next LockoutState) {
	now := req.Now.UnixMilli()
	if stored.Expires.IsZero() || stored.Expires.UnixMilli() <= now {
		return false, LockoutState{}
	}
	next = stored
	switch {
	case stored.Locks == lock-1 && stored.Failures > 0:
		next.Failures--
	case stored.Locks == lock && !stored.LockedUntil.IsZero() && now < stored.LockedUntil.UnixMilli():
		next.Locks--
		next.Failures = req.MaxFailures - 1
		next.LockedUntil = time.UnixMilli(now)
	default:
		return false, stored
	}
	return true, next
}

// ValidLockoutRequest returns an error wrapping ErrInvalid if key or req
// is outside the bounds that LockoutStore documents.
func ValidLockoutRequest(key []byte, req LockoutRequest) error {
	if err := ValidRateKey(key); err != nil {
		return err
	}
	switch {
	case req.MaxFailures < 1 || req.MaxFailures > MaxLockoutFailures:
		return fmt.Errorf("%w: lockout after %d failures, outside 1..%d", ErrInvalid, req.MaxFailures, MaxLockoutFailures)
	case req.LockFor < time.Millisecond || req.MaxLockFor < req.LockFor || req.MaxLockFor > MaxLockoutDuration:
		return fmt.Errorf("%w: lock for %v up to %v, outside 1ms..%v", ErrInvalid, req.LockFor, req.MaxLockFor, MaxLockoutDuration)
	case req.ForgetAfter < time.Millisecond || req.ForgetAfter > MaxLockoutDuration:
		return fmt.Errorf("%w: forget after %v, outside 1ms..%v", ErrInvalid, req.ForgetAfter, MaxLockoutDuration)
	case !validNow(req.Now):
		return fmt.Errorf("%w: lockout request time outside 1970..2200", ErrInvalid)
	}
	return nil
}

// DecideAttempt is the reference lockout step, in milliseconds. Given the
// stored state (the zero LockoutState for none; a state whose Expires is
// not after Now counts as none) and req, it returns whether the attempt
// is admitted and the state after it, which is also the state to store
// when admitted. req must be valid (see [ValidLockoutRequest]).
//
//	if now < LockedUntil: refused, state unchanged
//	Failures++
//	if Failures ≥ MaxFailures: Locks++, Failures = 0,
//	    LockedUntil = now + min(LockFor × 2^(Locks−1), MaxLockFor)
//	Expires = max(now, LockedUntil) + ForgetAfter
//
// The attempt that locks the account is itself admitted: its outcome is
// not known yet, and a success lifts the lock (ResetLockout).
func DecideAttempt(stored LockoutState, req LockoutRequest) (admitted bool, next LockoutState) {
	now := req.Now.UnixMilli()
	if stored.Expires.IsZero() || stored.Expires.UnixMilli() <= now {
		stored = LockoutState{}
	}
	if !stored.LockedUntil.IsZero() && now < stored.LockedUntil.UnixMilli() {
		return false, stored
	}
	next = stored
	next.Failures++
	until := int64(0)
	if !stored.LockedUntil.IsZero() {
		until = stored.LockedUntil.UnixMilli()
	}
	if next.Failures >= req.MaxFailures {
		next.Locks++
		next.Failures = 0
		until = now + LockDuration(next.Locks, req.LockFor, req.MaxLockFor).Milliseconds()
	}
	if until != 0 {
		next.LockedUntil = time.UnixMilli(until)
	}
	next.Expires = time.UnixMilli(max(now, until) + req.ForgetAfter.Milliseconds())
	return true, next
}

// LockDuration is how long the lock numbered locks (1 for the first)
// lasts: lockFor doubled locks−1 times, at most maxLockFor, truncated to
// the millisecond.
func LockDuration(locks int, lockFor, maxLockFor time.Duration) time.Duration {
	d := lockFor
	for i := 1; i < locks && d < maxLockFor; i++ {
		d *= 2
	}
	return min(d, maxLockFor).Truncate(time.Millisecond)
}
