package sqlstore_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the tests' own connections

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
)

// TestMain runs the helper processes of the multi-process tests when the
// test binary is started as one, and otherwise says in one line when the
// PostgreSQL tests skip because KEYHOLD_TEST_POSTGRES_DSN is unset.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode, os.Getenv(helperPathEnv)))
	}
	testenv.ServiceMain("sqlstore", postgresEnv, "PostgreSQL")
	code := m.Run()
	if admin != nil {
		admin.Close()
	}
	os.Exit(code)
}

// ---- SQLite ----

func newSQLiteStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	return openSQLite(t, filepath.Join(t.TempDir(), "keyhold.db"))
}

func openSQLite(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// rawSQLite opens the file with the driver directly, for checks and
// tampering behind the Store's back.
func rawSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// ---- PostgreSQL ----

const postgresEnv = "KEYHOLD_TEST_POSTGRES_DSN"

func postgresDSN(t *testing.T) string {
	t.Helper()
	return testenv.Env(t, postgresEnv, "DSN of a PostgreSQL server for the sqlstore tests, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// testConns is the pool size of each PostgreSQL Store the tests open, and
// connBudget the connections all of them may hold at once: the tests run
// in parallel, and the server's max_connections (100 by default) is
// shared with the admin pool and with whatever else runs.
const (
	testConns  = 4
	connBudget = 60
)

var (
	budgetMu   sync.Mutex
	budgetCond = sync.NewCond(&budgetMu)
	budgetUsed int

	adminOnce sync.Once
	admin     *sql.DB
	adminErr  error
)

// reserveConns waits until n connections fit in connBudget and reserves
// them until t's cleanup. A test reserves everything it needs in one call,
// so that tests waiting for one another cannot deadlock.
func reserveConns(t *testing.T, n int) {
	t.Helper()
	budgetMu.Lock()
	for budgetUsed+n > connBudget {
		budgetCond.Wait()
	}
	budgetUsed += n
	budgetMu.Unlock()
	t.Cleanup(func() {
		budgetMu.Lock()
		budgetUsed -= n
		budgetMu.Unlock()
		budgetCond.Broadcast()
	})
}

// adminDB returns the tests' own connection pool, for creating and dropping
// schemas and for checks behind the Store's back.
func adminDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	adminOnce.Do(func() {
		admin, adminErr = sql.Open("pgx", dsn)
		if adminErr == nil {
			admin.SetMaxOpenConns(2)
			adminErr = admin.PingContext(t.Context())
		}
	})
	if adminErr != nil {
		t.Fatalf("connect to PostgreSQL (%s): %v", postgresEnv, adminErr)
	}
	return admin
}

// newSchema returns the name of a schema of the test's own, which does not
// exist yet (the Store creates it) and is dropped at cleanup.
func newSchema(t *testing.T, dsn string) string {
	t.Helper()
	db := adminDB(t, dsn)
	name := "keyhold_test_" + strings.ToLower(rand.Text())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// newPostgresStore returns a Store in a fresh schema, or skips (fails in
// CI) without a server.
func newPostgresStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	dsn := postgresDSN(t)
	schema := newSchema(t, dsn) // dropped after the Store is closed
	reserveConns(t, testConns)
	return openPostgres(t, dsn, schema)
}

// openPostgres opens a Store on schema, closed at cleanup. The caller has
// reserved its connections.
func openPostgres(t *testing.T, dsn, schema string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.Config{Schema: schema, MaxOpenConns: testConns})
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// ---- both ----

// dialectCase is one dialect under test: a fresh Store, and a way to look
// at (and tamper with) the database behind it.
type dialectCase struct {
	name string
	// open returns a Store on a fresh database, and a function that
	// reopens the same database (with a Store closed at cleanup).
	open func(t *testing.T) (st *sqlstore.Store, reopen func(t *testing.T) (*sqlstore.Store, error), raw *sql.DB, table func(string) string)
}

var dialects = []dialectCase{
	{"SQLite", func(t *testing.T) (*sqlstore.Store, func(t *testing.T) (*sqlstore.Store, error), *sql.DB, func(string) string) {
		path := filepath.Join(t.TempDir(), "keyhold.db")
		st := openSQLite(t, path)
		reopen := func(t *testing.T) (*sqlstore.Store, error) {
			st, err := sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
			if err == nil {
				t.Cleanup(func() { st.Close() })
			}
			return st, err
		}
		return st, reopen, rawSQLite(t, path), func(s string) string { return s }
	}},
	{"PostgreSQL", func(t *testing.T) (*sqlstore.Store, func(t *testing.T) (*sqlstore.Store, error), *sql.DB, func(string) string) {
		dsn := postgresDSN(t)
		schema := newSchema(t, dsn)
		reserveConns(t, 2*testConns) // the Store and one reopened at a time
		st := openPostgres(t, dsn, schema)
		reopen := func(t *testing.T) (*sqlstore.Store, error) {
			st, err := sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.Config{Schema: schema, MaxOpenConns: testConns})
			if err == nil {
				t.Cleanup(func() { st.Close() })
			}
			return st, err
		}
		return st, reopen, adminDB(t, dsn), func(s string) string { return `"` + schema + `".` + s }
	}},
}

// migrationCount returns the number of migration files of a dialect.
func migrationCount(t *testing.T, d sqlstore.Dialect) int {
	t.Helper()
	dir := map[sqlstore.Dialect]string{sqlstore.SQLite: "sqlite", sqlstore.PostgreSQL: "postgres"}[d]
	files, err := filepath.Glob(filepath.Join("migrations", dir, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files in migrations/%s: %v", dir, err)
	}
	return len(files)
}

// appliedVersions returns the versions recorded in the migrations table.
func appliedVersions(t *testing.T, db *sql.DB, table func(string) string) []int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT version FROM "+table("keyhold_schema_migrations")+" ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantVersions(t *testing.T, got []int, n int) {
	t.Helper()
	ok := len(got) == n
	for i := range got {
		ok = ok && got[i] == i+1
	}
	if !ok {
		t.Errorf("applied migrations %v, want 1 to %d once each", got, n)
	}
}

// ---- helper processes ----

const (
	helperEnv     = "KEYHOLD_SQLSTORE_HELPER"
	helperPathEnv = "KEYHOLD_SQLSTORE_HELPER_PATH"
)

// helperMain runs in a child process. Modes:
//
//	race: open the database at path, wait for "go" on stdin, then try to
//	      create the record of user "race" and print "won" or "lost".
//	write: open the database and update user "crash" forever, printing each
//	      version once PutVault has returned.
func helperMain(mode, path string) int {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, path, sqlstore.Config{})
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	defer st.Close()
	fmt.Println("ready")
	switch mode {
	case "race":
		if line, _ := bufio.NewReader(os.Stdin).ReadString('\n'); line != "go\n" {
			fmt.Println("no go")
			return 1
		}
		switch err := st.PutVault(ctx, "race", []byte(path), 0); {
		case err == nil:
			fmt.Println("won")
		case errors.Is(err, storage.ErrConflict):
			fmt.Println("lost")
		default:
			fmt.Println("error:", err)
			return 1
		}
	case "write":
		for v := uint64(0); ; v++ {
			if err := st.PutVault(ctx, "crash", fmt.Appendf(nil, "version %d", v+1), v); err != nil {
				fmt.Println("error:", err)
				return 1
			}
			fmt.Println(v + 1)
		}
	default:
		fmt.Println("unknown mode", mode)
		return 1
	}
	return 0
}
