package totp_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/storage/sqlstore"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// factorStore is what an Authenticator keeps its state in: the users'
// factor records, and the lockout's counters.
type factorStore interface {
	storage.FactorStore
	storage.LockoutStore
}

// A factorBackend gives each test a store of its own: a fresh memstore, a
// SQLite file in the test's temporary directory, a PostgreSQL schema or a
// Redis key prefix of its own (dropped when the test ends).
type factorBackend struct {
	name string
	open func(t *testing.T) factorStore
}

// factorBackends are every adapter. PostgreSQL and Redis need
// KEYHOLD_TEST_POSTGRES_DSN and KEYHOLD_TEST_REDIS_URL: without them their
// cases skip with the reason, and fail when CI=true.
var factorBackends = []factorBackend{
	{"memstore", func(t *testing.T) factorStore {
		return asFactorStore(t, "memstore", memstore.New())
	}},
	{"SQLite", func(t *testing.T) factorStore {
		st, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "keyhold.db"), sqlstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return asFactorStore(t, "sqlstore", st)
	}},
	{"PostgreSQL", func(t *testing.T) factorStore {
		dsn := testenv.Env(t, "KEYHOLD_TEST_POSTGRES_DSN", "DSN of a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		schema := "keyhold_totp_test_" + strings.ToLower(rand.Text())
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
		// 24 connections: the race tests hold back 20 writers at once,
		// and none of them holds a connection while it waits.
		st, err := sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.Config{Schema: schema, MaxOpenConns: 24})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return asFactorStore(t, "sqlstore", st)
	}},
	{"Redis", func(t *testing.T) factorStore {
		url := testenv.Env(t, "KEYHOLD_TEST_REDIS_URL", "URL of a Redis server, e.g. redis://127.0.0.1:6379/0")
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 8)
		rand.Read(b)
		prefix := "keyhold-totp-test-" + hex.EncodeToString(b) + ":"
		t.Cleanup(func() {
			c := redis.NewClient(opt)
			defer c.Close()
			ctx := context.Background()
			keys, _ := c.Keys(ctx, prefix+"*").Result()
			if len(keys) > 0 {
				c.Del(ctx, keys...)
			}
		})
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		st, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return asFactorStore(t, "redisstore", st)
	}},
}

// asFactorStore returns st as a factorStore, or skips t (fails it when
// CI=true) if the adapter does not keep factor records yet. The check is
// made when the test runs, not when it compiles, so that these cases are
// written before every adapter implements storage.FactorStore, and run as
// soon as it does.
func asFactorStore(t *testing.T, adapter string, st any) factorStore {
	t.Helper()
	fs, ok := st.(factorStore)
	if !ok {
		testenv.Missing(t, adapter+" does not implement storage.FactorStore yet")
	}
	return fs
}

// forEachBackend runs test on every adapter, in parallel subtests.
func forEachBackend(t *testing.T, test func(t *testing.T, st factorStore)) {
	for _, b := range factorBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.open(t))
		})
	}
}

// Every adapter keeps what an enrollment stores and gives it back to
// another Authenticator with the same keys (another instance of the app):
// the basic round trip that every test on the adapters relies on.
func TestStoresRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st factorStore) {
		clock := newStepClock()
		f := newAuth(t, st, clock, authOptions{})
		e := f.enroll(t.Context(), "alice")
		other := newAuth(t, st, clock, authOptions{sealer: f.sealer.Sealer})
		if got := other.ids("alice"); len(got) != 1 || got[0] != e.id {
			t.Fatalf("another instance sees %v, want [%s]", got, e.id)
		}
		if err := other.auth.Verify(t.Context(), "alice", other.next(e), noSource); err != nil {
			t.Fatalf("the next step's code on another instance: %v", err)
		}
		if err := other.auth.Delete(t.Context(), "alice"); err != nil {
			t.Fatal(err)
		}
		if got := f.ids("alice"); len(got) != 0 {
			t.Fatalf("after Delete: %v", got)
		}
	})
}
