package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/notify"
	"github.com/keyhold/keyhold/storage"
)

// A LockoutPolicy says when attempts on an account are refused and for how
// long. Failures are counted on three kinds of counters (see the package
// documentation, "Lockout without denial of service"):
//
//   - per account and source (the client's IPv4 address, or its IPv6 /64;
//     attempts without an address share one source): after MaxFailures
//     attempts from one source without a success, that source is locked
//     out of that account, and only that source;
//   - per account, over every source: after AccountMaxFailures attempts
//     without a success, every source is locked out of the account (the
//     hard cap on consecutive failures of NIST SP 800-63B §5.2.2);
//   - per account and recognised device ([Devices]): after MaxFailures
//     attempts from the device, the device is locked out; its attempts
//     count on no other counter, and no other counter stops them.
//
// Each counter locks for LockFor; each further lock of the same counter
// lasts twice as long as the one before, up to MaxLockFor; ForgetAfter of
// quiet (after the last attempt, or the end of the last lock) forgets it.
// A zero field takes its value from DefaultLockoutPolicy.
//
// What this costs: an attacker from one source gets at most MaxFailures
// guesses per lock of that source's counter, and can never lock the owner
// out, on any device, from anywhere else. An attacker with more sources
// than AccountMaxFailures/MaxFailures (10 with the defaults: ten IPv4
// addresses, or ten /64s, which one IPv6 /56 holds many times over) can
// lock the account for every source without a recognised device, for
// LockFor growing to MaxLockFor; the owner then gets in from a device
// that logged in before, or through the app's account recovery. And each
// such source gets MaxFailures guesses per lock: a distributed attacker
// gets AccountMaxFailures guesses per account lock, as with a single
// counter.
type LockoutPolicy struct {
	// MaxFailures is the limit of one source's, or one recognised
	// device's, failures on an account: 1 to AccountMaxFailures.
	MaxFailures int
	// AccountMaxFailures is the limit of failures on the account over
	// every source without a recognised device: MaxFailures to
	// storage.MaxLockoutFailures (100, NIST's cap).
	AccountMaxFailures int
	// LockFor is the first lock's duration, at least a millisecond.
	LockFor time.Duration
	// MaxLockFor caps the growing lock; at most
	// storage.MaxLockoutDuration (90 days).
	MaxLockFor time.Duration
	// ForgetAfter is at most storage.MaxLockoutDuration.
	ForgetAfter time.Duration
}

// DefaultLockoutPolicy is 10 failures per source or device, and 100 per
// account, then a lock of 1 hour, growing to 2, 4, 8 and 16 hours and at
// most 24 hours for repeated locks of the same counter; a day of quiet
// forgets it all.
func DefaultLockoutPolicy() LockoutPolicy {
	return LockoutPolicy{MaxFailures: 10, AccountMaxFailures: storage.MaxLockoutFailures, LockFor: time.Hour, MaxLockFor: 24 * time.Hour, ForgetAfter: 24 * time.Hour}
}

func (p LockoutPolicy) withDefaults() LockoutPolicy {
	d := DefaultLockoutPolicy()
	if p.MaxFailures == 0 {
		p.MaxFailures = d.MaxFailures
	}
	if p.AccountMaxFailures == 0 {
		p.AccountMaxFailures = max(d.AccountMaxFailures, p.MaxFailures)
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
// DefaultLockoutPolicy, fails closed, logs to slog.Default() with a
// per-process log key, and reads time.Now.
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
	// Logger receives the events listed in the package documentation.
	// Zero: slog.Default().
	Logger *slog.Logger
	// LogKey is the key (LogKeyLen bytes) under which account names are
	// hashed for the logs (see [LogHash]): set it, the same on every
	// instance, to search the logs for an account. Zero: a random key
	// of the process, so that hashes can be matched within one process's
	// logs only.
	LogKey []byte
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// Notifier, if set, hears of every lock an attempt's failure causes:
	// keyhold.AccountLocked, once per counter locked (Detail: its scope,
	// Until: the end of the lock), when Failed records the attempt (or
	// Check counts it as failed), never for an attempt that turned out
	// right or was given back. See keyhold.Notifier: it must return
	// quickly; a panic in it is recovered and logged as sys_notify_fail.
	Notifier keyhold.Notifier
}

// A Lockout counts failed authentications per account, across every way
// of authenticating (password, TOTP, recovery code, passkey, vault
// unlock, API login). Use [Lockout.Check], which also makes a locked
// attempt cost what a wrong one costs; Begin is for callers that must
// split the steps. It is immutable and safe for concurrent use; Lockouts
// in several processes that share a store and a Name share their
// counters.
type Lockout struct {
	store    storage.LockoutStore
	name     string
	policy   LockoutPolicy
	failOpen bool
	log      *slog.Logger
	logKey   [LogKeyLen]byte
	now      func() time.Time
	notifier keyhold.Notifier
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
	if p.MaxFailures < 1 || p.AccountMaxFailures < p.MaxFailures || p.AccountMaxFailures > storage.MaxLockoutFailures {
		return nil, fmt.Errorf("%w: lockout policy: %d failures per source and %d per account, want 1 ≤ per source ≤ per account ≤ %d",
			ErrInvalidInput, p.MaxFailures, p.AccountMaxFailures, storage.MaxLockoutFailures)
	}
	l := &Lockout{store: store, name: opts.Name, policy: p, failOpen: opts.FailOpen, log: opts.Logger, now: opts.Now, notifier: opts.Notifier}
	for _, max := range []int{p.MaxFailures, p.AccountMaxFailures} {
		if err := storage.ValidLockoutRequest(make([]byte, storage.RateKeyLen), l.request(max, time.Unix(1, 0))); err != nil {
			return nil, fmt.Errorf("%w: lockout policy: %w", ErrInvalidInput, err)
		}
	}
	key, err := logKey(opts.LogKey)
	if err != nil {
		return nil, err
	}
	l.logKey = key
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

func (l *Lockout) request(maxFailures int, now time.Time) storage.LockoutRequest {
	return storage.LockoutRequest{Now: now, MaxFailures: maxFailures, LockFor: l.policy.LockFor, MaxLockFor: l.policy.MaxLockFor, ForgetAfter: l.policy.ForgetAfter}
}

// Policy returns the lockout's policy, defaults filled in.
func (l *Lockout) Policy() LockoutPolicy {
	if l == nil {
		return LockoutPolicy{}
	}
	return l.policy
}

// LogHash returns the hash under which this Lockout's log lines name
// account (see [LogHash]).
func (l *Lockout) LogHash(account string) string {
	if l == nil {
		return ""
	}
	return logHash(&l.logKey, account)
}

// A Source describes where an attempt comes from. Both fields are
// optional.
type Source struct {
	// IP is the client's address (see [ClientResolver.Client]): attempts
	// count per account and source, where the source is the IPv4 address
	// or the IPv6 /64 (see [LockoutPolicy]). Attempts without an address
	// share one source per account.
	IP netip.Addr
	// Device is the device the client proved it had used to log in to
	// this account before ([Devices.Recognize]). A recognised device has
	// its own counter for the account, which attempts from elsewhere do
	// not touch: an attacker cannot lock the owner out of a device they
	// already use.
	Device Device
}

// Scopes of a lockout counter, as logged and in LockedError.Scope.
const (
	ScopeSource  = "source"  // one source's attempts on the account
	ScopeAccount = "account" // every source's attempts on the account
	ScopeDevice  = "device"  // one recognised device's attempts on the account
)

// A LockedError is the error Begin returns for a locked account; it wraps
// ErrLocked. Until and Scope are for the server's own use (logs, an
// administrator's screen): never tell an unauthenticated client, since
// they reveal the account's state.
type LockedError struct {
	// Until is when the lock that refused the attempt ends.
	Until time.Time
	// Scope is the counter that is locked: ScopeSource, ScopeAccount or
	// ScopeDevice.
	Scope string
}

// Error says that the account is locked, without saying until when.
func (e *LockedError) Error() string { return "ratelimit: account locked" }

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// counter is one lockout counter that an attempt counts on.
type counter struct {
	key   [storage.RateKeyLen]byte
	scope string
	req   storage.LockoutRequest
	state storage.LockoutState // after the attempt was counted
}

// locked reports whether the attempt counted on c locked it.
func (c *counter) locked() bool {
	return storage.RefundLock(c.state, c.req.Now) == c.state.Locks
}

// failures is the number of failures of c with the attempt's: the
// counter's limit for the attempt that locked it.
func (c *counter) failures() int {
	if c.locked() {
		return c.req.MaxFailures
	}
	return c.state.Failures
}

// An Attempt is one admitted authentication attempt. Call exactly one of
// Succeeded, Failed or Abandon once its credential has been checked (or
// could not be); an attempt that gets none of them counts as failed (it
// was counted when Begin admitted it).
type Attempt struct {
	l        *Lockout
	account  string
	src      Source
	now      time.Time
	counters []counter
	// uncounted are the counters of an attempt admitted because the store
	// failed: Succeeded resets them.
	uncounted []counter
}

// Begin counts one attempt on account before its credential is checked.
// Prefer [Lockout.Check], which spends the same work on a locked account
// as on an admitted one. With Begin, a locked account is refused at once:
// the caller must spend the same work as a credential check itself (run
// the check's dummy, for example kdf.Hasher.VerifyDummy), or the time of
// the answer tells a locked account from a wrong credential.
//
// Begin returns an error wrapping ErrLocked (a *LockedError) if the
// account is locked for this source or device: refuse without checking
// the credential, with the same answer as for a wrong credential.
// Counting happens before the check, atomically on each counter, so of any
// number of concurrent attempts at most MaxFailures per source or device,
// and AccountMaxFailures in all, reach the credential check before a lock.
// An attempt refused by one counter is given back to the counters that
// had counted it. When an attempt locks a counter, Begin logs the lock.
//
// account is the name the client submitted (as normalised for lookup),
// whether or not such an account exists: unknown names count and lock
// exactly like real ones, so the lock reveals nothing about existence.
// An empty account or one over MaxKeyLen bytes returns ErrInvalidInput.
// When the store fails, Begin returns an error wrapping ErrUnavailable,
// and a nil Attempt unless the lockout fails open (an Attempt that
// records nothing).
func (l *Lockout) Begin(ctx context.Context, account string, src Source) (*Attempt, error) {
	if l == nil {
		return nil, errNilLockout
	}
	if err := checkKey(account); err != nil {
		return nil, err
	}
	now := l.now()
	a := &Attempt{l: l, account: account, src: src, now: now}
	for _, c := range l.counters(account, src, now) {
		admitted, st, err := l.store.BeginAttempt(ctx, c.key[:], c.req)
		if err != nil {
			l.log.LogAttrs(ctx, slog.LevelError, "sys_store_fail", l.attrs(account, src,
				slog.String("op", "begin_attempt"), slog.Bool("fail_open", l.failOpen), slog.String("error", err.Error()))...)
			a.refund(context.WithoutCancel(ctx))
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			if l.failOpen {
				// Nothing counted: Succeeded still resets (which is right
				// whatever was counted), Abandon gives nothing back.
				return &Attempt{l: l, account: account, src: src, now: now, uncounted: l.counters(account, src, now)}, err
			}
			return nil, err
		}
		if !admitted {
			a.refund(context.WithoutCancel(ctx))
			l.log.LogAttrs(ctx, slog.LevelWarn, "authn_login_locked", l.attrs(account, src,
				slog.String("scope", c.scope), slog.Int("locks", st.Locks), slog.Time("locked_until", st.LockedUntil))...)
			return nil, &LockedError{Until: st.LockedUntil, Scope: c.scope}
		}
		c.state = st
		a.counters = append(a.counters, c)
	}
	for i := range a.counters {
		if c := &a.counters[i]; c.locked() {
			l.log.LogAttrs(ctx, slog.LevelWarn, "authn_login_fail_max", l.attrs(account, src,
				slog.String("scope", c.scope), slog.Int("max_failures", c.req.MaxFailures))...)
			l.log.LogAttrs(ctx, slog.LevelWarn, "authn_login_lock", l.attrs(account, src,
				slog.String("scope", c.scope), slog.Int("locks", c.state.Locks), slog.Time("locked_until", c.state.LockedUntil),
				slog.Duration("lock_for", c.state.LockedUntil.Sub(now)))...)
		}
	}
	return a, nil
}

// counters returns the counters an attempt on account from src counts on,
// in the order it counts on them: the device's; or the source's, then
// the account's. The source's comes first so that a locked source's
// attempts never reach the account's counter.
func (l *Lockout) counters(account string, src Source, now time.Time) []counter {
	if src.Device.ok {
		return []counter{{key: storeKey(kindLockout, l.name, "d\x00"+string(src.Device.id[:])+account), scope: ScopeDevice, req: l.request(l.policy.MaxFailures, now)}}
	}
	return []counter{
		{key: l.sourceKey(account, src.IP), scope: ScopeSource, req: l.request(l.policy.MaxFailures, now)},
		{key: storeKey(kindLockout, l.name, "a\x00"+account), scope: ScopeAccount, req: l.request(l.policy.AccountMaxFailures, now)},
	}
}

// sourceKey is the store key of the counter of account's attempts from
// ip's source: the IPv4 address, the IPv6 /64, or none.
func (l *Lockout) sourceKey(account string, ip netip.Addr) [storage.RateKeyLen]byte {
	src := ""
	if ip.IsValid() {
		src = ClientKey(ip, 64)
	}
	return storeKey(kindLockout, l.name, "s\x00"+src+"\x00"+account)
}

// Succeeded records that the attempt's credential was right: the
// counters it used (the source's and the account's, or the recognised
// device's) are reset, locks and growth included. Other sources' counters
// are not: a source that guessed stays locked. It logs
// "authn_login_success".
func (a *Attempt) Succeeded(ctx context.Context) error {
	if a == nil {
		return errNilAttempt
	}
	a.l.log.LogAttrs(ctx, slog.LevelInfo, "authn_login_success", a.l.attrs(a.account, a.src)...)
	for _, c := range append(a.counters, a.uncounted...) {
		if err := a.l.store.ResetLockout(ctx, c.key[:]); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// Failed records that the attempt's credential was wrong. The failure was
// already counted (and a lock it caused logged) by Begin; Failed logs it.
func (a *Attempt) Failed(ctx context.Context) {
	if a == nil {
		return
	}
	a.l.log.LogAttrs(ctx, slog.LevelInfo, "authn_login_fail", a.l.attrs(a.account, a.src, a.failureAttrs()...)...)
	a.notifyLocks(ctx)
}

// notifyLocks tells the Notifier of each counter the failed attempt
// locked, once: an attempt gets one outcome, and only a failure's locks
// stand.
func (a *Attempt) notifyLocks(ctx context.Context) {
	if a.l.notifier == nil {
		return
	}
	for i := range a.counters {
		if c := &a.counters[i]; c.locked() {
			e := keyhold.Event{Kind: keyhold.AccountLocked, UserID: a.account, Time: a.l.now(), IP: a.src.IP,
				Until: c.state.LockedUntil, Detail: c.scope}
			if p := notify.Send(ctx, a.l.notifier, e); p != "" {
				a.l.log.LogAttrs(ctx, slog.LevelError, "sys_notify_fail", a.l.attrs(a.account, a.src,
					slog.String("event", string(e.Kind)), slog.String("panic", p))...)
			}
		}
	}
}

func (a *Attempt) failureAttrs() []slog.Attr {
	var attrs []slog.Attr
	for i := range a.counters {
		c := &a.counters[i]
		switch c.scope {
		case ScopeAccount:
			attrs = append(attrs, slog.Int("account_failures", c.failures()), slog.Int("account_max_failures", c.req.MaxFailures))
		default:
			attrs = append(attrs, slog.Int("failures", c.failures()), slog.Int("max_failures", c.req.MaxFailures))
		}
	}
	return attrs
}

// Abandon records that the attempt's credential was never checked: the
// check was refused for capacity (kdf.ErrBusy), the client went away, or
// something the check needed failed before it could answer. The attempt
// is given back to every counter it counted on (and a lock it caused,
// still running, is undone), so that attempts that told the client
// nothing never lock an account; and it is logged as
// "authn_attempt_abandoned" with the kind of reason (never
// reason's text). Never abandon an attempt whose check answered: that
// would hand out guesses the lockout does not count.
//
// Abandon records with context.WithoutCancel(ctx), so that a client that
// hangs up cannot keep its attempt counted. It returns an error wrapping
// ErrUnavailable if the store failed (the attempt then stays counted).
func (a *Attempt) Abandon(ctx context.Context, reason error) error {
	if a == nil {
		return errNilAttempt
	}
	a.l.log.LogAttrs(ctx, slog.LevelWarn, "authn_attempt_abandoned", a.l.attrs(a.account, a.src,
		slog.String("reason", reasonKind(reason)))...)
	return a.refund(context.WithoutCancel(ctx))
}

// refund gives the attempt back to each counter it counted on, and logs
// the locks that this undoes.
func (a *Attempt) refund(ctx context.Context) error {
	var first error
	now := a.l.now()
	for i := range a.counters {
		c := &a.counters[i]
		req := c.req
		req.Now = now
		refunded, st, err := a.l.store.RefundAttempt(ctx, c.key[:], req, storage.RefundLock(c.state, c.req.Now))
		if err != nil {
			a.l.log.LogAttrs(ctx, slog.LevelError, "sys_store_fail", a.l.attrs(a.account, a.src,
				slog.String("op", "refund_attempt"), slog.String("error", err.Error()))...)
			if first == nil {
				first = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			continue
		}
		if refunded && st.Locks < c.state.Locks {
			a.l.log.LogAttrs(ctx, slog.LevelInfo, "authn_login_lock_undone", a.l.attrs(a.account, a.src,
				slog.String("scope", c.scope), slog.Int("locks", st.Locks))...)
		}
	}
	a.counters = nil
	return first
}

// Reset clears the account's counter and the counter of attempts without
// an address (not the other sources' counters, nor the devices'): for an
// administrator, or the app's account-recovery flow once the owner has
// proved control of the account another way (an emailed reset link): a
// lock must never be permanent for the owner. The recovery flow should
// also call [Devices.Remember], so that the owner's next logins count on
// a device counter of their own.
func (l *Lockout) Reset(ctx context.Context, account string) error {
	if l == nil {
		return errNilLockout
	}
	if err := checkKey(account); err != nil {
		return err
	}
	for _, key := range [][storage.RateKeyLen]byte{storeKey(kindLockout, l.name, "a\x00"+account), l.sourceKey(account, netip.Addr{})} {
		if err := l.store.ResetLockout(ctx, key[:]); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

func (l *Lockout) attrs(account string, src Source, more ...slog.Attr) []slog.Attr {
	attrs := append(make([]slog.Attr, 0, 4+len(more)), slog.String("policy", l.name), slog.String("user_hash", l.LogHash(account)))
	if src.IP.IsValid() {
		attrs = append(attrs, slog.String("ip", src.IP.String()))
	}
	if src.Device.ok {
		attrs = append(attrs, slog.Bool("known_device", true))
	}
	return append(attrs, more...)
}
