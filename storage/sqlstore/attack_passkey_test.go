package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
)

// Outside review of sqlstore's PasskeyStore: forced interleavings of a
// put against a rival transaction, opened by hand on the same database,
// that inserts or deletes the credential ID or user handle the put wants.
// The rival holds its rows uncommitted until the put is seen waiting for
// them (PostgreSQL: pg_stat_activity shows the Store's statement waiting
// on a lock; SQLite: the rival holds the one write lock, so the put cannot
// begin before the rival ends), then commits or rolls back.

func attackHandle(b byte) []byte { return bytes.Repeat([]byte{b}, storage.PasskeyHandleLen) }

// rawExec runs a statement with ? placeholders in tx, in the dialect's
// syntax.
func rawExec(t *testing.T, tx *sql.Tx, pg bool, query string, args ...any) {
	t.Helper()
	if pg {
		n := 0
		var b strings.Builder
		for _, c := range query {
			if c == '?' {
				n++
				fmt.Fprintf(&b, "$%d", n)
				continue
			}
			b.WriteRune(c)
		}
		query = b.String()
	}
	if _, err := tx.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("rival: %s: %v", query, err)
	}
}

// waitBlocked returns once a statement on the Store's schema waits on a
// lock (PostgreSQL), or after a moment (SQLite, where the outcome does
// not depend on it: the put cannot start its transaction before the
// rival's ends).
func waitBlocked(t *testing.T, raw *sql.DB, pg bool, table func(string) string, done <-chan error) {
	t.Helper()
	if !pg {
		select {
		case err := <-done:
			t.Fatalf("the put ended (%v) while the rival held the write lock", err)
		case <-time.After(300 * time.Millisecond):
		}
		return
	}
	schema := strings.TrimSuffix(table(""), ".")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := raw.QueryRowContext(t.Context(),
			`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0`, schema).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("the put ended (%v) without waiting for the rival", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the put never waited for the rival's lock")
}

// Defenses that hold, on both dialects: a put of a credential ID or handle
// that a rival transaction is inserting or deleting waits for it, and
// then fails with ErrDuplicate (the rival committed its insert, or rolled
// back its delete) or succeeds (the rival rolled back its insert, or
// committed its delete). A failed put leaves the user's record and both
// indexes as they were: bob's existing credential, which the put's
// transaction had already deleted before meeting the rival's row, is
// still his.
func TestAttackPasskeyPutAgainstRivalTransaction(t *testing.T) {
	bobCred, bobOld := []byte("credential X"), []byte("bob's credential Y")
	type scenario struct {
		name string
		// setup runs before the rival (committed state).
		setup func(t *testing.T, st *sqlstore.Store)
		// rival runs in the rival's transaction.
		rival   func(t *testing.T, tx *sql.Tx, pg bool, table func(string) string)
		commit  bool
		bob     storage.PasskeyRecord
		expect  uint64
		wantDup bool
	}
	insertMallory := func(handle []byte, creds ...[]byte) func(t *testing.T, tx *sql.Tx, pg bool, table func(string) string) {
		return func(t *testing.T, tx *sql.Tx, pg bool, table func(string) string) {
			rawExec(t, tx, pg, "INSERT INTO "+table("keyhold_passkeys")+" (user_id, handle, version, data) VALUES (?, ?, 1, ?)", []byte("mallory"), handle, []byte{})
			for _, c := range creds {
				rawExec(t, tx, pg, "INSERT INTO "+table("keyhold_passkey_credentials")+" (credential_id, user_id) VALUES (?, ?)", c, []byte("mallory"))
			}
		}
	}
	deleteMallory := func(t *testing.T, tx *sql.Tx, pg bool, table func(string) string) {
		rawExec(t, tx, pg, "DELETE FROM "+table("keyhold_passkey_credentials")+" WHERE user_id = ?", []byte("mallory"))
		rawExec(t, tx, pg, "DELETE FROM "+table("keyhold_passkeys")+" WHERE user_id = ?", []byte("mallory"))
	}
	malloryHolds := func(t *testing.T, st *sqlstore.Store) {
		if err := st.PutPasskeys(t.Context(), storage.PasskeyRecord{UserID: "mallory", Handle: attackHandle('m'), CredentialIDs: [][]byte{bobCred}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	bobHolds := func(t *testing.T, st *sqlstore.Store) {
		if err := st.PutPasskeys(t.Context(), storage.PasskeyRecord{UserID: "bob", Handle: attackHandle('b'), CredentialIDs: [][]byte{bobOld}, Data: []byte("v1")}, 0); err != nil {
			t.Fatal(err)
		}
	}
	newBob := storage.PasskeyRecord{UserID: "bob", Handle: attackHandle('b'), CredentialIDs: [][]byte{bobCred}, Data: []byte("bob")}
	reBob := storage.PasskeyRecord{UserID: "bob", Handle: attackHandle('b'), CredentialIDs: [][]byte{bobCred}, Data: []byte("v2")}
	scenarios := []scenario{
		{name: "rival inserts the ID, commits", rival: insertMallory(attackHandle('m'), bobCred), commit: true, bob: newBob, wantDup: true},
		{name: "rival inserts the ID, rolls back", rival: insertMallory(attackHandle('m'), bobCred), commit: false, bob: newBob},
		{name: "rival deletes the ID, commits", setup: malloryHolds, rival: deleteMallory, commit: true, bob: newBob},
		{name: "rival deletes the ID, rolls back", setup: malloryHolds, rival: deleteMallory, commit: false, bob: newBob, wantDup: true},
		{name: "rival inserts the handle, commits", rival: insertMallory(attackHandle('b')), commit: true, bob: newBob, wantDup: true},
		{name: "rival inserts the handle, rolls back", rival: insertMallory(attackHandle('b')), commit: false, bob: newBob},
		{name: "re-put meets rival's ID, commits", setup: bobHolds, rival: insertMallory(attackHandle('m'), bobCred), commit: true, bob: reBob, expect: 1, wantDup: true},
		{name: "re-put meets rival's ID, rolls back", setup: bobHolds, rival: insertMallory(attackHandle('m'), bobCred), commit: false, bob: reBob, expect: 1},
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			pg := d.name == "PostgreSQL"
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					st, _, raw, table := d.open(t)
					ctx := t.Context()
					if sc.setup != nil {
						sc.setup(t, st)
					}
					var before storage.PasskeyRecord
					if sc.expect != 0 {
						var err error
						if before, err = st.GetPasskeys(ctx, "bob"); err != nil {
							t.Fatal(err)
						}
					}
					var opts *sql.TxOptions
					if pg {
						opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
					}
					// In SQLite the rival's first write takes the database's
					// write lock, held until it ends.
					tx, err := raw.BeginTx(ctx, opts)
					if err != nil {
						t.Fatal(err)
					}
					defer tx.Rollback()
					sc.rival(t, tx, pg, table)
					done := make(chan error, 1)
					go func() {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						done <- st.PutPasskeys(ctx, sc.bob, sc.expect)
					}()
					waitBlocked(t, raw, pg, table, done)
					if sc.commit {
						err = tx.Commit()
					} else {
						err = tx.Rollback()
					}
					if err != nil {
						t.Fatal(err)
					}
					err = <-done
					if sc.wantDup {
						if !errors.Is(err, storage.ErrDuplicate) {
							t.Fatalf("put: %v, want ErrDuplicate", err)
						}
						if u, err := st.UserByCredential(ctx, bobCred); sc.name != "rival inserts the handle, commits" && (err != nil || u != "mallory") {
							t.Fatalf("UserByCredential(X) = %q, %v; want mallory", u, err)
						}
						got, gerr := st.GetPasskeys(ctx, "bob")
						if sc.expect == 0 {
							if !errors.Is(gerr, storage.ErrNotFound) {
								t.Fatalf("bob has a record after a refused first put: %+v, %v", got, gerr)
							}
							if _, err := st.UserByHandle(ctx, attackHandle('b')); sc.name != "rival inserts the handle, commits" && !errors.Is(err, storage.ErrNotFound) {
								t.Fatalf("bob's handle indexed after a refused put: %v", err)
							}
						} else {
							if gerr != nil || got.Version != before.Version || !bytes.Equal(got.Data, before.Data) || len(got.CredentialIDs) != 1 || !bytes.Equal(got.CredentialIDs[0], bobOld) {
								t.Fatalf("bob's record after a refused re-put: %+v, %v; want it unchanged", got, gerr)
							}
							if u, err := st.UserByCredential(ctx, bobOld); err != nil || u != "bob" {
								t.Fatalf("bob's old credential lost from the index after a refused re-put: %q, %v", u, err)
							}
						}
						return
					}
					if err != nil {
						t.Fatalf("put: %v, want success", err)
					}
					if u, err := st.UserByCredential(ctx, bobCred); err != nil || u != "bob" {
						t.Fatalf("UserByCredential(X) = %q, %v; want bob", u, err)
					}
					if u, err := st.UserByHandle(ctx, attackHandle('b')); err != nil || u != "bob" {
						t.Fatalf("UserByHandle = %q, %v; want bob", u, err)
					}
					if sc.expect != 0 {
						if _, err := st.UserByCredential(ctx, bobOld); !errors.Is(err, storage.ErrNotFound) {
							t.Fatalf("bob's replaced credential still indexed: %v", err)
						}
					}
				})
			}
		})
	}
}

// Defense holds, on both dialects: credential IDs and user handles are
// bytes, compared byte for byte: IDs differing only in case, in a
// trailing space or NUL, or in their Unicode normal form, and a handle
// differing in its last byte, are other users' to take; and a user
// cannot change the handle of their record, whatever expect.
func TestAttackPasskeyBytesNotText(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			st, _, _, _ := d.open(t)
			ctx := t.Context()
			base := []byte("Credential\u00e9")
			if err := st.PutPasskeys(ctx, storage.PasskeyRecord{UserID: "alice", Handle: attackHandle('a'), CredentialIDs: [][]byte{base}}, 0); err != nil {
				t.Fatal(err)
			}
			variants := [][]byte{
				[]byte("credential\u00e9"),
				[]byte("CREDENTIAL\u00c9"),
				[]byte("Credential\u00e9 "),
				[]byte("Credential\u00e9\x00"),
				[]byte("Credentiale\u0301"),
			}
			h := attackHandle('a')
			h[len(h)-1] ^= 1
			if err := st.PutPasskeys(ctx, storage.PasskeyRecord{UserID: "eve", Handle: h, CredentialIDs: variants}, 0); err != nil {
				t.Fatalf("look-alike IDs refused as duplicates: %v", err)
			}
			for _, v := range variants {
				if u, err := st.UserByCredential(ctx, v); err != nil || u != "eve" {
					t.Fatalf("UserByCredential(%q) = %q, %v", v, u, err)
				}
			}
			if u, err := st.UserByCredential(ctx, base); err != nil || u != "alice" {
				t.Fatalf("alice's ID now %q, %v", u, err)
			}
			if err := st.PutPasskeys(ctx, storage.PasskeyRecord{UserID: "alice", Handle: attackHandle('z'), CredentialIDs: [][]byte{base}}, 1); !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("alice changing her handle: %v, want ErrInvalid", err)
			}
			if err := st.PutPasskeys(ctx, storage.PasskeyRecord{UserID: "alice", Handle: h, CredentialIDs: [][]byte{base}}, 1); !errors.Is(err, storage.ErrInvalid) && !errors.Is(err, storage.ErrDuplicate) {
				t.Fatalf("alice taking eve's handle: %v, want ErrInvalid or ErrDuplicate", err)
			}
			if u, err := st.UserByHandle(ctx, attackHandle('a')); err != nil || u != "alice" {
				t.Fatalf("alice's handle now %q, %v", u, err)
			}
			if u, err := st.UserByHandle(ctx, h); err != nil || u != "eve" {
				t.Fatalf("eve's handle now %q, %v", u, err)
			}
		})
	}
}
