package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.Store = (*Store)(nil)

var (
	// ErrInsecurePermissions means an existing SQLite database file (or its
	// -wal, -shm or -journal companion) may be read or written by its group
	// or by others. The error returned is a *[PermissionError] naming the
	// file and its mode.
	ErrInsecurePermissions = errors.New("sqlstore: database file is accessible to group or others")

	// ErrSchemaTooNew means the database's schema was migrated by a newer
	// version of keyhold than this one. The store refuses to use it, rather
	// than write records that the newer schema does not expect.
	ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this code")
)

// PermissionError reports a database file that group or others may
// access. It matches [ErrInsecurePermissions] with [errors.Is].
type PermissionError struct {
	Path string      // the file's path
	Mode fs.FileMode // the file's mode
}

// Error names the file and its permission bits, and says how to fix them.
func (e *PermissionError) Error() string {
	return fmt.Sprintf("sqlstore: %s has mode %#o: group or others may access it (chmod 600 it)", e.Path, e.Mode.Perm())
}

// Unwrap returns [ErrInsecurePermissions].
func (e *PermissionError) Unwrap() error { return ErrInsecurePermissions }

// Dialect names the SQL database behind a Store. The zero value is not a
// dialect: [New] refuses it.
type Dialect int

const (
	// SQLite is SQLite 3, through modernc.org/sqlite (driver name "sqlite").
	SQLite Dialect = iota + 1
	// PostgreSQL is PostgreSQL 13 or later, through
	// github.com/jackc/pgx/v5/stdlib (driver name "pgx").
	PostgreSQL
)

// String returns "sqlite" or "postgresql".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case PostgreSQL:
		return "postgresql"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// Defaults selected by the zero values of Config's fields.
const (
	// DefaultBusyTimeout is how long a SQLite statement waits for a lock
	// held by another process before it fails.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultSQLiteReaders is the number of read-only connections
	// OpenSQLite opens at most (writes use one more).
	DefaultSQLiteReaders = 4
	// DefaultPostgresConns is the number of connections OpenPostgres opens
	// at most.
	DefaultPostgresConns = 10
)

// Config configures a Store. The zero value is valid and selects the
// defaults named on each field; [Store.Config] reports them resolved.
type Config struct {
	// Schema is the PostgreSQL schema that holds keyhold's tables; it is
	// created if absent. It must be a lowercase SQL identifier
	// ([a-z_][a-z0-9_]*, at most 63 bytes, not starting with "pg_"). Empty
	// selects the schema the connection's search_path resolves to
	// (usually "public"). SQLite has no schemas: a non-empty Schema is
	// refused there.
	Schema string

	// BusyTimeout is how long a SQLite statement waits for a lock that
	// another process holds before it fails. Zero selects
	// DefaultBusyTimeout. It applies to OpenSQLite only (with New, set
	// busy_timeout in the DSN) and is refused for PostgreSQL.
	BusyTimeout time.Duration

	// MaxOpenConns bounds the connections the Store opens: the read-only
	// connections of OpenSQLite (writes use one more), or the pool of
	// OpenPostgres. Zero selects DefaultSQLiteReaders or
	// DefaultPostgresConns. New does not change the pool of the *sql.DB it
	// is given.
	MaxOpenConns int
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// validate checks cfg for dialect d and returns it with its defaults
// resolved.
func (cfg Config) validate(d Dialect) (Config, error) {
	if cfg.MaxOpenConns < 0 {
		return cfg, fmt.Errorf("sqlstore: MaxOpenConns %d is negative", cfg.MaxOpenConns)
	}
	if cfg.BusyTimeout < 0 {
		return cfg, fmt.Errorf("sqlstore: BusyTimeout %v is negative", cfg.BusyTimeout)
	}
	switch d {
	case SQLite:
		if cfg.Schema != "" {
			return cfg, errors.New("sqlstore: Schema is for PostgreSQL; SQLite has none")
		}
		if cfg.BusyTimeout == 0 {
			cfg.BusyTimeout = DefaultBusyTimeout
		}
		if cfg.BusyTimeout < time.Millisecond {
			return cfg, fmt.Errorf("sqlstore: BusyTimeout %v is below 1ms", cfg.BusyTimeout)
		}
		if cfg.MaxOpenConns == 0 {
			cfg.MaxOpenConns = DefaultSQLiteReaders
		}
	case PostgreSQL:
		if cfg.Schema != "" && (!schemaName.MatchString(cfg.Schema) || strings.HasPrefix(cfg.Schema, "pg_")) {
			return cfg, fmt.Errorf("sqlstore: Schema %q is not a lowercase identifier of at most 63 bytes (or starts with pg_)", cfg.Schema)
		}
		if cfg.BusyTimeout != 0 {
			return cfg, errors.New("sqlstore: BusyTimeout is for SQLite; PostgreSQL has none")
		}
		if cfg.MaxOpenConns == 0 {
			cfg.MaxOpenConns = DefaultPostgresConns
		}
	default:
		return cfg, fmt.Errorf("sqlstore: unknown dialect %v", d)
	}
	return cfg, nil
}

// Store keeps keyhold's state in a SQL database. It implements
// [storage.Store] and is safe for concurrent use; its configuration is
// fixed at construction. Make one with [OpenSQLite], [OpenPostgres] or
// [New].
type Store struct {
	dialect Dialect
	cfg     Config
	// w runs writes, r reads. They are the same *sql.DB except for
	// OpenSQLite, whose writer pool has a single connection.
	w, r *sql.DB
	// owned is true when the Store opened w and r, and Close closes them.
	owned bool
	// vaults and factors are the tables of one record per user.
	vaults, factors recordTable
	pq              passkeyQueries // PasskeyStore's statements
	sq              sessionQueries
	rq              *rateQueries
	cq              challengeQueries
	bq              blobQueries // BlobStore's statements
	// rateWrites and lockoutWrites count the Store's rate and lockout
	// decisions, to time their sweeps of expired rows.
	rateWrites, lockoutWrites atomic.Uint64
	// now is the clock that expiry is compared with: time.Now, except in
	// tests.
	now func() time.Time
	// nextSweep is the Unix millisecond from which the next session or
	// refresh-family write also removes a batch of expired rows.
	nextSweep atomic.Int64
}

// New returns a Store on db, an open database of dialect d, after applying
// the pending migrations (see the package documentation). The caller keeps
// ownership of db: [Store.Close] does not close it, and New does not
// change its pool settings.
//
// Most applications will use [OpenSQLite] or [OpenPostgres] and will not
// need this function. With SQLite, the caller's DSN must set a
// busy_timeout (for example "_pragma=busy_timeout(5000)") and should set
// WAL mode and synchronous=FULL; OpenSQLite also checks the file's
// permissions, which New cannot do.
func New(ctx context.Context, db *sql.DB, d Dialect, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New called with a nil *sql.DB")
	}
	cfg, err := cfg.validate(d)
	if err != nil {
		return nil, err
	}
	return newStore(ctx, db, db, false, d, cfg)
}

// newStore builds a Store on its pools and migrates the database. It does
// not close the pools on failure.
func newStore(ctx context.Context, w, r *sql.DB, owned bool, d Dialect, cfg Config) (*Store, error) {
	s := &Store{
		dialect: d, cfg: cfg, w: w, r: r, owned: owned,
		vaults: buildVaultTable(d, cfg.Schema), factors: buildFactorTable(d, cfg.Schema),
		pq: buildPasskeyQueries(d, cfg.Schema), cq: buildChallengeQueries(d, cfg.Schema),
		bq: buildBlobQueries(d, cfg.Schema),
		sq: buildSessionQueries(d, cfg.Schema), rq: buildRateQueries(d, cfg.Schema),
		now: time.Now,
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Config returns the Store's configuration with its defaults resolved.
func (s *Store) Config() Config {
	if s == nil {
		return Config{}
	}
	return s.cfg
}

// Dialect returns the dialect of the Store's database.
func (s *Store) Dialect() Dialect {
	if s == nil {
		return 0
	}
	return s.dialect
}

// Close closes the connections the Store opened (none for a Store made by
// [New]). Calls after Close fail.
func (s *Store) Close() error {
	if s == nil {
		return errNilStore
	}
	if !s.owned {
		return nil
	}
	var errs []error
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

// qualify returns the prefix that qualifies a table name with schema, or ""
// for the default schema.
func qualify(schema string) string {
	if schema == "" {
		return ""
	}
	// schema matched schemaName, so it needs no escaping.
	return `"` + schema + `".`
}

// rebind turns the ? placeholders of query into PostgreSQL's $1, $2, …
// for dialect PostgreSQL. The queries of this package contain no ? other
// than placeholders.
func rebind(d Dialect, query string) string {
	if d != PostgreSQL {
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

// ctxErr adds ctx's error to err when ctx is done and err does not already
// match it, so that callers can test errors.Is(err, context.Canceled) or
// DeadlineExceeded whatever the driver reported.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}
