package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// MaxKeyLen is the longest key (a client address, an account name or a
// combination) that Allow and Begin accept, in bytes. Keys are hashed
// before they reach the store, so the store's keys are always
// storage.RateKeyLen bytes whatever the key.
const MaxKeyLen = 1024

var (
	// ErrInvalidInput means an argument is out of bounds: a rule or
	// policy outside its limits, an empty or over-long key; or a method
	// was called on a nil *Limiter, *Lockout, *Attempt, *Devices or
	// *ClientResolver (what a failed constructor or Begin returns).
	// Methods without an error result return zero values on a nil
	// receiver, and a nil Limiter's middleware answers every request with
	// a 500; none panics.
	ErrInvalidInput = errors.New("ratelimit: invalid input")

	// ErrUnavailable means the store failed, so no decision could be
	// made. A limiter that fails closed (the default) denies; one
	// configured with FailOpen allows, and still reports the error.
	ErrUnavailable = errors.New("ratelimit: store unavailable")

	// ErrLocked means the account (or the device's bucket for it) is
	// locked: the attempt must be refused without checking the
	// credential, with the same answer as a wrong one.
	ErrLocked = errors.New("ratelimit: account locked")
)

// What the methods of nil receivers return.
var (
	errNilLimiter        = fmt.Errorf("%w: nil *Limiter", ErrInvalidInput)
	errNilLockout        = fmt.Errorf("%w: nil *Lockout", ErrInvalidInput)
	errNilAttempt        = fmt.Errorf("%w: nil *Attempt (the result of a failed Begin)", ErrInvalidInput)
	errNilDevices        = fmt.Errorf("%w: nil *Devices", ErrInvalidInput)
	errNilClientResolver = fmt.Errorf("%w: nil *ClientResolver", ErrInvalidInput)
	nilHandler           = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	})
)

// A Rule is a rate: at most Limit units at once, refilled at Limit per
// Period (one unit every Period/Limit). Name identifies the rule in the
// RateLimit-Policy header and in logs, and separates its keys in the store
// from every other rule's.
type Rule struct {
	// Name is 1 to 64 bytes of letters, digits, '-', '_' and '.'.
	Name string
	// Limit is the burst and the number of units per Period: 1 to
	// storage.MaxRateBurst.
	Limit int
	// Period is the time Limit units take to refill, at least one
	// microsecond per unit and at most storage.MaxRateWindow.
	Period time.Duration
}

// LoginPerIP limits login attempts: 5 per 15 minutes per client address.
func LoginPerIP() Rule { return Rule{Name: "login", Limit: 5, Period: 15 * time.Minute} }

// SetupPerIP limits account setup (sign-up, first-user creation): 3 per
// hour per client address.
func SetupPerIP() Rule { return Rule{Name: "setup", Limit: 3, Period: time.Hour} }

// interval is the emission interval, Period/Limit rounded up to the
// microsecond: rounding up never admits more than Limit per Period.
func (r Rule) interval() time.Duration {
	us := r.Period.Microseconds()
	per := (us + int64(r.Limit) - 1) / int64(r.Limit)
	return time.Duration(per) * time.Microsecond
}

func (r Rule) validate() error {
	if err := validName(r.Name); err != nil {
		return err
	}
	if r.Limit < 1 || r.Limit > storage.MaxRateBurst {
		return fmt.Errorf("%w: rule %q: limit %d outside 1..%d", ErrInvalidInput, r.Name, r.Limit, storage.MaxRateBurst)
	}
	if r.Period < time.Duration(r.Limit)*time.Microsecond || r.Period > storage.MaxRateWindow {
		return fmt.Errorf("%w: rule %q: period %v outside %d µs..%v", ErrInvalidInput, r.Name, r.Period, r.Limit, storage.MaxRateWindow)
	}
	if r.interval()*time.Duration(r.Limit) > storage.MaxRateWindow {
		return fmt.Errorf("%w: rule %q: period %v too close to %v", ErrInvalidInput, r.Name, r.Period, storage.MaxRateWindow)
	}
	return nil
}

func validName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("%w: name of %d bytes, want 1..64", ErrInvalidInput, len(name))
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: name %q: only letters, digits, '-', '_' and '.'", ErrInvalidInput, name)
		}
	}
	return nil
}

// Options configures a Limiter. The zero value fails closed, logs to
// slog.Default() and reads time.Now.
type Options struct {
	// FailOpen makes the limiter allow when its store fails (the
	// decision still carries the error, and the failure is logged).
	// Leave it false for anything that guards credentials: an attacker who
	// can make the store fail (fill it, slow it down) would otherwise
	// turn the limiter off.
	FailOpen bool
	// Logger receives the "excess_rate_limit_exceeded" events. Zero:
	// slog.Default().
	Logger *slog.Logger
	// LogKey is the key (LogKeyLen bytes) under which limiter keys are
	// hashed for the logs ([LogHash]): a key may name an account, and a
	// submitted account name is sometimes a password. Zero: a random key
	// of the process.
	LogKey []byte
	// Now is the clock. Zero: time.Now. Every instance sharing a store
	// must keep its clock in step (NTP): see the package documentation.
	Now func() time.Time
}

// A Limiter applies one Rule to any number of keys, keeping its state in a
// storage.RateStore. It is immutable and safe for concurrent use; Limiters
// in several processes that share a store and a Rule name share their
// buckets.
type Limiter struct {
	store    storage.RateStore
	rule     Rule
	interval time.Duration
	failOpen bool
	log      *slog.Logger
	logKey   [LogKeyLen]byte
	now      func() time.Time
}

// New returns a Limiter for rule on store.
func New(store storage.RateStore, rule Rule, opts Options) (*Limiter, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidInput)
	}
	if err := rule.validate(); err != nil {
		return nil, err
	}
	key, err := logKey(opts.LogKey)
	if err != nil {
		return nil, err
	}
	l := &Limiter{store: store, rule: rule, interval: rule.interval(), failOpen: opts.FailOpen, log: opts.Logger, logKey: key, now: opts.Now}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// Rule returns the limiter's rule.
func (l *Limiter) Rule() Rule {
	if l == nil {
		return Rule{}
	}
	return l.rule
}

// A Decision is the outcome of one Allow.
type Decision struct {
	// Allowed reports whether the request may go on.
	Allowed bool
	// Policy, Limit and Period are the rule's.
	Policy string
	Limit  int
	Period time.Duration
	// Remaining is the number of units left after this decision.
	Remaining int
	// Reset is the time until the bucket is full again (all Limit units
	// available).
	Reset time.Duration
	// Next is the time until one more unit becomes available (zero when
	// the bucket is full).
	Next time.Duration
	// RetryAfter is, when refused, the time until a request of the same
	// cost would be allowed; zero when allowed.
	RetryAfter time.Duration
	// Err is non-nil when the store failed: Allowed is then the
	// limiter's FailOpen, and the counts are zero.
	Err error
	// At is the time of the decision, by the limiter's clock.
	At time.Time
	// disclose is false for decisions on keys that name an account: their
	// quota state is not sent to clients.
	disclose bool
}

// Allow takes one unit from key's bucket. See AllowN.
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	if l == nil {
		return Decision{}, errNilLimiter
	}
	return l.AllowN(ctx, key, 1)
}

// AllowN takes n units from key's bucket if it holds them, atomically (of
// concurrent calls in any number of processes sharing the store, no more
// are allowed than one after the other would be), and returns the
// decision. A refused request takes nothing.
//
// key names what is limited: a client address (see [ClientKey]), an
// account, or both; it is hashed with the rule's name before it reaches
// the store. An empty key, one over MaxKeyLen bytes, or n outside
// 1..Limit returns an error wrapping ErrInvalidInput and a refusal. When
// the store fails, AllowN returns an error wrapping ErrUnavailable and a
// decision whose Allowed is the limiter's FailOpen.
func (l *Limiter) AllowN(ctx context.Context, key string, n int) (Decision, error) {
	if l == nil {
		return Decision{}, errNilLimiter
	}
	d := Decision{Policy: l.rule.Name, Limit: l.rule.Limit, Period: l.rule.Period, disclose: true}
	if n < 1 || n > l.rule.Limit {
		d.Err = fmt.Errorf("%w: cost %d outside 1..%d", ErrInvalidInput, n, l.rule.Limit)
		return d, d.Err
	}
	if err := checkKey(key); err != nil {
		d.Err = err
		return d, err
	}
	hashed := storeKey(kindRate, l.rule.Name, key)
	now := l.now()
	d.At = now
	res, err := l.store.TakeRate(ctx, hashed[:], storage.RateRequest{
		Now: now, Interval: l.interval, Burst: int64(l.rule.Limit), Cost: int64(n),
	})
	if err != nil {
		d.Allowed = l.failOpen
		d.Err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		l.log.LogAttrs(ctx, slog.LevelError, "sys_store_fail",
			slog.String("policy", l.rule.Name), slog.String("key_hash", logHash(&l.logKey, key)), slog.String("op", "take_rate"), slog.Bool("fail_open", l.failOpen), slog.String("error", err.Error()))
		return d, d.Err
	}
	l.fill(&d, now, res, int64(n))
	if !d.Allowed {
		l.log.LogAttrs(ctx, slog.LevelWarn, "excess_rate_limit_exceeded",
			slog.String("policy", l.rule.Name), slog.String("key_hash", logHash(&l.logKey, key)),
			slog.Int("limit", l.rule.Limit), slog.Duration("period", l.rule.Period),
			slog.Duration("retry_after", d.RetryAfter))
	}
	return d, nil
}

// fill derives the decision's counts from the store's answer.
func (l *Limiter) fill(d *Decision, now time.Time, res storage.RateResult, cost int64) {
	interval := l.interval.Microseconds()
	burst := int64(l.rule.Limit)
	ahead := max(res.TAT.UnixMicro()-now.Truncate(time.Microsecond).UnixMicro(), 0) // TAT − now
	d.Allowed = res.Allowed
	d.Remaining = int(min(max((burst*interval-ahead)/interval, 0), burst))
	d.Reset = time.Duration(ahead) * time.Microsecond
	if d.Remaining < l.rule.Limit {
		// The next unit arrives when ahead falls to (burst − remaining − 1) intervals.
		d.Next = time.Duration(ahead-(burst-int64(d.Remaining)-1)*interval) * time.Microsecond
	}
	if !res.Allowed {
		d.RetryAfter = time.Duration(ahead+cost*interval-burst*interval) * time.Microsecond
	}
}

// LogHash returns the hash under which this Limiter's log lines name key
// (see [LogHash]).
func (l *Limiter) LogHash(key string) string {
	if l == nil {
		return ""
	}
	return logHash(&l.logKey, key)
}

// Reset forgets key's state: its bucket is full again. Use it sparingly
// (an administrator's action): a limiter that is reset on success lets an
// attacker who also holds a valid account reset their own budget.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if l == nil {
		return errNilLimiter
	}
	if err := checkKey(key); err != nil {
		return err
	}
	hashed := storeKey(kindRate, l.rule.Name, key)
	if err := l.store.ResetRate(ctx, hashed[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

func checkKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key of %d bytes, want 1..%d", ErrInvalidInput, len(key), MaxKeyLen)
	}
	return nil
}

// Kinds of store keys, so that a rate rule and a lockout of the same name
// never share a key.
const (
	kindRate    = "rate"
	kindLockout = "lockout"
)

// storeKey hashes a key into the store's fixed-size key space:
// SHA-256("keyhold/v1/ratelimit\x00" ‖ kind ‖ 0x00 ‖ name ‖ 0x00 ‖ u32 len(key) ‖ key).
// The hash bounds the store's key size and keeps addresses and account
// names out of it; it is not anonymisation (an IPv4 address is easily
// found from its hash).
func storeKey(kind, name, key string) [storage.RateKeyLen]byte {
	var buf [256]byte // on the stack for the usual keys
	b := append(buf[:0], "keyhold/v1/ratelimit\x00"...)
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	return sha256.Sum256(b)
}
