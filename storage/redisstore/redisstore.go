package redisstore

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/storage"
)

var (
	_ storage.SessionStore = (*Store)(nil)
	_ storage.RefreshStore = (*Store)(nil)
)

// DefaultPrefix is the key prefix of a [Config] whose Prefix is empty.
const DefaultPrefix = "keyhold:"

// MaxPrefixLen is the longest [Config.Prefix], in bytes.
const MaxPrefixLen = 64

// Config configures a [Store]. The zero value is ready to use.
type Config struct {
	// Prefix is put before every key the Store reads or writes; empty
	// means DefaultPrefix ("keyhold:"). It is 1 to MaxPrefixLen bytes of
	// printable ASCII (space to tilde) other than "{" and "}": the Store
	// puts its own hash tags in its keys (see the package documentation),
	// and a brace in the prefix would change what they hash to. Stores
	// whose prefixes differ, and neither of which is a prefix of the
	// other, never touch each other's keys. The same prefix serves a
	// single server, a primary with replicas and a Redis Cluster.
	Prefix string
}

// A Store keeps sessions and refresh-token families in Redis. It is safe
// for concurrent use, and holds no state of its own besides its
// configuration: any number of Stores, in any number of processes, may
// share one Redis with the same prefix.
type Store struct {
	client redis.UniversalClient

	sessionPointerPrefix string // prefix + "sp:", then hex of the session ID
	refreshPointerPrefix string // prefix + "rp:", then hex of the family ID
	userPrefix           string // prefix + "{u:", then hex of the user ID, "}" and a suffix (userKeys)
	ratePrefix           string // prefix + "rl:", then hex of the rate key
	lockoutPrefix        string // prefix + "lo:", then hex of the lockout key
	factorPrefix         string // prefix + "f:", then hex of the user ID
	challengePrefix      string // prefix + "c:", then hex of the challenge ID
}

// New returns a Store that keeps its records in client under cfg.Prefix.
// It makes no connection: the first method call does. The client stays the
// caller's: the Store never closes it.
//
// New refuses a nil client and an invalid prefix (one holding "{" or "}"
// among them). It refuses a *redis.ClusterClient that reads from replicas
// (ReadOnly, RouteByLatency, RouteRandomly), from which a session deleted
// a moment ago could still be read. Any other client works with the same
// key layout: a single server, a primary with replicas, a Redis Cluster
// (whose nodes share the keys, see the package documentation) or a
// *redis.Ring.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if len(prefix) > MaxPrefixLen {
		return nil, fmt.Errorf("redisstore: prefix is %d bytes, more than %d", len(prefix), MaxPrefixLen)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; c < 0x20 || c > 0x7e {
			return nil, fmt.Errorf("redisstore: prefix byte %d is %#02x, not printable ASCII", i, c)
		}
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, errors.New("redisstore: the prefix holds \"{\" or \"}\": the Store sets its keys' hash tags itself (a prefix with a hash tag, as \"{keyhold}:\" was, is no longer needed on a cluster)")
	}
	if c, ok := client.(*redis.ClusterClient); ok {
		if o := c.Options(); o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			return nil, errors.New("redisstore: the cluster client reads from replicas (ReadOnly, RouteByLatency or RouteRandomly), which may still return a deleted session")
		}
	}
	return &Store{
		client:               client,
		sessionPointerPrefix: prefix + "sp:",
		refreshPointerPrefix: prefix + "rp:",
		userPrefix:           prefix + "{u:",
		ratePrefix:           prefix + "rl:",
		lockoutPrefix:        prefix + "lo:",
		factorPrefix:         prefix + "f:",
		challengePrefix:      prefix + "c:",
	}, nil
}

// userKeys returns the keys of one kind of a user's records, which share
// the user's hash tag, {u:hex(user ID)}, and so one cluster slot: the
// prefix of the records' keys (then hex of the record ID) and the index.
func (st *Store) userKeys(kind byte, userID string) (recordPrefix, index string) {
	tag := st.userPrefix + hex.EncodeToString([]byte(userID)) + "}"
	if kind == kindRefresh {
		return tag + "r:", tag + "ru"
	}
	return tag + "s:", tag + "u"
}

// pointerKey returns the key of the pointer from a record ID to its user.
func (st *Store) pointerKey(kind byte, id []byte) string {
	if kind == kindRefresh {
		return st.refreshPointerPrefix + hex.EncodeToString(id)
	}
	return st.sessionPointerPrefix + hex.EncodeToString(id)
}

// ---- Sessions ----

// GetSession returns the session with this ID, or [storage.ErrNotFound] if
// there is none or its Expires is not after the Store's clock. It makes
// two round trips, two GETs: the session's pointer (which names its
// user), then the session under the user's hash tag.
func (st *Store) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	if st == nil {
		return storage.Session{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.Session{}, err
	}
	if err := checkID(id); err != nil {
		return storage.Session{}, err
	}
	r, err := st.get(ctx, kindSession, id)
	if err != nil {
		return storage.Session{}, err
	}
	return storage.Session{
		ID:      append([]byte{}, id...),
		UserID:  r.userID,
		Version: r.version,
		Expires: r.expires,
		Data:    r.data,
	}, nil
}

// PutSession stores s with version expect+1, and its entry in the user's
// index, if and only if the stored session's version is expect (0 when
// there is no unexpired session), in one compare-and-swap script;
// otherwise it stores nothing and returns [storage.ErrConflict]. Before
// it, a first script claims the session's ID for s.UserID (its pointer):
// an ID whose pointer names another user and has not expired returns an
// error wrapping [ErrOtherUser] and [storage.ErrInvalid] and changes
// nothing, even when s.Expires has passed, and even when that user's
// session was deleted since (see the package documentation). A session
// whose Expires is not after the Store's clock is not stored: a
// successful put deletes it instead. Two round trips.
func (st *Store) PutSession(ctx context.Context, s storage.Session, expect uint64) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkRecord(s.ID, s.UserID, s.Data); err != nil {
		return err
	}
	if expect == math.MaxUint64 {
		// As in PutRefreshFamily.
		return storage.ErrConflict
	}
	return st.put(ctx, kindSession, s.ID, s.UserID, s.Expires, s.Data, expect)
}

// DeleteSession removes the session with this ID and its entry in its
// user's index, in one script, after reading the session's pointer to
// find its user: two round trips. Deleting a session that does not exist
// returns nil. The pointer stays until it expires.
func (st *Store) DeleteSession(ctx context.Context, id []byte) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	return st.delete(ctx, kindSession, id)
}

// ListUserSessions returns the user's unexpired sessions, latest expiry
// first, at most [storage.MaxSessionsPerUser] of them, or an empty slice.
// It makes one round trip (a script on the user's slot), which also drops
// from the index the entries whose session is gone.
func (st *Store) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	if st == nil {
		return nil, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	now := clock()
	recordPrefix, index := st.userKeys(kindSession, userID)
	res, err := listScript.Run(ctx, st.client,
		[]string{index},
		recordPrefix, userID,
		now.Unix(), now.Nanosecond(), now.UnixMilli(), storage.MaxSessionsPerUser,
	).StringSlice()
	if err != nil {
		return nil, callError(ctx, "list user sessions", err)
	}
	if len(res)%2 != 0 {
		return nil, errors.New("redisstore: list user sessions: malformed script reply")
	}
	out := make([]storage.Session, 0, len(res)/2)
	for i := 0; i < len(res); i += 2 {
		id, err := hex.DecodeString(res[i])
		if err != nil || len(id) != storage.SessionIDLen {
			return nil, errors.New("redisstore: list user sessions: malformed index member")
		}
		r, err := decodeRecord(kindSession, res[i+1])
		if err != nil {
			return nil, err
		}
		// The script checked both; checking again costs nothing and keeps
		// a faulty script from handing out another user's session.
		if r.userID != userID || !r.expires.After(now) {
			continue
		}
		out = append(out, storage.Session{ID: id, UserID: r.userID, Version: r.version, Expires: r.expires, Data: r.data})
	}
	return out, nil
}

// DeleteUserSessions removes every session in the user's index and the
// index, in one script on the user's slot, which Redis runs atomically
// with every put of the user's sessions.
func (st *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if err := st.deleteUser(ctx, kindSession, userID); err != nil {
		return callError(ctx, "delete user sessions", err)
	}
	return nil
}

// ---- Refresh-token families ----

// GetRefreshFamily returns the family, or [storage.ErrNotFound] if there
// is none or its Expires is not after the Store's clock. It makes two
// round trips, as GetSession.
func (st *Store) GetRefreshFamily(ctx context.Context, id []byte) (storage.RefreshFamily, error) {
	if st == nil {
		return storage.RefreshFamily{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.RefreshFamily{}, err
	}
	if err := checkID(id); err != nil {
		return storage.RefreshFamily{}, err
	}
	r, err := st.get(ctx, kindRefresh, id)
	if err != nil {
		return storage.RefreshFamily{}, err
	}
	return storage.RefreshFamily{
		ID:      append([]byte{}, id...),
		UserID:  r.userID,
		Version: r.version,
		Expires: r.expires,
		Data:    r.data,
	}, nil
}

// PutRefreshFamily stores f with version expect+1 if and only if the
// stored family's version is expect (0 when there is no unexpired family),
// in one compare-and-swap script; otherwise it stores nothing and returns
// [storage.ErrConflict]. As in PutSession, a first script claims the ID
// for f.UserID, and an ID claimed by another user returns an error
// wrapping [ErrOtherUser] and [storage.ErrInvalid]. A family whose
// Expires is not after the Store's clock is not stored: a successful put
// deletes it instead. Two round trips.
func (st *Store) PutRefreshFamily(ctx context.Context, f storage.RefreshFamily, expect uint64) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkRecord(f.ID, f.UserID, f.Data); err != nil {
		return err
	}
	if expect == math.MaxUint64 {
		// Versions start at 1 and grow by one per write, so none is ever
		// MaxUint64; and expect+1 would wrap to 0.
		return storage.ErrConflict
	}
	return st.put(ctx, kindRefresh, f.ID, f.UserID, f.Expires, f.Data, expect)
}

// DeleteRefreshFamily removes the family and its entry in its user's
// index, as DeleteSession: two round trips. Deleting one that does not
// exist returns nil.
func (st *Store) DeleteRefreshFamily(ctx context.Context, id []byte) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	return st.delete(ctx, kindRefresh, id)
}

// DeleteUserRefreshFamilies removes every family in the user's index and
// the index, in one script on the user's slot.
func (st *Store) DeleteUserRefreshFamilies(ctx context.Context, userID string) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if err := st.deleteUser(ctx, kindRefresh, userID); err != nil {
		return callError(ctx, "delete user refresh families", err)
	}
	return nil
}

// ---- Shared by both kinds ----

// ErrOtherUser is wrapped, with [storage.ErrInvalid], by the error of a
// PutSession or PutRefreshFamily whose record ID belongs to another user:
// its pointer names that user and has not expired. A record never changes
// user: package session never asks it to (it puts a session or family
// again only with the UserID it read from it), and the records of one
// user live under that user's hash tag, which a record cannot leave
// atomically.
var ErrOtherUser = errors.New("the ID belongs to another user")

func what(kind byte) string {
	if kind == kindRefresh {
		return "refresh family"
	}
	return "session"
}

// get reads the record's pointer, then the record under the user's hash
// tag.
func (st *Store) get(ctx context.Context, kind byte, id []byte) (record, error) {
	now := clock()
	user, ok, err := st.readPointer(ctx, kind, id, "get "+what(kind))
	if err != nil || !ok {
		return record{}, err
	}
	recordPrefix, _ := st.userKeys(kind, user)
	v, err := st.client.Get(ctx, recordPrefix+hex.EncodeToString(id)).Result()
	if errors.Is(err, redis.Nil) {
		return record{}, storage.ErrNotFound
	}
	if err != nil {
		return record{}, callError(ctx, "get "+what(kind), err)
	}
	r, err := decodeRecord(kind, v)
	if err != nil {
		return record{}, err
	}
	if r.userID != user {
		return record{}, fmt.Errorf("redisstore: malformed %s record: not its pointer's user", what(kind))
	}
	if !r.expires.After(now) {
		return record{}, storage.ErrNotFound
	}
	return r, nil
}

// readPointer returns the user that the record's pointer names, or
// ok false (and storage.ErrNotFound) when there is no pointer. A pointer
// past its expiry by the Store's clock still names its user: its record,
// if any, is expired, which the caller finds by reading it.
func (st *Store) readPointer(ctx context.Context, kind byte, id []byte, op string) (user string, ok bool, err error) {
	v, err := st.client.Get(ctx, st.pointerKey(kind, id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, storage.ErrNotFound
	}
	if err != nil {
		return "", false, callError(ctx, op, err)
	}
	if len(v) <= pointerHeaderLen || len(v) > pointerHeaderLen+storage.MaxUserIDLen || v[0] != recordFormat || v[1] != kindPointer {
		return "", false, fmt.Errorf("redisstore: malformed %s pointer", what(kind))
	}
	return v[pointerHeaderLen:], true, nil
}

// put reads the ID's pointer with claimScript, on the pointer's slot, which
// writes it for a new record and moves its expiry when the record will
// expire later; then runs putScript on the user's slot, a compare-and-swap
// on the expected version (version expect+1 is written into the record).
// The pointer thus expires no sooner than the record whatever call is
// lost.
func (st *Store) put(ctx context.Context, kind byte, id []byte, userID string, expires time.Time, data []byte, expect uint64) error {
	now := clock()
	past := !expires.After(now) || expires.Unix() < 0
	expMS := expiryMillis(expires)
	op := "put " + what(kind)
	pkey := st.pointerKey(kind, id)
	ptr := encodePointer(expMS, userID)
	ptrExp, err := claimScript.Run(ctx, st.client, []string{pkey},
		userID, ptr, expMS, now.UnixMilli(), flag(past), flag(expect == 0),
	).Int64()
	switch {
	case err != nil:
		return callError(ctx, op, err)
	case ptrExp < 0:
		return fmt.Errorf("redisstore: %w: %w: the %s", storage.ErrInvalid, ErrOtherUser, what(kind))
	case ptrExp == 0 && expect != 0:
		// No live pointer, so no live record: nothing has the version
		// expected.
		return storage.ErrConflict
	case ptrExp == 0:
		// An expired record for an ID without a live record: nothing to
		// store or delete.
		return nil
	}
	recordPrefix, index := st.userKeys(kind, userID)
	member := hex.EncodeToString(id)
	status, err := putScript.Run(ctx, st.client,
		[]string{recordPrefix + member, index},
		string(kind),
		encodeRecord(kind, expect+1, expires, userID, data),
		strconv.FormatInt(expMS, 10),
		now.Unix(), now.Nanosecond(),
		member, userID, string(binary.BigEndian.AppendUint64(nil, expect)), flag(past),
	).Int64()
	if err != nil {
		return callError(ctx, op, err)
	}
	switch status {
	case statusOK:
		if past {
			// The record was deleted: so is its pointer, which no index
			// names and which would otherwise keep the user's ID until
			// it expires.
			if err := deletePointerScript.Run(ctx, st.client, []string{pkey}, userID).Err(); err != nil {
				return callError(ctx, op, err)
			}
		}
	case statusOtherUser:
		return fmt.Errorf("redisstore: %w: %w: the %s", storage.ErrInvalid, ErrOtherUser, what(kind))
	case statusConflict:
		return storage.ErrConflict
	default:
		return fmt.Errorf("redisstore: %s: unexpected script status %d", op, status)
	}
	return nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (st *Store) delete(ctx context.Context, kind byte, id []byte) error {
	op := "delete " + what(kind)
	user, ok, err := st.readPointer(ctx, kind, id, op)
	if !ok {
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}
	recordPrefix, index := st.userKeys(kind, user)
	member := hex.EncodeToString(id)
	if err := deleteScript.Run(ctx, st.client, []string{recordPrefix + member, index}, member).Err(); err != nil {
		return callError(ctx, op, err)
	}
	if err := deletePointerScript.Run(ctx, st.client, []string{st.pointerKey(kind, id)}, user).Err(); err != nil {
		return callError(ctx, op, err)
	}
	return nil
}

// deleteUser deletes the user's records of one kind and their index in one
// script on the user's slot, then their pointers (other slots), so that no
// key left behind names the user. A pointer whose deletion fails expires
// with its record at the latest.
func (st *Store) deleteUser(ctx context.Context, kind byte, userID string) error {
	recordPrefix, index := st.userKeys(kind, userID)
	members, err := deleteUserScript.Run(ctx, st.client, []string{index}, string(kind), recordPrefix, userID).StringSlice()
	if err != nil {
		return err
	}
	ids := make([][]byte, 0, len(members))
	for _, m := range members {
		if id, err := hex.DecodeString(m); err == nil {
			ids = append(ids, id)
		}
	}
	return st.deletePointers(ctx, kind, userID, ids)
}

// deletePointers deletes the pointers of these record IDs that name the
// user, in one pipeline (split by slot on a cluster).
func (st *Store) deletePointers(ctx context.Context, kind byte, userID string, ids [][]byte) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := st.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			deletePointerScript.Eval(ctx, p, []string{st.pointerKey(kind, id)}, userID)
		}
		return nil
	})
	return err
}

// A pointer's value: format (1 byte, recordFormat), kind (1 byte,
// kindPointer), its expiry (8 bytes, Unix ms, big-endian: the latest PXAT
// any put gave the record), the user ID. The key expires (PXAT) then.
const (
	kindPointer      = 'p'
	pointerHeaderLen = 1 + 1 + 8
)

func encodePointer(expMS int64, userID string) []byte {
	b := make([]byte, 0, pointerHeaderLen+len(userID))
	b = append(b, recordFormat, kindPointer)
	b = binary.BigEndian.AppendUint64(b, uint64(expMS))
	return append(b, userID...)
}

// clock is the Store's clock: the wall clock of the process, without the
// monotonic reading, so that it compares with stored times (which have
// none) and with the scripts' view of it by the same rule.
func clock() time.Time { return time.Now().Round(0) }

// maxExpiryMillis caps the PXAT (and index score) of a record: the end of
// the year 9999. Scores are doubles in Redis and numbers are doubles in
// its Lua, so the cap keeps both exact (far below 2^52) and printable
// without an exponent.
var maxExpiryMillis = time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// expiryMillis returns the PXAT of a record that expires at t: t in Unix
// milliseconds rounded up, so that Redis never forgets a record before its
// Expires (the Store's own check makes it absent at Expires exactly),
// capped at maxExpiryMillis.
func expiryMillis(t time.Time) int64 {
	if t.Unix() >= maxExpiryMillis/1000 {
		return maxExpiryMillis
	}
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// callError wraps the error of a call to Redis. If the context ended
// during the call, the error matches the context's error too: go-redis
// reports a deadline that cut a call short (with ContextTimeoutEnabled) as
// an i/o timeout, sometimes a moment before the context's own timer fires.
func callError(ctx context.Context, op string, err error) error {
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redisstore: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// ---- Arguments ----

func checkID(id []byte) error {
	if len(id) != storage.SessionIDLen {
		return fmt.Errorf("redisstore: %w: ID is %d bytes, not storage.SessionIDLen (%d)", storage.ErrInvalid, len(id), storage.SessionIDLen)
	}
	return nil
}

// checkUserID refuses user IDs that keyhold never passes. The ID itself is
// not echoed: it is the caller's to log.
func checkUserID(userID string) error {
	if userID == "" {
		return fmt.Errorf("redisstore: %w: empty user ID", storage.ErrInvalid)
	}
	if len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("redisstore: %w: user ID is %d bytes, more than storage.MaxUserIDLen (%d)", storage.ErrInvalid, len(userID), storage.MaxUserIDLen)
	}
	return nil
}

func checkRecord(id []byte, userID string, data []byte) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if len(data) > storage.MaxSessionDataLen {
		return fmt.Errorf("redisstore: %w: data is %d bytes, more than storage.MaxSessionDataLen (%d)", storage.ErrInvalid, len(data), storage.MaxSessionDataLen)
	}
	return nil
}

// ---- Record encoding ----

// A record's value in Redis, read by the scripts too (see luaPrelude):
//
//	format      1 byte, recordFormat
//	kind        1 byte, kindSession or kindRefresh
//	version     8 bytes (a session stored before session versions has 0,
//	            read as 1)
//	seconds     8 bytes, Expires in Unix seconds
//	nanoseconds 4 bytes, Expires' nanoseconds within the second
//	user length 1 byte (user IDs are at most storage.MaxUserIDLen = 255 bytes)
//	user ID
//	data length 4 bytes
//	data
//
// Integers are unsigned, big-endian.
const (
	recordFormat = 1
	kindSession  = 's'
	kindRefresh  = 'r'
	headerLen    = 1 + 1 + 8 + 8 + 4 + 1
)

// The user ID's length must fit in its one byte.
const _ = uint8(storage.MaxUserIDLen)

type record struct {
	version uint64
	expires time.Time
	userID  string
	data    []byte
}

// encodeRecord encodes a record whose arguments checkRecord accepted, and
// whose expires is after the Unix epoch.
func encodeRecord(kind byte, version uint64, expires time.Time, userID string, data []byte) []byte {
	b := make([]byte, 0, headerLen+len(userID)+4+len(data))
	b = append(b, recordFormat, kind)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(expires.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(expires.Nanosecond()))
	b = append(b, byte(len(userID)))
	b = append(b, userID...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// decodeRecord decodes a value read from Redis. The record's data is a
// fresh copy. Errors say what is wrong, never what the value holds.
func decodeRecord(kind byte, v string) (record, error) {
	what := "session"
	if kind == kindRefresh {
		what = "refresh family"
	}
	malformed := fmt.Errorf("redisstore: malformed %s record", what)
	if len(v) < headerLen || v[0] != recordFormat || v[1] != kind {
		return record{}, malformed
	}
	ulen := int(v[headerLen-1])
	if ulen == 0 || len(v) < headerLen+ulen+4 {
		return record{}, malformed
	}
	dlen := binary.BigEndian.Uint32([]byte(v[headerLen+ulen : headerLen+ulen+4]))
	if uint64(len(v)) != uint64(headerLen+ulen+4)+uint64(dlen) {
		return record{}, malformed
	}
	sec := binary.BigEndian.Uint64([]byte(v[10:18]))
	nsec := binary.BigEndian.Uint32([]byte(v[18:22]))
	if sec > math.MaxInt64 || nsec >= 1e9 {
		return record{}, malformed
	}
	version := binary.BigEndian.Uint64([]byte(v[2:10]))
	if kind == kindSession && version == 0 {
		version = 1 // written before sessions had versions (see putScript)
	}
	return record{
		version: version,
		expires: time.Unix(int64(sec), int64(nsec)),
		userID:  v[headerLen : headerLen+ulen],
		data:    []byte(v[headerLen+ulen+4:]),
	}, nil
}
