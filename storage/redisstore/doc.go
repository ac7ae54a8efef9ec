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
// With the prefix P ([Config.Prefix], "keyhold:" by default, which may not
// hold "{" or "}") and U = P+"{u:"+hex(user ID)+"}", the user's hash tag:
//
//	P+"sp:"+hex(session ID)   string: the session's pointer (format, kind "p", 8-byte expiry in Unix ms, user ID), PXAT that expiry
//	U+"s:"+hex(session ID)    string: a session (version, user ID, Expires, data), PXAT its Expires
//	U+"u"                     sorted set: the user's session IDs (hex), scored by PXAT
//	P+"rp:"+hex(family ID)    string: a refresh family's pointer, as a session's
//	U+"r:"+hex(family ID)     string: a refresh family (version, user ID, Expires, data), PXAT its Expires
//	U+"ru"                    sorted set: the user's refresh-family IDs (hex), scored by PXAT
//	P+"rl:"+hex(rate key)     string: a rate limiter's TAT, Unix µs in decimal
//	P+"lo:"+hex(lockout key)  string: "failures:locks:lockedUntil:expires", Unix ms in decimal (lockedUntil 0: none)
//	P+"f:"+hex(user ID)       string: the user's factor record (format, kind "f", 8-byte version, data), no TTL
//	P+"c:"+hex(challenge ID)  string: a WebAuthn challenge (format, kind "c", 8-byte Expires in Unix ms, data), PXAT its Expires
//
// A user's sessions, refresh families and both indexes share the hash tag
// {u:hex(user ID)}, and so one cluster slot: every script that reads or
// changes them runs on that slot alone, atomically. Every other key has
// no brace, so Redis Cluster hashes it whole: pointers, rate and lockout
// states, factor records and challenges each land in a slot of their own
// key, and spread over the cluster's nodes. (The last four keep the names
// they had before per-user tags, so that their state, factor records
// above all, which never expire, survives the upgrade: see Upgrading.)
//
// A record's pointer names its user: GetSession, DeleteSession and their
// family counterparts, which receive only the ID, read it to find the
// record. It expires at the latest Expires any put gave the record, never
// before the record. A put claims the ID for its user: while a pointer has
// not expired (by the Store's clock), a put for another user is refused
// with [ErrOtherUser] (and [storage.ErrInvalid]), even if the record was
// deleted since. Deletes leave the pointer, which expires on its own: a
// pointer without a record is found by nothing (its ID is not found).
// IDs are SHA-256 hashes of random tokens, so no two users ever meet on
// one; the rule only keeps a record from moving to another user's slot.
//
// Each index expires (PEXPIREAT) with its longest-lived member. User IDs
// appear in keys hex-encoded, so no user ID, whatever bytes it holds, can
// name another user's keys or any other key, or carry a hash tag of its
// own. A record holds its user ID, and its exact Expires, in a small
// length-prefixed binary encoding. Rate and lockout keys (32 bytes, hashed
// by package ratelimit) appear hex-encoded too, and each lives alone: it
// has no index. So does a factor record, which never expires.
//
// # Round trips and atomicity
//
// The same keys and code serve a single server, a primary with replicas
// and a Redis Cluster, so every client pays what a cluster needs:
//
//	GetSession, GetRefreshFamily            2 round trips: GET the pointer, GET the record
//	PutSession, PutRefreshFamily            2 scripts (pointer, record); 3 with an Expires already past
//	                                        (a conditional delete: then the pointer is deleted too)
//	DeleteSession, DeleteRefreshFamily      3: GET the pointer, a script on the user's slot, a script deleting the pointer
//	ListUserSessions                        1 script on the user's slot
//	DeleteUserSessions, DeleteUser…Families 2: a script on the user's slot, then one pipeline deleting the pointers
//	rate, lockout, factor, challenge calls  1 (a script, a GET, a DEL, a SET or a GETDEL)
//
// The second round trip of a get depends on the first (the pointer names
// the user's slot), so it cannot be pipelined: on a session read, the
// price of sharding is one more round trip to Redis, on every request
// that reads a session. A script is run with EVALSHA (the first call on a
// server that has not cached it adds an EVAL), which Redis runs
// atomically.
//
// PutSession and PutRefreshFamily first run a script on the pointer's
// slot: it refuses an ID that another user holds, claims a free one for a
// put expecting 0, and answers a put expecting a version with a conflict
// when there is no live pointer (so no live record). Then a script on the
// user's slot writes the record and its index entry together, as a
// compare-and-swap on the record's version: of concurrent calls with the
// same expect exactly one succeeds, whichever instance it runs in, and a
// put that expects the version of a record deleted or expired since it
// was read conflicts instead of bringing it back. (A session record with
// version 0, as releases before session versions wrote, counts as version
// 1.) When the record will expire after its pointer, the first script
// moves the pointer's expiry before the record is written, so that a
// pointer never dies before its record, whatever call is lost: a record
// without a live pointer would be found by neither GetSession nor
// DeleteSession, yet listed by ListUserSessions (a device that cannot be
// revoked). A put that then conflicts leaves the pointer's later expiry,
// which keeps nothing alive (a pointer without a record is not found).
//
// DeleteUserSessions and DeleteUserRefreshFamilies delete every record in
// the user's index, then the index, in one script on the user's slot;
// then, as DeleteSession does for its one record, the records' pointers
// that still name the user (a script each, in one pipeline that a cluster
// client splits by slot), so that no key left behind names a deleted
// account's user (a pointer whose delete is lost expires with its record
// at the latest; a pointer without a record is not found).
// Every put of the user's records runs on that slot too, so Redis runs the
// two one after the other: a put racing a "log out everywhere" is either
// deleted by it or stored after it and listed in the index, never a live
// session missing from the index. A deleted record is gone from the slot
// the pointer names, so GetSession never finds it again, and a put that
// expects its version conflicts. ListUserSessions reads the index and the
// sessions it names in the same script, and returns at most
// [storage.MaxSessionsPerUser] sessions, latest expiry first. Redis serves
// no one else on that node while a script runs; the scripts that read an
// index take time in proportion to that user's number of records.
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
// Give [New] a *redis.ClusterClient with the same prefix as any other
// client (or none: the default). Each script touches the keys of one slot
// (see Keys), so the Store works on a cluster unchanged, and its keys
// spread over the cluster's masters: users by their hash tag, the other
// keys by their own. TestClusterSpread stores a session, a family, a rate
// and a lockout state, a factor record and a challenge for each of 2,000
// users (long mode) on a cluster of 3 masters, and logs the users and
// keys each master holds (about a third each). A *redis.Ring spreads the
// same keys over its shards by the same hash tags.
//
// New refuses a cluster client that reads from replicas (ReadOnly,
// RouteByLatency, RouteRandomly), which may still serve a session deleted
// a moment ago. A prefix may not hold "{" or "}": a brace in it would
// change the hash tags (and a prefix with a hash tag, the one-slot layout
// that releases before per-user tags needed on a cluster, would put every
// key back in one slot).
//
// When a master fails over, calls to its slots fail with errors (go-redis
// follows the new master once the cluster has elected it; until then
// calls fail, for about the cluster's node timeout after a crash). A
// coordinated failover (CLUSTER FAILOVER) loses no write; after a crash,
// the writes the replica had not received are lost, as on any Redis with
// asynchronous replication (see Security considerations). The tests run
// the storagetest suite on a cluster of 3 masters with a replica each,
// and sign users in and out while two masters fail over and a third is
// killed: calls succeed or fail with "redisstore: " errors, and no
// revoked session is read again.
//
// # Upgrading from one-slot keys
//
// Releases before per-user hash tags kept a session at P+"s:"+hex(ID) and
// the user's index at P+"u:"+hex(user ID) (families at P+"r:" and
// P+"ru:"), and needed a prefix with a hash tag, such as "{keyhold}:", on
// a cluster. This release reads none of those keys: sessions and refresh
// families stored before the upgrade are not found, and their users sign
// in again; the old keys expire by their TTLs. Rate and lockout states,
// factor records and challenges keep their keys, so they survive the
// upgrade under an unchanged prefix. A cluster deployment must change its
// prefix (New refuses braces): copy its factor records, which never
// expire, to the new prefix first (each P+"f:"+hex key to the same name
// under the new prefix, with DUMP and RESTORE), or its users lose their
// second factors. During a rolling upgrade, a session created by an
// instance of the old release is not found by the new ones. Rolling back
// to the old release brings back the old keys that have not expired,
// including sessions revoked after the upgrade (the new release never
// touched them): delete P+"s:*", P+"u:*", P+"r:*" and P+"ru:*" (those
// globs match no key of the new layout) once the upgrade is done.
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
