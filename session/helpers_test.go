package session_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// clock is a fake clock that tests move by hand.
type clock = testkit.Clock

func newClock() *clock { return testkit.NewClock(time.Now().Truncate(time.Millisecond)) }

// logBuffer collects every audit record as text.
type logBuffer = testkit.SyncBuffer

// testApp is a small app over a Manager: the routes an app would have.
type testApp struct {
	t       *testing.T
	m       *session.Manager
	store   *memstore.Store
	vault   *vault.Vault
	clock   *clock
	logs    *logBuffer
	handler http.Handler
}

var testHasher = func() *kdf.Hasher {
	h, err := kdf.New(kdf.Config{})
	if err != nil {
		panic(err)
	}
	return h
}()

const passphrase = "correct horse battery staple"

// testKDF keeps vault unlocks in tests cheap.
var testKDF = kdf.InteractiveParams()

func newTestApp(t *testing.T, cfg session.Config) *testApp {
	t.Helper()
	store := memstore.New()
	return newTestAppOn(t, store, cfg)
}

func newTestAppOn(t *testing.T, store *memstore.Store, cfg session.Config) *testApp {
	t.Helper()
	a := &testApp{t: t, store: store, logs: &logBuffer{}}
	if cfg.Now == nil {
		a.clock = newClock()
		cfg.Now = a.clock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := session.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.m = m
	v, err := vault.New(store, vault.Config{Hasher: testHasher, KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	a.vault = v
	a.handler = m.Handler(a.routes())
	return a
}

func (a *testApp) routes() http.Handler {
	m := a.m
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r.Context(), r.FormValue("user"), session.LoginOptions{Remember: r.FormValue("remember") == "1"}); err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, "logged in")
	})
	mux.HandleFunc("POST /unlock", func(w http.ResponseWriter, r *http.Request) {
		info, ok := m.Current(r.Context())
		if !ok {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		u, err := a.vault.Unlock(r.Context(), info.UserID, []byte(r.FormValue("passphrase")))
		if err != nil {
			fail(w, err)
			return
		}
		defer u.Lock()
		if err := m.Unlock(r.Context(), u); err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, "unlocked")
	})
	mux.Handle("GET /me", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := m.Current(r.Context())
		io.WriteString(w, info.UserID)
	})))
	mux.Handle("GET /secret", m.RequireUnlocked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := m.Unlocked(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		sealed, err := u.Seal([]byte("secret of "+u.UserID()), []byte("test/secret"))
		if err != nil {
			fail(w, err)
			return
		}
		pt, err := u.Open(sealed, []byte("test/secret"))
		if err != nil {
			fail(w, err)
			return
		}
		w.Write(pt)
	})))
	mux.Handle("POST /fresh", m.RequireFresh(5*time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "fresh")
	})))
	for path, call := range map[string]func(context.Context) error{
		"POST /lock":    m.Lock,
		"POST /logout":  m.Logout,
		"POST /reauth":  m.Reauthenticated,
		"POST /renew":   m.Renew,
		"POST /others":  m.RevokeOthers,
		"POST /nothing": func(context.Context) error { return nil },
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if err := call(r.Context()); err != nil {
				fail(w, err)
				return
			}
			io.WriteString(w, "ok")
		})
	}
	return mux
}

// request is a server-shaped request: over TLS unless plain is set.
type request struct {
	method, target string
	cookie         string // the session cookie's value; "" for none
	form           string
	header         http.Header
	plain          bool
	remoteAddr     string
	ctx            context.Context // the request's context, if not the default
}

func (a *testApp) do(r request) *http.Response {
	a.t.Helper()
	return serve(a.handler, a.m.Config().CookieName, r)
}

func serve(h http.Handler, cookieName string, r request) *http.Response {
	var body io.Reader
	if r.form != "" {
		body = strings.NewReader(r.form)
	}
	req := httptest.NewRequest(r.method, "https://app.example"+r.target, body)
	if r.form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.plain {
		req.TLS = nil
		req.URL.Scheme = "http"
	} else if req.TLS == nil {
		req.TLS = &tls.ConnectionState{}
	}
	if r.remoteAddr != "" {
		req.RemoteAddr = r.remoteAddr
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: r.cookie})
	}
	if r.ctx != nil {
		req = req.WithContext(r.ctx)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// sessionCookie returns the session cookie a response sets, or nil.
func sessionCookie(t testing.TB, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, line := range resp.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("unparseable Set-Cookie %q: %v", line, err)
		}
		if c.Name == name {
			if found != nil {
				t.Fatalf("two Set-Cookie headers for %s", name)
			}
			found = c
		}
	}
	return found
}

// login logs user in and returns the session cookie's value.
func (a *testApp) login(user string) string {
	a.t.Helper()
	resp := a.do(request{method: "POST", target: "/login", form: "user=" + user})
	if resp.StatusCode != 200 {
		a.t.Fatalf("login: %d %s", resp.StatusCode, body(resp))
	}
	c := sessionCookie(a.t, resp, a.m.Config().CookieName)
	if c == nil || c.Value == "" {
		a.t.Fatal("login set no session cookie")
	}
	return c.Value
}

// createVault makes the user's vault with the test passphrase.
func (a *testApp) createVault(user string) {
	a.t.Helper()
	u, err := a.vault.Create(context.Background(), user, []byte(passphrase))
	if err != nil {
		a.t.Fatal(err)
	}
	u.Lock()
}

// unlock unlocks the session's vault and returns the re-issued cookie.
func (a *testApp) unlock(cookie string) string {
	a.t.Helper()
	resp := a.do(request{method: "POST", target: "/unlock", cookie: cookie, form: "passphrase=" + strings.ReplaceAll(passphrase, " ", "+")})
	if resp.StatusCode != 200 {
		a.t.Fatalf("unlock: %d %s", resp.StatusCode, body(resp))
	}
	c := sessionCookie(a.t, resp, a.m.Config().CookieName)
	if c == nil || c.Value == "" || c.Value == cookie {
		a.t.Fatal("unlock did not re-issue the session cookie")
	}
	return c.Value
}

// status returns the status of GET path with the cookie.
func (a *testApp) status(path, cookie string) int {
	a.t.Helper()
	return a.do(request{method: "GET", target: path, cookie: cookie}).StatusCode
}

func body(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// countingStore counts session writes and can be made to fail.
type countingStore struct {
	*memstore.Store
	puts atomic.Int64
	fail atomic.Bool
}

var errStoreDown = errors.New("test store: down")

func (s *countingStore) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	if s.fail.Load() {
		return storage.Session{}, errStoreDown
	}
	return s.Store.GetSession(ctx, id)
}

func (s *countingStore) PutSession(ctx context.Context, sess storage.Session, expect uint64) error {
	if s.fail.Load() {
		return errStoreDown
	}
	s.puts.Add(1)
	return s.Store.PutSession(ctx, sess, expect)
}

// TestMain sends the audit events of Managers built without a Logger to
// nowhere, so test output stays readable.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
