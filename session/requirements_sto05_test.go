package session_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// echoingStore fails every session call, when told to, with an error that
// quotes every argument it was given (raw, hex and base64), as a careless
// adapter might.
type echoingStore struct {
	*memstore.Store
	fail atomic.Bool
}

func echo(args ...[]byte) error {
	var b strings.Builder
	for _, a := range args {
		fmt.Fprintf(&b, " raw=%q hex=%x b64=%s", a, a, base64.RawURLEncoding.EncodeToString(a))
	}
	return errors.New("store down:" + b.String())
}

func (s *echoingStore) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	if s.fail.Load() {
		return storage.Session{}, echo(id)
	}
	return s.Store.GetSession(ctx, id)
}

func (s *echoingStore) PutSession(ctx context.Context, sess storage.Session, expect uint64) error {
	if s.fail.Load() {
		return echo(sess.ID, sess.Data, []byte(sess.UserID))
	}
	return s.Store.PutSession(ctx, sess, expect)
}

func (s *echoingStore) DeleteSession(ctx context.Context, id []byte) error {
	if s.fail.Load() {
		return echo(id)
	}
	return s.Store.DeleteSession(ctx, id)
}

func (s *echoingStore) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	if s.fail.Load() {
		return nil, echo([]byte(userID))
	}
	return s.Store.ListUserSessions(ctx, userID)
}

// STO-05: with a store that fails and quotes its arguments in its errors,
// a request with a valid cookie and a login both fail closed (500, no
// session, no cookie), and neither the errors the application sees nor the
// log hold the session token, in any encoding: the store is only ever
// given hashes of tokens.
func TestRequirementStoreFailureLeaksNoToken(t *testing.T) {
	store := &echoingStore{Store: memstore.New()}
	logs := &testkit.SyncBuffer{}
	var seen []error // the handler runs on the test's goroutine
	record := func(err error) { seen = append(seen, err) }
	m, err := session.New(store, session.Config{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DenyHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			record(err)
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			if err := m.Login(r.Context(), "alice", session.LoginOptions{}); err != nil {
				record(err)
				http.Error(w, "500 internal server error", http.StatusInternalServerError)
			}
		default:
			if _, ok := m.Current(r.Context()); !ok {
				http.Error(w, "401", http.StatusUnauthorized)
			}
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, x07Request("/login", ""))
	var token string
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-keyhold" {
			token = c.Value
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 32 {
		t.Fatalf("login cookie %q: %v", token, err)
	}

	store.fail.Store(true)
	for _, req := range []*http.Request{x07Request("/", token), x07Request("/login", token), x07Request("/login", "")} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		resp := rec.Result()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s with the store down: status %d, want 500", req.URL.Path, resp.StatusCode)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "__Host-keyhold" && c.MaxAge >= 0 && c.Value != "" {
				t.Errorf("%s with the store down set a session cookie", req.URL.Path)
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no error reached the application")
	}
	forms := map[string]string{
		"raw":    string(raw),
		"base64": token,
		"hex":    hex.EncodeToString(raw),
		"quoted": fmt.Sprintf("%q", raw),
	}
	for _, err := range seen {
		for form, v := range forms {
			if strings.Contains(err.Error(), v) {
				t.Errorf("an error holds the token (%s): %v", form, err)
			}
		}
	}
	for form, v := range forms {
		if bytes.Contains([]byte(logs.String()), []byte(v)) {
			t.Errorf("the log holds the token (%s)", form)
		}
	}
}

// a user name with a line break and a forged record in it is
// escaped in the audit log (keyhold logs names as attributes, which slog's
// text and JSON handlers quote), so it cannot forge a log line.
func TestRequirementLogInjectionEscaped(t *testing.T) {
	const name = "a\nfake time=2000-01-01 level=ERROR msg=authn_login_success user=admin"
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			logs := &testkit.SyncBuffer{}
			var handler slog.Handler = slog.NewTextHandler(logs, nil)
			if format == "json" {
				handler = slog.NewJSONHandler(logs, nil)
			}
			m, err := session.New(memstore.New(), session.Config{Logger: slog.New(handler)})
			if err != nil {
				t.Fatal(err)
			}
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := m.Login(r.Context(), name, session.LoginOptions{}); err != nil {
					t.Errorf("Login(%q): %v", name, err)
				}
			}))
			h.ServeHTTP(httptest.NewRecorder(), x07Request("/login", ""))
			out := logs.String()
			if out == "" {
				t.Fatal("no audit record")
			}
			// Every line is one whole record: none starts with the
			// name's second line.
			for line := range strings.Lines(out) {
				if !strings.HasPrefix(line, "time=") && !strings.HasPrefix(line, `{"time":`) {
					t.Errorf("a log line is not a record of its own: %q\nlog:\n%s", line, out)
				}
			}
			if !strings.Contains(out, `a\nfake`) {
				t.Errorf("the name is not escaped as a\\nfake:\n%s", out)
			}
		})
	}
}
