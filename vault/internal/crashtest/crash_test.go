package crashtest

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault"
)

// TestMain runs the child process when the test binary is started as one,
// and otherwise says in one line when the PostgreSQL half skips because
// KEYHOLD_TEST_POSTGRES_DSN is unset.
func TestMain(m *testing.M) {
	if kind := os.Getenv(childEnv); kind != "" {
		childMain(kind) // returns only by being killed, or exits on error
		os.Exit(4)
	}
	testenv.ServiceMain("crashtest", postgresEnv, "PostgreSQL")
	os.Exit(m.Run())
}

const postgresEnv = "KEYHOLD_TEST_POSTGRES_DSN"

// Kills per backend: at least 200 in all with KEYHOLD_LONG_TESTS=1 (see
// testenv.LongEnv; CI sets it), a handful otherwise, enough for one kill
// of each mode (firstModes) and a random one.
const (
	sqliteKills, postgresKills           = 120, 100
	sqliteKillsShort, postgresKillsShort = 6, 6
)

// testHasher verifies in the parent: one Gate for both backends.
var testHasher = func() *kdf.Hasher {
	g, err := kdf.NewGate(kdf.GateConfig{MaxConcurrent: 2, MaxWaiting: 1000})
	if err != nil {
		panic(err)
	}
	h, err := kdf.New(kdf.Config{Gate: g})
	if err != nil {
		panic(err)
	}
	return h
}()

func vaultConfig() vault.Config {
	return vault.Config{Hasher: testHasher, KDF: kdf.InteractiveParams()}
}

// A backend is one database under test.
type backend struct {
	kind   string // "sqlite" or "postgres", as childEnv
	db     string // SQLite path or PostgreSQL DSN
	schema string // PostgreSQL only
}

func (b backend) open(t *testing.T) (*sqlstore.Store, *appDB) {
	t.Helper()
	st, a, err := openBackend(t.Context(), b.kind, b.db, b.schema)
	if err != nil {
		t.Fatalf("open %s: %v", b.kind, err)
	}
	t.Cleanup(func() {
		a.db.Close()
		st.Close()
	})
	return st, a
}

// TestCrash kills a child process that changes passphrases, rotates master
// keys, re-seals and updates records, at random points (SIGKILL), over
// SQLite and PostgreSQL, and checks after every kill that each user
// unlocks with exactly one of the passphrase of the last committed change
// and the one a change was in flight to, and that every record opens
// with its expected contents.
func TestCrash(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL on Windows")
	}
	nSQLite, nPostgres := sqliteKills, postgresKills
	if testing.Short() {
		nSQLite, nPostgres = sqliteKillsShort, postgresKillsShort
	} else {
		nSQLite = testenv.Size(t, sqliteKillsShort, sqliteKills)
		nPostgres = testenv.Size(t, postgresKillsShort, postgresKills)
	}
	var total atomic.Int64
	start := time.Now()
	t.Cleanup(func() {
		t.Logf("total: %d kills across the backends run, in %v", total.Load(), time.Since(start).Round(time.Millisecond))
	})
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		b := backend{kind: "sqlite", db: filepath.Join(t.TempDir(), "keyhold.db")}
		total.Add(int64(runCrashes(t, b, nSQLite)))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		dsn := testenv.Env(t, postgresEnv, "DSN of a PostgreSQL server for the crash test, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		b := backend{kind: "postgres", db: dsn, schema: newSchema(t, dsn)}
		total.Add(int64(runCrashes(t, b, nPostgres)))
	})
}

// newSchema returns a fresh PostgreSQL schema name (the Store creates the
// schema), dropped at cleanup.
func newSchema(t *testing.T, dsn string) string {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin.SetMaxOpenConns(1)
	if err := admin.PingContext(t.Context()); err != nil {
		admin.Close()
		t.Fatalf("connect to PostgreSQL (%s): %v", postgresEnv, err)
	}
	name := "keyhold_crash_" + strings.ToLower(crand.Text())
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// userState is what the parent saw of a user at the last check: none of it
// may go backwards.
type userState struct {
	storeVersion uint64
	keyVersion   uint32
	gens         map[string]int64
}

// stats are what the kills hit, for the report.
type stats struct {
	kills       int
	byMode      map[string]int
	where       map[string]int
	inFlightNew int // a change was in flight, and had committed
	inFlightOld int // a change was in flight, and had not
	// Kills in PutVault, by operation: the write had committed, or not.
	writeCommitted, writeNotCommitted map[string]int
	retiredSeen                       int // checks that found records still under a retired key
	retiredRecs                       int // such records, in all
	childLines                        int
	refused                           int // rotations refused: 16 retired keys, left by interrupted walks
	childRuntime                      time.Duration
}

func runCrashes(t *testing.T, b backend, kills int) int {
	seed := rand.Uint64()
	if s := os.Getenv("KEYHOLD_CRASHTEST_SEED_PARENT"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set KEYHOLD_CRASHTEST_SEED_PARENT to repeat the choices; the kill timing is not reproducible)", seed)
	rng := rand.New(rand.NewPCG(seed, ^seed))
	start := time.Now()
	setup(t, b)
	state := make(map[string]userState, numUsers)
	s := &stats{byMode: map[string]int{}, where: map[string]int{}, writeCommitted: map[string]int{}, writeNotCommitted: map[string]int{}}
	for i := range kills {
		tr := runChild(t, b, rng, s, i)
		if !verify(t, b, state, s) {
			t.Fatalf("after kill %d of %d: the store is not in a committed state (see above)", i+1, kills)
		}
		if tr.wUser != "" {
			// Killed in PutVault: the write took effect whole, or not at
			// all (verify checked that the vault is whole).
			switch got := state[tr.wUser].storeVersion; got {
			case tr.wExpect + 1:
				s.writeCommitted[tr.op]++
			case tr.wExpect:
				s.writeNotCommitted[tr.op]++
			default:
				t.Fatalf("after kill %d: killed in the write of %s's vault version %d, found version %d", i+1, tr.wUser, tr.wExpect+1, got)
			}
		}
	}
	final(t, b)
	report(t, b, s, state, time.Since(start))
	return s.kills
}

// setup creates the users' vaults, records and journal rows.
func setup(t *testing.T, b backend) {
	ctx := t.Context()
	st, a := b.open(t)
	if err := a.createTables(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(st, vaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range numUsers {
		user := userName(i)
		pass := passphrase(user, 0)
		u, err := v.Create(ctx, user, []byte(pass))
		if err != nil {
			t.Fatal(err)
		}
		for k := range recordsPerUser {
			key := recordKey(k)
			sealed, err := u.Seal(plaintext(user, key, 0), recordContext(user, key))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.exec(ctx, "INSERT INTO {records} (user_id, rkey, context, sealed, gen) VALUES (?, ?, ?, ?, 0)", user, key, recordContext(user, key), sealed); err != nil {
				t.Fatal(err)
			}
		}
		u.Lock()
		if err := a.exec(ctx, "INSERT INTO {journal} (user_id, committed, intended, n) VALUES (?, ?, NULL, 0)", user, pass); err != nil {
			t.Fatal(err)
		}
	}
}

// tracker follows the child's progress markers, to tell where a kill
// landed.
type tracker struct {
	ready   bool
	op, sub string
	lines   int
	last    []string // the last few lines, for failure messages
	// The vault write in flight, if sub is one: its user and the version
	// it expected.
	wUser   string
	wExpect uint64
	refused int // rotations refused for too many retired keys
}

func (tr *tracker) add(line string) {
	tr.lines++
	if tr.last = append(tr.last, line); len(tr.last) > 8 {
		tr.last = tr.last[1:]
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "ready":
		tr.ready = true
	case "op":
		tr.op = f[1]
	case "done":
		tr.op = ""
		if len(f) > 2 && f[1] == "rotate" && f[2] == "refused:" {
			tr.refused++
		}
	case "W+":
		tr.sub = "vault write (PutVault in flight)"
		tr.wUser = f[1]
		tr.wExpect, _ = strconv.ParseUint(f[2], 10, 64)
	case "R+":
		tr.sub = "record write"
	case "J+":
		tr.sub = "journal write (" + f[1] + ")"
	case "W-", "R-", "J-":
		tr.sub, tr.wUser = "", ""
	}
}

func (tr *tracker) where() string {
	switch {
	case !tr.ready:
		return "starting up (opening the store)"
	case tr.sub != "" && tr.op != "":
		return tr.sub + " during " + tr.op
	case tr.sub != "":
		return tr.sub
	case tr.op != "":
		return tr.op + ", no write in flight (KDF or crypto)"
	}
	return "between operations"
}

// firstModes are the kill modes (as runChild's k) of the first kills of a
// run, one of each, so that even a short run has every mode; the later
// kills draw theirs at random.
var firstModes = []int{0, 4, 5, 6, 7}

// runChild starts the child, kills it, and records where it was. Half the
// kills come after a random 50 to 400 ms; the others are aimed at the n-th
// vault write or record write the child announces, so that more of them
// land while a write is in flight. The i-th kill of a run takes its mode
// from firstModes while there is one.
func runChild(t *testing.T, b backend, rng *rand.Rand, s *stats, i int) *tracker {
	t.Helper()
	var (
		mode  string
		delay = time.Duration(50+rng.IntN(351)) * time.Millisecond
	)
	// aim, if set, picks the line after which to kill.
	var aim func(line string, tr *tracker) bool
	nth := func(n int, match func(line string, tr *tracker) bool) func(string, *tracker) bool {
		return func(line string, tr *tracker) bool {
			if match(line, tr) {
				n--
			}
			return n == 0
		}
	}
	k := rng.IntN(8)
	if i < len(firstModes) {
		k = firstModes[i]
	}
	switch {
	case k < 4:
		mode = "random time"
	case k == 4:
		mode = "aimed at a vault write"
		aim = nth(1+rng.IntN(4), func(l string, _ *tracker) bool { return strings.HasPrefix(l, "W+ ") })
	case k == 5:
		mode = "aimed at a passphrase change's vault write"
		aim = nth(1+rng.IntN(2), func(l string, tr *tracker) bool { return strings.HasPrefix(l, "W+ ") && tr.op == "change" })
	case k == 6:
		mode = "aimed just after a passphrase change returned"
		aim = nth(1+rng.IntN(2), func(l string, _ *tracker) bool { return strings.HasPrefix(l, "done change ") })
	default:
		mode = "aimed at a record write"
		aim = nth(1+rng.IntN(40), func(l string, _ *tracker) bool { return strings.HasPrefix(l, "R+ ") })
	}
	if aim != nil {
		delay = 5 * time.Second // in case the aimed-at line does not come
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"="+b.kind, dbEnv+"="+b.db, schemaEnv+"="+b.schema,
		seedEnv+"="+strconv.FormatUint(rng.Uint64(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 4096)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var tr tracker
	childFailed := func(why string) {
		cmd.Process.Kill()
		for l := range lines {
			tr.add(l)
		}
		err := cmd.Wait()
		t.Fatalf("child %s (%v); its last lines:\n%s\nstderr:\n%s", why, err, strings.Join(tr.last, "\n"), stderr.String())
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				childFailed("exited before it was killed")
			}
			tr.add(l)
			if strings.HasPrefix(l, "ERR") {
				childFailed("reported an error")
			}
			if aim != nil && aim(l, &tr) {
				if rng.IntN(2) == 0 {
					time.Sleep(time.Duration(rng.IntN(1000)) * time.Microsecond)
				}
				break wait
			}
		case <-timer.C:
			if aim != nil {
				mode = "random time" // the aimed-at write did not come
			}
			break wait
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	for l := range lines {
		tr.add(l)
		if strings.HasPrefix(l, "ERR") {
			t.Fatalf("child reported an error; its last lines:\n%s\nstderr:\n%s", strings.Join(tr.last, "\n"), stderr.String())
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL; its last lines:\n%s\nstderr:\n%s", err, strings.Join(tr.last, "\n"), stderr.String())
	}
	s.kills++
	s.byMode[mode]++
	s.where[tr.where()]++
	s.childLines += tr.lines
	s.refused += tr.refused
	s.childRuntime += time.Since(started)
	return &tr
}

// verify opens the database as a restarted application would and checks
// every user; it resolves each in-flight passphrase change in the journal
// to the passphrase that works. It reports whether everything was in
// order.
func verify(t *testing.T, b backend, state map[string]userState, s *stats) bool {
	t.Helper()
	ctx := t.Context()
	st, a, err := openBackend(ctx, b.kind, b.db, b.schema)
	if err != nil {
		t.Errorf("reopen after the kill: %v", err)
		return false
	}
	defer st.Close()
	defer a.db.Close()
	v, err := vault.New(st, vaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		state          userState
		outcome        string
		retiredRecords int
		err            error
	}
	results := make([]result, numUsers)
	var wg sync.WaitGroup
	for i := range numUsers {
		user := userName(i)
		prev := state[user]
		wg.Go(func() {
			r := &results[i]
			r.state, r.outcome, r.retiredRecords, r.err = verifyUser(ctx, v, st, a, user, prev)
		})
	}
	wg.Wait()
	ok := true
	for i, r := range results {
		if r.err != nil {
			t.Errorf("%s: %v", userName(i), r.err)
			ok = false
			continue
		}
		state[userName(i)] = r.state
		switch r.outcome {
		case "new":
			s.inFlightNew++
		case "old":
			s.inFlightOld++
		}
		if r.retiredRecords > 0 {
			s.retiredSeen++
			s.retiredRecs += r.retiredRecords
		}
	}
	return ok
}

// verifyUser checks one user: exactly one of the committed and the
// intended passphrase unlocks (the committed one if no change was in
// flight), nothing went backwards, and every record opens to the
// plaintext of its generation. outcome is "new" or "old" when a change was
// in flight, and says which passphrase won.
func verifyUser(ctx context.Context, v *vault.Vault, st *sqlstore.Store, a *appDB, user string, prev userState) (_ userState, outcome string, retiredRecords int, _ error) {
	j, err := a.journal(ctx, user)
	if err != nil {
		return prev, "", 0, err
	}
	unlock := func(pass string) (*vault.Unlocked, error) {
		u, err := v.Unlock(ctx, user, []byte(pass))
		if errors.Is(err, vault.ErrUnlockFailed) {
			return nil, nil
		}
		return u, err
	}
	u, err := unlock(j.committed)
	if err != nil {
		return prev, "", 0, fmt.Errorf("Unlock with the committed passphrase: %v", err)
	}
	if j.intended.Valid {
		ui, err := unlock(j.intended.String)
		if err != nil {
			return prev, "", 0, fmt.Errorf("Unlock with the intended passphrase: %v", err)
		}
		switch {
		case u != nil && ui != nil:
			return prev, "", 0, fmt.Errorf("both the committed passphrase and the intended one (change #%d) unlock", j.n)
		case u == nil && ui == nil:
			return prev, "", 0, fmt.Errorf("neither the committed passphrase nor the intended one (change #%d) unlocks", j.n)
		case ui != nil:
			u, outcome = ui, "new"
		default:
			outcome = "old"
		}
	} else if u == nil {
		return prev, "", 0, fmt.Errorf("the committed passphrase (after change #%d) does not unlock", j.n)
	}
	defer u.Lock()

	rec, err := st.GetVault(ctx, user)
	if err != nil {
		return prev, "", 0, err
	}
	next := userState{storeVersion: rec.Version, keyVersion: u.KeyVersion(), gens: make(map[string]int64, recordsPerUser)}
	if next.storeVersion < prev.storeVersion || next.keyVersion < prev.keyVersion {
		return prev, "", 0, fmt.Errorf("went backwards: vault record version %d, key version %d; before the kill %d, %d",
			next.storeVersion, next.keyVersion, prev.storeVersion, prev.keyVersion)
	}

	rows, err := a.db.QueryContext(ctx, a.q("SELECT rkey, context, sealed, gen FROM {records} WHERE user_id = ? ORDER BY rkey"), user)
	if err != nil {
		return prev, "", 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key          string
			rctx, sealed []byte
			gen          int64
		)
		if err := rows.Scan(&key, &rctx, &sealed, &gen); err != nil {
			return prev, "", 0, err
		}
		if !bytes.Equal(rctx, recordContext(user, key)) {
			return prev, "", 0, fmt.Errorf("record %s: context %q", key, rctx)
		}
		pt, err := u.Open(sealed, rctx)
		if err != nil {
			var ver uint32
			if len(sealed) >= 6 {
				ver = binary.BigEndian.Uint32(sealed[2:6])
			}
			return prev, "", 0, fmt.Errorf("record %s (generation %d, sealed under key version %d) does not open with key version %d (retired %v): %v",
				key, gen, ver, u.KeyVersion(), u.RetiredVersions(), err)
		}
		if want := plaintext(user, key, gen); !bytes.Equal(pt, want) {
			return prev, "", 0, fmt.Errorf("record %s opens to %q, want %q", key, pt, want)
		}
		if gen < prev.gens[key] {
			return prev, "", 0, fmt.Errorf("record %s went back to generation %d from %d", key, gen, prev.gens[key])
		}
		if binary.BigEndian.Uint32(sealed[2:6]) != u.KeyVersion() {
			retiredRecords++
		}
		next.gens[key] = gen
	}
	if err := rows.Err(); err != nil {
		return prev, "", 0, err
	}
	if len(next.gens) != recordsPerUser {
		return prev, "", 0, fmt.Errorf("%d records, want %d", len(next.gens), recordsPerUser)
	}

	// Resolve the in-flight change, as the application would on restart.
	if j.intended.Valid {
		pass := j.committed
		if outcome == "new" {
			pass = j.intended.String
		}
		if err := a.exec(ctx, "UPDATE {journal} SET committed = ?, intended = NULL WHERE user_id = ?", pass, user); err != nil {
			return prev, "", 0, fmt.Errorf("resolve journal: %v", err)
		}
	}
	return next, outcome, retiredRecords, nil
}

// final checks that, after all the kills, every vault still works: the
// interrupted walk finishes, the passphrase changes, the key rotates, and
// every record ends up under the current key.
func final(t *testing.T, b backend) {
	t.Helper()
	ctx := t.Context()
	st, a := b.open(t)
	v, err := vault.New(st, vaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range numUsers {
		user := userName(i)
		j, err := a.journal(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		u, err := v.Unlock(ctx, user, []byte(j.committed))
		if err != nil {
			t.Fatalf("%s: final Unlock: %v", user, err)
		}
		src := &records{a: a, user: user}
		walk := func(u *vault.Unlocked) {
			if _, err := u.ReencryptAll(ctx, src, "", nil); err != nil {
				t.Fatalf("%s: ReencryptAll: %v", user, err)
			}
			if err := v.DestroyRetiredKeys(ctx, u); err != nil {
				t.Fatalf("%s: DestroyRetiredKeys: %v", user, err)
			}
		}
		walk(u)
		u.Lock()
		last := passphrase(user, j.n+1)
		if err := v.ChangePassphrase(ctx, user, []byte(j.committed), []byte(last)); err != nil {
			t.Fatalf("%s: final ChangePassphrase: %v", user, err)
		}
		if _, err := v.Unlock(ctx, user, []byte(j.committed)); !errors.Is(err, vault.ErrUnlockFailed) {
			t.Errorf("%s: the replaced passphrase: Unlock = %v, want ErrUnlockFailed", user, err)
		}
		u, _, err = v.RotateMasterKey(ctx, user, []byte(last))
		if err != nil {
			t.Fatalf("%s: final RotateMasterKey: %v", user, err)
		}
		walk(u)
		u.Lock()
		u, err = v.Unlock(ctx, user, []byte(last))
		if err != nil {
			t.Fatalf("%s: Unlock with the final passphrase: %v", user, err)
		}
		if r := u.RetiredVersions(); len(r) != 0 {
			t.Errorf("%s: retired versions %v after DestroyRetiredKeys", user, r)
		}
		batch, cursor := []vault.StoredRecord(nil), ""
		n := 0
		for {
			if batch, cursor, err = src.Next(ctx, cursor); err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 {
				break
			}
			for _, r := range batch {
				n++
				if ver := binary.BigEndian.Uint32(r.Sealed[2:6]); ver != u.KeyVersion() {
					t.Errorf("%s: record %s under key version %d after the walk, want %d", user, r.Key, ver, u.KeyVersion())
				}
				if _, err := u.Open(r.Sealed, r.Context); err != nil {
					t.Errorf("%s: record %s: %v", user, r.Key, err)
				}
			}
		}
		if n != recordsPerUser {
			t.Errorf("%s: %d records at the end, want %d", user, n, recordsPerUser)
		}
		u.Lock()
		if err := a.exec(ctx, "UPDATE {journal} SET committed = ?, n = ? WHERE user_id = ?", last, j.n+1, user); err != nil {
			t.Fatal(err)
		}
	}
}

func report(t *testing.T, b backend, s *stats, state map[string]userState, elapsed time.Duration) {
	t.Helper()
	var w strings.Builder
	fmt.Fprintf(&w, "%s: %d kills in %v (children ran %v in all, %d progress lines)\n", b.kind, s.kills, elapsed.Round(time.Millisecond), s.childRuntime.Round(time.Millisecond), s.childLines)
	for _, m := range slices.Sorted(maps.Keys(s.byMode)) {
		fmt.Fprintf(&w, "  %4d %s\n", s.byMode[m], m)
	}
	fmt.Fprintf(&w, "  where the kills landed:\n")
	for _, k := range slices.Sorted(maps.Keys(s.where)) {
		fmt.Fprintf(&w, "    %4d %s\n", s.where[k], k)
	}
	ops := maps.Clone(s.writeCommitted)
	maps.Copy(ops, s.writeNotCommitted)
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		fmt.Fprintf(&w, "  kills in PutVault during %s: %d found the write committed, %d found it not\n", op, s.writeCommitted[op], s.writeNotCommitted[op])
	}
	fmt.Fprintf(&w, "  passphrase changes in flight at a kill: %d had committed (the new passphrase unlocks), %d had not (the old one does)\n", s.inFlightNew, s.inFlightOld)
	fmt.Fprintf(&w, "  checks that found records still under a retired key (walk interrupted): %d (%d records in all; every one opened)\n", s.retiredSeen, s.retiredRecs)
	fmt.Fprintf(&w, "  rotations refused for too many retired keys (the child then finished the walk): %d\n", s.refused)
	for _, user := range slices.Sorted(maps.Keys(state)) {
		fmt.Fprintf(&w, "  %s: vault record version %d, key version %d at the last check\n", user, state[user].storeVersion, state[user].keyVersion)
	}
	t.Log(w.String())
}
