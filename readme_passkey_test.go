package keyhold_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/browsertest"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/passkey"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault"
)

// readmePasskey makes the README's passkey.Manager (region
// passkey-setup) and serves its ceremonies on mux (passkey-routes).
func readmePasskey(mux *http.ServeMux, store *sqlstore.Store, m *session.Manager, v *vault.Vault, rpID, origin string) error {
	// readme:begin passkey-setup
	userLockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Name: "user"}) // every way in, per user ID
	if err != nil {
		return err
	}
	pk, err := passkey.New(passkey.Config{
		RPID:       rpID,             // "example.com": passkeys are bound to it for good
		Origins:    []string{origin}, // "https://example.com": the exact origins the app is served from
		Store:      store,            // the users' passkeys (sqlstore, memstore, or your adapter)
		Challenges: store,            // one-time challenges, kept server-side
		Sessions:   m,                // a passkey sign-in starts a session
		Vault:      v,                // a passkey with the PRF extension unlocks the vault
		Lockout:    userLockout,
	})
	if err != nil {
		return err
	}
	mux.Handle("GET /static/keyhold-passkey.js", passkey.ScriptHandler()) // the browser side, from your own origin
	// readme:end passkey-setup

	// readme:begin passkey-routes
	mux.Handle("POST /passkey/register/begin", m.RequireFresh(5*time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		options, err := pk.BeginRegistration(r, "ann@example.com") // the account name the authenticator shows
		reply(w, json.RawMessage(options), err)
	})))
	mux.Handle("POST /passkey/register/finish", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, passkey.MaxResponseLen))
		cred, err := pk.FinishRegistration(r, answer, r.URL.Query().Get("name")) // revokes the other sessions
		reply(w, cred, err)
	})))
	mux.HandleFunc("POST /passkey/login/begin", func(w http.ResponseWriter, r *http.Request) { // rate-limit it per IP
		options, err := pk.BeginLogin(w, r) // no user name: the browser offers the passkeys it holds
		reply(w, json.RawMessage(options), err)
	})
	mux.HandleFunc("POST /passkey/login/finish", func(w http.ResponseWriter, r *http.Request) {
		answer, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, passkey.MaxResponseLen))
		// Logged in: a multi-factor session (a user-verified passkey), its vault locked.
		res, err := pk.FinishLogin(w, r, answer, ratelimit.Source{}, passkey.LoginOptions{}) // Source: see ratelimit
		reply(w, res, err)
	})
	mux.Handle("POST /passkey/unlock/begin", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		options, err := pk.BeginUnlock(r) // asks each of the user's passkeys for its PRF output
		reply(w, json.RawMessage(options), err)
	})))
	mux.Handle("POST /passkey/unlock/finish", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, passkey.MaxResponseLen))
		res, err := pk.FinishUnlock(r, answer, ratelimit.Source{}) // the PRF output opens the passkey's vault slot
		reply(w, res, err)
	})))
	// readme:end passkey-routes
	return nil
}

// readme:begin passkey-reply
// reply answers a passkey call with the JSON of v, or with a status that
// tells the user no more than they need.
func reply(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, passkey.ErrLoginFailed), errors.Is(err, passkey.ErrUnlockFailed):
		http.Error(w, "passkey refused", http.StatusUnauthorized) // one answer: unknown, wrong or locked
	case errors.Is(err, passkey.ErrStepUpRequired):
		http.Error(w, "sign in again first", http.StatusForbidden)
	case errors.Is(err, passkey.ErrPRFUnavailable):
		http.Error(w, "this passkey cannot unlock: use your passphrase", http.StatusConflict)
	case errors.Is(err, passkey.ErrChallenge), errors.Is(err, passkey.ErrInvalidResponse),
		errors.Is(err, passkey.ErrRegistrationFailed), errors.Is(err, passkey.ErrCredentialInUse),
		errors.Is(err, passkey.ErrInvalidInput):
		http.Error(w, "start again", http.StatusBadRequest)
	case err != nil:
		http.Error(w, "try again later", http.StatusServiceUnavailable)
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
}

// readme:end passkey-reply

// readmePasskeyPage is the test's page: a module script from the app's
// own origin, so that the default CSP ('self') holds.
const readmePasskeyPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>README passkeys</title>
<script type="module" src="/app.js"></script><p>README passkeys</p></html>`

// TestReadmePasskey runs the README's passkey handlers in chromium with a
// virtual authenticator (PRF, user verification), through the package's
// browser client: a password login unlocks the vault; a passkey is added
// (its PRF output becomes a vault slot); after logging out, it signs in
// without a user name (a multi-factor session, vault locked) and unlocks
// the vault; a note sealed before opens.
func TestReadmePasskey(t *testing.T) {
	store := readmeStore(t)
	m, err := session.New(store, session.Config{AllowInsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	const user, passphrase, note = "user-1", "correct horse battery staple", "sealed before the passkey"
	var sealed []byte
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, readmePasskeyPage)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		io.WriteString(w, `import * as passkey from "/static/keyhold-passkey.js"; window.passkey = passkey;`)
	})
	mux.HandleFunc("POST /password", func(w http.ResponseWriter, r *http.Request) { // the password was right
		if err := m.Login(r.Context(), user, session.LoginOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.Handle("POST /unlock-passphrase", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := v.Create(r.Context(), user, []byte(passphrase))
		if err == nil {
			sealed, err = u.Seal([]byte(note), []byte("note"))
		}
		if err == nil {
			err = m.Unlock(r.Context(), u)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})))
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) { m.Logout(r.Context()) })
	mux.Handle("GET /note", m.RequireUnlocked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := m.Unlocked(r.Context())
		if err == nil {
			var b []byte
			if b, err = u.Open(sealed, []byte("note")); err == nil {
				w.Write(b)
				return
			}
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
	})))
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		info, ok := m.Current(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"in": ok, "factors": info.Factors.String(), "mfa": info.MultiFactor, "unlocked": info.Unlocked})
	})
	origin := browsertest.ServeLocalhost(t, m.Handler(mux))
	if err := readmePasskey(mux, store, m, v, "localhost", origin); err != nil {
		t.Fatal(err)
	}

	s := browsertest.Start(t, browsertest.Options{Timeout: 45 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	step := func(script string) string {
		t.Helper()
		raw, err := s.Eval(ctx, script, map[string]any{"url": origin + "/"})
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		return string(raw)
	}
	step(`await page.goto(arg.url); await page.waitForFunction(() => window.passkey !== undefined); return null;`)
	call := func(method, path string) string {
		t.Helper()
		return step(`return await page.evaluate(async () => { const r = await fetch("` + path + `", {method: "` + method + `"}); return r.status + " " + (await r.text()).trim(); });`)
	}
	for _, p := range []string{"/password", "/unlock-passphrase"} {
		if got := call("POST", p); got != `"200 "` {
			t.Fatalf("%s: %s", p, got)
		}
	}
	reg := step(`return await page.evaluate(() => passkey.register({begin: "/passkey/register/begin", finish: "/passkey/register/finish", name: "Laptop"}));`)
	var cred passkey.Credential
	if err := json.Unmarshal([]byte(reg), &cred); err != nil || cred.Name != "Laptop" || !cred.CanUnlock {
		t.Fatalf("register: %s (%v); want Laptop, CanUnlock", reg, err)
	}
	call("POST", "/logout")
	if got := call("GET", "/whoami"); !strings.Contains(got, `\"in\":false`) {
		t.Fatalf("after logout: %s", got)
	}
	step(`return await page.evaluate(() => passkey.login({begin: "/passkey/login/begin", finish: "/passkey/login/finish"}));`)
	if got := call("GET", "/whoami"); !strings.Contains(got, `\"factors\":\"passkey\",\"in\":true,\"mfa\":true,\"unlocked\":false`) {
		t.Fatalf("after the passkey sign-in: %s; want a multi-factor passkey session, vault locked", got)
	}
	step(`return await page.evaluate(() => passkey.unlock({begin: "/passkey/unlock/begin", finish: "/passkey/unlock/finish"}));`)
	if got := call("GET", "/note"); got != `"200 `+note+`"` {
		t.Fatalf("/note after the passkey unlock: %s", got)
	}
	for _, msg := range s.Console() {
		if msg.Level == "error" || msg.Level == "pageerror" || msg.Level == "http" {
			t.Errorf("browser console: %s", msg)
		}
	}
}
