package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// A LockoutPolicy says when an account locks and for how long: after
// MaxFailures attempts without a success between them, for LockFor; each
// further lock lasts twice as long as the one before, up to MaxLockFor;
// ForgetAfter of quiet (after the last attempt, or the end of the last
// lock) forgets everything. A zero field takes its value from
// DefaultLockoutPolicy.
type LockoutPolicy struct {
	// MaxFailures is 1 to storage.MaxLockoutFailures (100).
	MaxFailures int
	// LockFor is the first lock's duration, at least a millisecond.
	LockFor time.Duration
	// MaxLockFor caps the growing lock; at most
	// storage.MaxLockoutDuration (90 days).
	MaxLockFor time.Duration
	// ForgetAfter is at most storage.MaxLockoutDuration.
	ForgetAfter time.Duration
}

// DefaultLockoutPolicy is 10 failures, then a lock of 1 hour, growing to
// 2, 4, 8 and 16 hours and at most 24 hours for repeated locks; a day of
// quiet forgets it all.
func DefaultLockoutPolicy() LockoutPolicy {
	return LockoutPolicy{MaxFailures: 10, LockFor: time.Hour, MaxLockFor: 24 * time.Hour, ForgetAfter: 24 * time.Hour}
}

func (p LockoutPolicy) withDefaults() LockoutPolicy {
	d := DefaultLockoutPolicy()
	if p.MaxFailures == 0 {
		p.MaxFailures = d.MaxFailures
	}
	if p.LockFor == 0 {
		p.LockFor = d.LockFor
	}
	if p.MaxLockFor == 0 {
		p.MaxLockFor = max(d.MaxLockFor, p.LockFor)
	}
	if p.ForgetAfter == 0 {
		p.ForgetAfter = d.ForgetAfter
	}
	return p
}

// LockoutOptions configures a Lockout. The zero value uses
// DefaultLockoutPolicy, fails closed, logs to slog.Default() and reads
// time.Now.
type LockoutOptions struct {
	// Name separates this lockout's state from others' on the same store
	// (1 to 64 bytes of letters, digits, '-', '_', '.'). Zero: "account".
	Name string
	// Policy is when to lock and for how long. Zero fields: see
	// LockoutPolicy.
	Policy LockoutPolicy
	// FailOpen makes Begin admit attempts when the store fails (still
	// returning the error wrapped in ErrUnavailable alongside the
	// attempt). Leave it false: an attacker who can make the store fail
	// would otherwise guess without limit.
	FailOpen bool
	// Logger receives the "authn_login_fail", "authn_login_fail_max",
	// "authn_login_lock" and "authn_login_locked" events. Zero:
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
}

// A Lockout counts failed authentications per account, across every way
// of authenticating (password, TOTP, recovery code, passkey, vault
// unlock, API login): call Begin before checking any credential of the
// account, and Succeeded or Failed after. It is immutable and safe for
// concurrent use; Lockouts in several processes that share a store and a
// Name share their counters.
type Lockout struct {
	store    storage.LockoutStore
	name     string
	req      storage.LockoutRequest // Now is set per call
	failOpen bool
	log      *slog.Logger
	now      func() time.Time
}

// NewLockout returns a Lockout on store.
func NewLockout(store storage.LockoutStore, opts LockoutOptions) (*Lockout, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidInput)
	}
	if opts.Name == "" {
		opts.Name = "account"
	}
	if err := validName(opts.Name); err != nil {
		return nil, err
	}
	p := opts.Policy.withDefaults()
	req := storage.LockoutRequest{Now: time.Unix(1, 0), MaxFailures: p.MaxFailures, LockFor: p.LockFor, MaxLockFor: p.MaxLockFor, ForgetAfter: p.ForgetAfter}
	if err := storage.ValidLockoutRequest(make([]byte, storage.RateKeyLen), req); err != nil {
		return nil, fmt.Errorf("%w: lockout policy: %w", ErrInvalidInput, err)
	}
	l := &Lockout{store: store, name: opts.Name, req: req, failOpen: opts.FailOpen, log: opts.Logger, now: opts.Now}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// Policy returns the lockout's policy, defaults filled in.
func (l *Lockout) Policy() LockoutPolicy {
	return LockoutPolicy{MaxFailures: l.req.MaxFailures, LockFor: l.req.LockFor, MaxLockFor: l.req.MaxLockFor, ForgetAfter: l.req.ForgetAfter}
}

// A Source describes where an attempt comes from. Both fields are
// optional.
type Source struct {
	// IP is the client's address, for the logs (see [ClientKey] and the
	// package documentation on client addresses).
	IP netip.Addr
	// Device is the device the client proved it had used to log in to
	// this account before ([Devices.Recognize]). A recognised device has
	// its own counter for the account, which attempts from elsewhere do
	// not touch: an attacker cannot lock the owner out of a device they
	// already use.
	Device Device
}

// A LockedError is the error Begin returns for a locked account; it wraps
// ErrLocked. Until is for the server's own use (logs, an administrator's
// screen): never tell an unauthenticated client, since it reveals the
// account's state.
type LockedError struct {
	Until time.Time
}

// Error says that the account is locked, without saying until when.
func (e *LockedError) Error() string { return "ratelimit: account locked" }

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// An Attempt is one admitted authentication attempt. Call Succeeded or
// Failed once its credential has been checked; an attempt that is neither
// counts as failed (it was counted when Begin admitted it).
type Attempt struct {
	l       *Lockout
	key     [storage.RateKeyLen]byte
	account string
	src     Source
	state   storage.LockoutState
	now     time.Time
}

// Begin counts one attempt on account before its credential is checked.
// It returns an error wrapping ErrLocked (a *LockedError) if the account
// is locked for this source: refuse without checking the credential, with
// the same answer as for a wrong credential. Counting happens before the
// check, atomically, so of any number of concurrent attempts at most
// MaxFailures reach the credential check before the lock.
//
// account is the name the client submitted (as normalised for lookup),
// whether or not such an account exists: unknown names count and lock
// exactly like real ones, so the lock reveals nothing about existence.
// An empty account or one over MaxKeyLen bytes returns ErrInvalidInput.
// When the store fails, Begin returns an error wrapping ErrUnavailable,
// and a nil Attempt unless the lockout fails open.
func (l *Lockout) Begin(ctx context.Context, account string, src Source) (*Attempt, error) {
	key, err := l.key(account, src.Device)
	if err != nil {
		return nil, err
	}
	now := l.now()
	req := l.req
	req.Now = now
	admitted, st, err := l.store.BeginAttempt(ctx, key[:], req)
	if err != nil {
		l.log.LogAttrs(ctx, slog.LevelError, "keyhold.ratelimit.store_failed",
			slog.String("policy", l.name), slog.Bool("fail_open", l.failOpen), slog.String("error", err.Error()))
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		if l.failOpen {
			return &Attempt{l: l, key: key, account: account, src: src, now: now}, err
		}
		return nil, err
	}
	if !admitted {
		l.log.LogAttrs(ctx, slog.LevelWarn, "authn_login_locked", l.attrs(account, src,
			slog.Int("locks", st.Locks), slog.Time("locked_until", st.LockedUntil))...)
		return nil, &LockedError{Until: st.LockedUntil}
	}
	return &Attempt{l: l, key: key, account: account, src: src, state: st, now: now}, nil
}

// Succeeded records that the attempt's credential was right: the
// counter it used (the account's, or the recognised device's for the
// account) is reset, lock and growth included.
func (a *Attempt) Succeeded(ctx context.Context) error {
	if err := a.l.store.ResetLockout(ctx, a.key[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Failed records that the attempt's credential was wrong. The failure was
// already counted by Begin; Failed logs it, and logs the lock when this
// attempt was the one that locked the account.
func (a *Attempt) Failed(ctx context.Context) {
	// The attempt that locks the account starts a new count (0): it is
	// the MaxFailures-th failure.
	locked := a.state.Failures == 0 && a.state.Locks > 0 && a.state.LockedUntil.After(a.now)
	failures := a.state.Failures
	if locked {
		failures = a.l.req.MaxFailures
	}
	a.l.log.LogAttrs(ctx, slog.LevelInfo, "authn_login_fail", a.l.attrs(a.account, a.src,
		slog.Int("failures", failures), slog.Int("max_failures", a.l.req.MaxFailures))...)
	if locked {
		a.l.log.LogAttrs(ctx, slog.LevelWarn, "authn_login_fail_max", a.l.attrs(a.account, a.src,
			slog.Int("max_failures", a.l.req.MaxFailures))...)
		a.l.log.LogAttrs(ctx, slog.LevelWarn, "authn_login_lock", a.l.attrs(a.account, a.src,
			slog.Int("locks", a.state.Locks), slog.Time("locked_until", a.state.LockedUntil),
			slog.Duration("lock_for", a.state.LockedUntil.Sub(a.now)))...)
	}
}

// Reset clears the account's counter (not its devices'): for an
// administrator, or the app's account-recovery flow once the owner has
// proved control of the account another way (an emailed reset link): a
// lock must never be permanent for the owner.
func (l *Lockout) Reset(ctx context.Context, account string) error {
	key, err := l.key(account, Device{})
	if err != nil {
		return err
	}
	if err := l.store.ResetLockout(ctx, key[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// key is the store key of account's counter, or of the recognised
// device's counter for it.
func (l *Lockout) key(account string, dev Device) ([storage.RateKeyLen]byte, error) {
	if err := checkKey(account); err != nil {
		return [storage.RateKeyLen]byte{}, err
	}
	if !dev.ok {
		return storeKey(kindLockout, l.name, "a\x00"+account), nil
	}
	return storeKey(kindLockout, l.name, "d\x00"+string(dev.id[:])+account), nil
}

func (l *Lockout) attrs(account string, src Source, more ...slog.Attr) []slog.Attr {
	attrs := append(make([]slog.Attr, 0, 4+len(more)), slog.String("policy", l.name), slog.String("user", account))
	if src.IP.IsValid() {
		attrs = append(attrs, slog.String("ip", src.IP.String()))
	}
	if src.Device.ok {
		attrs = append(attrs, slog.Bool("known_device", true))
	}
	return append(attrs, more...)
}
