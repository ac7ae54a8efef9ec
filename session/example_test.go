package session_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// A user logs in, unlocks their vault, and reads sealed data on a later
// request: the vault's keys travel between requests sealed under the
// cookie's token, which the store never sees. Unlocking re-issues the
// cookie, so the cookie from before no longer works.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	v, _ := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	u, _ := v.Create(ctx, "alice", []byte("correct horse battery staple"))
	note, _ := u.Seal([]byte("the cat's name is Ada"), []byte("notes/1"))
	u.Lock()

	m, _ := session.New(store, session.Config{Logger: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// ... after checking the user's password ...
		m.Login(r.Context(), "alice", session.LoginOptions{})
	})
	mux.HandleFunc("POST /unlock", func(w http.ResponseWriter, r *http.Request) {
		info, _ := m.Current(r.Context())
		u, err := v.Unlock(r.Context(), info.UserID, []byte(r.FormValue("passphrase")))
		if err != nil {
			http.Error(w, "wrong passphrase", http.StatusForbidden)
			return
		}
		defer u.Lock()
		m.Unlock(r.Context(), u)
	})
	mux.Handle("GET /note", m.RequireUnlocked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := m.Unlocked(r.Context())
		pt, _ := u.Open(note, []byte("notes/1"))
		w.Write(pt)
	})))
	app := m.Handler(mux)

	call := func(method, path, form, cookie string) (int, string, string) {
		req := httptest.NewRequest(method, "https://app.example"+path, strings.NewReader(form))
		req.TLS = &tls.ConnectionState{}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "__Host-keyhold", Value: cookie})
		}
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		next := cookie
		for _, c := range rec.Result().Cookies() {
			next = c.Value
		}
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b), next
	}

	_, _, c1 := call("POST", "/login", "", "")
	code, _, _ := call("GET", "/note", "", c1)
	fmt.Println("logged in, locked:", code)
	_, _, c2 := call("POST", "/unlock", "passphrase=correct+horse+battery+staple", c1)
	fmt.Println("unlock re-issued the cookie:", c2 != c1)
	code, body, _ := call("GET", "/note", "", c2)
	fmt.Println("unlocked:", code, body)
	code, _, _ = call("GET", "/note", "", c1)
	fmt.Println("the cookie from before unlock:", code)
	// Output:
	// logged in, locked: 403
	// unlock re-issued the cookie: true
	// unlocked: 200 the cat's name is Ada
	// the cookie from before unlock: 401
}
