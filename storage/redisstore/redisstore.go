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
	// printable ASCII (space to tilde). Stores whose prefixes differ, and
	// neither of which is a prefix of the other, never touch each other's
	// keys. A Redis Cluster (or a *redis.Ring) needs a hash tag in the
	// prefix, such as "{keyhold}:": see the package documentation.
	Prefix string
}

// A Store keeps sessions and refresh-token families in Redis. It is safe
// for concurrent use, and holds no state of its own besides its
// configuration: any number of Stores, in any number of processes, may
// share one Redis with the same prefix.
type Store struct {
	client redis.UniversalClient

	sessionPrefix      string // prefix + "s:", then hex of the session ID
	sessionIndexPrefix string // prefix + "u:", then hex of the user ID
	refreshPrefix      string // prefix + "r:", then hex of the family ID
	refreshIndexPrefix string // prefix + "ru:", then hex of the user ID
	ratePrefix         string // prefix + "rl:", then hex of the rate key
	lockoutPrefix      string // prefix + "lo:", then hex of the lockout key
	factorPrefix       string // prefix + "f:", then hex of the user ID
	challengePrefix    string // prefix + "c:", then hex of the challenge ID
}

// New returns a Store that keeps its records in client under cfg.Prefix.
// It makes no connection: the first method call does. The client stays the
// caller's: the Store never closes it.
//
// New refuses a nil client and an invalid prefix. It refuses a
// *redis.ClusterClient or a *redis.Ring unless the prefix holds a hash
// tag, because the Store's scripts touch several keys at once; and it
// refuses a *redis.ClusterClient that reads from replicas (ReadOnly,
// RouteByLatency, RouteRandomly), from which a session deleted a moment
// ago could still be read.
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
	switch c := client.(type) {
	case *redis.ClusterClient:
		if !hasHashTag(prefix) {
			return nil, fmt.Errorf("redisstore: a cluster client needs a hash tag in the prefix (such as %q), so that each script's keys share a slot", "{keyhold}:")
		}
		if o := c.Options(); o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			return nil, errors.New("redisstore: the cluster client reads from replicas (ReadOnly, RouteByLatency or RouteRandomly), which may still return a deleted session")
		}
	case *redis.Ring:
		if !hasHashTag(prefix) {
			return nil, fmt.Errorf("redisstore: a ring client needs a hash tag in the prefix (such as %q), so that each script's keys share a shard", "{keyhold}:")
		}
	}
	return &Store{
		client:             client,
		sessionPrefix:      prefix + "s:",
		ratePrefix:         prefix + "rl:",
		lockoutPrefix:      prefix + "lo:",
		sessionIndexPrefix: prefix + "u:",
		refreshPrefix:      prefix + "r:",
		refreshIndexPrefix: prefix + "ru:",
		factorPrefix:       prefix + "f:",
		challengePrefix:    prefix + "c:",
	}, nil
}

// hasHashTag reports whether every key that starts with prefix has its
// cluster slot set by a hash tag within prefix: the first "{" is followed,
// later in prefix, by a "}" with at least one byte between them (the rule
// of Redis Cluster and of go-redis's Ring).
func hasHashTag(prefix string) bool {
	s := strings.IndexByte(prefix, '{')
	if s < 0 {
		return false
	}
	return strings.IndexByte(prefix[s+1:], '}') > 0
}

// ---- Sessions ----

// GetSession returns the session with this ID, or [storage.ErrNotFound] if
// there is none or its Expires is not after the Store's clock. It makes
// one round trip: a GET.
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
	now := clock()
	v, err := st.client.Get(ctx, st.sessionPrefix+hex.EncodeToString(id)).Result()
	if errors.Is(err, redis.Nil) {
		return storage.Session{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Session{}, callError(ctx, "get session", err)
	}
	r, err := decodeRecord(kindSession, v)
	if err != nil {
		return storage.Session{}, err
	}
	if !r.expires.After(now) {
		return storage.Session{}, storage.ErrNotFound
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
// otherwise it stores nothing and returns [storage.ErrConflict]. Changing
// an unexpired session's user returns an error wrapping
// [storage.ErrInvalid] and changes nothing, even when s.Expires has
// passed. A session whose Expires is not after the Store's clock is not
// stored: a successful put deletes it instead.
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
	status, err := st.put(ctx, kindSession, s.ID, s.UserID, s.Expires, s.Data, expect)
	if err != nil {
		return callError(ctx, "put session", err)
	}
	switch status {
	case statusOK:
		return nil
	case statusOtherUser:
		return fmt.Errorf("redisstore: %w: the session belongs to another user", storage.ErrInvalid)
	case statusConflict:
		return storage.ErrConflict
	default:
		return fmt.Errorf("redisstore: put session: unexpected script status %d", status)
	}
}

// DeleteSession removes the session with this ID and its entry in its
// user's index, in one script. Deleting a session that does not exist
// returns nil.
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
	if err := st.delete(ctx, kindSession, id); err != nil {
		return callError(ctx, "delete session", err)
	}
	return nil
}

// ListUserSessions returns the user's unexpired sessions, latest expiry
// first, at most [storage.MaxSessionsPerUser] of them, or an empty slice.
// It makes one round trip (a script), which also drops from the index the
// entries whose session is gone.
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
	res, err := listScript.Run(ctx, st.client,
		[]string{st.sessionIndexPrefix + hex.EncodeToString([]byte(userID))},
		st.sessionPrefix, userID,
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

// DeleteUserSessions removes every session in the user's index (that
// still belongs to the user) and the index, in one script.
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
// is none or its Expires is not after the Store's clock. It makes one
// round trip: a GET.
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
	now := clock()
	v, err := st.client.Get(ctx, st.refreshPrefix+hex.EncodeToString(id)).Result()
	if errors.Is(err, redis.Nil) {
		return storage.RefreshFamily{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.RefreshFamily{}, callError(ctx, "get refresh family", err)
	}
	r, err := decodeRecord(kindRefresh, v)
	if err != nil {
		return storage.RefreshFamily{}, err
	}
	if !r.expires.After(now) {
		return storage.RefreshFamily{}, storage.ErrNotFound
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
// [storage.ErrConflict]. Changing an unexpired family's user returns an
// error wrapping [storage.ErrInvalid]. A family whose Expires is not after
// the Store's clock is not stored: a successful put deletes it instead.
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
	status, err := st.put(ctx, kindRefresh, f.ID, f.UserID, f.Expires, f.Data, expect)
	if err != nil {
		return callError(ctx, "put refresh family", err)
	}
	switch status {
	case statusOK:
		return nil
	case statusOtherUser:
		return fmt.Errorf("redisstore: %w: the refresh family belongs to another user", storage.ErrInvalid)
	case statusConflict:
		return storage.ErrConflict
	default:
		return fmt.Errorf("redisstore: put refresh family: unexpected script status %d", status)
	}
}

// DeleteRefreshFamily removes the family and its entry in its user's
// index, in one script. Deleting one that does not exist returns nil.
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
	if err := st.delete(ctx, kindRefresh, id); err != nil {
		return callError(ctx, "delete refresh family", err)
	}
	return nil
}

// DeleteUserRefreshFamilies removes every family in the user's index
// (that still belongs to the user) and the index, in one script.
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

// keys returns the record key prefix and the index key prefix of kind.
func (st *Store) keys(kind byte) (record, index string) {
	if kind == kindRefresh {
		return st.refreshPrefix, st.refreshIndexPrefix
	}
	return st.sessionPrefix, st.sessionIndexPrefix
}

// put runs putScript, a compare-and-swap on the expected version;
// version expect+1 is written into the record.
func (st *Store) put(ctx context.Context, kind byte, id []byte, userID string, expires time.Time, data []byte, expect uint64) (int64, error) {
	now := clock()
	past := "0"
	if !expires.After(now) || expires.Unix() < 0 {
		past = "1"
	}
	version := expect + 1
	expectArg := string(binary.BigEndian.AppendUint64(nil, expect))
	recordPrefix, indexPrefix := st.keys(kind)
	member := hex.EncodeToString(id)
	return putScript.Run(ctx, st.client,
		[]string{recordPrefix + member, indexPrefix + hex.EncodeToString([]byte(userID))},
		string(kind),
		encodeRecord(kind, version, expires, userID, data),
		strconv.FormatInt(expiryMillis(expires), 10),
		now.Unix(), now.Nanosecond(),
		member, userID, indexPrefix, expectArg, past,
	).Int64()
}

func (st *Store) delete(ctx context.Context, kind byte, id []byte) error {
	recordPrefix, indexPrefix := st.keys(kind)
	member := hex.EncodeToString(id)
	return deleteScript.Run(ctx, st.client, []string{recordPrefix + member}, string(kind), member, indexPrefix).Err()
}

func (st *Store) deleteUser(ctx context.Context, kind byte, userID string) error {
	recordPrefix, indexPrefix := st.keys(kind)
	return deleteUserScript.Run(ctx, st.client,
		[]string{indexPrefix + hex.EncodeToString([]byte(userID))},
		string(kind), recordPrefix, userID,
	).Err()
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
