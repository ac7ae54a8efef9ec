package sqlstore_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/storage/storagetest"
)

// The conformance runs go in parallel with the package's other parallel
// tests: each store is isolated (a file or a schema of its own), and most
// of their time is spent waiting (on PostgreSQL, on expiry), which would
// otherwise hold one of go test ./...'s package slots.

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Store { return newSQLiteStore(t) })
}

func TestConformancePostgreSQL(t *testing.T) {
	postgresDSN(t) // one skip (or failure in CI) rather than one per clause
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Store { return newPostgresStore(t) })
}

func skipOnWindows(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not describe access on Windows; the check is skipped there")
	}
}

func TestSQLiteCreatesPrivateFiles(t *testing.T) {
	skipOnWindows(t)
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyhold.db")
	st := openSQLite(t, path)
	// A write creates the -wal (and -shm) files: they must be private too.
	if err := st.PutVault(t.Context(), "alice", []byte("sealed"), 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), got)
		}
	}
}

func TestSQLiteRefusesInsecurePermissions(t *testing.T) {
	skipOnWindows(t)
	t.Parallel()
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o700, true}, // execute for the owner is odd, but gives no one else access
		{0o644, false},
		{0o640, false},
		{0o604, false},
		{0o620, false},
		{0o602, false},
		{0o610, false},
		{0o666, false},
	} {
		t.Run(fmt.Sprintf("%#o", tc.mode), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "keyhold.db")
			st, err := sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.PutVault(t.Context(), "alice", []byte("sealed"), 0); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			st, err = sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
			if tc.ok {
				if err != nil {
					t.Fatalf("OpenSQLite on a %#o file: %v", tc.mode, err)
				}
				defer st.Close()
				if _, err := st.GetVault(t.Context(), "alice"); err != nil {
					t.Errorf("GetVault after reopening: %v", err)
				}
				return
			}
			if err == nil {
				st.Close()
				t.Fatalf("OpenSQLite opened a %#o file", tc.mode)
			}
			if !errors.Is(err, sqlstore.ErrInsecurePermissions) {
				t.Errorf("OpenSQLite on a %#o file: %v, want ErrInsecurePermissions", tc.mode, err)
			}
			var pe *sqlstore.PermissionError
			if !errors.As(err, &pe) || pe.Path != path || pe.Mode.Perm() != tc.mode {
				t.Errorf("OpenSQLite on a %#o file: error %#v, want a *PermissionError naming the file and its mode", tc.mode, err)
			}
		})
	}
}

// A companion file (left by a crash, or made by someone else) that others
// may read holds database pages too: it is refused like the main file.
func TestSQLiteRefusesInsecureCompanionFiles(t *testing.T) {
	skipOnWindows(t)
	t.Parallel()
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		t.Run(suffix, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "keyhold.db")
			st, err := sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			if err := os.WriteFile(path+suffix, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path+suffix, 0o644); err != nil { // whatever the umask
				t.Fatal(err)
			}
			st, err = sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
			if err == nil {
				st.Close()
				t.Fatalf("OpenSQLite opened a database with a 0644 %s file", suffix)
			}
			var pe *sqlstore.PermissionError
			if !errors.Is(err, sqlstore.ErrInsecurePermissions) || !errors.As(err, &pe) || pe.Path != path+suffix {
				t.Errorf("got %v, want a *PermissionError for %s", err, path+suffix)
			}
		})
	}
}

func TestSQLiteSettings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyhold.db")
	openSQLite(t, path)
	db := rawSQLite(t, path)
	var mode string
	if err := db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode %q, want wal", mode)
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			st, reopen, raw, table := d.open(t)
			n := migrationCount(t, st.Dialect())
			wantVersions(t, appliedVersions(t, raw, table), n)
			if err := st.PutVault(t.Context(), "alice", []byte("sealed"), 0); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				st2, err := reopen(t)
				if err != nil {
					t.Fatalf("reopening: %v", err)
				}
				rec, err := st2.GetVault(t.Context(), "alice")
				if err != nil || rec.Version != 1 || string(rec.Data) != "sealed" {
					t.Errorf("after reopening: %+v, %v", rec, err)
				}
				if err := st2.Close(); err != nil {
					t.Fatal(err)
				}
			}
			wantVersions(t, appliedVersions(t, raw, table), n)
		})
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			st, reopen, raw, table := d.open(t)
			n := migrationCount(t, st.Dialect())
			if err := st.PutVault(t.Context(), "alice", []byte("sealed"), 0); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			// A newer keyhold migrated the database further.
			q := "INSERT INTO " + table("keyhold_schema_migrations") + " (version, name) VALUES (" + strconv.Itoa(n+1) + ", 'from_the_future')"
			if _, err := raw.ExecContext(t.Context(), q); err != nil {
				t.Fatal(err)
			}
			st2, err := reopen(t)
			if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
				if st2 != nil {
					st2.Close()
				}
				t.Fatalf("opening a database at version %d with code that knows %d: %v, want ErrSchemaTooNew", n+1, n, err)
			}
			// Nothing was changed or applied.
			got := appliedVersions(t, raw, table)
			if len(got) != n+1 {
				t.Errorf("applied migrations %v after the refusal", got)
			}
		})
	}
}

// Processes (here: Stores with pools of their own) that open a fresh
// database at the same moment all succeed, and apply each migration once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	const openers = 6
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "keyhold.db")
		stores := openAtOnce(t, openers, func() (*sqlstore.Store, error) {
			return sqlstore.OpenSQLite(t.Context(), path, sqlstore.Config{})
		})
		wantVersions(t, appliedVersions(t, rawSQLite(t, path), func(s string) string { return s }), migrationCount(t, sqlstore.SQLite))
		for _, st := range stores {
			if err := st.PutVault(t.Context(), "alice", []byte("x"), 0); err != nil && !errors.Is(err, storage.ErrConflict) {
				t.Errorf("PutVault: %v", err)
			}
		}
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		dsn := postgresDSN(t)
		schema := newSchema(t, dsn)
		reserveConns(t, openers*2)
		openAtOnce(t, openers, func() (*sqlstore.Store, error) {
			return sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.Config{Schema: schema, MaxOpenConns: 2})
		})
		wantVersions(t, appliedVersions(t, adminDB(t, dsn), func(s string) string { return `"` + schema + `".` + s }), migrationCount(t, sqlstore.PostgreSQL))
	})
}

// openAtOnce calls open from n goroutines released together, and fails
// unless every call succeeds.
func openAtOnce(t *testing.T, n int, open func() (*sqlstore.Store, error)) []*sqlstore.Store {
	t.Helper()
	stores := make([]*sqlstore.Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = open()
		})
	}
	close(start)
	wg.Wait()
	for i, st := range stores {
		if st != nil {
			t.Cleanup(func() { st.Close() })
		}
		if errs[i] != nil {
			t.Errorf("opener %d: %v", i, errs[i])
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return stores
}

// Separate processes open a fresh file at the same moment and race to
// create one record: every process opens, and exactly one wins.
func TestSQLiteProcessesOpenAndRace(t *testing.T) {
	t.Parallel()
	const procs = 4
	path := filepath.Join(t.TempDir(), "keyhold.db")
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Scanner
	}
	children := make([]child, procs)
	for i := range children {
		cmd := helperCommand(t, "race", path)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		children[i] = child{cmd, stdin, bufio.NewScanner(stdout)}
	}
	// Start them all before waiting for any, so that they open at once.
	for _, c := range children {
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range children {
		if !c.out.Scan() || c.out.Text() != "ready" {
			t.Fatalf("process %d: %q, want ready", i, c.out.Text())
		}
	}
	for _, c := range children {
		io.WriteString(c.stdin, "go\n")
	}
	won := 0
	for i, c := range children {
		c.out.Scan()
		switch line := c.out.Text(); line {
		case "won":
			won++
		case "lost":
		default:
			t.Errorf("process %d: %q", i, line)
		}
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d processes created the record, want exactly 1", won, procs)
	}
	wantVersions(t, appliedVersions(t, rawSQLite(t, path), func(s string) string { return s }), migrationCount(t, sqlstore.SQLite))
}

// A process killed (SIGKILL) while it writes loses nothing that PutVault
// reported as written.
func TestSQLiteSurvivesKill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL on Windows")
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyhold.db")
	for round := range 3 {
		cmd := helperCommand(t, "write", path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out := bufio.NewScanner(stdout)
		if !out.Scan() || out.Text() != "ready" {
			t.Fatalf("round %d: helper said %q, want ready", round, out.Text())
		}
		var last uint64
		for out.Scan() && last < 30 {
			v, err := strconv.ParseUint(out.Text(), 10, 64)
			if err != nil {
				t.Fatalf("round %d: helper said %q", round, out.Text())
			}
			last = v
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		// Reopened as the next round's writer would: the version is at
		// least the last one reported, and the data is that version's.
		st := openSQLite(t, path)
		rec, err := st.GetVault(t.Context(), "crash")
		if err != nil {
			t.Fatalf("round %d: GetVault after the kill: %v", round, err)
		}
		if rec.Version < last {
			t.Errorf("round %d: version %d after the kill, but %d was reported written", round, rec.Version, last)
		}
		if want := fmt.Sprintf("version %d", rec.Version); string(rec.Data) != want {
			t.Errorf("round %d: data %q, want %q", round, rec.Data, want)
		}
		st.Close()
		// The next round's helper starts from the version it finds.
		db := rawSQLite(t, path)
		if _, err := db.ExecContext(t.Context(), "DELETE FROM keyhold_vaults"); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

func helperCommand(t *testing.T, mode, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperPathEnv+"="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

// 50 writers race with the same expect, through one Store and through
// several Stores on the same database (which, for SQLite, contend for the
// file lock through the busy handler): exactly one wins each round, and no
// "database is locked" or other error leaks out.
func TestConcurrentCAS(t *testing.T) {
	t.Parallel()
	const writers = 50
	for _, d := range dialects {
		for _, stores := range []int{1, 5} {
			t.Run(fmt.Sprintf("%s/%dstores", d.name, stores), func(t *testing.T) {
				t.Parallel()
				st, reopen, _, _ := d.open(t)
				all := []*sqlstore.Store{st}
				for range stores - 1 {
					s, err := reopen(t)
					if err != nil {
						t.Fatal(err)
					}
					all = append(all, s)
				}
				ctx := t.Context()
				user := "alice"
				for round := range 5 {
					expect := uint64(round)
					errs := raceN(writers, func(i int) error {
						return all[i%len(all)].PutVault(ctx, user, fmt.Appendf(nil, "round %d writer %d", round, i), expect)
					})
					w := oneWinner(t, errs)
					rec, err := st.GetVault(ctx, user)
					if err != nil || rec.Version != expect+1 || string(rec.Data) != fmt.Sprintf("round %d writer %d", round, w) {
						t.Fatalf("round %d: after the race %+v, %v; winner %d", round, rec, err, w)
					}
				}
				// Concurrent deletes of the same version: one deletes, the
				// others find nothing, and all succeed.
				errs := raceN(writers, func(i int) error { return all[i%len(all)].DeleteVault(ctx, user, 5) })
				for i, err := range errs {
					if err != nil {
						t.Errorf("deleter %d: %v", i, err)
					}
				}
				if _, err := st.GetVault(ctx, user); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("GetVault after the deletes: %v, want ErrNotFound", err)
				}
			})
		}
	}
}

func raceN(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner, winners := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
			winners++
		case errors.Is(err, storage.ErrConflict):
		default:
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d writers won, want exactly 1", winners, len(errs))
	}
	return winner
}

// Stores in different schemas do not see each other's records.
func TestPostgresSchemasAreIsolated(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	a, b := newSchema(t, dsn), newSchema(t, dsn)
	reserveConns(t, 2*testConns)
	sa, sb := openPostgres(t, dsn, a), openPostgres(t, dsn, b)
	if err := sa.PutVault(t.Context(), "alice", []byte("in a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.GetVault(t.Context(), "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("schema b sees schema a's record: %v", err)
	}
	if err := sb.PutVault(t.Context(), "alice", []byte("in b"), 0); err != nil {
		t.Errorf("PutVault in schema b: %v", err)
	}
}

func TestNewUsesTheCallersDB(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "keyhold.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		testNew(t, db, sqlstore.SQLite, sqlstore.Config{})
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		dsn := postgresDSN(t)
		schema := newSchema(t, dsn)
		reserveConns(t, 2)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(2)
		defer db.Close()
		testNew(t, db, sqlstore.PostgreSQL, sqlstore.Config{Schema: schema})
	})
}

func testNew(t *testing.T, db *sql.DB, d sqlstore.Dialect, cfg sqlstore.Config) {
	t.Helper()
	st, err := sqlstore.New(t.Context(), db, d, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := st.PutVault(t.Context(), "alice", []byte("sealed"), 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// The caller's pool is still open, and a second New finds the schema
	// in place.
	if err := db.PingContext(t.Context()); err != nil {
		t.Errorf("the caller's *sql.DB after Store.Close: %v", err)
	}
	st, err = sqlstore.New(t.Context(), db, d, cfg)
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	if rec, err := st.GetVault(t.Context(), "alice"); err != nil || rec.Version != 1 {
		t.Errorf("GetVault through a second New: %+v, %v", rec, err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	// PostgreSQL configurations are checked before connecting: this DSN
	// names no server.
	const nowhere = "postgres://keyhold@127.0.0.1:1/none?connect_timeout=1"
	for _, tc := range []struct {
		name string
		open func() (*sqlstore.Store, error)
	}{
		{"SQLite/Schema", func() (*sqlstore.Store, error) {
			return sqlstore.OpenSQLite(ctx, filepath.Join(dir, "a.db"), sqlstore.Config{Schema: "keyhold"})
		}},
		{"SQLite/negative BusyTimeout", func() (*sqlstore.Store, error) {
			return sqlstore.OpenSQLite(ctx, filepath.Join(dir, "b.db"), sqlstore.Config{BusyTimeout: -time.Second})
		}},
		{"SQLite/sub-millisecond BusyTimeout", func() (*sqlstore.Store, error) {
			return sqlstore.OpenSQLite(ctx, filepath.Join(dir, "c.db"), sqlstore.Config{BusyTimeout: time.Microsecond})
		}},
		{"SQLite/negative MaxOpenConns", func() (*sqlstore.Store, error) {
			return sqlstore.OpenSQLite(ctx, filepath.Join(dir, "d.db"), sqlstore.Config{MaxOpenConns: -1})
		}},
		{"SQLite/empty path", func() (*sqlstore.Store, error) {
			return sqlstore.OpenSQLite(ctx, "", sqlstore.Config{})
		}},
		{"PostgreSQL/uppercase Schema", func() (*sqlstore.Store, error) {
			return sqlstore.OpenPostgres(ctx, nowhere, sqlstore.Config{Schema: "Keyhold"})
		}},
		{"PostgreSQL/quote in Schema", func() (*sqlstore.Store, error) {
			return sqlstore.OpenPostgres(ctx, nowhere, sqlstore.Config{Schema: `a"b`})
		}},
		{"PostgreSQL/pg_ Schema", func() (*sqlstore.Store, error) {
			return sqlstore.OpenPostgres(ctx, nowhere, sqlstore.Config{Schema: "pg_keyhold"})
		}},
		{"PostgreSQL/long Schema", func() (*sqlstore.Store, error) {
			return sqlstore.OpenPostgres(ctx, nowhere, sqlstore.Config{Schema: strings.Repeat("k", 64)})
		}},
		{"PostgreSQL/BusyTimeout", func() (*sqlstore.Store, error) {
			return sqlstore.OpenPostgres(ctx, nowhere, sqlstore.Config{BusyTimeout: time.Second})
		}},
		{"New/nil db", func() (*sqlstore.Store, error) {
			return sqlstore.New(ctx, nil, sqlstore.SQLite, sqlstore.Config{})
		}},
		{"New/zero Dialect", func() (*sqlstore.Store, error) {
			db, _ := sql.Open("sqlite", filepath.Join(dir, "e.db"))
			defer db.Close()
			return sqlstore.New(ctx, db, 0, sqlstore.Config{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := tc.open()
			if err == nil {
				st.Close()
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), "sqlstore: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	// Nothing was created for a refused configuration.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused configurations left files: %v", entries)
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	st := newSQLiteStore(t)
	got := st.Config()
	want := sqlstore.Config{BusyTimeout: sqlstore.DefaultBusyTimeout, MaxOpenConns: sqlstore.DefaultSQLiteReaders}
	if got != want {
		t.Errorf("Config() = %+v, want %+v", got, want)
	}
	if st.Dialect() != sqlstore.SQLite || sqlstore.SQLite.String() != "sqlite" || sqlstore.PostgreSQL.String() != "postgresql" {
		t.Errorf("Dialect %v", st.Dialect())
	}
}

// Errors never carry the password of a DSN, whether it cannot be parsed
// or names a server that does not answer.
func TestPostgresErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	const pw = "Sup3r-s3cret-pw"
	for _, dsn := range []string{
		"postgres://keyhold:" + pw + "@127.0.0.1:1/none?connect_timeout=2",
		"postgres://keyhold:" + pw + "@127.0.0.1:notaport/none",
		"postgres://keyhold:" + pw + "@[::1/none",
		"host=127.0.0.1 port=1 user=keyhold password=" + pw + " dbname=none connect_timeout=2",
		"host=127.0.0.1 port=1 user=keyhold password='" + pw + "' dbname=none sslmode=bogus",
	} {
		st, err := sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.Config{})
		if err == nil {
			st.Close()
			t.Errorf("OpenPostgres(%q) succeeded", dsn)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, pw) || !strings.HasPrefix(msg, "sqlstore: ") {
			t.Errorf("OpenPostgres error %q: contains the password or lacks the prefix", msg)
		}
	}
}

func TestCanceledOpen(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "keyhold.db"), sqlstore.Config{})
	if !errors.Is(err, context.Canceled) {
		if st != nil {
			st.Close()
		}
		t.Errorf("OpenSQLite with a canceled context: %v, want context.Canceled", err)
	}
}

// Paths are passed to SQLite as URIs: characters that mean something in a
// URI are escaped, and the file is the one named.
func TestSQLiteOddPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a b?c#d%e&f=g")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "key?hold#%20.db")
	st := openSQLite(t, path)
	if err := st.PutVault(t.Context(), "alice", []byte("sealed"), 0); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Contains(names, "key?hold#%20.db") || !slices.Contains(names, "key?hold#%20.db-wal") {
		t.Errorf("files in the directory: %q", names)
	}
}

// A server whose default isolation is SERIALIZABLE makes PostgreSQL refuse
// racing writes with serialization failures; the store must still report
// them as conflicts (or retry), never as infrastructure errors. Only the
// racing clauses ("Concurrent…", every clause whose calls overlap) can
// meet a serialization failure, and they run always; the rest run
// sequentially, as in TestConformancePostgreSQL, and run here too with
// KEYHOLD_LONG_TESTS=1 (testenv.LongEnv).
func TestConformancePostgreSQLSerializable(t *testing.T) {
	dsn := postgresDSN(t)
	t.Parallel()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	serializable := dsn + sep + "default_transaction_isolation=serializable"
	storagetest.Run(t, func(t *testing.T) storage.Store {
		if clause := t.Name()[strings.LastIndex(t.Name(), "/")+1:]; !strings.HasPrefix(clause, "Concurrent") && !testenv.Long() {
			t.Skipf("no racing calls: runs under SERIALIZABLE only with %s=1 (TestConformancePostgreSQL runs it)", testenv.LongEnv)
		}
		schema := newSchema(t, dsn)
		reserveConns(t, testConns)
		return openPostgres(t, serializable, schema)
	})
}
