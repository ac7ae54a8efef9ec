package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
)

// STO-07: a store call stalled on a lock that another connection holds
// returns with its context's error when a 100 ms deadline passes, on SQLite
// (the database's write lock, taken by BEGIN IMMEDIATE: writes wait, reads
// of WAL do not) and on PostgreSQL (every keyhold table locked ACCESS
// EXCLUSIVE: reads and writes wait). The lock is released only after the
// call has returned, or by a watchdog 10 s later: a store that ignored the
// context would then return nil, or SQLite's busy error after its 5 s busy
// timeout, and fail the test either way. No duration is asserted.
func TestRequirementStalledCallEndsAtDeadline(t *testing.T) {
	eachDialect(t, func(t *testing.T, d dialectCase, st *sqlstore.Store, raw *sql.DB, table func(string) string) {
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		if err := st.PutVault(ctx, "alice", []byte("v1"), 0); err != nil {
			t.Fatal(err)
		}
		if err := st.PutSession(ctx, storage.Session{ID: sid("s"), UserID: "alice", Expires: exp}, 0); err != nil {
			t.Fatal(err)
		}
		if err := st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: sid("f"), UserID: "alice", Expires: exp}, 0); err != nil {
			t.Fatal(err)
		}
		lockReq := storage.LockoutRequest{Now: time.Now(), MaxFailures: 3, LockFor: time.Minute, MaxLockFor: time.Hour, ForgetAfter: time.Hour}
		type call struct {
			name  string
			write bool
			do    func(ctx context.Context) error
		}
		calls := []call{
			{"GetVault", false, func(ctx context.Context) error { _, err := st.GetVault(ctx, "alice"); return err }},
			{"PutVault", true, func(ctx context.Context) error { return st.PutVault(ctx, "alice", []byte("v2"), 1) }},
			{"DeleteVault", true, func(ctx context.Context) error { return st.DeleteVault(ctx, "alice", 1) }},
			{"GetSession", false, func(ctx context.Context) error { _, err := st.GetSession(ctx, sid("s")); return err }},
			{"PutSession", true, func(ctx context.Context) error {
				return st.PutSession(ctx, storage.Session{ID: sid("s"), UserID: "alice", Expires: exp}, 1)
			}},
			{"DeleteSession", true, func(ctx context.Context) error { return st.DeleteSession(ctx, sid("s")) }},
			{"ListUserSessions", false, func(ctx context.Context) error { _, err := st.ListUserSessions(ctx, "alice"); return err }},
			{"DeleteUserSessions", true, func(ctx context.Context) error { return st.DeleteUserSessions(ctx, "alice") }},
			{"GetRefreshFamily", false, func(ctx context.Context) error { _, err := st.GetRefreshFamily(ctx, sid("f")); return err }},
			{"PutRefreshFamily", true, func(ctx context.Context) error {
				return st.PutRefreshFamily(ctx, storage.RefreshFamily{ID: sid("f"), UserID: "alice", Expires: exp}, 1)
			}},
			{"DeleteUserRefreshFamilies", true, func(ctx context.Context) error { return st.DeleteUserRefreshFamilies(ctx, "alice") }},
			{"TakeRate", true, func(ctx context.Context) error {
				_, err := st.TakeRate(ctx, rkey("r"), storage.RateRequest{Now: time.Now(), Interval: time.Minute, Burst: 5, Cost: 1})
				return err
			}},
			{"BeginAttempt", true, func(ctx context.Context) error { _, _, err := st.BeginAttempt(ctx, rkey("l"), lockReq); return err }},
		}

		release := holdLock(t, d, raw, table)
		defer release()
		for _, c := range calls {
			cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			done := make(chan error, 1)
			go func() { done <- c.do(cctx) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				release()
				err = <-done
				t.Errorf("%s: still blocked 10 s after its 100 ms deadline", c.name)
			}
			cancel()
			stalls := c.write || d.name == "PostgreSQL"
			switch {
			case stalls && !errors.Is(err, context.DeadlineExceeded):
				t.Errorf("%s on a locked database: %v, want an error matching context.DeadlineExceeded", c.name, err)
			case !stalls && err != nil:
				t.Errorf("%s (not blocked by the lock on %s): %v", c.name, d.name, err)
			}
		}
		release()
		// Nothing the stalled calls did was committed.
		if rec, err := st.GetVault(ctx, "alice"); err != nil || rec.Version != 1 {
			t.Errorf("after the stalled calls: vault %+v, %v; want version 1", rec, err)
		}
	})
}

// holdLock takes, on a connection of its own, the lock that stalls the
// store's calls, and returns its release (safe to call more than once).
// raw is a handle on the SQLite file the store uses (unused for
// PostgreSQL, which gets a connection of its own).
func holdLock(t *testing.T, d dialectCase, raw *sql.DB, table func(string) string) func() {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	db := raw
	if d.name == "PostgreSQL" {
		var err error
		if db, err = sql.Open("pgx", postgresDSN(t)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{"BEGIN IMMEDIATE"}
	if d.name == "PostgreSQL" {
		stmts = []string{"BEGIN"}
		for _, tab := range []string{"keyhold_vaults", "keyhold_sessions", "keyhold_refresh_families", "keyhold_rate_limits", "keyhold_lockouts"} {
			stmts = append(stmts, "LOCK TABLE "+table(tab)+" IN ACCESS EXCLUSIVE MODE")
		}
	}
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	released := false
	return func() {
		if released {
			return
		}
		released = true
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Errorf("ROLLBACK: %v", err)
		}
		conn.Close()
		if db != raw {
			db.Close()
		}
	}
}
