package zk_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/zk"
)

// serverEnv is a Server mounted at /zk/ behind a session manager, with a
// login endpoint that starts a session for ?user= (pending its second
// factor with &pending=1).
type serverEnv struct {
	t     *testing.T
	store *memstore.Store
	srv   *zk.Server
	url   string
}

func newServerEnv(t *testing.T, cfg zk.Config, rule ratelimit.Rule) *serverEnv {
	t.Helper()
	store := memstore.New()
	quiet := slog.New(slog.DiscardHandler)
	m, err := session.New(store, session.Config{Logger: quiet, AllowInsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	if rule.Name == "" {
		rule = zk.DefaultRule()
	}
	limiter, err := ratelimit.New(store, rule, ratelimit.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sessions, cfg.Limiter, cfg.Logger = m, limiter, quiet
	if cfg.Store == nil {
		cfg.Store = store
	}
	srv, err := zk.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r.Context(), r.URL.Query().Get("user"), session.LoginOptions{SecondFactorPending: r.URL.Query().Get("pending") == "1"}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.Handle("/zk/", http.StripPrefix("/zk", srv))
	ts := httptest.NewServer(m.Handler(mux))
	t.Cleanup(ts.Close)
	return &serverEnv{t: t, store: store, srv: srv, url: ts.URL}
}

// client is one browser: a cookie jar logged in as a user.
type client struct {
	env *serverEnv
	hc  *http.Client
}

func (e *serverEnv) login(user string, pending bool) *client {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &client{env: e, hc: &http.Client{Jar: jar}}
	q := "?user=" + user
	if pending {
		q += "&pending=1"
	}
	resp, err := c.hc.Post(e.url+"/login"+q, "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("login: %v %d %s", err, resp.StatusCode, b)
	}
	resp.Body.Close()
	return c
}

func (e *serverEnv) anonymous() *client {
	jar, _ := cookiejar.New(nil)
	return &client{env: e, hc: &http.Client{Jar: jar}}
}

// answer is what the server answered.
type answer struct {
	status  int
	version string // the Keyhold-Version header
	body    []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %q", a.status, a.body)
	}
	return m
}

func (a answer) errorCode(t *testing.T) string {
	t.Helper()
	code, _ := a.json(t)["error"].(string)
	return code
}

// do sends a request; expect < 0 sends no Keyhold-Expect header, and
// contentType "" the octet-stream type.
func (c *client) do(method, path string, body []byte, expect int64, contentType string) answer {
	c.env.t.Helper()
	req, _ := http.NewRequest(method, c.env.url+"/zk"+path, bytes.NewReader(body))
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if expect >= 0 {
		req.Header.Set(zk.ExpectHeader, strconv.FormatInt(expect, 10))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.env.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, version: resp.Header.Get(zk.VersionHeader), body: b}
}

// testVault makes a vault record for userID with package vault (what a
// client would upload) and returns the record and the unlocked vault.
func testVault(t *testing.T, userID string) ([]byte, *vault.Unlocked) {
	t.Helper()
	store := memstore.New()
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	u, err := v.Create(context.Background(), userID, []byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Lock)
	rec, err := store.GetVault(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Data, u
}

func sealAt(t *testing.T, u *vault.Unlocked, name, text string, version uint64) []byte {
	t.Helper()
	sealed, err := u.SealVersion([]byte(text), []byte("keyhold/zk/record/"+name), version)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func TestServerNeedsACompleteSession(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	record, u := testVault(t, "alice")
	for name, c := range map[string]*client{"no session": e.anonymous(), "pending second factor": e.login("alice", true)} {
		for _, req := range []struct {
			method, path string
			body         []byte
			expect       int64
		}{
			{"GET", "/", nil, -1},
			{"GET", "/vault", nil, -1},
			{"PUT", "/vault", record, 0},
			{"GET", "/records/n1", nil, -1},
			{"PUT", "/records/n1", sealAt(t, u, "n1", "x", 1), 0},
			{"DELETE", "/records/n1", nil, 1},
		} {
			if a := c.do(req.method, req.path, req.body, req.expect, ""); a.status != http.StatusUnauthorized || a.errorCode(t) != "not_logged_in" {
				t.Errorf("%s: %s %s: %d %q, want 401 not_logged_in", name, req.method, req.path, a.status, a.body)
			}
		}
	}
	if blobs, _ := e.store.ListBlobs(context.Background(), "alice", "", 10); len(blobs) != 0 {
		t.Errorf("refused requests stored %v", blobs)
	}
}

func TestServerVaultRoundTripAndCAS(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	alice := e.login("alice", false)
	st := alice.do("GET", "/", nil, -1, "").json(t)
	if st["user"] != base64.RawURLEncoding.EncodeToString([]byte("alice")) || st["vault"] != nil || len(st["records"].([]any)) != 0 {
		t.Fatalf("status of a new user: %v", st)
	}
	if a := alice.do("GET", "/vault", nil, -1, ""); a.status != http.StatusNotFound || a.errorCode(t) != "not_found" {
		t.Fatalf("GET vault before any: %d %q", a.status, a.body)
	}
	record, _ := testVault(t, "alice")
	if a := alice.do("PUT", "/vault", record, 0, ""); a.status != http.StatusOK || a.version != "1" {
		t.Fatalf("create: %d %q", a.status, a.body)
	}
	a := alice.do("GET", "/vault", nil, -1, "")
	if a.status != http.StatusOK || a.version != "1" || !bytes.Equal(a.body, record) {
		t.Fatalf("GET vault: %d version %q, same bytes %v", a.status, a.version, bytes.Equal(a.body, record))
	}
	// A second creation, or a write at a stale version, loses.
	if a := alice.do("PUT", "/vault", record, 0, ""); a.status != http.StatusConflict || a.version != "1" || a.json(t)["version"] != float64(1) {
		t.Fatalf("second create: %d %q %q", a.status, a.version, a.body)
	}
	if a := alice.do("PUT", "/vault", record, 1, ""); a.status != http.StatusOK || a.version != "2" {
		t.Fatalf("update at 1: %d %q", a.status, a.body)
	}
	if a := alice.do("PUT", "/vault", record, 1, ""); a.status != http.StatusConflict || a.version != "2" {
		t.Fatalf("update at stale 1: %d %q", a.status, a.body)
	}
	if st := alice.do("GET", "/", nil, -1, "").json(t); st["vault"].(map[string]any)["version"] != float64(2) {
		t.Fatalf("status after two writes: %v", st)
	}
}

func TestServerRefusesBadWrites(t *testing.T) {
	e := newServerEnv(t, zk.Config{MaxRecordLen: 1024}, ratelimit.Rule{})
	alice := e.login("alice", false)
	record, u := testVault(t, "alice")
	good := sealAt(t, u, "n1", "hello", 1)
	format1, err := u.Seal([]byte("hello"), []byte("keyhold/zk/record/n1"))
	if err != nil {
		t.Fatal(err)
	}
	truncated := record[:len(record)-1]
	cases := []struct {
		name, method, path string
		body               []byte
		expect             int64
		contentType        string
		status             int
		code               string
	}{
		{"vault garbage", "PUT", "/vault", []byte("not a vault"), 0, "", 400, "invalid_record"},
		{"vault truncated", "PUT", "/vault", truncated, 0, "", 400, "invalid_record"},
		{"vault trailing byte", "PUT", "/vault", append(append([]byte{}, record...), 0), 0, "", 400, "invalid_record"},
		{"vault as a form", "PUT", "/vault", record, 0, "application/x-www-form-urlencoded", 415, "content_type"},
		{"vault as text", "PUT", "/vault", record, 0, "text/plain", 415, "content_type"},
		{"no expect", "PUT", "/vault", record, -1, "", 400, "expect"},
		{"empty body", "PUT", "/records/n1", []byte{}, 0, "", 400, "empty"},
		{"vault too large", "PUT", "/vault", make([]byte, storage.MaxBlobDataLen+1), 0, "", 413, "too_large"},
		{"record too large", "PUT", "/records/n1", make([]byte, 1025), 0, "", 413, "too_large"},
		{"record format 1", "PUT", "/records/n1", format1, 0, "", 400, "invalid_record"},
		{"record not sealed", "PUT", "/records/n1", bytes.Repeat([]byte{2, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, 4)[:41], 0, "", 400, "invalid_record"},
		{"record key version 0", "PUT", "/records/n1", withKeyVersion(good, 0), 0, "", 400, "invalid_record"},
		{"record version ahead", "PUT", "/records/n1", sealAt(t, u, "n1", "x", 2), 0, "", 400, "version_mismatch"},
		{"record version behind", "PUT", "/records/n1", sealAt(t, u, "n1", "x", 1), 1, "", 400, "version_mismatch"},
		{"name with a space", "PUT", "/records/a%20b", good, 0, "", 400, "invalid_name"},
		{"name with a slash", "GET", "/records/a%2Fb", nil, -1, "", 400, "invalid_name"},
		{"name too long", "GET", "/records/" + strings.Repeat("a", zk.MaxNameLen+1), nil, -1, "", 400, "invalid_name"},
		{"name dot", "PUT", "/records/%2E", good, 0, "", 400, "invalid_name"},
		{"name dot dot", "PUT", "/records/%2E%2E", good, 0, "", 400, "invalid_name"},
		{"name not ASCII", "GET", "/records/%C3%A9", nil, -1, "", 400, "invalid_name"},
		{"delete expecting 0", "DELETE", "/records/n1", nil, 0, "", 400, "expect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := alice.do(c.method, c.path, c.body, c.expect, c.contentType)
			if a.status != c.status || a.errorCode(t) != c.code {
				t.Errorf("%d %q, want %d %s", a.status, a.body, c.status, c.code)
			}
		})
	}
	for _, expect := range []string{"-1", "01", "+1", "1.0", "18446744073709551615", "99999999999999999999", " 1", "0x1"} {
		req, _ := http.NewRequest("PUT", e.url+"/zk/records/n1", bytes.NewReader(good))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(zk.ExpectHeader, expect)
		resp, err := alice.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Keyhold-Expect %q: %d, want 400", expect, resp.StatusCode)
		}
	}
	if blobs, _ := e.store.ListBlobs(context.Background(), "alice", "", 10); len(blobs) != 0 {
		t.Errorf("refused writes stored %v", blobs)
	}
	// The positive control: the same request with the right parts passes.
	if a := alice.do("PUT", "/records/n1", good, 0, ""); a.status != http.StatusOK {
		t.Fatalf("good record: %d %q", a.status, a.body)
	}
}

// withKeyVersion returns a copy of an envelope with its key version field
// set to v.
func withKeyVersion(sealed []byte, v uint32) []byte {
	out := append([]byte{}, sealed...)
	binary.BigEndian.PutUint32(out[2:6], v)
	return out
}

func TestServerRecordsTombstonesAndIsolation(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	alice, bob := e.login("alice", false), e.login("bob", false)
	_, u := testVault(t, "alice")
	v1 := sealAt(t, u, "n1", "first", 1)
	if a := alice.do("PUT", "/records/n1", v1, 0, ""); a.status != http.StatusOK || a.version != "1" {
		t.Fatalf("create: %d %q", a.status, a.body)
	}
	a := alice.do("GET", "/records/n1", nil, -1, "")
	if a.status != http.StatusOK || a.version != "1" || !bytes.Equal(a.body, v1) {
		t.Fatalf("GET: %d %q", a.status, a.version)
	}
	pt, version, err := u.OpenVersion(a.body, []byte("keyhold/zk/record/n1"), 1)
	if err != nil || string(pt) != "first" || version != 1 {
		t.Fatalf("the stored record does not open in Go: %q %d %v", pt, version, err)
	}
	// Bob sees nothing of Alice's, and his own name n1 is his.
	if a := bob.do("GET", "/records/n1", nil, -1, ""); a.status != http.StatusNotFound || a.errorCode(t) != "not_found" {
		t.Fatalf("Bob reads Alice's record: %d %q", a.status, a.body)
	}
	if st := bob.do("GET", "/", nil, -1, "").json(t); len(st["records"].([]any)) != 0 {
		t.Fatalf("Bob's status lists %v", st["records"])
	}
	// Deleting keeps the version: the tombstone is at 2, and the next
	// write expects 2.
	if a := alice.do("DELETE", "/records/n1", nil, 1, ""); a.status != http.StatusOK || a.version != "2" {
		t.Fatalf("delete: %d %q", a.status, a.body)
	}
	a = alice.do("GET", "/records/n1", nil, -1, "")
	if a.status != http.StatusNotFound || a.errorCode(t) != "deleted" || a.version != "2" {
		t.Fatalf("GET deleted: %d %q %q", a.status, a.version, a.body)
	}
	// The status lists live records only.
	if st := alice.do("GET", "/", nil, -1, "").json(t); len(st["records"].([]any)) != 0 {
		t.Fatalf("status after delete: %v", st["records"])
	}
	if a := alice.do("PUT", "/records/n1", sealAt(t, u, "n1", "again", 1), 0, ""); a.status != http.StatusConflict || a.version != "2" {
		t.Fatalf("recreate at 0 after a delete: %d %q", a.status, a.body)
	}
	if a := alice.do("PUT", "/records/n1", sealAt(t, u, "n1", "again", 3), 2, ""); a.status != http.StatusOK || a.version != "3" {
		t.Fatalf("recreate at 2: %d %q", a.status, a.body)
	}
	if a := alice.do("DELETE", "/records/n1", nil, 2, ""); a.status != http.StatusConflict || a.version != "3" {
		t.Fatalf("delete at a stale version: %d %q", a.status, a.body)
	}
}

func TestServerRecordLimit(t *testing.T) {
	e := newServerEnv(t, zk.Config{MaxRecords: 2}, ratelimit.Rule{})
	alice := e.login("alice", false)
	_, u := testVault(t, "alice")
	for _, n := range []string{"a", "b"} {
		if a := alice.do("PUT", "/records/"+n, sealAt(t, u, n, n, 1), 0, ""); a.status != http.StatusOK {
			t.Fatalf("record %s: %d %q", n, a.status, a.body)
		}
	}
	if a := alice.do("PUT", "/records/c", sealAt(t, u, "c", "c", 1), 0, ""); a.status != http.StatusForbidden || a.errorCode(t) != "too_many_records" {
		t.Fatalf("third record: %d %q", a.status, a.body)
	}
	// Replacing one is no new record; deleting one makes room.
	if a := alice.do("PUT", "/records/a", sealAt(t, u, "a", "a2", 2), 1, ""); a.status != http.StatusOK {
		t.Fatalf("replacement at the limit: %d %q", a.status, a.body)
	}
	if a := alice.do("DELETE", "/records/b", nil, 1, ""); a.status != http.StatusOK {
		t.Fatalf("delete: %d %q", a.status, a.body)
	}
	if a := alice.do("PUT", "/records/c", sealAt(t, u, "c", "c", 1), 0, ""); a.status != http.StatusOK {
		t.Fatalf("record after a delete: %d %q", a.status, a.body)
	}
	// Tombstones count against the names: 4×MaxRecords names in all.
	if a := alice.do("DELETE", "/records/c", nil, 1, ""); a.status != http.StatusOK {
		t.Fatal(a.status)
	}
	for i := range 5 {
		n := "t" + strconv.Itoa(i)
		if a := alice.do("PUT", "/records/"+n, sealAt(t, u, n, n, 1), 0, ""); a.status != http.StatusOK {
			t.Fatalf("name %s: %d %q", n, a.status, a.body)
		}
		if a := alice.do("DELETE", "/records/"+n, nil, 1, ""); a.status != http.StatusOK {
			t.Fatal(a.status)
		}
	}
	// a, b, c and t0 to t4 are 8 names, one of them live: a ninth is
	// refused.
	if a := alice.do("PUT", "/records/z", sealAt(t, u, "z", "z", 1), 0, ""); a.status != http.StatusForbidden {
		t.Fatalf("a ninth name: %d %q", a.status, a.body)
	}
}

func TestServerRateLimitPerUser(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{Name: "zk-test", Limit: 3, Period: time.Hour})
	alice, bob := e.login("alice", false), e.login("bob", false)
	for i := range 3 {
		if a := alice.do("GET", "/", nil, -1, ""); a.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, a.status)
		}
	}
	if a := alice.do("GET", "/", nil, -1, ""); a.status != http.StatusTooManyRequests {
		t.Fatalf("fourth request: %d, want 429", a.status)
	}
	if a := bob.do("GET", "/", nil, -1, ""); a.status != http.StatusOK {
		t.Fatalf("another user is limited by Alice's requests: %d", a.status)
	}
}

func TestServerKeyVersionNeverGoesBack(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	alice := e.login("alice", false)
	store := memstore.New()
	v, _ := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	ctx := context.Background()
	u, err := v.Create(ctx, "alice", []byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	u.Lock()
	v1, _ := store.GetVault(ctx, "alice")
	u2, _, err := v.RotateMasterKey(ctx, "alice", []byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	u2.Lock()
	v2, _ := store.GetVault(ctx, "alice")
	if a := alice.do("PUT", "/vault", v2.Data, 0, ""); a.status != http.StatusOK {
		t.Fatalf("key version 2: %d %q", a.status, a.body)
	}
	if a := alice.do("PUT", "/vault", v1.Data, 1, ""); a.status != http.StatusBadRequest || a.errorCode(t) != "key_version_decreased" {
		t.Fatalf("key version 1 over 2: %d %q", a.status, a.body)
	}
}

func TestServerDeleteAndNil(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	alice, bob := e.login("alice", false), e.login("bob", false)
	ra, ua := testVault(t, "alice")
	rb, ub := testVault(t, "bob")
	alice.do("PUT", "/vault", ra, 0, "")
	alice.do("PUT", "/records/n", sealAt(t, ua, "n", "a", 1), 0, "")
	bob.do("PUT", "/vault", rb, 0, "")
	bob.do("PUT", "/records/n", sealAt(t, ub, "n", "b", 1), 0, "")
	if err := e.srv.Delete(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if blobs, _ := e.store.ListBlobs(context.Background(), "alice", "", 10); len(blobs) != 0 {
		t.Fatalf("Alice's blobs after Delete: %v", blobs)
	}
	if blobs, _ := e.store.ListBlobs(context.Background(), "bob", "", 10); len(blobs) != 2 {
		t.Fatalf("Bob's blobs after Alice's Delete: %v", blobs)
	}
	var nilServer *zk.Server
	if err := nilServer.Delete(context.Background(), "alice"); err == nil {
		t.Fatal("nil Server deleted")
	}
	rec := httptest.NewRecorder()
	nilServer.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("nil Server answered %d", rec.Code)
	}
	for _, cfg := range []zk.Config{{}, {Store: memstore.New()}, {MaxRecordLen: -1}, {MaxRecords: -1}} {
		if s, err := zk.New(cfg); !errors.Is(err, zk.ErrConfig) || s != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}

func TestServerConfigBounds(t *testing.T) {
	store := memstore.New()
	quiet := slog.New(slog.DiscardHandler)
	m, _ := session.New(store, session.Config{Logger: quiet, AllowInsecureCookies: true})
	l, _ := ratelimit.New(store, zk.DefaultRule(), ratelimit.Options{Logger: quiet})
	ok := zk.Config{Sessions: m, Store: store, Limiter: l}
	if _, err := zk.New(ok); err != nil {
		t.Fatalf("a whole Config: %v", err)
	}
	for name, edit := range map[string]func(*zk.Config){
		"no Sessions":          func(c *zk.Config) { c.Sessions = nil },
		"no Store":             func(c *zk.Config) { c.Store = nil },
		"no Limiter":           func(c *zk.Config) { c.Limiter = nil },
		"MaxRecordLen -1":      func(c *zk.Config) { c.MaxRecordLen = -1 },
		"MaxRecordLen too big": func(c *zk.Config) { c.MaxRecordLen = storage.MaxBlobDataLen + 1 },
		"MaxRecords -1":        func(c *zk.Config) { c.MaxRecords = -1 },
		"MaxRecords too big":   func(c *zk.Config) { c.MaxRecords = zk.MaxMaxRecords + 1 },
	} {
		c := ok
		edit(&c)
		if s, err := zk.New(c); !errors.Is(err, zk.ErrConfig) || s != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
