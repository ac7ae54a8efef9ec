package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the tests' own checks
	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/ratelimit"
)

const (
	testPostgresEnv = "KEYHOLD_TEST_POSTGRES_DSN"
	testRedisEnv    = "KEYHOLD_TEST_REDIS_URL"

	password = "velvet otter learns calculus"
	wrongPwd = "velvet otter learns algebra"
)

// serviceEnv returns the variable, or skips (fails under CI=true).
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

// The web app, built once for all the tests.
var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func webappBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "keyhold-multi-test-"); buildErr == nil {
			binary, buildErr = buildWebapp(context.Background(), buildDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// A cluster is two instances on a schema and a Redis prefix of the
// test's own, behind the proxy, whose requests go to the instance the
// test pins.
type cluster struct {
	t      *testing.T
	url    string // the proxy
	pinned atomic.Int32
	logs   [2]*testkit.SyncBuffer
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	dsn := serviceEnv(t, testPostgresEnv)
	redisURL := serviceEnv(t, testRedisEnv)
	bin := webappBinary(t)

	// A schema of the test's own, dropped after the instances stop
	// (cleanups run last-registered first).
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := "multi_test_" + strings.ToLower(rand.Text())
	if _, err := admin.ExecContext(t.Context(), `CREATE SCHEMA "`+schema+`"`); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA "`+schema+`" CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s must be a URL here: %v", testPostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	// A Redis prefix of the test's own, its keys deleted at the end.
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	prefix := "keyhold-multi-test-" + strings.ToLower(rand.Text()) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("delete the test's Redis keys: %v", err)
		}
		rdb.Close()
	})

	c := &cluster{t: t}
	srv := httptest.NewUnstartedServer(nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	cfg := clusterConfig{Binary: bin, PostgresDSN: u.String(), RedisURL: redisURL, RedisPrefix: prefix,
		TOTPKeyPath: filepath.Join(t.TempDir(), "totp-key"), Origin: fmt.Sprintf("http://localhost:%d", port)}
	i := 0
	instances, err := startInstances(t.Context(), cfg, func(string) io.Writer {
		c.logs[i] = &testkit.SyncBuffer{}
		i++
		return c.logs[i-1]
	})
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAll(instances) })
	srv.Config.Handler = newProxy(instances, func(*http.Request) int { return int(c.pinned.Load()) })
	srv.Start()
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// client is a browser: a cookie jar, and redirects left to the test.
func (c *cluster) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type result struct {
	code     int
	location string
	body     string
}

// on sends the request through the proxy to instance i (0: a, 1: b),
// and checks that i answered.
func (c *cluster) on(i int, hc *http.Client, method, path string, form url.Values) result {
	c.t.Helper()
	c.pinned.Store(int32(i))
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if got, want := resp.Header.Get("X-Keyhold-Instance"), "ab"[i:i+1]; got != want {
		c.t.Fatalf("%s %s: answered by instance %q, want %q", method, path, got, want)
	}
	return result{resp.StatusCode, resp.Header.Get("Location"), string(b)}
}

func expect(t *testing.T, what string, got result, code int, location string) {
	t.Helper()
	if got.code != code || got.location != location {
		t.Fatalf("%s: got %d %q, want %d %q\n%s", what, got.code, got.location, code, location, got.body)
	}
}

// waitLog waits (up to 5 s: the instances' logs arrive through pipes) for
// pattern to match n lines of the two instances' logs together.
func (c *cluster) waitLog(pattern string, n int) {
	c.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := len(re.FindAllString(c.logs[0].String(), -1)) + len(re.FindAllString(c.logs[1].String(), -1))
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			c.t.Fatalf("%d log lines match %s, want %d\n[a]\n%s\n[b]\n%s", got, pattern, n, c.logs[0], c.logs[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var recoveryKey = regexp.MustCompile(`[0-9A-Z]{4}(-[0-9A-Z]{4}){7}`)

// A logged-in, unlocked user moves between the instances at every
// request: the session, its unlocked vault, the notes, a lock and a
// logout made on one instance hold on the other.
func TestUserMovesBetweenInstances(t *testing.T) {
	c := newCluster(t)
	const a, b = 0, 1
	hc := c.client()

	expect(t, "sign-up on a", c.on(a, hc, "POST", "/signup", url.Values{"username": {"ada"}, "password": {password}}), 303, "/recovery-keys")
	keys := c.on(b, hc, "GET", "/recovery-keys", nil) // kept for b by a, shown once
	expect(t, "recovery keys on b", keys, 200, "")
	if n := len(recoveryKey.FindAllString(keys.body, -1)); n != 2 {
		t.Fatalf("b shows %d recovery keys, want 2:\n%s", n, keys.body)
	}
	expect(t, "note on a", c.on(a, hc, "POST", "/notes", url.Values{"title": {"from a"}, "body": {"written on a"}}), 303, "/notes")
	expect(t, "note on b", c.on(b, hc, "POST", "/notes", url.Values{"title": {"from b"}, "body": {"written on b"}}), 303, "/notes")
	for i := range 2 {
		page := c.on(i, hc, "GET", "/notes", nil)
		expect(t, "notes", page, 200, "")
		for _, s := range []string{"from a", "written on a", "from b", "written on b"} {
			if !strings.Contains(page.body, s) {
				t.Fatalf("instance %d does not show %q:\n%s", i, s, page.body)
			}
		}
	}

	// A lock on a locks b; an unlock on b unlocks a.
	expect(t, "lock on a", c.on(a, hc, "POST", "/lock", nil), 303, "/unlock")
	expect(t, "notes on b, locked", c.on(b, hc, "GET", "/notes", nil), 303, "/unlock")
	expect(t, "unlock on b", c.on(b, hc, "POST", "/unlock", url.Values{"password": {password}}), 303, "/notes")
	expect(t, "notes on a, unlocked", c.on(a, hc, "GET", "/notes", nil), 200, "")

	// A second device logs in on b; the user's logout on a ends only the
	// first device's session, on both instances.
	other := c.client()
	expect(t, "login on b", c.on(b, other, "POST", "/login", url.Values{"username": {"ada"}, "password": {password}}), 303, "/notes")
	expect(t, "logout on a", c.on(a, hc, "POST", "/logout", nil), 303, "/")
	expect(t, "notes on b after logout", c.on(b, hc, "GET", "/notes", nil), 303, "/login")
	expect(t, "the other device on a", c.on(a, other, "GET", "/notes", nil), 200, "")
}

// Limits and lockouts count the attempts on both instances together:
// with the web app's rules (ratelimit.LoginPerIP: 5 logins per address
// per 15 minutes; ratelimit.DefaultLockoutPolicy: 10 failures per device
// or source), the 6th login and the 11th password check, wherever they
// land, are the ones refused.
func TestLimitsAndLockoutsShared(t *testing.T) {
	c := newCluster(t)
	loginLimit := ratelimit.LoginPerIP().Limit
	maxFailures := ratelimit.DefaultLockoutPolicy().MaxFailures
	if loginLimit != 5 || maxFailures != 10 {
		t.Fatalf("the presets changed (login limit %d, lockout %d): adjust the sequence below", loginLimit, maxFailures)
	}
	hc := c.client()
	expect(t, "sign-up on a", c.on(0, hc, "POST", "/signup", url.Values{"username": {"bob"}, "password": {password}}), 303, "/recovery-keys")
	expect(t, "logout on b", c.on(1, hc, "POST", "/logout", nil), 303, "/")

	// Login 1 (on a) succeeds, and makes this browser a known device of
	// bob's (its failures count on the device's own counter); logins 2 to
	// 5 alternate b, a, b, a with a wrong password; login 6, on b, is
	// refused by the per-address limit, before any password check.
	expect(t, "login 1 on a", c.on(0, hc, "POST", "/login", url.Values{"username": {"bob"}, "password": {password}}), 303, "/notes")
	attempt := 1
	for attempt < loginLimit {
		attempt++
		i := (attempt + 1) % 2
		expect(t, fmt.Sprintf("wrong login %d on %c", attempt, "ab"[i]), c.on(i, hc, "POST", "/login", url.Values{"username": {"bob"}, "password": {wrongPwd}}), 401, "")
	}
	r := c.on(1, hc, "POST", "/login", url.Values{"username": {"bob"}, "password": {password}})
	expect(t, "login 6 on b", r, 429, "")
	c.waitLog(`"msg":"webapp.login.failed","locked":false`, loginLimit-1)

	// The device has 4 failures. Unlocks with a wrong password, from the
	// same browser, alternating a and b, bring it to 10: each is checked
	// (the log says not locked); the 11th attempt, the right password on
	// the next instance, finds the device locked out.
	failures := loginLimit - 1
	for failures < maxFailures {
		failures++
		i := failures % 2
		expect(t, fmt.Sprintf("failure %d: wrong unlock on %c", failures, "ab"[i]), c.on(i, hc, "POST", "/unlock", url.Values{"password": {wrongPwd}}), 401, "")
	}
	c.waitLog(`"msg":"webapp.unlock.failed","user":"[^"]+","locked":false`, maxFailures-(loginLimit-1))
	next := (failures + 1) % 2
	expect(t, fmt.Sprintf("attempt %d: right unlock on %c", failures+1, "ab"[next]), c.on(next, hc, "POST", "/unlock", url.Values{"password": {password}}), 401, "")
	c.waitLog(`"msg":"webapp.unlock.failed","user":"[^"]+","locked":true`, 1)
}

// The proxy sends requests to the instances in turn, keeps the client's
// Host, and replaces the X-Forwarded-For a client sends with the address
// it sees: no client chooses the address the instances limit by.
func TestProxy(t *testing.T) {
	var instances []*instance
	for _, name := range []string{"a", "b"} {
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s %s", name, r.Host, r.Header.Get("X-Forwarded-For"))
		}))
		t.Cleanup(backend.Close)
		u, err := url.Parse(backend.URL)
		if err != nil {
			t.Fatal(err)
		}
		instances = append(instances, &instance{Name: name, URL: u})
	}
	proxy := httptest.NewServer(newProxy(instances, roundRobin(len(instances))))
	t.Cleanup(proxy.Close)
	for i, want := range []string{"a", "b", "a", "b"} {
		req, err := http.NewRequest("GET", proxy.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "localhost:1234"
		req.Header.Set("X-Forwarded-For", "192.0.2.66")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b); got != want+" localhost:1234 127.0.0.1" || resp.Header.Get("X-Keyhold-Instance") != want {
			t.Errorf("request %d: %q from instance %q, want %q from %s", i, got, resp.Header.Get("X-Keyhold-Instance"), want+" localhost:1234 127.0.0.1", want)
		}
	}
}
