package ratelimit_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/storage/sqlstore"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// A rateStore keeps both kinds of state.
type rateStore interface {
	storage.RateStore
	storage.LockoutStore
}

// A rateBackend is a store that limiters and lockouts share; open
// returns another connection to the same state, as another instance of
// the application would have.
type rateBackend struct {
	name string
	open func(t *testing.T) func(t *testing.T) rateStore
}

var rateBackends = []rateBackend{
	{"memstore", func(t *testing.T) func(t *testing.T) rateStore {
		st := memstore.New() // one process: the instances share the Store
		return func(*testing.T) rateStore { return st }
	}},
	{"SQLite", func(t *testing.T) func(t *testing.T) rateStore {
		path := filepath.Join(t.TempDir(), "keyhold.db")
		return func(t *testing.T) rateStore {
			st, err := sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
	{"PostgreSQL", func(t *testing.T) func(t *testing.T) rateStore {
		dsn := testenv.Env(t, "KEYHOLD_TEST_POSTGRES_DSN", "DSN of a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		schema := "keyhold_ratelimit_test_" + strings.ToLower(rand.Text())
		t.Cleanup(func() {
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			if _, err := db.Exec(`DROP SCHEMA IF EXISTS "` + schema + `" CASCADE`); err != nil {
				t.Errorf("drop schema: %v", err)
			}
		})
		return func(t *testing.T) rateStore {
			st, err := sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.Config{Schema: schema, MaxOpenConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
	{"Redis", func(t *testing.T) func(t *testing.T) rateStore {
		url := testenv.Env(t, "KEYHOLD_TEST_REDIS_URL", "URL of a Redis server, e.g. redis://127.0.0.1:6379/0")
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 8)
		rand.Read(b)
		prefix := "keyhold-ratelimit-test-" + hex.EncodeToString(b) + ":"
		t.Cleanup(func() {
			c := redis.NewClient(opt)
			defer c.Close()
			ctx := context.Background()
			keys, _ := c.Keys(ctx, prefix+"*").Result()
			if len(keys) > 0 {
				c.Del(ctx, keys...)
			}
		})
		return func(t *testing.T) rateStore {
			c := redis.NewClient(opt)
			t.Cleanup(func() { c.Close() })
			st, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	}},
}

// The limiter's and the lockout's decisions are the same on every store:
// LoginPerIP's sequence and the default policy's growing locks, with a
// clock at the present (Redis keeps keys by its own clock too).
func TestStoresDecide(t *testing.T) {
	for _, b := range rateBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)(t)
			loginSequence(t, st, testkit.NewClock(time.Now().Truncate(time.Second)))
			lockSequence(t, st, testkit.NewClock(time.Now().Truncate(time.Second)))
		})
	}
}

// The requirement: four limiter instances sharing one store (each
// with a connection of its own) admit exactly the limit under 64
// concurrent clients, never more; likewise four lockouts admit exactly
// MaxFailures attempts. Repeated with fresh keys (more rounds with
// KEYHOLD_LONG_TESTS=1).
func TestStoresInstancesShareExactly(t *testing.T) {
	const (
		instances = 4
		clients   = 64
		limit     = 10
	)
	// Every fourth round races the lockouts too: rounds 0 and 4 at least.
	rounds := testenv.Size(t, 5, 20)
	for _, b := range rateBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.open(t)
			c := testkit.NewClock(time.Now().Truncate(time.Millisecond)) // fixed: no unit refills during a round
			var limiters [instances]*ratelimit.Limiter
			var lockouts [instances]*ratelimit.Lockout
			for i := range instances {
				st := open(t)
				limiters[i] = newLimiter(t, st, ratelimit.Rule{Name: "shared", Limit: limit, Period: time.Hour}, c)
				lockouts[i] = newLockout(t, st, ratelimit.LockoutPolicy{MaxFailures: limit}, c)
			}
			for round := range rounds {
				key := fmt.Sprintf("round-%d-%s", round, rand.Text())
				var allowed, admitted atomic.Int64
				var wg sync.WaitGroup
				start := make(chan struct{})
				for g := range clients {
					wg.Go(func() {
						<-start
						d, err := limiters[g%instances].Allow(t.Context(), key)
						if err != nil {
							t.Errorf("Allow: %v", err)
						}
						if d.Allowed {
							allowed.Add(1)
						}
						if round%4 != 0 {
							return
						}
						att, err := lockouts[g%instances].Begin(t.Context(), key, ratelimit.Source{})
						switch {
						case err == nil:
							admitted.Add(1)
							att.Failed(t.Context())
						case !errors.Is(err, ratelimit.ErrLocked):
							t.Errorf("Begin: %v", err)
						}
					})
				}
				close(start)
				wg.Wait()
				if allowed.Load() != limit {
					t.Fatalf("round %d: %d of %d concurrent requests on %d instances allowed, want exactly %d", round, allowed.Load(), clients, instances, limit)
				}
				if round%4 == 0 && admitted.Load() != limit {
					t.Fatalf("round %d: %d of %d concurrent attempts on %d lockouts admitted, want exactly %d", round, admitted.Load(), clients, instances, limit)
				}
			}
		})
	}
}
