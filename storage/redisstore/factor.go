package redisstore

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.FactorStore = (*Store)(nil)

// A factor record's value in Redis, read by the scripts too:
//
//	format   1 byte, recordFormat
//	kind     1 byte, kindFactors
//	version  8 bytes, unsigned, big-endian
//	data     the rest
//
// The user is the key's (prefix+"f:"+hex(user ID)); the record has no
// expiry and no index.
const (
	kindFactors      = 'f'
	factorsHeaderLen = 1 + 1 + 8
)

// putFactorsScript is the compare-and-swap of PutFactors.
//
//	KEYS[1]  the record
//	ARGV[1]  the expected version, 8 bytes (zeros: no record)
//	ARGV[2]  the encoded record, with version expect+1
//
// It returns statusOK, or statusConflict (the stored version, zero if
// there is no record, is not ARGV[1]: nothing changed). Versions are
// compared as the 8-byte strings they are stored as, never as Lua numbers
// (doubles, inexact above 2^53).
var putFactorsScript = redis.NewScript(`
local version = string.rep('\0', 8)
local old = redis.call('GET', KEYS[1])
if old then
  if #old < 10 or string.byte(old, 1) ~= 1 or string.sub(old, 2, 2) ~= 'f' then
    error({err = 'ERR malformed keyhold record'})
  end
  version = string.sub(old, 3, 10)
end
if version ~= ARGV[1] then
  return 2
end
redis.call('SET', KEYS[1], ARGV[2])
return 0
`)

// deleteFactorsScript is the conditional delete of DeleteFactors.
//
//	KEYS[1]  the record
//	ARGV[1]  the expected version, 8 bytes
//
// It returns statusOK (deleted, or there was no record) or statusConflict
// (the record has another version: nothing changed).
var deleteFactorsScript = redis.NewScript(`
local old = redis.call('GET', KEYS[1])
if not old then
  return 0
end
if #old < 10 or string.byte(old, 1) ~= 1 or string.sub(old, 2, 2) ~= 'f' then
  error({err = 'ERR malformed keyhold record'})
end
if string.sub(old, 3, 10) ~= ARGV[1] then
  return 2
end
redis.call('DEL', KEYS[1])
return 0
`)

// GetFactors returns the user's factor record, or [storage.ErrNotFound]
// if there is none. It makes one round trip: a GET. The record's Data is
// the caller's own copy.
func (st *Store) GetFactors(ctx context.Context, userID string) (storage.FactorRecord, error) {
	if st == nil {
		return storage.FactorRecord{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.FactorRecord{}, err
	}
	if err := checkUserID(userID); err != nil {
		return storage.FactorRecord{}, err
	}
	v, err := st.client.Get(ctx, st.factorKey(userID)).Result()
	if errors.Is(err, redis.Nil) {
		return storage.FactorRecord{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.FactorRecord{}, callError(ctx, "get factors", err)
	}
	version, data, err := decodeFactors(v)
	if err != nil {
		return storage.FactorRecord{}, err
	}
	return storage.FactorRecord{UserID: userID, Version: version, Data: data}, nil
}

// PutFactors stores data as the user's factor record with version
// expect+1 if and only if the stored record's version is expect (expect 0:
// there is none), in one compare-and-swap script, which Redis runs
// atomically: of concurrent calls with the same expect, from any number
// of instances, exactly one succeeds. Otherwise it stores nothing and
// returns [storage.ErrConflict]. The record has no TTL.
func (st *Store) PutFactors(ctx context.Context, userID string, data []byte, expect uint64) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if len(data) > storage.MaxFactorDataLen {
		return fmt.Errorf("redisstore: %w: factor data is %d bytes, more than storage.MaxFactorDataLen (%d)", storage.ErrInvalid, len(data), storage.MaxFactorDataLen)
	}
	if expect == math.MaxUint64 {
		// No version is ever MaxUint64, and expect+1 would wrap to 0.
		return storage.ErrConflict
	}
	status, err := putFactorsScript.Run(ctx, st.client,
		[]string{st.factorKey(userID)},
		versionArg(expect), encodeFactors(expect+1, data),
	).Int64()
	if err != nil {
		return callError(ctx, "put factors", err)
	}
	switch status {
	case statusOK:
		return nil
	case statusConflict:
		return storage.ErrConflict
	default:
		return fmt.Errorf("redisstore: put factors: unexpected script status %d", status)
	}
}

// DeleteFactors removes the user's factor record if its version is
// expect, and returns [storage.ErrConflict] if it has another version, in
// one script. Deleting a record that does not exist returns nil.
func (st *Store) DeleteFactors(ctx context.Context, userID string, expect uint64) error {
	if st == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	status, err := deleteFactorsScript.Run(ctx, st.client,
		[]string{st.factorKey(userID)}, versionArg(expect),
	).Int64()
	if err != nil {
		return callError(ctx, "delete factors", err)
	}
	switch status {
	case statusOK:
		return nil
	case statusConflict:
		return storage.ErrConflict
	default:
		return fmt.Errorf("redisstore: delete factors: unexpected script status %d", status)
	}
}

// factorKey is the key of the user's factor record: the user ID
// hex-encoded, so that no user ID can name another key.
func (st *Store) factorKey(userID string) string {
	return st.factorPrefix + hex.EncodeToString([]byte(userID))
}

// versionArg is a version as the scripts compare it: 8 bytes, big-endian.
func versionArg(v uint64) string {
	return string(binary.BigEndian.AppendUint64(nil, v))
}

func encodeFactors(version uint64, data []byte) []byte {
	b := make([]byte, 0, factorsHeaderLen+len(data))
	b = append(b, recordFormat, kindFactors)
	b = binary.BigEndian.AppendUint64(b, version)
	return append(b, data...)
}

// decodeFactors decodes a factor record read from Redis; the data is a
// fresh copy. Errors say what is wrong, never what the value holds.
func decodeFactors(v string) (uint64, []byte, error) {
	if len(v) < factorsHeaderLen || v[0] != recordFormat || v[1] != kindFactors {
		return 0, nil, errors.New("redisstore: malformed factor record")
	}
	version := binary.BigEndian.Uint64([]byte(v[2:10]))
	if version == 0 {
		return 0, nil, errors.New("redisstore: malformed factor record: version 0")
	}
	return version, []byte(v[factorsHeaderLen:]), nil
}
