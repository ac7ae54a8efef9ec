package session_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// Issue 16: refresh-token races. A stolen refresh token used by the thief
// at the moment the client refreshes: two rotations of one token, each
// having read the family before the other writes. Exactly one may win,
// the loser gets no token at all (no access token left behind in the
// store), and the winner's tokens keep working. The rotations run on two
// Managers sharing one store (two instances of the app), so nothing in
// one process's memory can be what decides. The reuse and revocation
// races are TestFamilyRevocationRacingRotation and
// TestReuseDetectionRacingRotation (races_test.go).

// blindFamilies is a flawed store: its PutRefreshFamily ignores expect
// and writes over whatever is stored, as a store without compare-and-swap
// would. TestAttack16TwoRotationsFlawedStoreIsCaught runs the race over it
// to show that the race catches such a store.
type blindFamilies struct{ session.Store }

func (s blindFamilies) PutRefreshFamily(ctx context.Context, f storage.RefreshFamily, _ uint64) error {
	for {
		var current uint64
		r, err := s.Store.GetRefreshFamily(ctx, f.ID)
		switch {
		case err == nil:
			current = r.Version
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		if err := s.Store.PutRefreshFamily(ctx, f, current); !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
}

// attack16Interleavings are the points of the first rotation (on the
// first instance) at which the second one (on the other instance) runs
// from start to end: after the first has read the family, and when it has
// stored its new access session and device record and is about to swap
// the family.
var attack16Interleavings = []string{"GetRefreshFamily:after", "PutRefreshFamily:before"}

// attack16Rotations runs the race at point over stores made by open
// (wrapped by wrap), and returns both instances and both results: first
// is the rotation that was interrupted, second the one that ran inside it.
func attack16Rotations(t *testing.T, open func(t *testing.T) session.Store, wrap func(session.Store) session.Store, point string) (a1, a2 *testApp, pair session.TokenPair, first, second session.TokenPair, err1, err2 error) {
	t.Helper()
	a1 = newAppOn(t, wrap(open(t)))
	a2 = newAppOn(t, wrap(open(t)))
	pair, err := a1.m.IssueTokens(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	ctx := withHooks(t.Context(), hooks{point: func() {
		ran = true
		second, err2 = a2.m.Refresh(context.Background(), pair.RefreshToken)
	}})
	first, err1 = a1.m.Refresh(ctx, pair.RefreshToken)
	if !ran {
		t.Fatalf("the hook at %s did not run: the race was not forced", point)
	}
	return a1, a2, pair, first, second, err1, err2
}

// TestAttack16TwoRotationsOneTokenOneWins: of two rotations of one
// refresh token on two instances, forced to overlap, exactly one wins;
// the loser gets ErrInvalidToken and no token, the family is not revoked
// (a lost race is not a replay), the winner's pair works on both
// instances, and the user has one session (the loser's access session was
// removed). Every backend.
func TestAttack16TwoRotationsOneTokenOneWins(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, point := range attack16Interleavings {
				t.Run(point, func(t *testing.T) {
					open := b.open(t) // a store of this subtest's own, shared by both instances
					a1, a2, pair, first, second, err1, err2 := attack16Rotations(t, open, func(s session.Store) session.Store { return s }, point)
					if (err1 == nil) == (err2 == nil) {
						t.Fatalf("first rotation: %v; second: %v; want exactly one to succeed", err1, err2)
					}
					winner, loser, lossErr := first, second, err2
					if err1 != nil {
						winner, loser, lossErr = second, first, err1
					}
					if !errors.Is(lossErr, session.ErrInvalidToken) || errors.Is(lossErr, session.ErrTokenReused) {
						t.Errorf("the loser: %v, want ErrInvalidToken (not a reuse)", lossErr)
					}
					if loser.AccessToken != "" || loser.RefreshToken != "" {
						t.Error("the losing rotation returned tokens")
					}
					if got := a1.do(request{method: "GET", target: "/me", header: bearer(pair.AccessToken)}).StatusCode; got != 401 {
						t.Errorf("the access token before the race: %d, want 401", got)
					}
					for i, a := range []*testApp{a1, a2} {
						if got := a.do(request{method: "GET", target: "/me", header: bearer(winner.AccessToken)}).StatusCode; got != 200 {
							t.Errorf("instance %d: the winner's access token: %d, want 200", i+1, got)
						}
					}
					if d := devices(t, a1.m, "alice"); len(d) != 1 {
						t.Errorf("after the race the user has %d sessions, want 1 (the winner's): %+v", len(d), d)
					}
					// Within the race window the spent token is refused
					// without revoking; the winner's refresh token rotates.
					if _, err := a2.m.Refresh(t.Context(), pair.RefreshToken); !errors.Is(err, session.ErrInvalidToken) || errors.Is(err, session.ErrTokenReused) {
						t.Errorf("the spent token again: %v, want ErrInvalidToken without reuse", err)
					}
					if _, err := a1.m.Refresh(t.Context(), winner.RefreshToken); err != nil {
						t.Errorf("the winner's refresh token: %v", err)
					}
				})
			}
		})
	}
}

// TestAttack16TwoRotationsFlawedStoreIsCaught is the proof that the race
// above can fail: over a store whose family writes ignore the expected
// version, both rotations succeed with one token at the first
// interleaving (two families of tokens from one refresh token). If this
// test ever fails, the race no longer forces the overlap.
func TestAttack16TwoRotationsFlawedStoreIsCaught(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.open(t)
			_, _, _, first, second, err1, err2 := attack16Rotations(t, open, func(s session.Store) session.Store { return blindFamilies{s} }, attack16Interleavings[0])
			if err1 != nil || err2 != nil || first.RefreshToken == "" || second.RefreshToken == "" {
				t.Fatalf("over the flawed store: %v, %v; want both rotations to succeed (the race does not catch a missing compare-and-swap)", err1, err2)
			}
		})
	}
}

// lookupCounter counts the lookups of sessions and refresh families.
type lookupCounter struct {
	session.Store
	lookups *atomic.Int64
}

func (s lookupCounter) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	s.lookups.Add(1)
	return s.Store.GetSession(ctx, id)
}

func (s lookupCounter) GetRefreshFamily(ctx context.Context, id []byte) (storage.RefreshFamily, error) {
	s.lookups.Add(1)
	return s.Store.GetRefreshFamily(ctx, id)
}

// TestAttack16GarbageTokensNeverReachTheStore: malformed and oversized
// session cookies, bearer tokens and refresh tokens (empty, 4 KiB, 1 MiB,
// NUL bytes, invalid UTF-8, the standard base64 alphabet, a cookie header
// that tries to smuggle a second cookie, one character short or long) are
// refused (401 with the cookie cleared; ErrInvalidToken) without a single
// store lookup and without a 5xx; a well-formed token the server never
// issued costs one lookup and is refused the same way.
func TestAttack16GarbageTokensNeverReachTheStore(t *testing.T) {
	lookups := &atomic.Int64{}
	a := newAppOn(t, lookupCounter{Store: memstore.New(), lookups: lookups})
	name := a.m.Config().CookieName
	unknown := b64.EncodeToString(bytes.Repeat([]byte{0xA5}, 32))
	unknownRefresh := b64.EncodeToString(bytes.Repeat([]byte{0x5A}, 48))
	garbage := map[string]string{
		"4 KiB":                strings.Repeat("A", 4<<10),
		"1 MiB":                strings.Repeat("A", 1<<20),
		"NUL bytes":            strings.Repeat("\x00", 43),
		"a NUL inside":         unknown[:20] + "\x00" + unknown[21:],
		"invalid UTF-8":        strings.Repeat("\xff", 43),
		"standard base64":      strings.Repeat("+", 42) + "A",
		"one short":            unknown[:42],
		"one long":             unknown + "A",
		"padding":              unknown[:41] + "==",
		"a second cookie":      unknown[:10] + "; " + name + "=" + unknown,
		"a refresh token here": unknownRefresh,
	}
	for what, value := range garbage {
		before := lookups.Load()
		resp := a.do(request{method: "GET", target: "/me", header: http.Header{"Cookie": {name + "=" + value}}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("cookie, %s: %d, want 401", what, resp.StatusCode)
		}
		if c := sessionCookie(t, resp, name); c != nil && c.Value != "" {
			t.Errorf("cookie, %s: a session cookie was set", what)
		}
		if got := a.do(request{method: "GET", target: "/me", header: bearer(value)}).StatusCode; got != http.StatusUnauthorized {
			t.Errorf("bearer, %s: %d, want 401", what, got)
		}
		if n := lookups.Load() - before; n != 0 && what != "a second cookie" {
			t.Errorf("cookie and bearer, %s: %d store lookups, want none (refused by its form)", what, n)
		}
		before = lookups.Load()
		if _, err := a.m.Refresh(t.Context(), value); !errors.Is(err, session.ErrInvalidToken) {
			t.Errorf("refresh, %s: %v, want ErrInvalidToken", what, err)
		}
		if n := lookups.Load() - before; n != 0 && value != unknownRefresh {
			t.Errorf("refresh, %s: %d store lookups, want none (refused by its form)", what, n)
		}
	}
	for what, do := range map[string]func() bool{
		"cookie": func() bool { return a.do(request{method: "GET", target: "/me", cookie: unknown}).StatusCode == 401 },
		"bearer": func() bool {
			return a.do(request{method: "GET", target: "/me", header: bearer(unknown)}).StatusCode == 401
		},
		"refresh": func() bool {
			_, err := a.m.Refresh(t.Context(), unknownRefresh)
			return errors.Is(err, session.ErrInvalidToken)
		},
	} {
		before := lookups.Load()
		if !do() {
			t.Errorf("%s: a well-formed unknown token was not refused", what)
		}
		if n := lookups.Load() - before; n != 1 {
			t.Errorf("%s: a well-formed unknown token cost %d lookups, want 1", what, n)
		}
	}
}
