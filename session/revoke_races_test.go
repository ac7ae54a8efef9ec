package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// Regression tests for the review of issue 10's session fixes (F2, F3,
// F4), with the forced interleavings of races_test.go.

// ListUserSessions runs the hook "ListUserSessions:after" between the
// list and whatever its caller does with it.
func (s hookedStore) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	l, err := s.Store.ListUserSessions(ctx, userID)
	hook(ctx, "ListUserSessions:after")
	return l, err
}

type failDeleteKey struct{}

// withFailingDelete makes the first DeleteSession of the calls made with
// ctx (or a context derived from it, detached or not) fail with
// errStoreDown, and sets *failed when it has.
func withFailingDelete(ctx context.Context, failed *bool) context.Context {
	var once sync.Once
	return context.WithValue(ctx, failDeleteKey{}, func() bool {
		fail := false
		once.Do(func() { fail, *failed = true, true })
		return fail
	})
}

// DeleteSession fails once for a context made by withFailingDelete.
func (s hookedStore) DeleteSession(ctx context.Context, id []byte) error {
	if f, ok := ctx.Value(failDeleteKey{}).(func() bool); ok && f() {
		return errStoreDown
	}
	return s.Store.DeleteSession(ctx, id)
}

// snapshotStore deletes a user's sessions as the storage contract allows
// an adapter to ("a session put concurrently may survive"): it lists
// them, runs the hook "DeleteUserSessions:listed", then deletes what it
// listed.
type snapshotStore struct{ session.Store }

func (s snapshotStore) DeleteUserSessions(ctx context.Context, userID string) error {
	list, err := s.Store.ListUserSessions(ctx, userID)
	if err != nil {
		return err
	}
	hook(ctx, "DeleteUserSessions:listed")
	for _, x := range list {
		if err := s.Store.DeleteSession(ctx, x.ID); err != nil {
			return err
		}
	}
	return nil
}

// reissue re-issues the cookie's session by op ("unlock" or "renew") in a
// request of its own and returns the new cookie.
func reissue(t *testing.T, a *testApp, cookie, op string) string {
	t.Helper()
	if op == "unlock" {
		return a.unlock(cookie)
	}
	resp := a.do(request{method: "POST", target: "/" + op, cookie: cookie})
	c := sessionCookie(t, resp, a.m.Config().CookieName)
	if resp.StatusCode != 200 || c == nil || c.Value == cookie {
		t.Fatalf("%s: %d, no new cookie", op, resp.StatusCode)
	}
	return c.Value
}

// revokeOthersIn calls RevokeOthers in a request of the cookie's session
// whose context is ctx.
func revokeOthersIn(a *testApp, ctx context.Context, cookie string) error {
	var err error = errors.New("the handler did not run")
	h := a.m.Handler(httpHandlerFunc(func(ctx context.Context) { err = a.m.RevokeOthers(ctx) }))
	serve(h, a.m.Config().CookieName, request{method: "POST", target: "/", cookie: cookie, ctx: ctx})
	return err
}

// F2: a device that re-issues its token (unlock, Renew) after
// RevokeOthers listed the sessions moves to an ID the list never had; it
// ends all the same. The request's own session, re-issued by another
// request of the same cookie meanwhile, is recognised by its Ref and
// stays.
func TestRevokeOthersEndsSessionReissuedMeanwhile(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, op := range []string{"unlock", "renew"} {
				t.Run("other/"+op, func(t *testing.T) {
					a := newAppOn(t, b.open(t)(t))
					if op == "unlock" {
						a.createVault("alice")
					}
					me := a.login("alice")
					other := a.login("alice")
					var other2 string
					ctx := withHooks(t.Context(), hooks{"ListUserSessions:after": func() { other2 = reissue(t, a, other, op) }})
					if err := revokeOthersIn(a, ctx, me); err != nil {
						t.Fatalf("RevokeOthers: %v", err)
					}
					if other2 == "" {
						t.Fatal("the hook did not run")
					}
					if got := a.status("/me", other2); got != 401 {
						t.Errorf("the other device, re-issued (%s) during RevokeOthers: %d, want 401", op, got)
					}
					if op == "unlock" {
						if got := a.status("/secret", other2); got != 401 {
							t.Errorf("the other device's vault after RevokeOthers: %d, want 401", got)
						}
					}
					if got := a.status("/me", me); got != 200 {
						t.Errorf("the revoking device: %d, want 200", got)
					}
					if d := devices(t, a.m, "alice"); len(d) != 1 {
						t.Errorf("devices after RevokeOthers: %+v, want the revoking one", d)
					}
				})
			}
			t.Run("own-renew", func(t *testing.T) {
				a := newAppOn(t, b.open(t)(t))
				me := a.login("alice")
				other := a.login("alice")
				var me2 string
				ctx := withHooks(t.Context(), hooks{"ListUserSessions:after": func() { me2 = reissue(t, a, me, "renew") }})
				if err := revokeOthersIn(a, ctx, me); err != nil {
					t.Fatalf("RevokeOthers: %v", err)
				}
				if me2 == "" {
					t.Fatal("the hook did not run")
				}
				if got := a.status("/me", me2); got != 200 {
					t.Errorf("the revoking device, re-issued by its own other request: %d, want 200", got)
				}
				if got := a.status("/me", other); got != 401 {
					t.Errorf("the other device: %d, want 401", got)
				}
			})
		})
	}
}

// F2: RevokeOthers that keeps finding a re-issued session gives up after a
// bounded number of rounds with an error wrapping storage.ErrConflict.
func TestRevokeOthersGivesUpOnEndlessReissue(t *testing.T) {
	a := newAppOn(t, memstore.New())
	me := a.login("alice")
	other := a.login("alice")
	h := hooks{}
	rounds := 0
	var again func()
	again = func() {
		rounds++
		other = reissue(t, a, other, "renew")
		h["ListUserSessions:after"] = again
	}
	h["ListUserSessions:after"] = again
	err := revokeOthersIn(a, withHooks(t.Context(), h), me)
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("RevokeOthers against endless re-issues: %v, want storage.ErrConflict", err)
	}
	if rounds < 2 || rounds > 20 {
		t.Errorf("%d rounds, want a small bound", rounds)
	}
}

// F2: RevokeAll on a store whose DeleteUserSessions lets a session put
// meanwhile survive (as the storage contract allows) still ends a session
// re-issued during it.
func TestRevokeAllEndsSessionReissuedMeanwhile(t *testing.T) {
	a := newAppOn(t, snapshotStore{memstore.New()})
	a.createVault("alice")
	me := a.login("alice")
	other := a.login("alice")
	var other2 string
	ctx := withHooks(t.Context(), hooks{"DeleteUserSessions:listed": func() { other2 = reissue(t, a, other, "unlock") }})
	if err := a.m.RevokeAll(ctx, "alice"); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	if other2 == "" {
		t.Fatal("the hook did not run")
	}
	for name, c := range map[string]string{"the re-issued session": other2, "the other session": me} {
		if got := a.status("/me", c); got != 401 {
			t.Errorf("%s after RevokeAll: %d, want 401", name, got)
		}
	}
	if d := devices(t, a.m, "alice"); len(d) != 0 {
		t.Errorf("devices after RevokeAll: %+v, want none", d)
	}
}

// F3: a refresh whose client hangs up right after the family's
// compare-and-swap committed still ends the previous access token (the
// clean-up runs on a detached context), and the client that replays the
// old refresh token later revokes everything.
func TestRefreshHangUpEndsPreviousAccessToken(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := newAppOn(t, b.open(t)(t))
			p0, err := a.m.IssueTokens(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ran := false
			p1, err := a.m.Refresh(withHooks(ctx, hooks{"PutRefreshFamily:after": func() { ran = true; cancel() }}), p0.RefreshToken)
			if !ran {
				t.Fatal("the hook did not run")
			}
			if err != nil {
				t.Errorf("the refresh whose client hung up after it committed: %v, want its new pair", err)
			}
			if got := a.do(request{method: "GET", target: "/me", header: bearer(p0.AccessToken)}).StatusCode; got != 401 {
				t.Errorf("the previous access token after the refresh: %d, want 401", got)
			}
			a.clock.Advance(time.Minute) // past RefreshRaceWindow
			if _, err := a.m.Refresh(t.Context(), p0.RefreshToken); !errors.Is(err, session.ErrTokenReused) {
				t.Fatalf("the replayed refresh token: %v, want ErrTokenReused", err)
			}
			wantFamilyDead(t, a, p0, p1)
		})
	}
}

// F3: an access session that a rotation failed to delete (the store
// failed) is no longer named by its family, yet it ends with the family:
// by reuse detection and by the bearer's Logout.
func TestFamilyRevocationEndsAccessSessionLeftByRotation(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, how := range []string{"reuse", "logout"} {
				t.Run(how, func(t *testing.T) {
					a := newAppOn(t, b.open(t)(t))
					p0, err := a.m.IssueTokens(t.Context(), "alice")
					if err != nil {
						t.Fatal(err)
					}
					failed := false
					p1, err := a.m.Refresh(withFailingDelete(t.Context(), &failed), p0.RefreshToken)
					if !failed {
						t.Fatal("no delete failed")
					}
					if err != nil {
						t.Fatalf("a committed rotation whose clean-up failed: %v, want its new pair", err)
					}
					if got := a.do(request{method: "GET", target: "/me", header: bearer(p0.AccessToken)}).StatusCode; got != 200 {
						t.Fatalf("setup: the previous access session should have survived the failed delete: %d", got)
					}
					switch how {
					case "reuse":
						a.clock.Advance(time.Minute) // past RefreshRaceWindow
						if _, err := a.m.Refresh(t.Context(), p0.RefreshToken); !errors.Is(err, session.ErrTokenReused) {
							t.Fatalf("the replayed refresh token: %v, want ErrTokenReused", err)
						}
					case "logout":
						if got := a.do(request{method: "POST", target: "/logout", header: bearer(p1.AccessToken)}).StatusCode; got != 200 {
							t.Fatalf("bearer logout: %d", got)
						}
					}
					wantFamilyDead(t, a, p0, p1)
				})
			}
		})
	}
}

// clockStore expires sessions and refresh families by the test's clock,
// as a store does by its own.
type clockStore struct {
	session.Store
	now func() time.Time
}

func (s *clockStore) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	r, err := s.Store.GetSession(ctx, id)
	if err == nil && !s.now().Before(r.Expires) {
		return storage.Session{}, storage.ErrNotFound
	}
	return r, err
}

func (s *clockStore) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	l, err := s.Store.ListUserSessions(ctx, userID)
	var out []storage.Session
	for _, x := range l {
		if s.now().Before(x.Expires) {
			out = append(out, x)
		}
	}
	return out, err
}

func (s *clockStore) GetRefreshFamily(ctx context.Context, id []byte) (storage.RefreshFamily, error) {
	r, err := s.Store.GetRefreshFamily(ctx, id)
	if err == nil && !s.now().Before(r.Expires) {
		return storage.RefreshFamily{}, storage.ErrNotFound
	}
	return r, err
}

// F4: an API client whose access token has expired (15 minutes) while its
// refresh family lives on (7 to 30 days) stays in Devices under the same
// Ref, and Revoke with that Ref ends the family: its refresh token no
// longer works. A refresh keeps it one row; when the family expires, the
// row goes.
func TestIdleAPIClientStaysListedAndRevocable(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, then := range []string{"revoke", "refresh"} {
				t.Run(then, func(t *testing.T) {
					cs := &clockStore{Store: b.open(t)(t)}
					a := newAppOn(t, cs)
					cs.now = a.clock.Now
					pair, err := a.m.IssueTokens(t.Context(), "alice")
					if err != nil {
						t.Fatal(err)
					}
					rows := devices(t, a.m, "alice")
					if len(rows) != 1 || !rows[0].Bearer {
						t.Fatalf("devices after IssueTokens: %+v, want one API client", rows)
					}
					ref := rows[0].Ref
					a.clock.Advance(20 * time.Minute) // the access token has expired, the refresh token has not
					if got := a.do(request{method: "GET", target: "/me", header: bearer(pair.AccessToken)}).StatusCode; got != 401 {
						t.Fatalf("setup: the access token after 20 minutes: %d, want 401", got)
					}
					if rows := devices(t, a.m, "alice"); len(rows) != 1 || rows[0].Ref != ref || !rows[0].Bearer {
						t.Errorf("devices with the access token expired: %+v, want the API client with Ref %q", rows, ref)
					}
					switch then {
					case "revoke":
						if err := a.m.Revoke(t.Context(), "alice", ref); err != nil {
							t.Fatalf("Revoke of the idle API client: %v", err)
						}
						if _, err := a.m.Refresh(t.Context(), pair.RefreshToken); !errors.Is(err, session.ErrInvalidToken) {
							t.Errorf("Refresh after Revoke: %v, want ErrInvalidToken", err)
						}
						if rows := devices(t, a.m, "alice"); len(rows) != 0 {
							t.Errorf("devices after Revoke: %+v, want none", rows)
						}
						if err := a.m.Revoke(t.Context(), "alice", ref); !errors.Is(err, session.ErrNoSuchSession) {
							t.Errorf("Revoke again: %v, want ErrNoSuchSession", err)
						}
					case "refresh":
						next, err := a.m.Refresh(t.Context(), pair.RefreshToken)
						if err != nil {
							t.Fatalf("Refresh of the idle client: %v", err)
						}
						if got := a.do(request{method: "GET", target: "/me", header: bearer(next.AccessToken)}).StatusCode; got != 200 {
							t.Errorf("the new access token: %d", got)
						}
						rows := devices(t, a.m, "alice")
						if len(rows) != 1 || rows[0].Ref != ref || !rows[0].LastSeen.Equal(a.clock.Now()) {
							t.Errorf("devices after the refresh: %+v, want one row, Ref %q, last seen now", rows, ref)
						}
						a.clock.Advance(session.DefaultRefreshTokenTTL) // the family expires unused
						if rows := devices(t, a.m, "alice"); len(rows) != 0 {
							t.Errorf("devices after the family expired: %+v, want none", rows)
						}
						if err := a.m.Revoke(t.Context(), "alice", ref); !errors.Is(err, session.ErrNoSuchSession) {
							t.Errorf("Revoke of the expired family: %v, want ErrNoSuchSession", err)
						}
					}
				})
			}
		})
	}
}

// F4: RevokeOthers ends API clients whose access token has expired too:
// their refresh families and device rows.
func TestRevokeOthersEndsIdleAPIClient(t *testing.T) {
	cs := &clockStore{Store: memstore.New()}
	a := newAppOn(t, cs)
	cs.now = a.clock.Now
	pair, err := a.m.IssueTokens(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(20 * time.Minute)
	me := a.login("alice")
	if err := revokeOthersIn(a, t.Context(), me); err != nil {
		t.Fatal(err)
	}
	if _, err := a.m.Refresh(t.Context(), pair.RefreshToken); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("Refresh after RevokeOthers: %v, want ErrInvalidToken", err)
	}
	if rows := devices(t, a.m, "alice"); len(rows) != 1 || rows[0].Bearer {
		t.Errorf("devices after RevokeOthers: %+v, want only the cookie session", rows)
	}
}

// F4: the session limit counts API clients for as long as their families
// live, and ending the least recently used one revokes its family.
func TestSessionLimitEndsIdleAPIClient(t *testing.T) {
	cs := &clockStore{Store: memstore.New()}
	a := newAppOn(t, cs)
	cs.now = a.clock.Now
	m, err := session.New(hookedStore{cs}, session.Config{Now: a.clock.Now, MaxSessionsPerUser: 2})
	if err != nil {
		t.Fatal(err)
	}
	a.m = m
	a.handler = m.Handler(a.routes())
	pair, err := a.m.IssueTokens(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(20 * time.Minute) // its access token has expired
	c1 := a.login("alice")
	a.clock.Advance(time.Minute)
	c2 := a.login("alice") // over the limit: the API client is the least recently used
	if _, err := a.m.Refresh(t.Context(), pair.RefreshToken); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("Refresh of the API client the limit ended: %v, want ErrInvalidToken", err)
	}
	for _, c := range []string{c1, c2} {
		if got := a.status("/me", c); got != 200 {
			t.Errorf("a cookie session under the limit: %d", got)
		}
	}
	if rows := devices(t, a.m, "alice"); len(rows) != 2 {
		t.Errorf("devices: %+v, want the two cookie sessions", rows)
	}
}
