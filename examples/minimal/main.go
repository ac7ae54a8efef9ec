// Command minimal is keyhold's shortest useful program (go run ./examples/minimal, at http://127.0.0.1:8080): log in, keep a secret sealed, log out.
package main

import (
	"errors"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

func main() { log.Fatal(newServer().ListenAndServe()) }
func newServer() *http.Server {
	store, mux, secrets, mu := memstore.New(), http.NewServeMux(), map[string][]byte{}, new(sync.Mutex)
	v, err1 := vault.New(store, vault.Config{})                               // passphrase slots: Argon2id, 64 MiB
	m, err2 := session.New(store, session.Config{AllowInsecureCookies: true}) // plain HTTP, from loopback only
	policy, err3 := kdf.NewPolicy(kdf.SingleFactorPolicy())                   // 15+ characters, not common
	clients, err4 := ratelimit.NewClientResolver(ratelimit.ClientOptions{})
	perIP, err5 := ratelimit.New(store, ratelimit.LoginPerIP(), ratelimit.Options{}) // 5 per 15 minutes
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		panic(err) // a bug: the configurations above are fixed
	}
	mux.Handle("POST 127.0.0.1/login", perIP.Middleware(ratelimit.ByIP(clients), nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ctx := strings.ToLower(strings.TrimSpace(r.PostFormValue("user"))), []byte(r.PostFormValue("passphrase")), r.Context()
		u, err := v.Unlock(ctx, user, pass) // "Alice " is alice; a wrong passphrase and an unknown name cost the same
		if errors.Is(err, vault.ErrNoVault) && strings.Trim(user, "abcdefghijklmnopqrstuvwxyz0123456789._-") == "" && policy.Check(ctx, pass, kdf.PolicyContext{Username: user}) == nil {
			u, err = v.Create(ctx, user, pass) // a new name (a-z 0-9 . _ -: no look-alikes) with a good passphrase: sign up
		}
		if err != nil {
			http.Error(w, "wrong passphrase (a new name is a-z 0-9 . _ -, its passphrase 15+ characters, not common)", http.StatusForbidden)
		} else if err = errors.Join(m.Login(ctx, user, session.LoginOptions{}), m.Unlock(ctx, u)); err != nil {
			http.Error(w, "server error", http.StatusInternalServerError)
		}
		u.Lock() // the session keeps its own copy of the vault's keys, sealed under its cookie's token
	})))
	mux.HandleFunc("POST 127.0.0.1/logout", func(w http.ResponseWriter, r *http.Request) { m.Logout(r.Context()) })
	mux.Handle("127.0.0.1/secret", m.RequireUnlocked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := m.Unlocked(r.Context()) // RequireUnlocked has checked; it locks when the request ends
		mu.Lock()
		defer mu.Unlock()
		if err = errors.Join(err, r.ParseForm()); err == nil && r.Method == http.MethodPost { // ParseForm fails over 4 KiB
			secrets[u.UserID()], err = u.Seal([]byte(r.PostForm.Get("secret")), []byte("minimal/secret"))
		}
		if plain, oerr := u.Open(secrets[u.UserID()], []byte("minimal/secret")); err == nil && oerr == nil {
			w.Write(plain) // sealed with the user's ID and this purpose, it opens for nothing else
		} else {
			http.Error(w, "no secret yet, or one over 4 KiB", http.StatusBadRequest)
		}
	})))
	h := http.MaxBytesHandler(http.NewCrossOriginProtection().Handler(m.Handler(mux)), 4096) // CSRF: refuses cross-site POSTs; routes for host 127.0.0.1 only: no DNS rebinding
	return &http.Server{Addr: "127.0.0.1:8080", Handler: h, ReadHeaderTimeout: 10 * time.Second}
}
