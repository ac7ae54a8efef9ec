package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/rediscluster"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/storage/storagetest"
)

// clusterClient returns a cluster client on c, closed at cleanup.
func clusterClient(t *testing.T, c *rediscluster.Cluster) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// clusterStore returns a Store with a prefix of its own on c's cluster.
func clusterStore(t *testing.T, rdb *redis.ClusterClient) (*redisstore.Store, string) {
	t.Helper()
	prefix := "keyhold-test:" + rand.Text()[:20] + ":"
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return st, prefix
}

// TestClusterConformance runs the storagetest clauses of every interface
// a Store provides against a Redis Cluster of 3 masters with a replica
// each, each clause with a prefix of its own. Long mode only (the suite
// takes about as long as against one server, plus the cluster's start).
func TestClusterConformance(t *testing.T) {
	if !testenv.Long() {
		t.Skip("long mode only (" + testenv.LongEnv + "=1)")
	}
	rdb := clusterClient(t, sharedCluster(t))
	st := func(t *testing.T) *redisstore.Store { s, _ := clusterStore(t, rdb); return s }
	t.Run("SessionStore", func(t *testing.T) {
		storagetest.RunSessionStore(t, func(t *testing.T) storage.SessionStore { return st(t) })
	})
	t.Run("RefreshStore", func(t *testing.T) {
		storagetest.RunRefreshStore(t, func(t *testing.T) storage.RefreshStore { return st(t) })
	})
	t.Run("RateStore", func(t *testing.T) {
		storagetest.RunRateStore(t, func(t *testing.T) storage.RateStore { return st(t) })
	})
	t.Run("LockoutStore", func(t *testing.T) {
		storagetest.RunLockoutStore(t, func(t *testing.T) storage.LockoutStore { return st(t) })
	})
	t.Run("FactorStore", func(t *testing.T) {
		storagetest.RunFactorStore(t, func(t *testing.T) storage.FactorStore { return st(t) })
	})
	t.Run("ChallengeStore", func(t *testing.T) {
		storagetest.RunChallengeStore(t, func(t *testing.T) storage.ChallengeStore { return st(t) })
	})
}

// TestClusterSpread stores, for each of n users, a session, a refresh
// family, a rate state, a lockout state, a factor record and a WebAuthn
// challenge on a cluster of 3 masters, then counts the Store's keys and
// the users' slots on each master: every master must hold some of each,
// none more than half of the keys. It also checks the slots a user's keys
// share, and that everything stored reads back and is deleted, for 2,000
// users. Long mode only: the cluster's start (about 4 s) would be most of
// its time in go test ./...'s two minutes.
func TestClusterSpread(t *testing.T) {
	if !testenv.Long() {
		t.Skip("long mode only (" + testenv.LongEnv + "=1, as in .ci/run): starting a cluster takes seconds of go test ./...'s two minutes")
	}
	c := sharedCluster(t)
	rdb := clusterClient(t, c)
	st, prefix := clusterStore(t, rdb)
	ctx := t.Context()
	const n = 2000

	users := make([]string, n)
	sessions := make([]storage.Session, n)
	families := make([]storage.RefreshFamily, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				if err := fillUser(ctx, st, i, users, sessions, families); err != nil {
					if failed.Add(1) == 1 {
						t.Errorf("user %d: %v", i, err)
					}
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d users failed", failed.Load())
	}

	// A user's keys share one slot; pointers and the other keys have
	// slots of their own.
	u := users[0]
	tag := prefix + "{u:" + hex.EncodeToString([]byte(u)) + "}"
	userSlot := keySlot(t, rdb, tag+"u")
	for _, k := range []string{tag + "s:" + hex.EncodeToString(sessions[0].ID), tag + "r:" + hex.EncodeToString(families[0].ID), tag + "ru"} {
		if s := keySlot(t, rdb, k); s != userSlot {
			t.Errorf("key %s is in slot %d, the user's index in %d", k, s, userSlot)
		}
	}

	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slotMaster, err := slotOwners(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	usersOn := map[string]int{}
	for _, u := range users {
		usersOn[slotMaster[keySlot(t, rdb, prefix+"{u:"+hex.EncodeToString([]byte(u))+"}u")]]++
	}
	keysOn := map[string]int{}
	kinds := map[string]map[string]int{} // master -> kind -> keys
	total := 0
	for _, m := range masters {
		kinds[m] = map[string]int{}
		node := redis.NewClient(&redis.Options{Addr: m})
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keysOn[m]++
			total++
			kinds[m][keyKind(strings.TrimPrefix(iter.Val(), prefix))]++
		}
		err := iter.Err()
		node.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := 10 * n; total != want {
		t.Errorf("the masters hold %d keys under the prefix, want %d (10 a user)", total, want)
	}
	for i, m := range masters {
		t.Logf("master %d: %d of %d users (%.1f%%), %d of %d keys (%.1f%%): %v",
			i+1, usersOn[m], n, 100*float64(usersOn[m])/float64(n), keysOn[m], total, 100*float64(keysOn[m])/float64(total), kinds[m])
		if usersOn[m] == 0 || 2*keysOn[m] > total {
			t.Errorf("master %s holds %d users and %d of %d keys: not spread", m, usersOn[m], keysOn[m], total)
		}
		for _, k := range []string{"session", "family", "rate", "lockout", "factor", "challenge"} {
			if kinds[m][k] == 0 {
				t.Errorf("master %s holds no %s key", m, k)
			}
		}
	}

	// Everything reads back, and goes.
	for i := range n {
		if got, err := st.GetSession(ctx, sessions[i].ID); err != nil || got.UserID != users[i] {
			t.Fatalf("GetSession of user %d: %v", i, err)
		}
		if ids := listIDs(t, st, users[i]); !slices.Equal(ids, hexIDs(sessions[i].ID)) {
			t.Fatalf("ListUserSessions of user %d: %v", i, ids)
		}
		if err := st.DeleteUserSessions(ctx, users[i]); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteRefreshFamily(ctx, families[i].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetSession(ctx, sessions[i].ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetSession after DeleteUserSessions: %v", err)
		}
		if _, err := st.GetRefreshFamily(ctx, families[i].ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetRefreshFamily after DeleteRefreshFamily: %v", err)
		}
	}
}

// fillUser stores user i's records: 10 keys.
func fillUser(ctx context.Context, st *redisstore.Store, i int, users []string, sessions []storage.Session, families []storage.RefreshFamily) error {
	u := fmt.Sprintf("user-%d", i)
	users[i] = u
	sessions[i] = session(u, time.Hour, "s")
	families[i] = storage.RefreshFamily{ID: newID(), UserID: u, Expires: time.Now().Add(time.Hour), Data: []byte("f")}
	if err := st.PutSession(ctx, sessions[i], 0); err != nil {
		return err
	}
	if err := st.PutRefreshFamily(ctx, families[i], 0); err != nil {
		return err
	}
	now := time.Now()
	if _, err := st.TakeRate(ctx, newID(), storage.RateRequest{Now: now, Interval: time.Hour, Burst: 5, Cost: 1}); err != nil {
		return err
	}
	if _, _, err := st.BeginAttempt(ctx, newID(), storage.LockoutRequest{Now: now, MaxFailures: 5, LockFor: time.Minute, MaxLockFor: time.Hour, ForgetAfter: time.Hour}); err != nil {
		return err
	}
	if err := st.PutFactors(ctx, u, []byte("factors"), 0); err != nil {
		return err
	}
	return st.PutChallenge(ctx, storage.Challenge{ID: newID(), Expires: now.Add(time.Minute), Data: []byte("c")})
}

// keyKind names the kind of a key from its layout (the prefix removed).
func keyKind(k string) string {
	switch {
	case strings.HasPrefix(k, "{u:"):
		_, rest, _ := strings.Cut(k, "}")
		switch {
		case strings.HasPrefix(rest, "s:"), rest == "u":
			return "session"
		default:
			return "family"
		}
	case strings.HasPrefix(k, "sp:"):
		return "session"
	case strings.HasPrefix(k, "rp:"):
		return "family"
	case strings.HasPrefix(k, "rl:"):
		return "rate"
	case strings.HasPrefix(k, "lo:"):
		return "lockout"
	case strings.HasPrefix(k, "f:"):
		return "factor"
	case strings.HasPrefix(k, "c:"):
		return "challenge"
	}
	return "other"
}

func keySlot(t *testing.T, rdb *redis.ClusterClient, key string) int64 {
	t.Helper()
	s, err := rdb.ClusterKeySlot(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// slotOwners maps each slot to the address of the master serving it.
func slotOwners(ctx context.Context, rdb *redis.ClusterClient) (map[int64]string, error) {
	shards, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		return nil, err
	}
	out := map[int64]string{}
	for _, sh := range shards {
		var master string
		for _, n := range sh.Nodes {
			if n.Role == "master" {
				master = fmt.Sprintf("%s:%d", n.IP, n.Port)
			}
		}
		for _, r := range sh.Slots {
			for s := r.Start; s <= r.End; s++ {
				out[s] = master
			}
		}
	}
	return out, nil
}

// TestClusterFailover signs users in and out on a cluster of 3 masters
// with a replica each while two of its masters are failed over to their
// replicas (CLUSTER FAILOVER, one after the other): every call must
// succeed or fail with a "redisstore: " error, a session must never be
// read back once a revocation of it (DeleteSession or DeleteUserSessions)
// has succeeded, during the failovers or after, and no write that
// succeeded may be lost (a coordinated failover loses none). Long mode
// only: it starts a cluster of its own and runs for about 10 s.
func TestClusterFailover(t *testing.T) {
	if !testenv.Long() {
		t.Skip("long mode only (" + testenv.LongEnv + "=1)")
	}
	c := rediscluster.Start(t, 3, 1)
	rdb := clusterClient(t, c)
	st, prefix := clusterStore(t, rdb)
	ctx := t.Context()

	type result struct {
		revoked       []storage.Session // revocation succeeded
		live          []storage.Session // put succeeded, not revoked
		ok, errs      int
		acceptedAfter int // revoked sessions read back: must stay 0
	}
	const workers = 4
	results := make([]result, workers)
	stop := make(chan struct{})
	var firstErr sync.Map
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := &results[w]
			note := func(op string, err error) bool {
				if err == nil {
					r.ok++
					return true
				}
				r.errs++
				if !strings.HasPrefix(err.Error(), "redisstore: ") || errors.Is(err, storage.ErrInvalid) {
					t.Errorf("worker %d: %s: unclear error %v", w, op, err)
				}
				firstErr.LoadOrStore(op, err.Error())
				return false
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				user := fmt.Sprintf("fo-%d-%d", w, i%20)
				s := session(user, time.Hour, "x")
				if !note("PutSession", st.PutSession(ctx, s, 0)) {
					continue
				}
				got, err := st.GetSession(ctx, s.ID)
				if err == nil && got.UserID != user {
					t.Errorf("GetSession returned %q's session for %q", got.UserID, user)
				}
				if errors.Is(err, storage.ErrNotFound) {
					t.Errorf("worker %d: a session just stored is not found", w)
				}
				note("GetSession", err)
				var rerr error
				if i%2 == 0 {
					rerr = st.DeleteSession(ctx, s.ID)
				} else {
					rerr = st.DeleteUserSessions(ctx, user)
				}
				if !note("revoke", rerr) {
					r.live = append(r.live, s)
					continue
				}
				r.revoked = append(r.revoked, s)
				if _, err := st.GetSession(ctx, s.ID); err == nil {
					r.acceptedAfter++
					t.Errorf("worker %d: a revoked session was read back", w)
				} else if !errors.Is(err, storage.ErrNotFound) {
					note("GetSession after revoke", err)
				}
			}
		})
	}

	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	time.Sleep(time.Second)
	touched := map[string]bool{}
	pick := func() string {
		masters, err := c.Masters(fctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range masters {
			if !touched[m] {
				return m
			}
		}
		t.Fatalf("no master left to fail over among %v", masters)
		return ""
	}
	for range 2 {
		m := pick()
		start := time.Now()
		next, err := c.Failover(fctx, m)
		if err != nil {
			t.Fatal(err)
		}
		touched[m], touched[next] = true, true
		t.Logf("CLUSTER FAILOVER: %s to its replica %s in %v", m, next, time.Since(start).Round(time.Millisecond))
		time.Sleep(time.Second)
	}
	// Then a crash: the last master untouched is killed (SIGKILL), and
	// its replica takes over once the others see it fail (NodeTimeout).
	m := pick()
	start := time.Now()
	c.Kill(m)
	if err := c.WaitReady(fctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILL: %s killed, its replica serves its slots after %v", m, time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if err := c.WaitReady(fctx); err != nil {
		t.Fatal(err)
	}

	// Check with a client of its own, which reads where the slots are now
	// (the workers' client learns of the crash as its calls fail).
	st, _ = redisstore.New(clusterClient(t, c), redisstore.Config{Prefix: prefix})
	var ok, errs, revoked, live int
	for _, r := range results {
		ok += r.ok
		errs += r.errs
		revoked += len(r.revoked)
		live += len(r.live)
		for _, s := range r.revoked {
			if _, err := st.GetSession(ctx, s.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("after the failovers, GetSession of a revoked session: %v, want ErrNotFound", err)
			}
			for _, id := range listIDs(t, st, s.UserID) {
				if id == hex.EncodeToString(s.ID) {
					t.Errorf("after the failovers, a revoked session is listed")
				}
			}
		}
		for _, s := range r.live {
			// Its revocation failed: it may or may not have been applied.
			if _, err := st.GetSession(ctx, s.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("after the failovers, GetSession: %v", err)
			}
		}
	}
	t.Logf("%d calls succeeded, %d failed with an error; %d sessions revoked, none read back; %d revocations failed", ok, errs, revoked, live)
	firstErr.Range(func(k, v any) bool { t.Logf("first %s error: %s", k, v); return true })
	if revoked == 0 {
		t.Error("no session was revoked")
	}
}

// pauser is a redis.Hook that, once armed, stops the calling goroutine
// after its next command that matches, runs between, and lets it go on:
// a forced interleaving between the round trips of one method.
type pauser struct {
	mu      sync.Mutex
	match   func(cmd redis.Cmder) bool
	between func()
}

func (p *pauser) DialHook(next redis.DialHook) redis.DialHook { return next }
func (p *pauser) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (p *pauser) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		p.mu.Lock()
		match, between := p.match, p.between
		if match != nil && match(cmd) {
			p.match, p.between = nil, nil
		} else {
			between = nil
		}
		p.mu.Unlock()
		if between != nil {
			between()
		}
		return err
	}
}

func (p *pauser) arm(match func(cmd redis.Cmder) bool, between func()) {
	p.mu.Lock()
	p.match, p.between = match, between
	p.mu.Unlock()
}

// onKey matches a command whose first key starts with prefix (the
// pointer's GET, or a script's KEYS[1]).
func onKey(prefix string) func(cmd redis.Cmder) bool {
	return func(cmd redis.Cmder) bool {
		args := cmd.Args()
		switch strings.ToLower(cmd.Name()) {
		case "get":
			return len(args) > 1 && strings.HasPrefix(fmt.Sprint(args[1]), prefix)
		case "evalsha", "eval":
			return len(args) > 3 && strings.HasPrefix(fmt.Sprint(args[3]), prefix)
		}
		return false
	}
}

// TestInterleavedRoundTrips forces the other methods between the round
// trips of one, where the pointer and the record are read or written
// apart (on a cluster, on different nodes): a DeleteUserSessions between
// a put's pointer script and its record script leaves the session stored
// and listed (the put ran after it); a delete between a get's two GETs
// makes the get find nothing; a put of the same ID for another user
// between the two is refused.
func TestInterleavedRoundTrips(t *testing.T) {
	t.Parallel()
	p := &pauser{}
	e := newEnv(t, p)
	other, err := redisstore.New(newClient(t), redisstore.Config{Prefix: e.prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// "Log out everywhere" lands between the put's two scripts.
	s := session("alice", time.Hour, "")
	old := session("alice", time.Hour, "")
	if err := other.PutSession(ctx, old, 0); err != nil {
		t.Fatal(err)
	}
	ran := false
	p.arm(onKey(e.prefix+"sp:"), func() {
		ran = true
		if err := other.DeleteUserSessions(ctx, "alice"); err != nil {
			t.Error(err)
		}
	})
	if err := e.st.PutSession(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("the hook did not run")
	}
	if _, err := e.st.GetSession(ctx, s.ID); err != nil {
		t.Errorf("the session put after DeleteUserSessions: %v", err)
	}
	if _, err := e.st.GetSession(ctx, old.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the session stored before DeleteUserSessions: %v, want ErrNotFound", err)
	}
	if ids := listIDs(t, e.st, "alice"); !slices.Equal(ids, hexIDs(s.ID)) {
		t.Errorf("ListUserSessions = %v, want the session put after DeleteUserSessions", ids)
	}

	// A revocation lands between a get's pointer and its record.
	for name, revoke := range map[string]func() error{
		"DeleteSession":      func() error { return other.DeleteSession(ctx, s.ID) },
		"DeleteUserSessions": func() error { return other.DeleteUserSessions(ctx, "alice") },
	} {
		if err := putOver(ctx, e.st, s); err != nil {
			t.Fatal(err)
		}
		p.arm(onKey(e.prefix+"sp:"), func() {
			if err := revoke(); err != nil {
				t.Error(err)
			}
		})
		if got, err := e.st.GetSession(ctx, s.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetSession with %s between its round trips: %+v, %v; want ErrNotFound", name, got, err)
		}
	}

	// Two users create a session with one ID at once: the second claim
	// is refused, and nothing of it is stored.
	id := newID()
	p.arm(onKey(e.prefix+"sp:"), func() {
		err := other.PutSession(ctx, storage.Session{ID: id, UserID: "mallory", Expires: time.Now().Add(time.Hour)}, 0)
		if !errors.Is(err, redisstore.ErrOtherUser) || !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("PutSession of mallory between alice's scripts: %v, want ErrOtherUser", err)
		}
	})
	if err := e.st.PutSession(ctx, storage.Session{ID: id, UserID: "alice", Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := e.st.GetSession(ctx, id); err != nil || got.UserID != "alice" {
		t.Errorf("GetSession = %+v, %v; want alice's", got, err)
	}
	if e.exists(t, e.sessionKey("mallory", id)) || e.exists(t, e.sessionIndex("mallory")) {
		t.Error("the refused put stored something under mallory's tag")
	}
}
