package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"modernc.org/sqlite"
)

// fakeRedisError is what go-redis returns for a Redis error reply.
type fakeRedisError string

func (e fakeRedisError) Error() string { return string(e) }
func (fakeRedisError) RedisError()     {}

func TestStoreUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("sqlstore: put: constraint failed"), false},
		{fmt.Errorf("redisstore: get: %w", refused), true},
		{fmt.Errorf("vault: open: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("session: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("x: %w", redis.ErrPoolTimeout), true},
		{fmt.Errorf("sqlstore: get vault: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("x: %w", context.Canceled), false},
		{fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}), true},
		{fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}), true},
		{fmt.Errorf("x: %w", &pgconn.PgError{Code: "08006"}), true},
		{fmt.Errorf("x: %w", &pgconn.PgError{Code: "53300", Message: "too many connections"}), true},
		{fmt.Errorf("x: %w", &pgconn.PgError{Code: "23505", Message: "duplicate key"}), false},
		{fmt.Errorf("x: %w", &pgconn.PgError{Code: "42P01", Message: "relation does not exist"}), false},
		{fmt.Errorf("x: %w", fakeRedisError("LOADING Redis is loading the dataset in memory")), true},
		{fmt.Errorf("x: %w", fakeRedisError("CLUSTERDOWN The cluster is down")), true},
		{fmt.Errorf("x: %w", fakeRedisError("NOSCRIPT No matching script")), false},
		{fmt.Errorf("x: %w", fakeRedisError("WRONGTYPE Operation against a key holding the wrong kind of value")), false},
		{fmt.Errorf("x: %w", &sqlite.Error{}), false},
	} {
		if got := storeUnavailable(tc.err); got != tc.want {
			t.Errorf("storeUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// cuttableProxy forwards TCP connections to a server until cut: then its
// port refuses connections and the open ones are closed, as when the
// server goes down; resume listens on the same port again.
type cuttableProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	p := &cuttableProxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *cuttableProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(up, c); up.Close() })
			p.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
}

// cut closes the listener and every connection.
func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// resume listens on the proxy's port again.
func (p *cuttableProxy) resume() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// TestStorageOutageAnswers503: with PostgreSQL and then Redis cut off
// (their port refusing connections, the app's pooled connections closed),
// a page that needs the store that is down answers 503 with Retry-After
// and the app's error page, naming no detail; when the server is back,
// the same page is served again without a restart.
func TestStorageOutageAnswers503(t *testing.T) {
	dsn, _, _ := testSchema(t)
	redisURL, prefix, _ := testRedis(t)

	pgURL, err := url.Parse(dsn)
	if err != nil || pgURL.Host == "" {
		t.Fatalf("%s must be a URL (postgres://…) for this test: %v", testPostgresEnv, err)
	}
	pgProxy := newCuttableProxy(t, pgURL.Host)
	pgURL.Host = pgProxy.addr
	q := pgURL.Query()
	q.Set("connect_timeout", "2")
	pgURL.RawQuery = q.Encode()
	rURL, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	redisProxy := newCuttableProxy(t, rURL.Host)
	rURL.Host = redisProxy.addr
	q = rURL.Query()
	q.Set("dial_timeout", "2s")
	q.Set("max_retries", "1")
	rURL.RawQuery = q.Encode()

	e := newEnvWith(t, true, config{PostgresDSN: pgURL.String(), RedisURL: rURL.String(), RedisPrefix: prefix})
	c := e.client()
	e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")

	for _, outage := range []struct {
		name  string
		proxy *cuttableProxy
	}{{"PostgreSQL", pgProxy}, {"Redis", redisProxy}} {
		outage.proxy.cut()
		for range 2 { // the pooled connections fail first, then the new ones are refused
			r := e.get(c, "/notes")
			if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, `class="error-page"`) || !strings.Contains(r.body, "unavailable for a moment") {
				t.Fatalf("%s down: /notes answered %d:\n%s", outage.name, r.code, r.body)
			}
			for _, detail := range []string{outage.proxy.addr, "dial", "refused", "pgx", "redis", "EOF"} {
				if strings.Contains(r.body, detail) {
					t.Errorf("%s down: the page names %q", outage.name, detail)
				}
			}
		}
		req, _ := http.NewRequest("GET", e.srv.URL+"/notes", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s down: %d with Retry-After %q", outage.name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		outage.proxy.resume()
		r := e.get(c, "/notes")
		if r.code != http.StatusOK || !strings.Contains(r.body, "groceries") {
			t.Fatalf("%s back: /notes answered %d", outage.name, r.code)
		}
	}
	if !strings.Contains(e.logs.String(), "unavailable=true") {
		t.Error("the outage is not in the app's log")
	}
}
