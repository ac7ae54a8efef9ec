package redisstore

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.ChallengeStore = (*Store)(nil)

// A challenge's value in Redis:
//
//	format   1 byte, recordFormat
//	kind     1 byte, kindChallenge
//	expires  8 bytes, Unix milliseconds, big-endian (two's complement)
//	data     the rest
//
// The ID is the key's (prefix+"c:"+hex(ID)), and the key expires (PXAT)
// at the challenge's Expires.
const (
	kindChallenge      = 'c'
	challengeHeaderLen = 1 + 1 + 8
)

func (st *Store) challengeKey(id []byte) string {
	return st.challengePrefix + hex.EncodeToString(id)
}

// PutChallenge stores c, replacing any challenge with its ID, in one round
// trip: a SET with PXAT at c.Expires (to the millisecond, rounded down),
// so that Redis removes a challenge nobody takes when it expires.
func (st *Store) PutChallenge(ctx context.Context, c storage.Challenge) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storage.CheckChallenge(c, time.Now()); err != nil {
		return err
	}
	ms := c.Expires.UnixMilli()
	v := make([]byte, 0, challengeHeaderLen+len(c.Data))
	v = append(v, recordFormat, kindChallenge)
	v = binary.BigEndian.AppendUint64(v, uint64(ms))
	v = append(v, c.Data...)
	err := st.client.SetArgs(ctx, st.challengeKey(c.ID), v, redis.SetArgs{ExpireAt: time.UnixMilli(ms)}).Err()
	if err != nil {
		return callError(ctx, "put challenge", err)
	}
	return nil
}

// TakeChallenge returns the challenge with this ID and removes it in one
// round trip, a GETDEL (Redis 6.2 or later), which Redis runs atomically:
// of concurrent takes, from any number of instances, exactly one gets it.
// A challenge whose Expires is not after the process's clock is
// [storage.ErrNotFound] even if Redis, whose clock may lag, still held it
// (it is removed all the same). The ID and Data returned are the caller's
// own.
func (st *Store) TakeChallenge(ctx context.Context, id []byte) (storage.Challenge, error) {
	if st == nil {
		return storage.Challenge{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.Challenge{}, err
	}
	if err := storage.CheckChallengeID(id); err != nil {
		return storage.Challenge{}, err
	}
	v, err := st.client.GetDel(ctx, st.challengeKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return storage.Challenge{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Challenge{}, callError(ctx, "take challenge", err)
	}
	if len(v) <= challengeHeaderLen || v[0] != recordFormat || v[1] != kindChallenge {
		return storage.Challenge{}, errors.New("redisstore: malformed challenge record")
	}
	ms := int64(binary.BigEndian.Uint64([]byte(v[2:challengeHeaderLen])))
	if ms <= time.Now().UnixMilli() {
		return storage.Challenge{}, storage.ErrNotFound
	}
	return storage.Challenge{
		ID:      append([]byte{}, id...),
		Expires: time.UnixMilli(ms),
		Data:    []byte(v[challengeHeaderLen:]),
	}, nil
}
