package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// OpenPostgres connects to the PostgreSQL database named by dsn (a URL such
// as "postgres://user:password@host:5432/db?sslmode=verify-full", or
// key=value pairs, as understood by pgx), applies the pending migrations in
// [Config.Schema] and returns a Store that owns its connection pool (call
// [Store.Close]).
//
// Errors never contain the DSN's password: a DSN that cannot be parsed is
// reported without the parser's message, which may quote it (errors.As
// still reaches the parser's error, for callers who want it).
func OpenPostgres(ctx context.Context, dsn string, cfg Config) (*Store, error) {
	cfg, err := cfg.validate(PostgreSQL)
	if err != nil {
		return nil, err
	}
	pcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, &errString{msg: "sqlstore: cannot parse the PostgreSQL DSN (the parser's message is withheld: it may quote the password)", err: err}
	}
	db := stdlib.OpenDB(*pcfg)
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		// pgconn's connection errors name host, user and database, never
		// the password.
		return nil, fmt.Errorf("sqlstore: connect to PostgreSQL: %w", ctxErr(ctx, err))
	}
	s, err := newStore(ctx, db, db, true, PostgreSQL, cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// errString is an error whose message is fixed, while Unwrap still gives
// the cause to callers who ask for it on purpose. It keeps messages that
// may contain a password (a DSN parser's) out of Error.
type errString struct {
	msg string
	err error
}

func (e *errString) Error() string { return e.msg }
func (e *errString) Unwrap() error { return e.err }
