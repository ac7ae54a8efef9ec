package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/redisstore"
)

// The benchmarks below compare one rate-limit decision with a plain GET,
// the cheapest round trip to Redis, and with github.com/go-redis/redis_rate
// (GCRA in a Lua script too), on the same server in the same run:
// bench/ratelimit-redis.sh runs them in alternation and prints the ratios.
// Each has the same sub-benchmarks, so that their names line up:
//
//	serial/one-key      one goroutine, one key
//	serial/many-keys    one goroutine, benchKeys keys in turn
//	parallel/one-key    b.RunParallel (8 goroutines per GOMAXPROCS), one key
//	parallel/many-keys  b.RunParallel, benchKeys keys
//
// Every decision is allowed (an emission interval of 1 µs and a burst of
// 10^6, far more than a benchmark takes), so that both limiters write
// their state each time: the dearer path.

// benchKeys is the number of keys of the many-keys sub-benchmarks.
const benchKeys = 4096

// benchClient connects to the test server (or skips) and returns a key
// prefix of the benchmark's own, whose keys (and redis_rate's, which it
// puts after "rate:") are deleted at cleanup.
func benchClient(b *testing.B) (*redis.Client, string) {
	b.Helper()
	url := testenv.Env(b, redisEnv, "URL of a Redis server (6.2 or later) for the redisstore benchmarks, e.g. redis://127.0.0.1:6379/0")
	opt, err := redis.ParseURL(url)
	if err != nil {
		b.Fatalf("%s: %v", redisEnv, err)
	}
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(b.Context()).Err(); err != nil {
		b.Fatalf("%s is set, but the server does not answer: %v", redisEnv, err)
	}
	prefix := "keyhold-bench:" + rand.Text()[:20] + ":"
	b.Cleanup(func() {
		ctx := context.Background()
		for _, pattern := range []string{prefix + "*", "rate:" + prefix + "*"} {
			var keys []string
			iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if err := iter.Err(); err != nil {
				b.Errorf("cleanup: %v", err)
			}
			for c := range slices.Chunk(keys, 500) {
				rdb.Del(ctx, c...)
			}
		}
	})
	return rdb, prefix
}

// benchModes runs op in the four sub-benchmarks; op(i) works on key i.
func benchModes(b *testing.B, op func(ctx context.Context, i int) error) {
	for _, mode := range []struct {
		name string
		keys int
	}{{"one-key", 1}, {"many-keys", benchKeys}} {
		b.Run("serial/"+mode.name, func(b *testing.B) {
			ctx := b.Context()
			i := 0
			for b.Loop() {
				if err := op(ctx, i%mode.keys); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("parallel/"+mode.name, func(b *testing.B) {
			ctx := b.Context()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				var buf [2]byte
				rand.Read(buf[:])
				i := int(buf[0])<<8 | int(buf[1]) // start each goroutine elsewhere
				for pb.Next() {
					if err := op(ctx, i%mode.keys); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

func benchRawKeys() [][]byte {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = make([]byte, storage.RateKeyLen)
		rand.Read(keys[i])
	}
	return keys
}

// BenchmarkRedisGET is the reference: a GET of an existing key, with a
// value the size of a stored TAT.
func BenchmarkRedisGET(b *testing.B) {
	rdb, prefix := benchClient(b)
	keys := make([]string, benchKeys)
	pipe := rdb.Pipeline()
	for i, k := range benchRawKeys() {
		keys[i] = prefix + "get:" + hex.EncodeToString(k)
		pipe.Set(b.Context(), keys[i], "1795298518615844", time.Hour)
	}
	if _, err := pipe.Exec(b.Context()); err != nil {
		b.Fatal(err)
	}
	benchModes(b, func(ctx context.Context, i int) error {
		return rdb.Get(ctx, keys[i]).Err()
	})
}

// BenchmarkTakeRate is one decision of redisstore's TakeRate, always
// allowed.
func BenchmarkTakeRate(b *testing.B) {
	rdb, prefix := benchClient(b)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	keys := benchRawKeys()
	benchModes(b, func(ctx context.Context, i int) error {
		res, err := st.TakeRate(ctx, keys[i], storage.RateRequest{Now: time.Now(), Interval: time.Microsecond, Burst: 1_000_000, Cost: 1})
		if err == nil && !res.Allowed {
			b.Error("refused")
		}
		return err
	})
}

// BenchmarkRedisRate is one decision of go-redis/redis_rate/v10's Allow,
// always allowed: the same emission interval and burst as
// BenchmarkTakeRate's.
func BenchmarkRedisRate(b *testing.B) {
	rdb, prefix := benchClient(b)
	limiter := redis_rate.NewLimiter(rdb)
	limit := redis_rate.PerMinute(60_000_000) // one per µs
	limit.Burst = 1_000_000
	keys := make([]string, benchKeys)
	for i, k := range benchRawKeys() {
		keys[i] = prefix + hex.EncodeToString(k)
	}
	benchModes(b, func(ctx context.Context, i int) error {
		res, err := limiter.Allow(ctx, keys[i], limit)
		if err == nil && res.Allowed == 0 {
			b.Error("refused")
		}
		return err
	})
}
