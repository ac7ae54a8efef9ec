package passkey

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/browsertest"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// events records what a Notifier hears.
type events struct {
	mu   sync.Mutex
	list []keyhold.Event
}

func (e *events) Notify(_ context.Context, ev keyhold.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
}

func (e *events) kinds() []keyhold.EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var k []keyhold.EventKind
	for _, ev := range e.list {
		k = append(k, ev.Kind)
	}
	return k
}

// harness is a Manager on memstore with sessions, a vault and a lockout,
// serving requests as the recorded ceremony's origin did, so that the
// recorded browser answers replay against it.
type harness struct {
	t        *testing.T
	cer      *browsertest.Ceremony
	store    *memstore.Store
	clock    *testClock
	sessions *session.Manager
	vault    *vault.Vault
	lockout  *ratelimit.Lockout
	m        *Manager
	events   *events
	logs     *bytes.Buffer
	host     string
}

const testPassphrase = "correct horse battery staple"

var testKDF = kdf.InteractiveParams()

func newHarness(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	cer, err := browsertest.RecordedCeremonyPRF()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cer.Origin)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cer: cer, store: memstore.New(), clock: &testClock{now: time.Now().UTC()},
		events: &events{}, logs: &bytes.Buffer{}, host: u.Host}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.sessions, err = session.New(h.store, session.Config{AllowInsecureCookies: true, Now: h.clock.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h.vault, err = vault.New(h.store, vault.Config{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	h.lockout, err = ratelimit.NewLockout(h.store, ratelimit.LockoutOptions{Name: "passkey-test", Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		RPID: cer.RPID, Origins: []string{cer.Origin}, Store: h.store, Challenges: h.store, Sessions: h.sessions,
		Vault: h.vault, Lockout: h.lockout, Notifier: h.events, Logger: logger, Now: h.clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	if h.m, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return h
}

// browser is one client's cookies.
type browser struct {
	cookies map[string]*http.Cookie
}

func newBrowser() *browser { return &browser{cookies: map[string]*http.Cookie{}} }

// do serves one request of b through the session middleware, running fn
// as the handler, and keeps the cookies set.
func (h *harness) do(b *browser, fn func(w http.ResponseWriter, r *http.Request)) *httptest.ResponseRecorder {
	h.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://"+h.host+"/", nil)
	r.Host = h.host
	r.RemoteAddr = "127.0.0.1:40000"
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.sessions.Handler(http.HandlerFunc(fn)).ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return w
}

// login logs b in as userID with a password, and unlocks the vault
// (created on first use) when unlock is set.
func (h *harness) login(b *browser, userID string, unlock bool) {
	h.t.Helper()
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		if err := h.sessions.Login(r.Context(), userID, session.LoginOptions{}); err != nil {
			h.t.Fatal(err)
		}
	})
	if !unlock {
		return
	}
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		u, err := h.vault.Unlock(r.Context(), userID, []byte(testPassphrase))
		if err != nil {
			if u, err = h.vault.Create(r.Context(), userID, []byte(testPassphrase)); err != nil {
				h.t.Fatal(err)
			}
		}
		if err := h.sessions.Unlock(r.Context(), u); err != nil {
			h.t.Fatal(err)
		}
	})
}

// rewrite replaces the pending ceremony under id with the recorded one's
// challenge (and, for a registration, its user handle and PRF salt), as
// if this server had issued the challenge the browser answered.
func (h *harness) rewrite(id []byte, ceremony byte, userID, ref string, challenge, handle, salt []byte) {
	h.t.Helper()
	st, sd, err := h.m.takeCeremony(context.Background(), id, ceremonyState{Ceremony: ceremony, UserID: userID, Ref: ref})
	if err != nil {
		h.t.Fatalf("no pending ceremony to rewrite: %v", err)
	}
	sd.Challenge = base64.RawURLEncoding.EncodeToString(challenge)
	if handle != nil {
		st.Handle, sd.UserID = handle, handle
	}
	if salt != nil {
		st.Salt = salt
	}
	if err := h.m.putCeremony(context.Background(), id, st, &sd); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) current(b *browser) session.Info {
	h.t.Helper()
	var info session.Info
	h.do(b, func(w http.ResponseWriter, r *http.Request) { info, _ = h.sessions.Current(r.Context()) })
	return info
}

// register replays the recorded registration for b's user (logged in).
func (h *harness) register(b *browser, name string) (Credential, error) {
	h.t.Helper()
	info := h.current(b)
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		if _, err := h.m.BeginRegistration(r, "alice@example.test"); err != nil {
			h.t.Fatalf("BeginRegistration: %v", err)
		}
	})
	reg := h.cer.Registration
	h.rewrite(sessionChallengeID(ceremonyRegister, info.UserID, info.Ref), ceremonyRegister, info.UserID, info.Ref, reg.Challenge, reg.UserID, reg.PRFSalt)
	var cred Credential
	var err error
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		cred, err = h.m.FinishRegistration(r, mustJSON(h.t, reg.Response), name)
	})
	return cred, err
}

// loginWith replays recorded assertion i as a usernameless login of b.
func (h *harness) loginWith(b *browser, i int, response []byte) (LoginResult, error) {
	h.t.Helper()
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		if _, err := h.m.BeginLogin(w, r); err != nil {
			h.t.Fatalf("BeginLogin: %v", err)
		}
	})
	c := b.cookies[h.m.loginCookieName()]
	if c == nil {
		h.t.Fatal("BeginLogin set no cookie")
	}
	token, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		h.t.Fatal(err)
	}
	h.rewrite(loginChallengeID(token), ceremonyLogin, "", "", h.cer.Assertions[i].Challenge, nil, nil)
	if response == nil {
		response = mustJSON(h.t, h.cer.Assertions[i].Response)
	}
	var res LoginResult
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		res, err = h.m.FinishLogin(w, r, response, ratelimit.Source{}, LoginOptions{})
	})
	return res, err
}

// unlockWith replays recorded assertion i as the unlock ceremony of b's
// session.
func (h *harness) unlockWith(b *browser, i int, response []byte) (UnlockResult, error) {
	h.t.Helper()
	info := h.current(b)
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		if _, err := h.m.BeginUnlock(r); err != nil {
			h.t.Fatalf("BeginUnlock: %v", err)
		}
	})
	h.rewrite(sessionChallengeID(ceremonyUnlock, info.UserID, info.Ref), ceremonyUnlock, info.UserID, info.Ref, h.cer.Assertions[i].Challenge, nil, nil)
	if response == nil {
		response = mustJSON(h.t, h.cer.Assertions[i].Response)
	}
	var res UnlockResult
	var err error
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		res, err = h.m.FinishUnlock(r, response, ratelimit.Source{})
	})
	return res, err
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
