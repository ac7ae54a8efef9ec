package zk_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/zk"
)

// The server keeps what the client sealed and nothing that opens it:
// here a Go client plays the browser's part (package vault seals exactly
// as client.js does). Every write names the version it replaces, and a
// record's version is authenticated inside it, so the server cannot store
// an old record under a newer version.
func Example() {
	store := memstore.New()
	quiet := slog.New(slog.DiscardHandler)
	sessions, _ := session.New(store, session.Config{Logger: quiet, AllowInsecureCookies: true})
	limiter, _ := ratelimit.New(store, zk.DefaultRule(), ratelimit.Options{Logger: quiet})
	server, _ := zk.New(zk.Config{Sessions: sessions, Store: store, Limiter: limiter, Logger: quiet})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		sessions.Login(r.Context(), "alice", session.LoginOptions{}) // after checking her password
	})
	mux.Handle("/zk/", http.StripPrefix("/zk", server))
	mux.Handle("GET /static/keyhold-zk.js", zk.ScriptHandler())
	app := httptest.NewServer(sessions.Handler(mux))
	defer app.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	browser.Post(app.URL+"/login", "", nil)

	// The client's vault, made where the passphrase is (in the browser).
	clientSide := memstore.New()
	v, _ := vault.New(clientSide, vault.Config{KDF: kdf.PBKDF2SHA256Params()})
	u, _ := v.Create(context.Background(), "alice", []byte("a passphrase the server never sees"))
	defer u.Lock()
	put := func(path string, body []byte, expect string) int {
		req, _ := http.NewRequest("PUT", app.URL+"/zk"+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(zk.ExpectHeader, expect)
		resp, _ := browser.Do(req)
		resp.Body.Close()
		return resp.StatusCode
	}
	record, _ := clientSide.GetVault(context.Background(), "alice")
	fmt.Println("vault stored:", put("/vault", record.Data, "0"))

	context1 := []byte("keyhold/zk/record/diary")
	first, _ := u.SealVersion([]byte("dear diary"), context1, 1)
	second, _ := u.SealVersion([]byte("dear diary, again"), context1, 2)
	fmt.Println("version 1:", put("/records/diary", first, "0"))
	fmt.Println("version 2:", put("/records/diary", second, "1"))
	fmt.Println("version 1 again, as version 3:", put("/records/diary", first, "2"))

	resp, _ := browser.Get(app.URL + "/zk/records/diary")
	var sealed bytes.Buffer
	sealed.ReadFrom(resp.Body)
	resp.Body.Close()
	fmt.Println("the server holds the plaintext:", bytes.Contains(sealed.Bytes(), []byte("diary")))
	plaintext, version, _ := u.OpenVersion(sealed.Bytes(), context1, 2)
	fmt.Printf("the client reads: %q (version %d)\n", plaintext, version)
	// Output:
	// vault stored: 200
	// version 1: 200
	// version 2: 200
	// version 1 again, as version 3: 400
	// the server holds the plaintext: false
	// the client reads: "dear diary, again" (version 2)
}
