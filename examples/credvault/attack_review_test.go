package main

// An outsider's attacks on the API, kept as regression tests of the
// defenses that held (each named for what it proves).

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault"
)

// hookStore is keyhold's store with hooks the tests set to force an
// interleaving: onGetVault runs after every vault read (the record read is
// held), onTakeRate before every rate decision. Both are atomic: handlers read them concurrently.
type hookStore struct {
	*sqlstore.Store
	onGetVault atomic.Pointer[func()]
	onTakeRate atomic.Pointer[func()]
	onBegin    atomic.Pointer[func()] // before a lockout counter is counted
	onBegun    atomic.Pointer[func()] // after it is counted
}

func (s *hookStore) BeginAttempt(ctx context.Context, key []byte, req storage.LockoutRequest) (bool, storage.LockoutState, error) {
	if h := s.onBegin.Load(); h != nil {
		(*h)()
	}
	admitted, st, err := s.Store.BeginAttempt(ctx, key, req)
	if h := s.onBegun.Load(); h != nil {
		(*h)()
	}
	return admitted, st, err
}

func (s *hookStore) GetVault(ctx context.Context, userID string) (storage.VaultRecord, error) {
	rec, err := s.Store.GetVault(ctx, userID)
	if h := s.onGetVault.Load(); h != nil {
		(*h)()
	}
	return rec, err
}

func (s *hookStore) TakeRate(ctx context.Context, key []byte, req storage.RateRequest) (storage.RateResult, error) {
	if h := s.onTakeRate.Load(); h != nil {
		(*h)()
	}
	return s.Store.TakeRate(ctx, key, req)
}

// newHookedTestApp is newTestApp whose vault, login limit and lockout run
// on a hookStore.
func newHookedTestApp(t *testing.T) (*testApp, *hookStore) {
	t.Helper()
	clock := &testClock{now: time.Now().Truncate(time.Second)}
	logs := &syncBuffer{}
	dbPath := filepath.Join(t.TempDir(), "credvault.db")
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := newApp(config{DBPath: dbPath, VaultKDF: kdf.InteractiveParams(), Logger: logger, Now: clock.Now, InsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := &hookStore{Store: a.store}
	if a.vault, err = vault.New(hs, vault.Config{Hasher: a.hasher, KDF: kdf.InteractiveParams()}); err != nil {
		t.Fatal(err)
	}
	if a.loginPerIP, err = ratelimit.New(hs, ratelimit.LoginPerIP(), ratelimit.Options{Logger: logger, Now: clock.Now}); err != nil {
		t.Fatal(err)
	}
	if a.lockout, err = ratelimit.NewLockout(hs, ratelimit.LockoutOptions{Logger: logger, Now: clock.Now}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return &testApp{app: a, t: t, url: srv.URL, dbPath: dbPath, clock: clock, logs: logs}, hs
}

// barrier returns a hook that holds its first n callers until all n have
// arrived, then lets everyone through (later callers pass at once).
func barrier(n int) (hook func(), arrived <-chan struct{}) {
	var mu sync.Mutex
	count := 0
	all := make(chan struct{})
	return func() {
		mu.Lock()
		count++
		c := count
		if c == n {
			close(all)
		}
		mu.Unlock()
		if c <= n {
			<-all
		}
	}, all
}

// parallel runs fns at once and waits for all of them.
func parallel(fns ...func()) {
	var wg sync.WaitGroup
	for _, f := range fns {
		wg.Go(f)
	}
	wg.Wait()
}

// A login for an unknown user, with a wrong password, and for a locked
// account (with the right password) get the same status and the same
// bytes, and none of them answers much faster than a real password check
// (the dummy KDF runs): no enumeration by message, status or time.
func TestAttackLoginSameAnswerForUnknownWrongAndLocked(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	c.signup("ada", adaPassword)
	login := func(name, pw string) (response, time.Duration) {
		ta.clock.Advance(3 * time.Minute) // past the address limit (one login per 3 minutes)
		start := time.Now()
		r := c.send("POST", "/api/login", map[string]string{"username": name, "password": pw})
		return r, time.Since(start)
	}
	// The fastest of 3 of each: scheduling noise only ever adds time.
	fastest := func(name, pw string) (r response, d time.Duration) {
		for i := range 3 {
			ri, di := login(name, pw)
			if i == 0 || di < d {
				d = di
			}
			r = ri
		}
		return r, d
	}
	login("ada", adaPassword)                           // warms the KDF's memory up
	wrong, tWrong := fastest("ada", bobPassword)        // real Argon2id verifications: the baseline
	unknown, tUnknown := fastest("nobody", bobPassword) // the dummy
	for range 7 {                                       // 10 wrong passwords lock this address out of ada
		login("ada", bobPassword)
	}
	if !strings.Contains(ta.logs.String(), `"msg":"authn_login_lock"`) {
		t.Fatal("the account did not lock")
	}
	locked, tLocked := fastest("ada", adaPassword) // the right password, refused
	for name, r := range map[string]response{"unknown": unknown, "locked": locked} {
		if r.status != wrong.status || r.raw != wrong.raw {
			t.Errorf("%s user: %d %s; a wrong password: %d %s", name, r.status, r.raw, wrong.status, wrong.raw)
		}
	}
	// A generous bound (a quarter of a real verification): a path that
	// skips the KDF answers in a millisecond or two.
	for name, d := range map[string]time.Duration{"unknown": tUnknown, "locked": tLocked} {
		if d < tWrong/4 {
			t.Errorf("%s: %v, a wrong password %v", name, d, tWrong)
		}
	}
	t.Logf("fastest of 3: wrong %v, unknown %v, locked %v", tWrong, tUnknown, tLocked)
}

// The login limit counts by the connection's address: headers a client
// sets itself (X-Forwarded-For, X-Real-IP, Forwarded) do not buy it a new
// allowance.
func TestAttackSpoofedForwardingHeadersDoNotResetLoginLimit(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	for range 5 {
		c.want(http.StatusUnauthorized, "wrong_credentials", "POST", "/api/login", map[string]string{"username": "ada", "password": bobPassword})
	}
	for i, h := range [][]string{
		{"X-Forwarded-For", "203.0.113.7"},
		{"X-Real-IP", "203.0.113.8"},
		{"Forwarded", "for=203.0.113.9"},
		{"X-Forwarded-For", "203.0.113.10", "X-Real-IP", "203.0.113.10", "True-Client-IP", "203.0.113.10", "CF-Connecting-IP", "203.0.113.10"},
	} {
		r := c.send("POST", "/api/login", map[string]string{"username": "ada", "password": bobPassword}, h...)
		if r.status != http.StatusTooManyRequests {
			t.Errorf("spoof %d (%v): %d %s", i, h, r.status, r.raw)
		}
	}
}

// Case, surrounding spaces and the Kelvin sign (which lowercases to an
// ASCII k) name the same account, so they count on one lockout: variants
// of a username give no fresh guesses.
func TestAttackUsernameVariantsShareOneLockout(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	c.signup("kim", adaPassword)
	c.want(http.StatusOK, "", "POST", "/api/logout", nil)
	variants := []string{"kim", "KIM", " Kim", "kim\t", "\u212Aim", "\u212AIM "}
	for i := range 10 {
		ta.clock.Advance(3 * time.Minute) // one login per 3 minutes passes the address limit
		c.want(http.StatusUnauthorized, "wrong_credentials", "POST", "/api/login", map[string]string{"username": variants[i%len(variants)], "password": bobPassword})
	}
	for _, v := range variants {
		ta.clock.Advance(3 * time.Minute)
		c.want(http.StatusUnauthorized, "wrong_credentials", "POST", "/api/login", map[string]string{"username": v, "password": adaPassword})
	}
	ta.clock.Advance(2 * time.Hour)
	c.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "KIM", "password": adaPassword})
}

// Eight logins that reach the rate limit at the same moment (held at the
// store until all have arrived) get five passes and three 429s: parallel
// requests do not race past the limit.
func TestAttackLoginLimitHoldsUnderForcedConcurrency(t *testing.T) {
	t.Parallel()
	ta, hs := newHookedTestApp(t)
	hook, _ := barrier(8)
	hs.onTakeRate.Store(&hook)
	var limited, other atomic.Int32
	fns := make([]func(), 8)
	for i := range fns {
		fns[i] = func() {
			r := ta.client().send("POST", "/api/login", map[string]string{"username": fmt.Sprintf("user%d", i), "password": bobPassword})
			if r.status == http.StatusTooManyRequests {
				limited.Add(1)
			} else {
				other.Add(1)
			}
		}
	}
	parallel(fns...)
	if limited.Load() != 3 {
		t.Errorf("%d of 8 concurrent logins limited, want 3 (%d others)", limited.Load(), other.Load())
	}
}

// The CSRF rule holds against content-type tricks: only a media type of
// application/json passes (parameters allowed); the simple types a
// cross-site form or fetch may send, with or without tricks in their
// parameters, are 415; "Origin: null" (a sandboxed frame, a data: URL)
// and Sec-Fetch-Site: same-site (another port on 127.0.0.1 is the same
// site, so SameSite cookies do not stop it) are refused. None of the
// refused requests changes anything.
func TestAttackCSRFContentTypeTricksRefused(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	cred := `{"site":"evil.example","username":"u","password":"p","notes":""}`
	for _, ct := range []string{
		"text/plain", "text/plain; charset=utf-8", "text/plain; application/json", "text/plain;charset=application/json",
		"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json-patch+json",
		"application/jsonp", "application/json, text/plain", "text/plain, application/json", "application/ json",
		"", "application/*", "*/*",
	} {
		c.want(http.StatusUnsupportedMediaType, "unsupported_media_type", "POST", "/api/credentials", cred, "Content-Type", ct)
	}
	// A missing header (Go's client sends none for a nil Content-Type map entry).
	req, _ := http.NewRequest("POST", ta.url+"/api/lock", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("no Content-Type: %d", resp.StatusCode)
	}
	c.want(http.StatusForbidden, "cross_origin", "POST", "/api/credentials", cred, "Origin", "null")
	c.want(http.StatusForbidden, "cross_origin", "POST", "/api/credentials", cred, "Sec-Fetch-Site", "same-site")
	c.want(http.StatusForbidden, "cross_origin", "DELETE", "/api/credentials/"+strings.Repeat("0", 32), nil, "Sec-Fetch-Site", "cross-site")
	c.want(http.StatusForbidden, "cross_origin", "POST", "/api/logout", nil, "Origin", "http://127.0.0.1:3000")
	if list := c.want(http.StatusOK, "", "GET", "/api/credentials", nil).body["credentials"].([]any); len(list) != 0 {
		t.Errorf("a refused request stored a credential: %v", list)
	}
}

// A token planted in the browser before the login (an unknown one, or the
// attacker's own session, as another app on a localhost port can set
// cookies for 127.0.0.1) is never the victim's session: the login answers
// a new token, and the planted one reaches nothing of the victim's.
func TestAttackSessionFixationRefused(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	mallory := ta.unlockedUser("mallory", bobPassword, bobPassphrase)
	victim := ta.client()
	victim.signup("ada", adaPassword)
	victim.want(http.StatusOK, "", "POST", "/api/logout", nil)
	u, err := http.NewRequest("GET", ta.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	cookieOf := func(c *client) *http.Cookie {
		for _, ck := range c.hc.Jar.Cookies(u.URL) {
			if ck.Name == "keyhold" {
				return ck
			}
		}
		return nil
	}
	planted := cookieOf(mallory)
	if planted == nil {
		t.Fatal("no session cookie named keyhold")
	}
	for _, value := range []string{planted.Value, strings.Repeat("A", len(planted.Value))} {
		victim.hc.Jar.SetCookies(u.URL, []*http.Cookie{{Name: "keyhold", Value: value, Path: "/"}})
		victim.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword})
		if got := cookieOf(victim); got == nil || got.Value == value {
			t.Fatalf("the login kept the planted token")
		}
		attacker := ta.client()
		attacker.hc.Jar.SetCookies(u.URL, []*http.Cookie{{Name: "keyhold", Value: value, Path: "/"}})
		if r := attacker.send("GET", "/api/security/status", nil); r.status == http.StatusOK && str(r.body, "username") == "ada" {
			t.Fatalf("the planted token is ada's session: %s", r.raw)
		}
	}
}

// While the vault is locked (by POST /api/lock, or by 30 idle minutes),
// no endpoint reads, changes, adds or deletes a credential, and the
// recovery key endpoint wants the passphrase: the lock is the server's.
func TestAttackLockedVaultOpensNothing(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	secret := "ada's locked-away password"
	id := str(c.want(http.StatusCreated, "", "POST", "/api/credentials", map[string]string{"site": "s", "password": secret}).body, "id")
	check := func(how string) {
		t.Helper()
		for _, rq := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/credentials", nil},
			{"GET", "/api/credentials/" + id, nil},
			{"PUT", "/api/credentials/" + id, map[string]string{"site": "changed"}},
			{"DELETE", "/api/credentials/" + id, nil},
			{"POST", "/api/credentials", map[string]string{"site": "added"}},
			{"HEAD", "/api/credentials/" + id, nil},
		} {
			r := c.send(rq.method, rq.path, rq.body)
			if r.status != http.StatusLocked || strings.Contains(r.raw, secret) {
				t.Errorf("%s: %s %s: %d %s", how, rq.method, rq.path, r.status, r.raw)
			}
		}
		c.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/recovery-key", map[string]string{})
		if r := c.want(http.StatusOK, "", "GET", "/api/security/status", nil); strings.Contains(r.raw, secret) || r.body["vault"].(map[string]any)["unlocked"] != false {
			t.Errorf("%s: status %s", how, r.raw)
		}
	}
	c.want(http.StatusOK, "", "POST", "/api/lock", nil)
	check("locked")
	ta.clock.Advance(time.Minute) // the KDF limits: a unit back
	c.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
	ta.clock.Advance(idleLock)
	check("idle")
	ta.clock.Advance(time.Minute)
	c.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
	if got := c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil).body; got["site"] != "s" || got["password"] != secret {
		t.Errorf("a refused request changed the credential: %v", got)
	}
	if n := len(c.want(http.StatusOK, "", "GET", "/api/credentials", nil).body["credentials"].([]any)); n != 1 {
		t.Errorf("%d credentials", n)
	}
}

// Two unlocks with the same recovery key, from two sessions, held at the
// vault read until both have read it: one opens the vault and gets the
// replacement key, the other is refused (409); the key is spent once, and
// only the one replacement works.
func TestAttackRecoveryKeySpentOnceUnderForcedRace(t *testing.T) {
	t.Parallel()
	ta, hs := newHookedTestApp(t)
	c1 := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	key := str(c1.want(http.StatusCreated, "", "POST", "/api/recovery-key", map[string]string{"passphrase": adaPassphrase}).body, "recovery_key")
	c1.want(http.StatusOK, "", "POST", "/api/lock", nil)
	c2 := ta.client()
	c2.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword})

	hook, _ := barrier(2)
	hs.onGetVault.Store(&hook)
	var r1, r2 response
	parallel(
		func() { r1 = c1.send("POST", "/api/unlock", map[string]string{"recovery_key": key}) },
		func() { r2 = c2.send("POST", "/api/unlock", map[string]string{"recovery_key": key}) },
	)
	hs.onGetVault.Store(nil)
	win, lose := r1, r2
	if r2.status == http.StatusOK {
		win, lose = r2, r1
	}
	if win.status != http.StatusOK || lose.status == http.StatusOK || lose.code() != "conflict" {
		t.Fatalf("two unlocks with one key: %d %s / %d %s\n%s", r1.status, r1.raw, r2.status, r2.raw, ta.logs.String())
	}
	next := str(win.body, "new_recovery_key")
	if str(lose.body, "new_recovery_key") != "" || next == "" {
		t.Fatalf("replacement keys: %s / %s", win.raw, lose.raw)
	}
	c3 := ta.client()
	c3.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword})
	c3.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/unlock", map[string]string{"recovery_key": key})
	c3.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"recovery_key": next})
	if v := c3.want(http.StatusOK, "", "GET", "/api/security/status", nil).body["vault"].(map[string]any); v["recovery_keys"] != float64(1) {
		t.Errorf("recovery keys after the race: %v", v)
	}
}

// A logout that lands while an unlock is deriving its key (held at the
// vault read) wins: the unlock is answered as not logged in, and the old
// cookie reaches nothing, unlocked or not.
func TestAttackLogoutDuringUnlockLeavesNoSession(t *testing.T) {
	t.Parallel()
	ta, hs := newHookedTestApp(t)
	c := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	c.want(http.StatusCreated, "", "POST", "/api/credentials", map[string]string{"site": "s"})
	c.want(http.StatusOK, "", "POST", "/api/lock", nil)
	u, _ := http.NewRequest("GET", ta.url, nil)
	old := c.hc.Jar.Cookies(u.URL)

	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func() {
		once.Do(func() {
			close(reached)
			<-release
		})
	}
	hs.onGetVault.Store(&hook)
	var unlock response
	done := make(chan struct{})
	go func() {
		defer close(done)
		unlock = c.send("POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
	}()
	<-reached
	c.want(http.StatusOK, "", "POST", "/api/logout", nil)
	close(release)
	<-done
	hs.onGetVault.Store(nil)
	if unlock.status == http.StatusOK {
		t.Errorf("the unlock after the logout: %d %s", unlock.status, unlock.raw)
	}
	replay := ta.client()
	replay.hc.Jar.SetCookies(u.URL, old)
	replay.want(http.StatusUnauthorized, "not_logged_in", "GET", "/api/credentials", nil)
	replay.want(http.StatusUnauthorized, "not_logged_in", "GET", "/api/security/status", nil)
}

// Import abuse: bodies of 1 and 10 MiB are 413 before anything is read
// into memory past the bound; nesting, invalid UTF-8, NUL bytes, odd
// salts and a non-object are 400; duplicate keys, or a file that asks for
// a huge PBKDF2 iteration count, do not change the KDF's cost (fixed at
// 480,000: the file's extra members are ignored, and such a file imports
// in the usual time). Nothing is left behind by any refusal.
func TestAttackImportAbuseRefusedAndKDFCostFixed(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	c.signup("migrant", adaPassword)
	file := fixtureFile(t)
	var f map[string]any
	if err := json.Unmarshal(file, &f); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) json.RawMessage {
		g := map[string]any{}
		for kk, vv := range f {
			g[kk] = vv
		}
		g[k] = v
		b, _ := json.Marshal(g)
		return b
	}
	for _, size := range []int{1 << 20, 10 << 20} {
		c.want(http.StatusRequestEntityTooLarge, "body_too_large", "POST", "/api/import",
			`{"passphrase":"`+fixturePassphrase+`","file":{"salt":"`+strings.Repeat("A", size)+`"}}`)
	}
	c.want(http.StatusBadRequest, "invalid_json", "POST", "/api/import", `{"file":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}`)
	c.want(http.StatusBadRequest, "invalid_json", "POST", "/api/import", "{\"passphrase\":\"a\x00b\",\"file\":{}}")
	c.want(http.StatusBadRequest, "invalid_json", "POST", "/api/import", `{"passphrase":"x","file":{"a":1}`)
	for name, bad := range map[string]json.RawMessage{
		"8-byte salt":   with("salt", "AAAAAAAAAAA="),
		"32-byte salt":  with("salt", strings.Repeat("A", 43)+"="),
		"empty salt":    with("salt", ""),
		"salt not b64":  with("salt", "!!!!!!!!!!!!!!!!!!!!!!=="),
		"salt a number": with("salt", 16),
		"NUL in token":  with("password", "gAAAA\x00AAA"),
		"invalid UTF-8": json.RawMessage("{\"encrypted\":true,\"version\":\"1.0\",\"salt\":\"\xff\xfe\",\"email\":\"x\",\"password\":\"y\"}"),
		"nested":        json.RawMessage(strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)),
		"null":          json.RawMessage(`null`),
		"array":         json.RawMessage(`[1,2,3]`),
		"version 2.0":   with("version", "2.0"),
	} {
		ta.clock.Advance(time.Minute) // the KDF limits: every import past the policy spends a unit
		r := c.send("POST", "/api/import", importBody(fixturePassphrase, bad))
		if want := http.StatusBadRequest; r.status != want && !(name == "NUL in token" && r.status == http.StatusUnauthorized) {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	ta.nothingImported(c)
	// Extra members naming a KDF cost, and a duplicate key, are ignored:
	// the cost stays 480,000 iterations and the file imports quickly.
	costly := with("iterations", 4_000_000_000)
	var m map[string]any
	_ = json.Unmarshal(costly, &m)
	m["kdf"], m["hash"], m["length"] = "pbkdf2-sha512", "sha512", 1<<30
	costly, _ = json.Marshal(m)
	costly = append(costly[:len(costly)-1], []byte(`,"version":"1.0"}`)...) // a duplicate key
	ta.clock.Advance(time.Minute)
	start := time.Now()
	c.want(http.StatusCreated, "", "POST", "/api/import", importBody(fixturePassphrase, costly))
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the import took %v", d)
	}
}

// No answer echoes a password, a passphrase or a recovery key back, not
// even a refusal that quotes the policy (a passphrase containing the
// username, a too-long one, a wrong one), and the logs hold none.
func TestAttackNoSecretEchoed(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	var raws []string
	keep := func(r response) { raws = append(raws, r.raw) }
	weak := "Credvault-Secret-9!"
	long := "Long-Passphrase-1!" + strings.Repeat("x", 2000)
	keep(c.send("POST", "/api/signup", map[string]string{"username": "ada", "password": "credvault credvault credvault"}))
	c.signup("ada", adaPassword)
	keep(c.send("POST", "/api/passphrase", map[string]string{"passphrase": weak}))
	keep(c.send("POST", "/api/passphrase", map[string]string{"passphrase": long}))
	keep(c.want(http.StatusCreated, "", "POST", "/api/passphrase", map[string]string{"passphrase": adaPassphrase}))
	c.want(http.StatusOK, "", "POST", "/api/lock", nil)
	keep(c.send("POST", "/api/unlock", map[string]string{"passphrase": bobPassphrase}))
	keep(c.send("POST", "/api/unlock", map[string]string{"recovery_key": "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH"}))
	keep(c.send("POST", "/api/import", importBody(bobPassphrase, fixtureFile(t))))
	keep(c.send("POST", "/api/login", map[string]string{"username": "ada", "password": bobPassword}))
	for _, raw := range raws {
		for _, s := range []string{"credvault credvault", weak, long[:40], adaPassphrase, bobPassphrase, bobPassword, "AAAA-BBBB"} {
			if strings.Contains(raw, s) {
				t.Errorf("an answer holds %q: %s", s, raw)
			}
		}
	}
	ta.noSecretsLogged("credvault credvault", weak, long[:40], adaPassphrase, bobPassphrase, bobPassword, adaPassword, "AAAA-BBBB")
}

// The documented import reads the old passphrase with read -s, and keeps
// it out of every command's arguments too, which any local user can read
// (ps, /proc/<pid>/cmdline): jq and curl, wrapped here to record their
// arguments, never get it as one.
func TestAttackDocImportKeepsPassphraseOutOfArgv(t *testing.T) {
	t.Parallel()
	testenv.LookPath(t, "bash", "apt-get install bash")
	testenv.LookPath(t, "curl", "apt-get install curl")
	testenv.LookPath(t, "jq", "apt-get install jq")
	ta := newTestApp(t)
	dir, bin := t.TempDir(), t.TempDir()
	argv := filepath.Join(dir, "argv.log")
	for _, tool := range []string{"jq", "curl"} {
		real, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		wrapper := fmt.Sprintf("#!/bin/bash\nprintf '%%s\\n' \"$@\" >> %q\nexec %q \"$@\"\n", argv, real)
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(wrapper), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile("../../vault/testdata/fernet_credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), file, 0o600); err != nil {
		t.Fatal(err)
	}
	session := docBlock(t, "With curl", ta.url)
	setup := strings.Join(strings.SplitN(session, "\n", 3)[:2], "\n")
	cmd := exec.Command("bash", "-eo", "pipefail", "-c", setup+"\n"+docBlock(t, "To import a credentials file", ta.url))
	cmd.Dir, cmd.Stdin = dir, strings.NewReader(fixturePassphrase+"\n")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"vault":"unlocked"`) {
		t.Fatalf("the import: %v\n%s", err, out)
	}
	logged, err := os.ReadFile(argv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), "/api/import") {
		t.Fatalf("the wrappers recorded no import:\n%s", logged)
	}
	if strings.Contains(string(logged), fixturePassphrase) {
		t.Errorf("the old passphrase is a command's argument (readable by every local user in ps):\n%s", logged)
	}
}

// A logout that lands while a recovery-key unlock is running (held after
// its vault read) cannot cost the user their recovery key: the vault
// spends the key and stores its replacement before the session is found
// gone, so the answer, an error, still carries the replacement, which
// then unlocks.
func TestAttackRecoveryKeyReplacementSurvivesLogoutRace(t *testing.T) {
	t.Parallel()
	ta, hs := newHookedTestApp(t)
	c := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	key := str(c.want(http.StatusCreated, "", "POST", "/api/recovery-key", map[string]string{"passphrase": adaPassphrase}).body, "recovery_key")
	c.want(http.StatusOK, "", "POST", "/api/lock", nil)

	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func() {
		once.Do(func() {
			close(reached)
			<-release
		})
	}
	hs.onGetVault.Store(&hook)
	var unlock response
	done := make(chan struct{})
	go func() {
		defer close(done)
		unlock = c.send("POST", "/api/unlock", map[string]string{"recovery_key": key})
	}()
	<-reached
	c.want(http.StatusOK, "", "POST", "/api/logout", nil)
	close(release)
	<-done
	hs.onGetVault.Store(nil)

	c2 := ta.client()
	c2.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword})
	if unlock.status == http.StatusOK {
		t.Fatalf("the unlock after the logout: %s", unlock.raw)
	}
	next := str(unlock.body, "new_recovery_key")
	if next == "" {
		// The old key must then still work, or the user has none.
		c2.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"recovery_key": key})
		return
	}
	if unlock.code() != "not_logged_in" {
		t.Errorf("the answer: %d %s", unlock.status, unlock.raw)
	}
	c2.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/unlock", map[string]string{"recovery_key": key})
	c2.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"recovery_key": next})
	ta.noSecretsLogged(key, next)
}

// Odd bodies and paths on every endpoint get a 4xx JSON answer, never a
// 500 or a panic: nulls, wrong types, arrays, deep nesting, invalid UTF-8,
// NUL bytes, duplicate and differently-cased keys, odd IDs. The session
// cookie is HttpOnly and SameSite=Lax.
func TestAttackOddInputNever500(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	r := c.want(http.StatusCreated, "", "POST", "/api/signup", map[string]string{"username": "ada", "password": adaPassword})
	if sc := r.header.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") {
		t.Errorf("session cookie: %s", sc)
	}
	c.want(http.StatusCreated, "", "POST", "/api/passphrase", map[string]string{"passphrase": adaPassphrase})
	bodies := []string{
		``, `null`, `[]`, `"s"`, `1`, `{"site":null}`, `{"site":["a"]}`, `{"site":{"a":1}}`, `{"passphrase":1}`,
		`{"recovery_key":{}}`, `{"file":"x"}`, `{"file":null,"passphrase":"Quartz-Lantern-47!"}`,
		"{\"site\":\"\xff\xfe\",\"username\":\"\x00\"}", `{"site":"a","site":"b"}`, `{"SITE":"a","Site":"b"}`,
		`{"username":"ADA","USERNAME":"ada","password":"x"}`, strings.Repeat("[", 100000), `{"site":"` + strings.Repeat("\\u0000", 2000) + `"}`,
		`{"passphrase":"` + strings.Repeat("é", 3000) + `"}`, `{"recovery_key":"` + strings.Repeat("A", 5000) + `"}`,
	}
	paths := []string{"/api/signup", "/api/login", "/api/passphrase", "/api/unlock", "/api/recovery-key", "/api/import", "/api/credentials"}
	for _, p := range paths {
		for _, b := range bodies {
			ta.clock.Advance(3 * time.Minute) // past most limits: the handlers, not the limits, answer
			r := c.send("POST", p, b)
			if r.status >= 500 || r.status < 400 && r.status != http.StatusOK && r.status != http.StatusCreated {
				t.Errorf("POST %s %.40q: %d %s", p, b, r.status, r.raw)
			}
		}
	}
	for _, id := range []string{"x", strings.Repeat("A", 32), strings.Repeat("0", 31) + "g", "%00", "..%2f..%2fetc", strings.Repeat("0", 33), "%ff"} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			if r := c.send(m, "/api/credentials/"+id, `{"site":"s"}`); r.status != http.StatusNotFound {
				t.Errorf("%s %s: %d %s", m, id, r.status, r.raw)
			}
		}
	}
}

// Unlocking before the vault exists is answered no_vault and is not a
// wrong guess: a client that retries it (or the recovery key endpoint)
// does not lock the user's own login out.
func TestAttackUnlockWithoutVaultDoesNotLockLogin(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	c.signup("ada", adaPassword)
	for i := range 12 {
		ta.clock.Advance(time.Minute) // the KDF limits
		if i%2 == 0 {
			c.want(http.StatusConflict, "no_vault", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
		} else {
			c.want(http.StatusConflict, "no_vault", "POST", "/api/recovery-key", map[string]string{"passphrase": adaPassphrase})
		}
	}
	c.want(http.StatusOK, "", "POST", "/api/logout", nil)
	c.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword})
}

// Nine wrong passwords, then three logins with the right one that reach
// the lockout at the same moment (held at the store until all have
// arrived, and none going on to its password check until all three have
// been counted: a login that went on could succeed and reset the counter
// before a slow goroutine's count, which a loaded machine did once): the
// lockout admits one attempt, which locks the account until it succeeds,
// and refuses the other two as locked. Parallel requests do not race past
// the lockout: had they, an attacker one guess short of the lock would get
// three.
func TestAttackLockoutHoldsUnderForcedConcurrency(t *testing.T) {
	t.Parallel()
	ta, hs := newHookedTestApp(t)
	c := ta.client()
	c.signup("ada", adaPassword)
	for range 9 {
		ta.clock.Advance(3 * time.Minute) // one login per 3 minutes passes the address limit
		c.want(http.StatusUnauthorized, "wrong_credentials", "POST", "/api/login", map[string]string{"username": "ada", "password": bobPassword})
	}
	ta.clock.Advance(15 * time.Minute) // five logins' allowance
	arrive, _ := barrier(3)
	counted, _ := barrier(3)
	hs.onBegin.Store(&arrive)
	hs.onBegun.Store(&counted)
	var in, refused atomic.Int32
	fns := make([]func(), 3)
	for i := range fns {
		fns[i] = func() {
			switch r := ta.client().send("POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword}); r.code() {
			case "":
				in.Add(1)
			case "wrong_credentials":
				refused.Add(1)
			default:
				t.Errorf("login: %d %s", r.status, r.raw)
			}
		}
	}
	parallel(fns...)
	hs.onBegin.Store(nil)
	hs.onBegun.Store(nil)
	if in.Load() != 1 || refused.Load() != 2 {
		t.Errorf("%d logins in, %d refused; want 1 and 2; the app's log:\n%s", in.Load(), refused.Load(), ta.logs.String())
	}
	if n := strings.Count(ta.logs.String(), `"msg":"credvault.login_failed","locked":true`); n != 2 {
		t.Errorf("%d logins refused as locked, want 2", n)
	}
}

// DNS rebinding: a web page on another name that it points at 127.0.0.1
// is same-origin with itself, so neither CrossOriginProtection nor the
// JSON rule stops its script, and its requests come from the loopback
// address like the user's own. The API answers only requests named to a
// loopback host (127.0.0.1, ::1, localhost): the page's guesses at the
// user's password spend neither the user's login limit nor their
// lockout, and it cannot sign up either.
func TestAttackDNSRebindingRefused(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	victim := ta.client()
	victim.signup("ada", adaPassword)
	victim.want(http.StatusOK, "", "POST", "/api/logout", nil)
	send := func(host, path string, body any) int {
		b, _ := json.Marshal(body)
		req, err := http.NewRequest("POST", ta.url+path, strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(ta.url, "http://"), ":")
	for i := range 12 {
		if s := send("rebind.attacker.example:"+port, "/api/login", map[string]string{"username": "ada", "password": fmt.Sprint("guess-", i)}); s != http.StatusMisdirectedRequest {
			t.Fatalf("a rebound login: %d", s)
		}
	}
	if s := send("rebind.attacker.example", "/api/signup", map[string]string{"username": "mallory", "password": bobPassword}); s != http.StatusMisdirectedRequest {
		t.Errorf("a rebound signup: %d", s)
	}
	victim.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword})
	for _, host := range []string{"localhost:" + port, "LOCALHOST", "[::1]:" + port, "127.0.0.2:" + port} {
		if s := send(host, "/api/logout", nil); s != http.StatusOK {
			t.Errorf("Host %s: %d", host, s)
		}
	}
}

// loopbackHost accepts the loopback addresses and localhost, with or
// without a port, and no name that merely resolves to them or starts
// like them.
func TestAttackLoopbackHostNames(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.1:8091": true, "127.1.2.3:1": true, "[::1]:8091": true, "::1": true, "[::1]": true,
		"localhost": true, "LocalHost:8091": true, "localhost.:8091": true,
		"": false, "attacker.example": false, "127.0.0.1.nip.io": false, "localhost.attacker.example:8091": false,
		"127.0.0.1:8091.attacker.example": false, "[::1%25lo]:8091": false, "0.0.0.0:8091": false, "10.0.0.1": false,
		"localhost:8091:1": false, "localhost:": false, "localhost:80a": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
