package main

import (
	"testing"
	"time"
)

// slackBytes is what the peak Go heap may exceed the Gate's budget by: the
// program's own small allocations (goroutines, contexts, hashes, metrics).
const slackBytes = 16 << 20

// TestGateBoundsHeap sends 200 concurrent Verify calls at Argon2id m=64 MiB
// (16 MiB under -race), t=1 through a Gate of 2 places, a budget of 2 × m
// and a queue of 8, all at once and spread over 1.5 s, and checks that
// every call either succeeded or got ErrBusy, that at least the 2 first
// ones succeeded, and that the peak Go heap, unreclaimed garbage included,
// stayed within the budget plus slackBytes.
func TestGateBoundsHeap(t *testing.T) {
	for _, spread := range []time.Duration{0, 1500 * time.Millisecond} {
		t.Run("spread="+spread.String(), func(t *testing.T) {
			cfg := defaultConfig()
			cfg.MemoryKiB = testMemoryKiB
			cfg.Spread = spread
			cfg.Timeout = 20 * time.Second
			res, err := run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + report(cfg, res))
			if res.Other != 0 {
				t.Errorf("%d calls failed with other errors than ErrBusy, e.g. %v", res.Other, res.OtherErr)
			}
			if res.Success+res.Busy != cfg.Calls {
				t.Errorf("%d succeeded + %d busy != %d calls", res.Success, res.Busy, cfg.Calls)
			}
			if res.Success < cfg.Concurrent {
				t.Errorf("only %d calls succeeded, want at least %d", res.Success, cfg.Concurrent)
			}
			budget := cfg.budgetKiB() * 1024
			if res.PeakHeapBytes > budget+slackBytes {
				t.Errorf("peak Go heap %d bytes > budget %d + slack %d", res.PeakHeapBytes, budget, slackBytes)
			}
			// The sampler must have seen at least one run's buffer, or the
			// bound above checks nothing.
			if res.PeakHeapBytes < uint64(cfg.MemoryKiB)*1024 {
				t.Errorf("peak Go heap %d bytes is below one run's %d KiB: the sampler missed the runs", res.PeakHeapBytes, cfg.MemoryKiB)
			}
		})
	}
}

// TestSemaphoreBaseline runs the same burst behind a plain semaphore of 2
// (calls wait at most 2 s) and logs its memory for comparison; the peak is
// not asserted, since it depends on when the collector runs, but the calls
// must still all end in success or ErrBusy.
func TestSemaphoreBaseline(t *testing.T) {
	cfg := defaultConfig()
	cfg.Mode = "semaphore"
	cfg.MemoryKiB = testMemoryKiB
	cfg.Timeout = 2 * time.Second
	res, err := run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + report(cfg, res))
	if res.Other != 0 || res.Success+res.Busy != cfg.Calls || res.Success < cfg.Concurrent {
		t.Errorf("%d succeeded, %d busy, %d other errors (e.g. %v) of %d calls", res.Success, res.Busy, res.Other, res.OtherErr, cfg.Calls)
	}
}
