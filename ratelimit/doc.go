// Package ratelimit protects authentication against guessing: rate
// limits per client address or account, a per-account lockout with
// growing locks shared by every way of authenticating, client addresses
// that forged headers cannot change, and net/http middleware that answers
// 429 with Retry-After and RateLimit headers.
//
// For most use cases, limit the login endpoint per client address and
// lock accounts after repeated failures:
//
//	clients, _ := ratelimit.NewClientResolver(ratelimit.ClientOptions{TrustedProxies: proxies})
//	perIP, _ := ratelimit.New(store, ratelimit.LoginPerIP(), ratelimit.Options{})
//	lockout, _ := ratelimit.NewLockout(store, ratelimit.LockoutOptions{})
//	devices, _ := ratelimit.NewDevices(deviceKey, ratelimit.DeviceOptions{})
//	mux.Handle("POST /login", perIP.Middleware(ratelimit.ByIP(clients), nil)(loginHandler))
//
// and in the login handler, for the submitted name, whether or not such
// an account exists:
//
//	ip, _ := clients.Client(r)
//	att, err := lockout.Begin(ctx, name, ratelimit.Source{IP: ip, Device: devices.Recognize(r, name)})
//	if err != nil { /* the same answer as a wrong password */ }
//	if !checkPassword(name, password) { att.Failed(ctx); /* wrong password */ }
//	att.Succeeded(ctx); devices.Remember(w, name)
//
// Every other way into the account (TOTP, recovery codes, passkeys, vault
// unlock, API logins) calls the same lockout's Begin with the same name,
// so failures on all of them count together.
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
//   - a fixed window (count per clock interval, as the seeds' Flask
//     limiter does) lets 2×Limit through around a window's edge;
//   - a sliding log is exact per window but keeps Limit timestamps per
//     key, so memory and the store's work grow with the limit;
//   - a sliding-window counter (two windows, weighted) is an
//     approximation, not exact;
//   - GCRA keeps 8 bytes per key, needs no background refill, reports
//     remaining units, reset and retry-after from the same timestamp, and
//     its store operation is small enough to cost about as much as a GET
//     in Redis (see bench/README.md).
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
// checked: Begin counts the attempt atomically and refuses it once the
// account is locked, and Succeeded resets the count. Counting first means
// that concurrent guesses cannot overtake the counter: of 200 concurrent
// attempts on an account with a limit of 10, at most 10 reach the
// credential check. After MaxFailures attempts without a success the
// account locks for LockFor; each further lock doubles, up to MaxLockFor;
// locks end on their own, and ForgetAfter of quiet forgets the history.
// [DefaultLockoutPolicy]: 10 failures, 1 hour, growing to 24 hours.
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
// own accounts. This package combines three limits so that an attacker,
// from any number of addresses, can never lock an owner out for good:
//
//  1. Per client address ([LoginPerIP] with [ByIP]; IPv6 per /64): every
//     attempt, for any name, uses the source's budget, so one source
//     cannot guess across many accounts, and locking an account from one
//     source takes two windows.
//  2. Per account, shared by every source and every way of
//     authenticating ([Lockout]): distributed guessing on one account
//     stops at MaxFailures per lock, with growing locks, whatever the
//     number of addresses.
//  3. Per account and recognised device ([Devices]): after a successful
//     login the browser holds a signed device cookie for the account, and
//     its attempts count on a counter of their own. Attackers elsewhere
//     cannot touch it (they cannot forge the cookie), so the owner on a
//     device they have used keeps logging in while the shared counter is
//     locked.
//
// Locks are temporary (at most MaxLockFor), and the shared counter is for
// new devices only. An owner locked out on a new device recovers through
// the app's account-recovery flow (an emailed link), which must not be
// gated by the lockout; once the owner has proved control, the flow calls
// [Lockout.Reset] and [Devices.Remember].
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
// # Logs
//
// Limiters log "excess_rate_limit_exceeded" for every refusal; lockouts
// log "authn_login_fail" (with the count), "authn_login_fail_max" and
// "authn_login_lock" when an attempt locks the account, and
// "authn_login_locked" for attempts refused by a lock, with the submitted
// name, the client address and counts; never a credential.
package ratelimit
