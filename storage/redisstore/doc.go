// Package redisstore keeps keyhold's sessions and refresh-token families,
// and the state of its rate limiters and account lockouts, in Redis,
// through github.com/redis/go-redis/v9: the short-lived state that every
// request reads, shared by all instances of an application.
//
// For most use cases, create one Store on the application's Redis client
//
//	rdb := redis.NewClient(&redis.Options{
//		Addr:                  "127.0.0.1:6379",
//		ContextTimeoutEnabled: true, // see Contexts below
//	})
//	st, err := redisstore.New(rdb, redisstore.Config{})
//
// and pass st wherever a [storage.SessionStore], a [storage.RefreshStore],
// a [storage.RateStore] or a [storage.LockoutStore] is wanted. A Store is not a [storage.VaultStore]: vault records must
// survive anything that may happen to a cache (eviction, a fail-over that
// drops the last writes), and belong in SQL, with
// [github.com/keyhold/keyhold/storage/sqlstore]. It is a
// [storage.FactorStore], for applications that keep everything but vaults
// in Redis, but second-factor records are better kept in SQL too: see
// Security considerations for what a lost write does to them. The Store does not own the
// client: close it yourself at shutdown.
//
// A Store is not a [storage.PasskeyStore] either: a user's passkey
// credentials (public keys, sign counts, PRF salts) and the indexes from
// a user handle and a credential ID to the user are kept like vault
// records, in SQL ([github.com/keyhold/keyhold/storage/sqlstore]), where
// an eviction or a lost write cannot lock a user out of their passkeys,
// bring back one they removed, or let one credential ID be registered to
// two users. Of the passkey state, only the short-lived, single-use
// WebAuthn challenges belong in Redis: a Store is a
// [storage.ChallengeStore]. PutChallenge is a SET with PXAT at the
// challenge's Expires; TakeChallenge a GETDEL (Redis 6.2 or later), so of
// concurrent takes exactly one gets the challenge, and a challenge whose
// Expires has passed by the process's clock is [storage.ErrNotFound] even
// if Redis's clock has not removed it yet. An evicted challenge is merely
// absent: the ceremony fails and is started again.
//
// # Keys
//
// With the prefix P ([Config.Prefix], "keyhold:" by default):
//
//	P+"s:"+hex(session ID)    string: a session (version, user ID, Expires, data), PXAT its Expires
//	P+"u:"+hex(user ID)       sorted set: the user's session IDs (hex), scored by PXAT
//	P+"r:"+hex(family ID)     string: a refresh family (version, user ID, Expires, data), PXAT its Expires
//	P+"ru:"+hex(user ID)      sorted set: the user's refresh-family IDs (hex), scored by PXAT
//	P+"rl:"+hex(rate key)     string: a rate limiter's TAT, Unix µs in decimal
//	P+"lo:"+hex(lockout key)  string: "failures:locks:lockedUntil:expires", Unix ms in decimal (lockedUntil 0: none)
//	P+"f:"+hex(user ID)       string: the user's factor record (format, kind "f", 8-byte version, data), no TTL
//	P+"c:"+hex(challenge ID)  string: a WebAuthn challenge (format, kind "c", 8-byte Expires in Unix ms, data), PXAT its Expires
//
// Each index expires (PEXPIREAT) with its longest-lived member. User IDs
// appear in keys hex-encoded, so no user ID, whatever bytes it holds, can
// name another user's index or any other key, or carry a cluster hash tag.
// A record holds its user ID, so that a delete can find the index entry to
// remove, and its exact Expires, in a small length-prefixed binary
// encoding. Rate and lockout keys (32 bytes, hashed by package ratelimit)
// appear hex-encoded too, and each lives alone: it has no index. So does
// a factor record, which never expires.
//
// # Round trips and atomicity
//
// GetSession, GetRefreshFamily and GetFactors make one round trip: a GET;
// ResetRate and ResetLockout, a DEL. Every other method makes one too: a Lua script,
// run with EVALSHA (the first call on a server that has not cached the
// script adds an EVAL), which Redis runs atomically. PutSession and
// PutRefreshFamily write the record and its index entry together, refuse
// to give an unexpired record to another user, and are compare-and-swaps
// on the record's version, so of concurrent calls with the same expect
// exactly one succeeds, whichever instance it runs in, and a put that
// expects the version of a record deleted or expired since it was read
// conflicts instead of bringing it back. (A session stored by a release
// before session versions, with version 0 in its record, counts as
// version 1.) DeleteSession and DeleteRefreshFamily read the
// record's user to remove its index entry. ListUserSessions reads the
// index and the sessions it names in the same script, and returns at most
// [storage.MaxSessionsPerUser] sessions, latest expiry first.
// DeleteUserSessions and DeleteUserRefreshFamilies delete every record in
// the index that still belongs to the user, then the index. Redis serves no
// one else while a script runs; the scripts that read an index take time
// in proportion to that user's number of records.
//
// PutFactors and DeleteFactors are compare-and-swaps on the factor
// record's version, each one script (the versions compared as the 8 bytes
// stored, never as Lua numbers): of concurrent puts with the same expect,
// from any number of instances, exactly one succeeds, and a put that
// expects the version of a record deleted since it was read conflicts.
//
// TakeRate reads the key's TAT, decides exactly as [storage.DecideRate]
// and, only when it allows, writes the new TAT; BeginAttempt does the same
// with [storage.DecideAttempt]. Of concurrent calls on one key, from any
// number of instances, no more are allowed or admitted than one after the
// other would be. Each script is a GET, a few integer operations and at
// most a SET, so that a decision costs little more than a plain GET. Lua
// numbers are doubles, exact for integers below 2^53: the bounds in
// package storage (Now before 2201, windows and locks of at most a few
// hundred days) keep every time the scripts compute below that, in
// microseconds too.
//
// Arguments are checked against the bounds in package storage before any
// round trip, and refused with an error wrapping [storage.ErrInvalid].
// Errors start with "redisstore: " and never contain data, IDs or user
// IDs, nor rate or lockout keys.
//
// # Contexts
//
// A method whose context is already done returns the context's error
// without a round trip. Once a call is on the wire, go-redis decides: by
// default it ignores the context and waits up to the client's ReadTimeout
// (3 s unless set); with ContextTimeoutEnabled set in the client's options
// it also stops at the context's deadline, but still not at a
// cancellation without a deadline. When the context has ended by the time
// a call fails, the error matches the context's error (errors.Is) as well
// as go-redis's. A write whose call failed this way may or may not have
// been applied: a compare-and-swap put that returned such an error is
// found out by reading the family again.
//
// # Expiry
//
// Records expire through Redis TTLs: nothing runs in the background. Two
// clocks take part. Whether a record has expired is decided by the Store's
// clock, the wall clock of the process that calls it: GetSession checks the
// Expires it decoded (a GET can use no other clock, and PXAT counts whole
// milliseconds), and every script receives the caller's time, so all of
// one Store's methods agree. Redis deletes the record at its PXAT (Expires
// rounded up to the millisecond, capped at the end of the year 9999) by
// Redis's clock. A record is thus absent once either clock has passed its
// Expires: never later, and earlier by at most the skew between the two
// clocks. Keep the clocks of Redis and of the application's hosts
// synchronised (NTP).
//
// Removing index entries whose record Redis has expired is housekeeping,
// and the scripts do it by Redis's clock (TIME), the clock that expires
// the records: an entry goes only once its record has gone, so
// DeleteUserSessions reaches every session that any instance, however
// slow its clock, may still read.
//
// Rate and lockout states are different: the callers pass their clock in
// each request (Now), and the Store never reads one. A state is set to
// expire a duration after it is written, by Redis's clock: the time from
// the request's Now to the state's TAT (rate limiters, rounded up to the
// millisecond) or Expires (lockouts), plus one second of grace, so that
// where Redis's clock stands does not matter, and instances whose clocks
// differ by less than the grace never find a state gone that their own
// clock says still counts. A state kept longer changes no decision: the
// scripts treat one whose time has passed, by the request's Now, as none.
//
// # Redis Cluster
//
// Redis runs a script only on keys of one cluster slot, and the session
// and refresh-family scripts touch several keys (a record and an index;
// ListUserSessions and the DeleteUser methods, every record an index
// names). With a prefix without a hash tag, such as the default, keys
// spread over slots: this works on a single Redis server and on a primary
// with replicas (Sentinel, through redis.NewFailoverClient), not on a
// Cluster or a *redis.Ring, and [New] refuses those clients. Give them a prefix with a hash tag, such as
// "{keyhold}:": every key of the Store then hashes to the slot of
// "keyhold", and lives on one node. The cluster then provides fail-over,
// not sharding; Stores with different tags ("{keyhold-eu}:",
// "{keyhold-us}:") may live on different nodes. New also refuses a cluster
// client that reads from replicas, which may still serve a session deleted
// a moment ago.
//
// # Security considerations
//
// Records hold only what keyhold has already hashed or sealed: a session or
// family ID is the SHA-256 of a token, never the token, and the data is
// opaque to the store. A copy of Redis (its memory, an RDB or AOF file, its
// traffic) therefore lets no one sign in with a token it holds. It is not
// otherwise protected: anyone who can send commands to the Redis can read,
// list and delete every record, sign everyone out, and write back a record
// copied earlier, undoing a revocation or a refresh-token rotation, or
// giving back a recovery code that was used, or delete a user's factor
// record and with it the user's second factors. Use
// Redis ACLs, TLS (rediss://) and a private network, as for any store of
// sessions.
//
// The same access lets anyone reset every rate limiter and lockout, by
// deleting its key (rate and lockout keys are hashes, so a reader cannot
// tell whose they are without guessing the name hashed).
//
// Redis may also lose writes on its own, and a lost delete brings a
// revoked session back; a lost write of a factor record brings back the
// recovery code it consumed, or the TOTP time step it used, so that the
// code works once more, and a lost or evicted record loses the user's
// second factors; a lost rate or lockout state lets a client in
// again sooner than the limit says. Replication is asynchronous, so a fail-over may
// drop the last writes before it; restoring a snapshot brings back every
// record deleted since. Set maxmemory-policy to noeviction: every key here
// but factor records has a TTL, so the volatile-* policies may evict them
// too (and the allkeys-* ones any key, factor records included), and an evicted
// index hides its user's sessions from DeleteUserSessions (with
// noeviction, writes fail when memory is full, and callers see errors:
// a rate limiter or lockout then refuses, rather than forgetting a state).
//
// # What redisstore does not do
//
// It does not keep vault records. It does not create, configure or close
// the Redis client: addresses, TLS, authentication, pools and timeouts are
// the client's. It does not connect in [New], load its scripts ahead of
// the first call, or run a background goroutine. It does not encrypt
// records beyond what keyhold has sealed, and it does not wait for
// replicas (WAIT) after a write. It needs Redis 6.2 or later, or a server
// compatible with it, with Lua scripting.
package redisstore
