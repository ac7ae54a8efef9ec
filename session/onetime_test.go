package session_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

const oneTimeBase = "https://keyhold.example"

// oneTimeStores are the stores the one-time token tests run on: memstore
// and every backend of stores_test.go.
func oneTimeStores() []backend {
	return append([]backend{{"memstore", func(t *testing.T) func(t *testing.T) session.Store {
		st := memstore.New()
		return func(*testing.T) session.Store { return st }
	}}}, backends...)
}

type oneTimeFixture struct {
	store session.Store
	clock *testkit.Clock
	logs  *logBuffer
	ot    *session.OneTimeTokens
}

func newOneTimeFixture(t *testing.T, store session.Store) *oneTimeFixture {
	t.Helper()
	f := &oneTimeFixture{store: store, clock: newClock(), logs: &logBuffer{}}
	m, err := session.New(store, session.Config{Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	must.NoError(t, err)
	f.ot, err = m.NewOneTimeTokens(session.OneTimeConfig{BaseURL: oneTimeBase})
	must.NoError(t, err)
	return f
}

// tokenOf returns the token in a link.
func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	must.NoError(t, err)
	tok := u.Query().Get("token")
	must.NotEmpty(t, tok)
	return tok
}

// SES-20: a token works once, for its purpose and user, until it expires;
// presented for another purpose it is refused and not used up; the store
// never holds the token; the logs never show it.
func TestRequirementOneTimeTokens(t *testing.T) {
	for _, b := range oneTimeStores() {
		t.Run(b.name, func(t *testing.T) {
			store := b.open(t)(t)
			f := newOneTimeFixture(t, store)
			ctx := t.Context()

			link, exp, err := f.ot.Issue(ctx, "alice", session.PurposePasswordReset, "/reset")
			must.NoError(t, err)
			must.True(t, strings.HasPrefix(link, oneTimeBase+"/reset?token="), link)
			must.Equal(t, f.clock.Now().Add(session.DefaultOneTimeTTL).Truncate(time.Millisecond), exp)
			tok := tokenOf(t, link)
			raw, err := base64.RawURLEncoding.DecodeString(tok)
			must.NoError(t, err)
			must.GreaterOrEqual(t, len(raw)*8, 128, "token entropy")

			// What the store holds: no token bytes, in the ID or the data.
			id := sha256.Sum256(append([]byte("keyhold/v1/session/one-time\x00"), raw...))
			rec, err := store.GetRefreshFamily(ctx, id[:])
			must.NoError(t, err)
			must.Equal(t, "alice", rec.UserID)
			for _, field := range [][]byte{rec.ID, rec.Data} {
				must.False(t, bytes.Contains(field, raw), "store holds the raw token")
				must.False(t, bytes.Contains(field, []byte(tok)), "store holds the token string")
			}

			// Wrong purpose: refused, and not used up.
			_, err = f.ot.Consume(ctx, tok, session.PurposeEmailVerify)
			must.ErrorIs(t, err, session.ErrOneTimeTokenInvalid)
			user, err := f.ot.Consume(ctx, tok, session.PurposePasswordReset)
			must.NoError(t, err)
			must.Equal(t, "alice", user)

			// Reuse: refused.
			_, err = f.ot.Consume(ctx, tok, session.PurposePasswordReset)
			must.ErrorIs(t, err, session.ErrOneTimeTokenInvalid)
			_, err = store.GetRefreshFamily(ctx, id[:])
			must.ErrorIs(t, err, storage.ErrNotFound)

			// A verify token is refused at reset (and still verifies).
			vlink, _, err := f.ot.Issue(ctx, "alice", session.PurposeEmailVerify, "/verify")
			must.NoError(t, err)
			vtok := tokenOf(t, vlink)
			_, err = f.ot.Consume(ctx, vtok, session.PurposePasswordReset)
			must.ErrorIs(t, err, session.ErrOneTimeTokenInvalid)
			user, err = f.ot.Consume(ctx, vtok, session.PurposeEmailVerify)
			must.NoError(t, err)
			must.Equal(t, "alice", user)

			// Expired: refused (the fake clock, not the store, decides).
			elink, _, err := f.ot.Issue(ctx, "bob", session.PurposePasswordReset, "/reset")
			must.NoError(t, err)
			f.clock.Advance(session.DefaultOneTimeTTL)
			_, err = f.ot.Consume(ctx, tokenOf(t, elink), session.PurposePasswordReset)
			must.ErrorIs(t, err, session.ErrOneTimeTokenInvalid)

			// Malformed and unknown tokens: the same error.
			for _, bad := range []string{"", "x", tok + "A", strings.Repeat("A", 43), strings.Repeat("A", 10000), tok[:42] + "+"} {
				_, err = f.ot.Consume(ctx, bad, session.PurposePasswordReset)
				must.ErrorIs(t, err, session.ErrOneTimeTokenInvalid, "%.50q", bad)
			}

			// Tokens never reach the logs; the events do, with the purpose.
			logs := f.logs.String()
			for _, s := range []string{tok, vtok, tokenOf(t, elink)} {
				must.NotContains(t, logs, s)
			}
			must.Contains(t, logs, "authn_onetime_created")
			must.Contains(t, logs, "authn_onetime_consumed")
			must.Contains(t, logs, "purpose=password_reset")
		})
	}
}

// SES-20, reset-link poisoning: a handler that issues a reset link for a
// request with Host: evil.example still gets the configured base URL
// (Issue takes no request at all).
func TestRequirementOneTimeLinkIgnoresHost(t *testing.T) {
	f := newOneTimeFixture(t, memstore.New())
	var link string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		link, _, err = f.ot.Issue(r.Context(), "alice", session.PurposePasswordReset, "/reset")
		must.NoError(t, err)
		w.WriteHeader(http.StatusAccepted)
	})
	req := httptest.NewRequest(http.MethodPost, "https://evil.example/forgot", nil)
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	must.Equal(t, http.StatusAccepted, rec.Code)
	must.True(t, strings.HasPrefix(link, oneTimeBase+"/reset?token="), link)
	must.NotContains(t, link, "evil")
}

// barrierStore holds every GetRefreshFamily until n callers have read, so
// that all of them read the token's record before any tries to take it.
type barrierStore struct {
	session.Store
	wg sync.WaitGroup
}

func (s *barrierStore) GetRefreshFamily(ctx context.Context, id []byte) (storage.RefreshFamily, error) {
	f, err := s.Store.GetRefreshFamily(ctx, id)
	s.wg.Done()
	s.wg.Wait()
	return f, err
}

// SES-20: 20 concurrent Consumes of one token, all of which have read it
// before any takes it, succeed exactly once (the store's compare-and-swap).
func TestRequirementOneTimeTokenRace(t *testing.T) {
	for _, b := range oneTimeStores() {
		t.Run(b.name, func(t *testing.T) {
			const n = 20
			store := &barrierStore{Store: b.open(t)(t)}
			f := newOneTimeFixture(t, store)
			link, _, err := f.ot.Issue(t.Context(), "alice", session.PurposeMagicLink, "/login/link")
			must.NoError(t, err)
			tok := tokenOf(t, link)
			store.wg.Add(n)
			var ok, invalid atomic.Int32
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					_, err := f.ot.Consume(context.Background(), tok, session.PurposeMagicLink)
					switch {
					case err == nil:
						ok.Add(1)
					case err == session.ErrOneTimeTokenInvalid:
						invalid.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			must.Equal(t, int32(1), ok.Load())
			must.Equal(t, int32(n-1), invalid.Load())
		})
	}
}

// SES-20: configuration and input bounds.
func TestOneTimeTokensConfig(t *testing.T) {
	m, err := session.New(memstore.New(), session.Config{Logger: slog.New(slog.DiscardHandler)})
	must.NoError(t, err)
	for _, good := range []string{"https://example.com", "https://example.com/", "https://example.com:8443/app", "https://example.com/caf%C3%A9", "http://localhost:8080", "http://127.0.0.1", "http://[::1]:3000"} {
		_, err := m.NewOneTimeTokens(session.OneTimeConfig{BaseURL: good})
		must.NoError(t, err, good)
	}
	for _, bad := range []string{"", "example.com", "/reset", "http://example.com", "ftp://example.com", "https://", "https://user:pw@example.com",
		"https://example.com?x=1", "https://example.com/#f", "https://example.com/?", "javascript:alert(1)", "https://exa mple.com", "https://example.com/..//evil",
		"https://example.com\\@evil", "http://localhost.evil.example", "https://" + strings.Repeat("a", 600) + ".com"} {
		_, err := m.NewOneTimeTokens(session.OneTimeConfig{BaseURL: bad})
		must.ErrorIs(t, err, session.ErrInvalidInput, "%.60q", bad)
	}
	_, err = m.NewOneTimeTokens(session.OneTimeConfig{BaseURL: oneTimeBase, TTL: session.MaxOneTimeTTL})
	must.NoError(t, err)
	for _, ttl := range []time.Duration{session.MaxOneTimeTTL + time.Millisecond, 48 * time.Hour, -time.Hour} {
		_, err = m.NewOneTimeTokens(session.OneTimeConfig{BaseURL: oneTimeBase, TTL: ttl})
		must.ErrorIs(t, err, session.ErrInvalidInput, ttl)
	}

	ot, err := m.NewOneTimeTokens(session.OneTimeConfig{BaseURL: oneTimeBase + "/app/"})
	must.NoError(t, err)
	link, _, err := ot.Issue(t.Context(), "alice", "custom_purpose-2", "/verify")
	must.NoError(t, err)
	must.True(t, strings.HasPrefix(link, oneTimeBase+"/app/verify?token="), link)
	for _, p := range []session.OneTimePurpose{"", "Reset", "a b", "x/y", session.OneTimePurpose(strings.Repeat("a", 33))} {
		_, _, err := ot.Issue(t.Context(), "alice", p, "/reset")
		must.ErrorIs(t, err, session.ErrInvalidInput, "%q", p)
		_, err = ot.Consume(t.Context(), tokenOf(t, link), p)
		must.ErrorIs(t, err, session.ErrOneTimeTokenInvalid, "%q", p)
	}
	for _, path := range []string{"", "reset", "//evil.example", "/..//evil", "https://evil.example/reset", "/reset?x=1", "/reset#x", "/\\evil"} {
		_, _, err := ot.Issue(t.Context(), "alice", session.PurposePasswordReset, path)
		must.ErrorIs(t, err, session.ErrInvalidInput, "%q", path)
	}
	_, _, err = ot.Issue(t.Context(), "", session.PurposePasswordReset, "/reset")
	must.ErrorIs(t, err, session.ErrInvalidInput)
}

// must holds the assertions of the one-time token tests: each fails the
// test at once.
var must otAssert

type otAssert struct{}

func otFail(t *testing.T, what string, msg []any) {
	t.Helper()
	if len(msg) > 0 {
		if f, ok := msg[0].(string); ok {
			what += ": " + fmt.Sprintf(f, msg[1:]...)
		} else {
			what += fmt.Sprint(msg...)
		}
	}
	t.Fatal(what)
}

func (otAssert) NoError(t *testing.T, err error, msg ...any) {
	t.Helper()
	if err != nil {
		otFail(t, "unexpected error: "+err.Error(), msg)
	}
}

func (otAssert) ErrorIs(t *testing.T, err, target error, msg ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		otFail(t, fmt.Sprintf("error %v, want %v", err, target), msg)
	}
}

func (otAssert) True(t *testing.T, ok bool, msg ...any) {
	t.Helper()
	if !ok {
		otFail(t, "false", msg)
	}
}

func (otAssert) False(t *testing.T, ok bool, msg ...any) {
	t.Helper()
	if ok {
		otFail(t, "true", msg)
	}
}

func (otAssert) Equal(t *testing.T, want, got any, msg ...any) {
	t.Helper()
	if wt, ok := want.(time.Time); ok {
		if gt, ok := got.(time.Time); ok && wt.Equal(gt) {
			return
		}
	}
	if !reflect.DeepEqual(want, got) {
		otFail(t, fmt.Sprintf("got %v, want %v", got, want), msg)
	}
}

func (otAssert) GreaterOrEqual(t *testing.T, got, want int, msg ...any) {
	t.Helper()
	if got < want {
		otFail(t, fmt.Sprintf("%d < %d", got, want), msg)
	}
}

func (otAssert) NotEmpty(t *testing.T, s string, msg ...any) {
	t.Helper()
	if s == "" {
		otFail(t, "empty", msg)
	}
}

func (otAssert) Contains(t *testing.T, s, sub string, msg ...any) {
	t.Helper()
	if !strings.Contains(s, sub) {
		otFail(t, fmt.Sprintf("%q missing", sub), msg)
	}
}

func (otAssert) NotContains(t *testing.T, s, sub string, msg ...any) {
	t.Helper()
	if strings.Contains(s, sub) {
		otFail(t, fmt.Sprintf("%q present", sub), msg)
	}
}
