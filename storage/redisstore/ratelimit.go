package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyhold/keyhold/storage"
)

var (
	_ storage.RateStore    = (*Store)(nil)
	_ storage.LockoutStore = (*Store)(nil)
)

// ---- Rate limiters ----

// TakeRate makes one GCRA decision for key, exactly as
// [storage.DecideRate], in one round trip: a Lua script (EVALSHA) that
// reads the stored TAT, decides, and stores the new TAT when allowed, with
// a TTL of the time left until it (see the package documentation). The
// caller's req.Now is the only clock: Redis's is never read.
//
// A request outside the bounds of [storage.ValidRateRequest] is refused
// with an error wrapping [storage.ErrInvalid] before the round trip. A
// value at the key that the Store did not write is an error, never a full
// bucket.
func (st *Store) TakeRate(ctx context.Context, key []byte, req storage.RateRequest) (storage.RateResult, error) {
	if st == nil {
		return storage.RateResult{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.RateResult{}, err
	}
	if err := storage.ValidRateRequest(key, req); err != nil {
		return storage.RateResult{}, fmt.Errorf("redisstore: %w", err)
	}
	now := req.Now.UnixMicro()
	interval := req.Interval.Microseconds()
	r, err := takeRateScript.Run(ctx, st.client, []string{stateKey(st.ratePrefix, key)},
		now, req.Cost*interval, req.Burst*interval,
	).Int64()
	if err != nil {
		return storage.RateResult{}, callError(ctx, "take rate", err)
	}
	// The script returns TAT − Now: positive when allowed (the new TAT,
	// at most Burst × Interval ahead), negative when refused (the stored
	// TAT, which is then after Now: see takeRateScript).
	allowed, d := r > 0, r
	if !allowed {
		d = -r
	}
	if d < 1 || (allowed && d > req.Burst*interval) || d > maxScriptInt {
		return storage.RateResult{}, errors.New("redisstore: take rate: malformed script reply")
	}
	return storage.RateResult{Allowed: allowed, TAT: time.UnixMicro(now + d)}, nil
}

// ResetRate forgets key's rate state, in one round trip: a DEL.
// Resetting a key without state returns nil.
func (st *Store) ResetRate(ctx context.Context, key []byte) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storage.ValidRateKey(key); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	if err := st.client.Del(ctx, stateKey(st.ratePrefix, key)).Err(); err != nil {
		return callError(ctx, "reset rate", err)
	}
	return nil
}

// ---- Account lockout ----

// BeginAttempt counts one attempt for key unless the account is locked,
// exactly as [storage.DecideAttempt], in one round trip: a Lua script
// (EVALSHA) that reads the stored state, decides, and stores the new state
// when admitted, with a TTL of the time left until its Expires (see the
// package documentation). The caller's req.Now is the only clock.
//
// A request outside the bounds of [storage.ValidLockoutRequest] is refused
// with an error wrapping [storage.ErrInvalid] before the round trip. A
// value at the key that the Store did not write is an error, never an
// account without failures.
func (st *Store) BeginAttempt(ctx context.Context, key []byte, req storage.LockoutRequest) (bool, storage.LockoutState, error) {
	if st == nil {
		return false, storage.LockoutState{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return false, storage.LockoutState{}, err
	}
	if err := storage.ValidLockoutRequest(key, req); err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("redisstore: %w", err)
	}
	now := req.Now.UnixMilli()
	r, err := beginAttemptScript.Run(ctx, st.client, []string{stateKey(st.lockoutPrefix, key)},
		now, req.MaxFailures, req.LockFor.Nanoseconds(), req.MaxLockFor.Nanoseconds(), req.ForgetAfter.Milliseconds(),
	).Int64Slice()
	if err != nil {
		return false, storage.LockoutState{}, callError(ctx, "begin attempt", err)
	}
	if len(r) != 5 || r[0] < 0 || r[0] > 1 || r[1] < 0 || r[1] >= storage.MaxLockoutFailures || r[2] < 0 || r[3] < 0 || r[3] > maxScriptInt || r[4] <= now || r[4] > maxScriptInt {
		return false, storage.LockoutState{}, errors.New("redisstore: begin attempt: malformed script reply")
	}
	s := storage.LockoutState{
		Failures: int(r[1]),
		Locks:    int(r[2]),
		Expires:  time.UnixMilli(r[4]),
	}
	if r[3] != 0 {
		s.LockedUntil = time.UnixMilli(r[3])
	}
	return r[0] == 1, s, nil
}

// RefundAttempt gives back the count of an attempt whose credential was
// never checked, exactly as [storage.DecideRefund], in one round trip: a
// Lua script (EVALSHA) that reads the stored state, decides, and stores
// the new one when it changes. The caller's req.Now is the only clock.
func (st *Store) RefundAttempt(ctx context.Context, key []byte, req storage.LockoutRequest, lock int) (bool, storage.LockoutState, error) {
	if st == nil {
		return false, storage.LockoutState{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return false, storage.LockoutState{}, err
	}
	if err := storage.ValidRefund(key, req, lock); err != nil {
		return false, storage.LockoutState{}, fmt.Errorf("redisstore: %w", err)
	}
	now := req.Now.UnixMilli()
	r, err := refundAttemptScript.Run(ctx, st.client, []string{stateKey(st.lockoutPrefix, key)},
		now, req.MaxFailures, lock,
	).Int64Slice()
	if err != nil {
		return false, storage.LockoutState{}, callError(ctx, "refund attempt", err)
	}
	if len(r) != 5 || r[0] < 0 || r[0] > 1 || r[1] < 0 || r[1] >= storage.MaxLockoutFailures || r[2] < 0 || r[3] < 0 || r[3] > maxScriptInt || r[4] < 0 || r[4] > maxScriptInt {
		return false, storage.LockoutState{}, errors.New("redisstore: refund attempt: malformed script reply")
	}
	if r[4] == 0 {
		if r[0] != 0 {
			return false, storage.LockoutState{}, errors.New("redisstore: refund attempt: malformed script reply")
		}
		return false, storage.LockoutState{}, nil
	}
	if r[4] <= now {
		return false, storage.LockoutState{}, errors.New("redisstore: refund attempt: malformed script reply")
	}
	s := storage.LockoutState{Failures: int(r[1]), Locks: int(r[2]), Expires: time.UnixMilli(r[4])}
	if r[3] != 0 {
		s.LockedUntil = time.UnixMilli(r[3])
	}
	return r[0] == 1, s, nil
}

// ResetLockout forgets key's lockout state, in one round trip: a DEL.
// Resetting a key without state returns nil.
func (st *Store) ResetLockout(ctx context.Context, key []byte) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storage.ValidRateKey(key); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	if err := st.client.Del(ctx, stateKey(st.lockoutPrefix, key)).Err(); err != nil {
		return callError(ctx, "reset lockout", err)
	}
	return nil
}

// maxScriptInt is the largest integer the scripts compute exactly (Lua
// numbers are doubles); the bounds in package storage keep every time
// they see far below it. A larger reply comes from a foreign value.
const maxScriptInt = 1<<53 - 1

// ---- Keys ----

// stateKey returns the Redis key of a rate or lockout state: prefix (the
// Store's ratePrefix or lockoutPrefix) and the hex of key (which the
// callers have checked is storage.RateKeyLen bytes).
func stateKey(prefix string, key []byte) string {
	var h [2 * storage.RateKeyLen]byte
	hex.Encode(h[:], key)
	var b strings.Builder
	b.Grow(len(prefix) + len(h))
	b.WriteString(prefix)
	b.Write(h[:])
	return b.String()
}
