package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The services the storage tests need, from the environment; without
// them the tests skip, and fail under CI=true.
const (
	testPostgresEnv = "KEYHOLD_TEST_POSTGRES_DSN"
	testRedisEnv    = "KEYHOLD_TEST_REDIS_URL"
)

func serviceEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and CI=true: this test needs the service", name)
		}
		t.Skipf("%s is not set: this test needs the service", name)
	}
	return v
}

// testSchema creates a PostgreSQL schema of the test's own, dropped at
// cleanup (after the app, whose cleanup is registered later, has closed
// its pools), and returns the DSN with its search_path set to it, and a
// connection pool for checks behind the app's back.
func testSchema(t *testing.T) (dsn, schema string, admin *sql.DB) {
	t.Helper()
	base := serviceEnv(t, testPostgresEnv)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	schema = "webapp_test_" + strings.ToLower(rand.Text())
	if _, err := admin.ExecContext(t.Context(), `CREATE SCHEMA "`+schema+`"`); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA "`+schema+`" CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return withSearchPath(t, base, schema), schema, admin
}

// withSearchPath returns dsn (a URL or key=value pairs) with its
// search_path set to schema.
func withSearchPath(t *testing.T, dsn, schema string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", testPostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// testRedis returns the Redis URL, a key prefix of the test's own, and a
// client for checks behind the app's back; the prefix's keys are deleted
// at cleanup.
func testRedis(t *testing.T) (rawURL, prefix string, client *redis.Client) {
	t.Helper()
	rawURL = serviceEnv(t, testRedisEnv)
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("%s: %v", testRedisEnv, err)
	}
	client = redis.NewClient(opts)
	prefix = "keyhold-webapp-test-" + strings.ToLower(rand.Text()) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		keys, err := client.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = client.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("delete the test's Redis keys: %v", err)
		}
		client.Close()
	})
	return rawURL, prefix, client
}

// redisKeys counts the keys under prefix+kind (redisstore's key names).
func redisKeys(t *testing.T, client *redis.Client, prefix, kind string) int {
	t.Helper()
	keys, err := client.Keys(t.Context(), prefix+kind+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

func countRows(t *testing.T, db *sql.DB, schema, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM "`+schema+`".`+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// On PostgreSQL and Redis, the app does what it does on SQLite: sign-up,
// a sealed note, logout, login, lock and unlock, logout; each piece of
// state is where the flags say (users and notes in the test's schema,
// sessions and limits in Redis under the test's prefix, none in SQL), and
// no SQLite file is made.
func TestWebAppOnPostgresAndRedis(t *testing.T) {
	dsn, schema, admin := testSchema(t)
	redisURL, prefix, rdb := testRedis(t)
	e := newEnvWith(t, true, config{PostgresDSN: dsn, RedisURL: redisURL, RedisPrefix: prefix})
	c := e.client()

	e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")
	if n := redisKeys(t, rdb, prefix, "{u:*}s:"); n != 1 {
		t.Fatalf("%d sessions in Redis under the test's prefix, want 1", n)
	}
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	if n := redisKeys(t, rdb, prefix, "{u:*}s:"); n != 0 {
		t.Fatalf("%d sessions in Redis after logout, want 0", n)
	}
	expect(t, "notes after logout", e.get(c, "/notes"), 303, "/login")
	expect(t, "wrong password", e.post(c, "/login", url.Values{"username": {"ada"}, "password": {"velvet otter learns algebra"}}), 401, "")
	if n := redisKeys(t, rdb, prefix, "lo:"); n == 0 { // reset by the next login
		t.Fatal("the failed login counted on no lockout in Redis")
	}
	e.login(c, "ada")
	expect(t, "lock", e.post(c, "/lock", nil), 303, "/unlock")
	expect(t, "notes while locked", e.get(c, "/notes"), 303, "/unlock")
	expect(t, "unlock", e.post(c, "/unlock", url.Values{"password": {password}}), 303, "/notes")
	page := e.get(c, "/notes")
	expect(t, "notes", page, 200, "")
	if !strings.Contains(page.body, "groceries") || !strings.Contains(page.body, "the cat&#39;s name is Ada") {
		t.Fatalf("the note is not on the page:\n%s", page.body)
	}

	// The app's tables and keyhold's SQL records are in the test's schema;
	// the note is sealed there.
	var title, body []byte
	if err := admin.QueryRowContext(t.Context(), `SELECT title, body FROM "`+schema+`".notes`).Scan(&title, &body); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(title, []byte("groceries")) || bytes.Contains(body, []byte("cat")) || len(body) < len(noteText)+16 {
		t.Fatalf("stored note is not sealed: title %q body %q", title, body)
	}
	for table, want := range map[string]int{"users": 1, "keyhold_vaults": 1, "app_secrets": 1, "keys_to_show": 0,
		// Redis keeps these: the SQL tables stay empty.
		"keyhold_sessions": 0, "keyhold_rate_limits": 0, "keyhold_lockouts": 0} {
		if n := countRows(t, admin, schema, table); n != want {
			t.Errorf("%s has %d rows, want %d", table, n, want)
		}
	}
	for kind, min := range map[string]int{"{u:*}s:": 1, "{u:*}u": 1, "sp:": 1, "rl:": 1} {
		if n := redisKeys(t, rdb, prefix, kind); n < min {
			t.Errorf("%d %q keys in Redis, want at least %d", n, kind, min)
		}
	}
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	expect(t, "notes after logout", e.get(c, "/notes"), 303, "/login")
	if _, err := os.Stat(e.dbPath); !os.IsNotExist(err) {
		t.Errorf("the SQLite file was made on PostgreSQL: %v", err)
	}
}

// Two instances starting together on one new schema both start (the
// app's tables are created once, under an advisory lock; the device key
// once: INSERT … ON CONFLICT DO NOTHING, then read back). (That they
// then share the device key, examples/multi shows: a lockout counted on
// a device cookie across two instances.)
func TestWebAppInstancesStartTogether(t *testing.T) {
	dsn, schema, admin := testSchema(t)
	// Hold the app's schema lock, so that both instances are past
	// keyhold's migrations and wait for it together.
	conn, err := admin.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // before conn.Close, which waits for it
	if _, err := tx.ExecContext(t.Context(), "SELECT pg_advisory_xact_lock($1)", int64(appSchemaLockKey)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	cleanups := make([]func() error, 2)
	for i := range 2 {
		wg.Go(func() {
			_, cleanups[i], errs[i] = newApp(config{PostgresDSN: dsn, TOTPKeyPath: t.TempDir() + "/totp-key", InsecureCookies: true,
				Logger: slog.New(slog.DiscardHandler)})
		})
	}
	// Both wait on the lock (pg_locks shows two waiters), then go.
	deadline := time.Now().Add(10 * time.Second)
	waiting := 0
	for waiting < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if err := admin.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid::bigint = $1 AND objid::bigint = $2",
			int64(appSchemaLockKey)>>32, int64(appSchemaLockKey)&0xffffffff).Scan(&waiting); err != nil {
			t.Error(err)
			break
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Error(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		} else {
			defer cleanups[i]()
		}
	}
	if waiting != 2 {
		t.Fatalf("%d instances waited for the app's schema lock, want 2", waiting)
	}
	if n := countRows(t, admin, schema, "app_secrets"); n != 1 {
		t.Fatalf("%d device keys, want 1", n)
	}
}

// rebindDollar numbers the ? placeholders for PostgreSQL, and leaves those
// in strings, quoted identifiers and comments alone.
func TestRebindDollar(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                            "SELECT 1",
		"SELECT a FROM t WHERE b = ? AND c=?": "SELECT a FROM t WHERE b = $1 AND c=$2",
		"INSERT INTO t VALUES (?, '?', ?)":    "INSERT INTO t VALUES ($1, '?', $2)",
		`SELECT "a?" FROM t WHERE x = ?`:      `SELECT "a?" FROM t WHERE x = $1`,
		"SELECT 'it''s ?', ? -- why?\n, ?":    "SELECT 'it''s ?', $1 -- why?\n, $2",
		"SELECT ?,?,?,?,?,?,?,?,?,?":          "SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10",
	} {
		if got := rebindDollar(in); got != want {
			t.Errorf("rebindDollar(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (&appDB{}).rebind("SELECT ?"); got != "SELECT ?" {
		t.Errorf("SQLite query rebound: %q", got)
	}
}

// The PostgreSQL schema is the SQLite one in PostgreSQL's types.
func TestPostgresSchema(t *testing.T) {
	pg := postgresSchema(schema)
	for _, word := range []string{"STRICT", "BLOB", "INTEGER"} {
		if strings.Contains(pg, word) {
			t.Errorf("the PostgreSQL schema still says %s:\n%s", word, pg)
		}
	}
	if strings.Count(pg, "CREATE TABLE") != strings.Count(schema, "CREATE TABLE") || !strings.Contains(pg, "BYTEA") || !strings.Contains(pg, "BIGINT") {
		t.Errorf("the PostgreSQL schema lost tables or types:\n%s", pg)
	}
}

// A flag wins over its environment variable; without the flag, the
// variable counts.
func TestStorageFlagsAndEnvironment(t *testing.T) {
	t.Setenv(envPostgres, "postgres://env")
	t.Setenv(envRedis, "redis://env")
	t.Setenv(envRedisPrefix, "env:")
	t.Setenv(envProxies, "10.0.0.0/8, 192.0.2.1")
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	postgres := fs.String("postgres", "", "")
	redisURL := fs.String("redis", "", "")
	fs.String("redis-prefix", "", "")
	var proxies proxyList
	fs.Var(&proxies, "trusted-proxy", "")
	if err := fs.Parse([]string{"-postgres", "postgres://flag", "-trusted-proxy", "127.0.0.1/32"}); err != nil {
		t.Fatal(err)
	}
	var cfg config
	if err := fromEnv(fs, &cfg, *postgres, *redisURL, "", proxies); err != nil {
		t.Fatal(err)
	}
	if cfg.PostgresDSN != "postgres://flag" || cfg.RedisURL != "redis://env" || cfg.RedisPrefix != "env:" {
		t.Errorf("config: postgres %q redis %q prefix %q", cfg.PostgresDSN, cfg.RedisURL, cfg.RedisPrefix)
	}
	if len(cfg.TrustedProxies) != 1 || cfg.TrustedProxies[0] != netip.MustParsePrefix("127.0.0.1/32") {
		t.Errorf("trusted proxies from the flag: %v", cfg.TrustedProxies)
	}

	fs = flag.NewFlagSet("webapp", flag.ContinueOnError)
	cfg = config{}
	if err := fromEnv(fs, &cfg, "", "", "", nil); err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	if len(cfg.TrustedProxies) != 2 || cfg.TrustedProxies[0] != want[0] || cfg.TrustedProxies[1] != want[1] {
		t.Errorf("trusted proxies from the environment: %v, want %v", cfg.TrustedProxies, want)
	}
	t.Setenv(envProxies, "not-a-network")
	if err := fromEnv(fs, &config{}, "", "", "", nil); err == nil || !strings.Contains(err.Error(), envProxies) {
		t.Errorf("a bad %s: %v", envProxies, err)
	}
}

// Behind a trusted proxy, each client (X-Forwarded-For) has its own login
// limit; a client that is not a trusted proxy cannot choose its address.
func TestTrustedProxyClientAddress(t *testing.T) {
	e := newEnvWith(t, true, config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	wrong := url.Values{"username": {"ada"}, "password": {"velvet otter learns algebra"}}
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	for i := range 5 {
		expect(t, fmt.Sprint("wrong login ", i+1), e.do(e.client(), "POST", "/login", wrong, from("192.0.2.1")), 401, "")
	}
	expect(t, "6th login from 192.0.2.1", e.do(e.client(), "POST", "/login", wrong, from("192.0.2.1")), 429, "")
	expect(t, "1st login from 192.0.2.2", e.do(e.client(), "POST", "/login", wrong, from("192.0.2.2")), 401, "")

	// Without the proxy trusted, the header is ignored: the peer
	// (127.0.0.1) is the client, whatever it claims.
	e = newEnv(t, true)
	for i := range 5 {
		expect(t, fmt.Sprint("wrong login ", i+1), e.do(e.client(), "POST", "/login", wrong, from(fmt.Sprint("192.0.2.", i+1))), 401, "")
	}
	expect(t, "6th login, untrusted", e.do(e.client(), "POST", "/login", wrong, from("192.0.2.9")), 429, "")
}

// Behind a TLS-terminating proxy that the app trusts, passkey ceremonies
// begin for the origin the proxy's X-Forwarded-Proto and the Host say;
// the same header from a client that is not trusted changes nothing.
func TestTrustedProxyPasskeyOrigin(t *testing.T) {
	const origin = "https://notes.example"
	begin := func(e *testEnv, proto string) int {
		req, err := http.NewRequest("POST", e.srv.URL+"/passkey/login/begin", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "notes.example"
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	trusted := newEnvWith(t, false, config{Origin: origin, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if code := begin(trusted, "https"); code != http.StatusOK {
		t.Errorf("begin through the trusted proxy: %d, want 200", code)
	}
	if code := begin(trusted, ""); code != http.StatusForbidden {
		t.Errorf("begin over plain HTTP: %d, want 403", code)
	}
	untrusted := newEnvWith(t, false, config{Origin: origin})
	if code := begin(untrusted, "https"); code != http.StatusForbidden {
		t.Errorf("begin with X-Forwarded-Proto from an untrusted peer: %d, want 403", code)
	}
}
