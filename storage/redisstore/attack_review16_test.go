package redisstore_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/storage"
)

// failNth fails the n-th script (counting from 1) whose first key starts
// with prefix, once armed, without sending it: a call lost on the wire
// (a crash, a timeout, a fail-over) at a chosen round trip.
type failNth struct {
	mu     sync.Mutex
	prefix string
	left   int
}

func (f *failNth) arm(prefix string, n int) {
	f.mu.Lock()
	f.prefix, f.left = prefix, n
	f.mu.Unlock()
}

func (f *failNth) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failNth) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (f *failNth) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		f.mu.Lock()
		fail := false
		if f.left > 0 && onKey(f.prefix)(cmd) && (cmd.Name() == "evalsha" || cmd.Name() == "eval") {
			f.left--
			fail = f.left == 0
		}
		f.mu.Unlock()
		if fail {
			err := errors.New("injected: connection lost")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

// TestAttackReview16PointerNeverDiesBeforeItsRecord: a put that moves a
// session's Expires later must not leave the record alive past its
// pointer. When the pointer's expiry moved in a third round trip after the
// record was written, losing that call (here: injected) left a record
// that GetSession no longer found, but that ListUserSessions still listed
// (the user's device list) and that DeleteSession could not delete (it
// finds the record through the pointer, and returned nil): a revocation
// that silently did nothing, and a dead device that kept counting against
// the user's limit until its Expires.
func TestAttackReview16PointerNeverDiesBeforeItsRecord(t *testing.T) {
	t.Parallel()
	f := &failNth{}
	e := newEnv(t, f)
	ctx := t.Context()
	s := session("alice", 300*time.Millisecond, "v1")
	if err := e.st.PutSession(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
	// The second script on the pointer's key during the next put (the
	// first is the claim) is lost.
	f.arm(e.prefix+"sp:", 2)
	longer := s
	longer.Expires = time.Now().Add(time.Hour)
	longer.Data = []byte("v2")
	if err := e.st.PutSession(ctx, longer, 1); err != nil {
		t.Logf("PutSession moving Expires later: %v", err)
	}
	f.arm("", 0)
	time.Sleep(time.Until(s.Expires) + 100*time.Millisecond) // past the old Expires

	got, err := e.st.GetSession(ctx, s.ID)
	listed := slices.Contains(listIDs(t, e.st, "alice"), hexIDs(s.ID)[0])
	switch {
	case err == nil && string(got.Data) == "v2":
		// The put took: the session lives to its new Expires.
	case errors.Is(err, storage.ErrNotFound) && !listed:
		// The put did not take (also acceptable): gone everywhere.
	default:
		t.Errorf("after a put moving Expires later lost a call: GetSession = %q, %v; listed by ListUserSessions: %v", got.Data, err, listed)
	}
	// Revoking it works, whichever way the put went.
	if err := e.st.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if ids := listIDs(t, e.st, "alice"); len(ids) != 0 {
		t.Errorf("ListUserSessions after DeleteSession = %v, want none", ids)
	}
	if n, err := e.rdb.Exists(ctx, e.userTag("alice")+"s:"+hexIDs(s.ID)[0]).Result(); err != nil || n != 0 {
		t.Errorf("the record after DeleteSession: %d keys, %v; want none", n, err)
	}
}
