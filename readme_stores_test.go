package keyhold_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/account"
)

// The README's memstore section, as a test: a vault in memory, a record
// sealed for one context that does not open in another.
func TestReadmeMemstore(t *testing.T) {
	t.Parallel()
	// readme:begin memstore
	// In memory: nothing to open or close, and gone at exit. InteractiveParams: 19 MiB slots, faster tests.
	store := memstore.New()
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	u, err := v.Create(t.Context(), "user-1", []byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Lock()
	sealed, err := u.Seal([]byte("dear diary"), []byte("notes/1/body"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Open(sealed, []byte("notes/2/body")); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("a record opened under another record's context: %v", err)
	}
	// readme:end memstore
}

// readmeNotifier builds the README's vault with a Notifier and returns the
// queue the notices go to.
func readmeNotifier(store storage.VaultStore, hasher *kdf.Hasher, out **vault.Vault, queue *chan keyhold.Event) error {
	// readme:begin notifier
	notices := make(chan keyhold.Event, 100) // a goroutine drains it and e-mails each account's owner
	notifier := keyhold.NotifierFunc(func(ctx context.Context, e keyhold.Event) {
		select {
		case notices <- e: // e.Kind ("passphrase_changed", …), e.UserID, e.Time, e.IP: never a secret
		default: // full: drop it (and log that) rather than slow the change down
		}
	})
	v, err := vault.New(store, vault.Config{Hasher: hasher, Notifier: notifier})
	if err != nil {
		return err
	}
	// readme:end notifier
	*out, *queue = v, notices
	return nil
}

// The Notifier hears a passphrase change once, with no secret in it.
func TestReadmeNotifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var k readmeKDF
	if err := readmeSetup(&k); err != nil {
		t.Fatal(err)
	}
	var v *vault.Vault
	var notices chan keyhold.Event
	if err := readmeNotifier(memstore.New(), k.hasher, &v, &notices); err != nil {
		t.Fatal(err)
	}
	const old, next = "correct horse battery staple", "velvet otter learns calculus"
	u, err := v.Create(ctx, "user-1", []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	u.Lock()
	if err := v.ChangePassphrase(ctx, "user-1", []byte(old), []byte(next)); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-notices:
		if e.Kind != keyhold.PassphraseChanged || e.UserID != "user-1" {
			t.Fatalf("notice %+v, want passphrase_changed for user-1", e)
		}
		if s := strings.Join([]string{string(e.Kind), e.UserID, e.Detail}, " "); strings.Contains(s, old) || strings.Contains(s, next) {
			t.Fatalf("the notice holds a passphrase: %+v", e)
		}
	default:
		t.Fatal("no notice of the passphrase change")
	}
	if len(notices) != 0 {
		t.Fatalf("%d more notices, want one", len(notices))
	}
}

// readmeDeleteAccount is the README's account deletion.
func readmeDeleteAccount(ctx context.Context, userID, name string, m *session.Manager, v *vault.Vault, lockout *ratelimit.Lockout) error {
	// readme:begin account-delete
	// First mark the user as being deleted in your users table (no more logins), then:
	err := account.Delete(ctx, userID, name, account.Parts{
		Sessions: m,                             // ends every session and API token family
		Vault:    v,                             // deletes the vault record: what it sealed never opens again
		Lockouts: []*ratelimit.Lockout{lockout}, // forgets the name's account-wide failures and lock
		// Factors, Passkeys, ZeroKnowledge: the user's TOTP, passkeys and zero-knowledge records
	})
	if err != nil {
		return err // call it again until it returns nil: every step is idempotent
	}
	// Then delete your own rows of the user.
	// readme:end account-delete
	return nil
}

// The README's account deletion ends the user's session, shreds the vault
// (a record sealed before no longer opens: no vault unlocks) and forgets
// the lockout's failures.
func TestReadmeDeleteAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memstore.New()
	m, err := session.New(store, session.Config{AllowInsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	lockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const user, passphrase = "user-1", "correct horse battery staple"
	u, err := v.Create(ctx, user, []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	u.Lock()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r.Context(), user, session.LoginOptions{}); err != nil {
			t.Error(err)
		}
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "https://app.example/login", nil))
	wrong := ratelimit.Credential{
		Verify: func(context.Context) error { return kdf.ErrMismatch },
		Dummy:  func(context.Context) error { return nil },
	}
	right := ratelimit.Credential{
		Verify: func(context.Context) error { return nil },
		Dummy:  func(context.Context) error { return nil },
	}
	// The account-wide cap (100 failures from ten addresses) locks the name for every new address.
	pol := lockout.Policy()
	for i := range pol.AccountMaxFailures {
		from := ratelimit.Source{IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i / pol.MaxFailures)})}
		if err := lockout.Check(ctx, "ann", from, wrong); !errors.Is(err, ratelimit.ErrRejected) {
			t.Fatalf("a wrong password: %v", err)
		}
	}
	elsewhere := ratelimit.Source{IP: netip.MustParseAddr("198.51.100.1")}
	if err := lockout.Check(ctx, "ann", elsewhere, right); !errors.Is(err, ratelimit.ErrRejected) {
		t.Fatalf("before: the right password from a new address: %v, want ErrRejected (account locked)", err)
	}
	if d, err := m.Devices(ctx, user); err != nil || len(d) != 1 {
		t.Fatalf("before: %d sessions (%v), want 1", len(d), err)
	}

	if err := readmeDeleteAccount(ctx, user, "ann", m, v, lockout); err != nil {
		t.Fatal(err)
	}
	if d, err := m.Devices(ctx, user); err != nil || len(d) != 0 {
		t.Fatalf("after: %d sessions (%v), want none", len(d), err)
	}
	if _, err := v.Unlock(ctx, user, []byte(passphrase)); !errors.Is(err, vault.ErrNoVault) {
		t.Fatalf("unlock after the deletion: %v, want vault.ErrNoVault", err)
	}
	if err := lockout.Check(ctx, "ann", elsewhere, right); err != nil {
		t.Fatalf("after: the right password from a new address: %v, want the account's lock forgotten", err)
	}
	// Deleting again is a success.
	if err := readmeDeleteAccount(ctx, user, "ann", m, v, lockout); err != nil {
		t.Fatalf("second deletion: %v", err)
	}
}

// readmeManyInstances opens the README's stores for one instance
// (PostgreSQL for what must last, Redis for what every request reads) and
// runs serve with what it built, before closing them.
func readmeManyInstances(ctx context.Context, postgresDSN, schema, redisURL, prefix string, hasher *kdf.Hasher,
	serve func(v *vault.Vault, m *session.Manager, lockout *ratelimit.Lockout) error) error {
	// readme:begin many-instances
	durable, err := sqlstore.OpenPostgres(ctx, postgresDSN, sqlstore.Config{Schema: schema}) // migrates on open
	if err != nil {
		return err
	}
	defer durable.Close()
	opt, err := redis.ParseURL(redisURL) // "redis://10.0.0.5:6379/0"
	if err != nil {
		return err
	}
	opt.ContextTimeoutEnabled = true // a request's deadline ends its Redis call
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	shared, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix}) // "myapp:"
	if err != nil {
		return err
	}

	v, err := vault.New(durable, vault.Config{Hasher: hasher}) // vault records: in SQL, never in a cache
	if err != nil {
		return err
	}
	m, err := session.New(shared, session.Config{}) // sessions and API tokens: two Redis round trips a request (the session's pointer, then the session)
	if err != nil {
		return err
	}
	lockout, err := ratelimit.NewLockout(shared, ratelimit.LockoutOptions{}) // one count for every instance
	if err != nil {
		return err
	}
	// TOTP and passkeys keep their records in durable; passkey challenges can go in shared.
	// readme:end many-instances
	return serve(v, m, lockout)
}

// Two instances of the README's many-instance set-up share one PostgreSQL
// and one Redis: a user who logs in and unlocks on one is unlocked on the
// other, and a failure counted by one is seen by the other.
func TestReadmeManyInstances(t *testing.T) {
	t.Parallel()
	dsn := testenv.Env(t, "KEYHOLD_TEST_POSTGRES_DSN", "DSN of a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	redisURL := testenv.Env(t, "KEYHOLD_TEST_REDIS_URL", "URL of a Redis server, e.g. redis://127.0.0.1:6379/0")
	suffix := strings.ToLower(rand.Text())
	schema, prefix := "keyhold_readme_"+suffix, "keyhold-readme-"+suffix+":"
	t.Cleanup(func() {
		ctx := context.Background()
		if db, err := sql.Open("pgx", dsn); err == nil {
			if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`); err != nil {
				t.Errorf("drop schema: %v", err)
			}
			db.Close()
		}
		if opt, err := redis.ParseURL(redisURL); err == nil {
			c := redis.NewClient(opt)
			if keys, _ := c.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
				c.Del(ctx, keys...)
			}
			c.Close()
		}
	})
	ctx := context.Background()
	var k readmeKDF
	if err := readmeSetup(&k); err != nil {
		t.Fatal(err)
	}
	const user, passphrase = "user-1", "correct horse battery staple"
	wrong := ratelimit.Credential{
		Verify: func(context.Context) error { return kdf.ErrMismatch },
		Dummy:  func(context.Context) error { return nil },
	}
	right := ratelimit.Credential{
		Verify: func(context.Context) error { return nil },
		Dummy:  func(context.Context) error { return nil },
	}
	from := ratelimit.Source{IP: netip.MustParseAddr("192.0.2.1")}
	var cookie *http.Cookie
	err := readmeManyInstances(ctx, dsn, schema, redisURL, prefix, k.hasher, func(v *vault.Vault, m *session.Manager, lockout *ratelimit.Lockout) error {
		// Instance A: a login that unlocks the vault, and a wrong password.
		w := httptest.NewRecorder()
		m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, err := v.Create(r.Context(), user, []byte(passphrase))
			if err == nil {
				defer u.Lock()
				err = m.Login(r.Context(), user, session.LoginOptions{})
			}
			if err == nil {
				err = m.Unlock(r.Context(), u)
			}
			if err != nil {
				t.Errorf("instance A: %v", err)
			}
		})).ServeHTTP(w, httptest.NewRequest("POST", "https://app.example/login", nil))
		for _, c := range w.Result().Cookies() {
			cookie = c
		}
		for range lockout.Policy().MaxFailures {
			if err := lockout.Check(ctx, "ann", from, wrong); !errors.Is(err, ratelimit.ErrRejected) {
				t.Errorf("instance A, a wrong password: %v", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cookie == nil {
		t.Fatal("instance A set no cookie")
	}
	err = readmeManyInstances(ctx, dsn, schema, redisURL, prefix, k.hasher, func(v *vault.Vault, m *session.Manager, lockout *ratelimit.Lockout) error {
		// Instance B: the same session, unlocked; the same failure count.
		r := httptest.NewRequest("GET", "https://app.example/notes", nil)
		r.AddCookie(cookie)
		w := httptest.NewRecorder()
		m.Handler(m.RequireUnlocked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, err := m.Unlocked(r.Context())
			if err != nil || u.UserID() != user {
				t.Errorf("instance B: %v", err)
			}
		}))).ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("instance B: GET /notes with A's cookie: %d, want 200", w.Code)
		}
		if err := lockout.Check(ctx, "ann", from, right); !errors.Is(err, ratelimit.ErrRejected) {
			t.Errorf("instance B: the right password from the address A locked out: %v, want ErrRejected", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
