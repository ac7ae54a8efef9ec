package account_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the dumps of PostgreSQL
	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/passkey"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/totp"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/account"
)

// stores are the stores of one backend: vault records, sessions, rate
// and lockout state, second factors, and passkeys with their ceremonies'
// challenges (nil: the app has no passkeys, Parts.Passkeys stays nil),
// with a dump of everything the backend holds (every cell of every table,
// every key and value), or nil where the store's raw contents cannot be
// read (memstore).
type stores struct {
	vaults   storage.VaultStore
	sessions session.Store
	rates    interface {
		storage.RateStore
		storage.LockoutStore
	}
	factors    storage.FactorStore
	passkeys   storage.PasskeyStore
	challenges storage.ChallengeStore
	dump       func(t *testing.T) [][]byte
	// dumpsPasskeys: dump includes the passkey store's contents.
	dumpsPasskeys bool
}

type backend struct {
	name string
	open func(t *testing.T) stores
}

var backends = []backend{
	{"memstore", func(t *testing.T) stores {
		s := memstore.New()
		return stores{vaults: s, sessions: s, rates: s, factors: s, passkeys: s, challenges: s}
	}},
	{"SQLite", func(t *testing.T) stores {
		path := filepath.Join(t.TempDir(), "keyhold.db")
		s, err := sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return stores{vaults: s, sessions: s, rates: s, factors: s, passkeys: s, challenges: s, dumpsPasskeys: true, dump: func(t *testing.T) [][]byte {
			db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			return dumpSQL(t, db, "SELECT name FROM sqlite_master WHERE type = 'table'", `"%s"`)
		}}
	}},
	{"PostgreSQL", func(t *testing.T) stores {
		dsn := testenv.Env(t, "KEYHOLD_TEST_POSTGRES_DSN", "DSN of a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		schema := "keyhold_account_test_" + strings.ToLower(rand.Text())
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		admin.SetMaxOpenConns(1)
		t.Cleanup(func() {
			if _, err := admin.Exec(`DROP SCHEMA IF EXISTS "` + schema + `" CASCADE`); err != nil {
				t.Errorf("drop schema: %v", err)
			}
			admin.Close()
		})
		s, err := sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.Config{Schema: schema, MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return stores{vaults: s, sessions: s, rates: s, factors: s, passkeys: s, challenges: s, dumpsPasskeys: true, dump: func(t *testing.T) [][]byte {
			return dumpSQL(t, admin, "SELECT table_name FROM information_schema.tables WHERE table_schema = '"+schema+"'", `"`+schema+`"."%s"`)
		}}
	}},
	// Redis keeps sessions, rate limits, lockouts (the passkey lockout's
	// too) and the ceremonies' challenges, never vault records, second
	// factors or passkeys (redisstore has no PasskeyStore: those are on
	// SQLite here, and the Redis dump does not see them).
	{"Redis", func(t *testing.T) stores {
		url := testenv.Env(t, "KEYHOLD_TEST_REDIS_URL", "URL of a Redis server, e.g. redis://127.0.0.1:6379/0")
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 8)
		rand.Read(b)
		prefix := "keyhold-account-test-" + hex.EncodeToString(b) + ":"
		c := redis.NewClient(opt)
		t.Cleanup(func() {
			ctx := context.Background()
			if keys, _ := c.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
				c.Del(ctx, keys...)
			}
			c.Close()
		})
		rs, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		vs, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "vaults.db"), sqlstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { vs.Close() })
		return stores{vaults: vs, sessions: rs, rates: rs, factors: vs, passkeys: vs, challenges: rs, dump: func(t *testing.T) [][]byte {
			ctx := t.Context()
			keys, err := c.Keys(ctx, prefix+"*").Result()
			if err != nil {
				t.Fatal(err)
			}
			var out [][]byte
			for _, k := range keys {
				v, err := c.Dump(ctx, k).Result()
				if err != nil && !errors.Is(err, redis.Nil) { // redis.Nil: expired meanwhile
					t.Fatal(err)
				}
				out = append(out, []byte(k), []byte(v))
			}
			return out
		}}
	}},
}

// dumpSQL returns every cell of every table that list names, each as its
// bytes (or its text for other types).
func dumpSQL(t *testing.T, db *sql.DB, list, qualified string) [][]byte {
	t.Helper()
	ctx := t.Context()
	rows, err := db.QueryContext(ctx, list)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) == 0 {
		t.Fatal("the dump found no table")
	}
	var out [][]byte
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, "SELECT * FROM "+fmt.Sprintf(qualified, table))
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			cells := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range cells {
				ptrs[i] = &cells[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, c := range cells {
				switch c := c.(type) {
				case []byte:
					out = append(out, bytes.Clone(c))
				case string:
					out = append(out, []byte(c))
				default:
					out = append(out, fmt.Append(nil, c))
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

const (
	alice, aliceName = "user-alice-0c5d1e", "alice@example.org"
	bob, bobName     = "user-bob-77a2f0", "bob@example.org"
	passphrase       = "correct horse battery staple"
)

// app is one application on a backend: a vault, sessions, a lockout and a
// limiter keyed by the account name, TOTP, passkeys (nil where the
// backend has no passkey store) with their lockout keyed by the user ID,
// and an HTTP handler.
type app struct {
	t         *testing.T
	s         stores
	v         *vault.Vault
	m         *session.Manager
	lockout   *ratelimit.Lockout
	limiter   *ratelimit.Limiter
	totp      *totp.Authenticator
	pk        *passkey.Manager
	pkLockout *ratelimit.Lockout
	handler   http.Handler
}

// The relying party the app's passkeys are registered with: the origin
// a.do sends its requests to.
const (
	rpID     = "app.example"
	rpOrigin = "https://app.example"
)

func newApp(t *testing.T, s stores) *app {
	t.Helper()
	h, err := kdf.New(kdf.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, s: s}
	a.v, err = vault.New(s.vaults, vault.Config{Hasher: h, KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	a.m, err = session.New(s.sessions, session.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	a.lockout, err = ratelimit.NewLockout(s.rates, ratelimit.LockoutOptions{
		Policy: ratelimit.LockoutPolicy{MaxFailures: 3, AccountMaxFailures: 3}, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.limiter, err = ratelimit.New(s.rates, ratelimit.Rule{Name: "account-actions", Limit: 2, Period: time.Hour}, ratelimit.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	codeLockout, err := ratelimit.NewLockout(s.rates, ratelimit.LockoutOptions{Name: "totp", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ringKey := make([]byte, totp.KeyRingKeyLen)
	rand.Read(ringKey)
	ring, err := totp.NewKeyRing("k1", map[string][]byte{"k1": ringKey})
	if err != nil {
		t.Fatal(err)
	}
	a.totp, err = totp.New(totp.Config{Store: s.factors, Sealer: ring, Lockout: codeLockout, Issuer: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if s.passkeys != nil {
		a.pkLockout, err = ratelimit.NewLockout(s.rates, ratelimit.LockoutOptions{
			Name: "passkey", Policy: ratelimit.LockoutPolicy{MaxFailures: 3, AccountMaxFailures: 3}, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		a.pk, err = passkey.New(passkey.Config{
			RPID: rpID, Origins: []string{rpOrigin}, Store: s.passkeys, Challenges: s.challenges,
			Sessions: a.m, Vault: a.v, Lockout: a.pkLockout, SecondFactors: a.totp, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		opts := session.LoginOptions{}
		if r.FormValue("mfa") != "" { // the password and a TOTP code, checked in one step
			opts.Factor = session.FactorPassword | session.FactorTOTP
		}
		if err := a.m.Login(r.Context(), r.FormValue("user"), opts); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /passkey/begin", func(w http.ResponseWriter, r *http.Request) {
		opts, err := a.pk.BeginRegistration(r, r.FormValue("account"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(opts)
	})
	mux.HandleFunc("POST /passkey/finish", func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.pk.FinishRegistration(r, []byte(r.FormValue("response")), r.FormValue("label")); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	})
	mux.HandleFunc("POST /passkey/login/begin", func(w http.ResponseWriter, r *http.Request) {
		opts, err := a.pk.BeginLogin(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(opts)
	})
	mux.HandleFunc("POST /passkey/login/finish", func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.pk.FinishLogin(w, r, []byte(r.FormValue("response")), ratelimit.Source{}, passkey.LoginOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	})
	mux.HandleFunc("POST /unlock", func(w http.ResponseWriter, r *http.Request) {
		info, _ := a.m.Current(r.Context())
		u, err := a.v.Unlock(r.Context(), info.UserID, []byte(passphrase))
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		defer u.Lock()
		if err := a.m.Unlock(r.Context(), u); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.Handle("GET /me", a.m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := a.m.Current(r.Context())
		io.WriteString(w, info.UserID)
	})))
	a.handler = a.m.Handler(mux)
	return a
}

// do serves one request over TLS with the session cookie or bearer token
// given, and returns the status and the session cookie it set (or the
// one sent).
func (a *app) do(method, target, form, cookie, bearer string) (int, string) {
	a.t.Helper()
	code, cookie, _ := a.doBody(method, target, form, cookie, bearer)
	return code, cookie
}

// doBody is do, returning the response's body too.
func (a *app) doBody(method, target, form, cookie, bearer string) (int, string, []byte) {
	a.t.Helper()
	var cookies []*http.Cookie
	if cookie != "" {
		cookies = append(cookies, &http.Cookie{Name: session.DefaultCookieName, Value: cookie})
	}
	res := a.request(method, target, form, cookies, bearer)
	for _, c := range res.Result().Cookies() {
		if c.Name == session.DefaultCookieName {
			cookie = c.Value
		}
	}
	return res.Code, cookie, res.Body.Bytes()
}

// request serves one request over TLS with the cookies and bearer token
// given.
func (a *app) request(method, target, form string, cookies []*http.Cookie, bearer string) *httptest.ResponseRecorder {
	a.t.Helper()
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req := httptest.NewRequest(method, rpOrigin+target, body)
	req.TLS = &tls.ConnectionState{}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return rec
}

// passkeyLogin logs in with k's passkey as a browser would (BeginLogin,
// with its ceremony cookie kept, then FinishLogin with k's assertion
// giving handle as the user handle) and returns the status and the
// session cookie it set ("" if none).
func (a *app) passkeyLogin(k *softAuthenticator, handle []byte) (int, string) {
	a.t.Helper()
	res := a.request("POST", "/passkey/login/begin", "", nil, "")
	if res.Code != 200 {
		a.t.Fatalf("BeginLogin: %d %s", res.Code, res.Body)
	}
	ceremony := res.Result().Cookies()
	if len(ceremony) != 1 {
		a.t.Fatalf("BeginLogin set %d cookies, want its ceremony's", len(ceremony))
	}
	form := url.Values{"response": {string(k.get(a.t, res.Body.Bytes(), handle))}}.Encode()
	res = a.request("POST", "/passkey/login/finish", form, ceremony, "")
	for _, c := range res.Result().Cookies() {
		if c.Name == session.DefaultCookieName && c.Value != "" {
			return res.Code, c.Value
		}
	}
	return res.Code, ""
}

// user is what one user has in the app: a vault with recovery keys, a
// TOTP authenticator, two passkeys (where the backend keeps passkeys),
// two logged-in browsers (one unlocked; and, with passkeys, one that
// registered them and one logged in with one), an API client, locked lockout counters (of the account name,
// and of the user ID for passkeys) and a spent limiter bucket.
type user struct {
	id, name         string
	cookies          []string
	access, refresh  string
	sealed           []byte
	recoveryKeys     []vault.RecoveryKey
	vaultData        []byte   // the stored vault record
	sessionData      [][]byte // the stored session records
	factorData       []byte   // the stored factor record (a TOTP authenticator, recovery codes)
	totpSecret       string
	familyRefreshOld string
	passkeyData      []byte   // the stored passkey record (nil: no passkeys)
	passkeyHandle    []byte   // the WebAuthn user handle
	credentialIDs    [][]byte // the passkeys' credential IDs
	authenticators   []*softAuthenticator
}

func (a *app) setUp(ctx context.Context, id, name string) *user {
	a.t.Helper()
	t := a.t
	u := &user{id: id, name: name}
	unlocked, err := a.v.Create(ctx, id, []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	if u.recoveryKeys, err = a.v.RegenerateRecoveryKeys(ctx, unlocked, 2); err != nil {
		t.Fatal(err)
	}
	if u.sealed, err = unlocked.Seal([]byte("the secret of "+id), []byte("notes/1")); err != nil {
		t.Fatal(err)
	}
	unlocked.Lock()
	rec, err := a.s.vaults.GetVault(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	u.vaultData = rec.Data

	e, err := a.totp.Begin(ctx, id, name)
	if err != nil {
		t.Fatal(err)
	}
	u.totpSecret = e.Secret()
	if _, err := a.totp.Confirm(ctx, id, e.Token, totpCode(t, u.totpSecret, time.Now()), ratelimit.Source{}, totp.ConfirmOptions{}); err != nil {
		t.Fatalf("TOTP enrollment of %s: %v", id, err)
	}
	fr, err := a.s.factors.GetFactors(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	u.factorData = fr.Data

	// Before the other logins: adding a passkey ends the user's other
	// sessions.
	var passkeyCookies []string
	if a.pk != nil {
		passkeyCookies = a.registerPasskeys(ctx, u)
	}

	for range 2 {
		code, c := a.do("POST", "/login", "user="+id, "", "")
		if code != 200 || c == "" {
			t.Fatalf("login of %s: %d", id, code)
		}
		u.cookies = append(u.cookies, c)
	}
	code, c := a.do("POST", "/unlock", "", u.cookies[0], "")
	if code != 200 || c == u.cookies[0] {
		t.Fatalf("unlock of %s: %d", id, code)
	}
	u.cookies[0] = c
	u.cookies = append(u.cookies, passkeyCookies...)
	pair, err := a.m.IssueTokens(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	u.familyRefreshOld = pair.RefreshToken
	if pair, err = a.m.Refresh(ctx, pair.RefreshToken); err != nil {
		t.Fatal(err)
	}
	u.access, u.refresh = pair.AccessToken, pair.RefreshToken
	for _, c := range u.cookies {
		if code, _ := a.do("GET", "/me", "", c, ""); code != 200 {
			t.Fatalf("%s's browser before the deletion: %d", id, code)
		}
	}
	if code, _ := a.do("GET", "/me", "", "", u.access); code != 200 {
		t.Fatalf("%s's access token before the deletion: %d", id, code)
	}
	list, err := a.s.sessions.ListUserSessions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		u.sessionData = append(u.sessionData, s.Data)
	}

	// Three wrong guesses lock the account's counter; two actions spend
	// the limiter's bucket.
	for range 3 {
		att, err := a.lockout.Begin(ctx, name, ratelimit.Source{})
		if err != nil {
			t.Fatalf("lockout of %s: %v", name, err)
		}
		att.Failed(ctx)
	}
	if _, err := a.lockout.Begin(ctx, name, ratelimit.Source{}); !errors.Is(err, ratelimit.ErrLocked) {
		t.Fatalf("%s after three failures: %v, want locked", name, err)
	}
	for range 2 {
		if d, err := a.limiter.Allow(ctx, name); err != nil || !d.Allowed {
			t.Fatalf("limiter of %s: %v %v", name, d.Allowed, err)
		}
	}
	if d, _ := a.limiter.Allow(ctx, name); d.Allowed {
		t.Fatalf("limiter of %s: a third action in the hour was allowed", name)
	}
	if a.pk != nil {
		// Three failed passkey attempts lock the user ID's counter.
		for range 3 {
			att, err := a.pkLockout.Begin(ctx, id, ratelimit.Source{})
			if err != nil {
				t.Fatalf("passkey lockout of %s: %v", id, err)
			}
			att.Failed(ctx)
		}
		if _, err := a.pkLockout.Begin(ctx, id, ratelimit.Source{}); !errors.Is(err, ratelimit.ErrLocked) {
			t.Fatalf("passkey lockout of %s after three failures: %v, want locked", id, err)
		}
	}
	return u
}

// registerPasskeys gives u two passkeys through the package's real
// registration path, as a browser would: a multi-factor login (the user
// has TOTP, so adding a passkey needs one), then for each passkey
// BeginRegistration's options, a software authenticator's answer to
// their challenge, and FinishRegistration (which renews the session and
// ends the user's others); then a passkey login. It returns the session
// cookies of the registering browser and of the passkey login.
func (a *app) registerPasskeys(ctx context.Context, u *user) []string {
	a.t.Helper()
	t := a.t
	code, c := a.do("POST", "/login", "mfa=1&user="+u.id, "", "")
	if code != 200 || c == "" {
		t.Fatalf("multi-factor login of %s: %d", u.id, code)
	}
	for i := range 2 {
		code, _, body := a.doBody("POST", "/passkey/begin", "account="+u.name, c, "")
		if code != 200 {
			t.Fatalf("BeginRegistration for %s: %d %s", u.id, code, body)
		}
		key := newSoftAuthenticator(t)
		resp := key.create(t, body)
		form := url.Values{"response": {string(resp)}, "label": {fmt.Sprintf("key %d", i)}}.Encode()
		code, renewed, body := a.doBody("POST", "/passkey/finish", form, c, "")
		if code != 200 || renewed == c {
			t.Fatalf("FinishRegistration for %s: %d %s (session renewed: %v)", u.id, code, body, renewed != c)
		}
		c = renewed
		u.credentialIDs = append(u.credentialIDs, key.id)
		u.authenticators = append(u.authenticators, key)
	}
	if code, _ := a.do("GET", "/me", "", c, ""); code != 200 {
		t.Fatalf("%s's registering browser: %d", u.id, code)
	}
	cookies := []string{c}
	rec, err := a.s.passkeys.GetPasskeys(ctx, u.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.CredentialIDs) != 2 || len(rec.Handle) != storage.PasskeyHandleLen {
		t.Fatalf("%s's passkey record: %d credentials, a handle of %d bytes", u.id, len(rec.CredentialIDs), len(rec.Handle))
	}
	u.passkeyHandle = rec.Handle
	// Control: the passkey logs in (a third browser, logged in with it).
	code, c = a.passkeyLogin(u.authenticators[1], u.passkeyHandle)
	if code != 200 || c == "" {
		t.Fatalf("passkey login of %s: %d", u.id, code)
	}
	cookies = append(cookies, c)
	if rec, err = a.s.passkeys.GetPasskeys(ctx, u.id); err != nil { // with the login's counter and last use
		t.Fatal(err)
	}
	u.passkeyData = rec.Data
	return cookies
}

// softAuthenticator is a software WebAuthn authenticator: one ES256
// credential, made with "none" attestation, and its signature counter.
type softAuthenticator struct {
	id    []byte
	key   *ecdsa.PrivateKey
	count uint32
}

func newSoftAuthenticator(t *testing.T) *softAuthenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &softAuthenticator{id: id, key: key}
}

// create answers the JSON of a CredentialCreationOptions as
// navigator.credentials.create would, with the user present and verified:
// the JSON of the PublicKeyCredential (PublicKeyCredential.toJSON).
func (k *softAuthenticator) create(t *testing.T, options []byte) []byte {
	t.Helper()
	var opts struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &opts); err != nil || opts.PublicKey.Challenge == "" {
		t.Fatalf("registration options %s: %v", options, err)
	}
	if opts.PublicKey.RP.ID != rpID {
		t.Fatalf("registration options for RP ID %q, want %q", opts.PublicKey.RP.ID, rpID)
	}
	clientData, err := json.Marshal(map[string]any{
		"type": "webauthn.create", "challenge": opts.PublicKey.Challenge, "origin": rpOrigin, "crossOrigin": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	point, err := k.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:]}) // EC2, ES256, P-256
	if err != nil {
		t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(opts.PublicKey.RP.ID))
	authData := append(rpHash[:], 0x01|0x04|0x40) // UP, UV, AT
	authData = binary.BigEndian.AppendUint32(authData, 0)
	authData = append(authData, make([]byte, 16)...) // AAGUID: none
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(k.id)))
	authData = append(append(authData, k.id...), cose...)
	attObj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	resp, err := json.Marshal(map[string]any{
		"id": b64(k.id), "rawId": b64(k.id), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64(clientData), "attestationObject": b64(attObj), "transports": []string{"internal"},
		},
		"clientExtensionResults": map[string]any{"prf": map[string]any{"enabled": true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// get answers the JSON of a CredentialRequestOptions as
// navigator.credentials.get would with this discoverable credential of
// the user with handle, the user present and verified: the JSON of the
// PublicKeyCredential.
func (k *softAuthenticator) get(t *testing.T, options, handle []byte) []byte {
	t.Helper()
	var opts struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RPID      string `json:"rpId"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &opts); err != nil || opts.PublicKey.Challenge == "" {
		t.Fatalf("login options %s: %v", options, err)
	}
	if opts.PublicKey.RPID != rpID {
		t.Fatalf("login options for RP ID %q, want %q", opts.PublicKey.RPID, rpID)
	}
	clientData, err := json.Marshal(map[string]any{
		"type": "webauthn.get", "challenge": opts.PublicKey.Challenge, "origin": rpOrigin, "crossOrigin": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	k.count++
	rpHash := sha256.Sum256([]byte(rpID))
	authData := binary.BigEndian.AppendUint32(append(rpHash[:], 0x01|0x04), k.count) // UP, UV
	cdHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(bytes.Clone(authData), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	resp, err := json.Marshal(map[string]any{
		"id": b64(k.id), "rawId": b64(k.id), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64(clientData), "authenticatorData": b64(authData), "signature": b64(sig), "userHandle": b64(handle),
		},
		"clientExtensionResults": map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// parts are all of the app's parts; Passkeys is nil where the backend
// keeps no passkeys (the tests that build their stores by hand).
func (a *app) parts() account.Parts {
	return account.Parts{Sessions: a.m, Vault: a.v, Lockouts: []*ratelimit.Lockout{a.lockout}, Limiters: []*ratelimit.Limiter{a.limiter}, Factors: a.totp, Passkeys: a.pk}
}

// totpCode returns the code of the authenticator app for the secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := pqtotp.GenerateCodeCustom(secret, at, pqtotp.ValidateOpts{Digits: otp.DigitsSix})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// secretPieces returns 24-byte pieces of u's stored records (vault,
// factors, passkeys, sessions) and of its passkey handle and credential
// IDs that appear in none of other's: bytes only u's state holds (random
// salts, wrapped keys, sealed custody, public keys), to look for in a
// dump.
func secretPieces(u, other *user) [][]byte {
	var mine, theirs [][]byte
	mine = append(append(append(mine, u.vaultData, u.factorData, u.passkeyData, u.passkeyHandle), u.credentialIDs...), u.sessionData...)
	theirs = append(append(append(theirs, other.vaultData, other.factorData, other.passkeyData, other.passkeyHandle), other.credentialIDs...), other.sessionData...)
	var out [][]byte
	for _, b := range mine {
		for i := 0; i+24 <= len(b); i += 8 {
			piece := b[i : i+24]
			shared := false
			for _, o := range theirs {
				shared = shared || bytes.Contains(o, piece)
			}
			if !shared {
				out = append(out, piece)
			}
		}
	}
	return out
}

// STO-06: one call deletes an account from every part, on every adapter.
// Alice has a vault (a passphrase slot, recovery keys, a record sealed
// under it), a TOTP authenticator, two passkeys registered through
// package passkey's ceremony (on every backend: with Redis they are kept
// on SQLite), four browsers logged in (one unlocked: its session holds
// the sealed master key; one with a passkey), an API client with a
// rotated refresh family, locked lockout counters (her account name's,
// and her user ID's for passkeys) and a spent limiter bucket, as has Bob.
// After
// account.Delete for Alice: her old cookies and access token get 401 and
// her refresh tokens are refused; her vault is gone (the passphrase and
// recovery keys unlock nothing, as for a user who never had a vault) and
// her sealed record opens under no vault made later; her TOTP
// authenticator and passkeys are gone (her user handle and credential IDs
// name no one); no store record is left for her (and the raw dump of the
// SQL tables and Redis keys holds none of her stored bytes nor her user
// ID); her lockout and limiter state is forgotten. Bob keeps everything. A
// second Delete is nil.
func TestRequirementDeleteAccount(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := b.open(t)
			a := newApp(t, s)
			al := a.setUp(ctx, alice, aliceName)
			bo := a.setUp(ctx, bob, bobName)
			pieces := secretPieces(al, bo)
			if len(pieces) < 8 {
				t.Fatalf("only %d pieces of Alice's state to look for", len(pieces))
			}
			if s.dump != nil {
				dump := s.dump(t)
				if n := countFound(dump, pieces, alice); n == 0 {
					t.Fatal("control: the dump before the deletion holds none of Alice's state")
				}
				// Where the dump sees the passkey store, it holds her
				// passkey record's bytes, which pieces covers.
				if a.pk != nil && s.dumpsPasskeys {
					pk := secretPieces(&user{passkeyData: al.passkeyData, passkeyHandle: al.passkeyHandle, credentialIDs: al.credentialIDs}, bo)
					if len(pk) < 8 || countPieces(dump, pk) < len(pk) {
						t.Fatalf("control: the dump before the deletion holds %d of the %d pieces of Alice's passkey record", countPieces(dump, pk), len(pk))
					}
				}
			}

			if err := account.Delete(ctx, alice, aliceName, a.parts()); err != nil {
				t.Fatalf("Delete: %v", err)
			}

			// Sessions: 401, refresh refused.
			for i, c := range al.cookies {
				if code, _ := a.do("GET", "/me", "", c, ""); code != http.StatusUnauthorized {
					t.Errorf("Alice's browser %d after Delete: %d, want 401", i, code)
				}
			}
			if code, _ := a.do("GET", "/me", "", "", al.access); code != http.StatusUnauthorized {
				t.Errorf("Alice's access token after Delete: %d, want 401", code)
			}
			for _, rt := range []string{al.refresh, al.familyRefreshOld} {
				if _, err := a.m.Refresh(ctx, rt); err == nil {
					t.Error("Alice's refresh token after Delete was accepted")
				}
			}
			if list, err := s.sessions.ListUserSessions(ctx, alice); err != nil || len(list) != 0 {
				t.Errorf("Alice's sessions after Delete: %d, %v", len(list), err)
			}

			// The vault: gone; nothing opens it or its records.
			if _, err := s.vaults.GetVault(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Alice's vault record after Delete: %v, want storage.ErrNotFound", err)
			}
			if _, err := a.v.Unlock(ctx, alice, []byte(passphrase)); !errors.Is(err, vault.ErrNoVault) || !errors.Is(err, vault.ErrUnlockFailed) {
				t.Errorf("Unlock after Delete: %v, want ErrNoVault and ErrUnlockFailed", err)
			}
			for _, k := range al.recoveryKeys {
				if _, _, err := a.v.UnlockWithRecoveryKey(ctx, alice, k.Reveal()); !errors.Is(err, vault.ErrNoVault) {
					t.Errorf("recovery key after Delete: %v, want ErrNoVault", err)
				}
			}

			// Second factors: gone for Alice, kept for Bob.
			if _, err := s.factors.GetFactors(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Alice's factor record after Delete: %v, want storage.ErrNotFound", err)
			}
			if err := a.totp.Verify(ctx, alice, totpCode(t, al.totpSecret, time.Now().Add(30*time.Second)), ratelimit.Source{}); !errors.Is(err, totp.ErrNotEnrolled) {
				t.Errorf("Alice's TOTP code after Delete: %v, want totp.ErrNotEnrolled", err)
			}
			if err := a.totp.Verify(ctx, bob, totpCode(t, bo.totpSecret, time.Now().Add(30*time.Second)), ratelimit.Source{}); err != nil {
				t.Errorf("Bob's TOTP code after Alice's Delete: %v", err)
			}

			// Passkeys: Alice's record, handle and credentials are gone
			// and her passkey lockout is forgotten; Bob keeps his.
			if a.pk != nil {
				if _, err := s.passkeys.GetPasskeys(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("Alice's passkey record after Delete: %v, want storage.ErrNotFound", err)
				}
				if id, err := s.passkeys.UserByHandle(ctx, al.passkeyHandle); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("Alice's user handle after Delete names %q, %v; want storage.ErrNotFound", id, err)
				}
				for i, c := range al.credentialIDs {
					if id, err := s.passkeys.UserByCredential(ctx, c); !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("Alice's passkey %d after Delete names %q, %v; want storage.ErrNotFound", i, id, err)
					}
				}
				if has, err := a.pk.Has(ctx, alice); err != nil || has {
					t.Errorf("passkey.Has(Alice) after Delete: %v, %v; want false", has, err)
				}
				att, err := a.pkLockout.Begin(ctx, alice, ratelimit.Source{})
				if err != nil {
					t.Errorf("Alice's passkey lockout after Delete: %v, want its counters forgotten", err)
				} else {
					att.Abandon(ctx, errors.New("test"))
				}
				if list, err := a.pk.List(ctx, bob); err != nil || len(list) != 2 {
					t.Errorf("Bob's passkeys after Alice's Delete: %d, %v; want 2", len(list), err)
				}
				if id, err := s.passkeys.UserByHandle(ctx, bo.passkeyHandle); err != nil || id != bob {
					t.Errorf("Bob's user handle after Alice's Delete: %q, %v", id, err)
				}
				for i, c := range bo.credentialIDs {
					if id, err := s.passkeys.UserByCredential(ctx, c); err != nil || id != bob {
						t.Errorf("Bob's passkey %d after Alice's Delete: %q, %v", i, id, err)
					}
				}
				if _, err := a.pkLockout.Begin(ctx, bob, ratelimit.Source{}); !errors.Is(err, ratelimit.ErrLocked) {
					t.Errorf("Bob's passkey lockout after Alice's Delete: %v, want still locked", err)
				}
			}

			// Lockout and limiter: forgotten for Alice, kept for Bob.
			att, err := a.lockout.Begin(ctx, aliceName, ratelimit.Source{})
			if err != nil {
				t.Errorf("Alice's lockout after Delete: %v, want its counters forgotten", err)
			} else {
				att.Abandon(ctx, errors.New("test"))
			}
			if d, err := a.limiter.Allow(ctx, aliceName); err != nil || !d.Allowed {
				t.Errorf("Alice's limiter after Delete: allowed %v, %v; want a full bucket", d.Allowed, err)
			}
			if _, err := a.lockout.Begin(ctx, bobName, ratelimit.Source{}); !errors.Is(err, ratelimit.ErrLocked) {
				t.Errorf("Bob's lockout after Alice's Delete: %v, want still locked", err)
			}
			if d, _ := a.limiter.Allow(ctx, bobName); d.Allowed {
				t.Error("Bob's limiter after Alice's Delete: allowed, want still spent")
			}

			// Bob keeps his sessions and vault.
			for i, c := range bo.cookies {
				if code, _ := a.do("GET", "/me", "", c, ""); code != 200 {
					t.Errorf("Bob's browser %d after Alice's Delete: %d", i, code)
				}
			}
			if u, err := a.v.Unlock(ctx, bob, []byte(passphrase)); err != nil {
				t.Errorf("Bob's Unlock after Alice's Delete: %v", err)
			} else {
				if pt, err := u.Open(bo.sealed, []byte("notes/1")); err != nil || string(pt) != "the secret of "+bob {
					t.Errorf("Bob's record: %q, %v", pt, err)
				}
				u.Lock()
			}

			// The raw store holds none of Alice's bytes.
			if s.dump != nil {
				if n := countFound(s.dump(t), pieces, alice); n != 0 {
					t.Errorf("the store dump after Delete still holds %d pieces of Alice's state or her user ID", n)
				}
			}

			// Idempotent; and a vault made again for the ID opens nothing old.
			if err := account.Delete(ctx, alice, aliceName, a.parts()); err != nil {
				t.Errorf("second Delete: %v", err)
			}
			again, err := a.v.Create(ctx, alice, []byte(passphrase))
			if err != nil {
				t.Fatal(err)
			}
			defer again.Lock()
			if _, err := again.Open(al.sealed, []byte("notes/1")); !errors.Is(err, vault.ErrDecrypt) {
				t.Errorf("Alice's old record under a new vault: %v, want ErrDecrypt", err)
			}
		})
	}
}

// countFound counts the pieces, and the user ID, that appear in the dump.
func countFound(dump [][]byte, pieces [][]byte, userID string) int {
	return countPieces(dump, append(pieces, []byte(userID)))
}

// countPieces counts the pieces that appear in the dump's cells.
func countPieces(dump [][]byte, pieces [][]byte) int {
	n := 0
	for _, cell := range dump {
		for _, p := range pieces {
			if bytes.Contains(cell, p) {
				n++
			}
		}
	}
	return n
}

// hookVaults runs before, once, at the first GetVault after it is armed.
type hookVaults struct {
	storage.VaultStore
	armed      bool
	before     func()
	failDelete int // DeleteVault calls to fail
}

var errStoreDown = errors.New("test store: down")

func (h *hookVaults) GetVault(ctx context.Context, userID string) (storage.VaultRecord, error) {
	if h.armed {
		h.armed = false
		h.before()
	}
	return h.VaultStore.GetVault(ctx, userID)
}

func (h *hookVaults) DeleteVault(ctx context.Context, userID string, expect uint64) error {
	if h.failDelete > 0 {
		h.failDelete--
		return errStoreDown
	}
	return h.VaultStore.DeleteVault(ctx, userID, expect)
}

// STO-06, forced interleaving: Alice logs in again and unlocks between the
// first revocation and the vault's deletion (at Vault.Delete's read of the
// vault), so that a session holds a sealed copy of her master key; the
// last step ends it, and the store is left with no session of hers.
func TestDeleteEndsSessionUnlockedDuringDeletion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	mem := memstore.New()
	hook := &hookVaults{VaultStore: mem}
	a := newApp(t, stores{vaults: hook, sessions: mem, rates: mem, factors: mem})
	a.setUp(ctx, alice, aliceName)
	var late string
	hook.before = func() {
		code, c := a.do("POST", "/login", "user="+alice, "", "")
		if code != 200 {
			t.Fatalf("late login: %d", code)
		}
		if code, late = a.do("POST", "/unlock", "", c, ""); code != 200 {
			t.Fatalf("late unlock: %d", code)
		}
		list, _ := mem.ListUserSessions(ctx, alice)
		if len(list) != 1 {
			t.Fatalf("control: %d sessions of Alice during the deletion, want the late one", len(list))
		}
	}
	hook.armed = true
	if err := account.Delete(ctx, alice, aliceName, a.parts()); err != nil {
		t.Fatal(err)
	}
	if hook.armed {
		t.Fatal("the forced interleaving did not happen")
	}
	if code, _ := a.do("GET", "/me", "", late, ""); code != http.StatusUnauthorized {
		t.Errorf("the session unlocked during the deletion: %d, want 401", code)
	}
	if list, _ := mem.ListUserSessions(ctx, alice); len(list) != 0 {
		t.Errorf("%d sessions of Alice (with her sealed master key) left after Delete", len(list))
	}
}

// hookPasskeys runs before, once, at the first GetPasskeys after it is
// armed.
type hookPasskeys struct {
	storage.PasskeyStore
	armed  bool
	before func()
}

func (h *hookPasskeys) GetPasskeys(ctx context.Context, userID string) (storage.PasskeyRecord, error) {
	if h.armed {
		h.armed = false
		h.before()
	}
	return h.PasskeyStore.GetPasskeys(ctx, userID)
}

// STO-06, forced interleaving: Alice logs in with a passkey after her
// vault is deleted and before her passkeys are (at Passkeys.Delete's read
// of her passkeys): a passkey login starts a session whatever the app's
// user table says. The last step ends it, and the store is left with no
// session of hers.
func TestDeleteEndsPasskeyLoginDuringDeletion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	mem := memstore.New()
	hook := &hookPasskeys{PasskeyStore: mem}
	a := newApp(t, stores{vaults: mem, sessions: mem, rates: mem, factors: mem, passkeys: hook, challenges: mem})
	al := a.setUp(ctx, alice, aliceName)
	if err := a.pkLockout.Reset(ctx, alice); err != nil { // setUp locked it
		t.Fatal(err)
	}
	var late string
	hook.before = func() {
		if _, err := mem.GetVault(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("control: the passkey step ran before the vault's deletion (%v)", err)
		}
		var code int
		if code, late = a.passkeyLogin(al.authenticators[0], al.passkeyHandle); code != 200 || late == "" {
			t.Fatalf("late passkey login: %d", code)
		}
		if list, _ := mem.ListUserSessions(ctx, alice); len(list) != 1 {
			t.Fatalf("control: %d sessions of Alice during the deletion, want the late one", len(list))
		}
	}
	hook.armed = true
	if err := account.Delete(ctx, alice, aliceName, a.parts()); err != nil {
		t.Fatal(err)
	}
	if hook.armed {
		t.Fatal("the forced interleaving did not happen")
	}
	if code, _ := a.do("GET", "/me", "", late, ""); code != http.StatusUnauthorized {
		t.Errorf("the session of the passkey login during the deletion: %d, want 401", code)
	}
	if list, _ := mem.ListUserSessions(ctx, alice); len(list) != 0 {
		t.Errorf("%d sessions of Alice left after Delete", len(list))
	}
	if code, c := a.passkeyLogin(al.authenticators[0], al.passkeyHandle); code == 200 || c != "" {
		t.Errorf("Alice's passkey login after Delete: %d, session %v; want refused", code, c != "")
	}
}

// STO-06: a deletion cut short (the store fails at the vault's delete)
// returns the error, with the sessions already ended and the vault whole;
// calling Delete again completes it. Bad input deletes nothing.
func TestDeleteInterruptedThenRerun(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	mem := memstore.New()
	hook := &hookVaults{VaultStore: mem, failDelete: 1}
	a := newApp(t, stores{vaults: hook, sessions: mem, rates: mem, factors: mem})
	al := a.setUp(ctx, alice, aliceName)

	for name, call := range map[string]func() error{
		"empty user ID": func() error { return account.Delete(ctx, "", aliceName, a.parts()) },
		"long user ID": func() error {
			return account.Delete(ctx, strings.Repeat("a", storage.MaxUserIDLen+1), aliceName, a.parts())
		},
		"empty name":  func() error { return account.Delete(ctx, alice, "", a.parts()) },
		"long name":   func() error { return account.Delete(ctx, alice, strings.Repeat("a", ratelimit.MaxKeyLen+1), a.parts()) },
		"no vault":    func() error { p := a.parts(); p.Vault = nil; return account.Delete(ctx, alice, aliceName, p) },
		"no sessions": func() error { p := a.parts(); p.Sessions = nil; return account.Delete(ctx, alice, aliceName, p) },
		"nil lockout": func() error {
			p := a.parts()
			p.Lockouts = append(p.Lockouts, nil)
			return account.Delete(ctx, alice, aliceName, p)
		},
		"nil limiter": func() error {
			p := a.parts()
			p.Limiters = append(p.Limiters, nil)
			return account.Delete(ctx, alice, aliceName, p)
		},
	} {
		if err := call(); !errors.Is(err, account.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
	if code, _ := a.do("GET", "/me", "", al.cookies[1], ""); code != 200 {
		t.Fatalf("bad input ended a session: %d", code)
	}

	err := account.Delete(ctx, alice, aliceName, a.parts())
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("Delete with the vault store failing: %v, want its error", err)
	}
	if code, _ := a.do("GET", "/me", "", al.cookies[1], ""); code != http.StatusUnauthorized {
		t.Errorf("after the interrupted Delete, Alice's browser: %d, want 401", code)
	}
	if _, err := mem.GetVault(ctx, alice); err != nil {
		t.Errorf("after the interrupted Delete, the vault: %v, want it whole", err)
	}
	if err := account.Delete(ctx, alice, aliceName, a.parts()); err != nil {
		t.Fatalf("Delete again: %v", err)
	}
	if _, err := mem.GetVault(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after Delete again, the vault: %v, want storage.ErrNotFound", err)
	}
	if _, err := a.lockout.Begin(ctx, aliceName, ratelimit.Source{}); err != nil {
		t.Errorf("after Delete again, the lockout: %v", err)
	}

	// Without Lockouts or Limiters the name may be empty.
	if err := account.Delete(ctx, alice, "", account.Parts{Sessions: a.m, Vault: a.v}); err != nil {
		t.Errorf("Delete with no ratelimit parts and no name: %v", err)
	}
}
