package sqlstore

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// Values outside the bounds of package storage are refused before any
// query runs: on a closed Store the error is the bounds error, not the
// pool's "database is closed".
func TestBoundsCheckedBeforeTheDatabase(t *testing.T) {
	boundsCheckedBeforeTheDatabase(t, "Vault", storage.MaxVaultDataLen,
		func(st *Store, ctx context.Context, userID string) error {
			_, err := st.GetVault(ctx, userID)
			return err
		},
		(*Store).PutVault, (*Store).DeleteVault)
}

// boundsCheckedBeforeTheDatabase checks, on a closed Store, that get, put
// and del (the methods Get<kind>, Put<kind> and Delete<kind>) refuse an
// empty or over-long user ID, and put data over maxLen, with the bounds
// error; and that put refuses an expect of math.MaxUint64 with
// ErrConflict, without a query too.
func boundsCheckedBeforeTheDatabase(
	t *testing.T, kind string, maxLen int,
	get func(st *Store, ctx context.Context, userID string) error,
	put func(st *Store, ctx context.Context, userID string, data []byte, expect uint64) error,
	del func(st *Store, ctx context.Context, userID string, expect uint64) error,
) {
	t.Helper()
	st, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "keyhold.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	long := strings.Repeat("a", storage.MaxUserIDLen+1)
	tooBig := make([]byte, maxLen+1)
	for name, call := range map[string]func() error{
		"Get" + kind + "/empty user ID":    func() error { return get(st, ctx, "") },
		"Get" + kind + "/long user ID":     func() error { return get(st, ctx, long) },
		"Put" + kind + "/empty user ID":    func() error { return put(st, ctx, "", []byte("x"), 0) },
		"Put" + kind + "/long user ID":     func() error { return put(st, ctx, long, []byte("x"), 0) },
		"Put" + kind + "/too much data":    func() error { return put(st, ctx, "alice", tooBig, 0) },
		"Delete" + kind + "/empty user ID": func() error { return del(st, ctx, "", 0) },
		"Delete" + kind + "/long user ID":  func() error { return del(st, ctx, long, 0) },
	} {
		if err := call(); !errors.Is(err, errBounds) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("%s: %v, want the bounds error", name, err)
		}
	}
	// A version that cannot exist is a conflict, found without a query too.
	if err := put(st, ctx, "alice", nil, math.MaxUint64); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Put%s(expect MaxUint64) on a closed Store: %v, want ErrConflict", kind, err)
	}
}

func TestMigrationFilesAreWellFormed(t *testing.T) {
	for _, d := range []Dialect{SQLite, PostgreSQL} {
		ms, err := migrations(d)
		if err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		for i, m := range ms {
			if m.version != i+1 || !strings.Contains(m.sql, "{schema}.") {
				t.Errorf("%v migration %s: version %d at position %d, or no {schema}. qualifier", d, m.name, m.version, i)
			}
		}
	}
	// Both dialects have the same migrations, by number and name.
	s, _ := migrations(SQLite)
	p, _ := migrations(PostgreSQL)
	if len(s) != len(p) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL ones", len(s), len(p))
	}
	for i := range s {
		if s[i].name != p[i].name {
			t.Errorf("migration %d is %s for SQLite, %s for PostgreSQL", i+1, s[i].name, p[i].name)
		}
	}
}

func TestRebind(t *testing.T) {
	q := "UPDATE t SET a = ?, b = ? WHERE c = ?"
	if got := rebind(PostgreSQL, q); got != "UPDATE t SET a = $1, b = $2 WHERE c = $3" {
		t.Errorf("rebind(PostgreSQL) = %q", got)
	}
	if got := rebind(SQLite, q); got != q {
		t.Errorf("rebind(SQLite) = %q", got)
	}
}
