package keyhold_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/browsertest"
	"github.com/keyhold/keyhold/passkey"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault/zk"
)

// readmeZeroKnowledge mounts the README's zero-knowledge server (region
// zk-setup) on mux, and, with pk, the PRF options route (zk-passkey).
func readmeZeroKnowledge(mux *http.ServeMux, store *sqlstore.Store, m *session.Manager, pk *passkey.Manager) error {
	// readme:begin zk-setup
	perUser, err := ratelimit.New(store, zk.DefaultRule(), ratelimit.Options{}) // 300 requests a minute per user
	if err != nil {
		return err
	}
	private, err := zk.New(zk.Config{
		Sessions: m,     // every request needs the user's complete session
		Store:    store, // storage.BlobStore: sqlstore, memstore, or your adapter
		Limiter:  perUser,
	})
	if err != nil {
		return err
	}
	mux.Handle("/zk/", http.StripPrefix("/zk", private))        // the vault record and sealed records, as opaque blobs
	mux.Handle("GET /static/keyhold-zk.js", zk.ScriptHandler()) // the browser client, from your own origin
	// readme:end zk-setup
	if pk == nil {
		return nil
	}
	// readme:begin zk-passkey
	mux.Handle("POST /passkey/prf-options", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		options, err := pk.PRFOptions(r) // each passkey's salt; the browser keeps the PRF output
		reply(w, json.RawMessage(options), err)
	})))
	// readme:end zk-passkey
	return nil
}

// readmeJSBlock returns the README's one ```js block.
func readmeJSBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n```js\n")
	block, _, ok2 := strings.Cut(after, "\n```\n")
	if !ok || !ok2 || strings.Contains(after[len(block):], "\n```js\n") {
		t.Fatal("README.md must have exactly one ```js block")
	}
	return block
}

const readmeZKPage = `<!doctype html><meta charset="utf-8"><title>zk</title>
<input id="passphrase" value="a long passphrase the server never sees">
<script type="module" src="/app.js"></script>`

// The README's zero-knowledge section runs as pasted: its Go block serves
// the API and the client, and its JavaScript block, loaded as the page's
// module, creates a vault, seals a note, reads it back and logs it; a
// second load unlocks the vault it made. The server's store then holds the
// vault and the note, and neither the passphrase nor the note's text.
func TestReadmeZeroKnowledge(t *testing.T) {
	store := readmeStore(t)
	m, err := session.New(store, session.Config{AllowInsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	const user, passphrase, note = "user-1", "a long passphrase the server never sees", "dear diary"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, readmeZKPage) })
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /blank", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<!doctype html><title>blank</title>") })
	js := readmeJSBlock(t)
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		io.WriteString(w, js)
	})
	mux.HandleFunc("POST /password", func(w http.ResponseWriter, r *http.Request) { // the password was right
		if err := m.Login(r.Context(), user, session.LoginOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	var (
		seenMu sync.Mutex
		seen   bytes.Buffer // every request the server received: URL, headers, body
	)
	recorder := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seenMu.Lock()
		seen.WriteString(r.URL.String())
		for k, v := range r.Header {
			seen.WriteString(k + strings.Join(v, ","))
		}
		seen.Write(body)
		seenMu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		m.Handler(mux).ServeHTTP(w, r)
	})
	origin := browsertest.ServeLocalhost(t, recorder)
	lockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := passkey.New(passkey.Config{RPID: "localhost", Origins: []string{origin}, Store: store, Challenges: store, Sessions: m, Lockout: lockout})
	if err != nil {
		t.Fatal(err)
	}
	if err := readmeZeroKnowledge(mux, store, m, pk); err != nil {
		t.Fatal(err)
	}

	s := browsertest.Start(t, browsertest.Options{Timeout: 60 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	step := func(script string) string {
		t.Helper()
		raw, err := s.Eval(ctx, script, map[string]any{"url": origin + "/"})
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		return string(raw)
	}
	// Log in (on a blank page of the origin), then load the README's module
	// twice: once it creates the vault, once it unlocks it. The first put
	// of a record asks for its version first (404: none yet).
	step(`await page.goto(arg.url + "blank"); return await page.evaluate(async () => (await fetch("/password", {method: "POST"})).status);`)
	// The PRF options route answers; this user has no passkey, so 409.
	if got := step(`return await page.evaluate(async () => (await fetch("/passkey/prf-options", {method: "POST"})).status);`); got != "409" {
		t.Fatalf("POST /passkey/prf-options without a passkey: %s, want 409", got)
	}
	for range 2 {
		step(`await page.goto(arg.url);
			await page.waitForEvent("console", {predicate: (m) => m.text().startsWith("` + note + `"), timeout: 30000});
			return null;`)
	}
	var logged []string
	for _, c := range s.Console() {
		if strings.HasPrefix(c.Text, note) {
			logged = append(logged, c.Text)
		}
		expected := strings.Contains(c.Text, "Failed to load resource") && // the browser's note of a 4xx answer
			(strings.Contains(c.URL, "/prf-options") || strings.Contains(c.URL, "/zk/records/diary") && strings.Contains(c.Text, "404"))
		if (c.Level == "error" || c.Level == "pageerror" || c.Level == "http") && !expected {
			t.Errorf("console error: %s", c)
		}
	}
	if len(logged) != 2 || logged[0] != logged[1] || len(logged[0]) != len(note)+1+19 {
		t.Fatalf("the README's module logged %q, want the note and the same fingerprint twice", logged)
	}

	seenMu.Lock()
	defer seenMu.Unlock()
	blobs, err := store.ListBlobs(context.Background(), user, "", 10)
	if err != nil || len(blobs) != 2 {
		t.Fatalf("the store holds %v (%v), want the vault and one record", blobs, err)
	}
	for _, b := range blobs {
		blob, err := store.GetBlob(context.Background(), user, b.Name)
		if err != nil {
			t.Fatal(err)
		}
		seen.Write(blob.Data)
	}
	for _, secret := range []string{passphrase, note} {
		if bytes.Contains(seen.Bytes(), []byte(secret)) {
			t.Errorf("the server received or stored %q", secret)
		}
	}
}
