package redisstore

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts below run atomically inside Redis (Redis 6.2 or later:
// SET … PXAT and ZRANGE … BYSCORE REV appeared in 6.2). Every script
// touches the keys of one cluster slot only: claimScript a pointer, the
// rate and lockout scripts one key, and the others the keys of one user
// under the user's hash tag, {u:hex(user ID)}: a record and the index
// (KEYS), and the records an index names, which the scripts reach by name
// (Redis allows that for keys of the slot the script runs on).
//
// Two clocks meet here. Whether a record has expired is decided by the
// Store's clock (the Go process's): the caller passes its time as ARGV,
// because GetSession, a plain GET, can use no other. Removing index members
// whose record Redis has expired is housekeeping, done by Redis's clock
// (TIME), the clock that expires the records: an index member is removed
// only once its record is gone, so DeleteUserSessions reaches every record
// that any instance, whatever its clock, may still read.

// luaPrelude is shared by every script: the record layout (as written by
// encodeRecord) and index housekeeping.
const luaPrelude = `
-- Record: format(1) kind(1) version(8) seconds(8) nanoseconds(4)
-- userlen(1) user datalen(4) data, integers big-endian.
local function be(v, i, n)
  local x = 0
  for k = i, i + n - 1 do x = x * 256 + string.byte(v, k) end
  return x
end

-- parse returns the record's owner, expiry (seconds, nanoseconds) and raw
-- 8-byte version, or nil if v is not a record of this kind.
local function parse(v, kind)
  if #v < 28 or string.byte(v, 1) ~= 1 or string.sub(v, 2, 2) ~= kind then
    return nil
  end
  local ulen = string.byte(v, 23)
  if ulen == 0 or #v < 27 + ulen then return nil end
  return string.sub(v, 24, 23 + ulen), be(v, 11, 8), be(v, 19, 4), string.sub(v, 3, 10)
end

local function must_parse(v, kind)
  local owner, s, ns, ver = parse(v, kind)
  if not owner then
    error({err = 'ERR malformed keyhold record'})
  end
  return owner, s, ns, ver
end

-- expired: the expiry (s, ns) is not after the caller's now (nows, nowns).
local function expired(s, ns, nows, nowns)
  return s < nows or (s == nows and ns <= nowns)
end

-- tidy drops the index members whose record Redis has expired (score, the
-- record's PXAT, before Redis's now: Redis expires a key once now > PXAT)
-- and sets the index to expire with its longest-lived member.
local function tidy(index)
  local t = redis.call('TIME')
  local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. string.format('%.0f', nowms))
  local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', index, string.format('%.0f', tonumber(top[2])))
  end
end
`

// Status codes returned by putScript.
const (
	statusOK        = 0
	statusOtherUser = 1
	statusConflict  = 2
)

// claimScript reads, and for a new record (expect 0) claims, a record's
// pointer, in the pointer's own slot, before putScript writes the record
// in the user's: the pointer names the user that GetSession and
// DeleteSession then read the record under.
//
//	KEYS[1] the pointer
//	ARGV[1] user ID
//	ARGV[2] the encoded pointer (user, ARGV[3])
//	ARGV[3] the record's expiry in Unix ms (its PXAT)
//	ARGV[4] the caller's now, Unix ms rounded down
//	ARGV[5] "1" if the record's expiry has passed: write nothing
//	ARGV[6] "1" if the put expects no record (expect 0)
//
// A pointer is live while its expiry is after the caller's now. It returns
// -1 when a live pointer names another user; the live pointer's expiry
// (Unix ms) when it names this user, after moving it to ARGV[3] if the
// record will expire later (and has not expired): the pointer's expiry
// moves before the record is written, never after, so that no lost call
// leaves a record alive past its pointer, found by nothing that reads
// the pointer (GetSession, and DeleteSession, which then could not delete
// it) while its user's index still lists it; 0 when there is no live
// pointer (so no live record either) and it wrote none (a put of an
// expired record, or one that expects a version: it conflicts); and
// ARGV[3] when it wrote the pointer for a new record. A put that then
// conflicts leaves the pointer's later expiry: a pointer may outlive its
// record, never the reverse. It changes nothing but a missing or expired
// pointer, or a live one of this user that expires too soon. A value that
// is not a pointer is an error.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  if #v < 11 or string.byte(v, 1) ~= 1 or string.sub(v, 2, 2) ~= 'p' then
    error({err = 'ERR malformed keyhold pointer'})
  end
  local exp = 0
  for k = 3, 10 do exp = exp * 256 + string.byte(v, k) end
  if exp > tonumber(ARGV[4]) then
    if string.sub(v, 11) ~= ARGV[1] then return -1 end
    if ARGV[5] ~= '1' and tonumber(ARGV[3]) > exp then
      redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
      return tonumber(ARGV[3])
    end
    return exp
  end
end
if ARGV[5] == '1' or ARGV[6] ~= '1' then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
return tonumber(ARGV[3])
`)

// putScript creates or replaces a record and its index member, both under
// the user's hash tag.
//
//	KEYS[1]  the record
//	KEYS[2]  the user's index
//	ARGV[1]  kind: "s" or "r"
//	ARGV[2]  the encoded record
//	ARGV[3]  expiry in Unix ms (PXAT and index score)
//	ARGV[4]  the caller's now, Unix seconds
//	ARGV[5]  the caller's now, nanoseconds
//	ARGV[6]  index member (hex of the ID)
//	ARGV[7]  user ID
//	ARGV[8]  the expected version, 8 bytes (zeros: no live record)
//	ARGV[9]  "1" if the expiry has passed: delete instead of storing
//
// It returns statusOK, statusOtherUser (a live record there names another
// user, which only a value the Store did not write can: nothing changed)
// or statusConflict (the live record's version, zero if none, is not
// ARGV[8]: nothing changed). A deleted or expired record has no version,
// so a put that expects the one it had conflicts.
var putScript = redis.NewScript(luaPrelude + `
local kind, val, expms, member, user, expect, past =
  ARGV[1], ARGV[2], ARGV[3], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local nows, nowns = tonumber(ARGV[4]), tonumber(ARGV[5])

local live_owner, version = nil, string.rep('\0', 8)
local old = redis.call('GET', KEYS[1])
if old then
  local owner, s, ns, ver = must_parse(old, kind)
  if not expired(s, ns, nows, nowns) then
    live_owner, version = owner, ver
    -- A session stored before sessions had versions has 0: it counts
    -- as 1, as decodeRecord reads it, so that no put expecting 0 (a
    -- new session) can replace it.
    if kind == 's' and version == string.rep('\0', 8) then
      version = string.rep('\0', 7) .. '\1'
    end
  end
end
if live_owner and live_owner ~= user then return 1 end
if version ~= expect then return 2 end
if past == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], member)
  return 0
end
redis.call('SET', KEYS[1], val, 'PXAT', expms)
redis.call('ZADD', KEYS[2], expms, member)
tidy(KEYS[2])
return 0
`)

// deleteScript removes a record and its index member, both under the
// user's hash tag.
//
//	KEYS[1] the record
//	KEYS[2] the user's index
//	ARGV[1] index member (hex of the ID)
//
// A value at KEYS[1] that is not a record (not even a string) is deleted
// too: a delete is a revocation, and must not be blocked by what it cannot
// read.
var deleteScript = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`)

// listScript returns a user's unexpired sessions as a flat array of index
// member, record, member, record…, at most ARGV[6] of them, latest expiry
// first, and removes the index members whose record is gone or belongs to
// someone else.
//
//	KEYS[1] the user's session index
//	ARGV[1] the user's session key prefix (then hex of the ID)
//	ARGV[2] user ID
//	ARGV[3] the caller's now, Unix seconds
//	ARGV[4] the caller's now, nanoseconds
//	ARGV[5] the caller's now, Unix ms rounded down
//	ARGV[6] the most sessions to return
var listScript = redis.NewScript(luaPrelude + `
local sprefix, user = ARGV[1], ARGV[2]
local nows, nowns, nowms, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local batch = 100

tidy(KEYS[1])
local out, stale, found, offset = {}, {}, 0, 0
while found < limit do
  -- Members with a score up to the caller's now (in ms, rounded down)
  -- have expired by the caller's clock: skip them.
  local members = redis.call('ZRANGE', KEYS[1], '+inf', '(' .. nowms, 'BYSCORE', 'REV', 'LIMIT', offset, batch)
  if #members == 0 then break end
  local keys = {}
  for i = 1, #members do keys[i] = sprefix .. members[i] end
  local vals = redis.call('MGET', unpack(keys))
  for i = 1, #members do
    local v = vals[i]
    if not v then
      stale[#stale + 1] = members[i]
    else
      local owner, s, ns = must_parse(v, 's')
      if owner ~= user then
        stale[#stale + 1] = members[i]
      elseif found < limit and not expired(s, ns, nows, nowns) then
        found = found + 1
        out[#out + 1] = members[i]
        out[#out + 1] = v
      end
    end
  end
  offset = offset + #members
end
for i = 1, #stale, batch do
  redis.call('ZREM', KEYS[1], unpack(stale, i, math.min(i + batch - 1, #stale)))
end
return out
`)

// deleteUserScript removes every record of one kind in a user's index
// that belongs to the user, then the index. It returns the IDs (hex) of
// the index's members, whose pointers the caller then deletes.
//
//	KEYS[1] the user's index
//	ARGV[1] kind
//	ARGV[2] the user's record key prefix of this kind (then hex of the ID)
//	ARGV[3] user ID
var deleteUserScript = redis.NewScript(luaPrelude + `
local kind, rprefix, user = ARGV[1], ARGV[2], ARGV[3]
local batch = 100
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for i = 1, #members, batch do
  local keys = {}
  for j = i, math.min(i + batch - 1, #members) do keys[#keys + 1] = rprefix .. members[j] end
  local vals = redis.call('MGET', unpack(keys))
  local del = {}
  for j = 1, #keys do
    local v = vals[j]
    if v and parse(v, kind) == user then del[#del + 1] = keys[j] end
  end
  if #del > 0 then redis.call('DEL', unpack(del)) end
end
redis.call('DEL', KEYS[1])
return members
`)

// stateGraceMillis is how long, by Redis's clock, a rate or lockout state
// outlives the time the caller's clock says it may be forgotten (its TAT,
// its Expires). The state's TTL is set relative to the caller's Now, so
// that Redis's own clock, wherever it stands, never shortens it; the grace
// absorbs the skew between the clocks of the instances that share a key
// and the time a call spends between reading its clock and running its
// script. Keeping a state longer changes no decision: the scripts treat a
// state whose time has passed as none.
const stateGraceMillis = 1000

// takeRateScript makes one GCRA decision, exactly as storage.DecideRate,
// in microseconds: the key holds the TAT as a decimal integer. All numbers
// stay below 2^53 (storage bounds Now before 2201 and the window to
// storage.MaxRateWindow), so Lua's doubles are exact. The TTL is the time
// from Now to the new TAT, rounded up to the millisecond (or 1 ms more
// when it is whole), plus stateGraceMillis.
//
//	KEYS[1] the rate key
//	ARGV[1] the caller's now, Unix µs
//	ARGV[2] Cost × Interval, µs
//	ARGV[3] Burst × Interval, µs (the window)
//
// It returns new TAT − now (> 0) when allowed, and now − TAT when refused,
// where TAT is the stored TAT: a refusal implies TAT > now, because
// Cost × Interval never exceeds the window, so the reply is never 0. A
// value that is not a number makes v - now raise an error (never a full
// bucket), which names no value.
//
// Each step costs Redis time on every decision, so the script avoids the
// slow ones: arithmetic on a string (ARGV, which TakeRate always fills
// with decimal integers, and the stored TAT) parses it once, where
// tonumber parses it twice in Lua 5.1; and numbers go to SET as strings
// made by string.format('%d'), because Redis 7.0 formats a Lua number
// argument with printf's "%.17g", which is slower. '%d' truncates, so the
// TTL is floor(n / 1000) + 1 ms, never less than n µs, plus the grace.
var takeRateScript = redis.NewScript(`
local now = ARGV[1] + 0
local v = redis.call('GET', KEYS[1])
local d = 0
if v then d = v - now end
if d < 0 then d = 0 end
local n = d + ARGV[2]
if n > ARGV[3] + 0 then return -d end
redis.call('SET', KEYS[1], string.format('%d', now + n), 'PX', string.format('%d', n / 1000 + ` + strconv.Itoa(1+stateGraceMillis) + `))
return n
`)

// beginAttemptScript counts one attempt, exactly as storage.DecideAttempt,
// in milliseconds. The key holds "failures:locks:lockedUntil:expires" in
// decimal, lockedUntil 0 for none; its TTL is the time from Now to
// expires plus stateGraceMillis.
//
//	KEYS[1] the lockout key
//	ARGV[1] the caller's now, Unix ms
//	ARGV[2] MaxFailures
//	ARGV[3] LockFor, ns
//	ARGV[4] MaxLockFor, ns
//	ARGV[5] ForgetAfter, ms
//
// It returns {admitted (1 or 0), failures, locks, lockedUntil, expires}:
// the new state when admitted, the stored one when refused. The lock's
// length doubles in nanoseconds while below MaxLockFor (at most
// storage.MaxLockoutDuration, below 2^53 ns), so every product is exact,
// and the division that truncates it to milliseconds cannot round up. A
// value that is not such a state is an error, never an account without
// failures.
var beginAttemptScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local f, l, u, e = 0, 0, 0, 0
local v = redis.call('GET', KEYS[1])
if v then
  local a, b, c, x = string.match(v, '^(%d+):(%d+):(%-?%d+):(%-?%d+)$')
  if not a then return redis.error_reply('ERR malformed keyhold lockout state') end
  e = tonumber(x)
  if e > now then f, l, u = tonumber(a), tonumber(b), tonumber(c) else e = 0 end
end
if u ~= 0 and now < u then return {0, f, l, u, e} end
f = f + 1
if f >= tonumber(ARGV[2]) then
  l, f = l + 1, 0
  local d, max = tonumber(ARGV[3]), tonumber(ARGV[4])
  local i = 1
  while i < l and d < max do d, i = d * 2, i + 1 end
  if d > max then d = max end
  u = now + math.floor(d / 1000000)
end
if u > now then e = u else e = now end
e = e + tonumber(ARGV[5])
redis.call('SET', KEYS[1], string.format('%d:%d:%d:%d', f, l, u, e), 'PX', string.format('%d', e - now + ` + strconv.Itoa(stateGraceMillis) + `))
return {1, f, l, u, e}
`)

// refundAttemptScript gives back one attempt's count, exactly as
// storage.DecideRefund, in milliseconds, on a state that
// beginAttemptScript wrote; Expires never changes, and the TTL is set
// again from Now to it plus stateGraceMillis.
//
//	KEYS[1] the lockout key
//	ARGV[1] the caller's now, Unix ms
//	ARGV[2] MaxFailures
//	ARGV[3] the lock the attempt counts towards
//
// It returns {refunded (1 or 0), failures, locks, lockedUntil, expires}:
// the new state when refunded, the stored one when not, all zeros when
// there is no live state. A value that is not such a state is an error.
var refundAttemptScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local v = redis.call('GET', KEYS[1])
if not v then return {0, 0, 0, 0, 0} end
local a, b, c, x = string.match(v, '^(%d+):(%d+):(%-?%d+):(%-?%d+)$')
if not a then return redis.error_reply('ERR malformed keyhold lockout state') end
local e = tonumber(x)
if e <= now then return {0, 0, 0, 0, 0} end
local f, l, u = tonumber(a), tonumber(b), tonumber(c)
local lock = tonumber(ARGV[3])
if l == lock - 1 and f > 0 then
  f = f - 1
elseif l == lock and u ~= 0 and now < u then
  l, f, u = l - 1, tonumber(ARGV[2]) - 1, now
else
  return {0, f, l, u, e}
end
redis.call('SET', KEYS[1], string.format('%d:%d:%d:%d', f, l, u, e), 'PX', string.format('%d', e - now + ` + strconv.Itoa(stateGraceMillis) + `))
return {1, f, l, u, e}
`)

// deletePointerScript deletes a record's pointer if it names the user: a
// pointer another user's put has claimed since is left alone. It returns 1
// if it deleted the pointer.
//
//	KEYS[1] the pointer
//	ARGV[1] user ID
var deletePointerScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 11) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
