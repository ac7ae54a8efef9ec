package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/storage/sqlstore"
)

// Where the app keeps its state. By default, everything is in one SQLite
// file (config.DBPath): keyhold's store (sqlstore.OpenSQLite) and the
// app's own tables, through a pool of the app's own (openAppDB).
//
// With config.PostgresDSN, both go to PostgreSQL instead: keyhold's
// tables (vaults, second factors, passkeys, the private notes' blobs,
// and the sessions, limits and challenges unless Redis keeps those) in
// the schema the DSN's search_path resolves to, and the app's tables
// (users, notes, keys_to_show, totp_codes_saved, app_secrets) next to them.
//
// With config.RedisURL, the short-lived state every request reads goes
// to Redis (package storage/redisstore, under config.RedisPrefix):
// sessions, rate limits, lockouts and the passkey ceremonies' challenges.
// Vault records, second factors, passkeys and blobs stay in SQL, where
// an eviction or a fail-over that drops the last writes cannot lose
// them (see redisstore's package documentation).
//
// Several instances of the app can share one PostgreSQL and one Redis
// (examples/multi runs two): everything they must agree on is there,
// except the TOTP key file (config.TOTPKeyPath), which each must be
// given a copy of.

// DefaultRedisPrefix is the prefix of the app's keys in Redis when
// config.RedisPrefix is empty.
const DefaultRedisPrefix = "keyhold-webapp:"

// keyholdStores holds each store keyhold's packages take, from the
// adapter that keeps it (see above).
type keyholdStores struct {
	storage.VaultStore
	storage.FactorStore
	storage.PasskeyStore
	storage.BlobStore
	storage.ChallengeStore
	storage.SessionStore
	storage.RefreshStore
	storage.RateStore
	storage.LockoutStore
}

// The stores each part of the app is built on (setUpLimits, setUpTOTP,
// setUpPasskeys, setUpZK): the interfaces it needs, not an adapter.
type (
	limitStores interface {
		storage.RateStore
		storage.LockoutStore
	}
	totpStores interface {
		storage.FactorStore
		storage.LockoutStore
	}
	passkeyStores interface {
		storage.PasskeyStore
		storage.ChallengeStore
		storage.RateStore
		storage.LockoutStore
	}
	zkStores interface {
		storage.BlobStore
		storage.RateStore
	}
)

// openStores opens keyhold's stores and the app's database as cfg says,
// and returns a function that closes them all.
func openStores(ctx context.Context, cfg config) (_ keyholdStores, _ *appDB, _ func() error, err error) {
	var closers []func() error
	cleanup := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	var sqlStore *sqlstore.Store
	var db *appDB
	if cfg.PostgresDSN != "" {
		if sqlStore, err = sqlstore.OpenPostgres(ctx, cfg.PostgresDSN, sqlstore.Config{}); err != nil {
			return keyholdStores{}, nil, nil, err
		}
		closers = append(closers, sqlStore.Close)
		if db, err = openPostgresAppDB(ctx, cfg.PostgresDSN, cfg.Logger); err != nil {
			return keyholdStores{}, nil, nil, err
		}
	} else {
		// OpenSQLite creates the file with mode 0600 (and refuses one that
		// others can read) and owns its connections.
		if sqlStore, err = sqlstore.OpenSQLite(ctx, cfg.DBPath, sqlstore.Config{}); err != nil {
			return keyholdStores{}, nil, nil, err
		}
		closers = append(closers, sqlStore.Close)
		if db, err = openAppDB(ctx, cfg.DBPath); err != nil {
			return keyholdStores{}, nil, nil, err
		}
	}
	closers = append(closers, db.Close)
	st := keyholdStores{
		VaultStore: sqlStore, FactorStore: sqlStore, PasskeyStore: sqlStore, BlobStore: sqlStore,
		ChallengeStore: sqlStore, SessionStore: sqlStore, RefreshStore: sqlStore, RateStore: sqlStore, LockoutStore: sqlStore,
	}
	if cfg.RedisURL != "" {
		rs, closeRedis, err := openRedis(ctx, cfg.RedisURL, cfg.RedisPrefix, cfg.Logger)
		if err != nil {
			return keyholdStores{}, nil, nil, err
		}
		closers = append(closers, closeRedis)
		st.SessionStore, st.RefreshStore, st.RateStore, st.LockoutStore, st.ChallengeStore = rs, rs, rs, rs, rs
	}
	return st, db, cleanup, nil
}

// openRedis connects to the Redis server at rawURL (redis:// or rediss://,
// as go-redis's ParseURL reads it) and returns a redisstore.Store under
// prefix (DefaultRedisPrefix if empty), and a function that closes the
// client. It pings the server, so that a wrong URL fails at start-up.
// Errors never quote the URL, which may hold a password.
func openRedis(ctx context.Context, rawURL, prefix string, logger *slog.Logger) (*redisstore.Store, func() error, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, nil, errors.New("cannot parse the Redis URL (redis://[user:password@]host:port/db, or rediss:// for TLS; the parser's message is withheld: it may quote the password)")
	}
	if host, _, _ := net.SplitHostPort(opts.Addr); opts.Network != "unix" && !localHost(host) && !verifiedTLS(opts.TLSConfig) {
		logger.Warn("webapp.storage_unprotected", "store", "redis", "addr", opts.Addr,
			"reason", "the sessions and the Redis password cross the network without a verified TLS connection: use rediss:// (without skip_verify)")
	}
	// Requests' deadlines reach the Redis calls (see redisstore's
	// "Contexts").
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	st, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		// go-redis's connection errors name the address, not the password.
		return nil, nil, fmt.Errorf("connect to Redis at %s: %w", opts.Addr, err)
	}
	return st, client.Close, nil
}

// An appDB is the app's own database (users, notes, keys_to_show,
// app_secrets): a *sql.DB whose queries are written with "?"
// placeholders for both dialects. On PostgreSQL, each "?" outside a
// quoted string or identifier becomes $1, $2, … before the query is sent.
type appDB struct {
	db       *sql.DB
	postgres bool
}

// errNotText refuses a query argument that is a string PostgreSQL's text
// cannot hold: a zero byte, or bytes that are not UTF-8. Such strings
// come only from a request (a note's ID in its address: /notes/%FF),
// never from a row, so on PostgreSQL the query would fail with an error
// (a 500) where SQLite finds no row. The app refuses them on both, before
// the query, with a 400 page: the same answer whatever the storage.
var errNotText = &userError{status: 400, msg: "That address or form holds characters this app does not accept (a zero byte, or bytes that are not UTF-8)."}

// checkArgs returns errNotText if a string among args holds a zero byte
// or is not UTF-8.
func checkArgs(args []any) error {
	for _, a := range args {
		if s, ok := a.(string); ok && (!utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
			return errNotText
		}
	}
	return nil
}

// An appRow is sql.Row's Scan, or the error that refused the query's
// arguments (checkArgs).
type appRow struct {
	row *sql.Row
	err error
}

// Scan is sql.Row's Scan, or the error that refused the arguments.
func (r *appRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.row.Scan(dest...)
}

// ExecContext is sql.DB's, with the query's placeholders rebound.
func (d *appDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	return d.db.ExecContext(ctx, d.rebind(query), args...)
}

// QueryContext is sql.DB's, with the query's placeholders rebound.
func (d *appDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	return d.db.QueryContext(ctx, d.rebind(query), args...)
}

// QueryRowContext is sql.DB's, with the query's placeholders rebound.
func (d *appDB) QueryRowContext(ctx context.Context, query string, args ...any) *appRow {
	if err := checkArgs(args); err != nil {
		return &appRow{err: err}
	}
	return &appRow{row: d.db.QueryRowContext(ctx, d.rebind(query), args...)}
}

// BeginTx starts a transaction whose queries are rebound as the appDB's.
func (d *appDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*appTx, error) {
	tx, err := d.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &appTx{tx: tx, postgres: d.postgres}, nil
}

// Close closes the pool.
func (d *appDB) Close() error { return d.db.Close() }

func (d *appDB) rebind(query string) string {
	if !d.postgres {
		return query
	}
	return rebindDollar(query)
}

// An appTx is a transaction on an appDB, with the same rebinding.
type appTx struct {
	tx       *sql.Tx
	postgres bool
}

// ExecContext is sql.Tx's, with the query's placeholders rebound.
func (t *appTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	return t.tx.ExecContext(ctx, t.rebind(query), args...)
}

// QueryContext is sql.Tx's, with the query's placeholders rebound.
func (t *appTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	return t.tx.QueryContext(ctx, t.rebind(query), args...)
}

// QueryRowContext is sql.Tx's, with the query's placeholders rebound.
func (t *appTx) QueryRowContext(ctx context.Context, query string, args ...any) *appRow {
	if err := checkArgs(args); err != nil {
		return &appRow{err: err}
	}
	return &appRow{row: t.tx.QueryRowContext(ctx, t.rebind(query), args...)}
}

// Commit commits the transaction.
func (t *appTx) Commit() error { return t.tx.Commit() }

// Rollback aborts the transaction.
func (t *appTx) Rollback() error { return t.tx.Rollback() }

func (t *appTx) rebind(query string) string {
	if !t.postgres {
		return query
	}
	return rebindDollar(query)
}

// rebindDollar turns the "?" placeholders of query into PostgreSQL's $1,
// $2, …, leaving alone those inside '…' strings, "…" identifiers and
// -- comments. (The app's SQL uses no ? operator of PostgreSQL's.)
func rebindDollar(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte   // the quote we are inside of, or 0
	comment := false // inside a -- comment
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case comment:
			comment = c != '\n'
		case quote != 0:
			if c == quote { // a doubled quote closes and reopens: the same result
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			comment = true
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// openAppDB opens the same SQLite file through a connection pool of the
// app's own, and creates the app's tables. We chose one file over a second
// users database: one file to back up and keep private, and notes can
// reference users. sqlstore owns its connections, so we do not share them;
// SQLite serialises the two pools' writes with its file lock, and the busy
// timeout makes each wait for the other rather than fail. The settings are
// sqlstore's: WAL, synchronous=FULL, foreign keys on; mode=rw because
// OpenSQLite has already created the file with the right mode.
func openAppDB(ctx context.Context, path string) (*appDB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // file:///C:/… on Windows
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: p}).EscapedPath()+
		"?mode=rw&_busy_timeout=5000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one connection: plenty for an example, and no lock contention within the pool
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, err
	}
	// Databases made before notes had versions: their notes are version 0
	// (sealed without one), and still open.
	if _, err := db.ExecContext(ctx, "SELECT version FROM notes LIMIT 0"); err != nil {
		if _, err := db.ExecContext(ctx, "ALTER TABLE notes ADD COLUMN version INTEGER NOT NULL DEFAULT 0"); err != nil {
			db.Close()
			return nil, err
		}
	}
	return &appDB{db: db}, nil
}

// openPostgresAppDB opens a pool of the app's own on the PostgreSQL
// database of dsn and creates the app's tables (postgresSchema) where the
// connection's search_path puts them, next to keyhold's. Two instances
// starting together take turns (an advisory lock held for the
// transaction), so neither trips over the other's CREATE.
func openPostgresAppDB(ctx context.Context, dsn string, logger *slog.Logger) (*appDB, error) {
	pcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("cannot parse the PostgreSQL DSN (the parser's message is withheld: it may quote the password)")
	}
	if host, ok := postgresUnverified(pcfg); ok {
		logger.Warn("webapp.storage_unprotected", "store", "postgres", "host", host,
			"reason", "the connection may go without TLS, or without checking the server's certificate (sslmode prefer, the default, allow, require or disable): someone on the network could read and change what the app stores, and the password; use sslmode=verify-full")
	}
	db := stdlib.OpenDB(*pcfg)
	db.SetMaxOpenConns(8)
	d := &appDB{db: db, postgres: true}
	if err := d.createPostgresSchema(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// appSchemaLockKey is the advisory lock key of the app's schema creation
// (any constant of the app's own: keyhold's migrations take another).
const appSchemaLockKey = 0x6b65796877656261 // "keyhweba"

func (d *appDB) createPostgresSchema(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("app tables: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(appSchemaLockKey)); err != nil {
		return fmt.Errorf("app tables: %w", err)
	}
	pg := postgresSchema(schema)
	for stmt := range strings.SplitSeq(pg, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("app tables: %w", err)
		}
	}
	// CREATE TABLE IF NOT EXISTS keeps a table of the same name that
	// another program made in this schema (users, notes: common names,
	// and "public" is often shared): the app would then read its rows
	// (another program's users and password hashes) or fail on its
	// columns. A table of ours has exactly our columns; anything else is
	// refused, by name.
	for table, want := range appColumns(pg) {
		rows, err := tx.QueryContext(ctx, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1", table)
		if err != nil {
			return fmt.Errorf("app tables: %w", err)
		}
		got := map[string]string{}
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				rows.Close()
				return fmt.Errorf("app tables: %w", err)
			}
			got[name] = typ
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("app tables: %w", err)
		}
		for name, typ := range got {
			if want[name] != typ {
				return fmt.Errorf("app tables: the schema holds a table %q that is not the app's (its column %q, %s): give the app a schema of its own (search_path in the DSN)", table, name, typ)
			}
		}
		for name := range want {
			if _, ok := got[name]; !ok {
				return fmt.Errorf("app tables: the schema holds a table %q that is not the app's (no column %q): give the app a schema of its own (search_path in the DSN)", table, name)
			}
		}
	}
	return tx.Commit()
}

var (
	createTable = regexp.MustCompile(`(?s)CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\);`)
	columnDef   = regexp.MustCompile(`(?m)^\s*(\w+)\s+(TEXT|BIGINT|BYTEA)\b`)
)

// appColumns reads the tables of the app's PostgreSQL schema and their
// columns, as information_schema names their types (text, bigint, bytea).
func appColumns(pg string) map[string]map[string]string {
	tables := map[string]map[string]string{}
	for _, m := range createTable.FindAllStringSubmatch(pg, -1) {
		cols := map[string]string{}
		for _, c := range columnDef.FindAllStringSubmatch(m[2], -1) {
			cols[c[1]] = strings.ToLower(c[2])
		}
		tables[m[1]] = cols
	}
	return tables
}

var (
	strictTables = regexp.MustCompile(`\)\s*STRICT\s*;`)
	blobType     = regexp.MustCompile(`\bBLOB\b`)
	integerType  = regexp.MustCompile(`\bINTEGER\b`)
)

// postgresSchema is the app's SQLite schema in PostgreSQL's words: BYTEA
// for BLOB, BIGINT for INTEGER (SQLite's are 64-bit), and no STRICT. The
// schema therefore keeps to what both read the same once translated: no
// INTEGER PRIMARY KEY meant as an automatic row ID, no AUTOINCREMENT, and
// no ";" but between statements.
func postgresSchema(sqlite string) string {
	s := strictTables.ReplaceAllString(sqlite, ");")
	s = blobType.ReplaceAllString(s, "BYTEA")
	return integerType.ReplaceAllString(s, "BIGINT")
}

// postgresUnverified returns a host of pcfg (the primary or a fallback)
// that is not on this machine and that pgx may reach without TLS or
// without checking its certificate: every sslmode but verify-ca and
// verify-full (pgx checks verify-ca's chain itself, in
// VerifyPeerCertificate).
func postgresUnverified(pcfg *pgx.ConnConfig) (string, bool) {
	if !localHost(pcfg.Host) && !verifiedTLS(pcfg.TLSConfig) {
		return pcfg.Host, true
	}
	for _, f := range pcfg.Fallbacks {
		if !localHost(f.Host) && !verifiedTLS(f.TLSConfig) {
			return f.Host, true
		}
	}
	return "", false
}

// localHost reports a host on this machine: localhost, a loopback
// address, or a Unix socket's directory.
func localHost(host string) bool {
	if strings.HasPrefix(host, "/") || strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// verifiedTLS reports a TLS configuration that checks the server's
// certificate.
func verifiedTLS(c *tls.Config) bool {
	return c != nil && (!c.InsecureSkipVerify || c.VerifyPeerCertificate != nil)
}
