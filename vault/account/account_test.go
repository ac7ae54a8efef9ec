package account_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the dumps of PostgreSQL
	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/kdf"
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

// stores are the stores of one backend: vault records, sessions, and
// rate and lockout state, with a dump of everything the backend holds
// (every cell of every table, every key and value), or nil where the
// store's raw contents cannot be read (memstore).
type stores struct {
	vaults   storage.VaultStore
	sessions session.Store
	rates    interface {
		storage.RateStore
		storage.LockoutStore
	}
	factors storage.FactorStore
	dump    func(t *testing.T) [][]byte
}

type backend struct {
	name string
	open func(t *testing.T) stores
}

var backends = []backend{
	{"memstore", func(t *testing.T) stores {
		s := memstore.New()
		return stores{vaults: s, sessions: s, rates: s, factors: s}
	}},
	{"SQLite", func(t *testing.T) stores {
		path := filepath.Join(t.TempDir(), "keyhold.db")
		s, err := sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return stores{vaults: s, sessions: s, rates: s, factors: s, dump: func(t *testing.T) [][]byte {
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
		return stores{vaults: s, sessions: s, rates: s, factors: s, dump: func(t *testing.T) [][]byte {
			return dumpSQL(t, admin, "SELECT table_name FROM information_schema.tables WHERE table_schema = '"+schema+"'", `"`+schema+`"."%s"`)
		}}
	}},
	// Redis keeps sessions, rate limits and lockouts, never vault records
	// (those, and the second factors, are on SQLite here).
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
		return stores{vaults: vs, sessions: rs, rates: rs, factors: vs, dump: func(t *testing.T) [][]byte {
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
// limiter keyed by the account name, and an HTTP handler.
type app struct {
	t       *testing.T
	s       stores
	v       *vault.Vault
	m       *session.Manager
	lockout *ratelimit.Lockout
	limiter *ratelimit.Limiter
	totp    *totp.Authenticator
	handler http.Handler
}

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
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := a.m.Login(r.Context(), r.FormValue("user"), session.LoginOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
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
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req := httptest.NewRequest(method, "https://app.example"+target, body)
	req.TLS = &tls.ConnectionState{}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: session.DefaultCookieName, Value: cookie})
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == session.DefaultCookieName {
			cookie = c.Value
		}
	}
	return rec.Code, cookie
}

// user is what one user has in the app: a vault with recovery keys, two
// logged-in browsers (one unlocked), an API client, a locked lockout
// counter and a spent limiter bucket.
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
	return u
}

func (a *app) parts() account.Parts {
	return account.Parts{Sessions: a.m, Vault: a.v, Lockouts: []*ratelimit.Lockout{a.lockout}, Limiters: []*ratelimit.Limiter{a.limiter}, Factors: a.totp}
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
// sessions) that appear in none of other's: bytes only u's state holds
// (random salts, wrapped keys, sealed custody), to look for in a dump.
func secretPieces(u, other *user) [][]byte {
	var mine, theirs [][]byte
	mine = append(append(mine, u.vaultData, u.factorData), u.sessionData...)
	theirs = append(append(theirs, other.vaultData, other.factorData), other.sessionData...)
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
// under it), two browsers logged in (one unlocked: its session holds the
// sealed master key), an API client with a rotated refresh family, a
// locked lockout counter and a spent limiter bucket, as has Bob. After
// account.Delete for Alice: her old cookies and access token get 401 and
// her refresh tokens are refused; her vault is gone (the passphrase and
// recovery keys unlock nothing, as for a user who never had a vault) and
// her sealed record opens under no vault made later; no store record is
// left for her (and the raw dump of the SQL tables and Redis keys holds
// none of her stored bytes nor her user ID); her lockout and limiter state
// is forgotten. Bob keeps everything. A second Delete is nil.
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
				if n := countFound(s.dump(t), pieces, alice); n == 0 {
					t.Fatal("control: the dump before the deletion holds none of Alice's state")
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
	n := 0
	for _, cell := range dump {
		if bytes.Contains(cell, []byte(userID)) {
			n++
		}
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
