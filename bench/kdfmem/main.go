// Command kdfmem measures the memory that a burst of concurrent Argon2id
// verifications takes behind a kdf.Gate, and behind a plain semaphore for
// comparison.
//
// It verifies one stored hash (Argon2id at -m KiB, -t passes, p=1) from
// -calls goroutines started together (or spread over -spread) and reports
// how many succeeded and how many were turned away with kdf.ErrBusy, the
// peak Go heap (runtime/metrics /memory/classes/heap/objects:bytes, which
// counts unswept garbage too, sampled every millisecond), the peak memory
// the Go runtime holds from the OS, and the peak resident set of the
// process (VmHWM, reset through /proc/self/clear_refs before the burst).
//
//	go run ./bench/kdfmem                   # Gate of 2, budget 2 × 64 MiB, queue of 8
//	go run ./bench/kdfmem -mode=semaphore   # a plain semaphore of 2, nothing else
//
// In semaphore mode the Hasher's own Gate admits everything (it is sized
// not to interfere) and a buffered channel of -concurrent places bounds the
// runs: the runs are bounded, but the memory of finished runs stays in the
// heap until the garbage collector gets to it, which the Gate accounts for
// and forces when needed.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/keyhold/keyhold/kdf"
)

// config is one measurement.
type config struct {
	Mode       string        // "gate" or "semaphore"
	Calls      int           // Verify calls in the burst
	Concurrent int           // runs at once (the Gate's MaxConcurrent, or the semaphore's size)
	MemoryKiB  uint32        // Argon2id m of the stored hash
	Time       uint32        // Argon2id t of the stored hash
	BudgetKiB  uint64        // the Gate's MemoryBudgetKiB (0: Concurrent × MemoryKiB)
	MaxWaiting int           // the Gate's MaxWaiting
	Timeout    time.Duration // each call's context deadline
	Spread     time.Duration // calls start evenly over this time (0: all at once)
	NonNFKC    bool          // verify a non-NFKC password against a hash of its raw bytes (two KDF runs per Verify)
}

// result is what one measurement found.
type result struct {
	Success, Busy, Other int
	OtherErr             error         // one of the Other errors
	PeakHeapBytes        uint64        // max of /memory/classes/heap/objects:bytes
	PeakGoBytes          uint64        // max of memory mapped by the runtime and not released to the OS
	PeakRSSKiB           uint64        // VmHWM after the burst
	RSSPeakReset         bool          // whether VmHWM was reset before the burst (else it includes the setup)
	BaseHeapBytes        uint64        // heap objects before the burst
	GCCycles             uint64        // collections during the burst
	ForcedGCs            uint64        // of which forced (runtime.GC, by the Gate)
	Elapsed              time.Duration // wall time of the burst
}

func defaultConfig() config {
	return config{Mode: "gate", Calls: 200, Concurrent: 2, MemoryKiB: 64 * 1024, Time: 1, MaxWaiting: 8, Timeout: 30 * time.Second}
}

func (c config) budgetKiB() uint64 {
	if c.BudgetKiB != 0 {
		return c.BudgetKiB
	}
	return uint64(c.Concurrent) * uint64(c.MemoryKiB)
}

// run performs one measurement. Only one may run at a time in a process:
// the memory figures are the process's.
func run(cfg config) (result, error) {
	var res result
	if cfg.Calls < 1 || cfg.Concurrent < 1 || cfg.MemoryKiB < 8 || cfg.Time < 1 {
		return res, fmt.Errorf("calls, concurrent, m and t must be positive (m at least 8)")
	}
	var gcfg kdf.GateConfig
	var sem chan struct{}
	switch cfg.Mode {
	case "gate":
		// Every call is anonymous (no fairness key): let that key hold the
		// whole queue, as a process that sets no keys should.
		gcfg = kdf.GateConfig{MaxConcurrent: cfg.Concurrent, MemoryBudgetKiB: cfg.budgetKiB(), MaxWaiting: cfg.MaxWaiting, MaxWaitingPerKey: cfg.MaxWaiting}
	case "semaphore":
		// A Gate that never holds anyone back: as many places, waiters and
		// memory as there are calls.
		gcfg = kdf.GateConfig{MaxConcurrent: cfg.Calls, MemoryBudgetKiB: uint64(cfg.Calls+1) * uint64(cfg.MemoryKiB), MaxWaiting: cfg.Calls, MaxWaitingPerKey: cfg.Calls}
		sem = make(chan struct{}, cfg.Concurrent)
	default:
		return res, fmt.Errorf("unknown mode %q (gate or semaphore)", cfg.Mode)
	}
	gate, err := kdf.NewGate(gcfg)
	if err != nil {
		return res, err
	}
	// Limits up to the Gate's budget: New refuses Limits that admit a run
	// the Gate could never start.
	h, err := kdf.New(kdf.Config{Gate: gate, Limits: kdf.Limits{MaxMemoryKiB: uint32(min(gate.Config().MemoryBudgetKiB, math.MaxUint32))}})
	if err != nil {
		return res, err
	}
	password := []byte("correct horse battery staple")
	if cfg.NonNFKC {
		password = []byte("ﬁnal ﬂight") // ligatures: NFKC gives "final flight"
	}
	encoded := storedHash(password, cfg.MemoryKiB, cfg.Time)

	// Start from a collected heap and a reset peak RSS.
	runtime.GC()
	runtime.GC()
	res.RSSPeakReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	before := readMetrics()
	res.BaseHeapBytes = before.heap

	stop := make(chan struct{})
	var peakHeap, peakGo atomic.Uint64
	var sampled sync.WaitGroup
	sampled.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			m := readMetrics()
			if m.heap > peakHeap.Load() {
				peakHeap.Store(m.heap)
			}
			if m.goHeld > peakGo.Load() {
				peakGo.Store(m.goHeld)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	var mu sync.Mutex
	var calls sync.WaitGroup
	start := time.Now()
	for i := range cfg.Calls {
		if cfg.Spread > 0 {
			time.Sleep(time.Until(start.Add(cfg.Spread * time.Duration(i) / time.Duration(cfg.Calls))))
		}
		calls.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
			defer cancel()
			err := verify(ctx, h, sem, encoded, password)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				res.Success++
			case errors.Is(err, kdf.ErrBusy):
				res.Busy++
			default:
				res.Other++
				res.OtherErr = err
			}
		})
	}
	calls.Wait()
	res.Elapsed = time.Since(start)
	close(stop)
	sampled.Wait()

	after := readMetrics()
	res.PeakHeapBytes = max(peakHeap.Load(), after.heap)
	res.PeakGoBytes = max(peakGo.Load(), after.goHeld)
	res.GCCycles = after.cycles - before.cycles
	res.ForcedGCs = after.forced - before.forced
	res.PeakRSSKiB, _ = procStatusKiB("VmHWM")
	return res, nil
}

// verify is one caller: through the semaphore first if there is one (a
// caller whose context ends while it waits there gets an error matching
// kdf.ErrBusy, as the Gate would give), then Hasher.Verify.
func verify(ctx context.Context, h *kdf.Hasher, sem chan struct{}, encoded string, password []byte) error {
	if sem != nil {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", kdf.ErrBusy, ctx.Err())
		}
	}
	_, err := h.Verify(ctx, encoded, password)
	return err
}

// storedHash returns a PHC Argon2id hash of password's bytes as given, as
// another library would store it (Verify reports that it needs a rehash,
// which does not matter here).
func storedHash(password []byte, m, t uint32) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	sum := argon2.IDKey(password, salt, t, m, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=1$%s$%s", argon2.Version, m, t, b64.EncodeToString(salt), b64.EncodeToString(sum))
}

type memSample struct {
	heap, goHeld, cycles, forced uint64
}

var metricNames = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/cycles/total:gc-cycles",
	"/gc/cycles/forced:gc-cycles",
}

func readMetrics() memSample {
	s := make([]metrics.Sample, len(metricNames))
	for i, n := range metricNames {
		s[i].Name = n
	}
	metrics.Read(s)
	v := make([]uint64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	return memSample{heap: v[0], goHeld: v[1] - v[2], cycles: v[3], forced: v[4]}
}

// procStatusKiB reads a "Name: N kB" line of /proc/self/status.
func procStatusKiB(name string) (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// report prints res for cfg as a small table.
func report(cfg config, res result) string {
	const mib = 1 << 20
	unit := float64(cfg.MemoryKiB) * 1024
	var b strings.Builder
	fmt.Fprintf(&b, "mode=%s calls=%d concurrent=%d m=%d KiB t=%d", cfg.Mode, cfg.Calls, cfg.Concurrent, cfg.MemoryKiB, cfg.Time)
	if cfg.Mode == "gate" {
		fmt.Fprintf(&b, " budget=%d KiB max-waiting=%d", cfg.budgetKiB(), cfg.MaxWaiting)
	}
	fmt.Fprintf(&b, " timeout=%v spread=%v non-nfkc=%v GOMAXPROCS=%d\n", cfg.Timeout, cfg.Spread, cfg.NonNFKC, runtime.GOMAXPROCS(0))
	fmt.Fprintf(&b, "  calls: %d succeeded, %d busy (ErrBusy), %d other errors in %v", res.Success, res.Busy, res.Other, res.Elapsed.Round(time.Millisecond))
	if res.OtherErr != nil {
		fmt.Fprintf(&b, " (e.g. %v)", res.OtherErr)
	}
	fmt.Fprintf(&b, "\n  GC cycles: %d, of which forced: %d\n", res.GCCycles, res.ForcedGCs)
	fmt.Fprintf(&b, "  %-34s %8.1f MiB = %4.2f × m   (heap before the burst: %.1f MiB)\n", "peak Go heap (objects+garbage)", float64(res.PeakHeapBytes)/mib, float64(res.PeakHeapBytes)/unit, float64(res.BaseHeapBytes)/mib)
	fmt.Fprintf(&b, "  %-34s %8.1f MiB = %4.2f × m\n", "peak Go memory held from the OS", float64(res.PeakGoBytes)/mib, float64(res.PeakGoBytes)/unit)
	rss := "VmHWM since the burst began"
	if !res.RSSPeakReset {
		rss = "VmHWM (could not reset: whole run)"
	}
	fmt.Fprintf(&b, "  %-34s %8.1f MiB = %4.2f × m\n", "peak RSS, "+rss, float64(res.PeakRSSKiB)*1024/mib, float64(res.PeakRSSKiB)*1024/unit)
	fmt.Fprintf(&b, "  concurrent × m = %.0f MiB", float64(cfg.Concurrent)*unit/mib)
	if cfg.Mode == "gate" {
		fmt.Fprintf(&b, ", budget = %.0f MiB", float64(cfg.budgetKiB())*1024/mib)
	}
	b.WriteString("\n")
	return b.String()
}

func main() {
	cfg := defaultConfig()
	flag.StringVar(&cfg.Mode, "mode", cfg.Mode, "gate (kdf.Gate) or semaphore (a plain semaphore of -concurrent places)")
	flag.IntVar(&cfg.Calls, "calls", cfg.Calls, "concurrent Verify calls")
	flag.IntVar(&cfg.Concurrent, "concurrent", cfg.Concurrent, "runs at once")
	m := flag.Uint("m", uint(cfg.MemoryKiB), "Argon2id memory in KiB")
	t := flag.Uint("t", uint(cfg.Time), "Argon2id passes")
	flag.Uint64Var(&cfg.BudgetKiB, "budget", 0, "the Gate's memory budget in KiB (0: concurrent × m)")
	flag.IntVar(&cfg.MaxWaiting, "waiting", cfg.MaxWaiting, "the Gate's MaxWaiting")
	flag.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "each call's context timeout")
	flag.DurationVar(&cfg.Spread, "spread", 0, "start the calls evenly over this time instead of all at once")
	flag.BoolVar(&cfg.NonNFKC, "non-nfkc", false, "verify a password not in NFKC form against a hash of its raw bytes (two KDF runs in one Gate place)")
	out := flag.String("out", "", "also append the figures as JSON Lines (table kdfmem, bench/README.md) to this file")
	flag.Parse()
	cfg.MemoryKiB, cfg.Time = uint32(*m), uint32(*t)
	res, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kdfmem:", err)
		os.Exit(2)
	}
	fmt.Print(report(cfg, res))
	if *out != "" {
		if err := appendJSON(*out, cfg, res); err != nil {
			fmt.Fprintln(os.Stderr, "kdfmem:", err)
			os.Exit(2)
		}
	}
	if res.Other > 0 {
		os.Exit(1)
	}
}

// appendJSON appends the measurement's figures as JSON Lines facts, each
// labelled with the run's mode and shape.
func appendJSON(file string, cfg config, res result) error {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	name := "kdf.Gate"
	if cfg.Mode == "semaphore" {
		name = "plain semaphore"
	}
	shape := fmt.Sprintf("%s, %d places, %d Verify calls at once, Argon2id m=%d MiB t=%d", name, cfg.Concurrent, cfg.Calls, cfg.MemoryKiB>>10, cfg.Time)
	if cfg.Spread > 0 {
		shape = fmt.Sprintf("%s, %d places, %d Verify calls over %v, Argon2id m=%d MiB t=%d", name, cfg.Concurrent, cfg.Calls, cfg.Spread, cfg.MemoryKiB>>10, cfg.Time)
	}
	const mib = 1 << 20
	m := float64(cfg.MemoryKiB) * 1024
	facts := []struct {
		what  string
		value float64
		unit  string
		note  string
	}{
		{"calls that succeeded", float64(res.Success), "calls", fmt.Sprintf("%d refused busy, %d other errors", res.Busy, res.Other)},
		{"peak Go heap (objects and garbage)", float64(res.PeakHeapBytes) / mib, "MiB", fmt.Sprintf("%.2f × m", float64(res.PeakHeapBytes)/m)},
		{"peak Go memory held from the OS", float64(res.PeakGoBytes) / mib, "MiB", fmt.Sprintf("%.2f × m", float64(res.PeakGoBytes)/m)},
		{"peak RSS (VmHWM)", float64(res.PeakRSSKiB) / 1024, "MiB", fmt.Sprintf("%.2f × m; reset before the burst: %v", float64(res.PeakRSSKiB)*1024/m, res.RSSPeakReset)},
	}
	for _, x := range facts {
		line, err := json.Marshal(map[string]any{"kind": "fact", "table": "kdfmem", "what": shape + ": " + x.what,
			"value": math.Round(x.value*10) / 10, "unit": x.unit, "note": x.note})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(f, "%s\n", line); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
