package zk_test

// An outside review's attacks on zk.Server (a malicious user against the
// server), and the runner of testdata/attack_review_test.mjs (a hostile
// server against the browser client). Tests named TestAttackHeld* are
// attacks that failed, kept as regression tests. Tests named
// TestAttackFinding* showed a defect the review found, since fixed.

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault/zk"
)

// TestAttackReviewUnderNode runs testdata/attack_review_test.mjs (a
// hostile server against client.js) with Node's test runner.
func TestAttackReviewUnderNode(t *testing.T) {
	t.Parallel()
	node := testenv.Node(t)
	ctx, cancel := context.WithTimeout(t.Context(), nodeTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "testdata/attack_review_test.mjs")
	cmd.WaitDelay = nodeTestTimeout / 36
	b, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node --test testdata/attack_review_test.mjs did not finish within %v:\n%s", nodeTestTimeout, b)
	}
	if err != nil || !strings.Contains(string(b), "fail 0") {
		t.Fatalf("node --test testdata/attack_review_test.mjs: %v\n%s", err, b)
	}
	t.Logf("%s", lastLines(string(b), 9))
}

// logSink keeps the log records' messages and attributes as text.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	s.mu.Lock()
	s.lines = append(s.lines, b.String())
	s.mu.Unlock()
	return nil
}
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *logSink) WithGroup(string) slog.Handler      { return s }
func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// newLoggedEnv is newServerEnv with the Server's log kept, and an
// optional wrapper around the whole app (the app's CSRF protection).
func newLoggedEnv(t *testing.T, cfg zk.Config, wrap func(http.Handler) http.Handler) (*serverEnv, *logSink) {
	t.Helper()
	store := memstore.New()
	quiet := slog.New(slog.DiscardHandler)
	m, err := session.New(store, session.Config{Logger: quiet, AllowInsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := ratelimit.New(store, zk.DefaultRule(), ratelimit.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sink := &logSink{}
	cfg.Sessions, cfg.Limiter, cfg.Logger, cfg.Store = m, limiter, slog.New(sink), store
	srv, err := zk.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r.Context(), r.URL.Query().Get("user"), session.LoginOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.Handle("/zk/", http.StripPrefix("/zk", srv))
	var h http.Handler = m.Handler(mux)
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &serverEnv{t: t, store: store, srv: srv, url: ts.URL}, sink
}

// TestAttackFinding6LongNames: checkName and client.js allow names of up
// to MaxNameLen (128) bytes, but the blob name was "r/" ‖ name and a
// BlobStore refuses names over storage.MaxBlobNameLen (128): every name
// of 127 or 128 bytes was answered 503 "unavailable" and logged as a
// store failure (sys_blob_store_fail, Error), which any user could
// trigger at will. A record's blob name is now its name.
func TestAttackFinding6LongNames(t *testing.T) {
	e, sink := newLoggedEnv(t, zk.Config{}, nil)
	alice := e.login("alice", false)
	_, u := testVault(t, "alice")
	for _, n := range []int{126, 127, zk.MaxNameLen} {
		name := strings.Repeat("n", n)
		if a := alice.do("PUT", "/records/"+name, sealAt(t, u, name, "x", 1), 0, ""); a.status != http.StatusOK {
			t.Errorf("PUT a name of %d bytes (within MaxNameLen): %d %s", n, a.status, a.body)
		}
		if a := alice.do("GET", "/records/"+name, nil, -1, ""); a.status != http.StatusOK {
			t.Errorf("GET a name of %d bytes: %d %s", n, a.status, a.body)
		}
	}
	if log := sink.text(); strings.Contains(log, "sys_blob_store_fail") {
		t.Errorf("a valid name is logged as a store failure:\n%s", log)
	}
}

// TestAttackFinding7ReviveTombstoneAtNameCap: at 4×MaxRecords names, a
// write to a name that is already a tombstone adds no name and no live
// record beyond MaxRecords, yet checkRoom refused it (it counted names
// before noticing the name was one of them), so once a user reached the
// cap every deleted name was dead for good.
func TestAttackFinding7ReviveTombstoneAtNameCap(t *testing.T) {
	e := newServerEnv(t, zk.Config{MaxRecords: 1}, ratelimit.Rule{})
	alice := e.login("alice", false)
	_, u := testVault(t, "alice")
	for _, n := range []string{"a", "b", "c", "d"} {
		if a := alice.do("PUT", "/records/"+n, sealAt(t, u, n, n, 1), 0, ""); a.status != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", n, a.status, a.body)
		}
		if a := alice.do("DELETE", "/records/"+n, nil, 1, ""); a.status != http.StatusOK {
			t.Fatalf("DELETE %s: %d %s", n, a.status, a.body)
		}
	}
	// Positive control: a fifth name is refused (4 names, all tombstones).
	if a := alice.do("PUT", "/records/e", sealAt(t, u, "e", "e", 1), 0, ""); a.status != http.StatusForbidden {
		t.Fatalf("a fifth name: %d %s", a.status, a.body)
	}
	// No live record, and "a" is a name already: writing it again adds nothing.
	if a := alice.do("PUT", "/records/a", sealAt(t, u, "a", "again", 3), 2, ""); a.status != http.StatusOK {
		t.Errorf("writing a tombstoned name again with no live record: %d %s", a.status, a.body)
	}
}

// TestAttackHeldHeaderTricks: Keyhold-Expect twice (equal or not), with
// an overflow, at 2^64-2; Content-Type with parameters, in another case,
// or twice; a DELETE of a name never written. None stores anything, and
// none is a 5xx.
func TestAttackHeldHeaderTricks(t *testing.T) {
	e, sink := newLoggedEnv(t, zk.Config{}, nil)
	alice := e.login("alice", false)
	_, u := testVault(t, "alice")
	good := sealAt(t, u, "n1", "x", 1)
	send := func(method, path string, body []byte, h http.Header) int {
		t.Helper()
		req, _ := http.NewRequest(method, e.url+"/zk"+path, bytes.NewReader(body))
		req.Header = h
		resp, err := alice.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	oct := "application/octet-stream"
	cases := []struct {
		name   string
		method string
		h      http.Header
		status int
	}{
		{"expect twice, equal", "PUT", http.Header{"Content-Type": {oct}, zk.ExpectHeader: {"0", "0"}}, 400},
		{"expect twice, different", "PUT", http.Header{"Content-Type": {oct}, zk.ExpectHeader: {"0", "1"}}, 400},
		{"expect as one list", "PUT", http.Header{"Content-Type": {oct}, zk.ExpectHeader: {"0, 1"}}, 400},
		{"expect 2^64 (overflow)", "PUT", http.Header{"Content-Type": {oct}, zk.ExpectHeader: {"18446744073709551616"}}, 400},
		{"expect 2^64-2", "PUT", http.Header{"Content-Type": {oct}, zk.ExpectHeader: {"18446744073709551614"}}, 400}, // the body's version is 1, not 2^64-1
		{"expect a huge header", "PUT", http.Header{"Content-Type": {oct}, zk.ExpectHeader: {strings.Repeat("9", 4000)}}, 400},
		{"content type with a parameter", "PUT", http.Header{"Content-Type": {oct + "; charset=utf-8"}, zk.ExpectHeader: {"0"}}, 415},
		{"content type in upper case", "PUT", http.Header{"Content-Type": {strings.ToUpper(oct)}, zk.ExpectHeader: {"0"}}, 415},
		{"content type twice", "PUT", http.Header{"Content-Type": {"text/plain", oct}, zk.ExpectHeader: {"0"}}, 415},
		{"no content type", "PUT", http.Header{zk.ExpectHeader: {"0"}}, 415},
		{"delete a name never written", "DELETE", http.Header{zk.ExpectHeader: {"1"}}, 409},
		{"delete expecting 2^64-2", "DELETE", http.Header{zk.ExpectHeader: {"18446744073709551614"}}, 409},
	}
	for _, c := range cases {
		var body []byte
		if c.method == "PUT" {
			body = good
		}
		if got := send(c.method, "/records/n1", body, c.h); got != c.status {
			t.Errorf("%s: %d, want %d", c.name, got, c.status)
		}
	}
	if blobs, _ := e.store.ListBlobs(context.Background(), "alice", "", 10); len(blobs) != 0 {
		t.Errorf("refused writes stored %v", blobs)
	}
	if log := sink.text(); strings.Contains(log, "sys_blob_store_fail") || strings.Contains(log, "n1") {
		t.Errorf("the log has a store failure or a record name:\n%s", log)
	}
	// Positive control.
	if got := send("PUT", "/records/n1", good, http.Header{"Content-Type": {oct}, zk.ExpectHeader: {"0"}}); got != http.StatusOK {
		t.Fatalf("the good write: %d", got)
	}
}

// TestAttackHeldPathTricks: no record path reaches the vault blob or
// another user's blobs: encoded slashes and dots, a record named
// "vault", the vault path with a trailing slash, an empty name.
func TestAttackHeldPathTricks(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	alice, bob := e.login("alice", false), e.login("bob", false)
	rec, u := testVault(t, "alice")
	if a := alice.do("PUT", "/vault", rec, 0, ""); a.status != http.StatusOK {
		t.Fatalf("vault: %d", a.status)
	}
	if a := alice.do("PUT", "/records/vault", sealAt(t, u, "vault", "a record", 1), 0, ""); a.status != http.StatusOK {
		t.Fatalf("a record named vault: %d %s", a.status, a.body)
	}
	for _, p := range []string{"/records/%2Fvault", "/records/..%2Fvault", "/records/%2E%2E%2Fvault", "/records/r%2Fvault", "/records/%2Fr%2Fvault",
		"/records/", "/records//vault", "/records/vault%00", "/records/%76ault%2F", "/records/alice%2Fvault"} {
		for _, c := range []*client{alice, bob} {
			a := c.do("GET", p, nil, -1, "")
			if a.status == http.StatusOK && bytes.HasPrefix(a.body, []byte("KHV")) {
				t.Errorf("GET %s served the vault record", p)
			}
			if a.status >= 500 {
				t.Errorf("GET %s: %d", p, a.status)
			}
		}
	}
	// The vault record is unchanged, and Bob has nothing.
	if a := alice.do("GET", "/vault", nil, -1, ""); a.status != http.StatusOK || !bytes.Equal(a.body, rec) || a.version != "1" {
		t.Errorf("the vault record: %d %s", a.status, a.version)
	}
	if a := bob.do("GET", "/vault", nil, -1, ""); a.status != http.StatusNotFound {
		t.Errorf("Bob's vault: %d", a.status)
	}
	if a := bob.do("GET", "/records/vault", nil, -1, ""); a.status != http.StatusNotFound {
		t.Errorf("Bob reads Alice's record: %d", a.status)
	}
}

// TestAttackHeldCrossSite: mounted as README and the package
// documentation say (behind the app's http.CrossOriginProtection), a
// cross-site write with the user's cookie is refused before the Server,
// and a same-origin one passes.
func TestAttackHeldCrossSite(t *testing.T) {
	e, _ := newLoggedEnv(t, zk.Config{}, func(h http.Handler) http.Handler { return http.NewCrossOriginProtection().Handler(h) })
	alice := e.login("alice", false)
	_, u := testVault(t, "alice")
	body := sealAt(t, u, "n1", "x", 1)
	put := func(site string) int {
		req, _ := http.NewRequest("PUT", e.url+"/zk/records/n1", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(zk.ExpectHeader, "0")
		req.Header.Set("Sec-Fetch-Site", site)
		resp, err := alice.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := put("cross-site"); got != http.StatusForbidden {
		t.Errorf("cross-site PUT: %d, want 403", got)
	}
	if blobs, _ := e.store.ListBlobs(context.Background(), "alice", "", 10); len(blobs) != 0 {
		t.Fatalf("a cross-site write stored %v", blobs)
	}
	if got := put("same-origin"); got != http.StatusOK {
		t.Errorf("same-origin PUT: %d", got)
	}
}

// TestAttackHeldNoVersionRestart: a tombstone keeps a name's versions, so
// a record put back at version 1 (what a restored copy would need) is
// refused by the store's compare-and-swap.
func TestAttackHeldNoVersionRestart(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	alice := e.login("alice", false)
	_, u := testVault(t, "alice")
	v1 := sealAt(t, u, "n", "one", 1)
	for i, step := range []struct {
		method string
		body   []byte
		expect int64
		status int
	}{
		{"PUT", v1, 0, 200},
		{"DELETE", nil, 1, 200},
		{"PUT", v1, 0, 409},
		{"DELETE", nil, 2, 200}, // a tombstone over a tombstone: version 3
		{"PUT", sealAt(t, u, "n", "two", 3), 2, 409},
		{"PUT", sealAt(t, u, "n", "two", 4), 3, 200},
	} {
		if a := alice.do(step.method, "/records/n", step.body, step.expect, ""); a.status != step.status {
			t.Fatalf("step %d %s expect %d: %d %s", i, step.method, step.expect, a.status, a.body)
		}
	}
	if a := alice.do("GET", "/records/n", nil, -1, ""); a.version != strconv.Itoa(4) {
		t.Fatalf("version %q", a.version)
	}
}
