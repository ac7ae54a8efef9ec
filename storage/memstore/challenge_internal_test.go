package memstore

import (
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// Challenges nobody takes do not stay forever: each put removes up to
// challengeSweepScan expired ones, and a take of an expired one removes
// it and zeroes its data.
func TestChallengePutSweepsExpired(t *testing.T) {
	s := New()
	ctx := t.Context()
	id := func(i int) []byte {
		b := make([]byte, storage.ChallengeIDLen)
		b[0], b[1] = byte(i), byte(i>>8)
		return b
	}
	const old = 20
	expires := time.Now().Add(20 * time.Millisecond)
	for i := range old {
		if err := s.PutChallenge(ctx, storage.Challenge{ID: id(i), Expires: expires, Data: []byte("old")}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Until(expires) + 10*time.Millisecond)
	held := s.challenges[string(id(0))].data
	if _, err := s.TakeChallenge(ctx, id(0)); err != storage.ErrNotFound {
		t.Errorf("TakeChallenge of an expired challenge: %v, want storage.ErrNotFound", err)
	}
	if string(held) != "\x00\x00\x00" {
		t.Errorf("an expired challenge's data is %q after its take, want zeros", held)
	}
	if err := s.PutChallenge(ctx, storage.Challenge{ID: id(1000), Expires: time.Now().Add(time.Minute), Data: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if n, want := len(s.challenges), old-1-challengeSweepScan+1; n != want {
		t.Errorf("%d challenges after a put among %d expired ones, want %d", n, old-1, want)
	}
}
