package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// storage is where a run's web app keeps its state: the SQLite file in
// the run's directory (zero value), or a PostgreSQL schema and a Redis
// key prefix of the run's own, made by newStorage and removed by cleanup.
type storage struct {
	name        string // "sqlite" or "postgres+redis"
	dsn         string // the app's DSN: the base DSN with search_path set to schema
	schema      string
	baseDSN     string
	redisURL    string
	redisPrefix string
}

// newStorage prepares the storage of one run. With a PostgreSQL DSN it
// creates a fresh schema (named loadgen_ and random letters); with a Redis
// URL it chooses a fresh key prefix. Either without the other is refused:
// the load generator measures the two configurations the app documents,
// everything in SQLite, or PostgreSQL with Redis.
func newStorage(ctx context.Context, baseDSN, redisURL string) (storage, error) {
	if baseDSN == "" && redisURL == "" {
		return storage{name: "sqlite"}, nil
	}
	if baseDSN == "" || redisURL == "" {
		return storage{}, errors.New("give both a PostgreSQL DSN and a Redis URL, or neither (SQLite)")
	}
	id := strings.ToLower(rand.Text()[:12])
	st := storage{name: "postgres+redis", baseDSN: baseDSN, schema: "loadgen_" + id, redisURL: redisURL, redisPrefix: "keyhold-loadgen-" + id + ":"}
	dsn, err := withSearchPath(baseDSN, st.schema)
	if err != nil {
		return storage{}, err
	}
	st.dsn = dsn
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, baseDSN)
	if err != nil {
		return storage{}, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{st.schema}.Sanitize()); err != nil {
		return storage{}, fmt.Errorf("postgres: creating schema: %w", err)
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		st.cleanup()
		return storage{}, fmt.Errorf("redis: %w", err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	if err := rc.Ping(ctx).Err(); err != nil {
		st.cleanup()
		return storage{}, fmt.Errorf("redis: %w", err)
	}
	return st, nil
}

// withSearchPath returns dsn (a URL or key=value pairs, as pgx reads
// them) with search_path set to schema.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("postgres DSN: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}

// cleanup drops the run's schema and deletes its Redis keys (SCAN of its
// prefix, then UNLINK; never a flush). It reports what it removed. Call
// it after the app has stopped.
func (st storage) cleanup() (string, error) {
	if st.schema == "" {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	conn, err := pgx.Connect(ctx, st.baseDSN)
	if err == nil {
		_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{st.schema}.Sanitize()+" CASCADE")
		conn.Close(ctx)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("postgres: dropping schema %s: %w", st.schema, err))
	}
	deleted, err := deleteKeys(ctx, st.redisURL, st.redisPrefix)
	if err != nil {
		errs = append(errs, fmt.Errorf("redis: deleting keys %s*: %w", st.redisPrefix, err))
	}
	return fmt.Sprintf("dropped schema %s, deleted %d Redis keys under %s", st.schema, deleted, st.redisPrefix), errors.Join(errs...)
}

// deleteKeys deletes the keys under prefix (which holds no glob
// characters) and returns how many it deleted.
func deleteKeys(ctx context.Context, redisURL, prefix string) (int, error) {
	if redisURL == "" || prefix == "" || strings.ContainsAny(prefix, `*?[]\`) {
		return 0, nil
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return 0, err
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	n := 0
	var cursor uint64
	for {
		keys, next, err := rc.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return n, err
		}
		if len(keys) > 0 {
			if err := rc.Unlink(ctx, keys...).Err(); err != nil {
				return n, err
			}
			n += len(keys)
		}
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}

// countKeys returns how many keys are under prefix (for the tests).
func countKeys(ctx context.Context, redisURL, prefix string) (int, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return 0, err
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	n := 0
	var cursor uint64
	for {
		keys, next, err := rc.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return n, err
		}
		n += len(keys)
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}
