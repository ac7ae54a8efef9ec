package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
)

// OpenSQLite opens the SQLite database file at path, creating it with mode
// 0600 if it does not exist, applies the pending migrations and returns a
// Store that owns its connections (call [Store.Close]).
//
// It refuses, with a *[PermissionError] matching [ErrInsecurePermissions],
// an existing file, or its -wal, -shm or -journal companion, whose mode
// gives any access to group or others (see the package documentation for
// the connection settings and why).
func OpenSQLite(ctx context.Context, path string, cfg Config) (*Store, error) {
	cfg, err := cfg.validate(SQLite)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("sqlstore: empty SQLite path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, err
	}
	for _, p := range []string{abs, abs + "-wal", abs + "-shm", abs + "-journal"} {
		if err := checkPrivate(p); err != nil {
			return nil, err
		}
	}

	// mode=rw: SQLite must not create the file (createPrivate did, with
	// the right mode); if it has vanished since, fail. SQLite creates the
	// -wal and -shm files with the main file's mode.
	uriPath := filepath.ToSlash(abs)
	if !strings.HasPrefix(uriPath, "/") {
		uriPath = "/" + uriPath // file:///C:/… on Windows
	}
	base := "file:" + (&url.URL{Path: uriPath}).EscapedPath() + "?mode=rw&_busy_timeout=" + strconv.FormatInt(cfg.BusyTimeout.Milliseconds(), 10)
	// The writer: one connection, so that this process's writers queue in
	// database/sql (honouring their contexts) instead of contending for
	// SQLite's lock. synchronous=FULL syncs the WAL at every commit.
	// secure_delete overwrites what a DELETE removes (a deleted vault
	// record's slots, a session's sealed keys) with zeros, instead of
	// leaving it in the page's free space or on the free list.
	w, err := sql.Open("sqlite", base+"&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate&_pragma=secure_delete(1)")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Open the writer's connection now: it switches a fresh file to WAL
	// mode before any reader connects.
	if err := pingWriter(ctx, w, cfg.BusyTimeout); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", abs, ctxErr(ctx, err))
	}
	// The readers: read-only connections, which in WAL mode read the last
	// committed state while a write is in progress.
	r, err := sql.Open("sqlite", base+"&_foreign_keys=1&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", abs, err)
	}
	r.SetMaxOpenConns(cfg.MaxOpenConns)
	r.SetMaxIdleConns(cfg.MaxOpenConns)
	s, err := newStore(ctx, w, r, true, SQLite, cfg)
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	return s, nil
}

// pingWriter opens the writer's connection. Switching a fresh file to
// WAL takes an exclusive lock, and SQLite answers SQLITE_BUSY at once,
// without waiting in its busy handler, when another process opening the
// same file holds a lock meanwhile: the first connection is retried until
// busyTimeout has passed.
func pingWriter(ctx context.Context, w *sql.DB, busyTimeout time.Duration) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := w.PingContext(ctx)
		if err == nil || !sqliteBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sqliteBusy reports SQLITE_BUSY or SQLITE_LOCKED (any extended code).
func sqliteBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == 5 || code == 6
}

// createPrivate creates the file at path with mode 0600 if it does not
// exist. An empty file is a valid, empty SQLite database.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create database file: %w", err)
	}
	// The umask may have removed bits: set exactly 0600.
	if runtime.GOOS != "windows" {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create %s: %w", path, err)
	}
	// Make the new directory entry durable; SQLite does the same for the
	// -wal file it creates. Not every file system can sync a directory,
	// so this is best effort.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// checkPrivate returns a *PermissionError if the file at path exists and
// group or others have any access to it. A missing file passes.
func checkPrivate(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("sqlstore: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return &PermissionError{Path: path, Mode: fi.Mode()}
	}
	return nil
}
