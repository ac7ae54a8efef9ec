package ratelimit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
)

// LogKeyLen is the length of the key under which names are hashed for the
// logs.
const LogKeyLen = 32

// logHashLabel separates log hashes from every other use of the key.
const logHashLabel = "keyhold/v1/ratelimit/log\x00"

// processLogKey is the log key of Lockouts and Limiters configured without
// one: random, and the same for the whole process, so that one process's
// log lines about one name carry one hash.
var processLogKey = sync.OnceValue(func() [LogKeyLen]byte {
	var k [LogKeyLen]byte
	rand.Read(k[:])
	return k
})

// LogHash returns the hash under which the log lines of a Lockout or
// Limiter configured with key name name (an account name, a limiter key):
// the first 8 bytes of HMAC-SHA256(key, "keyhold/v1/ratelimit/log" ‖ 0x00 ‖
// name), in 16 lowercase hex digits. Names reach the logs only this way,
// because what a client submits as an account name is sometimes its
// password.
//
// To find an account's lines, compute its hash with the key the
// instances are configured with (LockoutOptions.LogKey, Options.LogKey):
// for example in a small Go program that calls LogHash, or with
// printf 'keyhold/v1/ratelimit/log\0%s' "$name" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY
// (the first 16 hex digits). Keep the key as secret as the logs' readers
// are not trusted with the names: with it, a guessed name (or password)
// can be checked against a hash. Without a configured key, each process
// uses a random one, and hashes can only be compared within its own
// logs (and [Lockout.LogHash] computes them).
func LogHash(key []byte, name string) (string, error) {
	if len(key) != LogKeyLen {
		return "", fmt.Errorf("%w: log key of %d bytes, want %d", ErrInvalidInput, len(key), LogKeyLen)
	}
	return logHash((*[LogKeyLen]byte)(key), name), nil
}

func logHash(key *[LogKeyLen]byte, name string) string {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(logHashLabel))
	m.Write([]byte(name))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:8])
}

// logKey returns the configured log key, or the process's when none is.
func logKey(key []byte) ([LogKeyLen]byte, error) {
	switch len(key) {
	case 0:
		return processLogKey(), nil
	case LogKeyLen:
		return [LogKeyLen]byte(key), nil
	}
	return [LogKeyLen]byte{}, fmt.Errorf("%w: log key of %d bytes, want %d", ErrInvalidInput, len(key), LogKeyLen)
}
