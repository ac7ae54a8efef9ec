// Package ratelimit protects authentication against guessing: rate
// limits per client address or account, a per-account lockout with
// growing locks shared by every way of authenticating, client addresses
// that forged headers cannot change, and net/http middleware that answers
// 429 with Retry-After and RateLimit headers.
//
// For most use cases, limit the login endpoint per client address, limit
// every other endpoint that runs the password hash for a logged-in user
// per address and per account, tag KDF runs with the account they are for
// (kdf.WithGateKey), and check every credential through the lockout:
//
//	clients, _ := ratelimit.NewClientResolver(ratelimit.ClientOptions{TrustedProxies: proxies})
//	perIP, _ := ratelimit.New(store, ratelimit.LoginPerIP(), ratelimit.Options{})
//	kdfClient, _ := ratelimit.New(store, ratelimit.KDFPerClient(), ratelimit.Options{})
//	kdfAccount, _ := ratelimit.New(store, ratelimit.KDFPerAccount(), ratelimit.Options{})
//	guard := ratelimit.Guard{PerClient: kdfClient, PerAccount: kdfAccount}
//	lockout, _ := ratelimit.NewLockout(store, ratelimit.LockoutOptions{LogKey: logKey})
//	devices, _ := ratelimit.NewDevices(deviceKey, ratelimit.DeviceOptions{})
//	mux.Handle("POST /login", perIP.Middleware(ratelimit.ByIP(clients), nil)(loginHandler))
//
// and in the login handler, for the submitted name, whether or not such
// an account exists:
//
//	ip, _ := clients.Client(r)
//	ctx = kdf.WithGateKey(ctx, "account:"+name) // one name's flood takes one share of the KDF gate
//	err := lockout.Check(ctx, name, ratelimit.Source{IP: ip, Device: devices.Recognize(r, name)}, ratelimit.Credential{
//		Verify: func(ctx context.Context) error { return verifyPassword(ctx, name, password) }, // kdf.ErrMismatch when wrong or unknown
//		Dummy:  func(ctx context.Context) error { return hasher.VerifyDummy(ctx, password) },
//	})
//	switch {
//	case err == nil: devices.Remember(w, name) // logged in
//	case errors.Is(err, ratelimit.ErrRejected): /* the wrong-password answer: also for a locked account */
//	default: /* 503 (kdf.ErrBusy, store down) or 500 */
//	}
//
// and in the vault-unlock and step-up handlers, for the logged-in user:
//
//	if d, err := guard.Allow(ctx, ip, userID); err != nil || !d.Allowed { /* 429 or 503 */ }
//
// Every other way into the account (TOTP, recovery codes, passkeys, vault
// unlock, step-up, API logins) calls the same lockout's Check with the
// same name, so failures on all of them count together, and a locked
// account costs each of them the same work as a wrong credential: Check
// runs Dummy instead of Verify, exactly once, and its answer matches
// ErrRejected exactly as a wrong credential's does. [Lockout.Begin] and
// [Attempt] are the steps Check is made of, for callers that cannot pass
// a Credential; they must then spend the dummy work themselves.
//
// # Algorithm: GCRA
//
// Limiters use the generic cell rate algorithm (GCRA), a token bucket
// kept as one timestamp per key, the theoretical arrival time (TAT). A
// Rule of Limit per Period allows a burst of Limit requests, then one
// more every Period/Limit: [LoginPerIP], 5 per 15 minutes, allows 5 at
// once, then one every 3 minutes. Each decision is one atomic
// read-compute-write of that timestamp in the store (a Lua script in
// Redis, a transaction in SQL, a lock in memory), so it is exact under
// concurrency: of any number of concurrent requests, from any number of
// processes sharing the store, no more are allowed than one after the
// other would be. GCRA was chosen over the alternatives because:
//
//   - a fixed window (count per clock interval, as a Flask rate limiter
//     that counts per fixed window does) lets 2×Limit through around a
//     window's edge;
//   - a sliding log is exact per window but keeps Limit timestamps per
//     key, so memory and the store's work grow with the limit;
//   - a sliding-window counter (two windows, weighted) is an
//     approximation, not exact;
//   - GCRA keeps 8 bytes per key, needs no background refill, reports
//     remaining units, reset and retry-after from the same timestamp, and
//     its store operation is small: on Redis one script of a GET, a few
//     integer operations and at most a SET (BENCHMARKS.md, "Rate limiting
//     on Redis", measures it against a plain GET; `bash bench/run.sh`).
//
// What it guarantees: over any span of time D, a key gets at most
// Limit + D/(Period/Limit) units (a full burst, then the steady rate);
// within a single Period that is at most 2×Limit−1, and a client that
// keeps trying gets exactly one unit per Period/Limit. It does not
// promise "at most Limit in any window of length Period"; a sliding log
// does, at Limit times the state.
//
// Decisions read the caller's clock. Instances sharing a store must keep
// their clocks in step (NTP); an instance whose clock runs ahead by s
// sees units refilled up to s early, one behind sees them late.
//
// # Lockout
//
// A [Lockout] counts attempts per account, before the credential is
// checked: Begin (inside Check) counts the attempt atomically and refuses
// it once the account is locked for its source, and a success resets the
// counts it used. Counting first means that concurrent guesses cannot
// overtake the counter: of 200 concurrent attempts on an account with a
// limit of 10, at most 10 reach the credential check. An attempt whose
// credential was never checked (the KDF gate refused it with kdf.ErrBusy,
// the client went away, the store failed) told its client nothing: Check
// gives it back ([Attempt.Abandon]; a lock it completed, still running, is
// undone) and logs it, so that a burst of refused attempts, even the
// owner's, never locks an account. Each lock lasts LockFor; each further
// lock of the same counter doubles, up to MaxLockFor; locks end on their
// own, and ForgetAfter of quiet forgets the history.
//
// The lockout counts the name the client submitted, whether or not an
// account has it: unknown names lock exactly like real ones, and a locked
// account must get the same answer as a wrong password (status, body and
// headers), so the lock reveals neither the account's existence nor its
// state. Lockout decisions are never sent in RateLimit headers.
//
// # Lockout without denial of service
//
// A lockout that anyone can trigger is a way to lock owners out of their
// own accounts. Failures are therefore counted on three kinds of counters
// ([LockoutPolicy], [DefaultLockoutPolicy]):
//
//  1. Per account and source, where the source is the client's IPv4
//     address or IPv6 /64: after MaxFailures (10) failures that source
//     is locked out of that account, with growing locks (1 h up to 24 h).
//     An attacker at one address locks out only that address: the owner,
//     from any address that has not failed, still gets in, on a new
//     device too.
//  2. Per account over every source: after AccountMaxFailures (100, NIST
//     SP 800-63B's cap on consecutive failures) the account is locked for
//     every source without a recognised device. Only an attacker with
//     more than AccountMaxFailures/MaxFailures (10) sources gets there;
//     this is the lockout's cost: such an attacker can keep owners on new
//     devices out, for LockFor growing to MaxLockFor.
//  3. Per account and recognised device ([Devices]): after a successful
//     login the browser holds a signed device cookie for the account, and
//     its attempts count on a counter of their own, which no other counter
//     stops. Attackers elsewhere cannot touch it (they cannot forge the
//     cookie), so the owner on a device they have used keeps logging in
//     whatever the attack.
//
// Per client address, over all accounts, [LoginPerIP] with [ByIP] keeps
// one source from guessing across many accounts. Bounds, for one
// account: one source gets at most MaxFailures guesses per lock of its
// counter (with the defaults, 340 in 30 days of continuous guessing, as
// TestLockoutDoSSimulation shows: the owner, on a new device and a new
// address, got in on all 116 tries, and with 40 victims on all 4640); all
// sources together get at most AccountMaxFailures between locks of the
// account. Locks are temporary (at most MaxLockFor). An owner locked out
// on a new device by a distributed attack recovers through the app's
// account-recovery flow (an emailed link), which must not be gated by the
// lockout; once the owner has proved control, the flow calls
// [Lockout.Reset] and [Devices.Remember].
//
// An owner who is logged in can be told what happened: [Lockout.Status]
// reads the counters an attempt from their browser would count on (the
// account's, their address's, their device's: failures, locks, the end of
// a lock) without counting anything. Show it to the authenticated owner
// only; to everyone else, a locked account answers like a wrong
// credential.
//
// Every endpoint that costs a password-hash run for a logged-in user
// (vault unlock, step-up, password change) should also pass a [Guard]
// first: a limit per client address ([KDFPerClient]) and per account
// ([KDFPerAccount]), so that one account, flooding with its own right
// password, cannot fill the KDF gate that everyone's logins need. Login
// is limited per address ([LoginPerIP]) but not per submitted name: a
// budget per name would let anyone who knows the name spend it and keep
// its owner out. The lockout (per name and address) and the KDF gate's
// fair share per name (kdf.WithGateKey) bound a flood on one name.
//
// # Client addresses
//
// The client address is the connection's peer (RemoteAddr), unless that
// peer is inside one of [ClientOptions.TrustedProxies]; only then are
// Forwarded or X-Forwarded-For read, right to left, skipping trusted
// hops, and the first untrusted hop is the client. A client that sends a
// forged X-Forwarded-For directly, or through the proxies (which append
// the real address), gets no extra attempts: the address it forged is
// never used. IPv6 clients are limited per /64 by default.
//
// # Stores and failures
//
// Limiter state lives behind [storage.RateStore] and
// [storage.LockoutStore]: memstore (bounded memory, no background
// goroutine), sqlstore (SQLite, PostgreSQL) and redisstore (one round trip
// per decision) implement both. Keys are hashed (SHA-256 with the rule's
// name) before they reach the store. A store failure refuses the request
// (fail closed) unless the limiter was built with FailOpen, a switch to
// reserve for limits that protect capacity, not credentials.
//
// # Notifications
//
// LockoutOptions.Notifier hears keyhold.AccountLocked for every lock a
// failed attempt causes, and DeviceOptions.Notifier hears
// keyhold.NewDeviceLogin when [Devices.RememberLogin] sees a login from a
// browser without the account's device cookie: the application tells the
// account's owner (keyhold.Notifier).
//
// # Logs
//
// Events are named in the OWASP Logging Vocabulary's style (SECURITY.md,
// "Audit events", lists each with its level and fields). Limiters log
// "excess_rate_limit_exceeded" for every refusal and
// "input_validation_fail" for a request their key function found no key
// in; lockouts log "authn_login_success", "authn_login_fail" (with the
// counts), "authn_login_fail_max" and "authn_login_lock" when an attempt
// locks a counter (whatever becomes of the attempt: every lock is logged,
// with its scope: source, account or device), "authn_login_locked" for
// attempts refused by a lock, "authn_attempt_abandoned" (with the kind of
// reason) for attempts given back, and "authn_login_lock_undone" for a
// lock that giving one back undid; both log "sys_store_fail" for a store
// failure; a lockout logs "sys_notify_fail" when its Notifier panics; with
// the client address and counts, never a credential. Account names and limiter keys appear only as a keyed hash
// ("user_hash", "key_hash": see [LogHash]), because users type passwords
// into name fields; set LockoutOptions.LogKey and Options.LogKey to the
// same secret on every instance to search the logs for an account.
package ratelimit
