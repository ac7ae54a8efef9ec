package main

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/sqlstore"
)

const (
	password = "velvet otter learns calculus"
	noteText = "the cat's name is Ada"
)

// syncBuffer collects the app's log lines.
type syncBuffer = testkit.SyncBuffer

// clock is the clock of sessions and limits, moved by hand.
type clock = testkit.Clock

type testEnv struct {
	t      *testing.T
	srv    *httptest.Server
	dbPath string
	logs   *syncBuffer
	clock  *clock
	origin string // the app's origin for passkeys: http(s)://localhost:PORT
}

// newEnv serves the app over TLS, or over plain HTTP on loopback in the
// development mode.
func newEnv(t *testing.T, useTLS bool) *testEnv {
	t.Helper()
	return newEnvWith(t, useTLS, config{})
}

// newEnvWith is newEnv with some of the app's configuration chosen by the
// test.
func newEnvWith(t *testing.T, useTLS bool, cfg config) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dbPath: filepath.Join(t.TempDir(), "webapp.db"), logs: &syncBuffer{}, clock: testkit.NewClock(time.Now())}
	cfg.DBPath, cfg.InsecureCookies, cfg.VaultKDF = e.dbPath, !useTLS, kdf.InteractiveParams()
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Now = e.clock.Now
	// The listener first: passkeys need the origin, localhost and its
	// port (the tests send Host: localhost:PORT to reach them).
	e.srv = httptest.NewUnstartedServer(nil)
	if cfg.Origin == "" {
		scheme := "http"
		if useTLS {
			scheme = "https"
		}
		cfg.Origin = fmt.Sprintf("%s://localhost:%d", scheme, e.srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	e.origin = cfg.Origin
	h, cleanup, err := newApp(cfg)
	if err != nil {
		e.srv.Close()
		t.Fatal(err)
	}
	e.srv.Config.Handler = h
	if useTLS {
		e.srv.StartTLS()
	} else {
		e.srv.Start()
	}
	t.Cleanup(func() {
		e.srv.Close()
		if err := cleanup(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// client is a browser: a cookie jar, and redirects left to the test.
func (e *testEnv) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := *e.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// clientFrom is a browser whose connections come from the loopback address
// ip (anything in 127.0.0.0/8 reaches the server on Linux), so that the
// app sees a client address of its own.
func (e *testEnv) clientFrom(ip string) *http.Client {
	c := e.client()
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
	c.Transport = tr
	return c
}

type result struct {
	code     int
	location string
	body     string
}

func (e *testEnv) do(c *http.Client, method, path string, form url.Values, header http.Header) result {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header.Get("Location"), string(b)}
}

func (e *testEnv) get(c *http.Client, path string) result {
	e.t.Helper()
	return e.do(c, "GET", path, nil, nil)
}

func (e *testEnv) post(c *http.Client, path string, form url.Values) result {
	e.t.Helper()
	return e.do(c, "POST", path, form, nil)
}

func expect(t *testing.T, what string, got result, code int, location string) {
	t.Helper()
	if got.code != code || got.location != location {
		t.Fatalf("%s: got %d %q, want %d %q\n%s", what, got.code, got.location, code, location, got.body)
	}
}

var recoveryKey = regexp.MustCompile(`[0-9A-Z]{4}(-[0-9A-Z]{4}){7}`)

// signup creates the account and checks the recovery-keys page.
func (e *testEnv) signup(c *http.Client, name string) []string {
	e.t.Helper()
	expect(e.t, "signup", e.post(c, "/signup", url.Values{"username": {name}, "password": {password}}), 303, "/recovery-keys")
	r := e.get(c, "/recovery-keys")
	expect(e.t, "recovery keys", r, 200, "")
	keys := recoveryKey.FindAllString(r.body, -1)
	if len(keys) != 2 || keys[0] == keys[1] {
		e.t.Fatalf("signup shows recovery keys %q, want 2 different ones", keys)
	}
	// Shown once: a reload finds them gone, and says so.
	again := e.get(c, "/recovery-keys")
	expect(e.t, "recovery keys again", again, 200, "")
	if recoveryKey.MatchString(again.body) || !strings.Contains(again.body, "shown once") {
		e.t.Fatalf("recovery keys shown twice:\n%s", again.body)
	}
	return keys
}

func (e *testEnv) login(c *http.Client, name string) {
	e.t.Helper()
	expect(e.t, "login", e.post(c, "/login", url.Values{"username": {name}, "password": {password}}), 303, "/notes")
}

func TestWebAppOverTLS(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()

	home := e.get(c, "/")
	expect(t, "home", home, 200, "")
	if !strings.Contains(home.body, `href="/signup"`) {
		t.Fatalf("home page has no sign-up link:\n%s", home.body)
	}
	r := e.post(c, "/signup", url.Values{"username": {"ada"}, "password": {"short"}})
	expect(t, "weak password", r, 400, "")
	if !strings.Contains(r.body, "at least 15 characters") {
		t.Fatalf("weak password: no explanation:\n%s", r.body)
	}

	keys := e.signup(c, "ada")
	expect(t, "notes after sign-up", e.get(c, "/notes"), 200, "")
	expect(t, "sign-up with a taken name", e.post(e.client(), "/signup", url.Values{"username": {"ADA"}, "password": {password}}), 409, "")

	// Logout is POST only; GET changes nothing.
	expect(t, "GET /logout", e.get(c, "/logout"), 405, "")
	expect(t, "still logged in", e.get(c, "/notes"), 200, "")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	expect(t, "notes after logout", e.get(c, "/notes"), 303, "/login")

	// An unknown user and a wrong password get the same answer.
	wrong := e.post(c, "/login", url.Values{"username": {"ada"}, "password": {"velvet otter learns algebra"}})
	unknown := e.post(c, "/login", url.Values{"username": {"bob"}, "password": {password}})
	expect(t, "wrong password", wrong, 401, "")
	if strings.Replace(unknown.body, `value="bob"`, `value="ada"`, 1) != wrong.body || wrong.code != unknown.code {
		t.Fatalf("wrong password and unknown user differ:\n%d %s\n%d %s", wrong.code, wrong.body, unknown.code, unknown.body)
	}
	if !strings.Contains(wrong.body, errLogin) {
		t.Fatalf("failed login says:\n%s", wrong.body)
	}

	e.login(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")
	page := e.get(c, "/notes")
	expect(t, "notes", page, 200, "")
	if !strings.Contains(page.body, "groceries") || !strings.Contains(page.body, "the cat&#39;s name is Ada") {
		t.Fatalf("the note is not on the page:\n%s", page.body)
	}

	// The database holds the note sealed: neither the notes table nor any
	// byte of the files contains its title or body.
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var noteID string
	var title, body []byte
	if err := db.QueryRow("SELECT id, title, body FROM notes").Scan(&noteID, &title, &body); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("cat")) || bytes.Contains(title, []byte("groceries")) || len(body) < len(noteText)+16 {
		t.Fatalf("stored note is not sealed: title %q body %q", title, body)
	}
	for _, suffix := range []string{"", "-wal"} {
		raw, err := os.ReadFile(e.dbPath + suffix)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{noteText, "groceries", password} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Fatalf("%q found in the database file%s", secret, suffix)
			}
		}
	}
	if fi, err := os.Stat(e.dbPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode: %v %v", fi.Mode(), err)
	}

	// Cross-origin POSTs are refused before they reach the app.
	for _, h := range []http.Header{{"Sec-Fetch-Site": {"cross-site"}}, {"Origin": {"https://evil.example"}}} {
		r := e.do(c, "POST", "/notes", url.Values{"title": {"forged"}, "body": {"x"}}, h)
		expect(t, "cross-origin POST", r, 403, "")
	}
	if strings.Contains(e.get(c, "/notes").body, "forged") {
		t.Fatal("a cross-origin POST added a note")
	}

	// Lock: the notes are refused until the vault is unlocked again.
	expect(t, "lock", e.post(c, "/lock", nil), 303, "/unlock")
	expect(t, "notes while locked", e.get(c, "/notes"), 303, "/unlock")
	expect(t, "add note while locked", e.post(c, "/notes", url.Values{"title": {"t"}}), 303, "/unlock")
	expect(t, "unlock page", e.get(c, "/unlock"), 200, "")
	expect(t, "unlock, wrong password", e.post(c, "/unlock", url.Values{"password": {"nope"}}), 401, "")
	expect(t, "unlock, not UTF-8", e.post(c, "/unlock", url.Values{"password": {"\xff\xfe"}}), 401, "")
	expect(t, "login, not UTF-8", e.post(e.client(), "/login", url.Values{"username": {"ada"}, "password": {"\xff\xfe"}}), 401, "")
	expect(t, "unlock", e.post(c, "/unlock", url.Values{"password": {password}}), 303, "/notes")
	if !strings.Contains(e.get(c, "/notes").body, "groceries") {
		t.Fatal("note missing after unlock")
	}

	// Delete the note.
	expect(t, "delete note", e.post(c, "/notes/"+noteID+"/delete", nil), 303, "/notes")
	if strings.Contains(e.get(c, "/notes").body, "groceries") {
		t.Fatal("note still listed after delete")
	}

	// A second device; the first logs it out, after re-entering the
	// password once the login is more than 5 minutes old.
	other := e.client()
	e.login(other, "ada")
	devices := e.get(c, "/devices")
	rows := regexp.MustCompile(`(?s)<tr>(.*?)</tr>`).FindAllStringSubmatch(devices.body, -1)
	var otherRef string
	for _, row := range rows {
		if m := regexp.MustCompile(`name="ref" value="([^"]+)"`).FindStringSubmatch(row[1]); m != nil && !strings.Contains(row[1], "(this device)") {
			otherRef = m[1]
		}
	}
	if len(rows) != 3 || otherRef == "" { // the header row and two sessions
		t.Fatalf("devices page lists %d rows:\n%s", len(rows), devices.body)
	}
	e.clock.Advance(6 * time.Minute)
	expect(t, "revoke, not fresh", e.post(c, "/devices/revoke", url.Values{"ref": {otherRef}}), 303, "/reauth")
	expect(t, "reauth, wrong password", e.post(c, "/reauth", url.Values{"password": {"nope"}}), 401, "")
	expect(t, "reauth", e.post(c, "/reauth", url.Values{"password": {password}}), 303, "/devices")
	expect(t, "revoke", e.post(c, "/devices/revoke", url.Values{"ref": {otherRef}}), 303, "/devices")
	expect(t, "revoked device", e.get(other, "/notes"), 303, "/login?ended=1")
	expect(t, "this device", e.get(c, "/notes"), 200, "")

	// After logout, the old cookie opens nothing.
	u, _ := url.Parse(e.srv.URL)
	var old []*http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "__Host-keyhold" {
			old = append(old, ck)
		} else if ck.Name != "__Host-keyhold-device" {
			t.Errorf("unexpected cookie %s", ck.Name)
		}
	}
	if len(old) != 1 {
		t.Fatalf("cookies over TLS: %v", c.Jar.Cookies(u))
	}
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	thief := e.client()
	thief.Jar.SetCookies(u, old)
	expect(t, "old cookie", e.get(thief, "/notes"), 303, "/login?ended=1")
	expect(t, "old cookie, cleared", e.get(thief, "/devices"), 303, "/login") // the first answer cleared it

	// No secret ever reaches the log.
	logs := e.logs.String()
	for _, secret := range append([]string{password, noteText, "groceries", old[0].Value}, keys...) {
		if strings.Contains(logs, secret) {
			t.Fatalf("log contains %q:\n%s", secret, logs)
		}
	}
	// The library's audit events (SECURITY.md, "Audit events") and the
	// app's own.
	for _, event := range []string{"msg=session_created ", "msg=crypt_vault_unlocked ", "msg=crypt_vault_locked ",
		"msg=session_expired .* reason=revoked\n", "msg=session_expired .* reason=logout\n", "msg=authn_login_fail ", "msg=webapp.login.failed "} {
		if !regexp.MustCompile(event).MatchString(logs) {
			t.Errorf("no %q event in the log", event)
		}
	}
}

// Plain HTTP on loopback works in the development mode, with a cookie
// that is neither Secure nor __Host-.
func TestWebAppDevModeOverPlainHTTP(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	expect(t, "notes", e.get(c, "/notes"), 200, "")
	u, _ := url.Parse(e.srv.URL)
	if cs := c.Jar.Cookies(u); len(cs) != 1 || cs[0].Name != "keyhold" {
		t.Fatalf("cookies over plain HTTP: %v", cs)
	}
	r := e.do(c, "POST", "/logout", nil, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	expect(t, "cross-origin logout", r, 403, "")
	expect(t, "same-origin logout", e.do(c, "POST", "/logout", nil, http.Header{"Origin": {e.srv.URL}}), 303, "/")
	expect(t, "notes after logout", e.get(c, "/notes"), 303, "/login")
}

// Every response carries the security headers, and the stylesheet is
// served from the app's own origin, as the CSP requires.
func TestSecurityHeadersAndStylesheet(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	resp, err := c.Get(e.srv.URL + "/static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("stylesheet: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Strict-Transport-Security", "X-Content-Type-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	expect(t, "templates are not served", e.get(c, "/templates/layout.html"), 404, "")
}

// Without TLS, only a loopback address may be listened on.
func TestListenRefusesPlainHTTPOffLoopback(t *testing.T) {
	ln, err := listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if ln, err := listen("0.0.0.0:0", false); err == nil {
		ln.Close()
		t.Fatal("plain HTTP on every interface was allowed")
	}
	ln, err = listen("0.0.0.0:0", true)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

// newApp fails cleanly: on a database file that others may read, and on
// bad settings once the database is open.
func TestNewAppErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webapp.db")
	if _, _, err := newApp(config{DBPath: path, VaultKDF: kdf.Params{Algorithm: kdf.Argon2id, Time: 1, MemoryKiB: 8}}); err == nil {
		t.Fatal("weak vault KDF parameters were accepted")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := newApp(config{DBPath: path}); !errors.Is(err, sqlstore.ErrInsecurePermissions) {
		t.Fatalf("world-readable database: %v", err)
	}
}
