package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/browsertest"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/kdf"
)

// walkScript is the walk itself (testdata/walk.js): node require()s it in
// the browser session, which passes it its page, browser and
// authenticator.
const walkScript = "testdata/walk.js"

// walkEval is the script TestBrowserWalk sends to the session: it loads
// the walk and runs it.
const walkEval = `
const { createRequire } = await import('node:module');
return await createRequire(arg.script)(arg.script).walk({ page, context, browser, cdp, authenticatorId, arg });
`

// walkWidths are the windows the walk runs in: a laptop's, and a phone's
// (the width of an iPhone 12 to 15), which must never scroll sideways.
var walkWidths = []struct {
	name string
	vp   browsertest.Viewport
}{
	{"desktop", browsertest.Viewport{Width: 1280, Height: 800}},
	{"phone", browsertest.Viewport{Width: 390, Height: 844}},
}

// walkResult is what testdata/walk.js returns.
type walkResult struct {
	Pages []struct {
		Name, URL, Context, Title string
	}
	Failures []string // what the pages said that they should not have
	Problems []string // console and page errors not allowed, 5xx answers, sideways scrolls
	Allowed  []struct {
		Page, Text, Reason string
	}
	Error        string         // why the walk stopped before its end
	Steps        map[string]int // milliseconds per part of the walk
	RecoveryKeys int
	MS           int
}

// TestBrowserWalk walks the web app as a new user would, in chromium
// (internal/browsertest: skipped without chromium, node and
// playwright-core, failed without them when CI=true), once in a desktop
// window and once in a phone's, each with its own app and browser, in
// parallel: sign-up (a passphrase the policy refuses, then a good one),
// the recovery keys, notes added, edited and deleted, lock and unlock,
// logout and login, the styled 404 page, the devices page with a second
// browser logged out from it (one row, then "Log out everywhere else"),
// the Account page (password change, guesses from someone else's
// browser counted and explained, the encryption key replaced with the
// notes sealed again), "Forgot your password?" with a recovery key (one
// from before the key change refused), private (zero-knowledge) notes
// unlocked with the passphrase and with the recovery key, a passkey
// (virtual authenticator with PRF: added, renamed, signing in without a
// username, unlocking, removed), an authenticator app (the secret read
// from the page, the codes computed by the walk), a login with its code,
// a new password set without the old one (two factors), logins with
// recovery codes down to the low-count warning, new codes,
// the authenticator removed, sixteen idle minutes (the app's clock moved
// on) after which the notes are locked, and the account's deletion behind
// the step-up (a wrong password first), after which its login fails as a
// wrong password does. On every page it fails on a
// console error the walk did not expect (each expected one is named, with
// its reason), on any 5xx answer, on a sideways scroll, on a missing
// title and on a missing security header, and saves a full-page
// screenshot: in
// $KEYHOLD_SCREENSHOT_DIR/<width>/NN-name.png when set, else in a
// temporary directory.
//
// The walks run in long mode (KEYHOLD_LONG_TESTS=1, which .ci/run sets)
// or when KEYHOLD_SCREENSHOT_DIR asks for the screenshots, never with
// -short: the desktop's on SQLite, the phone's (the same walk in a
// narrower window) on PostgreSQL and Redis (a schema and a key prefix of
// its own) when KEYHOLD_TEST_POSTGRES_DSN and KEYHOLD_TEST_REDIS_URL name
// them, as in .ci/run, so that the walk covers the app's other storage
// too. Each walk takes 25 to 50 seconds on two cores (more under -race):
// in every run they would take the module's tests past their budget of two
// minutes on two cores (measured: 147 s with the desktop walk). A plain
// `go test ./...` still runs the app's focused browser tests
// (TestPagesFitAPhone checks every page at phone widths,
// TestPasskeyBrowserWalk, TestZeroKnowledgeNotesBrowser).
func TestBrowserWalk(t *testing.T) {
	script, err := filepath.Abs(walkScript)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range walkWidths {
		t.Run(w.name, func(t *testing.T) {
			if testing.Short() || !(testenv.Long() || os.Getenv("KEYHOLD_SCREENSHOT_DIR") != "") {
				t.Skip("the browser walk runs in long mode (" + testenv.LongEnv + "=1, as in .ci/run) or with KEYHOLD_SCREENSHOT_DIR set, and not with -short: " +
					"it would take go test ./... past two minutes; TestPagesFitAPhone and the focused browser tests run meanwhile")
			}
			t.Parallel() // its own app, database, browser and port
			// The phone's walk runs on PostgreSQL and Redis when the tests
			// have them (as .ci/run does): the same pages, on the other
			// storage the app can switch to.
			services := w.name == "phone" && os.Getenv(testPostgresEnv) != "" && os.Getenv(testRedisEnv) != ""
			walkBrowser(t, script, w.vp, services)
		})
	}
}

func walkBrowser(t *testing.T, script string, vp browsertest.Viewport, services bool) {
	const actionTimeout = 15 * time.Second
	s := browsertest.Start(t, browsertest.Options{Viewport: &vp, Timeout: 170 * time.Second, ActionTimeout: actionTimeout})
	shots := screenshotDir(t, vp.Width)
	storage := "SQLite"
	if services {
		storage = "PostgreSQL and Redis"
	}
	origin, logs := walkApp(t, services)
	ctx, cancel := context.WithTimeout(context.Background(), 160*time.Second)
	defer cancel()
	arg := map[string]any{
		"script":        script,
		"origin":        origin,
		"shots":         shots,
		"viewport":      vp,
		"actionTimeout": actionTimeout.Milliseconds(),
		"username":      "ada",
		"password":      password,
		"weakPassword":  "iloveyouiloveyou", // 16 characters, on the blocklist
		"wrongPassword": "velvet otter learns algebra",
		"newPassword":   "quiet harbor lamps at dawn",
		"resetPassword": "copper kettles hum in winter",
		"setPassword":   "seven ferries cross at noon",
		"zkPassphrase":  "glacier Whistle 42 quietly orbits!",
		// The second browser of the devices page: a phone.
		"secondUserAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
	}
	start := time.Now()
	raw, err := s.Eval(ctx, walkEval, arg)
	if err != nil {
		t.Fatalf("the walk stopped: %v\napp log:\n%s", err, logs)
	}
	var got walkResult
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	t.Logf("%d px, on %s: %d pages in %v (the walk %d ms; per part, ms: %v); screenshots in %s",
		vp.Width, storage, len(got.Pages), time.Since(start).Round(time.Millisecond), got.MS, got.Steps, shots)
	for _, a := range got.Allowed {
		t.Logf("allowed on %s: %s: %s", a.Page, a.Reason, a.Text)
	}
	if got.Error != "" {
		t.Errorf("%d px: the walk stopped: %s", vp.Width, got.Error)
	}
	for _, f := range got.Failures {
		t.Errorf("%d px: %s", vp.Width, f)
	}
	for _, p := range got.Problems {
		t.Errorf("%d px: %s", vp.Width, p)
	}
	if len(got.Pages) < 40 && got.Error == "" {
		t.Errorf("only %d pages seen", len(got.Pages))
	}
	// The session's own record of the main browser context: uncaught
	// errors and 5xx answers (the walk checks them too, page by page).
	for _, m := range s.Console() {
		if m.Level == "pageerror" || m.Level == "http" {
			t.Errorf("browser: %s", m)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("an error was logged:\n%s", logs)
	}
	if t.Failed() {
		t.Logf("pages: %v", got.Pages)
		t.Logf("app log:\n%s", logs)
	}
}

// screenshotDir is where the walk at width saves its screenshots:
// $KEYHOLD_SCREENSHOT_DIR/<width> (made if missing; screenshots of an
// earlier walk, NN-name.png and failed.png, removed), or a temporary directory.
func screenshotDir(t *testing.T, width int) string {
	t.Helper()
	root := os.Getenv("KEYHOLD_SCREENSHOT_DIR")
	if root == "" {
		return t.TempDir()
	}
	dir, err := filepath.Abs(filepath.Join(root, strconv.Itoa(width)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, err := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.png"))
	if err != nil {
		t.Fatal(err)
	}
	old = append(old, filepath.Join(dir, "failed.png"))
	for _, f := range old {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	return dir
}

// walkApp starts a new app for the walk, on SQLite (a file of its own)
// or, with services, on PostgreSQL (a schema of its own) and Redis (a key
// prefix of its own), served at a localhost origin through walkClients,
// its log at debug level in logs. Its clock is the real one, moved ahead
// by the walk (walkClients' /_walk/advance) to pass idle time.
func walkApp(t *testing.T, services bool) (origin string, logs *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	cfg := config{DBPath: filepath.Join(dir, "webapp.db"), TOTPKeyPath: filepath.Join(dir, "totp-key"),
		InsecureCookies: true, VaultKDF: kdf.InteractiveParams()}
	if services {
		cfg.PostgresDSN, _, _ = testSchema(t)
		cfg.RedisURL, cfg.RedisPrefix, _ = testRedis(t)
	}
	var ahead atomic.Int64 // how far the app's clock is ahead of the real one
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	logs = &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var h atomic.Pointer[http.Handler]
	origin = browsertest.ServeLocalhost(t, walkClients(&ahead, func() http.Handler { return *h.Load() }))
	cfg.Origin = origin
	app, cleanup, err := newApp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cleanup(); err != nil {
			t.Error(err)
		}
	})
	h.Store(&app)
	return origin, logs
}

// walkClients serves the app with the client address each request names
// in X-Walk-Client (the walk gives each login an address of its own: it
// logs in more often than the login limit allows one address), removing
// the header; requests without it come from where they come. It also
// answers POST /_walk/advance?by=DURATION itself, moving the app's clock
// (ahead) forward: the walk's way to let time pass.
func walkClients(ahead *atomic.Int64, app func() http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_walk/advance" {
			d, err := time.ParseDuration(r.URL.Query().Get("by"))
			if r.Method != http.MethodPost || err != nil || d <= 0 {
				http.Error(w, "POST /_walk/advance?by=DURATION", http.StatusBadRequest)
				return
			}
			ahead.Add(int64(d))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if c := r.Header.Get("X-Walk-Client"); c != "" {
			ip, err := netip.ParseAddr(c)
			if err != nil {
				http.Error(w, fmt.Sprintf("X-Walk-Client: %v", err), http.StatusBadRequest)
				return
			}
			r.RemoteAddr = netip.AddrPortFrom(ip, 40000).String()
			r.Header.Del("X-Walk-Client")
		}
		app().ServeHTTP(w, r)
	})
}
