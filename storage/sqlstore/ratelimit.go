package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keyhold/keyhold/storage"
)

var (
	_ storage.RateStore    = (*Store)(nil)
	_ storage.LockoutStore = (*Store)(nil)
)

const (
	// rateSweepEvery and rateSweepBatch time the removal of expired rate
	// and lockout rows: every rateSweepEvery-th decision on one of the
	// two tables, counted across the process (whatever Store makes it),
	// also removes up to rateSweepBatch expired rows of that table. A
	// decision adds one row at most, so expired rows are removed faster
	// than rows come.
	rateSweepEvery = 64
	rateSweepBatch = 100
)

// rateQueries are the statements of RateStore and LockoutStore.
//
// A decision is one transaction that reads the key's row, decides in Go
// (storage.DecideRate, storage.DecideAttempt) and writes the new state.
// In SQLite the transaction starts with a write statement (the removal of
// the key's row if it has expired), for the reason given on
// sessionQueries, and holds the database's write lock from then on. In
// PostgreSQL the read is SELECT … FOR UPDATE, which locks the row until
// the commit; a key without a row is inserted with INSERT … ON CONFLICT DO
// NOTHING, and if a concurrent transaction inserted it first (nothing was
// inserted) the row is read and locked again. Only the sweep touches
// other rows, and it skips locked ones, so no two decisions wait for each
// other in a cycle.
type rateQueries struct {
	dropExpiredRate, getRate, insertRate, updateRate, deleteRate, sweepRates                   string
	dropExpiredLockout, getLockout, insertLockout, updateLockout, deleteLockout, sweepLockouts string
}

func buildRateQueries(d Dialect, schema string) *rateQueries {
	rates := qualify(schema) + "keyhold_rate_limits"
	lockouts := qualify(schema) + "keyhold_lockouts"
	forUpdate := ""
	if d == PostgreSQL {
		forUpdate = " FOR UPDATE"
	}
	// sweep returns a statement that removes up to a given number (the
	// second placeholder) of the rows of table whose column is at most
	// the first placeholder.
	sweep := func(table, column string) string {
		if d == PostgreSQL {
			return rebind(d, "DELETE FROM "+table+" WHERE key IN (SELECT key FROM "+table+" WHERE "+column+" <= ? LIMIT ? FOR UPDATE SKIP LOCKED)")
		}
		// DELETE … LIMIT needs a SQLite compile-time option.
		return "DELETE FROM " + table + " WHERE rowid IN (SELECT rowid FROM " + table + " WHERE " + column + " <= ? LIMIT ?)"
	}
	return &rateQueries{
		dropExpiredRate: rebind(d, "DELETE FROM "+rates+" WHERE key = ? AND tat_us <= ?"),
		getRate:         rebind(d, "SELECT tat_us FROM "+rates+" WHERE key = ?"+forUpdate),
		insertRate:      rebind(d, "INSERT INTO "+rates+" (key, tat_us) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"),
		updateRate:      rebind(d, "UPDATE "+rates+" SET tat_us = ? WHERE key = ?"),
		deleteRate:      rebind(d, "DELETE FROM "+rates+" WHERE key = ?"),
		sweepRates:      sweep(rates, "tat_us"),

		dropExpiredLockout: rebind(d, "DELETE FROM "+lockouts+" WHERE key = ? AND expires_ms <= ?"),
		getLockout:         rebind(d, "SELECT failures, locks, locked_until_ms, expires_ms FROM "+lockouts+" WHERE key = ?"+forUpdate),
		insertLockout: rebind(d, "INSERT INTO "+lockouts+" (key, failures, locks, locked_until_ms, expires_ms) VALUES (?, ?, ?, ?, ?) "+
			"ON CONFLICT (key) DO NOTHING"),
		updateLockout: rebind(d, "UPDATE "+lockouts+" SET failures = ?, locks = ?, locked_until_ms = ?, expires_ms = ? WHERE key = ?"),
		deleteLockout: rebind(d, "DELETE FROM "+lockouts+" WHERE key = ?"),
		sweepLockouts: sweep(lockouts, "expires_ms"),
	}
}

// ---- RateStore ----

// TakeRate makes one GCRA decision for key, as [storage.DecideRate]
// computes it from the stored TAT, in one transaction that reads the row
// and writes the new TAT (see the package documentation): of concurrent
// decisions on one key, through any number of Stores on the database, no
// more are allowed than one after the other would be.
//
// A row whose TAT is not after req.Now is absent. Every 64th decision of
// the Store also removes up to 100 such rows of any key, in the same
// transaction.
func (s *Store) TakeRate(ctx context.Context, key []byte, req storage.RateRequest) (storage.RateResult, error) {
	if s == nil {
		return storage.RateResult{}, errNilStore
	}
	if err := storage.ValidRateRequest(key, req); err != nil {
		return storage.RateResult{}, fmt.Errorf("sqlstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return storage.RateResult{}, fmt.Errorf("sqlstore: take rate: %w", err)
	}
	q := s.rq
	now := req.Now.UnixMicro()
	sweep := s.rateWrites.Add(1)%rateSweepEvery == 0
	var res storage.RateResult
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if sweep {
			if _, err := tx.ExecContext(ctx, q.sweepRates, now, rateSweepBatch); err != nil {
				return err
			}
		}
		if s.dialect == SQLite {
			if _, err := tx.ExecContext(ctx, q.dropExpiredRate, key, now); err != nil {
				return err
			}
		}
		for range maxTxAttempts {
			var stored int64
			err := tx.QueryRowContext(ctx, q.getRate, key).Scan(&stored)
			found := err == nil
			if !found && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			allowed, tat := storage.DecideRate(stored, req)
			res = storage.RateResult{Allowed: allowed, TAT: time.UnixMicro(tat)}
			if !allowed {
				return nil
			}
			if found {
				return execOne(ctx, tx, q.updateRate, tat, key)
			}
			n, err := execN(ctx, tx, q.insertRate, key, tat)
			if err != nil || n == 1 {
				return err
			}
			// A concurrent transaction inserted the key's row after the
			// SELECT (PostgreSQL): read and lock that one.
		}
		return fmt.Errorf("rate row re-created %d times during the call", maxTxAttempts)
	})
	if err != nil {
		return storage.RateResult{}, fmt.Errorf("sqlstore: take rate: %w", ctxErr(ctx, err))
	}
	return res, nil
}

// ResetRate removes key's rate row, if there is one.
func (s *Store) ResetRate(ctx context.Context, key []byte) error {
	if s == nil {
		return errNilStore
	}
	if err := storage.ValidRateKey(key); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: reset rate: %w", err)
	}
	if err := s.exec(ctx, s.rq.deleteRate, key); err != nil {
		return fmt.Errorf("sqlstore: reset rate: %w", ctxErr(ctx, err))
	}
	return nil
}

// ---- LockoutStore ----

// BeginAttempt counts one attempt for key unless the account is locked, as
// [storage.DecideAttempt] computes it from the stored state, in one
// transaction that reads the row and writes the new state (see the
// package documentation): of N concurrent attempts on an account without
// state, through any number of Stores on the database, exactly
// min(N, MaxFailures) are admitted.
//
// A row whose Expires is not after req.Now is absent. Every 64th attempt
// of the Store also removes up to 100 such rows of any key, in the same
// transaction.
func (s *Store) BeginAttempt(ctx context.Context, key []byte, req storage.LockoutRequest) (bool, storage.LockoutState, error) {
	if s == nil {
		return false, storage.LockoutState{}, errNilStore
	}
	if err := storage.ValidLockoutRequest(key, req); err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("sqlstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("sqlstore: begin attempt: %w", err)
	}
	q := s.rq
	now := req.Now.UnixMilli()
	sweep := s.lockoutWrites.Add(1)%rateSweepEvery == 0
	var (
		admitted bool
		next     storage.LockoutState
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if sweep {
			if _, err := tx.ExecContext(ctx, q.sweepLockouts, now, rateSweepBatch); err != nil {
				return err
			}
		}
		if s.dialect == SQLite {
			if _, err := tx.ExecContext(ctx, q.dropExpiredLockout, key, now); err != nil {
				return err
			}
		}
		for range maxTxAttempts {
			stored, found, err := getLockout(ctx, tx, q, key)
			if err != nil {
				return err
			}
			admitted, next = storage.DecideAttempt(stored, req)
			if !admitted {
				return nil
			}
			var until int64
			if !next.LockedUntil.IsZero() {
				until = next.LockedUntil.UnixMilli()
			}
			if found {
				return execOne(ctx, tx, q.updateLockout, next.Failures, next.Locks, until, next.Expires.UnixMilli(), key)
			}
			n, err := execN(ctx, tx, q.insertLockout, key, next.Failures, next.Locks, until, next.Expires.UnixMilli())
			if err != nil || n == 1 {
				return err
			}
			// Inserted concurrently (PostgreSQL): read and lock that row.
		}
		return fmt.Errorf("lockout row re-created %d times during the call", maxTxAttempts)
	})
	if err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("sqlstore: begin attempt: %w", ctxErr(ctx, err))
	}
	return admitted, next, nil
}

// RefundAttempt gives back the count of an attempt whose credential was
// never checked, as [storage.DecideRefund] computes it from the stored
// state, in one transaction that reads the row (locked: FOR UPDATE in
// PostgreSQL, the write lock in SQLite) and writes the new state.
func (s *Store) RefundAttempt(ctx context.Context, key []byte, req storage.LockoutRequest, lock int) (bool, storage.LockoutState, error) {
	if s == nil {
		return false, storage.LockoutState{}, errNilStore
	}
	if err := storage.ValidRefund(key, req, lock); err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("sqlstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("sqlstore: refund attempt: %w", err)
	}
	q := s.rq
	var (
		refunded bool
		next     storage.LockoutState
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == SQLite {
			if _, err := tx.ExecContext(ctx, q.dropExpiredLockout, key, req.Now.UnixMilli()); err != nil {
				return err
			}
		}
		stored, found, err := getLockout(ctx, tx, q, key)
		if err != nil || !found {
			return err
		}
		refunded, next = storage.DecideRefund(stored, req, lock)
		if !refunded {
			return nil
		}
		var until int64
		if !next.LockedUntil.IsZero() {
			until = next.LockedUntil.UnixMilli()
		}
		return execOne(ctx, tx, q.updateLockout, next.Failures, next.Locks, until, next.Expires.UnixMilli(), key)
	})
	if err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("sqlstore: refund attempt: %w", ctxErr(ctx, err))
	}
	return refunded, next, nil
}

// getLockout reads (and in PostgreSQL locks) key's lockout row.
func getLockout(ctx context.Context, tx *sql.Tx, q *rateQueries, key []byte) (storage.LockoutState, bool, error) {
	var failures, locks, lockedUntil, expiresMilli int64
	err := tx.QueryRowContext(ctx, q.getLockout, key).Scan(&failures, &locks, &lockedUntil, &expiresMilli)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.LockoutState{}, false, nil
	}
	if err != nil {
		return storage.LockoutState{}, false, err
	}
	st := storage.LockoutState{Failures: int(failures), Locks: int(locks), Expires: time.UnixMilli(expiresMilli)}
	if lockedUntil != 0 {
		st.LockedUntil = time.UnixMilli(lockedUntil)
	}
	return st, true, nil
}

// ResetLockout removes key's lockout row, if there is one.
func (s *Store) ResetLockout(ctx context.Context, key []byte) error {
	if s == nil {
		return errNilStore
	}
	if err := storage.ValidRateKey(key); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: reset lockout: %w", err)
	}
	if err := s.exec(ctx, s.rq.deleteLockout, key); err != nil {
		return fmt.Errorf("sqlstore: reset lockout: %w", ctxErr(ctx, err))
	}
	return nil
}

// execN runs a write statement in tx and returns the number of rows it
// changed.
func execN(ctx context.Context, tx *sql.Tx, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execOne runs a write statement in tx that must change exactly one row:
// the row the transaction has locked.
func execOne(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	n, err := execN(ctx, tx, query, args...)
	if err == nil && n != 1 {
		err = fmt.Errorf("%d rows changed, want 1", n)
	}
	return err
}
