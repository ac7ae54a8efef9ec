// Command sessionserver serves the routes that bench/session.sh loads with
// wrk: a bare handler, the same handler behind keyhold's session
// middleware for a logged-in and for an unlocked session, and behind
// github.com/alexedwards/scs/v2's LoadAndSave with its memstore. It logs
// the sessions in at start and writes their cookies to -cookies as shell
// assignments.
//
// /keyhold-unlocked-open also opens a 64-byte record sealed with the vault,
// which adds the record key's derivation to every request.
//
// It serves plain HTTP on loopback (AllowInsecureCookies), as scs does by
// default, so that TLS does not hide the cost of the middleware.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alexedwards/scs/v2"
	scsmem "github.com/alexedwards/scs/v2/memstore"
	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/vault"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8089", "listen address")
	cookies := flag.String("cookies", "", "file to write the session cookies to")
	redisURL := flag.String("redis", "", "keep keyhold's sessions in this Redis (default: in memory)")
	flag.Parse()
	ctx := context.Background()

	var store session.Store = memstore.New()
	var roundTrips atomic.Int64
	cleanUp := func() {}
	if *redisURL != "" {
		opt, err := redis.ParseURL(*redisURL)
		if err != nil {
			log.Fatal(err)
		}
		client := redis.NewClient(opt)
		client.AddHook(countingHook{&roundTrips})
		prefix := make([]byte, 8)
		rand.Read(prefix)
		keyPrefix := "keyhold-bench-" + hex.EncodeToString(prefix) + ":"
		rs, err := redisstore.New(client, redisstore.Config{Prefix: keyPrefix})
		if err != nil {
			log.Fatal(err)
		}
		store = rs
		// The Redis it is pointed at may be someone's: at exit, the keys
		// of this run's prefix (hex, no glob characters) are deleted.
		cleanUp = func() { deleteKeys(client, keyPrefix) }
	}
	m, err := session.New(store, session.Config{AllowInsecureCookies: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	v, err := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		log.Fatal(err)
	}
	u, err := v.Create(ctx, "bench", []byte("bench passphrase"))
	if err != nil {
		log.Fatal(err)
	}

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	setup := http.NewServeMux()
	setup.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r.Context(), "bench", session.LoginOptions{}); err != nil {
			log.Fatal(err)
		}
	})
	setup.HandleFunc("/unlock", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Unlock(r.Context(), u); err != nil {
			log.Fatal(err)
		}
	})
	note, err := u.Seal([]byte("a 64-byte record, as a small field of an app's table might be...."), []byte("notes/1"))
	if err != nil {
		log.Fatal(err)
	}
	loggedIn := cookieFrom(m.Handler(setup), "/login", "")
	unlocked := cookieFrom(m.Handler(setup), "/unlock", cookieFrom(m.Handler(setup), "/login", ""))
	u.Lock()

	sm := scs.New()
	sm.Store = scsmem.New()
	sm.Cookie.Secure = false
	scsLogin := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sm.RenewToken(r.Context())
		sm.Put(r.Context(), "user", "bench")
	}))
	scsCookie := cookieFrom(scsLogin, "/", "")

	mux := http.NewServeMux()
	mux.Handle("/bare", hello)
	mux.Handle("/keyhold", m.Handler(m.RequireLogin(hello)))
	mux.Handle("/keyhold-unlocked", m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := m.Unlocked(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, "hello "+u.UserID())
	})))
	mux.Handle("/keyhold-unlocked-open", m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := m.Unlocked(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		if _, err := u.Open(note, []byte("notes/1")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "hello")
	})))
	mux.Handle("/scs", sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sm.GetString(r.Context(), "user") == "" {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "hello")
	})))
	mux.HandleFunc("/roundtrips", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, roundTrips.Load()) })

	if *cookies != "" {
		out := fmt.Sprintf("KEYHOLD_COOKIE='keyhold=%s'\nKEYHOLD_UNLOCKED_COOKIE='keyhold=%s'\nSCS_COOKIE='session=%s'\n", loggedIn, unlocked, scsCookie)
		if err := os.WriteFile(*cookies, []byte(out), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving on %s", ln.Addr())
	stop, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		cleanUp()
		log.Fatal(err)
	case <-stop.Done():
	}
	shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = srv.Shutdown(shutdown)
	cleanUp()
}

// deleteKeys deletes every key under prefix, and says how many.
func deleteKeys(client *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var deleted int64
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			n, err := client.Unlink(ctx, batch...).Result()
			if err != nil {
				log.Printf("deleting the run's keys: %v", err)
			}
			deleted += n
			batch = batch[:0]
		}
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			flush()
		}
	}
	flush()
	if err := iter.Err(); err != nil {
		log.Printf("listing the run's keys: %v", err)
	}
	log.Printf("deleted %d Redis keys under %s", deleted, prefix)
}

// cookieFrom runs one request through h and returns the cookie it sets.
func cookieFrom(h http.Handler, path, cookie string) string {
	req := httptest.NewRequest("POST", "http://127.0.0.1"+path, nil)
	req.RemoteAddr = "127.0.0.1:40000" // development cookies are for loopback clients only
	if cookie != "" {
		req.Header.Set("Cookie", "keyhold="+cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		return c.Value
	}
	log.Fatalf("%s set no cookie: %d %s", path, rec.Code, strings.TrimSpace(rec.Body.String()))
	return ""
}

// countingHook counts Redis round trips (a pipeline counts once).
type countingHook struct{ n *atomic.Int64 }

func (h countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}
