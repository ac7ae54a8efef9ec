package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.ChallengeStore = (*Store)(nil)

// challengeSweepBatch is the most expired challenges a put removes.
// Since every put stores one challenge and may remove this many, expired
// challenges that nobody takes do not pile up while challenges are
// being put.
const challengeSweepBatch = 16

// challengeQueries are the statements of ChallengeStore, on the table of
// migration 0007, keyhold_challenges.
type challengeQueries struct {
	put, take, sweep string
}

func buildChallengeQueries(d Dialect, schema string) challengeQueries {
	t := qualify(schema) + "keyhold_challenges"
	sweep := "DELETE FROM " + t + " WHERE id IN (SELECT id FROM " + t + " WHERE expires_ms <= ? LIMIT " + fmt.Sprint(challengeSweepBatch) + ")"
	if d == PostgreSQL {
		// Rows that another transaction holds (being taken or
		// replaced) are skipped rather than waited for.
		sweep = "DELETE FROM " + t + " WHERE id IN (SELECT id FROM " + t + " WHERE expires_ms <= ? LIMIT " + fmt.Sprint(challengeSweepBatch) + " FOR UPDATE SKIP LOCKED)"
	}
	return challengeQueries{
		put: rebind(d, "INSERT INTO "+t+" (id, expires_ms, data) VALUES (?, ?, ?)"+
			" ON CONFLICT (id) DO UPDATE SET expires_ms = excluded.expires_ms, data = excluded.data"),
		take:  rebind(d, "DELETE FROM "+t+" WHERE id = ? RETURNING expires_ms, data"),
		sweep: rebind(d, sweep),
	}
}

// PutChallenge stores c, replacing any challenge with its ID (an upsert),
// and in the same transaction removes up to 16 expired challenges, so
// that challenges never taken do not make the table grow without bound.
// Expires is stored to the millisecond, rounded down.
func (s *Store) PutChallenge(ctx context.Context, c storage.Challenge) error {
	if s == nil {
		return errNilStore
	}
	now := s.now()
	if err := storage.CheckChallenge(c, now); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: put challenge: %w", err)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.cq.put, c.ID, unixMilli(c.Expires), c.Data); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.cq.sweep, unixMilli(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: put challenge: %w", ctxErr(ctx, err))
	}
	return nil
}

// TakeChallenge deletes the challenge with this ID and returns it, in one
// statement (DELETE … RETURNING): of concurrent takes, exactly one deletes
// the row and gets it. A challenge whose Expires is not after the
// process's clock is deleted all the same and is [storage.ErrNotFound],
// whether or not a sweep had reached it. The ID and Data returned are the
// caller's own.
func (s *Store) TakeChallenge(ctx context.Context, id []byte) (storage.Challenge, error) {
	if s == nil {
		return storage.Challenge{}, errNilStore
	}
	if err := storage.CheckChallengeID(id); err != nil {
		return storage.Challenge{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Challenge{}, fmt.Errorf("sqlstore: take challenge: %w", err)
	}
	var (
		expires int64
		data    []byte
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		// Scan into *[]byte copies the driver's bytes.
		return tx.QueryRowContext(ctx, s.cq.take, id).Scan(&expires, &data)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Challenge{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Challenge{}, fmt.Errorf("sqlstore: take challenge: %w", ctxErr(ctx, err))
	}
	if expires <= s.nowMilli() {
		clear(data)
		return storage.Challenge{}, storage.ErrNotFound
	}
	return storage.Challenge{
		ID:      append([]byte{}, id...),
		Expires: time.UnixMilli(expires),
		Data:    data,
	}, nil
}
