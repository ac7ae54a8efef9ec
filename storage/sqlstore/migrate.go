package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/binary"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// The migrations, one directory per dialect. Each file is named
// NNNN_name.sql, versions count up from 1 without gaps, and "{schema}."
// in a file stands for the schema qualifier of Config.Schema. Shipped
// files are never edited: a change to the schema is a new file.
//
//go:embed migrations
var migrationFS embed.FS

// migrationsTable records the versions applied, one row each.
const migrationsTable = "keyhold_schema_migrations"

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns d's migrations in version order.
func migrations(d Dialect) ([]migration, error) {
	dir := "migrations/" + map[Dialect]string{SQLite: "sqlite", PostgreSQL: "postgres"}[d]
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") || len(num) != 4 || rest == "" {
			return nil, fmt.Errorf("sqlstore: migration file %s is not named NNNN_name.sql", name)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("sqlstore: migration file %s has version %d, want %d", name, v, len(ms)+1)
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migrations: %w", err)
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(name, ".sql"), sql: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("sqlstore: no migrations for %v", d)
	}
	return ms, nil
}

// migrate applies the pending migrations in one transaction, or refuses a
// database whose schema is newer than the migrations it knows.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations(s.dialect)
	if err != nil {
		return err
	}
	switch s.dialect {
	case SQLite:
		err = s.migrateSQLite(ctx, ms)
	case PostgreSQL:
		err = s.migratePostgres(ctx, ms)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", ctxErr(ctx, err))
	}
	return nil
}

// execer is what *sql.Tx and *sql.Conn have in common.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// applyPending creates the migrations table if needed, reads the current
// version and applies the migrations after it, recording each. It runs
// inside a transaction that holds the dialect's migration lock.
func (s *Store) applyPending(ctx context.Context, x execer, ms []migration, createTable string) error {
	q := qualify(s.cfg.Schema)
	if _, err := x.ExecContext(ctx, createTable); err != nil {
		return err
	}
	var current int64
	if err := x.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+q+migrationsTable).Scan(&current); err != nil {
		return err
	}
	if current > int64(len(ms)) {
		return fmt.Errorf("%w: the database is at version %d, this code knows versions up to %d", ErrSchemaTooNew, current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := x.ExecContext(ctx, strings.ReplaceAll(m.sql, "{schema}.", q)); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := x.ExecContext(ctx, rebind(s.dialect, "INSERT INTO "+q+migrationsTable+" (version, name) VALUES (?, ?)"), m.version, m.name); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return nil
}

// migrateSQLite runs applyPending in a BEGIN IMMEDIATE transaction: it
// takes the database's write lock before reading the version, so two
// processes that open a fresh file at once apply each migration once (the
// second waits up to busy_timeout, then finds nothing to do).
func (s *Store) migrateSQLite(ctx context.Context, ms []migration) (err error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			if _, err = conn.ExecContext(ctx, "COMMIT"); err == nil {
				return
			}
		}
		// Roll back even if ctx is done; a connection that cannot roll back
		// is discarded rather than returned to the pool mid-transaction.
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return s.applyPending(ctx, conn, ms, `CREATE TABLE IF NOT EXISTS `+migrationsTable+` (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT`)
}

// migrateLockKey is the PostgreSQL advisory lock key that serialises
// migrations of one schema.
func migrateLockKey(schema string) int64 {
	h := sha256.Sum256([]byte("keyhold/v1/sqlstore/migrate\x00" + schema))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// migratePostgres runs applyPending in a transaction that first takes a
// transaction-scoped advisory lock, so that processes migrating the same
// schema at once wait for each other; the lock is released at commit or
// rollback, and by the server if the process dies.
func (s *Store) migratePostgres(ctx context.Context, ms []migration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey(s.cfg.Schema)); err != nil {
		return err
	}
	if s.cfg.Schema != "" {
		// CREATE SCHEMA IF NOT EXISTS would need the CREATE privilege on
		// the database even when the schema exists, so look first.
		var exists bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", s.cfg.Schema).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if _, err := tx.ExecContext(ctx, "CREATE SCHEMA "+strings.TrimSuffix(qualify(s.cfg.Schema), ".")); err != nil {
				return err
			}
		}
	}
	if err := s.applyPending(ctx, tx, ms, `CREATE TABLE IF NOT EXISTS `+qualify(s.cfg.Schema)+migrationsTable+` (
	version    integer     NOT NULL PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return nil
}
