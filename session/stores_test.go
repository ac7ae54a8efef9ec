package session_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// backend opens a fresh store; open again returns another connection to
// the same state, as a second instance or a restarted process would have.
type backend struct {
	name string
	open func(t *testing.T) func(t *testing.T) session.Store
}

var backends = []backend{
	{"SQLite", func(t *testing.T) func(t *testing.T) session.Store {
		path := filepath.Join(t.TempDir(), "keyhold.db")
		return func(t *testing.T) session.Store {
			st, err := sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
	{"PostgreSQL", func(t *testing.T) func(t *testing.T) session.Store {
		dsn := testenv.Env(t, "KEYHOLD_TEST_POSTGRES_DSN", "DSN of a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		schema := "keyhold_session_test_" + strings.ToLower(rand.Text())
		t.Cleanup(func() {
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			if _, err := db.Exec(`DROP SCHEMA IF EXISTS "` + schema + `" CASCADE`); err != nil {
				t.Errorf("drop schema: %v", err)
			}
		})
		return func(t *testing.T) session.Store {
			st, err := sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.Config{Schema: schema, MaxOpenConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
	{"Redis", func(t *testing.T) func(t *testing.T) session.Store {
		url := testenv.Env(t, "KEYHOLD_TEST_REDIS_URL", "URL of a Redis server, e.g. redis://127.0.0.1:6379/0")
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 8)
		rand.Read(b)
		prefix := "keyhold-session-test-" + hex.EncodeToString(b) + ":"
		t.Cleanup(func() {
			c := redis.NewClient(opt)
			defer c.Close()
			ctx := context.Background()
			keys, _ := c.Keys(ctx, prefix+"*").Result()
			if len(keys) > 0 {
				c.Del(ctx, keys...)
			}
		})
		return func(t *testing.T) session.Store {
			c := redis.NewClient(opt)
			t.Cleanup(func() { c.Close() })
			st, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	}},
}

// Two instances sharing one store serve one user's unlocked session in
// turn, and a third, started later (a restart), still finds it unlocked;
// logout on one is seen by all. Refresh rotation and reuse detection work
// across instances too.
func TestInstancesShareSessions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.open(t)
			vaults := memstore.New() // vault records are not the point here
			v, err := vault.New(vaults, vault.Config{Hasher: testHasher, KDF: testKDF})
			if err != nil {
				t.Fatal(err)
			}
			u, err := v.Create(t.Context(), "alice", []byte(passphrase))
			if err != nil {
				t.Fatal(err)
			}
			sealed, _ := u.Seal([]byte("shared secret"), []byte("notes/1"))
			u.Lock()

			instance := func() http.Handler {
				m, err := session.New(open(t), session.Config{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				mux := http.NewServeMux()
				mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
					if err := m.Login(r.Context(), "alice", session.LoginOptions{}); err != nil {
						http.Error(w, err.Error(), 500)
					}
				})
				mux.HandleFunc("POST /unlock", func(w http.ResponseWriter, r *http.Request) {
					u, err := v.Unlock(r.Context(), "alice", []byte(passphrase))
					if err != nil {
						http.Error(w, err.Error(), 500)
						return
					}
					defer u.Lock()
					if err := m.Unlock(r.Context(), u); err != nil {
						http.Error(w, err.Error(), 500)
					}
				})
				mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) { m.Logout(r.Context()) })
				mux.Handle("GET /note", m.RequireUnlocked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					u, _ := m.Unlocked(r.Context())
					pt, err := u.Open(sealed, []byte("notes/1"))
					if err != nil {
						http.Error(w, err.Error(), 500)
						return
					}
					w.Write(pt)
				})))
				mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
					var p session.TokenPair
					var err error
					if rt := r.FormValue("refresh"); rt != "" {
						p, err = m.Refresh(r.Context(), rt)
					} else {
						p, err = m.IssueTokens(r.Context(), "alice")
					}
					if err != nil {
						http.Error(w, err.Error(), http.StatusUnauthorized)
						return
					}
					io.WriteString(w, p.AccessToken+" "+p.RefreshToken)
				})
				return m.Handler(mux)
			}
			a, b := instance(), instance()
			cookie := func(resp *http.Response, old string) string {
				if c := sessionCookie(t, resp, "__Host-keyhold"); c != nil {
					return c.Value
				}
				return old
			}
			c := cookie(serve(a, "__Host-keyhold", request{method: "POST", target: "/login"}), "")
			c = cookie(serve(b, "__Host-keyhold", request{method: "POST", target: "/unlock", cookie: c}), c)
			for i, h := range []http.Handler{a, b, a, instance()} {
				resp := serve(h, "__Host-keyhold", request{method: "GET", target: "/note", cookie: c})
				if got := body(resp); resp.StatusCode != 200 || got != "shared secret" {
					t.Fatalf("instance %d: %d %q", i, resp.StatusCode, got)
				}
			}
			serve(b, "__Host-keyhold", request{method: "POST", target: "/logout", cookie: c})
			if got := serve(a, "__Host-keyhold", request{method: "GET", target: "/note", cookie: c}).StatusCode; got != 401 {
				t.Errorf("after logout on the other instance: %d", got)
			}

			pair := strings.Fields(body(serve(a, "", request{method: "POST", target: "/tokens"})))
			next := strings.Fields(body(serve(b, "", request{method: "POST", target: "/tokens", form: "refresh=" + pair[1]})))
			if len(next) != 2 {
				t.Fatal("refresh on the other instance failed")
			}
			if got := serve(a, "", request{method: "GET", target: "/note", header: bearer(next[0])}).StatusCode; got != 403 {
				t.Errorf("the refreshed access token on the first instance: %d, want 403 (logged in, locked)", got)
			}
		})
	}
}
