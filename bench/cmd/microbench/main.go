// Command microbench measures keyhold's in-process and Redis operations
// against a reference measured in the same run, in alternating rounds, and
// writes the results as JSON Lines (bench/README.md, "Result format") for
// bench/run.sh and bench/render.
//
//	microbench -suite vault -out results.jsonl
//	microbench -suite ratelimit,ratelimit-redis,sessions -redis redis://127.0.0.1:6379/0 -prefix keyhold-bench-x: -out r.jsonl
//
// Suites:
//
//	vault            vault.Unlocked Seal/Open against raw AES-256-GCM
//	                 (cipher.NewGCMWithRandomNonce) on the same plaintexts,
//	                 64 B to 1 MiB: ratio rows and the record-size curve
//	ratelimit        ratelimit.Limiter on memstore against a map of
//	                 golang.org/x/time/rate limiters under a mutex
//	ratelimit-redis  ratelimit.Limiter on redisstore against
//	                 go-redis/redis_rate/v10 and a plain GET
//	sessions         GetSession/PutSession against the number of sessions
//	                 stored (memstore and Redis), and GetSession on Redis
//	                 against a plain GET of a value of the same size
//	cluster          starts a Redis Cluster of 3 masters (internal/rediscluster,
//	                 in -dir, removed after), stores users' sessions through
//	                 redisstore on a cluster client, and counts the keys each
//	                 master holds as users grow; GetSession against a GET
//	                 on the cluster
//
// Every comparison runs in rounds, after an untimed warm-up of each side;
// in each round every side runs for
// -time, in an order that rotates from round to round, so that a machine
// whose speed drifts slows all sides alike. The figure of a side is its
// median over the rounds. Keys written to Redis are under -prefix and are
// deleted before the program exits (also on SIGINT/SIGTERM).
package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/redisstore"
	"github.com/keyhold/keyhold/vault"
)

var (
	quick    = flag.Bool("quick", false, "tiny counts and short rounds, to test the pipeline")
	rounds   = flag.Int("rounds", 0, "rounds per comparison (0: 7, or 3 with -quick)")
	perSide  = flag.Duration("time", 0, "time of each side in each round (0: 300ms, or 50ms with -quick)")
	redisURL = flag.String("redis", "", "Redis URL for the Redis suites")
	prefix   = flag.String("prefix", "", "key prefix for everything written to Redis (default: a random keyhold-bench-…: prefix)")
	maxCount = flag.Int("max-sessions", 0, "largest session count of the growth curve (0: 1,000,000, or 10,000 with -quick)")
	maxUsers = flag.Int("max-users", 0, "largest user count of the cluster curve (0: 100,000, or 1,000 with -quick)")
	dir      = flag.String("dir", "", "directory for the cluster's files (default: the system's temporary directory)")
)

func main() {
	suites := flag.String("suite", "vault,ratelimit", "comma-separated suites: vault, ratelimit, ratelimit-redis, sessions, cluster")
	out := flag.String("out", "", "append JSON Lines here (default: standard output)")
	flag.Parse()
	if *rounds == 0 {
		*rounds = 7
		if *quick {
			*rounds = 3
		}
	}
	if *perSide == 0 {
		*perSide = 300 * time.Millisecond
		if *quick {
			*perSide = 50 * time.Millisecond
		}
	}
	if *prefix == "" {
		*prefix = "keyhold-bench-" + strings.ToLower(rand.Text()[:12]) + ":"
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		w = f
	}
	em := &emitter{w: w}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var rdb *redis.Client
	if *redisURL != "" {
		opt, err := redis.ParseURL(*redisURL)
		if err != nil {
			log.Fatal(err)
		}
		opt.PoolSize = 64
		rdb = redis.NewClient(opt)
		defer rdb.Close()
		// Whatever happens below (an error, a signal), the run's keys go.
		defer deletePrefix(rdb, *prefix)
	}
	failed := false
	for _, s := range strings.Split(*suites, ",") {
		var err error
		switch s {
		case "vault":
			err = benchVault(ctx, em)
		case "ratelimit":
			err = benchRateMemory(ctx, em)
		case "ratelimit-redis":
			err = needRedis(rdb, func() error { return benchRateRedis(ctx, em, rdb) })
		case "sessions":
			err = benchSessions(ctx, em, rdb)
		case "cluster":
			err = benchCluster(ctx, em)
		default:
			err = fmt.Errorf("unknown suite %q", s)
		}
		if err != nil {
			log.Printf("suite %s: %v", s, err)
			failed = true
		}
		if ctx.Err() != nil {
			break
		}
	}
	if failed || ctx.Err() != nil {
		if rdb != nil {
			deletePrefix(rdb, *prefix)
		}
		os.Exit(1)
	}
}

func needRedis(rdb *redis.Client, f func() error) error {
	if rdb == nil {
		return errors.New("needs -redis")
	}
	return f()
}

// emitter writes JSON lines.
type emitter struct {
	mu sync.Mutex
	w  io.Writer
}

func (e *emitter) line(v map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(e.w, "%s\n", b)
}

func (e *emitter) ratio(table, what, oursLabel string, ours float64, refLabel string, ref float64, unit string, lowerBetter bool, note string) {
	m := map[string]any{"kind": "ratio", "table": table, "what": what, "ours_label": oursLabel, "ours": round4(ours),
		"reference_label": refLabel, "reference": round4(ref), "unit": unit, "lower_is_better": lowerBetter}
	if note != "" {
		m["note"] = note
	}
	e.line(m)
}

func (e *emitter) point(table, series string, x float64, xLabel string, y float64, yLabel, plot string) {
	e.line(map[string]any{"kind": "point", "table": table, "series": series, "x": x, "x_label": xLabel, "y": round4(y), "y_label": yLabel, "plot": plot})
}

func (e *emitter) fact(table, what string, value float64, unit, note string) {
	m := map[string]any{"kind": "fact", "table": table, "what": what, "value": round4(value), "unit": unit}
	if note != "" {
		m["note"] = note
	}
	e.line(m)
}

func round4(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	p := math.Pow(10, 4-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// A side is one thing timed: op is called with an index that grows by one
// per call (per goroutine when parallel).
type side struct {
	label    string
	op       func(i int) error
	parallel int // goroutines; 0 or 1: serial
}

// timeSide runs s for about d and returns nanoseconds per operation (for
// parallel sides, wall time divided by all goroutines' operations).
func timeSide(ctx context.Context, s side, d time.Duration) (float64, error) {
	g := max(s.parallel, 1)
	var ops atomic.Int64
	var stop atomic.Bool
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := range g {
		wg.Go(func() {
			i := w * 7919
			batch := 1
			for !stop.Load() {
				for range batch {
					if err := s.op(i); err != nil {
						firstErr.CompareAndSwap(nil, err)
						stop.Store(true)
						return
					}
					i++
				}
				ops.Add(int64(batch))
				if batch < 1024 {
					batch *= 2
				}
				if time.Since(start) >= d || ctx.Err() != nil {
					stop.Store(true)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if err, ok := firstErr.Load().(error); ok && err != nil {
		return 0, fmt.Errorf("%s: %w", s.label, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(el.Nanoseconds()) / float64(ops.Load()), nil
}

// compare runs the sides in rotating order for the configured rounds and
// returns each side's median ns/op.
func compare(ctx context.Context, d time.Duration, sides ...side) ([]float64, error) {
	samples := make([][]float64, len(sides))
	// Untimed first: connections dialled, caches and pools filled.
	for _, s := range sides {
		if _, err := timeSide(ctx, s, d/4); err != nil {
			return nil, err
		}
	}
	for r := range *rounds {
		for k := range sides {
			i := (k + r) % len(sides)
			if r%2 == 1 {
				i = (len(sides) - 1 - k + r) % len(sides)
			}
			v, err := timeSide(ctx, sides[i], d)
			if err != nil {
				return nil, err
			}
			samples[i] = append(samples[i], v)
		}
	}
	med := make([]float64, len(sides))
	for i, s := range samples {
		med[i] = median(s)
	}
	return med, nil
}

func median(s []float64) float64 {
	s = slices.Clone(s)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func sizeLabel(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// ---- vault -------------------------------------------------------------

func benchVault(ctx context.Context, em *emitter) error {
	v, err := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		return err
	}
	u, err := v.Create(ctx, "bench", []byte("bench passphrase"))
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return err
	}
	rc := []byte("table/record/field")
	sizes := []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}
	if *quick {
		sizes = []int{64, 1 << 10, 64 << 10, 1 << 20}
	}
	for _, n := range sizes {
		pt := make([]byte, n)
		rand.Read(pt)
		sealed, err := u.Seal(pt, rc)
		if err != nil {
			return err
		}
		raw := aead.Seal(nil, nil, pt, rc)
		// Large records take longer per call: give each side time for
		// enough calls.
		d := *perSide
		med, err := compare(ctx, d,
			side{label: "keyhold Seal", op: func(int) error { _, err := u.Seal(pt, rc); return err }},
			side{label: "raw Seal", op: func(int) error { aead.Seal(nil, nil, pt, rc); return nil }},
			side{label: "keyhold Open", op: func(int) error { _, err := u.Open(sealed, rc); return err }},
			side{label: "raw Open", op: func(int) error { _, err := aead.Open(nil, nil, raw, rc); return err }},
		)
		if err != nil {
			return err
		}
		sl := sizeLabel(n)
		em.ratio("vault", "Seal, "+sl, "vault.Unlocked.Seal", med[0], "AES-256-GCM, crypto/cipher random nonce", med[1], "ns/op", true, "")
		em.ratio("vault", "Open, "+sl, "vault.Unlocked.Open", med[2], "AES-256-GCM Open, crypto/cipher", med[3], "ns/op", true, "")
		for i, s := range []string{"keyhold Seal", "AES-256-GCM Seal (crypto/cipher)", "keyhold Open", "AES-256-GCM Open (crypto/cipher)"} {
			em.point("records", s, float64(n), "record size (bytes)", med[i]/1000, "µs per call", "record-size")
		}
		log.Printf("vault %s: seal %.0f/%.0f ns, open %.0f/%.0f ns", sl, med[0], med[1], med[2], med[3])
	}
	return nil
}

// ---- rate limits in memory ---------------------------------------------

func clientKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
	}
	return keys
}

func benchRateMemory(ctx context.Context, em *emitter) error {
	for _, shape := range []struct {
		keys     int
		parallel int
	}{{1, 0}, {10000, 0}, {1, runtime.GOMAXPROCS(0)}, {10000, runtime.GOMAXPROCS(0)}} {
		l, err := ratelimit.New(memstore.New(), ratelimit.Rule{Name: "bench", Limit: 1000, Period: time.Second},
			ratelimit.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		var mu sync.Mutex
		limiters := map[string]*rate.Limiter{}
		keys := clientKeys(shape.keys)
		med, err := compare(ctx, *perSide,
			side{label: "keyhold", parallel: shape.parallel, op: func(i int) error {
				d, _ := l.Allow(ctx, keys[i%len(keys)])
				return d.Err
			}},
			side{label: "x/time/rate", parallel: shape.parallel, op: func(i int) error {
				k := keys[i%len(keys)]
				mu.Lock()
				lim, ok := limiters[k]
				if !ok {
					lim = rate.NewLimiter(rate.Every(time.Millisecond), 1000)
					limiters[k] = lim
				}
				mu.Unlock()
				lim.Allow()
				return nil
			}},
		)
		if err != nil {
			return err
		}
		mode := "serial"
		if shape.parallel > 0 {
			mode = fmt.Sprintf("parallel (%d goroutines)", shape.parallel)
		}
		what := fmt.Sprintf("%d key(s), %s, rule 1000/s", shape.keys, mode)
		em.ratio("ratelimit", what, "ratelimit.Limiter.Allow on memstore", med[0], "x/time/rate Limiter.Allow, map under a mutex", med[1], "ns/op", true, "")
		log.Printf("ratelimit %s: %.0f / %.0f ns", what, med[0], med[1])
	}
	return nil
}

// ---- rate limits on Redis ----------------------------------------------

func benchRateRedis(ctx context.Context, em *emitter, rdb *redis.Client) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return err
	}
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: *prefix + "rl:"})
	if err != nil {
		return err
	}
	// Every decision allowed (both limiters write their state each time):
	// a burst of 2^20 refilled over 2 s, far more than a round takes.
	l, err := ratelimit.New(st, ratelimit.Rule{Name: "bench", Limit: storage.MaxRateBurst, Period: 2 * time.Second},
		ratelimit.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	rr := redis_rate.NewLimiter(rdb)
	limit := redis_rate.Limit{Rate: storage.MaxRateBurst, Burst: storage.MaxRateBurst, Period: 2 * time.Second}
	const n = 4096
	keys := make([]string, n)
	getKeys := make([]string, n)
	rrKeys := make([]string, n)
	pipe := rdb.Pipeline()
	for i := range n {
		keys[i] = fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
		rrKeys[i] = *prefix + "rr:" + keys[i]
		getKeys[i] = *prefix + "get:" + keys[i]
		pipe.Set(ctx, getKeys[i], "1795298518615844", time.Hour)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for _, shape := range []struct {
		keys     int
		parallel int
	}{{1, 0}, {n, 0}, {1, 16}, {n, 16}} {
		mode := "serial"
		if shape.parallel > 0 {
			mode = fmt.Sprintf("parallel (%d goroutines)", shape.parallel)
		}
		med, err := compare(ctx, *perSide,
			side{label: "keyhold", parallel: shape.parallel, op: func(i int) error {
				d, _ := l.Allow(ctx, keys[i%shape.keys])
				if d.Err == nil && !d.Allowed {
					return errors.New("keyhold refused")
				}
				return d.Err
			}},
			side{label: "redis_rate", parallel: shape.parallel, op: func(i int) error {
				res, err := rr.Allow(ctx, rrKeys[i%shape.keys], limit)
				if err == nil && res.Allowed == 0 {
					return errors.New("redis_rate refused")
				}
				return err
			}},
			side{label: "GET", parallel: shape.parallel, op: func(i int) error {
				return rdb.Get(ctx, getKeys[i%shape.keys]).Err()
			}},
		)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("%d key(s), %s", shape.keys, mode)
		em.ratio("ratelimit-redis", what+": vs redis_rate", "ratelimit.Limiter.Allow on redisstore", med[0]/1000, "go-redis/redis_rate/v10 Allow", med[1]/1000, "µs/op", true, "")
		em.ratio("ratelimit-redis", what+": vs GET", "ratelimit.Limiter.Allow on redisstore", med[0]/1000, "plain Redis GET of a 16-byte value", med[2]/1000, "µs/op", true, "")
		log.Printf("ratelimit-redis %s: keyhold %.1f, redis_rate %.1f, GET %.1f µs", what, med[0]/1000, med[1]/1000, med[2]/1000)
	}
	// redis_rate keys its state "rate:"+key.
	deletePattern(rdb, "rate:"+*prefix)
	return nil
}

// ---- sessions stored: growth -------------------------------------------

const sessionDataLen = 256

func benchSessions(ctx context.Context, em *emitter, rdb *redis.Client) error {
	top := *maxCount
	if top == 0 {
		top = 1_000_000
		if *quick {
			top = 10_000
		}
	}
	var counts []int
	for c := 1000; c <= top; c *= 10 {
		counts = append(counts, c)
	}
	type target struct {
		name  string
		store storage.SessionStore
	}
	targets := []target{{"memstore", memstore.New()}}
	if rdb != nil {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return err
		}
		st, err := redisstore.New(rdb, redisstore.Config{Prefix: *prefix + "s:"})
		if err != nil {
			return err
		}
		targets = append(targets, target{"Redis (redisstore)", st})
	} else {
		log.Printf("sessions: no -redis, memstore only")
	}
	data := make([]byte, sessionDataLen)
	rand.Read(data)
	for _, t := range targets {
		ids := make([][]byte, 0, top)
		versions := make([]uint64, 0, top)
		expires := time.Now().Add(2 * time.Hour)
		var first, last []float64
		for _, c := range counts {
			from := len(ids)
			for i := from; i < c; i++ {
				id := make([]byte, storage.SessionIDLen)
				rand.Read(id)
				ids = append(ids, id)
				versions = append(versions, 1)
			}
			fillStart := time.Now()
			if err := fill(ctx, t.store, ids, from, c, data, expires); err != nil {
				return fmt.Errorf("%s: filling to %d: %w", t.name, c, err)
			}
			log.Printf("sessions %s: %d stored (fill %.1fs)", t.name, c, time.Since(fillStart).Seconds())
			var refKey string
			sides := []side{
				{label: "GetSession", op: func(i int) error {
					_, err := t.store.GetSession(ctx, ids[(i*2654435761)%c])
					return err
				}},
				{label: "PutSession", op: func(i int) error {
					k := (i * 40503) % c
					err := t.store.PutSession(ctx, storage.Session{ID: ids[k], UserID: userOf(k), Expires: expires, Data: data}, versions[k])
					if err == nil {
						versions[k]++
					}
					return err
				}},
			}
			if rdb != nil && t.name != "memstore" {
				refKey = *prefix + "ref-get"
				// The reference value is a little longer than the session's
				// data, as a stored session record is (ID, user, times).
				if err := rdb.Set(ctx, refKey, make([]byte, sessionDataLen+64), 3*time.Hour).Err(); err != nil {
					return err
				}
				sides = append(sides, side{label: "GET", op: func(int) error { return rdb.Get(ctx, refKey).Err() }})
			}
			med, err := compare(ctx, *perSide, sides...)
			if err != nil {
				return fmt.Errorf("%s at %d: %w", t.name, c, err)
			}
			em.point("sessions", t.name+" GetSession", float64(c), "sessions stored", med[0]/1000, "µs per call", "session-growth")
			em.point("sessions", t.name+" PutSession (update)", float64(c), "sessions stored", med[1]/1000, "µs per call", "session-growth")
			if len(med) > 2 {
				em.point("sessions", "Redis plain GET", float64(c), "sessions stored", med[2]/1000, "µs per call", "session-growth")
				if c == counts[0] || c == counts[len(counts)-1] {
					em.ratio("sessions", fmt.Sprintf("GetSession on Redis, %d sessions stored", c), "redisstore GetSession (serial)", med[0]/1000,
						fmt.Sprintf("plain Redis GET of %d bytes", sessionDataLen+64), med[2]/1000, "µs/op", true, "")
				}
			}
			log.Printf("sessions %s at %d: get %.2f µs, put %.2f µs", t.name, c, med[0]/1000, med[1]/1000)
			if first == nil {
				first = med
			}
			last = med
		}
		if len(counts) > 1 {
			// Cost at the largest count against the smallest: ours against
			// ours, so facts, not ratios.
			lo, hi := counts[0], counts[len(counts)-1]
			for i, op := range []string{"GetSession", "PutSession (update)"} {
				em.fact("sessions", fmt.Sprintf("%s %s: time per call with %d sessions stored ÷ with %d", t.name, op, hi, lo), last[i]/first[i], "×", "1: the cost does not grow with the count")
			}
		}
		if _, ok := t.store.(*redisstore.Store); ok {
			start := time.Now()
			n := deletePattern(rdb, *prefix+"s:")
			em.fact("sessions", "Redis keys of the growth curve deleted after it", float64(n), "keys", fmt.Sprintf("SCAN + UNLINK in %.1f s", time.Since(start).Seconds()))
		}
	}
	return nil
}

func userOf(i int) string { return fmt.Sprintf("user-%d", i/4) } // four sessions per user

// fill stores the sessions from..to-1 with version 1.
func fill(ctx context.Context, st storage.SessionStore, ids [][]byte, from, to int, data []byte, expires time.Time) error {
	return fillWith(ctx, from, to, func(k int) error {
		return st.PutSession(ctx, storage.Session{ID: ids[k], UserID: userOf(k), Expires: expires, Data: data}, 0)
	})
}

// fillWith calls put(k) for k in from..to-1 from concurrent workers, so
// that Redis's round trips overlap.
func fillWith(ctx context.Context, from, to int, put func(k int) error) error {
	const workers = 64
	var next atomic.Int64
	next.Store(int64(from))
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= to || ctx.Err() != nil {
					return
				}
				if err := put(k); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// ---- Redis clean-up -----------------------------------------------------

// deletePattern deletes every key that starts with p (which must hold no
// glob characters) and returns how many it deleted.
func deletePattern(rdb *redis.Client, p string) int64 {
	if strings.ContainsAny(p, "*?[]\\") || p == "" {
		log.Printf("not deleting keys under %q: glob characters", p)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var deleted int64
	iter := rdb.Scan(ctx, 0, p+"*", 5000).Iterator()
	batch := make([]string, 0, 1000)
	flush := func() {
		if len(batch) > 0 {
			n, err := rdb.Unlink(ctx, batch...).Result()
			if err != nil {
				log.Printf("deleting keys under %s: %v", p, err)
			}
			deleted += n
			batch = batch[:0]
		}
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	if err := iter.Err(); err != nil {
		log.Printf("listing keys under %s: %v", p, err)
	}
	return deleted
}

func deletePrefix(rdb *redis.Client, p string) {
	n := deletePattern(rdb, p) + deletePattern(rdb, "rate:"+p)
	log.Printf("deleted %d Redis keys under %s", n, p)
}
