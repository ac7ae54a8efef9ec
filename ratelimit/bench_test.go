package ratelimit_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

// benchKeys returns n client-address keys.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
	}
	return keys
}

// benchShapes are the key counts and modes every limiter is measured in.
var benchShapes = []struct {
	keys     int
	parallel bool
}{{1, false}, {10000, false}, {1, true}, {10000, true}}

func runShapes(b *testing.B, allow func(key string) bool) {
	for _, s := range benchShapes {
		mode := "serial"
		if s.parallel {
			mode = "parallel"
		}
		b.Run(fmt.Sprintf("keys=%d/%s", s.keys, mode), func(b *testing.B) {
			keys := benchKeys(s.keys)
			b.ReportAllocs()
			if !s.parallel {
				i := 0
				for b.Loop() {
					allow(keys[i%len(keys)])
					i++
				}
				return
			}
			var worker atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(worker.Add(1)) * 7919
				for pb.Next() {
					allow(keys[i%len(keys)])
					i++
				}
			})
		})
	}
}

// BenchmarkAllowMemory measures a Limiter on memstore: one decision per
// Allow, on one hot key or spread over 10,000, serially and in parallel.
// The rule (1000 per second) refuses most calls on one key, allows most
// spread over many.
func BenchmarkAllowMemory(b *testing.B) {
	l, err := ratelimit.New(memstore.New(), ratelimit.Rule{Name: "bench", Limit: 1000, Period: time.Second}, ratelimit.Options{Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	runShapes(b, func(key string) bool {
		d, _ := l.Allow(ctx, key)
		return d.Allowed
	})
}

// BenchmarkXTimeRate measures golang.org/x/time/rate with the same rule
// and keys: a map of *rate.Limiter under a mutex (the usual per-client
// pattern, with no bound on memory and no sharing between processes), and
// a single rate.Limiter for the floor.
func BenchmarkXTimeRate(b *testing.B) {
	b.Run("map", func(b *testing.B) {
		var mu sync.Mutex
		limiters := map[string]*rate.Limiter{}
		runShapes(b, func(key string) bool {
			mu.Lock()
			lim, ok := limiters[key]
			if !ok {
				lim = rate.NewLimiter(rate.Every(time.Millisecond), 1000)
				limiters[key] = lim
			}
			mu.Unlock()
			return lim.Allow()
		})
	})
	b.Run("single", func(b *testing.B) {
		lim := rate.NewLimiter(rate.Every(time.Millisecond), 1000)
		b.ReportAllocs()
		for b.Loop() {
			lim.Allow()
		}
	})
}
