package totp_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/totp"
)

// This file holds the fixtures that races_test.go, cost_test.go,
// session_test.go and stores_test.go share: an Authenticator over a
// store, a fake clock aligned to the TOTP steps, the codes an
// authenticator app would show, and recorders for the Notifier and the
// Sealer.

// period is the time step of every authenticator these tests enroll.
const period = 30 * time.Second

// newStepClock returns a fake clock at the present (Redis keeps lockout
// keys by its own clock, so the tests stay near it), moved to 5 seconds
// into a TOTP step, so that advancing it by whole periods moves it by
// whole steps.
func newStepClock() *testkit.Clock {
	s := time.Now().Unix()
	return testkit.NewClock(time.Unix(s-s%int64(period/time.Second)+5, 0))
}

// raceSafePolicy is the lockout policy of the tests that race many
// attempts on one account: Lockout.Begin counts every attempt before its
// code is checked, so under the default policy (10 per source) the 11th
// of 20 concurrent attempts would find the account locked and run the
// dummy check instead, never reaching the store's compare-and-swap. With
// 100 (the most storage allows), all 20 racers reach the write that is
// under test, and the race counts every one of them.
var raceSafePolicy = ratelimit.LockoutPolicy{MaxFailures: storage.MaxLockoutFailures, AccountMaxFailures: storage.MaxLockoutFailures}

// authOptions vary newAuth.
type authOptions struct {
	// factors is the FactorStore the Authenticator uses (a wrapper of
	// st); nil: st itself.
	factors storage.FactorStore
	// policy is the Lockout's; zero: raceSafePolicy.
	policy   ratelimit.LockoutPolicy
	sessions *session.Manager
	notifier keyhold.Notifier
	logger   *slog.Logger
	sealer   totp.Sealer
	// otherFactors is Config.OtherFactors.
	otherFactors func(ctx context.Context, userID string) (bool, error)
}

// authFixture is an Authenticator with what the tests look at.
type authFixture struct {
	t       testing.TB
	st      factorStore
	clock   *testkit.Clock
	auth    *totp.Authenticator
	lockout *ratelimit.Lockout
	sealer  *countingSealer
}

// newKeyRing returns a KeyRing with one random key.
func newKeyRing(t testing.TB) *totp.KeyRing {
	t.Helper()
	key := make([]byte, totp.KeyRingKeyLen)
	rand.Read(key)
	ring, err := totp.NewKeyRing("test", map[string][]byte{"test": key})
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// newAuth returns an Authenticator over st (its factor records and its
// lockout counters), on clock.
func newAuth(t testing.TB, st factorStore, clock *testkit.Clock, o authOptions) *authFixture {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	if o.policy == (ratelimit.LockoutPolicy{}) {
		o.policy = raceSafePolicy
	}
	if o.logger == nil {
		o.logger = quiet
	}
	if o.factors == nil {
		o.factors = st
	}
	if o.sealer == nil {
		o.sealer = newKeyRing(t)
	}
	lockout, err := ratelimit.NewLockout(st, ratelimit.LockoutOptions{Name: "totp", Policy: o.policy, Now: clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sealer := &countingSealer{Sealer: o.sealer}
	auth, err := totp.New(totp.Config{Store: o.factors, Sealer: sealer, Lockout: lockout, Issuer: "Keyhold Test",
		Now: clock.Now, Sessions: o.sessions, Notifier: o.notifier, Logger: o.logger, OtherFactors: o.otherFactors})
	if err != nil {
		t.Fatal(err)
	}
	return &authFixture{t: t, st: st, clock: clock, auth: auth, lockout: lockout, sealer: sealer}
}

// appCode is the code an authenticator app with secret (base32, as
// Enrollment.Secret gives it) shows at time at.
func appCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := pqtotp.GenerateCodeCustom(secret, at, pqtotp.ValidateOpts{Period: uint(period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// notACode returns a six-digit code that none of the secrets gives for
// any step of the window around at (±1 step): a wrong code that cannot
// be right by chance.
func notACode(t testing.TB, at time.Time, secrets ...string) string {
	t.Helper()
	var valid []string
	for _, s := range secrets {
		for d := -2; d <= 2; d++ {
			valid = append(valid, appCode(t, s, at.Add(time.Duration(d)*period)))
		}
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", i*7919%1000000); !slices.Contains(valid, c) {
			return c
		}
	}
}

// enrolled is one confirmed authenticator.
type enrolled struct {
	id     string
	secret string // base32, what the user's app holds
	codes  []totp.RecoveryCode
}

// enroll begins and confirms an authenticator for user (with ctx: a
// request's, when the Authenticator has Sessions), with the code of the
// clock's current step.
func (f *authFixture) enroll(ctx context.Context, user string) enrolled {
	f.t.Helper()
	e, err := f.auth.Begin(ctx, user, user+"@example.com")
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := f.auth.Confirm(ctx, user, e.Token, appCode(f.t, e.Secret(), f.clock.Now()), ratelimit.Source{}, totp.ConfirmOptions{Name: "phone"})
	if err != nil {
		f.t.Fatalf("confirm: %v", err)
	}
	return enrolled{id: c.Authenticator.ID, secret: e.Secret(), codes: c.RecoveryCodes}
}

// next moves the clock one step on and returns the code of the new step:
// each accepted code uses its step up, so the next login needs the next
// step's code.
func (f *authFixture) next(e enrolled) string {
	f.t.Helper()
	f.clock.Advance(period)
	return appCode(f.t, e.secret, f.clock.Now())
}

// ids returns the IDs of the user's authenticators.
func (f *authFixture) ids(user string) []string {
	f.t.Helper()
	list, err := f.auth.Authenticators(context.Background(), user)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		out = append(out, a.ID)
	}
	slices.Sort(out)
	return out
}

// countingSealer counts the secrets the Authenticator opens: each Open
// of a stored secret is followed by the codes of every step of the
// window being computed and compared (matchCode has no early exit), so
// Opens × window is the HMAC work of a check.
type countingSealer struct {
	totp.Sealer
	opens atomic.Int64
}

func (s *countingSealer) Open(ctx context.Context, userID string, sealed, ad []byte) ([]byte, error) {
	s.opens.Add(1)
	return s.Sealer.Open(ctx, userID, sealed, ad)
}

// eventLog is a Notifier that keeps every event.
type eventLog struct {
	mu     sync.Mutex
	events []keyhold.Event
}

func (l *eventLog) Notify(_ context.Context, e keyhold.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// of returns the events of kind k.
func (l *eventLog) of(k keyhold.EventKind) []keyhold.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []keyhold.Event
	for _, e := range l.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// kinds returns the kinds of every event, in order.
func (l *eventLog) kinds() []keyhold.EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []keyhold.EventKind
	for _, e := range l.events {
		out = append(out, e.Kind)
	}
	return out
}

// reset forgets every event.
func (l *eventLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = nil
}

// noSource is the source of every attempt in these tests: no address
// (all count on one source counter of the account).
var noSource = ratelimit.Source{}

// rejected reports whether err is the one answer to a wrong, replayed or
// malformed code or a locked account.
func rejected(err error) bool { return errors.Is(err, ratelimit.ErrRejected) }

// sessionApp is an app with sessions (session.Manager over a memstore)
// and an Authenticator bound to them, sharing one clock, one Notifier and
// one audit log.
type sessionApp struct {
	*authFixture
	t      *testing.T
	m      *session.Manager
	events *eventLog
	logs   *testkit.SyncBuffer
}

// newSessionApp returns a sessionApp whose Lockout has policy (zero:
// ratelimit's default policy, 10 failures per source).
func newSessionApp(t *testing.T, policy ratelimit.LockoutPolicy) *sessionApp {
	t.Helper()
	if policy == (ratelimit.LockoutPolicy{}) {
		policy = ratelimit.DefaultLockoutPolicy()
	}
	store := memstore.New()
	clock := newStepClock()
	events := &eventLog{}
	logs := &testkit.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := session.New(store, session.Config{Now: clock.Now, Notifier: events, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	f := newAuth(t, store, clock, authOptions{policy: policy, sessions: m, notifier: events, logger: logger})
	return &sessionApp{authFixture: f, t: t, m: m, events: events, logs: logs}
}

// serve sends a request with the session cookie (none if "") through
// the Manager's Handler to h.
func (a *sessionApp) serve(cookie string, h http.Handler) *http.Response {
	a.t.Helper()
	req := httptest.NewRequest("POST", "https://app.example/", nil) // https: req.TLS is set
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: a.m.Config().CookieName, Value: cookie})
	}
	rec := httptest.NewRecorder()
	a.m.Handler(h).ServeHTTP(rec, req)
	return rec.Result()
}

// in runs fn in a request carrying cookie, and returns the session
// cookie after it: the one the response set (re-issued), "" if the
// response cleared it, or cookie if it set none.
func (a *sessionApp) in(cookie string, fn func(ctx context.Context)) string {
	a.t.Helper()
	resp := a.serve(cookie, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fn(r.Context()) }))
	for _, c := range resp.Cookies() {
		if c.Name == a.m.Config().CookieName {
			if c.MaxAge < 0 || c.Value == "" {
				return ""
			}
			return c.Value
		}
	}
	return cookie
}

// status is the status of a request with cookie to a handler behind
// guard (a.m.RequireLogin, say).
func (a *sessionApp) status(cookie string, guard func(http.Handler) http.Handler) int {
	a.t.Helper()
	return a.serve(cookie, guard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))).StatusCode
}

// info returns the session of cookie.
func (a *sessionApp) info(cookie string) (info session.Info, ok bool) {
	a.t.Helper()
	a.in(cookie, func(ctx context.Context) { info, ok = a.m.Current(ctx) })
	return info, ok
}

// login logs user in after a right password, pending the second factor
// or not, and returns the session cookie.
func (a *sessionApp) login(user string, pending bool) string {
	a.t.Helper()
	var err error
	c := a.in("", func(ctx context.Context) {
		err = a.m.Login(ctx, user, session.LoginOptions{SecondFactorPending: pending})
	})
	if err != nil || c == "" {
		a.t.Fatalf("login: %v (cookie %q)", err, c)
	}
	return c
}

// mfaLogin logs user in with the password and the next step's code of e,
// and returns the complete session's cookie.
func (a *sessionApp) mfaLogin(user string, e enrolled) string {
	a.t.Helper()
	c := a.login(user, true)
	code := a.next(e)
	var err error
	c = a.in(c, func(ctx context.Context) { err = a.auth.VerifyLogin(ctx, code, noSource) })
	if err != nil {
		a.t.Fatalf("VerifyLogin: %v", err)
	}
	return c
}

// enrollIn enrolls an authenticator for user in the session of cookie
// (which must pass the step-up), and returns it and the re-issued cookie.
func (a *sessionApp) enrollIn(cookie, user string) (enrolled, string) {
	a.t.Helper()
	var e enrolled
	c := a.in(cookie, func(ctx context.Context) { e = a.enroll(ctx, user) })
	return e, c
}

// enrollFirst logs user in with a password (a user without a second
// factor steps up with the password alone) and enrolls their first
// authenticator.
func (a *sessionApp) enrollFirst(user string) enrolled {
	a.t.Helper()
	e, _ := a.enrollIn(a.login(user, false), user)
	return e
}

// logRecords returns the audit records named msg, decoded.
func (a *sessionApp) logRecords(msg string) []map[string]any {
	a.t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(a.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			a.t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}
