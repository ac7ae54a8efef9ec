package sqlstore_test

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
)

// These tests cover RateStore and LockoutStore on both dialects beyond the
// conformance suite: several Stores (as several processes would) deciding
// on one key, the removal of expired rows, and the migration of a database
// made by the previous schema version.

// rkey returns a rate or lockout key (storage.RateKeyLen bytes) made from
// label.
func rkey(label string) []byte {
	h := sha256.Sum256([]byte("sqlstore test rate key\x00" + label))
	return h[:]
}

// openStores returns n Stores on one fresh database of dialect d: for
// SQLite one file, for PostgreSQL one schema, each Store with its own
// connections.
func openStores(t *testing.T, d dialectCase, n int) (stores []*sqlstore.Store, raw *sql.DB, table func(string) string) {
	t.Helper()
	st, reopen, raw, table := d.open(t)
	stores = append(stores, st)
	if d.name == "PostgreSQL" {
		reserveConns(t, (n-1)*testConns) // d.open reserved room for the first and one more
	}
	for range n - 1 {
		s, err := reopen(t)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	return stores, raw, table
}

// 64 goroutines spread over 4 Stores on one database (for SQLite, four
// connections contending for the file's lock through the busy handler;
// for PostgreSQL, four pools on one schema) decide on one key that has no
// state yet: exactly Burst are allowed, exactly MaxFailures admitted.
func TestRateDecisionsAcrossStores(t *testing.T) {
	t.Parallel()
	const (
		goroutines = 64
		nStores    = 4
		burst      = 10
		maxFails   = 7
	)
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			stores, _, _ := openStores(t, d, nStores)
			ctx := t.Context()
			now := time.Now()
			for round := range 3 {
				key := rkey(fmt.Sprint("shared ", round))
				var allowed, admitted atomic.Int64
				errs := raceN(goroutines, func(i int) error {
					st := stores[i%nStores]
					res, err := st.TakeRate(ctx, key, storage.RateRequest{Now: now, Interval: time.Minute, Burst: burst, Cost: 1})
					if err != nil {
						return err
					}
					if res.Allowed {
						allowed.Add(1)
					}
					ok, _, err := st.BeginAttempt(ctx, key, storage.LockoutRequest{Now: now, MaxFailures: maxFails, LockFor: time.Hour, MaxLockFor: time.Hour, ForgetAfter: time.Hour})
					if err != nil {
						return err
					}
					if ok {
						admitted.Add(1)
					}
					return nil
				})
				for i, err := range errs {
					if err != nil {
						t.Errorf("round %d, goroutine %d: %v", round, i, err)
					}
				}
				if allowed.Load() != burst || admitted.Load() != maxFails {
					t.Errorf("round %d: %d of %d allowed with Burst %d, %d admitted with MaxFailures %d", round, allowed.Load(), goroutines, burst, admitted.Load(), maxFails)
				}
			}
		})
	}
}

// Random decisions and resets on a few keys, with times that move on and
// states that expire, give what the reference functions give on a map.
func TestRateMatchesTheReference(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, _ dialectCase, st *sqlstore.Store, _ *sql.DB, _ func(string) string) {
		ctx := t.Context()
		rng := rand.New(rand.NewPCG(3, 4))
		rates := map[int]int64{}
		locks := map[int]storage.LockoutState{}
		now := t0
		for op := range 400 {
			now = now.Add(time.Duration(rng.IntN(4000)) * time.Microsecond)
			k := rng.IntN(5)
			key := rkey(fmt.Sprint("ref ", k))
			switch rng.IntN(12) {
			case 0:
				if err := st.ResetRate(ctx, key); err != nil {
					t.Fatal(err)
				}
				delete(rates, k)
			case 1:
				if err := st.ResetLockout(ctx, key); err != nil {
					t.Fatal(err)
				}
				delete(locks, k)
			case 2, 3, 4, 5, 6:
				req := storage.RateRequest{Now: now, Interval: time.Duration(1+rng.IntN(3)) * time.Millisecond, Burst: 1 + rng.Int64N(4)}
				req.Cost = 1 + rng.Int64N(req.Burst)
				got, err := st.TakeRate(ctx, key, req)
				if err != nil {
					t.Fatal(err)
				}
				allowed, tat := storage.DecideRate(rates[k], req)
				if allowed {
					rates[k] = tat
				}
				if got.Allowed != allowed || !got.TAT.Equal(time.UnixMicro(tat)) {
					t.Fatalf("op %d: TakeRate = %+v, want %v, %v", op, got, allowed, time.UnixMicro(tat))
				}
			default:
				req := storage.LockoutRequest{Now: now, MaxFailures: 1 + rng.IntN(3), LockFor: time.Millisecond, MaxLockFor: 8 * time.Millisecond, ForgetAfter: time.Duration(1+rng.IntN(20)) * time.Millisecond}
				ok, got, err := st.BeginAttempt(ctx, key, req)
				if err != nil {
					t.Fatal(err)
				}
				wantOK, want := storage.DecideAttempt(locks[k], req)
				if wantOK {
					locks[k] = want
				}
				if ok != wantOK || !sameLockout(got, want) {
					t.Fatalf("op %d: BeginAttempt = %v, %+v; want %v, %+v", op, ok, got, wantOK, want)
				}
			}
		}
	})
}

func sameLockout(a, b storage.LockoutState) bool {
	return a.Failures == b.Failures && a.Locks == b.Locks && a.LockedUntil.Equal(b.LockedUntil) &&
		a.LockedUntil.IsZero() == b.LockedUntil.IsZero() && a.Expires.Equal(b.Expires)
}

// Every 64th decision of a Store removes up to 100 expired rows of its
// table, compared with the request's time (not the database's clock, nor
// the Store's).
func TestExpiredRateRowsAreSwept(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			stores, raw, table := openStores(t, d, 1)
			st, ctx := stores[0], t.Context()
			rates, lockouts := table("keyhold_rate_limits"), table("keyhold_lockouts")
			ph2, ph5 := "?, ?", "?, ?, ?, ?, ?"
			if d.name == "PostgreSQL" {
				ph2, ph5 = "$1, $2", "$1, $2, $3, $4, $5"
			}
			// 150 rows of each table that expire at t0, and one that
			// expires a microsecond (a millisecond) later.
			tx, err := raw.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 151 {
				key, us, ms := rkey(fmt.Sprint("expired ", i)), t0.UnixMicro(), t0.UnixMilli()
				if i == 150 {
					us, ms = us+1, ms+1
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+rates+" (key, tat_us) VALUES ("+ph2+")", key, us); err != nil {
					t.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+lockouts+" (key, failures, locks, locked_until_ms, expires_ms) VALUES ("+ph5+")", key, 1, 0, 0, ms); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			want := func(wantRates, wantLockouts int) {
				t.Helper()
				if n, m := countRows(t, raw, rates), countRows(t, raw, lockouts); n != wantRates || m != wantLockouts {
					t.Errorf("%d rate rows and %d lockout rows, want %d and %d", n, m, wantRates, wantLockouts)
				}
			}
			// 64 decisions at t0 on a live key: one sweeps, by the request's
			// time, and removes 100 of the 150 rows.
			for range 64 {
				if _, err := st.TakeRate(ctx, rkey("live"), storage.RateRequest{Now: t0, Interval: time.Hour, Burst: 1000, Cost: 1}); err != nil {
					t.Fatal(err)
				}
				if _, _, err := st.BeginAttempt(ctx, rkey("live"), storage.LockoutRequest{Now: t0, MaxFailures: 100, LockFor: time.Hour, MaxLockFor: time.Hour, ForgetAfter: time.Hour}); err != nil {
					t.Fatal(err)
				}
			}
			want(1+51, 1+51)
			// 64 more remove the other 50, and not the row that expires after
			// t0.
			for range 64 {
				if _, err := st.TakeRate(ctx, rkey("live"), storage.RateRequest{Now: t0, Interval: time.Hour, Burst: 1000, Cost: 1}); err != nil {
					t.Fatal(err)
				}
				if _, _, err := st.BeginAttempt(ctx, rkey("live"), storage.LockoutRequest{Now: t0, MaxFailures: 100, LockFor: time.Hour, MaxLockFor: time.Hour, ForgetAfter: time.Hour}); err != nil {
					t.Fatal(err)
				}
			}
			want(2, 2)
			// Each expired row reads as absent before it is removed: the row
			// that expires after t0 is live at t0 and absent a tick later.
			key := rkey("expired 150")
			if res, err := st.TakeRate(ctx, key, storage.RateRequest{Now: t0, Interval: time.Second, Burst: 1, Cost: 1}); err != nil || res.Allowed {
				t.Errorf("TakeRate on a live row: %+v, %v; want refused", res, err)
			}
			if res, err := st.TakeRate(ctx, key, storage.RateRequest{Now: t0.Add(time.Microsecond), Interval: time.Second, Burst: 1, Cost: 1}); err != nil || !res.Allowed {
				t.Errorf("TakeRate on an expired row: %+v, %v; want allowed", res, err)
			}
			ok, ls, err := st.BeginAttempt(ctx, key, storage.LockoutRequest{Now: t0.Add(time.Millisecond), MaxFailures: 5, LockFor: time.Second, MaxLockFor: time.Second, ForgetAfter: time.Second})
			if err != nil || !ok || ls.Failures != 1 {
				t.Errorf("BeginAttempt on an expired row: %v, %+v, %v; want admitted with 1 failure", ok, ls, err)
			}
		})
	}
}

// A database at schema version 2 (vaults, sessions and refresh families)
// is migrated to the current version at the next open, keeps its records,
// and decides rates.
func TestMigrationFromVersion2(t *testing.T) {
	t.Parallel()
	file := func(t *testing.T, dialect, name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("migrations", dialect, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	check := func(t *testing.T, st *sqlstore.Store, raw *sql.DB, table func(string) string) {
		t.Helper()
		ctx := t.Context()
		wantVersions(t, appliedVersions(t, raw, table), migrationCount(t, st.Dialect()))
		if got, err := st.GetVault(ctx, "alice"); err != nil || got.Version != 3 || string(got.Data) != "alice's vault" {
			t.Errorf("GetVault after the migration: %+v, %v", got, err)
		}
		if got, err := st.GetSession(ctx, sid("s")); err != nil || got.UserID != "alice" {
			t.Errorf("GetSession after the migration: %+v, %v", got, err)
		}
		req := storage.RateRequest{Now: time.Now(), Interval: time.Minute, Burst: 2, Cost: 1}
		for i, want := range []bool{true, true, false} {
			if res, err := st.TakeRate(ctx, rkey("after"), req); err != nil || res.Allowed != want {
				t.Errorf("TakeRate %d after the migration: %+v, %v; want allowed %v", i, res, err, want)
			}
		}
		if ok, _, err := st.BeginAttempt(ctx, rkey("after"), storage.LockoutRequest{Now: time.Now(), MaxFailures: 1, LockFor: time.Hour, MaxLockFor: time.Hour, ForgetAfter: time.Hour}); err != nil || !ok {
			t.Errorf("BeginAttempt after the migration: %v, %v", ok, err)
		}
	}
	rows := func(q, blob string) []string {
		return []string{
			fmt.Sprintf("INSERT INTO %skeyhold_vaults (user_id, version, data) VALUES (CAST('alice' AS %[2]s), 3, CAST('alice''s vault' AS %[2]s))", q, blob),
			fmt.Sprintf("INSERT INTO %skeyhold_sessions (id, user_id, expires, data) VALUES (%s, CAST('alice' AS %s), %d, CAST('' AS %[3]s))",
				q, map[string]string{"BLOB": "X'", "bytea": "'\\x"}[blob]+fmt.Sprintf("%x", sid("s"))+"'", blob, time.Now().Add(time.Hour).UnixMilli()),
		}
	}

	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "keyhold.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		raw := rawSQLite(t, path)
		stmts := []string{`CREATE TABLE keyhold_schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT`}
		for i, name := range []string{"0001_vault", "0002_sessions"} {
			stmts = append(stmts,
				strings.ReplaceAll(file(t, "sqlite", name+".sql"), "{schema}.", ""),
				fmt.Sprintf("INSERT INTO keyhold_schema_migrations (version, name) VALUES (%d, '%s')", i+1, name))
		}
		for _, q := range append(stmts, rows("", "BLOB")...) {
			if _, err := raw.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		check(t, openSQLite(t, path), raw, func(s string) string { return s })
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		dsn := postgresDSN(t)
		schema := newSchema(t, dsn)
		q := `"` + schema + `".`
		raw := adminDB(t, dsn)
		stmts := []string{`CREATE SCHEMA "` + schema + `"`, `CREATE TABLE ` + q + `keyhold_schema_migrations (
	version    integer     NOT NULL PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`}
		for i, name := range []string{"0001_vault", "0002_sessions"} {
			stmts = append(stmts,
				strings.ReplaceAll(file(t, "postgres", name+".sql"), "{schema}.", q),
				fmt.Sprintf("INSERT INTO %skeyhold_schema_migrations (version, name) VALUES (%d, '%s')", q, i+1, name))
		}
		for _, stmt := range append(stmts, rows(q, "bytea")...) {
			if _, err := raw.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		reserveConns(t, testConns)
		check(t, openPostgres(t, dsn, schema), raw, func(s string) string { return q + s })
	})
}

// Arguments outside the bounds are refused with ErrInvalid before any
// query runs (on a closed Store the error is not the pool's), and a done
// context with its error.
func TestRateRefusals(t *testing.T) {
	t.Parallel()
	st, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "keyhold.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	key := rkey("x")
	rate := storage.RateRequest{Now: t0, Interval: time.Second, Burst: 1, Cost: 1}
	lock := storage.LockoutRequest{Now: t0, MaxFailures: 1, LockFor: time.Second, MaxLockFor: time.Second, ForgetAfter: time.Second}
	for name, call := range map[string]func() error{
		"TakeRate":     func() error { _, err := st.TakeRate(canceled, key, rate); return err },
		"ResetRate":    func() error { return st.ResetRate(canceled, key) },
		"BeginAttempt": func() error { _, _, err := st.BeginAttempt(canceled, key, lock); return err },
		"ResetLockout": func() error { return st.ResetLockout(canceled, key) },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v", name, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	zeroBurst := rate
	zeroBurst.Burst = 0
	noForget := lock
	noForget.ForgetAfter = 0
	for _, bad := range [][]byte{nil, key[:31], append(key, 0)} {
		for name, call := range map[string]func() error{
			"TakeRate":     func() error { _, err := st.TakeRate(ctx, bad, rate); return err },
			"ResetRate":    func() error { return st.ResetRate(ctx, bad) },
			"BeginAttempt": func() error { _, _, err := st.BeginAttempt(ctx, bad, lock); return err },
			"ResetLockout": func() error { return st.ResetLockout(ctx, bad) },
		} {
			if err := call(); !errors.Is(err, storage.ErrInvalid) || !strings.HasPrefix(err.Error(), "sqlstore: ") {
				t.Errorf("%s with a %d-byte key: %v, want ErrInvalid", name, len(bad), err)
			}
		}
	}
	if _, err := st.TakeRate(ctx, key, zeroBurst); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("TakeRate with Burst 0: %v, want ErrInvalid", err)
	}
	if _, _, err := st.BeginAttempt(ctx, key, noForget); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("BeginAttempt with ForgetAfter 0: %v, want ErrInvalid", err)
	}
}

// BenchmarkTakeRate measures one decision on one key, which has a row from
// the second call on (SELECT, then UPDATE, in one transaction).
func BenchmarkTakeRate(b *testing.B) {
	req := storage.RateRequest{Now: t0, Interval: time.Microsecond, Burst: 1 << 20, Cost: 1}
	run := func(b *testing.B, st *sqlstore.Store) {
		ctx := b.Context()
		key := rkey("bench")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.TakeRate(ctx, key, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("SQLite", func(b *testing.B) {
		st, err := sqlstore.OpenSQLite(b.Context(), filepath.Join(b.TempDir(), "keyhold.db"), sqlstore.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		run(b, st)
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		dsn := testenv.Env(b, postgresEnv, "DSN of a PostgreSQL server for the sqlstore benchmarks")
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer admin.Close()
		schema := "keyhold_bench_" + strings.ToLower(crand.Text())
		defer admin.ExecContext(context.Background(), `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
		st, err := sqlstore.OpenPostgres(b.Context(), dsn, sqlstore.Config{Schema: schema, MaxOpenConns: 2})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		run(b, st)
	})
}
