package sqlstore

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// Expired challenges that nobody takes are removed by later puts, at most
// challengeSweepBatch per put, and a take of an expired row that no sweep
// has reached yet is ErrNotFound and deletes it (fail closed).
func TestChallengePutSweepsExpiredRows(t *testing.T) {
	st, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "keyhold.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := t.Context()
	count := func() int {
		t.Helper()
		var n int
		if err := st.r.QueryRowContext(ctx, "SELECT count(*) FROM keyhold_challenges").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	id := func(i int) []byte {
		b := make([]byte, storage.ChallengeIDLen)
		b[0], b[1] = byte(i), byte(i>>8)
		return b
	}
	// Put 40 challenges an hour ago, expiring a minute after that.
	past := time.Now().Add(-time.Hour)
	st.now = func() time.Time { return past }
	const old = 40
	for i := range old {
		// The first puts find nothing expired by their clock.
		if err := st.PutChallenge(ctx, storage.Challenge{ID: id(i), Expires: past.Add(time.Minute), Data: []byte("old")}); err != nil {
			t.Fatal(err)
		}
	}
	st.now = time.Now
	if n := count(); n != old {
		t.Fatalf("%d rows after %d puts, want %d", n, old, old)
	}
	// A take of an expired row no sweep has reached: absent, and gone.
	if _, err := st.TakeChallenge(ctx, id(0)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TakeChallenge of an expired challenge: %v, want storage.ErrNotFound", err)
	}
	if n := count(); n != old-1 {
		t.Errorf("%d rows after taking an expired one, want %d", n, old-1)
	}
	// Each fresh put removes challengeSweepBatch expired rows.
	left := old - 1
	for i := range 3 {
		if err := st.PutChallenge(ctx, storage.Challenge{ID: id(1000 + i), Expires: time.Now().Add(time.Minute), Data: []byte("new")}); err != nil {
			t.Fatal(err)
		}
		left = max(0, left-challengeSweepBatch)
		if n, want := count(), left+i+1; n != want {
			t.Errorf("after fresh put %d: %d rows, want %d", i+1, n, want)
		}
	}
}
