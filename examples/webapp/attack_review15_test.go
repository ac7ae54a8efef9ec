package main

// Attack review of issue 15's storage switch, flags, devices page and
// error pages (review 15). Each test is a finding's regression test or a
// defense that held.

import (
	"context"
	"flag"
	"fmt"
	"github.com/jackc/pgx/v5"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/kdf"
)

// A note's ID comes from the address (/notes/{id}): a zero byte or bytes
// that are not UTF-8 there reached PostgreSQL, which refuses such text,
// and the app answered 500 with a "webapp.error" log line. Now the app
// refuses them before the query, with a 400 page, on both storages.
func TestR15NoteIDNotTextOnPostgres(t *testing.T) {
	t.Parallel()
	dsn, _, _ := testSchema(t)
	sqlite, pg := newEnv(t, true), newEnvWith(t, true, config{PostgresDSN: dsn})
	for name, e := range map[string]*testEnv{"sqlite": sqlite, "postgres": pg} {
		c := e.client()
		e.signup(c, "ada")
		for _, id := range []string{"%00", "%FF", "a%00b", "%ED%A0%80", "%C0%AF"} {
			for _, path := range []string{"/notes/" + id, "/notes/" + id + "/delete"} {
				r := e.post(c, path, url.Values{"title": {"t"}, "body": {"b"}, "version": {"1"}})
				if r.code != 400 || !strings.Contains(r.body, "characters this app does not accept") {
					t.Errorf("%s: POST %s: %d %q, want the 400 page\n%.300s", name, path, r.code, r.location, r.body)
				}
			}
		}
		if strings.Contains(e.logs.String(), "webapp.error") {
			t.Errorf("%s: a user's input was logged as a server error:\n%s", name, e.logs.String())
		}
		// A note's real ID still works.
		expect(t, name+": add note", e.post(c, "/notes", url.Values{"title": {"kept"}, "body": {"b"}}), 303, "/notes")
	}
}

// checkArgs refuses only strings a text column cannot hold; byte slices
// (the sealed notes) and other types pass.
func TestR15CheckArgs(t *testing.T) {
	t.Parallel()
	for _, ok := range [][]any{nil, {"", "abc", "é€😀", []byte{0, 0xff}, int64(0), nil}} {
		if err := checkArgs(ok); err != nil {
			t.Errorf("checkArgs(%q) = %v", ok, err)
		}
	}
	for _, bad := range []any{"\x00", "a\x00", "\xff", "\xed\xa0\x80", "ok\xc3"} {
		if err := checkArgs([]any{"fine", bad}); err != errNotText {
			t.Errorf("checkArgs(%q) = %v, want errNotText", bad, err)
		}
	}
}

// Behind a TLS-terminating proxy on the same machine (the app on plain
// HTTP on loopback, -trusted-proxy, browsers at an https:// origin), the
// app used the development cookies: no Secure flag, no __Host- prefix,
// and the session package's plain-HTTP allowance for loopback peers,
// which every request through a local proxy is (session.Config says
// never to set AllowInsecureCookies behind one). The cookie then went
// over any http:// request to the site and could be set by a subdomain.
// Now the cookies stay strict there, and a session works only through
// the proxy when it says https.
func TestR15StrictCookiesBehindLocalTLSProxy(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	const origin = "https://notes.example"
	cfg := config{Origin: origin, TrustedProxies: proxies}
	insecure, err := insecureCookies(false, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.InsecureCookies = insecure
	cfg.DBPath, cfg.VaultKDF, cfg.Logger = filepath.Join(t.TempDir(), "webapp.db"), kdf.InteractiveParams(), slog.New(slog.DiscardHandler)
	h, cleanup, err := newApp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanup() })
	srv := httptest.NewServer(h) // plain HTTP on loopback: the proxy's connection
	t.Cleanup(srv.Close)
	send := func(method, path, proto string, form url.Values, cookies []*http.Cookie) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "notes.example"
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := send("POST", "/signup", "https", url.Values{"username": {"ada"}, "password": {password}}, nil)
	if resp.StatusCode != 303 {
		t.Fatalf("sign-up through the proxy: %d", resp.StatusCode)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "keyhold") && !strings.Contains(c.Name, "device") {
			session = c
		}
		if !c.Secure {
			t.Errorf("cookie %s without Secure behind a TLS-terminating proxy", c.Name)
		}
	}
	if session == nil || session.Name != "__Host-keyhold" {
		t.Fatalf("session cookie %v, want __Host-keyhold", session)
	}
	if got := send("GET", "/notes", "https", nil, []*http.Cookie{session}); got.StatusCode != 200 {
		t.Errorf("notes through the proxy over https: %d, want 200", got.StatusCode)
	}
	// The same cookie on a request the proxy forwarded from http:// opens
	// nothing.
	if got := send("GET", "/notes", "http", nil, []*http.Cookie{session}); got.StatusCode != 303 || !strings.HasPrefix(got.Header.Get("Location"), "/login") {
		t.Errorf("notes over http through the proxy: %d %q, want a redirect to the login", got.StatusCode, got.Header.Get("Location"))
	}

	// An https:// origin over plain HTTP with no trusted proxy: refused at
	// start; development (no origin, or http://localhost) keeps the
	// plain-HTTP cookies; TLS never has them.
	if _, err := insecureCookies(false, config{Origin: origin}); err == nil {
		t.Error("an https origin over plain HTTP without a trusted proxy was accepted")
	}
	for _, c := range []config{{}, {Origin: "http://localhost:8080"}, {Origin: "http://localhost:8090", TrustedProxies: proxies}} {
		if insecure, err := insecureCookies(false, c); !insecure || err != nil {
			t.Errorf("development %+v: insecure %v, %v", c, insecure, err)
		}
	}
	if insecure, err := insecureCookies(true, config{Origin: origin}); insecure || err != nil {
		t.Errorf("TLS: insecure %v, %v", insecure, err)
	}
}

// -trusted-proxy 0.0.0.0/0 (or ::/0, or ::ffff:0.0.0.0/96, which the
// resolver reads as 0.0.0.0/0) trusted every peer: each client chose its
// address for the rate limits and lockouts with X-Forwarded-For, and
// claimed HTTPS with X-Forwarded-Proto. Now refused, from the flag and
// from the environment.
func TestR15TrustedProxyEveryAddressRefused(t *testing.T) {
	for _, v := range []string{"0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96", "10.0.0.0/8, 0.0.0.0/0", "0.0.0.0/0.5", "1.2.3.4/33"} {
		var p proxyList
		if err := p.Set(v); err == nil {
			t.Errorf("-trusted-proxy %q accepted: %v", v, p)
		}
	}
	for v, want := range map[string]string{"127.0.0.1": "127.0.0.1/32", "10.1.2.3/8": "10.0.0.0/8", "::1": "::1/128", "fd00::/8": "fd00::/8", " 192.0.2.0/24 ,": "192.0.2.0/24"} {
		var p proxyList
		if err := p.Set(v); err != nil || p.String() != want {
			t.Errorf("-trusted-proxy %q: %v %v, want %s", v, p, err, want)
		}
	}
	t.Setenv(envProxies, "0.0.0.0/0")
	if err := fromEnv(flag.NewFlagSet("webapp", flag.ContinueOnError), &config{}, "", "", "", nil); err == nil {
		t.Errorf("%s=0.0.0.0/0 accepted", envProxies)
	}
}

// Defenses of the styled error pages that held: a HEAD request gets the
// status, the headers (Allow, the security headers) and no body; a form of
// 100,000 fields, one over the size limit, or a query that does not parse
// get their page (400, 413), never a handler with an empty form or a 500;
// a writer under the wrapper still streams and takes deadlines
// (http.ResponseController reaches the connection through Unwrap).
func TestR15StyledErrorsHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	for _, tc := range []struct {
		method, path, body string
		code               int
		allow              string
	}{
		{"HEAD", "/nope", "", 404, ""},
		{"HEAD", "/logout", "", 405, "POST"},
		{"PUT", "/login", "username=ada", 405, "GET, HEAD, POST"},
		{"POST", "/login", strings.Repeat("a=1&", 100000), 400, ""},
		{"POST", "/login", "username=" + strings.Repeat("a", 10<<20), 413, ""},
		{"POST", "/login?%zz", "username=ada&password=x", 400, ""},
	} {
		req, err := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get("Allow") != tc.allow || resp.Header.Get("Content-Security-Policy") == "" ||
			resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || (tc.method == "HEAD") != (len(b) == 0) {
			t.Errorf("%s %s: %d Allow %q %v, %d bytes", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), resp.Header, len(b))
		}
	}
	if strings.Contains(e.logs.String(), "webapp.error") {
		t.Errorf("bad input logged as a server error:\n%s", e.logs.String())
	}

	srv := httptest.NewServer((&app{}).styledErrors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, "first")
		if err := rc.Flush(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		<-r.Context().Done() // until the client has read the first part
	})))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); resp.StatusCode != 200 || err != nil || string(buf) != "first" {
		t.Fatalf("streamed answer: %d %q %v", resp.StatusCode, buf, err)
	}
}

// Defenses of "Log out everywhere else" that held, on PostgreSQL and
// Redis (examples/multi's storage): a cross-site post ends nothing (403
// page), even with a fresh password; the owner's post ends the other
// sessions, API-free browsers and a second tab's cookie alike, and keeps
// this one logged in and unlocked.
func TestR15RevokeOthersCrossSiteAndRedis(t *testing.T) {
	t.Parallel()
	dsn, _, _ := testSchema(t)
	redisURL, prefix, rdb := testRedis(t)
	e := newEnvWith(t, true, config{PostgresDSN: dsn, RedisURL: redisURL, RedisPrefix: prefix})
	c := e.client()
	e.signup(c, "ada")
	other := e.client()
	e.login(other, "ada")
	for _, h := range []http.Header{{"Sec-Fetch-Site": {"cross-site"}}, {"Origin": {"https://evil.example"}}, {"Sec-Fetch-Site": {"same-site"}}} {
		r := e.do(c, "POST", "/devices/revoke-others", url.Values{}, h)
		if r.code != 403 || !strings.Contains(r.body, "did not come from this app") {
			t.Errorf("cross-site %v: %d %q", h, r.code, r.location)
		}
	}
	expect(t, "the other device after the cross-site posts", e.get(other, "/notes"), 200, "")
	if n := redisKeys(t, rdb, prefix, "{u:*}s:"); n != 2 {
		t.Fatalf("%d sessions in Redis, want 2", n)
	}
	expect(t, "log out everywhere else", e.post(c, "/devices/revoke-others", nil), 303, "/devices?others=ended")
	expect(t, "the other device", e.get(other, "/notes"), 303, "/login?ended=1")
	expect(t, "this device, unlocked", e.get(c, "/notes"), 200, "")
	if n := redisKeys(t, rdb, prefix, "{u:*}s:"); n != 1 {
		t.Errorf("%d sessions in Redis after, want 1", n)
	}
}

// A PostgreSQL DSN or a Redis URL holds a password; the app's start-up
// errors and logs never quote it, whether it cannot be parsed, reached
// or logged in to.
func TestR15StorageSecretsNotInErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-PW-r15"
	pg := "postgres://u:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"
	cfgs := []config{
		{PostgresDSN: pg},
		{PostgresDSN: "postgres://u:" + secret + "@[bad/db"},
		{PostgresDSN: "postgres://u:" + secret + "@127.0.0.1:5432/db?sslmode=bogus"},
		{PostgresDSN: "host=127.0.0.1 port=notaport password=" + secret},
		{PostgresDSN: "host=127.0.0.1 port=1 connect_timeout=2 password=" + secret},
	}
	if dsn := os.Getenv(testPostgresEnv); dsn != "" {
		cfgs = append(cfgs,
			config{PostgresDSN: dsn, RedisURL: "redis://u:" + secret + "@127.0.0.1:1/0?dial_timeout=1s&max_retries=0"},
			config{PostgresDSN: dsn, RedisURL: "redis://:" + secret + "@[bad:6379/0"},
			config{PostgresDSN: dsn, RedisURL: "redis://:" + secret + "@127.0.0.1:6379/0?dial_timeout=bogus"},
			config{PostgresDSN: dsn, RedisURL: "http://:" + secret + "@127.0.0.1:6379/0"})
		if u := os.Getenv(testRedisEnv); u != "" {
			if ru, err := url.Parse(u); err == nil {
				ru.User = url.UserPassword("no-such-user-r15", secret)
				cfgs = append(cfgs, config{PostgresDSN: dsn, RedisURL: ru.String()})
			}
		}
	}
	for _, cfg := range cfgs {
		var logs syncBuffer
		cfg.DBPath = filepath.Join(t.TempDir(), "x.db")
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		_, cleanup, err := newApp(cfg)
		if err == nil {
			cleanup()
			t.Errorf("%q %q: started", cfg.PostgresDSN, cfg.RedisURL)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("the password is in the error or the log: %v\n%s", err, logs.String())
		}
	}
}

// On PostgreSQL the app's tables have common names (users, notes, …) and
// go in the schema the DSN's search_path resolves to, often "public",
// shared with other programs. CREATE TABLE IF NOT EXISTS left another
// program's "users" table in place, and the app started on it: its
// sign-ups then failed (500) on the other table's columns, or, with
// columns alike, it read another program's users and password hashes.
// Now the app refuses to start on a table of its name whose columns are
// not its own, and says which.
func TestR15ForeignTableRefused(t *testing.T) {
	t.Parallel()
	dsn, schema, admin := testSchema(t)
	if _, err := admin.ExecContext(t.Context(), `CREATE TABLE "`+schema+`".users (id TEXT PRIMARY KEY, username TEXT UNIQUE, password_hash TEXT, email TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	_, cleanup, err := newApp(config{PostgresDSN: dsn, TOTPKeyPath: filepath.Join(t.TempDir(), "totp-key"), Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		cleanup()
		t.Fatal("the app started on another program's users table")
	}
	if !strings.Contains(err.Error(), `"users"`) || !strings.Contains(err.Error(), "email") {
		t.Errorf("the error does not say which table and column: %v", err)
	}
	// Its own tables, made by an earlier start, are accepted.
	dsn2, _, _ := testSchema(t)
	for range 2 {
		_, cleanup, err := newApp(config{PostgresDSN: dsn2, TOTPKeyPath: filepath.Join(t.TempDir(), "totp-key"), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		cleanup()
	}
}

// appColumns reads every column of the app's schema.
func TestR15AppColumns(t *testing.T) {
	t.Parallel()
	got := appColumns(postgresSchema(schema))
	want := map[string]map[string]string{
		"users":            {"id": "text", "username": "text", "password_hash": "text"},
		"notes":            {"id": "text", "user_id": "text", "created": "bigint", "title": "bytea", "body": "bytea", "version": "bigint"},
		"keys_to_show":     {"user_id": "text", "sealed": "bytea"},
		"totp_codes_saved": {"user_id": "text", "generated": "bigint"},
		"app_secrets":      {"name": "text", "value": "bytea"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("appColumns = %v, want %v", got, want)
	}
}

// Every query the app writes (a string literal given to an Exec, Query or
// QueryRow call in the package) is rebound for PostgreSQL to as many
// placeholders as it is given arguments, and uses none of the SQL that
// rebindDollar does not read (block comments, dollar-quoted or E'…'
// strings, PostgreSQL's ? operators): a query the rebinding would break
// or misnumber fails here rather than on PostgreSQL at run time. No query
// is built from request data: the arguments are always bound.
func TestR15EveryQueryRebinds(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "ExecContext" && sel.Sel.Name != "QueryContext" && sel.Sel.Name != "QueryRowContext") {
				return true
			}
			pos := fset.Position(call.Pos())
			lit, ok := call.Args[1].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				if id, isIdent := call.Args[1].(*ast.Ident); isIdent && id.Name == "schema" || isIdent && id.Name == "stmt" || isIdent && id.Name == "query" {
					return true // the schema (TestPostgresSchema), and the wrappers' own forwarding
				}
				if c, isCall := call.Args[1].(*ast.CallExpr); isCall {
					if f, isSel := c.Fun.(*ast.SelectorExpr); isSel && (f.Sel.Name == "rebind") {
						return true
					}
				}
				t.Errorf("%s: a query that is not a string literal: nothing may build one from a request", pos)
				return true
			}
			q, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			if strings.Contains(q, "$") && !strings.Contains(q, "?") { // written for PostgreSQL alone (storage.go)
				return true
			}
			for _, bad := range []string{"/*", "E'", "e'", "$", "??", "?|", "?&", "\\"} {
				if strings.Contains(q, bad) {
					t.Errorf("%s: query %q holds %q, which rebindDollar does not read", pos, q, bad)
				}
			}
			args := len(call.Args) - 2
			if call.Ellipsis.IsValid() {
				return true
			}
			if got := strings.Count(rebindDollar(q), "$"); got != args || strings.Count(q, "?") != args {
				t.Errorf("%s: query %q: %d placeholders after rebinding, %d arguments", pos, q, got, args)
			}
			return true
		})
	}
	if checked < 30 {
		t.Fatalf("only %d queries found: the test no longer sees the app's queries", checked)
	}
}

// pgx's default sslmode (prefer) falls back to plain TCP and checks no
// certificate; redis:// is plain TCP: to a database on another machine,
// someone on the network reads and changes what the app stores, and the
// password. The documented DSN and URL had no word of it. Now the app
// warns at start (webapp.storage_unprotected) for a host not on this
// machine without a verified TLS connection.
func TestR15StorageOverTheNetworkWarned(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]bool{
		"postgres://u:pw@db.example:5432/d":                          true,
		"postgres://u:pw@db.example:5432/d?sslmode=prefer":           true,
		"postgres://u:pw@db.example:5432/d?sslmode=require":          true,
		"postgres://u:pw@db.example:5432/d?sslmode=disable":          true,
		"postgres://u:pw@db.example:5432/d?sslmode=verify-full":      false,
		"host=db.example sslmode=verify-full":                        false,
		"postgres://u:pw@127.0.0.1:5432/d?sslmode=disable":           false,
		"postgres://u:pw@localhost:5432/d":                           false,
		"postgres://u:pw@[::1]:5432/d":                               false,
		"host=/var/run/postgresql":                                   false,
		"postgres://u:pw@127.0.0.1,db.example:5432/d?sslmode=prefer": true,
	} {
		pcfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := postgresUnverified(pcfg); got != want {
			t.Errorf("%s: unverified %v, want %v", dsn, got, want)
		}
	}
	for rawURL, want := range map[string]bool{
		"redis://192.0.2.1:6379/0?dial_timeout=10ms&max_retries=-1":                   true,
		"rediss://192.0.2.1:6379/0?dial_timeout=10ms&max_retries=-1&skip_verify=true": true,
		"rediss://192.0.2.1:6379/0?dial_timeout=10ms&max_retries=-1":                  false,
		"redis://127.0.0.1:1/0?dial_timeout=10ms&max_retries=-1":                      false,
		"unix:///nonexistent/redis.sock?dial_timeout=10ms&max_retries=-1":             false,
	} {
		var logs syncBuffer
		if _, _, err := openRedis(t.Context(), rawURL, "", slog.New(slog.NewTextHandler(&logs, nil))); err == nil {
			t.Fatalf("%s: connected", rawURL)
		}
		if got := strings.Contains(logs.String(), "webapp.storage_unprotected"); got != want {
			t.Errorf("%s: warned %v, want %v\n%s", rawURL, got, want, logs.String())
		}
	}
}
