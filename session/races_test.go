package session_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// hookKey carries a request's (or call's) store hooks in its context, so
// that a pausing store pauses only the call under test, not the
// interfering one.
type hookKey struct{}

// hooks maps a point in a store call ("GetSession:after",
// "PutRefreshFamily:before", …) to what runs there, once.
type hooks map[string]func()

func withHooks(ctx context.Context, h hooks) context.Context {
	var mu sync.Mutex
	return context.WithValue(ctx, hookKey{}, func(point string) {
		mu.Lock()
		f := h[point]
		delete(h, point)
		mu.Unlock()
		if f != nil {
			f()
		}
	})
}

func hook(ctx context.Context, point string) {
	if f, ok := ctx.Value(hookKey{}).(func(string)); ok {
		f(point)
	}
}

// hookedStore runs the hooks of a call's context between its store
// operations: the forced interleaving of a race, with no goroutine and no
// timing involved (the interfering operation runs inside the hook).
type hookedStore struct{ session.Store }

func (s hookedStore) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	r, err := s.Store.GetSession(ctx, id)
	hook(ctx, "GetSession:after")
	return r, err
}

func (s hookedStore) PutSession(ctx context.Context, sess storage.Session, expect uint64) error {
	hook(ctx, "PutSession:before")
	return s.Store.PutSession(ctx, sess, expect)
}

func (s hookedStore) GetRefreshFamily(ctx context.Context, id []byte) (storage.RefreshFamily, error) {
	r, err := s.Store.GetRefreshFamily(ctx, id)
	hook(ctx, "GetRefreshFamily:after")
	return r, err
}

func (s hookedStore) PutRefreshFamily(ctx context.Context, f storage.RefreshFamily, expect uint64) error {
	hook(ctx, "PutRefreshFamily:before")
	err := s.Store.PutRefreshFamily(ctx, f, expect)
	hook(ctx, "PutRefreshFamily:after")
	return err
}

// allBackends is memstore and the backends of stores_test.go.
func allBackends() []backend {
	mem := backend{"memory", func(t *testing.T) func(t *testing.T) session.Store {
		st := memstore.New()
		return func(t *testing.T) session.Store { return st }
	}}
	return append([]backend{mem}, backends...)
}

// newAppOn is a testApp over store (through hookedStore), with vaults in
// memory.
func newAppOn(t *testing.T, store session.Store) *testApp {
	t.Helper()
	a := &testApp{t: t, logs: &logBuffer{}, clock: newClock()}
	m, err := session.New(hookedStore{store}, session.Config{Now: a.clock.Now, Logger: slog.New(slog.NewTextHandler(a.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a.m = m
	v, err := vault.New(memstore.New(), vault.Config{Hasher: testHasher, KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	a.vault = v
	a.handler = m.Handler(a.routes())
	return a
}

// Issue 10, item 1: a logout, revoke or lock that lands between a request's
// read of its session and the write of its "last seen" touch is not undone.
// The request reads the session, the other action runs (inside the store
// hook), then the request writes: the old cookie stays dead (or locked),
// and the sealed vault keys do not come back.
func TestTouchDoesNotUndoEnd(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, action := range []string{"logout", "revoke", "lock"} {
				t.Run(action, func(t *testing.T) {
					a := newAppOn(t, b.open(t)(t)) // state of its own
					a.createVault("alice")
					c := a.unlock(a.login("alice"))
					info := devices(t, a.m, "alice")
					if len(info) != 1 || !info[0].Unlocked {
						t.Fatalf("devices before: %+v", info)
					}
					ref := info[0].Ref
					a.clock.Advance(2 * time.Minute) // the next request touches
					ran := false
					ctx := withHooks(t.Context(), hooks{"GetSession:after": func() {
						ran = true
						switch action {
						case "logout":
							resp := a.do(request{method: "POST", target: "/logout", cookie: c})
							if resp.StatusCode != 200 {
								t.Errorf("logout: %d", resp.StatusCode)
							}
						case "revoke":
							if err := a.m.Revoke(context.Background(), "alice", ref); err != nil {
								t.Errorf("Revoke: %v", err)
							}
						case "lock":
							if got := a.do(request{method: "POST", target: "/lock", cookie: c}).StatusCode; got != 200 {
								t.Errorf("lock: %d", got)
							}
						}
					}})
					resp := a.do(request{method: "GET", target: "/secret", cookie: c, ctx: ctx})
					if !ran {
						t.Fatal("the hook did not run: the request did not read its session")
					}
					want := 401
					if action == "lock" {
						want = 403
					}
					if resp.StatusCode != want {
						t.Errorf("the request that raced the %s: %d, want %d", action, resp.StatusCode, want)
					}
					if got := a.status("/secret", c); got != want {
						t.Errorf("the old cookie after the %s: %d, want %d", action, got, want)
					}
					a.clock.Advance(2 * time.Minute) // and again, touching
					if got := a.status("/secret", c); got != want {
						t.Errorf("the old cookie a touch later: %d, want %d", got, want)
					}
					after := devices(t, a.m, "alice")
					switch {
					case action != "lock" && len(after) != 0:
						t.Errorf("after the %s, the session is back: %+v", action, after)
					case action == "lock" && (len(after) != 1 || after[0].Unlocked):
						t.Errorf("after the lock, the sealed keys are back: %+v", after)
					}
				})
			}
		})
	}
}

func devices(t *testing.T, m *session.Manager, user string) []session.Device {
	t.Helper()
	d, err := m.Devices(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Issue 10, item 2: a revocation of a refresh family racing its rotation
// leaves nothing issued from the family alive, in both orders.
func TestFamilyRevocationRacingRotation(t *testing.T) {
	revokes := map[string]func(m *session.Manager, ctx context.Context, ref string) error{
		"Revoke":    func(m *session.Manager, ctx context.Context, ref string) error { return m.Revoke(ctx, "alice", ref) },
		"RevokeAll": func(m *session.Manager, ctx context.Context, _ string) error { return m.RevokeAll(ctx, "alice") },
	}
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for name, revoke := range revokes {
				// The rotation stores its access session, then the revocation
				// runs, then the rotation swaps the family.
				t.Run(name+"/during-rotation", func(t *testing.T) {
					a := newAppOn(t, b.open(t)(t)) // state of its own
					pair, err := a.m.IssueTokens(t.Context(), "alice")
					if err != nil {
						t.Fatal(err)
					}
					ref := devices(t, a.m, "alice")[0].Ref
					ran := false
					ctx := withHooks(t.Context(), hooks{"PutRefreshFamily:before": func() {
						ran = true
						if err := revoke(a.m, context.Background(), ref); err != nil {
							t.Errorf("%s: %v", name, err)
						}
					}})
					next, err := a.m.Refresh(ctx, pair.RefreshToken)
					if !ran {
						t.Fatal("the hook did not run")
					}
					if !errors.Is(err, session.ErrInvalidToken) {
						t.Errorf("Refresh racing %s: %v, want ErrInvalidToken", name, err)
					}
					if next.AccessToken != "" {
						t.Errorf("Refresh racing %s issued an access token", name)
					}
					wantFamilyDead(t, a, pair)
				})
				if name == "RevokeAll" {
					// RevokeAll reads nothing: its order (families, then
					// sessions) is what during-rotation checks.
					continue
				}
				// The revocation reads the family, then a whole rotation
				// runs, then the revocation deletes.
				t.Run(name+"/rotation-during", func(t *testing.T) {
					a := newAppOn(t, b.open(t)(t)) // state of its own
					pair, err := a.m.IssueTokens(t.Context(), "alice")
					if err != nil {
						t.Fatal(err)
					}
					ref := devices(t, a.m, "alice")[0].Ref
					var next session.TokenPair
					ran := false
					ctx := withHooks(t.Context(), hooks{"GetRefreshFamily:after": func() {
						ran = true
						var err error
						if next, err = a.m.Refresh(context.Background(), pair.RefreshToken); err != nil {
							t.Errorf("Refresh during %s: %v", name, err)
						}
					}})
					if err := revoke(a.m, ctx, ref); err != nil {
						t.Errorf("%s: %v", name, err)
					}
					if !ran {
						t.Fatal("the hook did not run")
					}
					wantFamilyDead(t, a, pair, next)
				})
			}
		})
	}
}

// Reuse detection (a rotated refresh token replayed) revokes the family
// while a legitimate refresh rotates it: the revocation reads the family,
// the rotation runs, then the revocation deletes. Nothing the rotation
// issued survives.
func TestReuseDetectionRacingRotation(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := newAppOn(t, b.open(t)(t))
			p0, err := a.m.IssueTokens(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			p1, err := a.m.Refresh(t.Context(), p0.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			a.clock.Advance(time.Minute) // past RefreshRaceWindow: p0 again is a replay
			var p2 session.TokenPair
			ran := false
			h := hooks{}
			// The first read of the family is Refresh's own; the second is
			// the revocation's.
			h["GetRefreshFamily:after"] = func() {
				h["GetRefreshFamily:after"] = func() {
					ran = true
					var err error
					if p2, err = a.m.Refresh(context.Background(), p1.RefreshToken); err != nil {
						t.Errorf("the legitimate refresh: %v", err)
					}
				}
			}
			if _, err := a.m.Refresh(withHooks(t.Context(), h), p0.RefreshToken); !errors.Is(err, session.ErrTokenReused) {
				t.Errorf("the replayed refresh: %v, want ErrTokenReused", err)
			}
			if !ran {
				t.Fatal("the hook did not run")
			}
			wantFamilyDead(t, a, p1, p2)
		})
	}
}

// wantFamilyDead checks that no token of pairs works and that the user has
// no session left.
func wantFamilyDead(t *testing.T, a *testApp, pairs ...session.TokenPair) {
	t.Helper()
	for i, p := range pairs {
		if p.AccessToken != "" {
			if got := a.do(request{method: "GET", target: "/me", header: bearer(p.AccessToken)}).StatusCode; got != 401 {
				t.Errorf("pair %d: the access token after the revocation: %d, want 401", i, got)
			}
		}
		if p.RefreshToken != "" {
			if _, err := a.m.Refresh(t.Context(), p.RefreshToken); !errors.Is(err, session.ErrInvalidToken) {
				t.Errorf("pair %d: Refresh after the revocation: %v, want ErrInvalidToken", i, err)
			}
		}
	}
	if d := devices(t, a.m, "alice"); len(d) != 0 {
		t.Errorf("after the revocation the user has %d sessions, want none: %+v", len(d), d)
	}
}

// Issue 10, item 3: a device row read before the session's token was
// re-issued still revokes it, and an unknown or ended reference is
// ErrNoSuchSession.
func TestRevokeWithRefReadBeforeReissue(t *testing.T) {
	for _, op := range []string{"unlock", "reauth", "renew"} {
		t.Run(op, func(t *testing.T) {
			a := newTestApp(t, session.Config{})
			a.createVault("alice")
			c := a.login("alice")
			mine := a.login("alice") // the device that revokes
			rows := devices(t, a.m, "alice")
			if len(rows) != 2 {
				t.Fatalf("%d devices", len(rows))
			}
			var ref string
			for _, d := range rows {
				if d.Ref == "" || len(d.Ref) != 16 {
					t.Fatalf("ref %q", d.Ref)
				}
			}
			// Which row is c? The one whose Info.Ref matches.
			ref = currentRef(t, a, c)
			var c2 string
			switch op {
			case "unlock":
				c2 = a.unlock(c)
			default:
				resp := a.do(request{method: "POST", target: "/" + op, cookie: c})
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d", op, resp.StatusCode)
				}
				c2 = sessionCookie(t, resp, a.m.Config().CookieName).Value
			}
			if c2 == c {
				t.Fatalf("%s did not re-issue the token", op)
			}
			if got := currentRef(t, a, c2); got != ref {
				t.Errorf("Ref after %s: %q, want %q (stable)", op, got, ref)
			}
			if err := a.m.Revoke(t.Context(), "alice", ref); err != nil {
				t.Fatalf("Revoke with the row read before %s: %v", op, err)
			}
			if got := a.status("/me", c2); got != 401 {
				t.Errorf("the re-issued cookie after Revoke: %d, want 401", got)
			}
			if got := a.status("/me", mine); got != 200 {
				t.Errorf("the revoking device after Revoke: %d, want 200", got)
			}
			for _, bad := range []string{ref, "", "x", strings.Repeat("A", 16), strings.Repeat("A", 1000)} {
				if err := a.m.Revoke(t.Context(), "alice", bad); !errors.Is(err, session.ErrNoSuchSession) {
					t.Errorf("Revoke(%.20q): %v, want ErrNoSuchSession", bad, err)
				}
			}
		})
	}
	// A bearer session keeps its Ref across refreshes.
	t.Run("refresh", func(t *testing.T) {
		a := newTestApp(t, session.Config{})
		pair, err := a.m.IssueTokens(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		ref := devices(t, a.m, "alice")[0].Ref
		for range 2 {
			if pair, err = a.m.Refresh(t.Context(), pair.RefreshToken); err != nil {
				t.Fatal(err)
			}
		}
		if got := devices(t, a.m, "alice"); len(got) != 1 || got[0].Ref != ref {
			t.Fatalf("devices after two refreshes: %+v, want one with Ref %q", got, ref)
		}
		if err := a.m.Revoke(t.Context(), "alice", ref); err != nil {
			t.Fatal(err)
		}
		if got := a.do(request{method: "GET", target: "/me", header: bearer(pair.AccessToken)}).StatusCode; got != 401 {
			t.Errorf("access token after Revoke: %d", got)
		}
		if _, err := a.m.Refresh(t.Context(), pair.RefreshToken); !errors.Is(err, session.ErrInvalidToken) {
			t.Errorf("Refresh after Revoke: %v", err)
		}
	})
}

type httpHandlerFunc func(ctx context.Context)

func (f httpHandlerFunc) ServeHTTP(_ http.ResponseWriter, r *http.Request) { f(r.Context()) }

// currentRef returns Info.Ref of the cookie's session, through a request.
func currentRef(t *testing.T, a *testApp, cookie string) string {
	t.Helper()
	var ref string
	h := a.m.Handler(httpHandlerFunc(func(ctx context.Context) {
		if info, ok := a.m.Current(ctx); ok {
			ref = info.Ref
		}
	}))
	serve(h, a.m.Config().CookieName, request{method: "GET", target: "/", cookie: cookie})
	if ref == "" {
		t.Fatal("no session")
	}
	return ref
}
