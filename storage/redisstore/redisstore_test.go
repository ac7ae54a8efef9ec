package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/storage/storagetest"
)

const redisEnv = "KEYHOLD_TEST_REDIS_URL"

// ---- Helpers ----

// redisURL returns the test server's URL, or skips (fails in CI).
func redisURL(t *testing.T) string {
	t.Helper()
	return testenv.Env(t, redisEnv, "URL of a Redis server (6.2 or later) for the redisstore tests, e.g. redis://127.0.0.1:6379/0")
}

// newClient connects to the test server, with hooks added before first
// use, and closes the client at cleanup.
func newClient(t *testing.T, hooks ...redis.Hook) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatalf("%s: %v", redisEnv, err)
	}
	rdb := redis.NewClient(opt)
	for _, h := range hooks {
		rdb.AddHook(h)
	}
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("%s is set, but the server does not answer: %v", redisEnv, err)
	}
	return rdb
}

// randomPrefix returns a key prefix of the test's own ("keyhold-test:"
// and random base32, which holds no glob character), which cleanup
// empties.
func randomPrefix(t *testing.T) string {
	t.Helper()
	prefix := "keyhold-test:" + rand.Text()[:20] + ":"
	cleanPrefix(t, prefix)
	return prefix
}

// cleanPrefix deletes every key that starts with prefix at cleanup: SCAN
// for prefix* and DEL, on a client of its own (the test's may be closed by
// then). prefix must hold no glob character.
func cleanPrefix(t *testing.T, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		opt, err := redis.ParseURL(redisURL(t))
		if err != nil {
			t.Error(err)
			return
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: scan %s*: %v", prefix, err)
			return
		}
		for c := range slices.Chunk(keys, 500) {
			if err := rdb.Del(ctx, c...).Err(); err != nil {
				t.Errorf("cleanup: del: %v", err)
			}
		}
	})
}

type env struct {
	st     *redisstore.Store
	rdb    *redis.Client
	prefix string
}

// newEnv returns a Store with a prefix of its own, and the raw client it
// uses, for checks behind its back.
func newEnv(t *testing.T, hooks ...redis.Hook) env {
	t.Helper()
	rdb := newClient(t, hooks...)
	prefix := randomPrefix(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return env{st, rdb, prefix}
}

// userTag is the hash tag of a user's sessions, families and indexes.
func (e env) userTag(user string) string {
	return e.prefix + "{u:" + hex.EncodeToString([]byte(user)) + "}"
}
func (e env) sessionKey(user string, id []byte) string {
	return e.userTag(user) + "s:" + hex.EncodeToString(id)
}
func (e env) sessionIndex(user string) string { return e.userTag(user) + "u" }
func (e env) familyKey(user string, id []byte) string {
	return e.userTag(user) + "r:" + hex.EncodeToString(id)
}
func (e env) familyIndex(user string) string { return e.userTag(user) + "ru" }

// sessionPointer and familyPointer are the keys that name a record's user.
func (e env) sessionPointer(id []byte) string { return e.prefix + "sp:" + hex.EncodeToString(id) }
func (e env) familyPointer(id []byte) string  { return e.prefix + "rp:" + hex.EncodeToString(id) }

func (e env) exists(t *testing.T, key string) bool {
	t.Helper()
	n, err := e.rdb.Exists(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func (e env) members(t *testing.T, index string) []string {
	t.Helper()
	m, err := e.rdb.ZRange(t.Context(), index, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// wantExpireAt checks that key expires at want (Unix ms): exactly with
// PEXPIRETIME (Redis 7), or within 100 ms with PTTL on older servers.
func (e env) wantExpireAt(t *testing.T, key string, want int64) {
	t.Helper()
	at, err := e.rdb.Do(t.Context(), "PEXPIRETIME", key).Int64()
	if err == nil {
		if at != want {
			t.Errorf("%s expires at %d, want %d", key, at, want)
		}
		return
	}
	ttl, err := e.rdb.PTTL(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Now().Add(ttl).UnixMilli() - want; d < -100 || d > 100 {
		t.Errorf("%s expires in %v, %d ms from the expected %d", key, ttl, d, want)
	}
}

func newID() []byte {
	id := sha256.Sum256([]byte(rand.Text()))
	return id[:]
}

func hexIDs(ids ...[]byte) []string {
	var out []string
	for _, id := range ids {
		out = append(out, hex.EncodeToString(id))
	}
	slices.Sort(out)
	return out
}

// ceilMS is t in Unix milliseconds, rounded up: a record's PXAT.
func ceilMS(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

func session(user string, ttl time.Duration, data string) storage.Session {
	return storage.Session{ID: newID(), UserID: user, Expires: time.Now().Add(ttl), Data: []byte(data)}
}

func listIDs(t *testing.T, st *redisstore.Store, user string) []string {
	t.Helper()
	ss, err := st.ListUserSessions(t.Context(), user)
	if err != nil {
		t.Fatalf("ListUserSessions(%q): %v", user, err)
	}
	if ss == nil {
		t.Errorf("ListUserSessions(%q) returned nil, want a non-nil slice", user)
	}
	var ids [][]byte
	for _, s := range ss {
		if s.UserID != user {
			t.Errorf("ListUserSessions(%q) returned a session of %q", user, s.UserID)
		}
		ids = append(ids, s.ID)
	}
	return hexIDs(ids...)
}

// recorder is a redis.Hook that records the commands a client sends and
// the round trips it makes (one per command, one per pipeline).
type recorder struct {
	mu         sync.Mutex
	dials      int
	roundTrips int
	cmds       []string
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		r.mu.Lock()
		r.dials++
		r.mu.Unlock()
		return next(ctx, network, addr)
	}
}

func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.mu.Lock()
		r.roundTrips++
		r.cmds = append(r.cmds, cmd.Name())
		r.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.mu.Lock()
		r.roundTrips++
		for _, c := range cmds {
			r.cmds = append(r.cmds, c.Name())
		}
		r.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dials, r.roundTrips, r.cmds = 0, 0, nil
}

func (r *recorder) get() (dials, roundTrips int, cmds []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dials, r.roundTrips, slices.Clone(r.cmds)
}

// ---- Conformance ----

// TestConformance runs the storagetest clauses of the four interfaces a
// Store provides, each clause with a prefix of its own.
func TestConformance(t *testing.T) {
	redisURL(t)  // one skip (or failure in CI) rather than one per clause
	t.Parallel() // each store has a key prefix of its own; most of the time is expiry waits
	t.Run("SessionStore", func(t *testing.T) {
		storagetest.RunSessionStore(t, func(t *testing.T) storage.SessionStore { return newEnv(t).st })
	})
	t.Run("RefreshStore", func(t *testing.T) {
		storagetest.RunRefreshStore(t, func(t *testing.T) storage.RefreshStore { return newEnv(t).st })
	})
	t.Run("RateStore", func(t *testing.T) {
		storagetest.RunRateStore(t, func(t *testing.T) storage.RateStore { return newEnv(t).st })
	})
	t.Run("LockoutStore", func(t *testing.T) {
		storagetest.RunLockoutStore(t, func(t *testing.T) storage.LockoutStore { return newEnv(t).st })
	})
}

// ---- Without a server ----

func TestNewValidatesConfig(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, prefix := range []string{"", "app:", " ~", strings.Repeat("p", redisstore.MaxPrefixLen), "a|b[c]*?:"} {
		if _, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix}); err != nil {
			t.Errorf("New with prefix %q: %v", prefix, err)
		}
	}
	for _, prefix := range []string{strings.Repeat("p", redisstore.MaxPrefixLen+1), "a\x00", "tab\t", "del\x7f", "é:", "line\n", "{keyhold}:", "{", "}", "a{b:", "a}b:", "{}:"} {
		_, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
		if err == nil {
			t.Errorf("New accepted prefix %q", prefix)
		} else if !strings.HasPrefix(err.Error(), "redisstore: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
	if _, err := redisstore.New(nil, redisstore.Config{}); err == nil {
		t.Error("New accepted a nil client")
	}
}

// TestNewOnClusterAndRing: cluster and ring clients take the same
// prefixes as any client (no hash tag needed, no brace allowed); a
// cluster client that reads from replicas is refused.
func TestNewOnClusterAndRing(t *testing.T) {
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cluster.Close()
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	for _, c := range []redis.UniversalClient{cluster, ring} {
		for prefix, ok := range map[string]bool{
			"":              true,
			"keyhold:":      true,
			"app:kh:":       true,
			"{keyhold}:":    false, // the old advice: now refused, the Store tags its keys itself
			"{}keyhold:":    false,
			"keyhold}{x:":   false,
			"app:{kh}{x}:":  false,
			"{keyhold}-eu:": false,
		} {
			_, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
			if ok && err != nil {
				t.Errorf("New(%T, %q): %v", c, prefix, err)
			}
			if !ok && err == nil {
				t.Errorf("New(%T, %q) accepted a prefix with a brace", c, prefix)
			}
		}
	}
	for _, opt := range []*redis.ClusterOptions{
		{Addrs: []string{"127.0.0.1:1"}, ReadOnly: true},
		{Addrs: []string{"127.0.0.1:1"}, RouteByLatency: true},
		{Addrs: []string{"127.0.0.1:1"}, RouteRandomly: true},
	} {
		c := redis.NewClusterClient(opt)
		if _, err := redisstore.New(c, redisstore.Config{}); err == nil {
			t.Errorf("New accepted a cluster client that reads from replicas (%+v)", *opt)
		}
		c.Close()
	}
}

// TestArgumentsCheckedBeforeRoundTrip runs against an address where no
// server listens: a refused argument or a done context must return before
// the client dials.
func TestArgumentsCheckedBeforeRoundTrip(t *testing.T) {
	rec := &recorder{}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	rdb.AddHook(rec)
	defer rdb.Close()
	st, err := redisstore.New(rdb, redisstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id := newID()
	exp := time.Now().Add(time.Hour)
	long := strings.Repeat("u", storage.MaxUserIDLen+1)
	bigData := make([]byte, storage.MaxSessionDataLen+1)

	invalid := map[string]error{}
	for name, idv := range map[string][]byte{"nil": nil, "short": id[:31], "long": append(slices.Clone(id), 0)} {
		_, err := st.GetSession(ctx, idv)
		invalid["GetSession/"+name+"ID"] = err
		invalid["PutSession/"+name+"ID"] = st.PutSession(ctx, storage.Session{ID: idv, UserID: "alice", Expires: exp}, 0)
		invalid["DeleteSession/"+name+"ID"] = st.DeleteSession(ctx, idv)
		_, err = st.GetRefreshFamily(ctx, idv)
		invalid["GetRefreshFamily/"+name+"ID"] = err
		invalid["PutRefreshFamily/"+name+"ID"] = st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: idv, UserID: "alice", Expires: exp}, 0)
		invalid["DeleteRefreshFamily/"+name+"ID"] = st.DeleteRefreshFamily(ctx, idv)
	}
	for name, user := range map[string]string{"empty": "", "long": long} {
		invalid["PutSession/"+name+"User"] = st.PutSession(ctx, storage.Session{ID: id, UserID: user, Expires: exp}, 0)
		_, err := st.ListUserSessions(ctx, user)
		invalid["ListUserSessions/"+name+"User"] = err
		invalid["DeleteUserSessions/"+name+"User"] = st.DeleteUserSessions(ctx, user)
		invalid["PutRefreshFamily/"+name+"User"] = st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: id, UserID: user, Expires: exp}, 0)
		invalid["DeleteUserRefreshFamilies/"+name+"User"] = st.DeleteUserRefreshFamilies(ctx, user)
	}
	invalid["PutSession/bigData"] = st.PutSession(ctx, storage.Session{ID: id, UserID: "alice", Expires: exp, Data: bigData}, 0)
	invalid["PutRefreshFamily/bigData"] = st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: id, UserID: "alice", Expires: exp, Data: bigData}, 0)
	for name, err := range invalid {
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		} else if !strings.HasPrefix(err.Error(), "redisstore: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	dctx, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cctx, context.Canceled}, {dctx, context.DeadlineExceeded}} {
		done := map[string]error{}
		_, done["GetSession"] = st.GetSession(c.ctx, id)
		done["PutSession"] = st.PutSession(c.ctx, storage.Session{ID: id, UserID: "alice", Expires: exp}, 0)
		done["DeleteSession"] = st.DeleteSession(c.ctx, id)
		_, done["ListUserSessions"] = st.ListUserSessions(c.ctx, "alice")
		done["DeleteUserSessions"] = st.DeleteUserSessions(c.ctx, "alice")
		_, done["GetRefreshFamily"] = st.GetRefreshFamily(c.ctx, id)
		done["PutRefreshFamily"] = st.PutRefreshFamily(c.ctx, storage.RefreshFamily{ID: id, UserID: "alice", Expires: exp}, 0)
		done["DeleteRefreshFamily"] = st.DeleteRefreshFamily(c.ctx, id)
		done["DeleteUserRefreshFamilies"] = st.DeleteUserRefreshFamilies(c.ctx, "alice")
		for name, err := range done {
			if !errors.Is(err, c.want) {
				t.Errorf("%s with a done context: %v, want %v", name, err, c.want)
			}
		}
	}

	if dials, trips, cmds := rec.get(); dials != 0 || trips != 0 {
		t.Errorf("refused calls dialled %d times and sent %d round trips (%v), want none", dials, trips, cmds)
	}
}

// TestDeadlineEndsBlockedCall sends calls to a server that never answers:
// with ContextTimeoutEnabled, each returns at its context's deadline, long
// before the client's ReadTimeout, with an error matching
// context.DeadlineExceeded.
func TestDeadlineEndsBlockedCall(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // read nothing, answer nothing
		}
	})
	rdb := redis.NewClient(&redis.Options{
		Addr:                  ln.Addr().String(),
		ContextTimeoutEnabled: true,
		ReadTimeout:           time.Minute,
		WriteTimeout:          time.Minute,
		MaxRetries:            -1,
	})
	defer rdb.Close()
	st, err := redisstore.New(rdb, redisstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func(ctx context.Context) error{
		"GetSession":       func(ctx context.Context) error { _, err := st.GetSession(ctx, newID()); return err },
		"PutSession":       func(ctx context.Context) error { return st.PutSession(ctx, session("alice", time.Hour, ""), 0) },
		"ListUserSessions": func(ctx context.Context) error { _, err := st.ListUserSessions(ctx, "alice"); return err },
		"PutRefreshFamily": func(ctx context.Context) error {
			return st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: newID(), UserID: "alice", Expires: time.Now().Add(time.Hour)}, 0)
		},
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		start := time.Now()
		err := call(ctx)
		cancel()
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%s returned %v after its deadline", name, took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s past its deadline: %v, want an error matching context.DeadlineExceeded", name, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "redisstore: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

// ---- Against a server ----

func TestSessionRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	maxUser := strings.Repeat("é", storage.MaxUserIDLen/2) + "x" // 255 bytes, multi-byte UTF-8
	for name, s := range map[string]storage.Session{
		"plain":    {UserID: "alice", Data: []byte("sealed")},
		"empty":    {UserID: "dave"},
		"allBytes": {UserID: "bob\x00\xff", Data: allBytes},
		"maxData":  {UserID: "carol", Data: bytes.Repeat([]byte{0xa5}, storage.MaxSessionDataLen)},
		"maxUser":  {UserID: maxUser, Data: []byte("x")},
	} {
		t.Run(name, func(t *testing.T) {
			s.ID = newID()
			s.Expires = time.Now().Add(time.Hour)
			in := slices.Clone(s.Data)
			if err := putOver(ctx, e.st, s); err != nil {
				t.Fatalf("PutSession: %v", err)
			}
			if len(s.Data) > 0 {
				s.Data[0] ^= 1 // the store must not have kept the caller's slice
			}
			got, err := e.st.GetSession(ctx, s.ID)
			if err != nil {
				t.Fatalf("GetSession: %v", err)
			}
			if !bytes.Equal(got.ID, s.ID) || got.UserID != s.UserID || !got.Expires.Equal(s.Expires) || !bytes.Equal(got.Data, in) {
				t.Fatalf("GetSession returned %q %q %v (%d bytes), want %q %q %v (%d bytes)",
					hex.EncodeToString(got.ID), got.UserID, got.Expires, len(got.Data),
					hex.EncodeToString(s.ID), s.UserID, s.Expires, len(in))
			}
			if got.Data == nil {
				t.Error("GetSession returned nil Data, want an empty slice")
			}
			if len(got.Data) > 0 {
				got.Data[0] ^= 1
				got.ID[0] ^= 1
				again, err := e.st.GetSession(ctx, s.ID)
				if err != nil || !bytes.Equal(again.Data, in) {
					t.Error("changing a returned slice changed the stored session")
				}
			}
			if ids := listIDs(t, e.st, s.UserID); !slices.Equal(ids, hexIDs(s.ID)) {
				t.Errorf("ListUserSessions = %v, want [%x]", ids, s.ID)
			}
		})
	}
}

// TestKeyLayout checks the documented keys, TTLs and index scores.
func TestKeyLayout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	s := session("alice", time.Hour, "sealed")
	s.Expires = s.Expires.Truncate(time.Millisecond).Add(500 * time.Microsecond)
	if err := putOver(ctx, e.st, s); err != nil {
		t.Fatal(err)
	}
	wantMS := ceilMS(s.Expires)
	if wantMS != s.Expires.Truncate(time.Millisecond).UnixMilli()+1 {
		t.Fatal("ceilMS does not round up")
	}
	score, err := e.rdb.ZScore(ctx, e.sessionIndex("alice"), hex.EncodeToString(s.ID)).Result()
	if err != nil {
		t.Fatalf("index %s: %v", e.sessionIndex("alice"), err)
	}
	if int64(score) != wantMS {
		t.Errorf("index score %v, want %d (Expires in ms, rounded up)", score, wantMS)
	}
	for _, key := range []string{e.sessionKey("alice", s.ID), e.sessionIndex("alice"), e.sessionPointer(s.ID)} {
		e.wantExpireAt(t, key, wantMS)
	}
	if v, err := e.rdb.Get(ctx, e.sessionPointer(s.ID)).Result(); err != nil || v != "\x01p"+string(binary.BigEndian.AppendUint64(nil, uint64(wantMS)))+"alice" {
		t.Errorf("pointer %q (%v), want 0x01 p u64(%d) alice", v, err, wantMS)
	}

	// A put that moves Expires later moves the pointer's expiry with it;
	// one that moves it sooner leaves the pointer's.
	later := s
	later.Expires = s.Expires.Add(time.Hour)
	if err := putOver(ctx, e.st, later); err != nil {
		t.Fatal(err)
	}
	e.wantExpireAt(t, e.sessionPointer(s.ID), ceilMS(later.Expires))
	e.wantExpireAt(t, e.sessionKey("alice", s.ID), ceilMS(later.Expires))
	if err := putOver(ctx, e.st, s); err != nil {
		t.Fatal(err)
	}
	e.wantExpireAt(t, e.sessionPointer(s.ID), ceilMS(later.Expires))
	e.wantExpireAt(t, e.sessionKey("alice", s.ID), wantMS)

	// A longer-lived second session extends the index's expiry; a shorter
	// one leaves it.
	long := session("alice", 2*time.Hour, "")
	short := session("alice", time.Minute, "")
	for _, x := range []storage.Session{long, short} {
		if err := putOver(ctx, e.st, x); err != nil {
			t.Fatal(err)
		}
	}
	e.wantExpireAt(t, e.sessionIndex("alice"), ceilMS(long.Expires)) // its longest-lived member

	f := storage.RefreshFamily{ID: newID(), UserID: "alice", Expires: time.Now().Add(time.Hour), Data: []byte("hash")}
	if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	if !e.exists(t, e.familyKey("alice", f.ID)) || !slices.Equal(e.members(t, e.familyIndex("alice")), hexIDs(f.ID)) {
		t.Errorf("refresh family keys %s and %s not as documented", e.familyKey("alice", f.ID), e.familyIndex("alice"))
	}
	var keys []string
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, strings.TrimPrefix(iter.Val(), e.prefix))
	}
	slices.Sort(keys)
	tag := "{u:" + hex.EncodeToString([]byte("alice")) + "}"
	want := []string{
		"rp:" + hex.EncodeToString(f.ID),
		tag + "r:" + hex.EncodeToString(f.ID),
		tag + "ru",
		tag + "u",
	}
	for _, id := range [][]byte{s.ID, long.ID, short.ID} {
		want = append(want, "sp:"+hex.EncodeToString(id), tag+"s:"+hex.EncodeToString(id))
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys under the prefix:\n%v\nwant\n%v", keys, want)
	}
}

func TestSessionUserChangeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	s := session("alice", time.Hour, "alice's")
	if err := putOver(ctx, e.st, s); err != nil {
		t.Fatal(err)
	}
	for name, expires := range map[string]time.Time{"live": time.Now().Add(time.Hour), "past": time.Now().Add(-time.Hour)} {
		err := putOver(ctx, e.st, storage.Session{ID: s.ID, UserID: "mallory", Expires: expires, Data: []byte("mallory's")})
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: PutSession for another user: %v, want ErrInvalid", name, err)
		}
	}
	got, err := e.st.GetSession(ctx, s.ID)
	if err != nil || got.UserID != "alice" || string(got.Data) != "alice's" {
		t.Errorf("after refused puts: %q %q %v, want alice's session unchanged", got.UserID, got.Data, err)
	}
	if ids := listIDs(t, e.st, "mallory"); len(ids) != 0 {
		t.Errorf("mallory lists %v", ids)
	}
	if e.exists(t, e.sessionIndex("mallory")) {
		t.Error("a refused put created an index")
	}
	// The same user may replace it.
	s.Data = []byte("renewed")
	if err := putOver(ctx, e.st, s); err != nil {
		t.Fatalf("replacing alice's session: %v", err)
	}
	if got, _ := e.st.GetSession(ctx, s.ID); string(got.Data) != "renewed" {
		t.Errorf("replaced session holds %q", got.Data)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	short := session("alice", 200*time.Millisecond, "short")
	long := session("alice", time.Hour, "long")
	for _, s := range []storage.Session{short, long} {
		if err := putOver(ctx, e.st, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.st.GetSession(ctx, short.ID); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	time.Sleep(time.Until(short.Expires) + 50*time.Millisecond)
	if _, err := e.st.GetSession(ctx, short.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSession after expiry: %v, want ErrNotFound", err)
	}
	if e.exists(t, e.sessionKey("alice", short.ID)) {
		t.Error("Redis still holds the expired session: no TTL?")
	}
	if ids := listIDs(t, e.st, "alice"); !slices.Equal(ids, hexIDs(long.ID)) {
		t.Errorf("ListUserSessions = %v, want only the long-lived session", ids)
	}
	if m := e.members(t, e.sessionIndex("alice")); !slices.Equal(m, hexIDs(long.ID)) {
		t.Errorf("index holds %v after a list, want only the live session", m)
	}

	// An index whose sessions have all expired expires too.
	lone := session("bob", 150*time.Millisecond, "")
	if err := putOver(ctx, e.st, lone); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(lone.Expires) + 50*time.Millisecond)
	if e.exists(t, e.sessionIndex("bob")) {
		t.Error("the index of a user whose sessions all expired still exists")
	}
}

// TestExpiryByStoreClock keeps records in Redis past their Expires
// (PERSIST behind the Store's back): the Store must still treat them as
// absent, by its own clock.
func TestExpiryByStoreClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	s := session("alice", 150*time.Millisecond, "")
	f := storage.RefreshFamily{ID: newID(), UserID: "alice", Expires: s.Expires}
	if err := putOver(ctx, e.st, s); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{e.sessionKey("alice", s.ID), e.sessionIndex("alice"), e.familyKey("alice", f.ID), e.familyIndex("alice")} {
		if err := e.rdb.Persist(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Until(s.Expires) + 20*time.Millisecond)
	if !e.exists(t, e.sessionKey("alice", s.ID)) {
		t.Fatal("PERSIST did not keep the session")
	}
	if _, err := e.st.GetSession(ctx, s.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSession of an expired session Redis still holds: %v, want ErrNotFound", err)
	}
	if ids := listIDs(t, e.st, "alice"); len(ids) != 0 {
		t.Errorf("ListUserSessions lists an expired session: %v", ids)
	}
	if _, err := e.st.GetRefreshFamily(ctx, f.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRefreshFamily of an expired family Redis still holds: %v, want ErrNotFound", err)
	}
	// Expired is absent for writes too: another user may take the ID (the
	// old owner's record and index entry, in the old owner's slot, stay
	// until Redis expires them, never listed), and a family starts again
	// at version 1.
	if err := putOver(ctx, e.st, storage.Session{ID: s.ID, UserID: "bob", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Errorf("PutSession over an expired session of another user: %v", err)
	}
	if got, err := e.st.GetSession(ctx, s.ID); err != nil || got.UserID != "bob" {
		t.Errorf("GetSession after bob took the ID: %+v, %v; want bob's", got, err)
	}
	if ids := listIDs(t, e.st, "alice"); len(ids) != 0 {
		t.Errorf("alice lists the ID bob took: %v", ids)
	}
	if err := e.st.DeleteUserSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.GetSession(ctx, s.ID); err != nil {
		t.Errorf("deleting alice's sessions deleted bob's with the same ID: %v", err)
	}
	if err := e.st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: f.ID, UserID: "alice", Expires: time.Now().Add(time.Hour)}, 1); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutRefreshFamily expecting the expired family's version: %v, want ErrConflict", err)
	}
	if err := e.st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: f.ID, UserID: "bob", Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Errorf("PutRefreshFamily expecting 0 over an expired family: %v", err)
	}
	if got, err := e.st.GetRefreshFamily(ctx, f.ID); err != nil || got.Version != 1 || got.UserID != "bob" {
		t.Errorf("GetRefreshFamily = %+v, %v; want bob's, version 1", got, err)
	}
	if err := e.st.DeleteUserRefreshFamilies(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.GetRefreshFamily(ctx, f.ID); err != nil {
		t.Errorf("deleting alice's families deleted bob's with the same ID: %v", err)
	}
}

func TestPutPastExpiresDeletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	s := session("alice", time.Hour, "")
	other := session("alice", time.Hour, "")
	for _, x := range []storage.Session{s, other} {
		if err := putOver(ctx, e.st, x); err != nil {
			t.Fatal(err)
		}
	}
	for _, past := range []time.Time{time.Now().Add(-time.Second), time.Now(), {}, time.Unix(-1e9, 0)} {
		s.Expires = past
		if err := putOver(ctx, e.st, s); err != nil {
			t.Fatalf("PutSession with Expires %v: %v", past, err)
		}
		if _, err := e.st.GetSession(ctx, s.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetSession after a put with Expires %v: %v, want ErrNotFound", past, err)
		}
		if e.exists(t, e.sessionKey("alice", s.ID)) {
			t.Errorf("a put with Expires %v left the key", past)
		}
	}
	if m := e.members(t, e.sessionIndex("alice")); !slices.Equal(m, hexIDs(other.ID)) {
		t.Errorf("index = %v, want only the other session", m)
	}

	f := storage.RefreshFamily{ID: newID(), UserID: "alice", Expires: time.Now().Add(time.Hour)}
	if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	f.Expires = time.Now().Add(-time.Second)
	if err := e.st.PutRefreshFamily(ctx, f, 1); err != nil {
		t.Fatalf("PutRefreshFamily with a past Expires: %v", err)
	}
	if _, err := e.st.GetRefreshFamily(ctx, f.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRefreshFamily after a put with a past Expires: %v, want ErrNotFound", err)
	}
	if e.exists(t, e.familyKey("alice", f.ID)) || e.exists(t, e.familyIndex("alice")) {
		t.Error("a put with a past Expires left the family or its index")
	}
}

func TestFarFutureExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	for _, exp := range []time.Time{
		time.Now().AddDate(100, 0, 0),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(20000, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Unix(math.MaxInt64/2, 999999999),
	} {
		s := storage.Session{ID: newID(), UserID: "alice", Expires: exp}
		if err := putOver(ctx, e.st, s); err != nil {
			t.Errorf("PutSession expiring %v: %v", exp, err)
			continue
		}
		got, err := e.st.GetSession(ctx, s.ID)
		if err != nil || !got.Expires.Equal(exp) {
			t.Errorf("GetSession of a session expiring %v: %v, %v", exp, got.Expires, err)
		}
	}
	if n := len(listIDs(t, e.st, "alice")); n != 4 {
		t.Errorf("ListUserSessions returned %d sessions, want 4", n)
	}
}

func TestDeleteSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	a, b := session("alice", time.Hour, ""), session("alice", time.Hour, "")
	for _, s := range []storage.Session{a, b} {
		if err := putOver(ctx, e.st, s); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // idempotent
		if err := e.st.DeleteSession(ctx, a.ID); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
	}
	if _, err := e.st.GetSession(ctx, a.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSession after delete: %v", err)
	}
	if m := e.members(t, e.sessionIndex("alice")); !slices.Equal(m, hexIDs(b.ID)) {
		t.Errorf("index after DeleteSession = %v, want only the other session", m)
	}
	if err := e.st.DeleteSession(ctx, newID()); err != nil {
		t.Errorf("DeleteSession of a session never stored: %v", err)
	}
	if err := e.st.DeleteSession(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if e.exists(t, e.sessionIndex("alice")) {
		t.Error("the index outlived its last session")
	}
}

func TestListIndexConsistency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var alice []storage.Session
	for range 5 {
		alice = append(alice, session("alice", time.Hour, ""))
	}
	short := session("alice", 150*time.Millisecond, "")
	bob := session("bob", time.Hour, "")
	for _, s := range append(slices.Clone(alice), short, bob) {
		if err := putOver(ctx, e.st, s); err != nil {
			t.Fatal(err)
		}
	}
	if ids := listIDs(t, e.st, "alice"); !slices.Equal(ids, hexIDs(alice[0].ID, alice[1].ID, alice[2].ID, alice[3].ID, alice[4].ID, short.ID)) {
		t.Errorf("ListUserSessions = %v", ids)
	}
	if err := e.st.DeleteSession(ctx, alice[0].ID); err != nil {
		t.Fatal(err)
	}
	// Behind the Store's back, as after eviction or a manual DEL.
	if err := e.rdb.Del(ctx, e.sessionKey("alice", alice[1].ID)).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(short.Expires) + 50*time.Millisecond)
	want := hexIDs(alice[2].ID, alice[3].ID, alice[4].ID)
	if ids := listIDs(t, e.st, "alice"); !slices.Equal(ids, want) {
		t.Errorf("ListUserSessions = %v, want %v", ids, want)
	}
	if m := e.members(t, e.sessionIndex("alice")); !slices.Equal(m, want) {
		t.Errorf("index after a list = %v, want %v (stale entries dropped)", m, want)
	}
	if ids := listIDs(t, e.st, "bob"); !slices.Equal(ids, hexIDs(bob.ID)) {
		t.Errorf("bob's sessions = %v", ids)
	}
	if ids := listIDs(t, e.st, "nobody"); len(ids) != 0 {
		t.Errorf("a user without sessions lists %v", ids)
	}
}

// TestListBound stores more than storage.MaxSessionsPerUser sessions for
// one user: the list returns that many, the latest-expiring first.
func TestListBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	const extra = 20
	base := time.Now().Add(time.Hour)
	var latest []string
	for i := range storage.MaxSessionsPerUser + extra {
		s := storage.Session{ID: newID(), UserID: "alice", Expires: base.Add(time.Duration(i) * time.Second)}
		if err := putOver(ctx, e.st, s); err != nil {
			t.Fatal(err)
		}
		if i >= extra {
			latest = append(latest, hex.EncodeToString(s.ID))
		}
	}
	slices.Sort(latest)
	if ids := listIDs(t, e.st, "alice"); !slices.Equal(ids, latest) {
		t.Errorf("ListUserSessions returned %d sessions, want the %d latest-expiring", len(ids), storage.MaxSessionsPerUser)
	}
	if err := e.st.DeleteUserSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// Nothing stays: neither the records nor their pointers.
	var left, pointers int
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if strings.HasPrefix(iter.Val(), e.prefix+"sp:") {
			pointers++
		} else {
			left++
		}
	}
	if left != 0 || pointers != 0 {
		t.Errorf("%d keys and %d pointers left after DeleteUserSessions, want none", left, pointers)
	}
}

func TestDeleteUserSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var alice []storage.Session
	for range 3 {
		alice = append(alice, session("alice", time.Hour, ""))
	}
	bob := session("bob", time.Hour, "")
	for _, s := range append(slices.Clone(alice), bob) {
		if err := putOver(ctx, e.st, s); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // idempotent
		if err := e.st.DeleteUserSessions(ctx, "alice"); err != nil {
			t.Fatalf("DeleteUserSessions: %v", err)
		}
	}
	for _, s := range alice {
		if _, err := e.st.GetSession(ctx, s.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("alice's session survived DeleteUserSessions: %v", err)
		}
		if e.exists(t, e.sessionKey("alice", s.ID)) {
			t.Error("alice's session key survived DeleteUserSessions")
		}
	}
	if e.exists(t, e.sessionIndex("alice")) {
		t.Error("alice's index survived DeleteUserSessions")
	}
	if _, err := e.st.GetSession(ctx, bob.ID); err != nil {
		t.Errorf("bob's session: %v", err)
	}
	if err := e.st.DeleteUserSessions(ctx, "nobody"); err != nil {
		t.Errorf("DeleteUserSessions of a user without sessions: %v", err)
	}
}

// TestDeleteUserChecksOwner plants a stale entry in alice's index naming
// bob's session (as when an ID expires and is reused): deleting alice's
// sessions must leave bob's alone.
func TestDeleteUserChecksOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	bob := session("bob", time.Hour, "")
	if err := putOver(ctx, e.st, bob); err != nil {
		t.Fatal(err)
	}
	f := storage.RefreshFamily{ID: newID(), UserID: "bob", Expires: time.Now().Add(time.Hour)}
	if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	far := float64(time.Now().Add(time.Hour).UnixMilli())
	e.rdb.ZAdd(ctx, e.sessionIndex("alice"), redis.Z{Score: far, Member: hex.EncodeToString(bob.ID)})
	e.rdb.ZAdd(ctx, e.familyIndex("alice"), redis.Z{Score: far, Member: hex.EncodeToString(f.ID)})
	if ids := listIDs(t, e.st, "alice"); len(ids) != 0 {
		t.Errorf("alice lists bob's session: %v", ids)
	}
	if err := e.st.DeleteUserSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteUserRefreshFamilies(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.GetSession(ctx, bob.ID); err != nil {
		t.Errorf("deleting alice's sessions deleted bob's: %v", err)
	}
	if _, err := e.st.GetRefreshFamily(ctx, f.ID); err != nil {
		t.Errorf("deleting alice's families deleted bob's: %v", err)
	}
}

// TestUserIDsDoNotCollide uses user IDs that would collide if they were
// put in keys raw, or compared loosely.
func TestUserIDsDoNotCollide(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	users := []string{
		"alice", "Alice", "alice ", "alice\x00", "61", "616c696365",
		"x:s:", ":", "{alice}", "}{", "*", "u:alice", "ru:", "\xff\xfe",
	}
	ids := map[string][]byte{}
	for _, u := range users {
		s := session(u, time.Hour, u)
		ids[u] = s.ID
		if err := putOver(ctx, e.st, s); err != nil {
			t.Fatalf("PutSession for %q: %v", u, err)
		}
		if err := e.st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: s.ID, UserID: u, Expires: s.Expires}, 0); err != nil {
			t.Fatalf("PutRefreshFamily for %q: %v", u, err)
		}
	}
	for _, u := range users {
		if got := listIDs(t, e.st, u); !slices.Equal(got, hexIDs(ids[u])) {
			t.Errorf("user %q lists %v, want only its own session", u, got)
		}
	}
	if err := e.st.DeleteUserSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteUserRefreshFamilies(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, u := range users[1:] {
		if _, err := e.st.GetSession(ctx, ids[u]); err != nil {
			t.Errorf("deleting alice's sessions reached %q's: %v", u, err)
		}
		if _, err := e.st.GetRefreshFamily(ctx, ids[u]); err != nil {
			t.Errorf("deleting alice's families reached %q's: %v", u, err)
		}
	}
}

func TestRefreshCompareAndSwap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	f := storage.RefreshFamily{ID: newID(), UserID: "alice", Expires: time.Now().Add(time.Hour), Data: []byte("hash 1"), Version: 99}
	if _, err := e.st.GetRefreshFamily(ctx, f.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetRefreshFamily before any put: %v", err)
	}
	for _, expect := range []uint64{1, 2, math.MaxInt64 + 1, math.MaxUint64} {
		if err := e.st.PutRefreshFamily(ctx, f, expect); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("PutRefreshFamily expecting %d on no family: %v, want ErrConflict", expect, err)
		}
	}
	if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Fatalf("PutRefreshFamily expecting 0: %v", err)
	}
	check := func(version uint64, data string) {
		t.Helper()
		got, err := e.st.GetRefreshFamily(ctx, f.ID)
		if err != nil {
			t.Fatalf("GetRefreshFamily: %v", err)
		}
		if got.Version != version || string(got.Data) != data || got.UserID != "alice" || !bytes.Equal(got.ID, f.ID) || !got.Expires.Equal(f.Expires) {
			t.Fatalf("GetRefreshFamily = version %d, %q, %q; want version %d, %q, alice", got.Version, got.Data, got.UserID, version, data)
		}
	}
	check(1, "hash 1")
	for _, expect := range []uint64{0, 2, math.MaxInt64 + 1, math.MaxUint64} {
		if err := e.st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: f.ID, UserID: "alice", Expires: f.Expires, Data: []byte("stale")}, expect); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("PutRefreshFamily expecting %d on version 1: %v, want ErrConflict", expect, err)
		}
	}
	check(1, "hash 1")
	f.Data = []byte("hash 2")
	if err := e.st.PutRefreshFamily(ctx, f, 1); err != nil {
		t.Fatalf("PutRefreshFamily expecting 1: %v", err)
	}
	check(2, "hash 2")
	if err := e.st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: f.ID, UserID: "mallory", Expires: f.Expires}, 2); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("PutRefreshFamily for another user: %v, want ErrInvalid", err)
	}
	check(2, "hash 2")

	for range 2 {
		if err := e.st.DeleteRefreshFamily(ctx, f.ID); err != nil {
			t.Fatalf("DeleteRefreshFamily: %v", err)
		}
	}
	if _, err := e.st.GetRefreshFamily(ctx, f.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRefreshFamily after delete: %v", err)
	}
	if e.exists(t, e.familyIndex("alice")) {
		t.Error("the family index outlived its only family")
	}
	if err := e.st.PutRefreshFamily(ctx, f, 2); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutRefreshFamily expecting the deleted version: %v, want ErrConflict", err)
	}
	f.Data = []byte("again")
	if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Fatalf("PutRefreshFamily expecting 0 after delete: %v", err)
	}
	check(1, "again")
}

func TestRefreshConcurrentCAS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	const n = 50
	id := newID()
	for expect := range uint64(3) {
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				f := storage.RefreshFamily{ID: id, UserID: "alice", Expires: time.Now().Add(time.Hour), Data: fmt.Appendf(nil, "writer %d", i)}
				errs[i] = e.st.PutRefreshFamily(ctx, f, expect)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("expect %d: writers %d and %d both succeeded", expect, winner, i)
				}
				winner = i
			case !errors.Is(err, storage.ErrConflict):
				t.Fatalf("expect %d: writer %d: %v, want nil or ErrConflict", expect, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("expect %d: no writer succeeded", expect)
		}
		got, err := e.st.GetRefreshFamily(ctx, id)
		if err != nil || got.Version != expect+1 || string(got.Data) != fmt.Sprintf("writer %d", winner) {
			t.Fatalf("expect %d: stored version %d %q (%v), want version %d from writer %d", expect, got.Version, got.Data, err, expect+1, winner)
		}
	}
}

func TestRefreshExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	f := storage.RefreshFamily{ID: newID(), UserID: "alice", Expires: time.Now().Add(150 * time.Millisecond)}
	if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutRefreshFamily(ctx, f, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(f.Expires) + 50*time.Millisecond)
	if _, err := e.st.GetRefreshFamily(ctx, f.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRefreshFamily after expiry: %v, want ErrNotFound", err)
	}
	if e.exists(t, e.familyKey("alice", f.ID)) || e.exists(t, e.familyIndex("alice")) {
		t.Error("Redis still holds the expired family or its index")
	}
	f.Expires = time.Now().Add(time.Hour)
	if err := e.st.PutRefreshFamily(ctx, f, 2); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutRefreshFamily expecting the expired version: %v, want ErrConflict", err)
	}
	if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Errorf("PutRefreshFamily expecting 0 after expiry: %v", err)
	}
}

func TestDeleteUserRefreshFamilies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var alice [][]byte
	for range 3 {
		f := storage.RefreshFamily{ID: newID(), UserID: "alice", Expires: time.Now().Add(time.Hour)}
		if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
			t.Fatal(err)
		}
		alice = append(alice, f.ID)
	}
	bob := storage.RefreshFamily{ID: newID(), UserID: "bob", Expires: time.Now().Add(time.Hour)}
	if err := e.st.PutRefreshFamily(ctx, bob, 0); err != nil {
		t.Fatal(err)
	}
	// Sessions and families are kept apart.
	s := session("alice", time.Hour, "")
	if err := putOver(ctx, e.st, s); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := e.st.DeleteUserRefreshFamilies(ctx, "alice"); err != nil {
			t.Fatalf("DeleteUserRefreshFamilies: %v", err)
		}
	}
	for _, id := range alice {
		if _, err := e.st.GetRefreshFamily(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("alice's family survived: %v", err)
		}
	}
	if e.exists(t, e.familyIndex("alice")) {
		t.Error("alice's family index survived")
	}
	if _, err := e.st.GetRefreshFamily(ctx, bob.ID); err != nil {
		t.Errorf("bob's family: %v", err)
	}
	if _, err := e.st.GetSession(ctx, s.ID); err != nil {
		t.Errorf("alice's session: %v", err)
	}
	// A session and a family may share an ID without meeting.
	f := storage.RefreshFamily{ID: s.ID, UserID: "alice", Expires: time.Now().Add(time.Hour)}
	if err := e.st.PutRefreshFamily(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.GetRefreshFamily(ctx, f.ID); err != nil {
		t.Errorf("DeleteSession deleted the family with the same ID: %v", err)
	}
}

// TestRoundTrips counts what each method sends once the scripts are
// cached: GetSession two GETs (the pointer, the record), PutSession two
// EVALSHAs (the pointer's, which also moves its expiry when a put moves
// Expires past it, and the record's), DeleteSession a GET and an EVALSHA, and
// ListUserSessions and DeleteUserSessions one EVALSHA; the same for
// families.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := newEnv(t, rec)
	ctx := t.Context()
	s := session("alice", time.Hour, "sealed")
	f := storage.RefreshFamily{ID: newID(), UserID: "alice", Expires: time.Now().Add(time.Hour)}
	later := s
	later.Expires = s.Expires.Add(time.Hour)
	calls := []struct {
		name string
		want []string
		call func() error
	}{
		{"PutSession", []string{"evalsha", "evalsha"}, func() error { return e.st.PutSession(ctx, s, 0) }},
		{"GetSession", []string{"get", "get"}, func() error { _, err := e.st.GetSession(ctx, s.ID); return err }},
		{"PutSession/later", []string{"evalsha", "evalsha"}, func() error { return e.st.PutSession(ctx, later, 1) }},
		{"PutSession/same", []string{"evalsha", "evalsha"}, func() error { return e.st.PutSession(ctx, later, 2) }},
		{"ListUserSessions", []string{"evalsha"}, func() error { _, err := e.st.ListUserSessions(ctx, "alice"); return err }},
		{"DeleteSession", []string{"get", "evalsha", "evalsha"}, func() error { return e.st.DeleteSession(ctx, s.ID) }},
		{"DeleteUserSessions", []string{"evalsha"}, func() error { return e.st.DeleteUserSessions(ctx, "alice") }},
		{"PutRefreshFamily", []string{"evalsha", "evalsha"}, func() error { return e.st.PutRefreshFamily(ctx, f, 0) }},
		{"GetRefreshFamily", []string{"get", "get"}, func() error { _, err := e.st.GetRefreshFamily(ctx, f.ID); return err }},
		{"DeleteRefreshFamily", []string{"get", "evalsha", "evalsha"}, func() error { return e.st.DeleteRefreshFamily(ctx, f.ID) }},
		{"DeleteUserRefreshFamilies", []string{"evalsha"}, func() error { return e.st.DeleteUserRefreshFamilies(ctx, "alice") }},
	}
	// Warm up: cache the scripts in the server (a first EVALSHA may be
	// followed by an EVAL) and open the connection.
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	// The same sequence again, each call succeeding again (a put after
	// DeleteUserSessions expects 0 as before: Expires moves later, so the
	// first put of the session extends its pointer this time, in the
	// same two round trips).
	later.Expires = later.Expires.Add(time.Hour)
	s.Expires = later.Expires.Add(-time.Minute)
	calls[0].call = func() error { return e.st.PutSession(ctx, s, 0) }
	for _, c := range calls {
		rec.reset()
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, trips, cmds := rec.get(); trips != len(c.want) || !slices.Equal(cmds, c.want) {
			t.Errorf("%s made %d round trips %v, want %d: %v", c.name, trips, cmds, len(c.want), c.want)
		}
	}
}

// TestScriptsReloaded flushes the server's script cache: the next calls
// must load their scripts again rather than fail.
func TestScriptsReloaded(t *testing.T) {
	e := newEnv(t) // not parallel: SCRIPT FLUSH affects every test
	ctx := t.Context()
	s := session("alice", time.Hour, "")
	if err := putOver(ctx, e.st, s); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ids := listIDs(t, e.st, "alice"); len(ids) != 1 {
		t.Errorf("after SCRIPT FLUSH, ListUserSessions = %v", ids)
	}
	if err := e.st.DeleteSession(ctx, s.ID); err != nil {
		t.Errorf("after SCRIPT FLUSH, DeleteSession: %v", err)
	}
}

// TestForeignValues stores values the Store did not write at its keys
// (records and pointers): reads must fail as infrastructure errors (never
// ErrNotFound) without echoing the value, and deletes of a record must
// still delete it.
func TestForeignValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	const secret = "not-a-keyhold-record-SECRET"
	id, other, hashID, badPtr := newID(), newID(), newID(), newID()
	pointer := func(user string) string {
		return "\x01p" + string(binary.BigEndian.AppendUint64(nil, uint64(time.Now().Add(time.Hour).UnixMilli()))) + user
	}
	e.rdb.Set(ctx, e.sessionPointer(id), pointer("alice"), time.Hour)
	e.rdb.Set(ctx, e.sessionKey("alice", id), secret, time.Hour)
	e.rdb.Set(ctx, e.familyPointer(other), pointer("alice"), time.Hour)
	e.rdb.Set(ctx, e.familyKey("alice", other), secret, time.Hour)
	e.rdb.Set(ctx, e.sessionPointer(hashID), pointer("alice"), time.Hour)
	e.rdb.HSet(ctx, e.sessionKey("alice", hashID), "field", secret)
	e.rdb.Set(ctx, e.sessionPointer(badPtr), secret, time.Hour)
	e.rdb.ZAdd(ctx, e.sessionIndex("alice"), redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: hex.EncodeToString(id)})

	errs := map[string]error{}
	_, errs["GetSession"] = e.st.GetSession(ctx, id)
	_, errs["GetSession/hash"] = e.st.GetSession(ctx, hashID)
	_, errs["GetSession/pointer"] = e.st.GetSession(ctx, badPtr)
	_, errs["GetRefreshFamily"] = e.st.GetRefreshFamily(ctx, other)
	_, errs["ListUserSessions"] = e.st.ListUserSessions(ctx, "alice")
	errs["PutSession"] = e.st.PutSession(ctx, storage.Session{ID: id, UserID: "alice", Expires: time.Now().Add(time.Hour)}, 1)
	errs["PutSession/pointer"] = e.st.PutSession(ctx, storage.Session{ID: badPtr, UserID: "alice", Expires: time.Now().Add(time.Hour)}, 0)
	errs["PutRefreshFamily"] = e.st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: other, UserID: "alice", Expires: time.Now().Add(time.Hour)}, 0)
	errs["DeleteSession/pointer"] = e.st.DeleteSession(ctx, badPtr)
	for name, err := range errs {
		switch {
		case err == nil:
			t.Errorf("%s on a foreign value succeeded", name)
		case errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrInvalid):
			t.Errorf("%s on a foreign value: %v, want an infrastructure error", name, err)
		case strings.Contains(err.Error(), secret):
			t.Errorf("%s: the error echoes the stored value: %v", name, err)
		case !strings.HasPrefix(err.Error(), "redisstore: "):
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
	if err := e.st.DeleteSession(ctx, id); err != nil {
		t.Errorf("DeleteSession of a foreign value: %v", err)
	}
	if err := e.st.DeleteRefreshFamily(ctx, other); err != nil {
		t.Errorf("DeleteRefreshFamily of a foreign value: %v", err)
	}
	if err := e.st.DeleteSession(ctx, hashID); err != nil {
		t.Errorf("DeleteSession of a hash: %v", err)
	}
	if e.exists(t, e.sessionKey("alice", id)) || e.exists(t, e.familyKey("alice", other)) || e.exists(t, e.sessionKey("alice", hashID)) {
		t.Error("a delete left a foreign value in place")
	}
}

// putOver stores s over whatever version of it is stored (0 if none), as
// a writer that has just read it would.
func putOver(ctx context.Context, st *redisstore.Store, s storage.Session) error {
	var expect uint64
	if cur, err := st.GetSession(ctx, s.ID); err == nil {
		expect = cur.Version
	} else if !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrInvalid) {
		return err
	}
	return st.PutSession(ctx, s, expect)
}

// A session record with version 0 (as releases before session versions
// wrote them) reads as version 1, and the compare-and-swap treats it so: a
// put expecting 0 (a new session) conflicts, one expecting 1 replaces it.
// The present layout never writes one (see TestOldLayoutIgnored for what
// happens to records of the layout before per-user hash tags), but the
// scripts still read it so.
func TestLegacySessionRecordIsVersion1(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	id := newID()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	user, data := "alice", "legacy"
	v := []byte{1, 's'}
	v = binary.BigEndian.AppendUint64(v, 0) // no version yet
	v = binary.BigEndian.AppendUint64(v, uint64(exp.Unix()))
	v = binary.BigEndian.AppendUint32(v, 0)
	v = append(v, byte(len(user)))
	v = append(v, user...)
	v = binary.BigEndian.AppendUint32(v, uint32(len(data)))
	v = append(v, data...)
	if err := e.rdb.Set(ctx, e.sessionKey(user, id), v, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	ptr := "\x01p" + string(binary.BigEndian.AppendUint64(nil, uint64(exp.UnixMilli()))) + user
	if err := e.rdb.Set(ctx, e.sessionPointer(id), ptr, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := e.st.GetSession(ctx, id)
	if err != nil || got.Version != 1 || string(got.Data) != data {
		t.Fatalf("GetSession of a legacy record: %+v, %v; want version 1", got, err)
	}
	s := storage.Session{ID: id, UserID: user, Expires: exp, Data: []byte("new")}
	if err := e.st.PutSession(ctx, s, 0); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutSession expecting 0 over a legacy record: %v, want ErrConflict", err)
	}
	if err := e.st.PutSession(ctx, s, 1); err != nil {
		t.Errorf("PutSession expecting 1 over a legacy record: %v", err)
	}
	if got, err := e.st.GetSession(ctx, id); err != nil || got.Version != 2 || string(got.Data) != "new" {
		t.Errorf("after the put: %+v, %v; want version 2", got, err)
	}
}

// TestOldLayoutIgnored writes records as the release before per-user hash
// tags did (P+"s:"+hex(ID), P+"u:"+hex(user), P+"r:", P+"ru:"): the Store
// finds none of them (their users sign in again), never touches them
// (they expire by their TTLs), and a new session with the same ID is
// stored under the new layout. Rate, lockout, factor and challenge keys
// did not change (TestRateKeyLayout, TestFactorKeyAndNoTTL,
// TestChallengeKeyExpiresAtExpires).
func TestOldLayoutIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	id := newID()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	v := []byte{1, 's'}
	v = binary.BigEndian.AppendUint64(v, 3)
	v = binary.BigEndian.AppendUint64(v, uint64(exp.Unix()))
	v = binary.BigEndian.AppendUint32(v, 0)
	v = append(v, 5)
	v = append(v, "alice"...)
	v = binary.BigEndian.AppendUint32(v, 3)
	v = append(v, "old"...)
	old := map[string]string{
		e.prefix + "s:" + hex.EncodeToString(id):               string(v),
		e.prefix + "r:" + hex.EncodeToString(id):               "\x01r" + string(v[2:]),
		e.prefix + "u:" + hex.EncodeToString([]byte("alice")):  "",
		e.prefix + "ru:" + hex.EncodeToString([]byte("alice")): "",
	}
	for k, val := range old {
		var err error
		if val == "" {
			err = e.rdb.ZAdd(ctx, k, redis.Z{Score: float64(exp.UnixMilli()), Member: hex.EncodeToString(id)}).Err()
		} else {
			err = e.rdb.Set(ctx, k, val, time.Hour).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.st.GetSession(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSession of an old-layout session: %v, want ErrNotFound", err)
	}
	if _, err := e.st.GetRefreshFamily(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRefreshFamily of an old-layout family: %v, want ErrNotFound", err)
	}
	if ids := listIDs(t, e.st, "alice"); len(ids) != 0 {
		t.Errorf("ListUserSessions lists old-layout sessions: %v", ids)
	}
	s := storage.Session{ID: id, UserID: "alice", Expires: exp, Data: []byte("new")}
	if err := e.st.PutSession(ctx, s, 0); err != nil {
		t.Fatalf("PutSession with an old-layout session's ID: %v", err)
	}
	if got, err := e.st.GetSession(ctx, id); err != nil || got.Version != 1 || string(got.Data) != "new" {
		t.Errorf("GetSession = %+v, %v; want the new session, version 1", got, err)
	}
	if err := e.st.DeleteUserSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteUserRefreshFamilies(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for k := range old {
		if !e.exists(t, k) {
			t.Errorf("the Store touched old-layout key %s", strings.TrimPrefix(k, e.prefix))
		}
	}
}

// TestPutInThePastLeavesNoPointer: a put whose Expires has passed deletes
// the record, and its pointer too, so that no key is left naming the user
// (an account deletion's dump found such pointers).
func TestPutInThePastLeavesNoPointer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	s := storage.Session{ID: bytes.Repeat([]byte{7}, 32), UserID: "alice", Expires: time.Now().Add(time.Hour), Data: []byte("d")}
	if err := e.st.PutSession(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
	s.Expires = time.Now().Add(-time.Second)
	if err := e.st.PutSession(ctx, s, 1); err != nil {
		t.Fatal(err)
	}
	keys, err := e.rdb.Keys(ctx, e.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys left after a put in the past: %q", keys)
	}
}
