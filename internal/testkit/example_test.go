package testkit_test

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/keyhold/keyhold/internal/testkit"
)

// A test moves the clock by hand and reads what was logged.
func Example() {
	clock := testkit.NewClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	var logs testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	clock.Advance(90 * time.Minute)
	log.Info("tick", "now", clock.Now().Format(time.Kitchen))
	fmt.Print(logs.String())
	// Output:
	// level=INFO msg=tick now=10:30AM
}
