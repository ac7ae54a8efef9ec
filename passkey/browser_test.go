package passkey_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/browsertest"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/passkey"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

var record = flag.Bool("record", false, "write "+ceremonyFile+" from the ceremonies TestBrowserPasskey runs")

// ceremonyFile is where -record writes the ceremonies of
// TestBrowserPasskey (see testdata/SOURCE).
const ceremonyFile = "testdata/ceremony-passkey.json"

// The page of the browser test: no inline script, so that the CSP of
// default-src 'self' holds; app.js imports the client from the server's
// own origin and hands it to the test's scripts.
const (
	browserPage = `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>keyhold passkey browser test</title>
<script type="module" src="/app.js"></script>
<p>keyhold passkey browser test</p></html>
`
	browserAppJS = `import * as passkey from "/keyhold-passkey.js";
window.passkey = passkey;
`
	browserCSP = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)

// exchange is one ceremony as the server saw it: the options its Begin
// returned and the browser's answer its Finish took.
type exchange struct {
	Options  json.RawMessage `json:"options"`
	Response json.RawMessage `json:"response"`
}

// browserApp is an app built on package passkey: password login with a
// vault, passkey registration, usernameless login and unlock, and a note
// sealed with the vault.
type browserApp struct {
	t        *testing.T
	sessions *session.Manager
	vault    *vault.Vault
	pk       atomic.Pointer[passkey.Manager]
	script   http.Handler

	mu        sync.Mutex
	notes     map[string][]byte // user → sealed note
	exchanges map[string]*exchange
	errs      map[string]error // route → the last error a passkey call returned
	status5xx []string
}

const (
	browserUser       = "alice"
	browserPassphrase = "correct horse battery staple"
	browserNote       = "the note sealed with alice's vault"
)

func newBrowserApp(t *testing.T) (*browserApp, string) {
	t.Helper()
	store := memstore.New()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sessions, err := session.New(store, session.Config{AllowInsecureCookies: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	lockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Name: "passkey-browser", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	app := &browserApp{t: t, sessions: sessions, vault: v, script: passkey.ScriptHandler(),
		notes: map[string][]byte{}, exchanges: map[string]*exchange{}, errs: map[string]error{}}
	origin := browsertest.ServeLocalhost(t, app.handler())
	m, err := passkey.New(passkey.Config{
		RPID: "localhost", RPName: "keyhold browser test", Origins: []string{origin},
		Store: store, Challenges: store, Sessions: sessions, Vault: v, Lockout: lockout, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	app.pk.Store(m)
	return app, origin
}

// statusWriter remembers the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (a *browserApp) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, browserPage)
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		io.WriteString(w, browserAppJS)
	})
	mux.Handle("GET /keyhold-passkey.js", a.script)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /login-password", a.loginPassword)
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := a.sessions.Logout(r.Context()); err != nil {
			a.fail(w, "/logout", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /whoami", a.whoami)
	mux.HandleFunc("POST /note", a.sealNote)
	mux.HandleFunc("GET /note", a.openNote)
	mux.HandleFunc("GET /passkeys", func(w http.ResponseWriter, r *http.Request) {
		info, ok := a.sessions.Current(r.Context())
		if !ok {
			a.fail(w, "/passkeys", session.ErrNotLoggedIn)
			return
		}
		list, err := a.pk.Load().List(r.Context(), info.UserID)
		if err != nil {
			a.fail(w, "/passkeys", err)
			return
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("POST /passkey/register/begin", func(w http.ResponseWriter, r *http.Request) {
		info, _ := a.sessions.Current(r.Context())
		a.begin(w, r, "register", func() ([]byte, error) {
			return a.pk.Load().BeginRegistration(r, info.UserID+"@example.test")
		})
	})
	mux.HandleFunc("POST /passkey/register/finish", func(w http.ResponseWriter, r *http.Request) {
		a.finish(w, r, "register", func(body []byte) (any, error) {
			return a.pk.Load().FinishRegistration(r, body, r.URL.Query().Get("name"))
		})
	})
	mux.HandleFunc("POST /passkey/login/begin", func(w http.ResponseWriter, r *http.Request) {
		a.begin(w, r, "login", func() ([]byte, error) { return a.pk.Load().BeginLogin(w, r) })
	})
	mux.HandleFunc("POST /passkey/login/finish", func(w http.ResponseWriter, r *http.Request) {
		a.finish(w, r, "login", func(body []byte) (any, error) {
			return a.pk.Load().FinishLogin(w, r, body, source(r), passkey.LoginOptions{Remember: r.URL.Query().Get("remember") == "1"})
		})
	})
	mux.HandleFunc("POST /passkey/unlock/begin", func(w http.ResponseWriter, r *http.Request) {
		a.begin(w, r, "unlock", func() ([]byte, error) { return a.pk.Load().BeginUnlock(r) })
	})
	mux.HandleFunc("POST /passkey/unlock/finish", func(w http.ResponseWriter, r *http.Request) {
		a.finish(w, r, "unlock", func(body []byte) (any, error) { return a.pk.Load().FinishUnlock(r, body, source(r)) })
	})
	mux.HandleFunc("POST /passkey/stepup/begin", func(w http.ResponseWriter, r *http.Request) {
		a.begin(w, r, "stepUp", func() ([]byte, error) { return a.pk.Load().BeginStepUp(r) })
	})
	mux.HandleFunc("POST /passkey/stepup/finish", func(w http.ResponseWriter, r *http.Request) {
		a.finish(w, r, "stepUp", func(body []byte) (any, error) { return a.pk.Load().FinishStepUp(r, body, source(r)) })
	})
	// A login and a step-up, recorded apart: the page answers them
	// without user verification (the no-uv step) and the server refuses
	// them.
	mux.HandleFunc("POST /passkey/login-nouv/begin", func(w http.ResponseWriter, r *http.Request) {
		a.begin(w, r, "loginNoUV", func() ([]byte, error) { return a.pk.Load().BeginLogin(w, r) })
	})
	mux.HandleFunc("POST /passkey/login-nouv/finish", func(w http.ResponseWriter, r *http.Request) {
		a.finish(w, r, "loginNoUV", func(body []byte) (any, error) {
			return a.pk.Load().FinishLogin(w, r, body, source(r), passkey.LoginOptions{})
		})
	})
	mux.HandleFunc("POST /passkey/stepup-nouv/begin", func(w http.ResponseWriter, r *http.Request) {
		a.begin(w, r, "stepUpNoUV", func() ([]byte, error) { return a.pk.Load().BeginStepUp(r) })
	})
	mux.HandleFunc("POST /passkey/stepup-nouv/finish", func(w http.ResponseWriter, r *http.Request) {
		a.finish(w, r, "stepUpNoUV", func(body []byte) (any, error) { return a.pk.Load().FinishStepUp(r, body, source(r)) })
	})
	h := a.sessions.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", browserCSP)
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status >= 500 {
			a.mu.Lock()
			a.status5xx = append(a.status5xx, fmt.Sprintf("%d %s %s", sw.status, r.Method, r.URL.Path))
			a.mu.Unlock()
		}
	})
}

func source(r *http.Request) ratelimit.Source {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ratelimit.Source{}
	}
	return ratelimit.Source{IP: ap.Addr()}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// fail answers err as an app would: a short code and a 4xx status for
// what the client can cause, 500 for the rest (which the test refuses).
func (a *browserApp) fail(w http.ResponseWriter, route string, err error) {
	a.mu.Lock()
	a.errs[route] = err
	a.mu.Unlock()
	var status int
	var code string
	switch {
	case errors.Is(err, passkey.ErrChallenge):
		status, code = http.StatusBadRequest, "challenge"
	case errors.Is(err, passkey.ErrInvalidResponse), errors.Is(err, passkey.ErrInvalidInput):
		status, code = http.StatusBadRequest, "invalid"
	case errors.Is(err, passkey.ErrOrigin):
		status, code = http.StatusForbidden, "origin"
	case errors.Is(err, passkey.ErrLoginFailed), errors.Is(err, passkey.ErrUnlockFailed),
		errors.Is(err, passkey.ErrRegistrationFailed), errors.Is(err, passkey.ErrCredentialInUse):
		status, code = http.StatusUnauthorized, "refused"
	case errors.Is(err, passkey.ErrStepUpRequired), errors.Is(err, session.ErrNotLoggedIn):
		status, code = http.StatusForbidden, "login"
	case errors.Is(err, passkey.ErrPRFUnavailable):
		status, code = http.StatusUnprocessableEntity, "prf"
	case errors.Is(err, session.ErrLocked):
		status, code = http.StatusLocked, "locked"
	default:
		a.t.Errorf("%s: %v", route, err)
		status, code = http.StatusInternalServerError, "internal"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func (a *browserApp) begin(w http.ResponseWriter, r *http.Request, name string, begin func() ([]byte, error)) {
	opts, err := begin()
	if err != nil {
		a.fail(w, name+"/begin", err)
		return
	}
	a.mu.Lock()
	a.exchanges[name] = &exchange{Options: append(json.RawMessage(nil), opts...)}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(opts)
}

func (a *browserApp) finish(w http.ResponseWriter, r *http.Request, name string, finish func([]byte) (any, error)) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, passkey.MaxResponseLen+1))
	if err != nil {
		a.fail(w, name+"/finish", err)
		return
	}
	a.mu.Lock()
	if e := a.exchanges[name]; e != nil && json.Valid(body) {
		e.Response = append(json.RawMessage(nil), body...)
	}
	a.mu.Unlock()
	res, err := finish(body)
	if err != nil {
		a.fail(w, name+"/finish", err)
		return
	}
	a.mu.Lock()
	delete(a.errs, name+"/finish")
	a.mu.Unlock()
	writeJSON(w, res)
}

// loginPassword logs the user in with a password (the app's check is
// left out: the passphrase opens or creates the vault) and unlocks the
// vault.
func (a *browserApp) loginPassword(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, err := a.vault.Unlock(ctx, browserUser, []byte(browserPassphrase))
	if errors.Is(err, vault.ErrNoVault) {
		u, err = a.vault.Create(ctx, browserUser, []byte(browserPassphrase))
	}
	if err != nil {
		a.fail(w, "/login-password", err)
		return
	}
	if err := a.sessions.Login(ctx, browserUser, session.LoginOptions{Factor: session.FactorPassword}); err != nil {
		a.fail(w, "/login-password", err)
		return
	}
	if err := a.sessions.Unlock(ctx, u); err != nil {
		a.fail(w, "/login-password", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// whoamiInfo is what /whoami answers.
type whoamiInfo struct {
	LoggedIn    bool   `json:"loggedIn"`
	User        string `json:"user"`
	Factors     string `json:"factors"`
	Passkey     bool   `json:"passkey"`
	Password    bool   `json:"password"`
	MultiFactor bool   `json:"multiFactor"`
	Unlocked    bool   `json:"unlocked"`
}

func (a *browserApp) whoami(w http.ResponseWriter, r *http.Request) {
	info, ok := a.sessions.Current(r.Context())
	if !ok {
		writeJSON(w, whoamiInfo{})
		return
	}
	writeJSON(w, whoamiInfo{
		LoggedIn: true, User: info.UserID, Factors: info.Factors.String(),
		Passkey: info.Factors.Has(session.FactorPasskey), Password: info.Factors.Has(session.FactorPassword),
		MultiFactor: info.MultiFactor, Unlocked: info.Unlocked,
	})
}

func (a *browserApp) sealNote(w http.ResponseWriter, r *http.Request) {
	u, err := a.sessions.Unlocked(r.Context())
	if err != nil {
		a.fail(w, "/note", err)
		return
	}
	text, err := io.ReadAll(io.LimitReader(r.Body, 1<<10))
	if err != nil {
		a.fail(w, "/note", err)
		return
	}
	sealed, err := u.Seal(text, []byte("note"))
	if err != nil {
		a.fail(w, "/note", err)
		return
	}
	a.mu.Lock()
	a.notes[u.UserID()] = sealed
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (a *browserApp) openNote(w http.ResponseWriter, r *http.Request) {
	u, err := a.sessions.Unlocked(r.Context())
	if err != nil {
		a.fail(w, "/note", err)
		return
	}
	a.mu.Lock()
	sealed := a.notes[u.UserID()]
	a.mu.Unlock()
	text, err := u.Open(sealed, []byte("note"))
	if err != nil {
		a.fail(w, "/note", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(text)
}

func (a *browserApp) lastError(route string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.errs[route]
}

// browserScript runs one step of TestBrowserPasskey in the page: arg.step
// names it. Each returns what the test checks.
const browserScript = `
const call = async (path, init) => {
  const r = await fetch(path, Object.assign({ credentials: 'same-origin' }, init));
  const text = await r.text();
  return { status: r.status, text };
};
switch (arg.step) {
case 'open': {
  await page.goto(arg.url);
  await page.waitForFunction(() => window.passkey !== undefined);
  return await page.evaluate(async () => ({ supported: passkey.supported(), prfLikely: (await passkey.prfLikely()) ?? null }));
}
case 'password': {
  return await page.evaluate(async ({ note }) => {
    const call = async (path, init) => { const r = await fetch(path, init); return { status: r.status, text: await r.text() }; };
    const login = await call('/login-password', { method: 'POST' });
    const seal = await call('/note', { method: 'POST', body: note });
    return { login: login.status, seal: seal.status };
  }, { note: arg.note });
}
case 'register':
  return await page.evaluate(() => passkey.register({ begin: '/passkey/register/begin', finish: '/passkey/register/finish', name: 'Laptop ✓' }));
case 'login':
  return await page.evaluate(() => passkey.login({ begin: '/passkey/login/begin', finish: '/passkey/login/finish' }));
case 'unlock':
  return await page.evaluate(() => passkey.unlock({ begin: '/passkey/unlock/begin', finish: '/passkey/unlock/finish' }));
case 'login-without-cookie': {
  // The login ceremony's cookie is dropped between begin and finish:
  // the finish request cannot name the ceremony.
  if (!globalThis.dropExposed) {
    await page.exposeFunction('dropLoginCookie', async () => {
      const had = (await context.cookies()).filter((c) => c.name === arg.cookie).length;
      await context.clearCookies({ name: arg.cookie });
      return had;
    });
    globalThis.dropExposed = true;
  }
  return await page.evaluate(async () => {
    const orig = window.fetch;
    let dropped = -1;
    window.fetch = async (url, init) => {
      if (String(url).startsWith('/passkey/login/finish')) dropped = await window.dropLoginCookie();
      return orig(url, init);
    };
    try {
      await passkey.login({ begin: '/passkey/login/begin', finish: '/passkey/login/finish' });
      return { dropped, error: null };
    } catch (e) {
      return { dropped, error: { name: e.name, status: e.status ?? null, text: e.text ?? null, message: e.message } };
    } finally {
      window.fetch = orig;
    }
  });
}
case 'stepUp':
  return await page.evaluate(() => passkey.stepUp({ begin: '/passkey/stepup/begin', finish: '/passkey/stepup/finish' }));
case 'no-uv': {
  // A login or a step-up (arg.kind) that the page answers without user
  // verification. Chromium 156 verifies the user whenever the
  // authenticator can, even when asked "discouraged" (the UV flag is
  // set), and with the authenticator's user-verified state false the
  // ceremony fails (NotAllowedError). So, the first time, the passkey
  // moves to an authenticator without user verification: its private
  // key and counter from WebAuthn.getCredentials, the first one removed
  // (chromium keeps one internal authenticator), a new one added with
  // the same options but hasUserVerification and isUserVerified false,
  // and the credential put in with WebAuthn.addCredential (its PRF
  // secret does not move: CDP has no field for it, so no unlock here).
  // The page's navigator.credentials.get gets the server's options with
  // userVerification "discouraged" and, for the login, the passkey
  // listed in allowCredentials (chromium finds no discoverable
  // credential on it without user verification); the rest is the
  // client's as usual.
  if (!globalThis.noUV) {
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
    const { authenticatorId: id } = await cdp.send('WebAuthn.addVirtualAuthenticator',
      { options: Object.assign({}, arg.authenticator, { hasUserVerification: false, isUserVerified: false }) });
    for (const credential of credentials) await cdp.send('WebAuthn.addCredential', { authenticatorId: id, credential });
    globalThis.noUV = { id, credentialIds: credentials.map((c) => c.credentialId) };
  }
  const { credentials: moved } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: globalThis.noUV.id });
  const out = await page.evaluate(async ({ kind, ids }) => {
    const creds = navigator.credentials;
    const get = creds.get.bind(creds);
    let asked = null;
    creds.get = (opts) => {
      asked = opts.publicKey.userVerification ?? null;
      opts.publicKey.userVerification = 'discouraged';
      if (kind === 'login') {
        opts.publicKey.allowCredentials = ids.map((id) => ({ type: 'public-key', id: Uint8Array.from(atob(id), (c) => c.charCodeAt(0)) }));
      }
      return get(opts);
    };
    try {
      const path = kind === 'login' ? '/passkey/login-nouv/' : '/passkey/stepup-nouv/';
      await passkey[kind]({ begin: path + 'begin', finish: path + 'finish' });
      return { asked, error: null };
    } catch (e) {
      return { asked, error: { name: e.name, status: e.status ?? null, text: e.text ?? null, message: e.message } };
    } finally {
      delete creds.get;
    }
  }, { kind: arg.kind, ids: globalThis.noUV.credentialIds });
  out.moved = moved.length;
  return out;
}
case 'get':
  return await page.evaluate(async (path) => { const r = await fetch(path); return { status: r.status, text: await r.text() }; }, arg.path);
case 'post':
  return await page.evaluate(async (path) => { const r = await fetch(path, { method: 'POST' }); return { status: r.status, text: await r.text() }; }, arg.path);
case 'credentials': {
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  return credentials.map((c) => ({ resident: c.isResidentCredential, signCount: c.signCount }));
}
}
throw new Error('unknown step ' + arg.step);
`

// TestBrowserPasskey runs package passkey end to end in chromium with a
// virtual authenticator (CTAP 2.1, platform, resident keys, user
// verification, PRF), through client.js served by ScriptHandler on a page
// whose CSP allows 'self' only: a password login unlocks the vault and
// seals a note; a passkey is registered and its PRF output becomes a vault
// slot at once; after logging out, the passkey signs in without a user
// name (a multi-factor session, vault locked), then unlocks the vault,
// which opens the note, and steps the session up. A login whose ceremony
// cookie is dropped between begin and finish is refused (ErrChallenge,
// 400) and logs no one in; a login and a step-up answered without user
// verification (the passkey moved to an authenticator without it, see
// the no-uv step) are refused (ErrLoginFailed, 401) and leave the session
// as it was. The page logs no error and the server answers no 5xx. With
// -record, the ceremonies go to testdata/ceremony-passkey.json.
func TestBrowserPasskey(t *testing.T) {
	app, origin := newBrowserApp(t)
	s := browsertest.Start(t, browsertest.Options{Timeout: 45 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	step := func(name string, extra map[string]any, out any) {
		t.Helper()
		arg := map[string]any{"step": name, "url": origin + "/"}
		for k, v := range extra {
			arg[k] = v
		}
		raw, err := s.Eval(ctx, browserScript, arg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s: %s: %v", name, raw, err)
			}
		}
	}
	type answer struct {
		Status int    `json:"status"`
		Text   string `json:"text"`
	}
	get := func(path string) answer {
		t.Helper()
		var a answer
		step("get", map[string]any{"path": path}, &a)
		return a
	}
	whoami := func() whoamiInfo {
		t.Helper()
		a := get("/whoami")
		var w whoamiInfo
		if err := json.Unmarshal([]byte(a.Text), &w); err != nil {
			t.Fatalf("/whoami: %d %q: %v", a.Status, a.Text, err)
		}
		return w
	}

	var opened struct {
		Supported bool  `json:"supported"`
		PRFLikely *bool `json:"prfLikely"`
	}
	step("open", nil, &opened)
	if !opened.Supported {
		t.Fatal("passkey.supported() is false in chromium on http://localhost")
	}
	t.Logf("chromium %s, playwright-core %s; prfLikely() = %v", s.BrowserVersion(), s.PlaywrightVersion(), fmtBoolPtr(opened.PRFLikely))

	// A password login unlocks the vault; a note is sealed with it.
	var pw struct{ Login, Seal int }
	step("password", map[string]any{"note": browserNote}, &pw)
	if pw.Login != http.StatusNoContent || pw.Seal != http.StatusNoContent {
		t.Fatalf("password login %d, sealing the note %d; want 204, 204", pw.Login, pw.Seal)
	}
	if w := whoami(); !w.LoggedIn || !w.Password || w.Passkey || w.MultiFactor || !w.Unlocked {
		t.Fatalf("after the password login: %+v", w)
	}

	// Registration: the PRF output given at registration becomes the
	// passkey's vault slot.
	var reg passkey.Credential
	step("register", nil, &reg)
	if reg.Name != "Laptop ✓" || !reg.PRF || !reg.CanUnlock || reg.Algorithm != -7 || reg.ID == "" {
		t.Fatalf("registered %+v; want the name sent by register(), PRF, CanUnlock, ES256", reg)
	}
	var list []passkey.Credential
	if a := get("/passkeys"); a.Status != http.StatusOK || json.Unmarshal([]byte(a.Text), &list) != nil ||
		len(list) != 1 || list[0].ID != reg.ID || !list[0].CanUnlock {
		t.Fatalf("/passkeys: %d %s; want the one passkey, CanUnlock", a.Status, a.Text)
	}
	if w := whoami(); !w.LoggedIn || !w.Unlocked {
		t.Fatalf("after registering (the session is re-issued): %+v", w)
	}

	step("post", map[string]any{"path": "/logout"}, nil)
	if w := whoami(); w.LoggedIn {
		t.Fatalf("after logout: %+v", w)
	}

	// Refusal: the login's ceremony cookie dropped before finish.
	var refused struct {
		Dropped int `json:"dropped"`
		Error   *struct {
			Name, Text, Message string
			Status              int
		} `json:"error"`
	}
	step("login-without-cookie", map[string]any{"cookie": "keyhold-passkey"}, &refused)
	if refused.Dropped != 1 {
		t.Fatalf("the login ceremony cookie was not there to drop (%d); the refusal below would prove nothing", refused.Dropped)
	}
	if refused.Error == nil || refused.Error.Name != "PasskeyError" || refused.Error.Status != http.StatusBadRequest ||
		!strings.Contains(refused.Error.Text, `"challenge"`) {
		t.Fatalf("login without its cookie: %+v; want a PasskeyError 400 {\"error\":\"challenge\"}", refused.Error)
	}
	if err := app.lastError("login/finish"); !errors.Is(err, passkey.ErrChallenge) {
		t.Fatalf("FinishLogin without the cookie returned %v, want ErrChallenge", err)
	}
	if w := whoami(); w.LoggedIn {
		t.Fatalf("after the refused login: %+v", w)
	}

	// Usernameless login: a multi-factor passkey session, vault locked.
	var login passkey.LoginResult
	step("login", nil, &login)
	if login.UserID != browserUser || login.Credential.ID != reg.ID || !login.Credential.CanUnlock || login.ClonedCounter {
		t.Fatalf("login: %+v", login)
	}
	if w := whoami(); !w.LoggedIn || w.User != browserUser || !w.Passkey || w.Password || !w.MultiFactor || w.Unlocked {
		t.Fatalf("after the passkey login: %+v; want alice, passkey only, multi-factor, locked", w)
	}
	if a := get("/note"); a.Status != http.StatusLocked {
		t.Fatalf("/note with the vault locked: %d %s", a.Status, a.Text)
	}

	// Unlock with the passkey's PRF output; the note opens.
	var unlocked passkey.UnlockResult
	step("unlock", nil, &unlocked)
	if unlocked.SetUp || unlocked.Credential.ID != reg.ID {
		t.Fatalf("unlock: %+v; want an unlock (not a set-up) with the registered passkey", unlocked)
	}
	if w := whoami(); !w.LoggedIn || !w.Unlocked || !w.Passkey || !w.MultiFactor {
		t.Fatalf("after the passkey unlock: %+v", w)
	}
	if a := get("/note"); a.Status != http.StatusOK || a.Text != browserNote {
		t.Fatalf("/note after the unlock: %d %q; want %q", a.Status, a.Text, browserNote)
	}

	var creds []struct {
		Resident  bool `json:"resident"`
		SignCount int  `json:"signCount"`
	}
	step("credentials", nil, &creds)
	if len(creds) != 1 || !creds[0].Resident {
		t.Errorf("the authenticator holds %+v; want one resident credential", creds)
	}

	// Step-up: the passkey re-authenticates the session.
	var stepped passkey.Credential
	step("stepUp", nil, &stepped)
	if stepped.ID != reg.ID {
		t.Fatalf("step-up: %+v; want the registered passkey", stepped)
	}
	if w := whoami(); !w.LoggedIn || !w.Unlocked || !w.Passkey || !w.MultiFactor {
		t.Fatalf("after the step-up: %+v", w)
	}

	// Refusal: a login and a step-up answered without user verification
	// (the authenticator's UV flag clear) are refused, and the session
	// stays as it was.
	for _, c := range []struct{ kind, name string }{{"login", "loginNoUV"}, {"stepUp", "stepUpNoUV"}} {
		var noUV struct {
			Moved int     `json:"moved"`
			Asked *string `json:"asked"`
			Error *struct {
				Name, Text, Message string
				Status              int
			} `json:"error"`
		}
		step("no-uv", map[string]any{"kind": c.kind, "authenticator": browsertest.Passkey()}, &noUV)
		if noUV.Moved != 1 {
			t.Fatalf("%s without UV: the authenticator without UV holds %d credentials, want 1", c.kind, noUV.Moved)
		}
		if noUV.Asked == nil || *noUV.Asked != "required" {
			t.Fatalf("%s without UV: the server's options asked userVerification %v, want required", c.kind, noUV.Asked)
		}
		if noUV.Error == nil || noUV.Error.Name != "PasskeyError" || noUV.Error.Status != http.StatusUnauthorized ||
			!strings.Contains(noUV.Error.Text, `"refused"`) {
			t.Fatalf("%s without UV: %+v; want a PasskeyError 401 {\"error\":\"refused\"}", c.kind, noUV.Error)
		}
		if err := app.lastError(c.name + "/finish"); !errors.Is(err, passkey.ErrLoginFailed) {
			t.Fatalf("%s without UV returned %v, want ErrLoginFailed", c.kind, err)
		}
		app.mu.Lock()
		flags, count, err := assertionFlags(app.exchanges[c.name])
		app.mu.Unlock()
		if err != nil || flags&flagUP == 0 || flags&flagUV != 0 {
			t.Fatalf("%s without UV: the recorded answer's flags %#02x (%v); want UP set, UV clear", c.kind, flags, err)
		}
		t.Logf("%s without UV: flags %#02x, sign count %d: refused", c.kind, flags, count)
		if w := whoami(); !w.LoggedIn || !w.Unlocked || !w.Passkey || !w.MultiFactor {
			t.Fatalf("after the %s without UV: %+v", c.kind, w)
		}
	}

	checkOptions(t, app, reg.ID)
	for _, m := range s.Console() {
		if m.Level == "error" || m.Level == "pageerror" || m.Level == "http" {
			if m.Level == "error" && strings.Contains(m.Text, "status of 400") && strings.HasSuffix(m.URL, "/passkey/login/finish") {
				continue // the refusal above
			}
			if m.Level == "error" && strings.Contains(m.Text, "status of 423") && strings.HasSuffix(m.URL, "/note") {
				continue // the locked vault above
			}
			if m.Level == "error" && strings.Contains(m.Text, "status of 401") && strings.HasSuffix(m.URL, "-nouv/finish") {
				continue // the refusals without UV above
			}
			t.Errorf("browser console: %s", m)
		}
	}
	app.mu.Lock()
	for _, s := range app.status5xx {
		t.Errorf("server answered %s", s)
	}
	app.mu.Unlock()

	if !t.Failed() && *record {
		writeRecord(t, app, s, origin)
	}
}

// The flags of authenticator data (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
)

// assertionFlags reads the flags and the sign count of the authenticator
// data of e's answer (an assertion).
func assertionFlags(e *exchange) (byte, uint32, error) {
	if e == nil || e.Response == nil {
		return 0, 0, errors.New("no answer recorded")
	}
	var a struct {
		Response struct {
			AuthenticatorData string `json:"authenticatorData"`
		} `json:"response"`
	}
	if err := json.Unmarshal(e.Response, &a); err != nil {
		return 0, 0, err
	}
	ad, err := base64.RawURLEncoding.DecodeString(a.Response.AuthenticatorData)
	if err != nil {
		return 0, 0, err
	}
	if len(ad) < 37 {
		return 0, 0, fmt.Errorf("authenticator data of %d bytes", len(ad))
	}
	return ad[32], binary.BigEndian.Uint32(ad[33:37]), nil
}

func fmtBoolPtr(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}

// checkOptions checks what the server's Begin calls gave the browser: a
// login asks no account (no allowCredentials), an unlock names the
// registered passkey and its own PRF salt.
func checkOptions(t *testing.T, app *browserApp, credID string) {
	t.Helper()
	app.mu.Lock()
	defer app.mu.Unlock()
	var login struct {
		PublicKey map[string]json.RawMessage `json:"publicKey"`
	}
	if e := app.exchanges["login"]; e == nil || json.Unmarshal(e.Options, &login) != nil || login.PublicKey["challenge"] == nil {
		t.Fatal("no login options recorded")
	}
	if _, ok := login.PublicKey["allowCredentials"]; ok {
		t.Errorf("login options name credentials: %s", app.exchanges["login"].Options)
	}
	var unlock struct {
		PublicKey struct {
			AllowCredentials []struct{ ID string } `json:"allowCredentials"`
			Extensions       struct {
				PRF struct {
					EvalByCredential map[string]struct{ First string } `json:"evalByCredential"`
				} `json:"prf"`
			} `json:"extensions"`
		} `json:"publicKey"`
	}
	e := app.exchanges["unlock"]
	if e == nil || json.Unmarshal(e.Options, &unlock) != nil {
		t.Fatal("no unlock options recorded")
	}
	pk := unlock.PublicKey
	if len(pk.AllowCredentials) != 1 || pk.AllowCredentials[0].ID != credID || len(pk.Extensions.PRF.EvalByCredential) != 1 {
		t.Errorf("unlock options %s; want the registered passkey with its PRF salt", e.Options)
	}
	if salt, err := base64.RawURLEncoding.DecodeString(pk.Extensions.PRF.EvalByCredential[credID].First); err != nil || len(salt) != 32 {
		t.Errorf("unlock options: the PRF salt of %s is %q", credID, pk.Extensions.PRF.EvalByCredential[credID].First)
	}
}

// recordedCeremonies is the shape of testdata/ceremony-passkey.json.
type recordedCeremonies struct {
	Source         string                    `json:"source"`
	Browser        string                    `json:"browser"`
	PlaywrightCore string                    `json:"playwrightCore"`
	Authenticator  browsertest.Authenticator `json:"authenticator"`
	Origin         string                    `json:"origin"`
	RPID           string                    `json:"rpId"`
	Registration   *exchange                 `json:"registration"`
	Login          *exchange                 `json:"login"`
	Unlock         *exchange                 `json:"unlock"`
	StepUp         *exchange                 `json:"stepUp"`
	LoginNoUV      *exchange                 `json:"loginNoUV"`
	StepUpNoUV     *exchange                 `json:"stepUpNoUV"`
}

func writeRecord(t *testing.T, app *browserApp, s *browsertest.Session, origin string) {
	t.Helper()
	app.mu.Lock()
	rec := recordedCeremonies{
		Source: fmt.Sprintf("Recorded by `go test ./passkey -run TestBrowserPasskey -args -record` on %s; see testdata/SOURCE.",
			time.Now().UTC().Format("2006-01-02")),
		Browser: "chromium " + s.BrowserVersion(), PlaywrightCore: s.PlaywrightVersion(),
		Authenticator: browsertest.Passkey(), Origin: origin, RPID: "localhost",
		Registration: app.exchanges["register"], Login: app.exchanges["login"], Unlock: app.exchanges["unlock"],
		StepUp: app.exchanges["stepUp"], LoginNoUV: app.exchanges["loginNoUV"], StepUpNoUV: app.exchanges["stepUpNoUV"],
	}
	app.mu.Unlock()
	for name, e := range map[string]*exchange{"registration": rec.Registration, "login": rec.Login, "unlock": rec.Unlock,
		"stepUp": rec.StepUp, "loginNoUV": rec.LoginNoUV, "stepUpNoUV": rec.StepUpNoUV} {
		if e == nil || e.Options == nil || e.Response == nil {
			t.Fatalf("-record: no %s recorded", name)
		}
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ceremonyFile, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", ceremonyFile)
}

// TestScriptHandler checks how client.js is served: a JavaScript MIME
// type (browsers refuse a module of another), a validator that answers a
// revalidation with 304, and no method but GET and HEAD.
func TestScriptHandler(t *testing.T) {
	h := passkey.ScriptHandler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/keyhold-passkey.js", nil))
	res := w.Result()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET: %d %v", res.StatusCode, res.Header)
	}
	body := w.Body.String()
	for _, fn := range []string{"export async function register(", "export async function login(", "export async function unlock(",
		"export function supported(", "export async function prfLikely("} {
		if !strings.Contains(body, fn) {
			t.Errorf("client.js lacks %q", fn)
		}
	}
	etag := res.Header.Get("ETag")
	if len(etag) < 10 || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q", etag)
	}
	r := httptest.NewRequest(http.MethodGet, "/keyhold-passkey.js", nil)
	r.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("revalidation: %d with %d bytes, want 304", w.Code, w.Body.Len())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/keyhold-passkey.js", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}
