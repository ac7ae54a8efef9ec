package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

func TestFactorsSet(t *testing.T) {
	pt := session.FactorPassword | session.FactorTOTP
	for _, c := range []struct {
		f     session.Factors
		str   string
		multi bool
	}{
		{0, "none", false},
		{session.FactorPassword, "password", false},
		{session.FactorTOTP, "totp", false},
		{session.FactorPasskey, "passkey", true},
		{pt, "password+totp", true},
		{session.FactorPassword | session.FactorRecoveryCode, "password+recovery_code", true},
		{session.FactorPassword | session.FactorPasskey, "password+passkey", true},
		{session.FactorPasskey | session.FactorTOTP, "totp+passkey", true},
		{session.FactorTOTP | session.FactorRecoveryCode, "totp+recovery_code", false},
		{session.FactorPassword | 0x40, "password+0x40", false},
	} {
		if got := c.f.String(); got != c.str {
			t.Errorf("%08b: String %q, want %q", uint8(c.f), got, c.str)
		}
		if got := c.f.MultiFactor(); got != c.multi {
			t.Errorf("%s: MultiFactor %v, want %v", c.str, got, c.multi)
		}
	}
	if !pt.Has(session.FactorTOTP) || !pt.Has(pt) || pt.Has(session.FactorPasskey) ||
		pt.Has(session.FactorTOTP|session.FactorPasskey) || pt.Has(0) {
		t.Error("Has is wrong")
	}
}

// factorApp is a testApp whose routes are the steps of a login with
// factors: each answers with the session's Info after the step.
type factorApp struct {
	*testApp
	mu     sync.Mutex
	denied []error
	events []keyhold.Event
}

func newFactorApp(t *testing.T, store session.Store, cfg session.Config) *factorApp {
	t.Helper()
	fa := &factorApp{}
	a := &testApp{t: t, logs: &logBuffer{}, clock: newClock()}
	fa.testApp = a
	cfg.Now = a.clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(a.logs, nil))
	cfg.DenyHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		fa.mu.Lock()
		fa.denied = append(fa.denied, err)
		fa.mu.Unlock()
		http.Error(w, "denied: "+err.Error(), http.StatusUnauthorized)
	}
	if cfg.Notifier == nil {
		cfg.Notifier = keyhold.NotifierFunc(func(_ context.Context, e keyhold.Event) {
			fa.mu.Lock()
			fa.events = append(fa.events, e)
			fa.mu.Unlock()
		})
	}
	m, err := session.New(hookedStore{store}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.m = m
	if a.vault, err = vault.New(memstore.New(), vault.Config{Hasher: testHasher, KDF: testKDF}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	show := func(w http.ResponseWriter, r *http.Request) {
		info, ok := m.Current(r.Context())
		if !ok {
			io.WriteString(w, "none")
			return
		}
		fmt.Fprintf(w, "factors=%s mfa=%v pending=%v", info.Factors, info.MultiFactor, info.SecondFactorPending)
	}
	step := func(f func(r *http.Request) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := f(r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			show(w, r)
		}
	}
	mux.HandleFunc("POST /login", step(func(r *http.Request) error {
		f, _ := strconv.Atoi(r.FormValue("factor"))
		return m.Login(r.Context(), r.FormValue("user"), session.LoginOptions{Factor: session.Factors(f), SecondFactorPending: r.FormValue("pending") == "1"})
	}))
	mux.Handle("POST /2fa", m.RequireFirstFactor(step(func(r *http.Request) error {
		f, _ := strconv.Atoi(r.FormValue("factor"))
		return m.SecondFactorVerified(r.Context(), session.Factors(f))
	})))
	// Unguarded, so that the tests see SecondFactorFailed's own answers.
	mux.HandleFunc("POST /2fa/fail", func(w http.ResponseWriter, r *http.Request) {
		n, err := m.SecondFactorFailed(r.Context())
		fmt.Fprintf(w, "failures=%d err=%v", n, err)
	})
	mux.Handle("GET /info", m.RequireFirstFactor(http.HandlerFunc(show)))
	mux.Handle("GET /mfa", m.RequireMultiFactor(http.HandlerFunc(show)))
	mux.Handle("GET /me", m.RequireLogin(http.HandlerFunc(show)))
	mux.HandleFunc("POST /unlock", step(func(r *http.Request) error {
		info, _ := m.Current(r.Context())
		u, err := a.vault.Unlock(r.Context(), info.UserID, []byte(passphrase))
		if err != nil {
			return err
		}
		defer u.Lock()
		return m.Unlock(r.Context(), u)
	}))
	mux.HandleFunc("POST /reauth", step(func(r *http.Request) error { return m.Reauthenticated(r.Context()) }))
	mux.HandleFunc("POST /renew", step(func(r *http.Request) error { return m.Renew(r.Context()) }))
	mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
		pair, err := m.IssueTokens(r.Context(), r.FormValue("user"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, pair.AccessToken+" "+pair.RefreshToken)
	})
	mux.HandleFunc("POST /refresh", func(w http.ResponseWriter, r *http.Request) {
		pair, err := m.Refresh(r.Context(), r.FormValue("token"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, pair.AccessToken+" "+pair.RefreshToken)
	})
	a.handler = m.Handler(mux)
	return fa
}

// step posts form to path with the cookie; it returns the body and the
// cookie to use next (the re-issued one, if the step set one).
func (fa *factorApp) step(path, cookie, form string) (string, string, int) {
	fa.t.Helper()
	resp := fa.do(request{method: "POST", target: path, cookie: cookie, form: form})
	b := body(resp)
	if c := sessionCookie(fa.t, resp, fa.m.Config().CookieName); c != nil {
		cookie = c.Value
	}
	return b, cookie, resp.StatusCode
}

func (fa *factorApp) get(path, cookie string, header http.Header) (string, int) {
	fa.t.Helper()
	resp := fa.do(request{method: "GET", target: path, cookie: cookie, header: header})
	return body(resp), resp.StatusCode
}

func (fa *factorApp) lastDenied() error {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if len(fa.denied) == 0 {
		return nil
	}
	return fa.denied[len(fa.denied)-1]
}

func (fa *factorApp) notified() []keyhold.Event {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return append([]keyhold.Event(nil), fa.events...)
}

func factorForm(f session.Factors) string { return "factor=" + strconv.Itoa(int(f)) }

// Sessions record the factors of their login, and the second factors
// proved since, and keep them across every re-issue (unlock,
// Reauthenticated, Renew) and touch; API clients' sessions have the
// password.
func TestFactorsRecordedAndKept(t *testing.T) {
	fa := newFactorApp(t, memstore.New(), session.Config{})
	fa.createVault("alice")
	for _, c := range []struct {
		name, form string
		want       string
	}{
		{"default", "", "factors=password mfa=false pending=false"},
		{"password", factorForm(session.FactorPassword), "factors=password mfa=false pending=false"},
		{"passkey", factorForm(session.FactorPasskey), "factors=passkey mfa=true pending=false"},
		{"totp", factorForm(session.FactorTOTP), "factors=totp mfa=false pending=false"},
		{"password+totp", factorForm(session.FactorPassword | session.FactorTOTP), "factors=password+totp mfa=true pending=false"},
		{"pending", "pending=1", "factors=password mfa=false pending=true"},
		{"totp pending", "pending=1&" + factorForm(session.FactorTOTP), "factors=totp mfa=false pending=true"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, cookie, code := fa.step("/login", "", "user=alice&"+c.form)
			if code != 200 || got != c.want {
				t.Fatalf("login: %d %q, want %q", code, got, c.want)
			}
			if strings.Contains(c.want, "pending=true") {
				return
			}
			fa.clock.Advance(2 * time.Minute) // a touch rewrites the record
			if got, _ := fa.get("/me", cookie, nil); got != c.want {
				t.Fatalf("after a touch: %q, want %q", got, c.want)
			}
			for _, path := range []string{"/unlock", "/reauth", "/renew"} {
				var old string
				old, cookie = cookie, ""
				got, cookie, code = fa.step(path, old, "")
				if code != 200 || got != c.want || cookie == old {
					t.Fatalf("%s: %d %q (re-issued: %v), want %q", path, code, got, cookie != old, c.want)
				}
			}
			if got, _ := fa.get("/me", cookie, nil); got != c.want {
				t.Fatalf("after the re-issues: %q, want %q", got, c.want)
			}
		})
	}
	t.Run("api", func(t *testing.T) {
		pair, _, code := fa.step("/tokens", "", "user=alice")
		if code != 200 {
			t.Fatalf("tokens: %d %s", code, pair)
		}
		access, refresh, _ := strings.Cut(pair, " ")
		const want = "factors=password mfa=false pending=false"
		if got, _ := fa.get("/me", "", http.Header{"Authorization": {"Bearer " + access}}); got != want {
			t.Fatalf("access session: %q, want %q", got, want)
		}
		pair, _, code = fa.step("/refresh", "", "token="+refresh)
		if code != 200 {
			t.Fatalf("refresh: %d %s", code, pair)
		}
		access, _, _ = strings.Cut(pair, " ")
		if got, _ := fa.get("/me", "", http.Header{"Authorization": {"Bearer " + access}}); got != want {
			t.Fatalf("refreshed access session: %q, want %q", got, want)
		}
	})
	t.Run("bad factor", func(t *testing.T) {
		for _, form := range []string{factorForm(0x40), "pending=1&" + factorForm(session.FactorPassword|session.FactorTOTP)} {
			if got, _, code := fa.step("/login", "", "user=alice&"+form); code != 400 || !strings.Contains(got, session.ErrInvalidInput.Error()) {
				t.Errorf("login with %s: %d %q, want ErrInvalidInput", form, code, got)
			}
		}
	})
}

// SecondFactorVerified adds the factor it is given (and only a second
// factor) to the session's.
func TestSecondFactorVerifiedAddsFactor(t *testing.T) {
	fa := newFactorApp(t, memstore.New(), session.Config{})
	_, pending, _ := fa.step("/login", "", "user=alice&pending=1")
	for _, f := range []session.Factors{0, session.FactorPassword, session.FactorPassword | session.FactorTOTP, 0x40} {
		if got, _, code := fa.step("/2fa", pending, factorForm(f)); code != 400 || !strings.Contains(got, session.ErrInvalidInput.Error()) {
			t.Errorf("SecondFactorVerified(%s): %d %q, want ErrInvalidInput", f, code, got)
		}
	}
	got, c, code := fa.step("/2fa", pending, factorForm(session.FactorTOTP))
	if want := "factors=password+totp mfa=true pending=false"; code != 200 || got != want || c == pending {
		t.Fatalf("after TOTP: %d %q, want %q and a new cookie", code, got, want)
	}
	// A step-up with another factor adds it too.
	got, c, code = fa.step("/2fa", c, factorForm(session.FactorPasskey))
	if want := "factors=password+totp+passkey mfa=true pending=false"; code != 200 || got != want {
		t.Fatalf("after a passkey: %d %q, want %q", code, got, want)
	}
	if got, _ := fa.get("/mfa", c, nil); got != "factors=password+totp+passkey mfa=true pending=false" {
		t.Fatalf("stored: %q", got)
	}
	// A recovery code in place of the second factor.
	_, pending, _ = fa.step("/login", "", "user=bob&pending=1")
	got, _, code = fa.step("/2fa", pending, factorForm(session.FactorRecoveryCode))
	if want := "factors=password+recovery_code mfa=true pending=false"; code != 200 || got != want {
		t.Fatalf("after a recovery code: %d %q, want %q", code, got, want)
	}
	if !strings.Contains(fa.logs.String(), "factors=password+totp+passkey") {
		t.Error("session_renewed does not log the factors")
	}
}

// RequireMultiFactor refuses a session of the password alone (with
// ErrMultiFactorRequired, 401 by default), a pending one and none, and
// lets a password+TOTP session through.
func TestRequireMultiFactor(t *testing.T) {
	fa := newFactorApp(t, memstore.New(), session.Config{})
	if _, code := fa.get("/mfa", "", nil); code != 401 || !errors.Is(fa.lastDenied(), session.ErrNotLoggedIn) {
		t.Fatalf("no session: %d %v", code, fa.lastDenied())
	}
	_, password, _ := fa.step("/login", "", "user=alice")
	if _, code := fa.get("/me", password, nil); code != 200 {
		t.Fatalf("RequireLogin refused a password session: %d", code)
	}
	if _, code := fa.get("/mfa", password, nil); code != 401 || !errors.Is(fa.lastDenied(), session.ErrMultiFactorRequired) {
		t.Fatalf("password only: %d %v, want 401 ErrMultiFactorRequired", code, fa.lastDenied())
	}
	_, totpOnly, _ := fa.step("/login", "", "user=alice&"+factorForm(session.FactorTOTP))
	if _, code := fa.get("/mfa", totpOnly, nil); code != 401 || !errors.Is(fa.lastDenied(), session.ErrMultiFactorRequired) {
		t.Fatalf("TOTP alone: %d %v, want 401 ErrMultiFactorRequired", code, fa.lastDenied())
	}
	_, passkey, _ := fa.step("/login", "", "user=alice&"+factorForm(session.FactorPasskey))
	if _, code := fa.get("/mfa", passkey, nil); code != 200 {
		t.Fatalf("a user-verified passkey alone: %d %v, want 200 (multi-factor by itself)", code, fa.lastDenied())
	}
	_, pending, _ := fa.step("/login", "", "user=alice&pending=1")
	if _, code := fa.get("/mfa", pending, nil); code != 401 || !errors.Is(fa.lastDenied(), session.ErrSecondFactorRequired) {
		t.Fatalf("pending: %d %v, want 401 ErrSecondFactorRequired", code, fa.lastDenied())
	}
	_, verified, _ := fa.step("/2fa", pending, factorForm(session.FactorTOTP))
	if got, code := fa.get("/mfa", verified, nil); code != 200 || got != "factors=password+totp mfa=true pending=false" {
		t.Fatalf("password+totp: %d %q", code, got)
	}
	_, oneStep, _ := fa.step("/login", "", "user=alice&"+factorForm(session.FactorPassword|session.FactorPasskey))
	if _, code := fa.get("/mfa", oneStep, nil); code != 200 {
		t.Fatalf("a password+passkey login: %d", code)
	}
	// The default DenyHandler answers 401.
	m, err := session.New(memstore.New(), session.Config{AllowInsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r.Context(), "alice", session.LoginOptions{}); err != nil {
			t.Error(err)
		}
		m.RequireMultiFactor(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("let through") })).ServeHTTP(w, r)
	}))
	if resp := serve(h, m.Config().CookieName, request{method: "POST", target: "/", plain: true, remoteAddr: "127.0.0.1:1"}); resp.StatusCode != 401 {
		t.Fatalf("default DenyHandler: %d, want 401", resp.StatusCode)
	}
}

// TOT-09: a login pending its second factor lives 5 minutes at most,
// active or not.
func TestPendingLifetimeFiveMinutes(t *testing.T) {
	if session.PendingLifetime != 5*time.Minute {
		t.Fatalf("PendingLifetime is %v, want 5m", session.PendingLifetime)
	}
	fa := newFactorApp(t, memstore.New(), session.Config{})
	_, pending, _ := fa.step("/login", "", "user=alice&pending=1")
	for range 4 {
		fa.clock.Advance(time.Minute + 14*time.Second) // 4m56s in all, every request a touch
		if got, code := fa.get("/info", pending, nil); code != 200 {
			t.Fatalf("at %v: %d %q", fa.clock.Now(), code, got)
		}
	}
	fa.clock.Advance(4 * time.Second)
	if _, code := fa.get("/info", pending, nil); code != 401 || !errors.Is(fa.lastDenied(), session.ErrNotLoggedIn) {
		t.Fatalf("a pending login outlived 5 minutes: %d", code)
	}
	// Idle, it ends at the same time.
	_, pending, _ = fa.step("/login", "", "user=alice&pending=1")
	fa.clock.Advance(5*time.Minute - time.Millisecond)
	if _, code := fa.get("/info", pending, nil); code != 200 {
		t.Fatalf("ended before 5 minutes: %d", code)
	}
	_, pending, _ = fa.step("/login", "", "user=alice&pending=1")
	fa.clock.Advance(5 * time.Minute)
	if _, code := fa.get("/info", pending, nil); code != 401 {
		t.Fatalf("an idle pending login outlived 5 minutes: %d", code)
	}
}

// TOT-13: a right password followed by MaxSecondFactorFailures wrong
// second factors ends the pending login, notifies the user once
// (PartialAuthentication) and logs authn_second_factor_fail_max; the
// cookie is dead afterwards.
func TestSecondFactorFailedEndsLogin(t *testing.T) {
	fa := newFactorApp(t, memstore.New(), session.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	fail := func(cookie string) (string, *http.Response) {
		t.Helper()
		resp := fa.do(request{method: "POST", target: "/2fa/fail", cookie: cookie, remoteAddr: "10.1.1.1:1234",
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}})
		return body(resp), resp
	}
	// Without a session, and on a complete one.
	if got, _ := fail(""); got != "failures=0 err="+session.ErrNotLoggedIn.Error() {
		t.Fatalf("no session: %q, want ErrNotLoggedIn", got)
	}
	_, complete, _ := fa.step("/login", "", "user=alice")
	if got, _ := fail(complete); !strings.Contains(got, "failures=0 err="+session.ErrInvalidInput.Error()) {
		t.Fatalf("a complete session: %q, want ErrInvalidInput", got)
	}

	_, pending, _ := fa.step("/login", "", "user=alice&pending=1")
	info, _ := fa.get("/info", pending, nil)
	if info != "factors=password mfa=false pending=true" {
		t.Fatalf("pending: %q", info)
	}
	for i := 1; i < 3; i++ {
		fa.clock.Advance(time.Minute) // each request also touches the record
		if got, _ := fail(pending); got != fmt.Sprintf("failures=%d err=<nil>", i) {
			t.Fatalf("failure %d: %q", i, got)
		}
		if len(fa.notified()) != 0 {
			t.Fatalf("notified after %d failures", i)
		}
	}
	devs := devices(t, fa.m, "alice")
	var ref string
	for _, d := range devs {
		if d.SecondFactorPending {
			ref = d.Ref
		}
	}
	got, resp := fail(pending)
	if got != "failures=3 err="+session.ErrTooManySecondFactorFailures.Error() {
		t.Fatalf("failure 3: %q", got)
	}
	if c := sessionCookie(t, resp, fa.m.Config().CookieName); c == nil || c.MaxAge >= 0 {
		t.Fatalf("the cookie was not expired: %+v", c)
	}
	events := fa.notified()
	if len(events) != 1 {
		t.Fatalf("notified %d times, want once: %+v", len(events), events)
	}
	want := keyhold.Event{Kind: keyhold.PartialAuthentication, UserID: "alice", Time: fa.clock.Now(),
		IP: netip.MustParseAddr("203.0.113.7"), Detail: ref}
	if e := events[0]; e.Kind != want.Kind || e.UserID != want.UserID || !e.Time.Equal(want.Time) || e.IP != want.IP || e.Detail != want.Detail || ref == "" {
		t.Fatalf("event %+v, want %+v", e, want)
	}
	logs := fa.logs.String()
	for _, s := range []string{"msg=authn_second_factor_fail_max user=alice session=" + ref + " ip=203.0.113.7 failures=3 max_failures=3",
		"msg=session_expired user=alice session=" + ref + " ip=203.0.113.7 reason=second_factor_failures"} {
		if !strings.Contains(logs, s) {
			t.Errorf("the audit log lacks %q:\n%s", s, logs)
		}
	}
	// A 4th attempt: the login has ended.
	if got, code := fa.get("/info", pending, nil); code != 401 {
		t.Fatalf("the ended login still works: %d %q", code, got)
	}
	if got, _ := fail(pending); got != "failures=0 err="+session.ErrNotLoggedIn.Error() {
		t.Fatalf("failure 4: %q, want ErrNotLoggedIn", got)
	}
	if len(fa.notified()) != 1 {
		t.Fatal("notified again")
	}
	// The complete session of the same user is untouched.
	if _, code := fa.get("/me", complete, nil); code != 200 {
		t.Fatalf("the user's other session: %d", code)
	}
	// SecondFactorVerified after failures below the limit: the login
	// completes, and counts no more.
	_, pending, _ = fa.step("/login", "", "user=alice&pending=1")
	fail(pending)
	if got, _, code := fa.step("/2fa", pending, factorForm(session.FactorTOTP)); code != 200 || got != "factors=password+totp mfa=true pending=false" {
		t.Fatalf("verified after a failure: %d %q", code, got)
	}
}

func TestMaxSecondFactorFailuresBounds(t *testing.T) {
	for _, n := range []int{-1, 101} {
		if _, err := session.New(memstore.New(), session.Config{MaxSecondFactorFailures: n}); !errors.Is(err, session.ErrInvalidInput) {
			t.Errorf("MaxSecondFactorFailures %d: %v", n, err)
		}
	}
	for n, want := range map[int]int{0: 3, 1: 1, 100: 100} {
		m, err := session.New(memstore.New(), session.Config{MaxSecondFactorFailures: n})
		if err != nil || m.Config().MaxSecondFactorFailures != want {
			t.Errorf("MaxSecondFactorFailures %d: %v, %v", n, m.Config().MaxSecondFactorFailures, err)
		}
	}
	fa := newFactorApp(t, memstore.New(), session.Config{MaxSecondFactorFailures: 1})
	_, pending, _ := fa.step("/login", "", "user=alice&pending=1")
	if got, _, _ := fa.step("/2fa/fail", pending, ""); got != "failures=1 err="+session.ErrTooManySecondFactorFailures.Error() {
		t.Fatalf("limit 1: %q", got)
	}
	if len(fa.notified()) != 1 {
		t.Fatal("not notified")
	}
}

// TOT-13, races: failures of one pending login that race are each counted
// (the loser of the write reads again and counts on), and of two that
// race for the last failure exactly one ends the login and notifies: the
// other finds it gone. The interfering request runs inside the store hook
// of the first, between its read of the session (as the handler loads
// it) and its write.
func TestSecondFactorFailedRaces(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fa := newFactorApp(t, b.open(t)(t), session.Config{})
			_, pending, _ := fa.step("/login", "", "user=alice&pending=1")
			failIn := func(ctx context.Context) string {
				resp := fa.do(request{method: "POST", target: "/2fa/fail", cookie: pending, ctx: ctx})
				return body(resp)
			}
			// Both counted: 1 (interfering), then 2.
			var other string
			ctx := withHooks(context.Background(), hooks{"GetSession:after": func() { other = failIn(context.Background()) }})
			if got := failIn(ctx); got != "failures=2 err=<nil>" || other != "failures=1 err=<nil>" {
				t.Fatalf("counting race: %q and the interfering %q", got, other)
			}
			// The last failure, twice at once.
			other = ""
			ctx = withHooks(context.Background(), hooks{"GetSession:after": func() { other = failIn(context.Background()) }})
			got := failIn(ctx)
			if other != "failures=3 err="+session.ErrTooManySecondFactorFailures.Error() ||
				got != "failures=0 err="+session.ErrNotLoggedIn.Error() {
				t.Fatalf("last-failure race: %q and the interfering %q", got, other)
			}
			if n := len(fa.notified()); n != 1 {
				t.Fatalf("notified %d times, want once", n)
			}
			if n := strings.Count(fa.logs.String(), "authn_second_factor_fail_max"); n != 1 {
				t.Fatalf("authn_second_factor_fail_max logged %d times", n)
			}
		})
	}
}

// A Notifier that panics does not undo the end of the login; the panic is
// logged as sys_notify_fail (its type only).
func TestSecondFactorFailedNotifierPanics(t *testing.T) {
	fa := newFactorApp(t, memstore.New(), session.Config{MaxSecondFactorFailures: 1,
		Notifier: keyhold.NotifierFunc(func(context.Context, keyhold.Event) { panic("secret value") })})
	_, pending, _ := fa.step("/login", "", "user=alice&pending=1")
	if got, _, _ := fa.step("/2fa/fail", pending, ""); got != "failures=1 err="+session.ErrTooManySecondFactorFailures.Error() {
		t.Fatalf("got %q", got)
	}
	if _, code := fa.get("/info", pending, nil); code != 401 {
		t.Fatalf("the login survived: %d", code)
	}
	logs := fa.logs.String()
	if !strings.Contains(logs, "msg=sys_notify_fail") || !strings.Contains(logs, "event=partial_authentication panic=string") || strings.Contains(logs, "secret value") {
		t.Fatalf("log:\n%s", logs)
	}
}
