package crashtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the application's tables
	_ "modernc.org/sqlite"             // the "sqlite" driver, for the application's tables

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault"
)

// The child process is this test binary, started with childEnv set; the
// other variables say where the database is.
const (
	childEnv  = "KEYHOLD_CRASHTEST_CHILD"  // "sqlite" or "postgres"
	dbEnv     = "KEYHOLD_CRASHTEST_DB"     // SQLite file path or PostgreSQL DSN
	schemaEnv = "KEYHOLD_CRASHTEST_SCHEMA" // PostgreSQL schema
	seedEnv   = "KEYHOLD_CRASHTEST_SEED"   // seed of the child's choices
)

// The application's data: a few users, each with a passphrase journal row
// and recordsPerUser sealed records.
const (
	numUsers       = 3
	recordsPerUser = 24
	walkBatch      = 5
)

func userName(i int) string { return fmt.Sprintf("user%d", i) }

// passphrase returns the user's n-th passphrase (the 0th is the one the
// vault was created with).
func passphrase(user string, n int64) string {
	return fmt.Sprintf("crash test passphrase %s #%d", user, n)
}

func recordKey(i int) string { return fmt.Sprintf("r%02d", i) }

func recordContext(user, key string) []byte { return []byte("crash/" + user + "/" + key) }

// plaintext is what record key of user holds at generation gen: the
// generation is stored in clear next to the sealed record, and changes
// with it in one UPDATE, so a torn or stale record shows.
func plaintext(user, key string, gen int64) []byte {
	return fmt.Appendf(nil, "record %s/%s, generation %d", user, key, gen)
}

// appDB is the application's own tables, next to keyhold's in the same
// database: crash_journal (each user's passphrase, committed and
// intended) and crash_records (the sealed records).
type appDB struct {
	db      *sql.DB
	dialect sqlstore.Dialect
	prefix  string // schema qualification, PostgreSQL only
}

// q qualifies the table names {journal} and {records} and rebinds the ?
// placeholders for PostgreSQL.
func (a *appDB) q(query string) string {
	query = strings.NewReplacer("{journal}", a.prefix+"crash_journal", "{records}", a.prefix+"crash_records").Replace(query)
	if a.dialect != sqlstore.PostgreSQL {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (a *appDB) createTables(ctx context.Context) error {
	blob, integer := "BLOB", "INTEGER"
	if a.dialect == sqlstore.PostgreSQL {
		blob, integer = "BYTEA", "BIGINT"
	}
	for _, stmt := range []string{
		"CREATE TABLE {journal} (user_id TEXT PRIMARY KEY, committed TEXT NOT NULL, intended TEXT, n " + integer + " NOT NULL)",
		"CREATE TABLE {records} (user_id TEXT NOT NULL, rkey TEXT NOT NULL, context " + blob + " NOT NULL, sealed " + blob + " NOT NULL, gen " + integer + " NOT NULL, PRIMARY KEY (user_id, rkey))",
	} {
		if _, err := a.db.ExecContext(ctx, a.q(stmt)); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
	}
	return nil
}

// journal is one user's passphrase journal row.
type journal struct {
	committed string         // set by the last change known to have succeeded
	intended  sql.NullString // set before a change, cleared after it succeeded
	n         int64          // changes attempted
}

func (a *appDB) journal(ctx context.Context, user string) (journal, error) {
	var j journal
	err := a.db.QueryRowContext(ctx, a.q("SELECT committed, intended, n FROM {journal} WHERE user_id = ?"), user).Scan(&j.committed, &j.intended, &j.n)
	if err != nil {
		return j, fmt.Errorf("journal of %s: %w", user, err)
	}
	return j, nil
}

// exec runs a statement that must change exactly one row.
func (a *appDB) exec(ctx context.Context, query string, args ...any) error {
	res, err := a.db.ExecContext(ctx, a.q(query), args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%d rows changed, want 1", n)
	}
	return nil
}

// openBackend opens keyhold's Store and the application's tables.
func openBackend(ctx context.Context, kind, dbArg, schema string) (*sqlstore.Store, *appDB, error) {
	switch kind {
	case "sqlite":
		st, err := sqlstore.OpenSQLite(ctx, dbArg, sqlstore.Config{})
		if err != nil {
			return nil, nil, err
		}
		abs, err := filepath.Abs(dbArg)
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?mode=rw&_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		db.SetMaxOpenConns(1)
		return st, &appDB{db: db, dialect: sqlstore.SQLite}, nil
	case "postgres":
		st, err := sqlstore.OpenPostgres(ctx, dbArg, sqlstore.Config{Schema: schema, MaxOpenConns: 2})
		if err != nil {
			return nil, nil, err
		}
		db, err := sql.Open("pgx", dbArg)
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		db.SetMaxOpenConns(2)
		return st, &appDB{db: db, dialect: sqlstore.PostgreSQL, prefix: `"` + schema + `".`}, nil
	}
	return nil, nil, fmt.Errorf("unknown backend %q", kind)
}

// records is a user's crash_records as a vault.RecordSource.
type records struct {
	a    *appDB
	user string
	mark func(string, ...any) // progress markers (the child's), or nil
}

func (r *records) Next(ctx context.Context, cursor string) ([]vault.StoredRecord, string, error) {
	rows, err := r.a.db.QueryContext(ctx, r.a.q("SELECT rkey, context, sealed FROM {records} WHERE user_id = ? AND rkey > ? ORDER BY rkey LIMIT "+strconv.Itoa(walkBatch)), r.user, cursor)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var batch []vault.StoredRecord
	for rows.Next() {
		var s vault.StoredRecord
		if err := rows.Scan(&s.Key, &s.Context, &s.Sealed); err != nil {
			return nil, "", err
		}
		batch = append(batch, s)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(batch) == 0 {
		return nil, cursor, nil
	}
	return batch, batch[len(batch)-1].Key, nil
}

func (r *records) Replace(ctx context.Context, s vault.StoredRecord, resealed []byte) error {
	if r.mark != nil {
		r.mark("R+ %s", s.Key)
	}
	err := r.a.exec(ctx, "UPDATE {records} SET sealed = ? WHERE user_id = ? AND rkey = ? AND sealed = ?", resealed, r.user, s.Key, s.Sealed)
	if r.mark != nil {
		r.mark("R- %s", s.Key)
	}
	return err
}

// markedStore prints a marker around every vault write, so that the parent
// knows whether a kill landed in one.
type markedStore struct {
	storage.VaultStore
	mark func(string, ...any)
}

func (m markedStore) PutVault(ctx context.Context, userID string, data []byte, expect uint64) error {
	m.mark("W+ %s %d", userID, expect)
	err := m.VaultStore.PutVault(ctx, userID, data, expect)
	m.mark("W- %s %v", userID, err)
	return err
}

// child is the process that gets killed.
type child struct {
	ctx context.Context
	v   *vault.Vault
	a   *appDB
	rng *rand.Rand
}

// mark writes one progress line to stdout, unbuffered: the parent reads
// where the child was when it was killed.
func mark(format string, args ...any) {
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

// fail reports an error the parent treats as a test failure: the child is
// only ever supposed to stop by being killed.
func fail(format string, args ...any) {
	mark("ERR "+format, args...)
	os.Exit(3)
}

// childMain opens the database and changes passphrases, rotates master
// keys and updates records forever, in a random order, until it is killed.
func childMain(kind string) {
	ctx := context.Background()
	seed, _ := strconv.ParseUint(os.Getenv(seedEnv), 10, 64)
	st, a, err := openBackend(ctx, kind, os.Getenv(dbEnv), os.Getenv(schemaEnv))
	if err != nil {
		fail("open: %v", err)
	}
	h, err := kdf.New(kdf.Config{})
	if err != nil {
		fail("kdf: %v", err)
	}
	v, err := vault.New(markedStore{st, mark}, vault.Config{Hasher: h, KDF: kdf.InteractiveParams()})
	if err != nil {
		fail("vault: %v", err)
	}
	c := &child{ctx: ctx, v: v, a: a, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	mark("ready")
	for {
		user := userName(c.rng.IntN(numUsers))
		switch k := c.rng.IntN(20); {
		case k < 8:
			c.changePassphrase(user)
		case k < 15:
			c.rotate(user)
		default:
			c.appWrite(user)
		}
	}
}

// changePassphrase journals the new passphrase as intended, changes it,
// and journals it as committed.
func (c *child) changePassphrase(user string) {
	j, err := c.a.journal(c.ctx, user)
	if err != nil {
		fail("%v", err)
	}
	if j.intended.Valid {
		fail("journal of %s holds an unresolved change", user)
	}
	next := passphrase(user, j.n+1)
	mark("J+ intend %s", user)
	if err := c.a.exec(c.ctx, "UPDATE {journal} SET intended = ?, n = ? WHERE user_id = ?", next, j.n+1, user); err != nil {
		fail("journal intended passphrase of %s: %v", user, err)
	}
	mark("J- intend %s", user)
	mark("op change %s", user)
	if err := c.v.ChangePassphrase(c.ctx, user, []byte(j.committed), []byte(next)); err != nil {
		fail("ChangePassphrase(%s): %v", user, err)
	}
	mark("done change %s", user)
	mark("J+ commit %s", user)
	if err := c.a.exec(c.ctx, "UPDATE {journal} SET committed = ?, intended = NULL WHERE user_id = ?", next, user); err != nil {
		fail("journal committed passphrase of %s: %v", user, err)
	}
	mark("J- commit %s", user)
}

func (c *child) committed(user string) []byte {
	j, err := c.a.journal(c.ctx, user)
	if err != nil {
		fail("%v", err)
	}
	if j.intended.Valid {
		fail("journal of %s holds an unresolved change", user)
	}
	return []byte(j.committed)
}

// rotate rotates the user's master key, re-seals every record and
// destroys the retired keys.
func (c *child) rotate(user string) {
	pass := c.committed(user)
	mark("op rotate %s", user)
	u, _, err := c.v.RotateMasterKey(c.ctx, user, pass)
	if errors.Is(err, vault.ErrInvalidInput) {
		// Too many retired keys, left by walks that earlier kills
		// interrupted: finish them first, as an application would.
		mark("done rotate %s refused: %v", user, err)
		c.appWrite(user)
		return
	}
	if err != nil {
		fail("RotateMasterKey(%s): %v", user, err)
	}
	mark("done rotate %s %d", user, u.KeyVersion())
	c.walkAndDestroy(u)
}

func (c *child) walkAndDestroy(u *vault.Unlocked) {
	user := u.UserID()
	mark("op walk %s", user)
	p, err := u.ReencryptAll(c.ctx, &records{a: c.a, user: user, mark: mark}, "", nil)
	if err != nil {
		fail("ReencryptAll(%s): %v", user, err)
	}
	if p.Seen != recordsPerUser {
		fail("ReencryptAll(%s) saw %d records, want %d", user, p.Seen, recordsPerUser)
	}
	mark("done walk %s %d", user, p.Resealed)
	mark("op destroy %s", user)
	if err := c.v.DestroyRetiredKeys(c.ctx, u); err != nil {
		fail("DestroyRetiredKeys(%s): %v", user, err)
	}
	mark("done destroy %s", user)
}

// appWrite unlocks the vault, finishes a walk an earlier kill interrupted,
// and rewrites one record with its next generation, as an application
// updating a user's data would.
func (c *child) appWrite(user string) {
	pass := c.committed(user)
	mark("op unlock %s", user)
	u, err := c.v.Unlock(c.ctx, user, pass)
	if err != nil {
		fail("Unlock(%s): %v", user, err)
	}
	mark("done unlock %s", user)
	defer u.Lock()
	if len(u.RetiredVersions()) > 0 {
		c.walkAndDestroy(u)
	}
	key := recordKey(c.rng.IntN(recordsPerUser))
	mark("op update %s", user)
	var gen int64
	if err := c.a.db.QueryRowContext(c.ctx, c.a.q("SELECT gen FROM {records} WHERE user_id = ? AND rkey = ?"), user, key).Scan(&gen); err != nil {
		fail("read record %s/%s: %v", user, key, err)
	}
	sealed, err := u.Seal(plaintext(user, key, gen+1), recordContext(user, key))
	if err != nil {
		fail("Seal: %v", err)
	}
	mark("R+ %s", key)
	if err := c.a.exec(c.ctx, "UPDATE {records} SET sealed = ?, gen = ? WHERE user_id = ? AND rkey = ? AND gen = ?", sealed, gen+1, user, key, gen); err != nil {
		fail("update record %s/%s: %v", user, key, err)
	}
	mark("R- %s", key)
	mark("done update %s", user)
}
