package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/kdf"
)

// testClock is the clock of sessions and rate limits, moved by the test.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects the app's logs from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testApp is the app on a loopback listener with plain HTTP, as main runs
// it, over a database in a temporary directory.
type testApp struct {
	*app
	t      *testing.T
	url    string
	dbPath string
	clock  *testClock
	logs   *syncBuffer
}

func newTestApp(t *testing.T) *testApp {
	t.Helper()
	// The store keeps its own deadlines by the real clock: start there.
	clock := &testClock{now: time.Now().Truncate(time.Second)}
	logs := &syncBuffer{}
	dbPath := filepath.Join(t.TempDir(), "credvault.db")
	a, err := newApp(config{
		DBPath:          dbPath,
		VaultKDF:        kdf.InteractiveParams(), // faster than the default, same code
		Logger:          slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:             clock.Now,
		InsecureCookies: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return &testApp{app: a, t: t, url: srv.URL, dbPath: dbPath, clock: clock, logs: logs}
}

// noSecretsLogged fails the test if any of secrets is in the logs.
func (ta *testApp) noSecretsLogged(secrets ...string) {
	ta.t.Helper()
	logs := ta.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			ta.t.Errorf("the logs hold a secret (%d bytes)", len(s))
		}
	}
}

// client is one API client with its own cookie jar.
type client struct {
	t   *testing.T
	url string
	hc  *http.Client
}

func (ta *testApp) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		ta.t.Fatal(err)
	}
	return &client{t: ta.t, url: ta.url, hc: &http.Client{Jar: jar}}
}

// response is an answer: its status, headers and JSON body.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// code is the error code of an error answer.
func (r response) code() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// send sends body (marshalled to JSON unless it is a string or []byte) with
// Content-Type: application/json unless headers set another one.
func (c *client) send(method, path string, body any, headers ...string) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			c.t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, raw)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			c.t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
	}
	return out
}

// want sends and checks the status (and the error code, for an error).
func (c *client) want(status int, code, method, path string, body any, headers ...string) response {
	c.t.Helper()
	r := c.send(method, path, body, headers...)
	if r.status != status || r.code() != code {
		c.t.Fatalf("%s %s: %d %s, want %d %q", method, path, r.status, r.raw, status, code)
	}
	return r
}

// Accounts of the tests.
const (
	adaPassword   = "velvet otter learns calculus"
	adaPassphrase = "Quartz-Lantern-47!"
	bobPassword   = "mauve heron files taxes early"
	bobPassphrase = "Copper;Kettle;Sings;9"
)

func (c *client) signup(name, password string) {
	c.t.Helper()
	c.want(http.StatusCreated, "", "POST", "/api/signup", map[string]string{"username": name, "password": password})
}

// unlockedUser signs up a user and sets their passphrase.
func (ta *testApp) unlockedUser(name, password, passphrase string) *client {
	ta.t.Helper()
	c := ta.client()
	c.signup(name, password)
	c.want(http.StatusCreated, "", "POST", "/api/passphrase", map[string]string{"passphrase": passphrase})
	return c
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}
