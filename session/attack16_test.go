package session_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
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
