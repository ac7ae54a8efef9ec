package redisstore_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/storagetest"
)

func TestChallengeConformance(t *testing.T) {
	storagetest.RunChallengeStore(t, func(t *testing.T) storage.ChallengeStore { return newEnv(t).st })
}

func (e env) challengeKey(id []byte) string { return e.prefix + "c:" + hex.EncodeToString(id) }

// A challenge's key lives PXAT its Expires, and is gone once taken.
func TestChallengeKeyExpiresAtExpires(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	id := bytes.Repeat([]byte{7}, storage.ChallengeIDLen)
	expires := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond)
	if err := e.st.PutChallenge(ctx, storage.Challenge{ID: id, Expires: expires, Data: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	at, err := e.rdb.PExpireTime(ctx, e.challengeKey(id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got := time.UnixMilli(int64(at / time.Millisecond)); !got.Equal(expires) {
		t.Errorf("PEXPIRETIME %v, want %v", got, expires)
	}
	if _, err := e.st.TakeChallenge(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e.exists(t, e.challengeKey(id)) {
		t.Error("a taken challenge's key still exists")
	}
}

// A challenge whose Expires has passed by the process's clock is absent
// even while Redis still holds it (a server clock that lags, an expiry
// not yet processed): the take fails closed, and removes the key.
func TestChallengeExpiredByCallersClockFailsClosed(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	id := bytes.Repeat([]byte{9}, storage.ChallengeIDLen)
	v := []byte{1, 'c'}
	v = binary.BigEndian.AppendUint64(v, uint64(time.Now().Add(-time.Second).UnixMilli()))
	v = append(v, "stale"...)
	if err := e.rdb.Set(ctx, e.challengeKey(id), v, 0).Err(); err != nil { // no TTL
		t.Fatal(err)
	}
	if c, err := e.st.TakeChallenge(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TakeChallenge of a challenge expired by the caller's clock: %v (data %q), want storage.ErrNotFound", err, c.Data)
	}
	if e.exists(t, e.challengeKey(id)) {
		t.Error("the expired challenge's key is still there after the take")
	}
}
