package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyhold/keyhold/storage"
)

var (
	_ storage.SessionStore = (*Store)(nil)
	_ storage.RefreshStore = (*Store)(nil)
)

const (
	// sweepInterval is how often a write also removes expired sessions
	// and refresh families of any user, sweepBatch rows of each table at
	// most. A sweep that finds a full batch makes the next write sweep
	// again, so that a backlog is worked off write by write.
	sweepInterval = time.Minute
	sweepBatch    = 256

	// maxTxAttempts bounds the attempts of a write transaction that
	// PostgreSQL aborts with a serialization failure or a deadlock (which
	// the statements below are written to avoid), and of a refresh-family
	// update whose record changes between its two statements.
	maxTxAttempts = 10
)

// sessionQueries are the statements of SessionStore and RefreshStore.
//
// Every write transaction starts with a write statement: a SQLite
// transaction that a pool without _txlock=immediate (see [New]) begins as
// DEFERRED then takes the write lock through the busy handler instead of
// failing to upgrade a stale read snapshot. In PostgreSQL, only the
// statements on the record the call names (its ID) may wait for a row
// lock; the removals of expired rows that follow them skip locked rows
// (FOR UPDATE SKIP LOCKED), so a transaction never waits for a second row
// while it holds a first, and no two transactions wait for each other.
type sessionQueries struct {
	getSession, insertSession, updateSession, getSessionState string
	deleteSession, listSessions, deleteUserSessions           string
	sweepUserSessions, sweepSessions                          string

	getFamily, insertFamily, updateFamily, getFamilyState string
	deleteFamily, deleteUserFamilies                      string
	sweepUserFamilies, sweepFamilies                      string
}

func buildSessionQueries(d Dialect, schema string) sessionQueries {
	sessions := qualify(schema) + "keyhold_sessions"
	families := qualify(schema) + "keyhold_refresh_families"
	// sweep returns a statement that removes the rows of table matched
	// by cond (which ends with the "expires <= ?" placeholder), limit
	// rows at most when limit is true (its placeholder comes last).
	sweep := func(table, cond string, limit bool) string {
		lim := ""
		if limit {
			lim = " LIMIT ?"
		}
		if d == PostgreSQL {
			return rebind(d, "DELETE FROM "+table+" WHERE id IN (SELECT id FROM "+table+" WHERE "+cond+lim+" FOR UPDATE SKIP LOCKED)")
		}
		if !limit {
			return "DELETE FROM " + table + " WHERE " + cond
		}
		// DELETE … LIMIT needs a SQLite compile-time option.
		return "DELETE FROM " + table + " WHERE rowid IN (SELECT rowid FROM " + table + " WHERE " + cond + lim + ")"
	}
	return sessionQueries{
		getSession: rebind(d, "SELECT user_id, version, expires, data FROM "+sessions+" WHERE id = ? AND expires > ?"),
		// expect 0: create the session, or replace an expired one,
		// whoever's it was (an expired session is absent).
		insertSession: rebind(d, "INSERT INTO "+sessions+" (id, user_id, version, expires, data) VALUES (?, ?, 1, ?, ?) "+
			"ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, version = 1, expires = excluded.expires, data = excluded.data "+
			"WHERE keyhold_sessions.expires <= ?"),
		updateSession:      rebind(d, "UPDATE "+sessions+" SET version = ?, expires = ?, data = ? WHERE id = ? AND version = ? AND expires > ? AND user_id = ?"),
		getSessionState:    rebind(d, "SELECT user_id, version FROM "+sessions+" WHERE id = ? AND expires > ?"),
		deleteSession:      rebind(d, "DELETE FROM "+sessions+" WHERE id = ?"),
		listSessions:       rebind(d, "SELECT id, version, expires, data FROM "+sessions+" WHERE user_id = ? AND expires > ?"),
		deleteUserSessions: rebind(d, "DELETE FROM "+sessions+" WHERE user_id = ?"),
		sweepUserSessions:  sweep(sessions, "user_id = ? AND expires <= ?", false),
		sweepSessions:      sweep(sessions, "expires <= ?", true),

		getFamily: rebind(d, "SELECT user_id, version, expires, data FROM "+families+" WHERE id = ? AND expires > ?"),
		// expect 0: create the family, or replace an expired one, whoever's
		// it was (an expired family is absent).
		insertFamily: rebind(d, "INSERT INTO "+families+" (id, user_id, version, expires, data) VALUES (?, ?, 1, ?, ?) "+
			"ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, version = 1, expires = excluded.expires, data = excluded.data "+
			"WHERE keyhold_refresh_families.expires <= ?"),
		updateFamily:       rebind(d, "UPDATE "+families+" SET version = ?, expires = ?, data = ? WHERE id = ? AND version = ? AND expires > ? AND user_id = ?"),
		getFamilyState:     rebind(d, "SELECT user_id, version FROM "+families+" WHERE id = ? AND expires > ?"),
		deleteFamily:       rebind(d, "DELETE FROM "+families+" WHERE id = ?"),
		deleteUserFamilies: rebind(d, "DELETE FROM "+families+" WHERE user_id = ?"),
		sweepUserFamilies:  sweep(families, "user_id = ? AND expires <= ?", false),
		sweepFamilies:      sweep(families, "expires <= ?", true),
	}
}

func checkID(id []byte) error {
	if len(id) != storage.SessionIDLen {
		return fmt.Errorf("%w: ID of %d bytes (want %d)", errBounds, len(id), storage.SessionIDLen)
	}
	return nil
}

func checkSessionData(data []byte) error {
	if len(data) > storage.MaxSessionDataLen {
		return fmt.Errorf("%w: data of %d bytes (want at most %d)", errBounds, len(data), storage.MaxSessionDataLen)
	}
	return nil
}

// unixMilli returns t in Unix milliseconds, rounded down (towards the
// past), clamped to the int64 range for times some 292 million years away.
func unixMilli(t time.Time) int64 {
	switch sec := t.Unix(); {
	case sec >= math.MaxInt64/1000:
		return math.MaxInt64
	case sec <= math.MinInt64/1000:
		return math.MinInt64
	}
	return t.UnixMilli()
}

// nowMilli returns the process clock in Unix milliseconds. A record is
// absent when its stored expiry is at most this value.
func (s *Store) nowMilli() int64 { return unixMilli(s.now()) }

// sweepDue reports whether the write about to run at now should also
// remove a batch of expired rows of any user, and if so makes the writes
// of the next sweepInterval skip it.
func (s *Store) sweepDue(now int64) bool {
	next := s.nextSweep.Load()
	return now >= next && s.nextSweep.CompareAndSwap(next, now+sweepInterval.Milliseconds())
}

// sweep removes at most sweepBatch expired sessions and as many expired
// refresh families, in tx. If either batch was full, the next write
// sweeps again.
func (s *Store) sweep(ctx context.Context, tx *sql.Tx, now int64) error {
	full := false
	for _, q := range []string{s.sq.sweepSessions, s.sq.sweepFamilies} {
		res, err := tx.ExecContext(ctx, q, now, sweepBatch)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		full = full || n >= sweepBatch
	}
	if full {
		s.nextSweep.Store(0)
	}
	return nil
}

// retryable reports whether err is a PostgreSQL serialization failure or
// deadlock, after which the whole transaction may be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// writeTx runs f in a write transaction and commits it. An error from f
// (including storage.ErrConflict and errors wrapping storage.ErrInvalid)
// rolls the transaction back and is returned as it is; a PostgreSQL
// serialization failure or deadlock runs f again in a new transaction.
//
// PostgreSQL transactions run at READ COMMITTED whatever the server's
// default: f's conditional statements rely on each one re-reading the
// latest committed row it waited for.
func (s *Store) writeTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.dialect == PostgreSQL {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	var err error
	for range maxTxAttempts {
		err = s.tryTx(ctx, opts, f)
		if !retryable(err) {
			return err
		}
	}
	return err
}

func (s *Store) tryTx(ctx context.Context, opts *sql.TxOptions, f func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// exec runs one write statement. In PostgreSQL it runs in a transaction of
// writeTx, at READ COMMITTED: at SERIALIZABLE (a server's possible
// default) a statement that meets a concurrent write of the same row fails
// with a serialization failure instead of waiting for it.
func (s *Store) exec(ctx context.Context, query string, args ...any) error {
	if s.dialect != PostgreSQL {
		_, err := s.w.ExecContext(ctx, query, args...)
		return err
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
}

// read runs f, a read, again when PostgreSQL aborts it with a
// serialization failure (possible if the server's default isolation is
// SERIALIZABLE).
func read(f func() error) error {
	var err error
	for range maxTxAttempts {
		if err = f(); !retryable(err) {
			return err
		}
	}
	return err
}

// isSentinel reports whether err is one of the store's answers rather than
// a failure: it is returned without the operation's prefix.
func isSentinel(err error) bool {
	return errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrNotFound)
}

// ---- SessionStore ----

// GetSession returns the session with this ID, or [storage.ErrNotFound] if
// there is none or it has expired by the process clock. The Session's ID
// and Data are the caller's own copies; its Expires is the one stored,
// rounded down to the millisecond (see PutSession), in the local time
// zone and without a monotonic clock reading.
func (s *Store) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	if s == nil {
		return storage.Session{}, errNilStore
	}
	if err := checkID(id); err != nil {
		return storage.Session{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Session{}, fmt.Errorf("sqlstore: get session: %w", err)
	}
	var (
		user             []byte
		version, expires int64
		data             []byte
	)
	// Scan into *[]byte copies the driver's bytes.
	err := read(func() error {
		return s.r.QueryRowContext(ctx, s.sq.getSession, id, s.nowMilli()).Scan(&user, &version, &expires, &data)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Session{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Session{}, fmt.Errorf("sqlstore: get session: %w", ctxErr(ctx, err))
	}
	if version < 1 {
		return storage.Session{}, fmt.Errorf("sqlstore: get session: stored version %d is not positive", version)
	}
	if data == nil {
		data = []byte{}
	}
	return storage.Session{ID: slices.Clone(id), UserID: string(user), Version: uint64(version), Expires: time.UnixMilli(expires), Data: data}, nil
}

// PutSession stores sess with version expect+1 if the stored session has
// version expect and has not expired by the process clock (expect 0: if
// there is none, or it has expired, whoever's it was), and returns
// [storage.ErrConflict] otherwise. sess.Version is ignored. The check and
// the write are one statement (INSERT … ON CONFLICT (id) DO UPDATE …
// WHERE the stored session has expired, or UPDATE … WHERE version =
// expect), so of concurrent calls with the same expect exactly one
// succeeds, and a session deleted since it was read is not re-created.
//
// If the versions match but the stored session belongs to another user,
// nothing is stored and the error wraps [storage.ErrInvalid]; a version
// mismatch is reported as ErrConflict whoever the session belongs to.
//
// Expires is stored in Unix milliseconds, rounded down: a session expires
// up to a millisecond before sess.Expires, never after. Expiry times beyond
// the range of int64 milliseconds (some 292 million years) are clamped. A
// put whose Expires has already passed is checked like any other and, if
// the versions match, leaves the session absent: its row is removed in the
// same transaction.
//
// In the same transaction, PutSession removes the user's expired sessions
// and, about once a minute, a bounded batch of expired sessions and
// refresh families of any user.
func (s *Store) PutSession(ctx context.Context, sess storage.Session, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := checkID(sess.ID); err != nil {
		return err
	}
	if err := checkUserID(sess.UserID); err != nil {
		return err
	}
	if err := checkSessionData(sess.Data); err != nil {
		return err
	}
	if expect >= math.MaxInt64 {
		// As in PutRefreshFamily.
		return storage.ErrConflict
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: put session: %w", err)
	}
	data := sess.Data
	if data == nil {
		data = []byte{} // a nil []byte would be bound as NULL
	}
	id, user := sess.ID, []byte(sess.UserID)
	now, expires := s.nowMilli(), unixMilli(sess.Expires)
	sweep := s.sweepDue(now)
	q := casQueries{what: "session", insert: s.sq.insertSession, update: s.sq.updateSession, state: s.sq.getSessionState}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := s.cas(ctx, tx, q, id, user, sess.UserID, expires, data, expect, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.sq.sweepUserSessions, user, now); err != nil {
			return err
		}
		if sweep {
			return s.sweep(ctx, tx, now)
		}
		return nil
	})
	if err != nil && !isSentinel(err) {
		return fmt.Errorf("sqlstore: put session: %w", ctxErr(ctx, err))
	}
	return err
}

// errInvalidPut is wrapped by PutSession's and PutRefreshFamily's refusals
// to change a record's user.
var errInvalidPut = fmt.Errorf("sqlstore: %w", storage.ErrInvalid)

// DeleteSession removes the session with this ID; if there is none, it
// returns nil.
func (s *Store) DeleteSession(ctx context.Context, id []byte) error {
	if s == nil {
		return errNilStore
	}
	if err := checkID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: delete session: %w", err)
	}
	if err := s.exec(ctx, s.sq.deleteSession, id); err != nil {
		return fmt.Errorf("sqlstore: delete session: %w", ctxErr(ctx, err))
	}
	return nil
}

// ListUserSessions returns the user's sessions that have not expired by
// the process clock, in no particular order, or an empty slice if there
// are none. It returns all of them, however many there are. Each
// Session's ID and Data are the caller's own, and its Expires is rounded
// down to the millisecond as in GetSession.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	if s == nil {
		return nil, errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list sessions: %w", err)
	}
	var out []storage.Session
	err := read(func() error {
		var err error
		out, err = s.listSessions(ctx, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list sessions: %w", ctxErr(ctx, err))
	}
	return out, nil
}

// listSessions is one attempt of ListUserSessions.
func (s *Store) listSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	rows, err := s.r.QueryContext(ctx, s.sq.listSessions, []byte(userID), s.nowMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []storage.Session{}
	for rows.Next() {
		var (
			id               []byte
			version, expires int64
			data             []byte
		)
		if err := rows.Scan(&id, &version, &expires, &data); err != nil {
			return nil, err
		}
		if version < 1 {
			return nil, fmt.Errorf("stored version %d is not positive", version)
		}
		if data == nil {
			data = []byte{}
		}
		out = append(out, storage.Session{ID: id, UserID: userID, Version: uint64(version), Expires: time.UnixMilli(expires), Data: data})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteUserSessions removes every session of the user, in one statement:
// every session committed before the call starts is removed, and a session
// put concurrently may survive.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	if s == nil {
		return errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: delete user sessions: %w", err)
	}
	if err := s.exec(ctx, s.sq.deleteUserSessions, []byte(userID)); err != nil {
		return fmt.Errorf("sqlstore: delete user sessions: %w", ctxErr(ctx, err))
	}
	return nil
}

// ---- RefreshStore ----

// GetRefreshFamily returns the family with this ID, or
// [storage.ErrNotFound] if there is none or it has expired by the process
// clock. ID and Data are the caller's own copies; Expires is rounded down
// to the millisecond as in GetSession.
func (s *Store) GetRefreshFamily(ctx context.Context, id []byte) (storage.RefreshFamily, error) {
	if s == nil {
		return storage.RefreshFamily{}, errNilStore
	}
	if err := checkID(id); err != nil {
		return storage.RefreshFamily{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.RefreshFamily{}, fmt.Errorf("sqlstore: get refresh family: %w", err)
	}
	var (
		user             []byte
		version, expires int64
		data             []byte
	)
	err := read(func() error {
		return s.r.QueryRowContext(ctx, s.sq.getFamily, id, s.nowMilli()).Scan(&user, &version, &expires, &data)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.RefreshFamily{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.RefreshFamily{}, fmt.Errorf("sqlstore: get refresh family: %w", ctxErr(ctx, err))
	}
	if version < 1 {
		return storage.RefreshFamily{}, fmt.Errorf("sqlstore: get refresh family: stored version %d is not positive", version)
	}
	if data == nil {
		data = []byte{}
	}
	return storage.RefreshFamily{ID: slices.Clone(id), UserID: string(user), Version: uint64(version), Expires: time.UnixMilli(expires), Data: data}, nil
}

// PutRefreshFamily stores f with version expect+1 if the stored family has
// version expect and has not expired by the process clock (expect 0: if
// there is none, or it has expired, whoever's it was), and returns
// [storage.ErrConflict] otherwise. f.Version is ignored. The check and the
// write are one statement (INSERT … ON CONFLICT (id) DO UPDATE … WHERE the
// stored family has expired, or UPDATE … WHERE version = expect), so of
// concurrent calls with the same expect exactly one succeeds.
//
// If the versions match but the stored family belongs to another user,
// nothing is stored and the error wraps [storage.ErrInvalid]; a version
// mismatch is reported as ErrConflict whoever the family belongs to.
//
// Expires is stored as in PutSession (Unix milliseconds, rounded down). A
// put whose Expires has already passed is checked like any other and, if
// the versions match, leaves the family absent: its row is removed in the
// same transaction, with the user's other expired families.
//
// In the same transaction, PutRefreshFamily removes the user's expired
// families and, about once a minute, a bounded batch of expired sessions
// and refresh families of any user.
func (s *Store) PutRefreshFamily(ctx context.Context, f storage.RefreshFamily, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := checkID(f.ID); err != nil {
		return err
	}
	if err := checkUserID(f.UserID); err != nil {
		return err
	}
	if err := checkSessionData(f.Data); err != nil {
		return err
	}
	if expect >= math.MaxInt64 {
		// As in PutVault: no family has a version above MaxInt64, and one
		// at MaxInt64 could not grow.
		return storage.ErrConflict
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: put refresh family: %w", err)
	}
	data := f.Data
	if data == nil {
		data = []byte{}
	}
	id, user := f.ID, []byte(f.UserID)
	now, expires := s.nowMilli(), unixMilli(f.Expires)
	sweep := s.sweepDue(now)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		q := casQueries{what: "refresh family", insert: s.sq.insertFamily, update: s.sq.updateFamily, state: s.sq.getFamilyState}
		if err := s.cas(ctx, tx, q, id, user, f.UserID, expires, data, expect, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.sq.sweepUserFamilies, user, now); err != nil {
			return err
		}
		if sweep {
			return s.sweep(ctx, tx, now)
		}
		return nil
	})
	if err != nil && !isSentinel(err) {
		return fmt.Errorf("sqlstore: put refresh family: %w", ctxErr(ctx, err))
	}
	return err
}

// casQueries are the statements of one table's compare-and-swap: insert
// (expect 0), update (expect > 0), and the read of the stored user and
// version that tells a conflict from a change of user.
type casQueries struct {
	what                  string // "session" or "refresh family", for errors
	insert, update, state string
}

// cas is PutSession's and PutRefreshFamily's compare-and-swap, in tx.
func (s *Store) cas(ctx context.Context, tx *sql.Tx, q casQueries, id, user []byte, userID string, expires int64, data []byte, expect uint64, now int64) error {
	if expect == 0 {
		res, err := tx.ExecContext(ctx, q.insert, id, user, expires, data, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 {
			// An unexpired record with this ID exists: its version is not 0.
			return storage.ErrConflict
		}
		return nil
	}
	for range maxTxAttempts {
		res, err := tx.ExecContext(ctx, q.update, int64(expect)+1, expires, data, id, int64(expect), now, user)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		// Nothing was updated: the record is absent or expired, or has
		// another version (conflict), or belongs to another user
		// (invalid). This read is the point at which the call takes
		// effect. Should it find version expect and this user, the record
		// was removed and re-created in between (PostgreSQL; SQLite's
		// write transactions are serial): try again.
		var (
			stored  []byte
			version int64
		)
		err = tx.QueryRowContext(ctx, q.state, id, now).Scan(&stored, &version)
		if errors.Is(err, sql.ErrNoRows) {
			return storage.ErrConflict
		}
		if err != nil {
			return err
		}
		if version < 0 || uint64(version) != expect {
			return storage.ErrConflict
		}
		if string(stored) != userID {
			return fmt.Errorf("%w: the %s belongs to another user", errInvalidPut, q.what)
		}
	}
	return fmt.Errorf("%s re-created %d times during the call", q.what, maxTxAttempts)
}

// DeleteRefreshFamily removes the family with this ID; if there is none,
// it returns nil.
func (s *Store) DeleteRefreshFamily(ctx context.Context, id []byte) error {
	if s == nil {
		return errNilStore
	}
	if err := checkID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: delete refresh family: %w", err)
	}
	if err := s.exec(ctx, s.sq.deleteFamily, id); err != nil {
		return fmt.Errorf("sqlstore: delete refresh family: %w", ctxErr(ctx, err))
	}
	return nil
}

// DeleteUserRefreshFamilies removes every refresh family of the user, in
// one statement, as DeleteUserSessions does for sessions.
func (s *Store) DeleteUserRefreshFamilies(ctx context.Context, userID string) error {
	if s == nil {
		return errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: delete user refresh families: %w", err)
	}
	if err := s.exec(ctx, s.sq.deleteUserFamilies, []byte(userID)); err != nil {
		return fmt.Errorf("sqlstore: delete user refresh families: %w", ctxErr(ctx, err))
	}
	return nil
}
